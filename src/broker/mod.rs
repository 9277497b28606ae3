//! The broker on one node: the MQTT listener and its accept loop, one task per
//! connection, and the node-wide parts the connections share — the [`Registry`] of
//! connections that applied outcomes are routed to, the QoS 0 router, and the start-up
//! recovery that takes this node's sessions from before a restart offline.
//!
//! Wiring only: the protocol is in `session/`, the replicated state in `cluster/`.

mod admission;
mod clients;
mod connection;
mod output;
mod qos0;
mod rate;
mod read_room;
mod registry;
mod retain_limits;
mod sys;
mod writing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::acl::AclHandle;
use crate::auth::{AuthConfig, Authenticator};
use crate::cluster::clock;
use crate::cluster::command::{Command, Disconnect, UserChange};
use crate::cluster::handoff::HandOff;
use crate::cluster::node::ClusterHandle;
use crate::cluster::state::SubscriptionIndex;
use crate::metrics::{Metrics, MetricsError, Refused};
use crate::session::Limits;
use crate::transport::tls::{Tls, TlsError, TlsFiles};
use crate::transport::{Kind, Listener, ListenerSpec};

pub use admission::ConnectionLimits;
pub use clients::ClientInfo;
pub use registry::Registry;

/// How the broker listens and what it allows.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The MQTT listeners (TCP, TLS, WebSocket, WebSocket over TLS).
    pub listeners: Vec<ListenerSpec>,
    /// The certificate of the TLS listeners.
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    pub connections: ConnectionLimits,
    pub auth: AuthConfig,
    /// The live ACL; the state machine keeps its cluster rules current.
    pub acl: AclHandle,
    /// How often the `$SYS` topics are published (`None`: never).
    pub sys_interval: Option<Duration>,
}

/// How long a drain may pause appends to hand leadership over.
const HAND_OFF_WITHIN: Duration = Duration::from_secs(5);

/// How often the TLS files are checked for a change.
const TLS_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot listen for MQTT ({kind}) on {addr}: {source}")]
    Listen {
        kind: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// What every connection task of the node shares.
pub(crate) struct Shared {
    pub(crate) cluster: ClusterHandle,
    pub(crate) registry: Arc<Registry>,
    pub(crate) qos0: qos0::Qos0Router,
    pub(crate) limits: Limits,
    pub(crate) auth: Authenticator,
    pub(crate) acl: AclHandle,
    pub(crate) admission: Arc<admission::Admission>,
    pub(crate) clients: Arc<clients::Clients>,
    pub(crate) retain_limits: retain_limits::RetainLimits,
    /// What all connections have encoded for their clients and not yet written.
    pub(crate) output: Arc<output::OutputBudget>,
    pub(crate) metrics: Arc<Metrics>,
    ready: AtomicBool,
    /// Draining: CONNECTs are refused and the health check reports 503.
    draining: AtomicBool,
    /// When a drain under way disconnects the clients.
    drain_ends: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The drain's leadership hand-off, run once.
    hand_off: tokio::sync::OnceCell<HandOff>,
    connections: AtomicU64,
}

impl Shared {
    /// Whether a CONNECT may be proposed: the start-up recovery is done and a leader is
    /// known (DESIGN §3 rule 7).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && self.cluster.leader().is_some()
    }

    /// Starts draining unless a drain is under way; returns when it disconnects the
    /// clients, and whether this call started it.
    fn start_drain(&self, grace: Duration) -> (tokio::time::Instant, bool) {
        // Held for two field operations only; a poisoned lock still holds a valid time.
        let mut ends = self.drain_ends.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = *ends {
            return (at, false);
        }
        let at = tokio::time::Instant::now() + grace;
        *ends = Some(at);
        self.draining.store(true, Ordering::Release);
        (at, true)
    }

    /// Hands Raft leadership to another node if this one leads (once per drain; callers
    /// that come later wait for the same result).
    async fn hand_off(&self) -> HandOff {
        self.hand_off
            .get_or_init(|| async {
                let outcome = self.cluster.hand_off_leadership(HAND_OFF_WITHIN).await;
                tracing::info!(?outcome, "drain: leadership hand-off");
                outcome
            })
            .await
            .clone()
    }

    pub(crate) fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }

    /// Proposes the end of a connection in the background: the connection task is done,
    /// and a `Disconnect` that fails leaves the session to the next takeover or
    /// `NodeDown`.
    pub(crate) fn propose_disconnect(&self, disconnect: Disconnect) {
        let proposer = self.cluster.proposer().clone();
        tokio::spawn(async move {
            let client = disconnect.client_id.clone();
            if let Err(e) = proposer.propose(Command::Disconnect(disconnect)).await {
                tracing::info!(%client, "DISCONNECT not committed: {e}");
            }
        });
    }

    /// Replaces a user's imported Mosquitto hash with the argon2id one made at login, in
    /// the background; unless the password changed meanwhile (`only_if`).
    pub(crate) fn upgrade_password_hash(&self, upgrade: crate::auth::Upgrade) {
        let proposer = self.cluster.proposer().clone();
        tokio::spawn(async move {
            let change = UserChange::SetPassword {
                username: upgrade.username.clone(),
                hash: upgrade.new_hash,
                only_if: Some(upgrade.old_hash),
            };
            match proposer.propose(Command::User(change)).await {
                Ok(_) => {
                    tracing::info!(user = %upgrade.username, "password hash upgraded to argon2id")
                }
                Err(e) => {
                    tracing::info!(user = %upgrade.username, "password hash upgrade not committed: {e}")
                }
            }
        });
    }

    /// A session of this node whose connection is gone before it was bound.
    pub(crate) fn disconnect_orphan(&self, client_id: String, epoch: u64) {
        self.propose_disconnect(Disconnect {
            client_id,
            epoch,
            publish_will: true,
            session_expiry: None,
            now: clock::now(),
        });
    }
}

/// A running broker.
pub struct Broker {
    shared: Arc<Shared>,
    /// The accept loops, the recovery and the TLS reloader.
    tasks: Vec<JoinHandle<()>>,
    local_addrs: Vec<(Kind, SocketAddr)>,
}

impl Broker {
    /// Listens, and takes this node's sessions from before a restart offline in the
    /// background; clients are accepted as sessions once that is done.
    /// `orphans` is the receiver [`Registry::new`] returned.
    pub async fn start(
        config: BrokerConfig,
        cluster: ClusterHandle,
        registry: Arc<Registry>,
        index: SubscriptionIndex,
        orphans: mpsc::UnboundedReceiver<(String, u64)>,
        metrics: Arc<Metrics>,
    ) -> Result<Broker, BrokerError> {
        let tls = config.tls.map(Tls::load).transpose()?.map(Arc::new);
        let mut listeners = Vec::new();
        for spec in config.listeners {
            let (kind, addr) = (spec.kind.name(), spec.bind);
            let listener = Listener::bind(spec, tls.clone())
                .await
                .map_err(|source| BrokerError::Listen { kind, addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| BrokerError::Listen { kind, addr, source })?;
            listeners.push((listener, local));
        }
        let shared = Arc::new(Shared {
            qos0: qos0::Qos0Router::new(cluster.clone(), index, registry.clone(), metrics.clone()),
            cluster: cluster.clone(),
            registry: registry.clone(),
            limits: config.limits,
            auth: Authenticator::counting(config.auth, metrics.broker.login_counts()),
            acl: config.acl,
            admission: admission::Admission::new(config.connections),
            output: output::OutputBudget::new(config.connections.max_buffered_bytes),
            retain_limits: retain_limits::RetainLimits::new(
                config.connections.max_retained_messages,
                config.connections.max_retained_payload as usize,
            ),
            clients: Arc::default(),
            metrics,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            drain_ends: std::sync::Mutex::new(None),
            hand_off: tokio::sync::OnceCell::new(),
            connections: AtomicU64::new(0),
        });
        cluster.set_local_clients(shared.clients.clone());
        tokio::spawn(qos0::receive(cluster.clone(), registry));
        tokio::spawn(settle_orphans(shared.clone(), orphans));
        // Listening at once: until recovery is done every CONNECT is refused with "server
        // unavailable" (the connection checks `is_ready`), so a client is told rather than
        // left waiting, and no session is created here before this node's old ones end.
        let mut tasks = Vec::new();
        let mut local_addrs = Vec::new();
        for (listener, addr) in listeners {
            tracing::info!(listener = listener.kind().name(), listen = %addr, "MQTT listener accepting");
            local_addrs.push((listener.kind(), addr));
            tasks.push(tokio::spawn(accept(listener, shared.clone())));
        }
        if let Some(tls) = tls {
            tasks.push(tls.spawn_reloader(TLS_POLL));
        }
        if let Some(interval) = config.sys_interval {
            tasks.push(tokio::spawn(sys::publish_every(shared.clone(), interval)));
        }
        tasks.push(tokio::spawn({
            let shared = shared.clone();
            async move {
                recover(&shared).await;
                shared.ready.store(true, Ordering::Release);
                tracing::info!("start-up recovery done: accepting sessions");
            }
        }));
        Ok(Broker {
            shared,
            tasks,
            local_addrs,
        })
    }

    /// The address of the first listener of `kind`.
    pub fn local_addr(&self, kind: Kind) -> Option<SocketAddr> {
        self.local_addrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, addr)| *addr)
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// What the HTTP listener reads and the drain it starts.
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Drains (503 to the balancer, CONNECT refused) for `drain_grace` so the balancer
    /// takes the node out, then stops accepting, tells every client the server is
    /// shutting down (5.0 reason 0x8B) and gives the connections `grace` to end their
    /// sessions in the log.
    pub async fn shutdown(self, drain_grace: Duration, grace: Duration) {
        // A drain under way (`raftmq node drain`) keeps its own end.
        let (ends, _) = self.shared.start_drain(drain_grace);
        tracing::info!(?drain_grace, "draining before shutdown");
        tokio::join!(self.shared.hand_off(), tokio::time::sleep_until(ends));
        for task in &self.tasks {
            task.abort();
        }
        self.shared.ready.store(false, Ordering::Release);
        self.shared.registry.shutdown_all();
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.registry.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The Disconnects just proposed need a moment to reach the log.
        tokio::time::sleep(Duration::from_millis(200).min(grace)).await;
    }
}

/// The broker as the HTTP listener sees it.
#[derive(Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

/// See [`BrokerHandle::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    /// Start-up recovery is done: CONNECTs are answered.
    pub accepting: bool,
    pub draining: bool,
    /// Connections bound to a session.
    pub connections: usize,
}

impl BrokerHandle {
    pub fn status(&self) -> BrokerStatus {
        BrokerStatus {
            accepting: self.shared.ready.load(Ordering::Acquire),
            draining: self.shared.draining.load(Ordering::Acquire),
            connections: self.shared.registry.connections(),
        }
    }

    /// The node's metrics in Prometheus' text format, the state's gauges read now.
    pub fn metrics(&self) -> Result<String, MetricsError> {
        let shared = &self.shared;
        shared
            .metrics
            .broker
            .output_buffered
            .set(i64::try_from(shared.output.total()).unwrap_or(i64::MAX));
        shared
            .metrics
            .encode(&shared.cluster, shared.qos0.subscription_count())
    }

    /// The clients connected to this node, by client id.
    pub fn clients(&self) -> Vec<ClientInfo> {
        self.shared.clients.list()
    }

    /// Publishes `message` as the broker itself (the HTTP API), by the path a client's
    /// PUBLISH takes: QoS 1 and 2 (and a retained QoS 0 message's retained store) through
    /// the log, answered once committed; QoS 0 routed to the subscribers directly. The
    /// log's outcome, if it went through the log.
    pub async fn publish(
        &self,
        message: crate::cluster::command::Message,
    ) -> Result<Option<crate::cluster::command::Outcome>, crate::cluster::proposer::ProposeError>
    {
        let now = clock::now();
        let qos0 = message.qos == 0;
        let through_log = !qos0 || message.retain;
        let outcome = if through_log {
            let command = Command::Publish(crate::cluster::command::Publish {
                from: None,
                packet_id: None,
                message: message.clone(),
                now,
            });
            Some(self.shared.cluster.proposer().propose(command).await?)
        } else {
            None
        };
        if qos0 {
            // No client published it, and no session has an empty client id (the broker
            // assigns one): no "no local" subscription excludes it.
            self.shared.qos0.route(Arc::new(message), "", now);
        }
        Ok(outcome)
    }

    /// Starts draining: from now on the health check reports 503 and CONNECTs are refused
    /// ("server unavailable"), Raft leadership moves to another node if this one leads
    /// (and never comes back before a restart); after `grace` every client is disconnected (5.0 reason
    /// 0x8B) so it reconnects through the balancer to another node. The node stays in the
    /// cluster. Returns false if the node was already draining.
    pub fn drain(&self, grace: Duration) -> bool {
        let (ends, started) = self.shared.start_drain(grace);
        if !started {
            return false;
        }
        tracing::info!(
            ?grace,
            "draining: clients are disconnected after the grace period"
        );
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::join!(shared.hand_off(), tokio::time::sleep_until(ends));
            shared.registry.shutdown_all();
            tracing::info!("drained: clients told to reconnect elsewhere");
        });
        true
    }
}

async fn accept(listener: Listener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok(incoming) => {
                let shared = shared.clone();
                let task = async move {
                    let socket_peer = incoming.socket_peer();
                    // Boxed, and freed once done: inline, the TLS and WebSocket handshakes
                    // would size the task of every idle connection (several KiB).
                    let handshake = Box::pin(incoming.handshake());
                    match handshake.await {
                        Ok((stream, peer)) => {
                            let _admitted = match shared.admission.admit(peer.addr.ip()) {
                                Ok(admitted) => admitted,
                                Err(over) => {
                                    shared.metrics.broker.refused(match over {
                                        admission::Over::Node => Refused::NodeLimit,
                                        admission::Over::Address => Refused::AddressLimit,
                                    });
                                    tracing::warn!(peer = %peer.addr, ?over, "connection closed: over the node's or this address's connection limit");
                                    return;
                                }
                            };
                            connection::serve(stream, peer, shared).await
                        }
                        Err(e) => tracing::debug!(peer = %socket_peer, "connection closed: {e}"),
                    }
                };
                tokio::spawn(task);
            }
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Takes the sessions this node owned before it started offline (their connections died
/// with the old process): `NodeDown` for this node, before any CONNECT is accepted, so
/// it cannot catch a new connection. Waits for a leader as long as it takes.
async fn recover(shared: &Shared) {
    let me = shared.cluster.id();
    loop {
        match shared
            .cluster
            .proposer()
            .propose(Command::NodeDown {
                node: me,
                now: clock::now(),
            })
            .await
        {
            Ok(crate::cluster::command::Outcome::NodeDowned {
                remaining: false, ..
            }) => return,
            Ok(crate::cluster::command::Outcome::NodeDowned {
                remaining: true, ..
            }) => {}
            Ok(other) => {
                tracing::warn!("unexpected outcome of the start-up NodeDown: {other:?}");
                return;
            }
            Err(e) => {
                tracing::info!("waiting for the cluster before accepting clients: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn settle_orphans(shared: Arc<Shared>, mut orphans: mpsc::UnboundedReceiver<(String, u64)>) {
    while let Some((client_id, epoch)) = orphans.recv().await {
        tracing::debug!(client = %client_id, epoch, "session without a connection: disconnecting");
        shared.disconnect_orphan(client_id, epoch);
    }
}
