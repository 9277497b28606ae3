//! A small key-value application on the real store, shared by the storage tests.

#![allow(dead_code, unreachable_pub)]

use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId};
use raftmq_storage::{Application, StateReader, StateTx, StoreError, Table};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    Set { key: String, value: String },
    Delete { key: String },
}

openraft::declare_raft_types!(
    pub Kv:
        D = KvOp,
        R = Option<String>,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<Kv>,
        SnapshotData = tokio::fs::File,
);

pub const VALUES: Table = Table::new(1);

/// Applies sets and deletes; answers with the previous value. Counts keys in memory so a
/// test can see `reset` and `committed` being called.
#[derive(Default)]
pub struct KvApp {
    pub keys: usize,
    pub resets: usize,
}

impl Application<Kv> for KvApp {
    fn apply(
        &mut self,
        tx: &mut StateTx<'_>,
        _log_id: &LogId<u64>,
        op: &KvOp,
    ) -> Result<Option<String>, StoreError> {
        let key = match op {
            KvOp::Set { key, .. } | KvOp::Delete { key } => key,
        };
        let previous = tx
            .get(VALUES, key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        match op {
            KvOp::Set { value, .. } => {
                tx.insert(VALUES, key.as_bytes(), value.clone().into_bytes())
            }
            KvOp::Delete { .. } => tx.remove(VALUES, key.as_bytes()),
        }
        Ok(previous)
    }

    fn empty_response(&self) -> Option<String> {
        None
    }

    fn reset(&mut self, state: &StateReader) -> Result<(), StoreError> {
        self.keys = state.scan_prefix(VALUES, b"")?.len();
        self.resets += 1;
        Ok(())
    }
}

pub fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub fn set(term: u64, index: u64, key: &str, value: &str) -> Entry<Kv> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(KvOp::Set {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// Opens a data directory that this process had open a moment ago: sled's flusher thread
/// lets go of the directory's lock shortly after the last handle is dropped.
pub fn reopen(dir: &std::path::Path) -> raftmq_storage::Storage {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match raftmq_storage::Storage::open(dir) {
            Ok(storage) => return storage,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen {}: {e}", dir.display()),
        }
    }
}
