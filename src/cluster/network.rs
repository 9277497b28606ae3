//! The client side of the cluster service: openraft's `RaftNetworkFactory`, with one cached
//! gRPC channel per peer address (never one connection per RPC), connect and per-call
//! timeouts, and transport failures reported as `Unreachable` so openraft backs off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::proto::{WireError, decode, pb};
use super::secret::ClusterSecret;
use super::tls::{ClusterTls, TlsConnect};
use super::types::{NodeId, TypeConfig};

/// A client of a peer's cluster service, every call carrying the cluster secret.
pub type PeerClient = pb::cluster_client::ClusterClient<InterceptedService<Channel, ClusterSecret>>;

/// The largest gRPC message a node sends or accepts: large enough for a big batch of
/// entries, small enough that a peer cannot make it allocate without bound.
pub(crate) const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a client of the cluster port needs to be let in: the shared secret, the TLS
/// identity, either or both (or neither, on a cluster that requires nothing).
#[derive(Clone, Debug, Default)]
pub struct ClusterAccess {
    pub secret: ClusterSecret,
    pub tls: Option<Arc<ClusterTls>>,
}

impl From<ClusterSecret> for ClusterAccess {
    fn from(secret: ClusterSecret) -> ClusterAccess {
        ClusterAccess { secret, tls: None }
    }
}

/// Channels to the other nodes, shared by Raft replication, proposal forwarding and the
/// cluster commands.
#[derive(Clone, Default)]
pub struct ClusterNetwork {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// The local address outgoing connections are bound to (multi-homed hosts; the
    /// Jepsen harness tells nodes apart by it), or the system's choice.
    source: Option<std::net::IpAddr>,
    access: ClusterAccess,
}

impl ClusterNetwork {
    /// Channels whose connections leave from `source`, made with `access` (anything that
    /// converts, such as a bare [`ClusterSecret`]).
    pub fn new(
        source: Option<std::net::IpAddr>,
        access: impl Into<ClusterAccess>,
    ) -> ClusterNetwork {
        ClusterNetwork {
            source,
            access: access.into(),
            ..ClusterNetwork::default()
        }
    }

    /// A client for the node at `addr` (`host:port`), on the cached channel to it. The
    /// channel connects lazily and reconnects by itself after a failure.
    pub fn client(&self, addr: &str) -> Result<PeerClient, Status> {
        let channel = {
            let mut channels = match self.channels.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            match channels.get(addr) {
                Some(channel) => channel.clone(),
                None => {
                    let scheme = if self.access.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
                        .map_err(|e| {
                            Status::invalid_argument(format!("bad peer address {addr}: {e}"))
                        })?
                        .connect_timeout(CONNECT_TIMEOUT)
                        .local_address(self.source)
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(10))
                        .keep_alive_timeout(Duration::from_secs(5));
                    let channel = match &self.access.tls {
                        None => endpoint.connect_lazy(),
                        // The connector does TCP itself: it binds `source` and sets
                        // TCP_NODELAY the way the endpoint's own connector would.
                        Some(tls) => endpoint.connect_with_connector_lazy(TlsConnect {
                            tls: tls.clone(),
                            addr: addr.to_string(),
                            source: self.source,
                        }),
                    };
                    channels.insert(addr.to_string(), channel.clone());
                    channel
                }
            }
        };
        Ok(
            pb::cluster_client::ClusterClient::with_interceptor(
                channel,
                self.access.secret.clone(),
            )
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
    }
}

impl RaftNetworkFactory<TypeConfig> for ClusterNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            target,
            addr: node.addr.clone(),
            network: self.clone(),
        }
    }
}

/// Raft's view of one peer.
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    network: ClusterNetwork,
}

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// A transport failure (peer down, connection refused, deadline passed) is `Unreachable`,
/// so openraft backs off instead of hammering a dead node; anything else is a `Network`
/// error, retried at once.
fn from_status<E: std::error::Error>(status: &Status) -> RPCError<NodeId, BasicNode, E> {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            RPCError::Unreachable(Unreachable::new(status))
        }
        _ => RPCError::Network(NetworkError::new(status)),
    }
}

/// A status with the chain of errors under it: a transport failure's message alone is
/// "transport error", and the why (refused, a TLS handshake failure, a GOAWAY saying TLS
/// is required) is in its sources.
pub(crate) fn describe(status: &Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

fn from_wire<E: std::error::Error>(e: &WireError) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(e))
}

fn timed<T>(message: T, ttl: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(ttl);
    request
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        let message = pb::AppendEntriesRequest::try_from(&rpc).map_err(|e| from_wire(&e))?;
        let mut client = self
            .network
            .client(&self.addr)
            .map_err(|s| from_status(&s))?;
        let reply = client
            .append_entries(timed(message, option.hard_ttl()))
            .await
            .map_err(|s| from_status(&s))?;
        reply.into_inner().try_into().map_err(|e| from_wire(&e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let message = pb::InstallSnapshotRequest::try_from(&rpc).map_err(|e| from_wire(&e))?;
        let mut client = self
            .network
            .client(&self.addr)
            .map_err(|s| from_status(&s))?;
        match client
            .install_snapshot(timed(message, option.hard_ttl()))
            .await
        {
            Ok(reply) => reply.into_inner().try_into().map_err(|e| from_wire(&e)),
            // The receiver lost track of this snapshot (it restarted, or a chunk went
            // missing): tell openraft, which starts the snapshot again from the beginning.
            Err(status) if status.code() == Code::FailedPrecondition => {
                match decode::<InstallSnapshotError>("snapshot error", status.details()) {
                    Ok(e) => Err(RPCError::RemoteError(RemoteError::new(
                        self.target,
                        RaftError::APIError(e),
                    ))),
                    Err(e) => Err(from_wire(&e)),
                }
            }
            Err(status) => Err(from_status(&status)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        let mut client = self
            .network
            .client(&self.addr)
            .map_err(|s| from_status(&s))?;
        let reply = client
            .vote(timed(pb::VoteRequest::from(&rpc), option.hard_ttl()))
            .await
            .map_err(|s| from_status(&s))?;
        reply.into_inner().try_into().map_err(|e| from_wire(&e))
    }
}
