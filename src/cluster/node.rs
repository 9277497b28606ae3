//! One cluster node: opens the store, starts Raft and the cluster gRPC server, and either
//! bootstraps a one-voter cluster (a fresh node with nobody to join) or joins one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, Raft, ServerState, SnapshotPolicy};
use raftmq_storage::{LogStore, OpenOptions, StateReader, Storage, StoreError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::handoff::{HandOff, LeaderSince, WriteGate};
use super::members::LocalClients;
use super::network::{ClusterAccess, ClusterNetwork, MAX_MESSAGE_SIZE};
use super::proposer::{BatchWriter, Proposer, ProposerConfig};
use super::proto::pb;
use super::secret::SecretCheck;
use super::service::ClusterService;
use super::state::BrokerState;
use super::types::{NodeId, TypeConfig};
use crate::metrics::RaftMetrics;

/// How a node takes part in the cluster.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Where the cluster gRPC server listens.
    pub listen: SocketAddr,
    /// The `host:port` other nodes reach this one at.
    pub advertise: String,
    /// A fresh node that joins nobody makes itself a one-voter cluster.
    pub bootstrap: bool,
    /// A node of the cluster to join at start (`host:port`).
    pub join: Option<String>,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// Build a snapshot (and purge the log) every this many entries.
    pub snapshot_threshold: u64,
    pub proposer: ProposerConfig,
    /// The local address connections to the other nodes leave from (None: any).
    pub source_ip: Option<std::net::IpAddr>,
    /// The secret and the TLS identity: carried by every call to another node and
    /// required of every call to this one.
    pub access: ClusterAccess,
    /// Never fsync the data directory (`--unsafe-no-fsync`): benchmarks and tests only.
    pub unsafe_no_fsync: bool,
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("invalid Raft settings: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("Raft failed to start: {0}")]
    Raft(String),
    #[error("cannot listen for the cluster on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the cluster service and the cluster commands share.
pub(crate) struct NodeInner {
    pub(crate) id: NodeId,
    pub(crate) addr: String,
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) proposer: Proposer,
    pub(crate) writer: BatchWriter,
    pub(crate) network: ClusterNetwork,
    pub(crate) reader: StateReader,
    /// The log store, read for the committed index in status.
    pub(crate) log: LogStore<TypeConfig>,
    pub(crate) qos0: broadcast::Sender<bytes::Bytes>,
    /// Closed while leadership is handed over (see `handoff`).
    pub(crate) gate: Arc<WriteGate>,
    /// When this node last became leader.
    pub(crate) leader_since: Arc<LeaderSince>,
    /// Draining: never campaign again.
    pub(crate) retiring: AtomicBool,
    /// A leader not acknowledged by a quorum for this long is not trusted.
    pub(crate) quorum_lost_after: Duration,
    /// The broker's connections, once the broker has started (see [`LocalClients`]).
    pub(crate) local_clients: OnceLock<Arc<dyn LocalClients>>,
    /// When the node started, milliseconds since the Unix epoch.
    pub(crate) started_at: u64,
}

/// See [`ClusterHandle::raft_health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftHealth {
    /// The leader this node trusts (see [`ClusterHandle::leader`]).
    pub leader: Option<NodeId>,
    /// In the membership this node knows, as a voter or a learner.
    pub member: bool,
    pub voter: bool,
    pub applied: Option<u64>,
    /// The committed index this node last recorded.
    pub committed: Option<u64>,
}

/// A running node.
pub struct Node {
    inner: Arc<NodeInner>,
    storage: Storage,
    server: JoinHandle<()>,
    stop: watch::Sender<bool>,
    quorum_lost_after: Duration,
}

/// What the broker needs of the cluster: propose, read the state, find the leader and the
/// peers, forward QoS 0 messages (DESIGN §7: a small handle). Cheap to clone.
#[derive(Clone)]
pub struct ClusterHandle {
    pub(super) inner: Arc<NodeInner>,
    quorum_lost_after: Duration,
}

impl ClusterHandle {
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn proposer(&self) -> &Proposer {
        &self.inner.proposer
    }

    /// The replicated state as applied on this node.
    pub fn state(&self) -> StateReader {
        self.inner.reader.clone()
    }

    /// The leader this node follows, if it knows one it can trust: a leader (this node
    /// included) that has not heard from a quorum for an election timeout is not counted.
    pub fn leader(&self) -> Option<NodeId> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        if leader == self.inner.id {
            let limit = self.quorum_lost_after.as_millis() as u64;
            let voters = m.membership_config.membership().voter_ids().count();
            let stale = voters > 1 && m.millis_since_quorum_ack.is_none_or(|ms| ms > limit);
            if stale {
                return None;
            }
        }
        Some(leader)
    }

    /// What a load balancer's readiness check needs to know of this node's Raft.
    pub fn raft_health(&self) -> RaftHealth {
        let (voter, member) = self.inner.role_in_membership();
        let applied = self
            .inner
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map(|id| id.index);
        RaftHealth {
            leader: self.leader(),
            member,
            voter,
            applied,
            committed: self.inner.log.committed_index().ok().flatten(),
        }
    }

    /// Hands leadership to another voter if this node leads, and keeps this node from
    /// campaigning from now on: the first step of a drain (see `handoff`). Appends wait
    /// while it runs, for at most `within`.
    pub async fn hand_off_leadership(&self, within: Duration) -> HandOff {
        self.inner.hand_off(within).await
    }

    /// Bytes the node's database takes on disk (`None` if sled cannot tell).
    pub fn disk_size(&self) -> Option<u64> {
        self.inner.log.size_on_disk().ok()
    }

    /// The cluster address of member `id`.
    pub fn peer_addr(&self, id: NodeId) -> Option<String> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    /// Sends QoS 0 deliveries (bincode, as [`ClusterHandle::qos0_messages`] yields them on
    /// the other side) to the node at `addr`.
    pub async fn forward_qos0(
        &self,
        addr: &str,
        messages: bytes::Bytes,
        timeout: Duration,
    ) -> Result<(), tonic::Status> {
        let mut client = self.inner.network.client(addr)?;
        let mut request = tonic::Request::new(pb::Qos0Batch { messages });
        request.set_timeout(timeout);
        client.forward_qos0(request).await.map(|_| ())
    }

    /// QoS 0 messages forwarded to this node by the others (bincode, as sent).
    pub fn qos0_messages(&self) -> broadcast::Receiver<bytes::Bytes> {
        self.inner.qos0.subscribe()
    }
}

/// A random id that fits in a JSON number and is never 0.
fn fresh_id() -> u64 {
    (rand::random::<u64>() >> 11).max(1)
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        Node::start_with(config, Arc::default(), |_| BrokerState::default()).await
    }

    /// Starts a node whose state machine is made by `state` once the node's id is known
    /// (the broker attaches its notifier there), counting into `metrics`.
    pub async fn start_with(
        config: NodeConfig,
        metrics: Arc<RaftMetrics>,
        state: impl FnOnce(NodeId) -> BrokerState,
    ) -> Result<Node, NodeError> {
        if config.unsafe_no_fsync {
            tracing::warn!(
                "--unsafe-no-fsync: NOTHING IS FSYNCED. A crash of this machine loses \
                 acknowledged writes and can break Raft's guarantees; for benchmarks and \
                 tests only"
            );
        }
        let options = OpenOptions {
            unsafe_no_fsync: config.unsafe_no_fsync,
        };
        let storage = Storage::open_with(&config.data_dir, options)?.with_observer(metrics.clone());
        let id = storage.node_id(fresh_id)?;
        let log_store = storage.log_store::<TypeConfig>()?;
        let state_machine = storage.state_machine::<TypeConfig, _>(state(id))?;
        let reader = state_machine.reader();

        let raft_config = openraft::Config {
            cluster_name: "raftmq".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_min.as_millis() as u64,
            election_timeout_max: config.election_max.as_millis() as u64,
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_threshold),
            max_in_snapshot_log_to_keep: config.snapshot_threshold.min(1000),
            purge_batch_size: 1024,
            ..Default::default()
        }
        .validate()?;
        let network = ClusterNetwork::new(config.source_ip, config.access.clone());
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            network.clone(),
            log_store.clone(),
            state_machine,
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let gate = Arc::new(WriteGate::default());
        let writer = BatchWriter {
            raft: raft.clone(),
            id,
            network: network.clone(),
            config: config.proposer,
            gate: gate.clone(),
            metrics: metrics.clone(),
        };
        let proposer = Proposer::start(writer.clone());
        let (qos0, _) = broadcast::channel(4096);
        let inner = Arc::new(NodeInner {
            id,
            addr: config.advertise.clone(),
            raft: raft.clone(),
            proposer,
            writer,
            network,
            reader,
            log: log_store.clone(),
            qos0,
            gate,
            leader_since: Arc::default(),
            retiring: AtomicBool::new(false),
            quorum_lost_after: config.election_max,
            local_clients: OnceLock::new(),
            started_at: super::clock::now(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let service = tonic::service::interceptor::InterceptedService::new(
            pb::cluster_server::ClusterServer::new(ClusterService::new(inner.clone()))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            SecretCheck(config.access.secret.clone()),
        );
        let router = tonic::transport::Server::builder().add_service(service);
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let server = match config.access.tls.clone() {
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                tokio::spawn(async move {
                    if let Err(e) = router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                    {
                        tracing::error!("cluster server stopped: {e}");
                    }
                })
            }
            Some(tls) => {
                let incoming = super::tls::incoming(listener, tls);
                tokio::spawn(async move {
                    if let Err(e) = router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                    {
                        tracing::error!("cluster server stopped: {e}");
                    }
                })
            }
        };

        tokio::spawn(inner.leader_since.clone().track(raft.metrics()));
        tokio::spawn(RaftMetrics::clone(&metrics).follow(raft.metrics()));
        tokio::spawn(super::clock::run_ticker(
            raft.clone(),
            inner.proposer.clone(),
        ));
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        if !initialized {
            if let Some(seed) = config.join.clone() {
                tokio::spawn(join_until_member(inner.clone(), seed));
            } else if config.bootstrap {
                let members = BTreeMap::from([(id, BasicNode::new(&config.advertise))]);
                raft.initialize(members)
                    .await
                    .map_err(|e| NodeError::Raft(e.to_string()))?;
                tracing::info!(node = id, "bootstrapped a one-voter cluster");
            } else {
                tracing::info!(
                    node = id,
                    "waiting to be joined to a cluster (`raftmq cluster join`)"
                );
            }
        }
        let auth = match (config.access.tls.is_some(), config.access.secret.is_set()) {
            (true, true) => "mutual TLS and the shared secret",
            (true, false) => "mutual TLS",
            (false, true) => "the shared secret",
            (false, false) => "nothing",
        };
        tracing::info!(node = id, listen = %config.listen, advertise = %config.advertise, requires = auth, "cluster node started");
        Ok(Node {
            inner,
            storage,
            server,
            stop,
            quorum_lost_after: config.election_max,
        })
    }

    /// The handle the broker works through.
    pub fn handle(&self) -> ClusterHandle {
        ClusterHandle {
            inner: self.inner.clone(),
            quorum_lost_after: self.quorum_lost_after,
        }
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn proposer(&self) -> Proposer {
        self.inner.proposer.clone()
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    /// Read access to the replicated state as applied on this node.
    pub fn state(&self) -> StateReader {
        self.inner.reader.clone()
    }

    /// QoS 0 messages forwarded to this node by the others (bincode, as sent).
    pub fn qos0_messages(&self) -> broadcast::Receiver<bytes::Bytes> {
        self.inner.qos0.subscribe()
    }

    /// Stops the gRPC server and Raft.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // A graceful stop waits for open calls, and followers' proposal streams stay open
        // for as long as they live: give them a moment, then cut them.
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!("Raft did not shut down cleanly: {e}");
        }
        if let Err(e) = self.storage.flush().await {
            tracing::warn!("final flush failed: {e}");
        }
    }
}

/// Asks `seed` to add this node until it is a member; a fresh node cannot do anything
/// else useful, so it keeps trying (the seed may still be starting).
async fn join_until_member(inner: Arc<NodeInner>, seed: String) {
    loop {
        match inner.join(&seed).await {
            Ok(_) if inner.role_in_membership().0 => {
                tracing::info!(node = inner.id, %seed, "joined the cluster");
                return;
            }
            // Added, but the promotion is not yet visible here: check again shortly.
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(status) => {
                tracing::warn!(node = inner.id, %seed, "join failed, retrying: {}", super::network::describe(&status));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl NodeInner {
    pub(crate) fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    pub(crate) fn leader_addr(&self) -> Option<String> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    pub(crate) fn connected_clients(&self) -> Vec<pb::ConnectedClient> {
        self.local_clients
            .get()
            .map(|clients| clients.connected())
            .unwrap_or_default()
    }

    /// What the `Status` call answers.
    pub(crate) fn status(&self) -> Result<pb::StatusResponse, StoreError> {
        let digest = self.reader.digest()?;
        let metrics = self.raft.metrics().borrow().clone();
        Ok(pb::StatusResponse {
            node_id: self.id,
            addr: self.addr.clone(),
            role: format!("{:?}", metrics.state),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index,
            committed: self.log.committed_index()?,
            applied: metrics.last_applied.map(|id| id.index),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            members: self.members(),
            state_digest: digest,
            started_at: self.started_at,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    pub(crate) fn members(&self) -> Vec<pb::Member> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| pb::Member {
                node_id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// Whether this node is a voter, a learner, or neither in the membership it knows.
    pub(crate) fn role_in_membership(&self) -> (bool, bool) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        (
            membership.voter_ids().any(|v| v == self.id),
            membership.get_node(&self.id).is_some(),
        )
    }

    /// Asks `seed` to make this node a voter. Safe to repeat: a node that is already a
    /// learner (an earlier attempt got half-way) asks again to be promoted, and a voter is
    /// done. A node that belongs to a cluster of its own is refused.
    pub(crate) async fn join(&self, seed: &str) -> Result<Vec<pb::Member>, tonic::Status> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let (voter, member) = self.role_in_membership();
        if voter {
            return Ok(self.members());
        }
        if initialized && !member {
            return Err(tonic::Status::failed_precondition(
                "this node already belongs to a cluster; wipe its data directory to join another",
            ));
        }
        let mut client = self.network.client(seed)?;
        let mut request = tonic::Request::new(pb::AddNodeRequest {
            node_id: self.id,
            addr: self.addr.clone(),
        });
        // Adding waits for the new node to catch up, which can take a snapshot's transfer.
        request.set_timeout(Duration::from_secs(120));
        let reply = client.add_node(request).await?;
        Ok(reply.into_inner().members)
    }

    /// On the leader: adds `id` as a learner, waits until it has caught up, then makes it a
    /// voter. openraft refuses a second membership change while one is in progress, which
    /// keeps changes one at a time.
    pub(crate) async fn add_node(&self, id: NodeId, addr: String) -> Result<(), tonic::Status> {
        let internal = |e: &dyn std::fmt::Display| tonic::Status::unavailable(e.to_string());
        let (voter, learner) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voter = membership.voter_ids().any(|v| v == id);
            (voter, !voter && membership.get_node(&id).is_some())
        };
        if voter {
            return Ok(());
        }
        if !learner {
            self.raft
                .add_learner(id, BasicNode::new(addr), true)
                .await
                .map_err(|e| internal(&e))?;
        }
        let change = ChangeMembers::AddVoterIds(std::collections::BTreeSet::from([id]));
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| internal(&e))?;
        Ok(())
    }

    /// On the leader: removes `id` from the voters (or the learners).
    pub(crate) async fn remove_node(&self, id: NodeId) -> Result<(), tonic::Status> {
        let (is_voter, voters, is_node) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters: Vec<NodeId> = membership.voter_ids().collect();
            (
                voters.contains(&id),
                voters.len(),
                membership.get_node(&id).is_some(),
            )
        };
        if !is_node {
            return Err(tonic::Status::not_found(format!(
                "node {id} is not a member"
            )));
        }
        if is_voter && voters <= 1 {
            return Err(tonic::Status::failed_precondition(
                "refusing to remove the last voter",
            ));
        }
        let ids = std::collections::BTreeSet::from([id]);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        if id == self.id {
            // Out of the cluster, this node can no longer propose; its sessions stay
            // with it until their connections end (a leaving leader normally hands over
            // first, and the new leader removes it).
            tracing::warn!("removed itself as leader: its sessions are not taken offline");
            return Ok(());
        }
        // Its clients must reconnect elsewhere: take its sessions offline (wills, expiry).
        super::clock::node_down(&self.proposer, id).await;
        Ok(())
    }
}
