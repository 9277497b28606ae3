//! Leadership hand-off before a drain (`raftmq node drain`, SIGTERM).
//!
//! A leader that simply stops leaves the cluster without one for an election timeout and
//! more, and every proposal in flight with an unknown outcome. openraft 0.9 has no
//! leadership transfer, so the draining leader arranges one out of what it has: it
//! closes its [`WriteGate`] (no new entry is appended, here or for a follower), waits
//! until a voter's log matches its own, and asks that voter (the `Campaign` call) to
//! start an election at once. The old leader grants it: its own vote is older than the
//! leader lease, and the candidate's log is as long as its own (the other followers
//! still refuse, their lease renewed by heartbeats, but one grant is a majority of three).
//! Then the gate opens again: the proposals that waited find the new leader.
//!
//! From the start of a drain the node never campaigns again (nor grants a `Campaign`),
//! so leadership does not come back to it before it leaves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard};
use tokio::time::Instant;

use super::command::CommandBatch;
use super::node::NodeInner;
use super::proto::pb;
use super::types::NodeId;

/// Held (shared) by whoever appends an entry from the check that this node leads until
/// the append; the hand-off holds it exclusively, so nothing is appended meanwhile.
#[derive(Default)]
pub(crate) struct WriteGate(RwLock<()>);

impl WriteGate {
    /// Waits while a hand-off is under way.
    pub(crate) async fn open(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().await
    }
}

/// When this node last became leader: its own vote is at least that old, and it grants
/// no vote (the hand-off's included) before the leader lease has passed since.
#[derive(Default)]
pub(crate) struct LeaderSince(std::sync::Mutex<Option<Instant>>);

impl LeaderSince {
    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows this node's Raft metrics for as long as Raft runs.
    pub(crate) async fn track(
        self: std::sync::Arc<Self>,
        mut metrics: tokio::sync::watch::Receiver<
            openraft::RaftMetrics<NodeId, openraft::BasicNode>,
        >,
    ) {
        loop {
            let leads = metrics.borrow_and_update().state == openraft::ServerState::Leader;
            {
                let mut since = self.0.lock().unwrap_or_else(|p| p.into_inner());
                match (leads, *since) {
                    (true, None) => *since = Some(Instant::now()),
                    (false, Some(_)) => *since = None,
                    _ => {}
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }
}

/// What a hand-off did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOff {
    /// This node did not lead: nothing to hand over.
    NotLeader,
    /// Leadership moved to `to`; appends waited `paused`.
    Moved { to: NodeId, paused: Duration },
    /// No other voter to take over (a one-voter cluster).
    Alone,
    /// The leader has not heard from a quorum lately: no voter could take over.
    NoQuorum,
    /// No voter took over in time; this node still leads.
    TimedOut { tried: Vec<NodeId> },
}

/// How long one `Campaign` call and the election it starts may take before another
/// voter is asked.
const ATTEMPT: Duration = Duration::from_millis(1500);

/// How long a voter asked to campaign waits for its log to reach the leader's last entry.
const CATCH_UP: Duration = Duration::from_millis(500);

impl NodeInner {
    /// Stops this node from ever campaigning again and, if it leads, hands leadership to
    /// another voter within `within` (see the module docs).
    pub(crate) async fn hand_off(&self, within: Duration) -> HandOff {
        self.retiring.store(true, Ordering::Release);
        self.raft.runtime_config().elect(false);
        self.transfer(None, within).await
    }

    /// If this node leads, hands leadership to another voter (`to`, when given) within
    /// `within`, as a drain does but without retiring this node (the operator's
    /// `POST /api/v1/cluster/leader`).
    pub(crate) async fn transfer(&self, to: Option<NodeId>, within: Duration) -> HandOff {
        if !self.is_leader() {
            return HandOff::NotLeader;
        }
        let deadline = Instant::now() + within;
        // A leader of less than a lease refuses to vote for anyone: wait, appends flowing.
        if let Some(since) = self.leader_since.get() {
            let lease_over = since + self.quorum_lost_after + Duration::from_millis(50);
            tokio::time::sleep_until(lease_over.min(deadline)).await;
        }
        let started = Instant::now();
        let _closed = self.gate.0.write().await;
        let Some(last) = self.barrier(deadline).await else {
            return self.moved(started, deadline).await;
        };
        let mut tried = Vec::new();
        while Instant::now() < deadline {
            if !self.is_leader() {
                // Lost leadership on its own meanwhile.
                return self.moved(started, deadline).await;
            }
            let target = match self.caught_up_voter(last, &tried, to) {
                Ok(Some(target)) => target,
                Ok(None) => {
                    // Entries appended just before the gate closed are still on their way.
                    let mut metrics = self.raft.metrics();
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), metrics.changed()).await;
                    continue;
                }
                Err(stop) => return stop,
            };
            tried.push(target.0);
            match self.ask_to_campaign(&target.1, last).await {
                Ok(()) => {
                    let attempt_ends = (Instant::now() + ATTEMPT).min(deadline);
                    if self.wait_step_down(attempt_ends).await {
                        return self.moved(started, deadline).await;
                    }
                    tracing::info!(target = target.0, "hand-off: no election won in time");
                }
                Err(e) => {
                    tracing::info!(target = target.0, "hand-off: campaign refused: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tracing::warn!(
            ?tried,
            "hand-off: no voter took over in time; still leading"
        );
        HandOff::TimedOut { tried }
    }

    /// Appends an empty entry behind everything appended before the gate closed, and
    /// returns its index once committed: the last entry of this leader's log. (Appends are
    /// fire-and-forget, so the log's length in the metrics may lag the entries already
    /// sent to Raft; a voter caught up with a shorter log would lose its election.)
    /// `None` if this node lost leadership meanwhile.
    async fn barrier(&self, deadline: Instant) -> Option<u64> {
        let write = self.raft.client_write(CommandBatch(Vec::new()));
        match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(written)) => Some(written.log_id.index),
            Ok(Err(e)) => {
                tracing::info!("hand-off: the barrier entry failed: {e}");
                None
            }
            Err(_) => {
                tracing::info!("hand-off: the barrier entry did not commit in time");
                None
            }
        }
    }

    /// A voter other than this node (`only` if given) whose log reaches `last` (this
    /// leader's last entry), preferring one not yet tried; `Err` when nobody can take over.
    fn caught_up_voter(
        &self,
        last: u64,
        tried: &[NodeId],
        only: Option<NodeId>,
    ) -> Result<Option<(NodeId, String)>, HandOff> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let others: Vec<NodeId> = membership
            .voter_ids()
            .filter(|v| *v != self.id && only.is_none_or(|only| only == *v))
            .collect();
        if others.is_empty() {
            return Err(HandOff::Alone);
        }
        let quorum_lost = m
            .millis_since_quorum_ack
            .is_none_or(|ms| u128::from(ms) > self.quorum_lost_after.as_millis());
        if quorum_lost {
            return Err(HandOff::NoQuorum);
        }
        let Some(replication) = m.replication.as_ref() else {
            return Ok(None);
        };
        let mut caught_up: Vec<NodeId> = others
            .into_iter()
            .filter(|v| {
                replication
                    .get(v)
                    .is_some_and(|matched| matched.is_some_and(|id| id.index >= last))
            })
            .collect();
        // Someone not tried yet first; then start the round again.
        caught_up.sort_by_key(|v| tried.iter().filter(|t| *t == v).count());
        Ok(caught_up
            .first()
            .and_then(|v| membership.get_node(v).map(|node| (*v, node.addr.clone()))))
    }

    async fn ask_to_campaign(&self, addr: &str, last_log_index: u64) -> Result<(), String> {
        let mut client = self
            .network
            .client(addr)
            .map_err(|s| s.message().to_owned())?;
        let mut request = tonic::Request::new(pb::CampaignRequest {
            from: self.id,
            last_log_index,
        });
        request.set_timeout(ATTEMPT);
        let reply = client
            .campaign(request)
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        if reply.started {
            Ok(())
        } else {
            Err(reply.refused)
        }
    }

    /// Whether this node stopped leading before `until`.
    async fn wait_step_down(&self, until: Instant) -> bool {
        let mut metrics = self.raft.metrics();
        tokio::time::timeout_at(
            until,
            metrics.wait_for(|m| m.state != openraft::ServerState::Leader),
        )
        .await
        .is_ok_and(|seen| seen.is_ok())
    }

    /// Waits (until `deadline`) to learn who leads now.
    async fn moved(&self, started: Instant, deadline: Instant) -> HandOff {
        let paused = started.elapsed();
        let mut metrics = self.raft.metrics();
        let id = self.id;
        let to = tokio::time::timeout_at(
            deadline.max(Instant::now() + ATTEMPT),
            metrics.wait_for(|m| m.current_leader.is_some_and(|l| l != id)),
        )
        .await
        .ok()
        .and_then(|seen| seen.ok().and_then(|m| m.current_leader));
        match to {
            Some(to) => {
                tracing::info!(to, ?paused, "hand-off: leadership moved");
                HandOff::Moved { to, paused }
            }
            None => HandOff::TimedOut { tried: Vec::new() },
        }
    }

    /// The `Campaign` call: start an election now, unless this node is leaving too or its
    /// log does not reach the leader's last entry (`last_log_index`) within a moment: an
    /// election it cannot win would only unseat the leader.
    pub(crate) async fn campaign(&self, from: NodeId, last_log_index: u64) -> pb::CampaignReply {
        let refused = |why: &str| pb::CampaignReply {
            started: false,
            refused: why.to_owned(),
        };
        if self.retiring.load(Ordering::Acquire) {
            return refused("this node is draining");
        }
        if !self.role_in_membership().0 {
            return refused("this node is not a voter");
        }
        let caught_up = self
            .raft
            .wait(Some(CATCH_UP))
            .log_index_at_least(Some(last_log_index), "the leader's last entry")
            .await;
        if caught_up.is_err() {
            return refused("this node's log does not reach the leader's last entry");
        }
        match self.raft.trigger().elect().await {
            Ok(()) => {
                tracing::info!(from, "campaigning: the leader hands over");
                pb::CampaignReply {
                    started: true,
                    refused: String::new(),
                }
            }
            Err(e) => refused(&e.to_string()),
        }
    }
}
