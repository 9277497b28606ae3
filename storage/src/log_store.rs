//! The Raft log and vote: openraft's `RaftLogStorage` on two sled trees.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader, RaftTypeConfig,
    StorageError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::encoding::{decode, encode};
use crate::observer::Observer;

const META_TREE: &str = "raft_meta";
const LOG_TREE: &str = "raft_log";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged_log_id";
/// Entries removed per batch when purging, so a large purge does not build one huge batch.
const PURGE_BATCH: usize = 4096;

/// The type configurations this store can keep: node ids are `u64`, entries are openraft's
/// own `Entry` (serialized with serde).
pub trait LogTypeConfig: RaftTypeConfig<NodeId = u64, Entry = Entry<Self>> {}

impl<C> LogTypeConfig for C where C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>> {}

/// The log store. Clones share the trees, which is how openraft's log readers (one per
/// replication stream) see what the writer appended.
pub struct LogStore<C> {
    db: sled::Db,
    meta: sled::Tree,
    log: sled::Tree,
    observer: Observer,
    _types: PhantomData<C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            db: self.db.clone(),
            meta: self.meta.clone(),
            log: self.log.clone(),
            observer: self.observer.clone(),
            _types: PhantomData,
        }
    }
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn read_err(e: StoreError) -> StorageError<u64> {
    e.raft(ErrorSubject::Logs, ErrorVerb::Read)
}

fn write_err(e: StoreError) -> StorageError<u64> {
    e.raft(ErrorSubject::Logs, ErrorVerb::Write)
}

impl<C: LogTypeConfig> LogStore<C> {
    pub(crate) fn open(db: &sled::Db, observer: Observer) -> Result<Self, StoreError> {
        Ok(LogStore {
            db: db.clone(),
            meta: db.open_tree(META_TREE)?,
            log: db.open_tree(LOG_TREE)?,
            observer,
            _types: PhantomData,
        })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.meta.get(key)?.map(|raw| decode(&raw)).transpose()
    }

    fn write_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.meta.insert(key, encode(value)?)?;
        Ok(())
    }

    /// The committed index this node last recorded (for status pages; openraft keeps the
    /// authoritative one in memory, and this one may trail it by the last few entries).
    pub fn committed_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .read_meta::<Option<LogId<u64>>>(COMMITTED_KEY)?
            .flatten()
            .map(|id| id.index))
    }

    /// Bytes the whole database (log and state) takes on disk, by sled's estimate.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.observer.flush(&self.db).await
    }

    fn last_log_id(&self) -> Result<Option<LogId<u64>>, StoreError> {
        match self.log.last()? {
            Some((_, raw)) => Ok(Some(decode::<Entry<C>>(&raw)?.log_id)),
            None => self.read_meta(LAST_PURGED_KEY),
        }
    }

    fn entries(
        &self,
        range: (Bound<[u8; 8]>, Bound<[u8; 8]>),
    ) -> Result<Vec<Entry<C>>, StoreError> {
        self.log
            .range(range)
            .map(|item| {
                let (_, raw) = item?;
                decode(&raw)
            })
            .collect()
    }

    /// Removes every entry in `range`, `PURGE_BATCH` at a time.
    fn remove_range(&self, range: (Bound<[u8; 8]>, Bound<[u8; 8]>)) -> Result<(), StoreError> {
        loop {
            let keys: Vec<_> = self
                .log
                .range(range)
                .keys()
                .take(PURGE_BATCH)
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                return Ok(());
            }
            let mut batch = sled::Batch::default();
            keys.into_iter().for_each(|k| batch.remove(k));
            self.log.apply_batch(batch)?;
        }
    }
}

impl<C: LogTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<u64>> {
        let start = range.start_bound().map(|i| key(*i));
        let end = range.end_bound().map(|i| key(*i));
        self.entries((start, end)).map_err(read_err)
    }
}

impl<C: LogTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<u64>> {
        let last_purged_log_id = self.read_meta(LAST_PURGED_KEY).map_err(read_err)?;
        let last_log_id = self.last_log_id().map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let result = async {
            self.write_meta(VOTE_KEY, vote)?;
            self.flush().await
        };
        result
            .await
            .map_err(|e| e.raft(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.read_meta(VOTE_KEY)
            .map_err(|e| e.raft(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Not flushed: a committed index that goes back after a crash is re-learned from
        // the leader; it only lets a restarted node apply sooner.
        self.write_meta(COMMITTED_KEY, &committed)
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self
            .read_meta::<Option<LogId<u64>>>(COMMITTED_KEY)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&key(entry.log_id.index), encode(&entry).map_err(write_err)?);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| write_err(e.into()))?;
        // The callback tells openraft the entries are durable: only after the fsync.
        match self.flush().await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let result = async {
            self.remove_range((Bound::Included(key(log_id.index)), Bound::Unbounded))?;
            self.flush().await
        };
        result
            .await
            .map_err(|e| e.raft(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let result = async {
            // The new start of the log is durable before any entry goes: after a crash the
            // log may hold entries below last_purged_log_id, never a hole above it.
            self.write_meta(LAST_PURGED_KEY, &log_id)?;
            self.flush().await?;
            self.remove_range((Bound::Unbounded, Bound::Included(key(log_id.index))))
        };
        result
            .await
            .map_err(|e| e.raft(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}
