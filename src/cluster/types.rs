//! The openraft type configuration of the broker's one Raft group: a log entry carries a
//! batch of commands (group commit) and applying it answers one outcome per command.

use crate::cluster::command::{BatchOutcome, CommandBatch};

/// A node's id in the Raft group: generated on first start and kept in its data directory.
pub type NodeId = u64;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = CommandBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
);
