//! What the operator's API asks of the cluster beyond what the broker needs: the members'
//! status and connections (over the cluster service), adding and removing members as
//! `raftmq cluster join|leave` do, a snapshot now, and moving leadership.

use std::sync::Arc;
use std::time::Duration;

use raftmq_storage::StoreError;
use thiserror::Error;

use super::handoff::HandOff;
use super::node::ClusterHandle;
use super::proto::pb;
use super::types::NodeId;

/// The MQTT connections a node holds, as the `Clients` call answers them: the broker
/// provides it once it runs, since the cluster starts first and knows nothing of MQTT.
pub trait LocalClients: Send + Sync {
    fn connected(&self) -> Vec<pb::ConnectedClient>;
}

/// Why a call to a member of the cluster failed.
#[derive(Debug, Error)]
pub enum MemberError {
    #[error("node {0} is not a member of the cluster")]
    NotMember(NodeId),
    #[error("the node at {addr} is node {actual}, not {expected}")]
    WrongNode {
        addr: String,
        expected: NodeId,
        actual: NodeId,
    },
    #[error("{0}")]
    Call(#[from] tonic::Status),
    #[error("raft: {0}")]
    Raft(String),
}

impl ClusterHandle {
    /// Set once by the broker: what the `Clients` call answers. A second call is ignored.
    pub fn set_local_clients(&self, clients: Arc<dyn LocalClients>) {
        let _ = self.inner.local_clients.set(clients);
    }

    /// The members as this node knows them.
    pub fn members(&self) -> Vec<pb::Member> {
        self.inner.members()
    }

    /// This node's status, as the `Status` call answers it.
    pub fn status(&self) -> Result<pb::StatusResponse, StoreError> {
        self.inner.status()
    }

    /// The status of the member at `addr`, within `timeout`.
    pub async fn peer_status(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<pb::StatusResponse, tonic::Status> {
        let mut client = self.inner.network.client(addr)?;
        let mut request = tonic::Request::new(pb::StatusRequest {});
        request.set_timeout(timeout);
        Ok(client.status(request).await?.into_inner())
    }

    /// The MQTT connections member `node` holds: this node's directly, another's by the
    /// `Clients` call (within `timeout`).
    pub async fn connected_clients(
        &self,
        node: NodeId,
        timeout: Duration,
    ) -> Result<Vec<pb::ConnectedClient>, MemberError> {
        if node == self.inner.id {
            return Ok(self.inner.connected_clients());
        }
        let addr = self.peer_addr(node).ok_or(MemberError::NotMember(node))?;
        let mut client = self.inner.network.client(&addr)?;
        let mut request = tonic::Request::new(pb::ClientsRequest {});
        request.set_timeout(timeout);
        Ok(client.clients(request).await?.into_inner().clients)
    }

    /// Adds the fresh node at `addr` as `raftmq cluster join` does: that node is asked to
    /// join this one's cluster (learner, catch-up, voter). With `expected`, the node at
    /// `addr` must have that id.
    pub async fn add_member(
        &self,
        addr: &str,
        expected: Option<NodeId>,
    ) -> Result<Vec<pb::Member>, MemberError> {
        let status = self.peer_status(addr, Duration::from_secs(5)).await?;
        if let Some(expected) = expected
            && expected != status.node_id
        {
            return Err(MemberError::WrongNode {
                addr: addr.to_string(),
                expected,
                actual: status.node_id,
            });
        }
        let mut client = self.inner.network.client(addr)?;
        let mut request = tonic::Request::new(pb::JoinRequest {
            seed: self.inner.addr.clone(),
        });
        // Joining waits for the new node to catch up before it becomes a voter.
        request.set_timeout(Duration::from_secs(120));
        Ok(client.join(request).await?.into_inner().members)
    }

    /// Removes member `id` through the leader (as `raftmq cluster leave` does); its
    /// sessions are taken offline.
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<pb::Member>, MemberError> {
        if self.peer_addr(id).is_none() {
            return Err(MemberError::NotMember(id));
        }
        // Through this node's own service, which forwards to the leader.
        let mut client = self.inner.network.client(&self.inner.addr)?;
        let mut request = tonic::Request::new(pb::RemoveNodeRequest { node_id: id });
        request.set_timeout(Duration::from_secs(30));
        Ok(client.remove_node(request).await?.into_inner().members)
    }

    /// Builds a snapshot of the state on this node now (and purges the log behind it, as
    /// the snapshot policy does); returns the index it covers once it is built, within
    /// `timeout`.
    pub async fn snapshot(&self, timeout: Duration) -> Result<Option<u64>, MemberError> {
        let applied = self.raft_health().applied;
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| MemberError::Raft(e.to_string()))?;
        let built = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.snapshot.map(|id| id.index) >= applied,
                "snapshot built",
            )
            .await
            .map_err(|e| MemberError::Raft(e.to_string()))?;
        Ok(built.snapshot.map(|id| id.index))
    }

    /// Moves leadership away from this node (to `to` if given, and caught up), without
    /// retiring it: it may lead again later. See `handoff` for how, openraft 0.9 having no
    /// leadership transfer of its own.
    pub async fn transfer_leadership(&self, to: Option<NodeId>, within: Duration) -> HandOff {
        self.inner.transfer(to, within).await
    }
}
