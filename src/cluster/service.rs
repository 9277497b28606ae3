//! The server side of the cluster service: hands Raft's RPCs to openraft, runs proposals
//! forwarded by followers, and answers the cluster commands. Every message is converted
//! with `TryFrom` first; a peer sending garbage gets `invalid_argument`.

use std::sync::Arc;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tonic::{Request, Response, Status};

use super::command::CommandBatch;
use super::node::NodeInner;
use super::proposer::ProposeError;
use super::proto::{self, pb};
use super::types::TypeConfig;

/// Marks a request that one node forwarded to another on behalf of a caller: it is not
/// forwarded again, so a stale idea of who leads costs one hop, never a loop.
const FORWARDED: &str = "x-raftmq-forwarded";

pub(crate) struct ClusterService {
    node: Arc<NodeInner>,
}

impl ClusterService {
    pub(crate) fn new(node: Arc<NodeInner>) -> Self {
        ClusterService { node }
    }

    /// The leader's client, for a request this node cannot serve itself.
    fn leader_client<T>(&self, request: &Request<T>) -> Result<super::network::PeerClient, Status> {
        if request.metadata().contains_key(FORWARDED) {
            return Err(Status::unavailable(
                "not the leader (request already forwarded once)",
            ));
        }
        let addr = self
            .node
            .leader_addr()
            .ok_or_else(|| Status::unavailable("no leader is known"))?;
        self.node.network.client(&addr)
    }
}

/// How long a leader asked to remove itself tries to hand leadership over first.
const LEAVING_HAND_OFF: std::time::Duration = std::time::Duration::from_secs(5);

fn forwarded<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    request
}

fn fatal<E: std::fmt::Display>(e: E) -> Status {
    Status::unavailable(format!("raft: {e}"))
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    type ProposeStreamStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::ForwardedOutcome, Status>>;

    async fn propose_stream(
        &self,
        request: Request<tonic::Streaming<pb::ForwardedBatch>>,
    ) -> Result<Response<Self::ProposeStreamStream>, Status> {
        Ok(Response::new(super::forward::serve(
            self.node.clone(),
            request.into_inner(),
        )))
    }

    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let rpc = AppendEntriesRequest::<TypeConfig>::try_from(request.into_inner())?;
        let reply = self.node.raft.append_entries(rpc).await.map_err(fatal)?;
        Ok(Response::new(reply.into()))
    }

    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let rpc = VoteRequest::try_from(request.into_inner())?;
        let reply = self.node.raft.vote(rpc).await.map_err(fatal)?;
        Ok(Response::new(reply.into()))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::InstallSnapshotRequest>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        let rpc = InstallSnapshotRequest::<TypeConfig>::try_from(request.into_inner())?;
        let (done, last) = (rpc.done, rpc.meta.last_log_id);
        match self.node.raft.install_snapshot(rpc).await {
            Ok(reply) => {
                if done {
                    // Operators (and the Jepsen harness's coverage check) look for this.
                    tracing::info!(
                        last_log_id = ?last,
                        "snapshot installed from the leader"
                    );
                }
                Ok(Response::new(reply.into()))
            }
            Err(RaftError::APIError(e @ InstallSnapshotError::SnapshotMismatch(_))) => {
                let details = proto::encode("snapshot error", &e)?;
                Err(Status::with_details(
                    tonic::Code::FailedPrecondition,
                    e.to_string(),
                    details.into(),
                ))
            }
            Err(e) => Err(fatal(e)),
        }
    }

    async fn propose(
        &self,
        request: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::ProposeResponse>, Status> {
        let message = request.into_inner();
        let batch: CommandBatch = proto::decode("batch", &message.batch)?;
        let outcome = if message.forwarded {
            // A follower's whole batch: one entry here, or refused untouched.
            if !self.node.is_leader() {
                let not_leader = pb::Leader {
                    node_id: self.node.raft.metrics().borrow().current_leader,
                    addr: self.node.leader_addr(),
                };
                return Ok(Response::new(pb::ProposeResponse {
                    result: Some(pb::propose_response::Result::NotLeader(not_leader)),
                }));
            }
            self.node.writer.write_local(batch).await
        } else {
            // A client of the service (the bench, tooling): through this node's group commit.
            // Submitted in order first, then awaited: they share entries.
            let mut outcomes = Vec::with_capacity(batch.0.len());
            let mut submitted = Vec::with_capacity(batch.0.len());
            let mut error = None;
            for command in batch.0 {
                match self.node.proposer.submit(command).await {
                    Ok(pending) => submitted.push(pending),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            for pending in submitted {
                match pending.await {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => error = Some(e),
                }
            }
            match error {
                None => Ok(super::command::BatchOutcome(outcomes)),
                Some(e) => Err(e),
            }
        };
        match outcome {
            Ok(outcome) => Ok(Response::new(pb::ProposeResponse {
                result: Some(pb::propose_response::Result::Outcome(
                    proto::encode("outcome", &outcome)?.into(),
                )),
            })),
            Err(ProposeError::NoLeader) => Err(Status::unavailable("no leader: not proposed")),
            Err(e) => Err(Status::aborted(e.to_string())),
        }
    }

    async fn forward_qos0(
        &self,
        request: Request<pb::Qos0Batch>,
    ) -> Result<Response<pb::Qos0Reply>, Status> {
        let accepted = self
            .node
            .qos0
            .send(request.into_inner().messages)
            .map_or(0, |receivers| receivers as u32);
        Ok(Response::new(pb::Qos0Reply { accepted }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self
            .node
            .status()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(status))
    }

    async fn clients(
        &self,
        _request: Request<pb::ClientsRequest>,
    ) -> Result<Response<pb::ClientsReply>, Status> {
        Ok(Response::new(pb::ClientsReply {
            clients: self.node.connected_clients(),
        }))
    }

    async fn add_node(
        &self,
        request: Request<pb::AddNodeRequest>,
    ) -> Result<Response<pb::MembershipReply>, Status> {
        if !self.node.is_leader() {
            let mut leader = self.leader_client(&request)?;
            return leader.add_node(forwarded(request.into_inner())).await;
        }
        let message = request.into_inner();
        if message.node_id == 0 || message.addr.is_empty() {
            return Err(Status::invalid_argument(
                "a node needs a non-zero id and an address",
            ));
        }
        self.node.add_node(message.node_id, message.addr).await?;
        Ok(Response::new(pb::MembershipReply {
            members: self.node.members(),
        }))
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::MembershipReply>, Status> {
        if !self.node.is_leader() {
            let mut leader = self.leader_client(&request)?;
            return leader.remove_node(forwarded(request.into_inner())).await;
        }
        let id = request.get_ref().node_id;
        if id == self.node.id {
            // The leader leaves: it hands leadership over first and lets the new leader
            // remove it, since only a member can propose the `NodeDown` that takes its
            // sessions offline afterwards.
            match self.node.hand_off(LEAVING_HAND_OFF).await {
                super::handoff::HandOff::Moved { .. } => {
                    let addr = self.node.leader_addr().ok_or_else(|| {
                        Status::unavailable("no leader is known after the hand-off")
                    })?;
                    let mut leader = self.node.network.client(&addr)?;
                    return leader.remove_node(forwarded(request.into_inner())).await;
                }
                other => {
                    tracing::warn!(?other, "the leaving leader could not hand over");
                }
            }
        }
        self.node.remove_node(id).await?;
        Ok(Response::new(pb::MembershipReply {
            members: self.node.members(),
        }))
    }

    async fn campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignReply>, Status> {
        let request = request.into_inner();
        Ok(Response::new(
            self.node
                .campaign(request.from, request.last_log_index)
                .await,
        ))
    }

    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::MembershipReply>, Status> {
        let members = self.node.join(&request.into_inner().seed).await?;
        Ok(Response::new(pb::MembershipReply { members }))
    }
}
