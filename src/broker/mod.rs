//! The broker on one node: the MQTT listener and its accept loop, one task per
//! connection, and the node-wide parts the connections share — the [`Registry`] of
//! connections that applied outcomes are routed to, the QoS 0 router, and the start-up
//! recovery that takes this node's sessions from before a restart offline.
//!
//! Wiring only: the protocol is in `session/`, the replicated state in `cluster/`.

mod connection;
mod qos0;
mod registry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::clock;
use crate::cluster::command::{Command, Disconnect};
use crate::cluster::node::ClusterHandle;
use crate::cluster::state::SubscriptionIndex;
use crate::session::Limits;

pub use registry::Registry;

/// How the broker listens and what it allows.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub mqtt_listen: SocketAddr,
    pub limits: Limits,
}

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every connection task of the node shares.
pub(crate) struct Shared {
    pub(crate) cluster: ClusterHandle,
    pub(crate) registry: Arc<Registry>,
    pub(crate) qos0: qos0::Qos0Router,
    pub(crate) limits: Limits,
    ready: AtomicBool,
    connections: AtomicU64,
}

impl Shared {
    /// Whether a CONNECT may be proposed: the start-up recovery is done and a leader is
    /// known (DESIGN §3 rule 7).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.cluster.leader().is_some()
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
    accept: JoinHandle<()>,
    recovery: JoinHandle<()>,
    local_addr: SocketAddr,
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
    ) -> Result<Broker, BrokerError> {
        let listener = TcpListener::bind(config.mqtt_listen)
            .await
            .map_err(|source| BrokerError::Listen {
                addr: config.mqtt_listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| BrokerError::Listen {
                addr: config.mqtt_listen,
                source,
            })?;
        let shared = Arc::new(Shared {
            qos0: qos0::Qos0Router::new(cluster.clone(), index, registry.clone()),
            cluster: cluster.clone(),
            registry: registry.clone(),
            limits: config.limits,
            ready: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        tokio::spawn(qos0::receive(cluster.clone(), registry));
        tokio::spawn(settle_orphans(shared.clone(), orphans));
        // Listening at once: until recovery is done every CONNECT is refused with "server
        // unavailable" (the connection checks `is_ready`), so a client is told rather than
        // left waiting, and no session is created here before this node's old ones end.
        let accept = tokio::spawn(accept(listener, shared.clone()));
        tracing::info!(listen = %local_addr, "MQTT listener accepting");
        let recovery = tokio::spawn({
            let shared = shared.clone();
            async move {
                recover(&shared).await;
                shared.ready.store(true, Ordering::Release);
                tracing::info!("start-up recovery done: accepting sessions");
            }
        });
        Ok(Broker {
            shared,
            accept,
            recovery,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Stops accepting, tells every client the server is shutting down (5.0 reason 0x8B)
    /// and gives the connections `grace` to end their sessions in the log.
    pub async fn shutdown(self, grace: Duration) {
        self.accept.abort();
        self.recovery.abort();
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

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection::serve(stream, peer, shared.clone()));
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
