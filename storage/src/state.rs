//! The state machine's data as the application sees it: tables of keys and values, a
//! transaction that collects one batch's writes, and a reader for everything else.
//!
//! The application (the broker's command `apply`) implements [`Application`]; the store
//! calls it for every normal entry, inside one [`StateTx`] per batch of entries.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use openraft::{LogId, RaftTypeConfig};

use crate::StoreError;

/// One stored (key, value) pair; keys come without their table prefix.
pub type Record = (Vec<u8>, Vec<u8>);

/// A table of the state machine: a one-byte key prefix in the state tree. Prefix 0 is the
/// store's own (last applied, membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(u8);

impl Table {
    /// The store's own table.
    pub(crate) const META: Table = Table(0);

    /// An application table. Prefix 0 is reserved for the store.
    pub const fn new(prefix: u8) -> Table {
        assert!(prefix != 0, "table prefix 0 is reserved for the store");
        Table(prefix)
    }

    pub(crate) fn key(self, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(1 + key.len());
        full.push(self.0);
        full.extend_from_slice(key);
        full
    }
}

/// What the state machine does with each command. Implemented by the broker.
pub trait Application<C: RaftTypeConfig>: Send + Sync + 'static {
    /// Applies one command's data. Must be deterministic (no clock, no randomness, no I/O
    /// but `tx`) so every replica reaches the same state. In-memory indexes derived from the
    /// state (a subscription trie) may be updated here, so that later commands of the same
    /// batch see them; `tx` is never re-run, and if committing it fails the store reports
    /// a storage error, which stops the node.
    fn apply(
        &mut self,
        tx: &mut StateTx<'_>,
        log_id: &LogId<u64>,
        data: &C::D,
    ) -> Result<C::R, StoreError>;

    /// The response for an entry that carries no command (blank or membership).
    fn empty_response(&self) -> C::R;

    /// Called once a batch's writes are in the store, with its responses, in log order:
    /// the place for effects that must wait until the state is stored (waking the
    /// connections that deliver what was just routed).
    fn committed(&mut self, _responses: &[C::R]) {}

    /// The state was loaded at start or replaced by a snapshot: rebuild in-memory indexes.
    fn reset(&mut self, _state: &StateReader) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The writes of one batch of entries, not yet in the store. Reads see the batch's own
/// writes first, then the tree. The store turns it into one atomic sled `Batch`.
pub struct StateTx<'a> {
    tree: &'a sled::Tree,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> StateTx<'a> {
    pub(crate) fn new(tree: &'a sled::Tree) -> Self {
        StateTx {
            tree,
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(&table.key(key))
    }

    fn get_raw(&self, full: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.pending.get(full) {
            return Ok(value.clone());
        }
        Ok(self.tree.get(full)?.map(|v| v.to_vec()))
    }

    pub fn insert(&mut self, table: Table, key: &[u8], value: Vec<u8>) {
        self.pending.insert(table.key(key), Some(value));
    }

    pub fn remove(&mut self, table: Table, key: &[u8]) {
        self.pending.insert(table.key(key), None);
    }

    /// Every (key, value) of `table` whose key starts with `prefix`, in key order, with the
    /// batch's own writes applied. Keys are returned without the table prefix.
    pub fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<Record>, StoreError> {
        let start = table.key(prefix);
        let mut merged = BTreeMap::new();
        for item in self.tree.scan_prefix(&start) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        let upper = prefix_end(&start);
        let range = (
            Bound::Included(start.clone()),
            upper.map_or(Bound::Unbounded, Bound::Excluded),
        );
        for (k, v) in self.pending.range(range) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged
            .into_iter()
            .map(|(k, v)| (k[1..].to_vec(), v))
            .collect())
    }

    /// Every (key, value) of `table` with `from <= key < to`, in key order, with the batch's
    /// own writes applied, at most `limit` of them (an expiry index read a slice at a time).
    pub fn scan_range(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (start, end) = (table.key(from), table.key(to));
        let mut merged = BTreeMap::new();
        // Read `limit` more than needed from the tree: pending removals may hide some.
        let deleted = self
            .pending
            .range(start.clone()..end.clone())
            .filter(|(_, v)| v.is_none())
            .count();
        for item in self
            .tree
            .range(start.clone()..end.clone())
            .take(limit + deleted)
        {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self.pending.range(start..end) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged
            .into_iter()
            .take(limit)
            .map(|(k, v)| (k[1..].to_vec(), v))
            .collect())
    }

    pub(crate) fn put_meta(&mut self, key: &[u8], value: Vec<u8>) {
        self.pending.insert(Table::META.key(key), Some(value));
    }

    pub(crate) fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.pending {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}

/// The smallest key greater than every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Read access to the current state, for everything outside `apply` (routing lookups,
/// status, tests). Follows the state across snapshot installs.
#[derive(Clone)]
pub struct StateReader {
    pub(crate) current: Arc<RwLock<sled::Tree>>,
}

impl StateReader {
    fn tree(&self) -> sled::Tree {
        // A poisoned lock only means a panic elsewhere while swapping trees; the tree
        // handle inside is still whole.
        match self.current.read() {
            Ok(tree) => tree.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree().get(table.key(key))?.map(|v| v.to_vec()))
    }

    /// Every (key, value) of `table` starting with `prefix`, keys without the table prefix.
    pub fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<Record>, StoreError> {
        self.tree()
            .scan_prefix(table.key(prefix))
            .map(|item| {
                let (k, v) = item?;
                Ok((k[1..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// A checksum of the whole state (application tables and the store's own), equal on
    /// two replicas exactly when they hold the same state, barring CRC collisions.
    pub fn digest(&self) -> Result<u32, StoreError> {
        let mut hasher = crc32fast::Hasher::new();
        for item in self.tree().iter() {
            let (k, v) = item?;
            hasher.update(&(k.len() as u64).to_be_bytes());
            hasher.update(&k);
            hasher.update(&(v.len() as u64).to_be_bytes());
            hasher.update(&v);
        }
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn tx_reads_its_own_writes_and_scans_merge() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let a = Table::new(1);
        let b = Table::new(2);
        tree.insert(a.key(b"k1"), b"old".to_vec()).unwrap();
        tree.insert(a.key(b"k2"), b"gone".to_vec()).unwrap();
        tree.insert(b.key(b"k1"), b"other".to_vec()).unwrap();
        let mut tx = StateTx::new(&tree);
        tx.insert(a, b"k1", b"new".to_vec());
        tx.remove(a, b"k2");
        tx.insert(a, b"k3", b"added".to_vec());
        assert_eq!(tx.get(a, b"k1").unwrap(), Some(b"new".to_vec()));
        assert_eq!(tx.get(a, b"k2").unwrap(), None);
        let scanned = tx.scan_prefix(a, b"k").unwrap();
        assert_eq!(
            scanned,
            vec![
                (b"k1".to_vec(), b"new".to_vec()),
                (b"k3".to_vec(), b"added".to_vec())
            ]
        );
        let ranged = tx.scan_range(a, b"k1", b"k3", 10).unwrap();
        assert_eq!(ranged, vec![(b"k1".to_vec(), b"new".to_vec())]);
        assert_eq!(tx.scan_range(a, b"k", b"l", 1).unwrap().len(), 1);
        // Nothing reached the tree before the batch is applied.
        assert_eq!(
            tree.get(a.key(b"k1")).unwrap().as_deref(),
            Some(&b"old"[..])
        );
        tree.apply_batch(tx.into_batch()).unwrap();
        assert_eq!(tree.get(a.key(b"k2")).unwrap(), None);
        assert_eq!(
            tree.get(b.key(b"k1")).unwrap().as_deref(),
            Some(&b"other"[..])
        );
    }
}
