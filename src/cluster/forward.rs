//! Followers' proposals to the leader, pipelined: one ordered gRPC stream per follower
//! (`ProposeStream`), on which the follower keeps several batches in flight. The leader
//! appends the batches in stream order and answers each once applied, so commands that
//! one connection proposed through its node still enter the log in the order it proposed
//! them. A stream whose receiver has refused a batch (it was not the leader) refuses every
//! later one, so a batch can never be appended after a later one of the same stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use openraft::Raft;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::command::{BatchOutcome, CommandBatch};
use super::network::ClusterNetwork;
use super::node::NodeInner;
use super::proposer::ProposeError;
use super::proto::{self, pb};
use super::types::TypeConfig;

/// A batch's outcome and the log index of its entry.
pub(crate) type Applied = Result<(BatchOutcome, u64), ProposeError>;
type Reply = oneshot::Sender<Applied>;

/// Batches a follower may have in flight on its stream before the next one waits.
const STREAM_DEPTH: usize = 64;

/// The follower side: the open stream to the node taken for the leader, if any.
#[derive(Default)]
pub(crate) struct Forwarder {
    stream: Mutex<Option<Stream>>,
}

struct Stream {
    addr: String,
    next_seq: u64,
    tx: mpsc::Sender<pb::ForwardedBatch>,
    pending: Arc<Mutex<HashMap<u64, Reply>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Forwarder {
    /// Sends `batch` to the leader at `addr` behind every batch sent before, and returns
    /// the receiver of its outcome.
    pub(crate) async fn submit(
        &self,
        network: &ClusterNetwork,
        addr: &str,
        batch: &CommandBatch,
    ) -> Result<oneshot::Receiver<Applied>, ProposeError> {
        let bytes =
            proto::encode("batch", batch).map_err(|e| ProposeError::Unknown(e.to_string()))?;
        let usable = {
            let stream = lock(&self.stream);
            stream
                .as_ref()
                .is_some_and(|s| s.addr == addr && !s.tx.is_closed())
        };
        if !usable {
            let stream = open(network, addr).await?;
            *lock(&self.stream) = Some(stream);
        }
        let (reply, rx) = oneshot::channel();
        let (tx, message) = {
            let mut guard = lock(&self.stream);
            let Some(stream) = guard.as_mut() else {
                return Err(ProposeError::NoLeader);
            };
            let seq = stream.next_seq;
            stream.next_seq += 1;
            lock(&stream.pending).insert(seq, reply);
            (
                stream.tx.clone(),
                pb::ForwardedBatch {
                    seq,
                    batch: bytes.into(),
                },
            )
        };
        // The sender is the stream's only one and submissions are serialized by the
        // proposer, so batches go out in submission order.
        if tx.send(message).await.is_err() {
            *lock(&self.stream) = None;
        }
        Ok(rx)
    }
}

async fn open(network: &ClusterNetwork, addr: &str) -> Result<Stream, ProposeError> {
    let mut client = network.client(addr).map_err(|_| ProposeError::NoLeader)?;
    let (tx, rx) = mpsc::channel(STREAM_DEPTH);
    let replies = client
        .propose_stream(ReceiverStream::new(rx))
        .await
        .map_err(|status| {
            ProposeError::Unknown(format!(
                "no stream to the leader at {addr}: {}",
                status.message()
            ))
        })?
        .into_inner();
    let pending: Arc<Mutex<HashMap<u64, Reply>>> = Arc::default();
    tokio::spawn(read_replies(replies, pending.clone(), addr.to_owned()));
    Ok(Stream {
        addr: addr.to_owned(),
        next_seq: 0,
        tx,
        pending,
    })
}

/// Hands each outcome to its batch's caller; when the stream ends, every batch still
/// waiting has an unknown outcome.
async fn read_replies(
    mut replies: Streaming<pb::ForwardedOutcome>,
    pending: Arc<Mutex<HashMap<u64, Reply>>>,
    addr: String,
) {
    let error = loop {
        match replies.message().await {
            Ok(Some(reply)) => {
                let Some(waiting) = lock(&pending).remove(&reply.seq) else {
                    continue;
                };
                let _ = waiting.send(outcome_of(reply.result).map(|o| (o, reply.index)));
            }
            Ok(None) => break format!("the leader at {addr} closed the stream"),
            Err(status) => break format!("stream to the leader at {addr}: {}", status.message()),
        }
    };
    for (_, waiting) in lock(&pending).drain() {
        let _ = waiting.send(Err(ProposeError::Unknown(error.clone())));
    }
}

fn outcome_of(result: Option<pb::forwarded_outcome::Result>) -> Result<BatchOutcome, ProposeError> {
    use pb::forwarded_outcome::Result as R;
    match result {
        Some(R::Outcome(bytes)) => {
            proto::decode("outcome", &bytes).map_err(|e| ProposeError::Unknown(e.to_string()))
        }
        Some(R::NotLeader(_)) => Err(ProposeError::NoLeader),
        Some(R::Unknown(e)) => Err(ProposeError::Unknown(e)),
        None => Err(ProposeError::Unknown("empty reply from the leader".into())),
    }
}

/// The leader side of one follower's stream.
pub(crate) fn serve(
    node: Arc<NodeInner>,
    mut batches: Streaming<pb::ForwardedBatch>,
) -> ReceiverStream<Result<pb::ForwardedOutcome, tonic::Status>> {
    let (tx, rx) = mpsc::channel(STREAM_DEPTH);
    tokio::spawn(async move {
        let mut refusing = false;
        while let Ok(Some(message)) = batches.message().await {
            let seq = message.seq;
            let reply = |result| {
                Ok(pb::ForwardedOutcome {
                    seq,
                    index: 0,
                    result: Some(result),
                })
            };
            use pb::forwarded_outcome::Result as R;
            refusing = refusing || !node.is_leader();
            if refusing {
                let leader = pb::Leader {
                    node_id: node.raft.metrics().borrow().current_leader,
                    addr: node.leader_addr(),
                };
                if tx.send(reply(R::NotLeader(leader))).await.is_err() {
                    return;
                }
                continue;
            }
            let batch: CommandBatch = match proto::decode("batch", &message.batch) {
                Ok(batch) => batch,
                Err(e) => {
                    // Nothing was proposed, but later batches must not overtake it.
                    refusing = true;
                    let _ = tx.send(reply(R::Unknown(e.to_string()))).await;
                    continue;
                }
            };
            match append(&node.raft, batch).await {
                Ok(outcome) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut index = 0;
                        let result = match outcome.await {
                            Ok(Ok(response)) => match proto::encode("outcome", &response.data) {
                                Ok(bytes) => {
                                    index = response.log_id.index;
                                    R::Outcome(bytes.into())
                                }
                                Err(e) => R::Unknown(e.to_string()),
                            },
                            Ok(Err(e)) => R::Unknown(e.to_string()),
                            Err(_) => R::Unknown("the leader stopped".into()),
                        };
                        let _ = tx
                            .send(Ok(pb::ForwardedOutcome {
                                seq,
                                index,
                                result: Some(result),
                            }))
                            .await;
                    });
                }
                Err(e) => {
                    refusing = true;
                    let _ = tx.send(reply(R::Unknown(e))).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// The receiver of an appended batch's result.
pub(crate) type Appended = oneshot::Receiver<openraft::raft::ClientWriteResult<TypeConfig>>;

/// Appends a batch on this node (which believes it leads) without waiting for it to
/// commit: batches are appended in call order.
pub(crate) async fn append(
    raft: &Raft<TypeConfig>,
    batch: CommandBatch,
) -> Result<Appended, String> {
    raft.client_write_ff(batch).await.map_err(|e| e.to_string())
}
