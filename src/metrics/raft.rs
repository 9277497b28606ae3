//! The cluster's metrics: Raft's term, leader and indexes (followed from openraft's
//! metrics watch and read at scrape time), the group commit's batches and latency, and
//! the storage's fsyncs and snapshots (through the storage crate's observer hook).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use raftmq_storage::StorageObserver;
use tokio::sync::watch;

use super::family::register_gauges;
use crate::cluster::types::NodeId;

/// openraft's metrics as its watch carries them.
type RaftWatch = watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>;

/// The cluster's metrics; the storage's observer too. Clones share the values.
#[derive(Debug, Clone)]
pub struct RaftMetrics {
    pub term: Gauge,
    /// 0 while no leader is known.
    pub leader: Gauge,
    pub is_leader: Gauge,
    pub leader_changes: Counter,
    pub last_log_index: Gauge,
    pub commit_index: Gauge,
    pub applied_index: Gauge,
    pub apply_lag: Gauge,
    /// Commands per proposed entry.
    pub batch_size: Histogram,
    /// From a batch's submission to its outcome, seconds.
    pub proposal_latency: Histogram,
    pub fsync_latency: Histogram,
    pub snapshots_built: Counter,
    pub snapshots_installed: Counter,
    pub disk_bytes: Gauge,
}

impl Default for RaftMetrics {
    fn default() -> Self {
        RaftMetrics {
            term: Gauge::default(),
            leader: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            last_log_index: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            apply_lag: Gauge::default(),
            // 1 to 2048 commands.
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            // 100 µs to about 6.5 s.
            proposal_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
            // 50 µs to about 1.6 s.
            fsync_latency: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            snapshots_built: Counter::default(),
            snapshots_installed: Counter::default(),
            disk_bytes: Gauge::default(),
        }
    }
}

impl RaftMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        let gauges = [
            ("raftmq_raft_term", "The current Raft term", &self.term),
            (
                "raftmq_raft_leader",
                "The id of the leader this node follows (0: none known)",
                &self.leader,
            ),
            (
                "raftmq_raft_is_leader",
                "1 if this node leads",
                &self.is_leader,
            ),
            (
                "raftmq_raft_last_log_index",
                "The index of the last entry in this node's log",
                &self.last_log_index,
            ),
            (
                "raftmq_raft_commit_index",
                "The committed index this node last recorded",
                &self.commit_index,
            ),
            (
                "raftmq_raft_applied_index",
                "The index of the last entry applied on this node",
                &self.applied_index,
            ),
            (
                "raftmq_raft_apply_lag",
                "Committed entries not yet applied on this node",
                &self.apply_lag,
            ),
        ];
        register_gauges(registry, gauges);
        registry.register(
            "raftmq_raft_leader_changes",
            "Times the leader this node knows changed",
            self.leader_changes.clone(),
        );
        registry.register(
            "raftmq_raft_proposal_batch_size",
            "Commands per proposed log entry (group commit)",
            self.batch_size.clone(),
        );
        registry.register_with_unit(
            "raftmq_raft_proposal_latency",
            "From a batch's submission to its outcome",
            Unit::Seconds,
            self.proposal_latency.clone(),
        );
        registry.register_with_unit(
            "raftmq_storage_fsync_latency",
            "One flush (fsync) of the node's database",
            Unit::Seconds,
            self.fsync_latency.clone(),
        );
        registry.register(
            "raftmq_raft_snapshots_built",
            "Snapshots built on this node",
            self.snapshots_built.clone(),
        );
        registry.register(
            "raftmq_raft_snapshots_installed",
            "Snapshots from the leader installed on this node",
            self.snapshots_installed.clone(),
        );
        registry.register_with_unit(
            "raftmq_storage_disk",
            "The node's database on disk, log and state (sled's estimate)",
            Unit::Bytes,
            self.disk_bytes.clone(),
        );
    }

    /// Follows openraft's metrics until the node stops: term, leader and log indexes as
    /// they change, and each change of leader.
    pub(crate) async fn follow(self, mut raft: RaftWatch) {
        let mut leader = None;
        loop {
            {
                let m = raft.borrow_and_update();
                self.term.set(gauge(m.current_term));
                self.leader.set(gauge(m.current_leader.unwrap_or(0)));
                self.is_leader
                    .set(i64::from(m.current_leader == Some(m.id)));
                self.last_log_index
                    .set(gauge(m.last_log_index.unwrap_or(0)));
                self.applied_index
                    .set(gauge(m.last_applied.map_or(0, |id| id.index)));
                if m.current_leader.is_some() && m.current_leader != leader {
                    self.leader_changes.inc();
                }
                if m.current_leader.is_some() {
                    leader = m.current_leader;
                }
            }
            if raft.changed().await.is_err() {
                return;
            }
        }
    }

    /// Reads the committed index and the disk size, at scrape time.
    pub(crate) fn refresh(&self, committed: Option<u64>, disk_bytes: Option<u64>) {
        let committed = committed.unwrap_or(0);
        self.commit_index.set(gauge(committed));
        let applied = self.applied_index.get();
        self.apply_lag.set((gauge(committed) - applied).max(0));
        if let Some(bytes) = disk_bytes {
            self.disk_bytes.set(gauge(bytes));
        }
    }
}

impl StorageObserver for RaftMetrics {
    fn flushed(&self, took: Duration) {
        self.fsync_latency.observe(took.as_secs_f64());
    }

    fn snapshot_built(&self) {
        self.snapshots_built.inc();
    }

    fn snapshot_installed(&self) {
        self.snapshots_installed.inc();
    }
}

/// A gauge value: indexes and ids beyond `i64::MAX` do not occur (ids are 53-bit).
fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
