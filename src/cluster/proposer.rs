//! Group commit: commands proposed at about the same time share one Raft entry.
//!
//! Callers hand single commands to a [`Proposer`]. One task collects them: up to eight
//! batches are in flight at once, in submission order. A command that finds the pipeline
//! empty goes at once, with whatever else is already waiting; one that finds another batch
//! in flight also waits a short linger (1 ms) for company, which costs it nothing (it
//! would commit after that batch anyway) and keeps a trickle of commands from becoming
//! one entry, one replication and one fsync each; while all eight are in flight, what
//! arrives waits and forms the next, larger, batch. Each batch is submitted as one entry —
//! appended on the leader, or sent whole on the follower's ordered stream to the leader.
//! Each caller gets its own command's outcome — or learns that
//! the outcome is unknown, when the leader was lost mid-way and the entry may or may not
//! commit (DESIGN §3 rule 1: the broker then closes that client's connection rather than
//! answer wrongly).

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::command::{BatchOutcome, Command, CommandBatch, Outcome};
use super::forward::{Appended, append};
use super::forwarder::{Applied, Forwarder};
use super::handoff::WriteGate;
use super::network::ClusterNetwork;
use super::types::{NodeId, TypeConfig};
use crate::metrics::RaftMetrics;

/// Why a command has no outcome.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// No leader could be reached: the command was certainly not applied.
    #[error("no leader is known: the command was not proposed")]
    NoLeader,
    /// The command may or may not have been applied.
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// Tuning of the group commit.
#[derive(Debug, Clone, Copy)]
pub struct ProposerConfig {
    /// How long the first command of a batch waits for company.
    pub linger: Duration,
    /// The most commands in one entry.
    pub max_batch: usize,
    /// How long to wait for a leader to be elected before giving up with `NoLeader`.
    pub leader_wait: Duration,
    /// How long a batch may wait for its outcome before it is reported unknown.
    pub outcome_timeout: Duration,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        ProposerConfig {
            linger: Duration::from_millis(1),
            max_batch: 1024,
            leader_wait: Duration::from_secs(3),
            outcome_timeout: Duration::from_secs(10),
        }
    }
}

struct Pending {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, ProposeError>>,
}

/// A handle to propose commands; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    pub(crate) fn start(writer: BatchWriter) -> Self {
        // Bounded: a flood of proposals waits here instead of growing memory.
        let (tx, rx) = mpsc::channel(writer.config.max_batch * 4);
        tokio::spawn(collect(rx, Arc::new(writer)));
        Proposer { tx }
    }

    /// Proposes one command and waits until it is committed and applied on this node's
    /// leader (its outcome) or known not to be.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        match self.submit(command).await {
            Ok(outcome) => outcome.await,
            Err(e) => Err(e),
        }
    }

    /// Hands one command to the group commit and returns at once with the future of its
    /// outcome. Commands submitted one after another by one caller enter the log in that
    /// order, so a connection can keep several in flight and still answer in order.
    pub async fn submit(&self, command: Command) -> Result<PendingOutcome, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { command, reply })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        Ok(PendingOutcome(rx))
    }
}

/// The outcome of a submitted command, once known.
#[derive(Debug)]
pub struct PendingOutcome(oneshot::Receiver<Result<Outcome, ProposeError>>);

impl PendingOutcome {
    /// The outcome if it is already known, without waiting.
    pub fn ready(&mut self) -> Option<Result<Outcome, ProposeError>> {
        match self.0.try_recv() {
            Ok(result) => Some(result),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(ProposeError::Stopped)),
        }
    }
}

impl std::future::Future for PendingOutcome {
    type Output = Result<Outcome, ProposeError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ProposeError::Stopped)))
    }
}

/// Batches of one node in flight at once. Their order into the log is their submission
/// order (appends on the leader, one ordered stream from a follower), so a deeper pipeline
/// never reorders one connection's commands.
const MAX_BATCHES_IN_FLIGHT: usize = 8;

async fn collect(mut rx: mpsc::Receiver<Pending>, writer: Arc<BatchWriter>) {
    let forwarder = Forwarder::new(writer.network.clone());
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // With the pipeline full, what arrives meanwhile queues in the channel and joins
        // this batch once a place frees: batches grow with the load by themselves.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < writer.config.max_batch {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        // A linger only while another batch is in flight: this one would wait for that
        // commit anyway (the pipeline's order), so company costs nothing; with nothing in
        // flight it goes at once.
        let others_in_flight = in_flight.available_permits() + 1 < MAX_BATCHES_IN_FLIGHT;
        if !writer.config.linger.is_zero() && others_in_flight {
            let deadline = Instant::now() + writer.config.linger;
            while batch.len() < writer.config.max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(pending)) => batch.push(pending),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let (commands, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.command, p.reply)).unzip();
        writer.metrics.batch_size.observe(commands.len() as f64);
        let started = Instant::now();
        let submitted = writer.submit(&forwarder, CommandBatch(commands)).await;
        let deadline = writer.config.outcome_timeout;
        let metrics = writer.metrics.clone();
        tokio::spawn(async move {
            // A leader that lost its quorum never answers: the permit must come back.
            let result = match submitted {
                Ok(submitted) => tokio::time::timeout(deadline, submitted.outcome())
                    .await
                    .unwrap_or_else(|_| Err(ProposeError::Unknown("no outcome in time".into()))),
                Err(e) => Err(e),
            };
            metrics
                .proposal_latency
                .observe(started.elapsed().as_secs_f64());
            answer(replies, result);
            drop(permit);
        });
    }
}

/// Hands each caller its command's outcome.
fn answer(
    replies: Vec<oneshot::Sender<Result<Outcome, ProposeError>>>,
    result: Result<BatchOutcome, ProposeError>,
) {
    match result {
        Ok(BatchOutcome(outcomes)) if outcomes.len() == replies.len() => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(BatchOutcome(outcomes)) => {
            let error = ProposeError::Unknown(format!(
                "{} outcomes for {} commands",
                outcomes.len(),
                replies.len()
            ));
            replies
                .into_iter()
                .for_each(|r| drop(r.send(Err(error.clone()))));
        }
        Err(error) => replies
            .into_iter()
            .for_each(|r| drop(r.send(Err(error.clone())))),
    }
}

/// A batch on its way into the log.
enum Submitted {
    /// Appended on this node, the leader.
    Local(Appended),
    /// Sent on the stream to the leader; this node's Raft, to wait for the local apply.
    Forwarded(oneshot::Receiver<Applied>, openraft::Raft<TypeConfig>),
}

impl Submitted {
    async fn outcome(self) -> Result<BatchOutcome, ProposeError> {
        match self {
            Submitted::Local(appended) => match appended.await {
                Ok(Ok(response)) => Ok(response.data),
                // Leadership moved before or while the entry was appended: it may still
                // commit under the new leader, so the outcome is not known.
                Ok(Err(e)) => Err(ProposeError::Unknown(e.to_string())),
                Err(_) => Err(ProposeError::Unknown("Raft stopped".into())),
            },
            Submitted::Forwarded(rx, raft) => {
                let (outcome, index) = rx
                    .await
                    .unwrap_or_else(|_| Err(ProposeError::Unknown("forwarding stopped".into())))?;
                // The caller reads this node's state next (a resend's messages, promoted
                // entries): it must hold the command's effects, as the leader's did.
                raft.wait(None)
                    .applied_index_at_least(Some(index), "a forwarded batch applied here")
                    .await
                    .map_err(|e| ProposeError::Unknown(format!("not applied here: {e}")))?;
                Ok(outcome)
            }
        }
    }
}

/// Writes one batch: locally when this node leads, otherwise through the leader.
#[derive(Clone)]
pub(crate) struct BatchWriter {
    pub(crate) raft: openraft::Raft<TypeConfig>,
    pub(crate) id: NodeId,
    pub(crate) network: ClusterNetwork,
    pub(crate) config: ProposerConfig,
    /// Closed while leadership is handed over.
    pub(crate) gate: Arc<WriteGate>,
    pub(crate) metrics: Arc<RaftMetrics>,
}

impl BatchWriter {
    /// The leader's id and address, waiting up to `leader_wait` for one to be elected.
    async fn leader(&self) -> Option<(NodeId, String)> {
        let mut metrics = self.raft.metrics();
        let deadline = Instant::now() + self.config.leader_wait;
        loop {
            {
                let m = metrics.borrow();
                if let Some(leader) = m.current_leader {
                    let addr = m
                        .membership_config
                        .membership()
                        .get_node(&leader)
                        .map(|n| n.addr.clone());
                    if let Some(addr) = addr {
                        return Some((leader, addr));
                    }
                }
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Puts `batch` into the log behind every batch submitted before it, without waiting
    /// for it to commit.
    async fn submit(
        &self,
        forwarder: &Arc<Forwarder>,
        batch: CommandBatch,
    ) -> Result<Submitted, ProposeError> {
        // Held from the look at who leads to the append: a hand-off cannot slip between.
        let _open = self.gate.open().await;
        let Some((leader, addr)) = self.leader().await else {
            return Err(ProposeError::NoLeader);
        };
        if leader == self.id {
            return append(&self.raft, batch)
                .await
                .map(Submitted::Local)
                .map_err(ProposeError::Unknown);
        }
        forwarder
            .submit(&addr, &batch)
            .await
            .map(|rx| Submitted::Forwarded(rx, self.raft.clone()))
    }

    /// Appends the batch on this node, which believed itself leader.
    pub(crate) async fn write_local(
        &self,
        batch: CommandBatch,
    ) -> Result<BatchOutcome, ProposeError> {
        let _open = self.gate.open().await;
        if self.raft.metrics().borrow().state != openraft::ServerState::Leader {
            return Err(ProposeError::NoLeader);
        }
        match self.raft.client_write(batch).await {
            Ok(response) => Ok(response.data),
            // Leadership moved before or while the entry was appended: it may still commit
            // under the new leader, so the outcome is not known.
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(
                ProposeError::Unknown("leadership changed during the proposal".into()),
            ),
            Err(e) => Err(ProposeError::Unknown(e.to_string())),
        }
    }
}
