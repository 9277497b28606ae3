//! The leader's side of followers' proposals: one ordered gRPC stream per follower
//! (`ProposeStream`, the follower's side is `forwarder`), on which the follower keeps
//! several batches in flight. The leader appends the batches in stream order and answers
//! each once applied, so commands that one connection proposed through its node still
//! enter the log in the order it proposed them. A stream whose receiver has refused a
//! batch (it was not the leader) refuses every later one, so a batch can never be
//! appended after a later one of the same stream.

use std::sync::Arc;

use openraft::Raft;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::command::CommandBatch;
use super::forwarder::STREAM_DEPTH;
use super::node::NodeInner;
use super::proto::{self, pb};
use super::types::TypeConfig;

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
            // Held from the look at who leads to the append: a hand-off cannot slip between.
            let _open = node.gate.open().await;
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
