//! The node's Prometheus metrics, served at `/metrics` by the HTTP listener (README,
//! "Metrics and monitoring"). One [`Metrics`] per node, made at start-up with every
//! family registered once and every labelled counter the hot paths touch already made
//! ([`family`]), so counting a packet is one atomic add. Counters are bumped where things
//! happen ([`broker`] by the connection tasks, [`raft`] by the group commit, the storage
//! observer and a task following openraft's metrics); gauges of the replicated state are
//! read when `/metrics` is scraped ([`Metrics::encode`]).

pub mod broker;
mod family;
pub mod raft;

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use raftmq_storage::StoreError;

use crate::cluster::node::ClusterHandle;
use crate::cluster::state::BrokerReader;

pub use broker::{BrokerMetrics, Refused, Totals};
pub use raft::RaftMetrics;

/// Gauges of the replicated state and the subscription index, read at scrape time.
#[derive(Debug, Clone, Default)]
struct StateGauges {
    sessions: Gauge,
    subscriptions: Gauge,
    retained: Gauge,
    queued: Gauge,
    queued_bytes: Gauge,
    queue_dropped: Gauge,
    in_flight: Gauge,
}

/// Every metric of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub broker: BrokerMetrics,
    pub raft: Arc<RaftMetrics>,
    state: StateGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Arc::default())
    }
}

impl Metrics {
    /// The node's metrics around `raft`, the part the cluster node was given.
    pub fn new(raft: Arc<RaftMetrics>) -> Self {
        let mut registry = Registry::default();
        let broker = BrokerMetrics::default();
        broker.register(&mut registry);
        raft.register(&mut registry);
        let state = StateGauges::default();
        family::register_gauges(
            &mut registry,
            [
                (
                    "raftmq_sessions",
                    "Sessions in the cluster, online and offline",
                    &state.sessions,
                ),
                (
                    "raftmq_subscriptions",
                    "Subscriptions in the cluster (each shared group member once)",
                    &state.subscriptions,
                ),
                (
                    "raftmq_retained_messages",
                    "Retained messages in the cluster",
                    &state.retained,
                ),
                (
                    "raftmq_queued_messages",
                    "Queue entries of persistent sessions waiting for their in-flight window",
                    &state.queued,
                ),
                (
                    "raftmq_queued_bytes",
                    "Payload bytes of those waiting queue entries",
                    &state.queued_bytes,
                ),
                (
                    "raftmq_queue_dropped_messages",
                    "Messages the persistent sessions' queue limits dropped, summed over the sessions that exist now",
                    &state.queue_dropped,
                ),
                (
                    "raftmq_in_flight_messages",
                    "Queue entries of persistent sessions sent and not yet acknowledged",
                    &state.in_flight,
                ),
            ],
        );
        Metrics {
            registry,
            broker,
            raft,
            state,
        }
    }

    /// The text exposition, with the state's gauges read now from `cluster`'s applied
    /// state. Cost: one record per session with a queue.
    pub fn encode(
        &self,
        cluster: &ClusterHandle,
        subscriptions: usize,
    ) -> Result<String, MetricsError> {
        let reader = BrokerReader::new(cluster.state());
        let health = cluster.raft_health();
        self.raft.refresh(health.committed, cluster.disk_size());
        self.state.sessions.set(count(reader.session_count()?));
        self.state.subscriptions.set(count(subscriptions as u64));
        self.state.retained.set(count(reader.retained_count()?));
        let queues = reader.queue_totals()?;
        self.state.queued.set(count(queues.queued));
        self.state.queued_bytes.set(count(queues.queued_bytes));
        self.state.queue_dropped.set(count(queues.dropped));
        self.state.in_flight.set(count(queues.in_flight));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|_| MetricsError::Encode)?;
        Ok(out)
    }
}

/// Why `/metrics` could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("reading the state: {0}")]
    State(#[from] StoreError),
    #[error("the metrics did not encode")]
    Encode,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
