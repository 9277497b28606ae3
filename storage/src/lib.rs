//! Durable storage for a raftmq node: the Raft log, the vote, and the replicated state
//! machine, all in one sled database behind this crate's own types, so the engine can be
//! replaced without touching the broker.
//!
//! # Layout of one node's data directory
//! ```text
//! <dir>/sled/        the sled database (opened with Mode::LowSpace; 8 MiB segments when
//!                    new, so that large pages stay out of blob files: `segments.rs`)
//!   raft_meta        vote, last_purged_log_id, committed
//!   raft_log         entries, key = log index as big-endian u64 (so sled's order is log order)
//!   sm_root          which state generation is current, the current snapshot, the node id
//!   sm.<generation>  the state machine: one tree, tables told apart by a one-byte key prefix
//! <dir>/snapshots/   <snapshot id>.snap files, and incoming-*.part while one is received
//! ```
//!
//! # Write path and fsync order
//! 1. `save_vote` inserts the vote and awaits `flush_async` before returning.
//! 2. `append` writes the entries as one batch, awaits `flush_async`, and only then reports
//!    them durable through openraft's callback; a leader counts its own entry towards the
//!    quorum only after that.
//! 3. `apply` writes the state changes of a whole batch of entries *and* the new
//!    `last_applied` and membership as one sled `Batch` on one tree, which sled applies
//!    atomically. It does not flush: the log still holds those entries, and on restart
//!    openraft re-applies everything after the durable `last_applied`.
//! 4. `purge` writes `last_purged_log_id` and flushes *before* deleting entries (so a crash
//!    mid-purge never shows a log that starts later than it claims), and that flush also
//!    makes the state machine durable up to the snapshot the purge follows.
//! 5. A snapshot is streamed to `<id>.snap.tmp`, fsynced and renamed; installing one fills a
//!    fresh `sm.<generation>` tree, then flips `sm_root`'s pointer in one flushed write and
//!    drops the old tree. A crash before the flip leaves the old state in force.
//!
//! Every flush goes through one place that times it for an optional [`StorageObserver`]
//! (the node's fsync-latency histogram), which also hears of each snapshot built or
//! installed. A flush is sled's flush followed by an `fdatasync` of sled's log file
//! (`<dir>/sled/db`) and an `fsync` of any new blob file (`durable.rs`): sled 0.34's own
//! flush ends in `sync_file_range(2)`, which neither flushes the device's write cache nor
//! makes the size of a grown file durable (and does nothing on FUSE, where the Jepsen
//! harness's `lose-unfsynced-writes` fault showed it), and it never syncs its blob files.
//! [`OpenOptions::unsafe_no_fsync`] skips every such flush, for benchmarks and for that
//! fault's own test.
//!
//! Why one state tree per generation rather than one tree per table: sled makes a `Batch`
//! atomic only within one tree, and its multi-tree transactions cannot scan ranges, which
//! the broker needs (a session's queue). Tables are key prefixes instead ([`Table`]).

mod durable;
pub mod encoding;
mod error;
mod log_store;
mod observer;
mod segments;
mod snapshot;
mod state;
mod state_machine;

use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use log_store::LogStore;
pub use observer::StorageObserver;

pub use state::{Application, Record, StateReader, StateTx, Table};
pub use state_machine::{SnapshotBuilder, StateMachineStore};

/// How [`Storage::open_with`] opens a data directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Never flush or fsync (writes reach the disk when the OS writes them back): a
    /// crash of the machine loses acknowledged writes. For benchmarks and tests only.
    pub unsafe_no_fsync: bool,
}

/// Key of the node id in `sm_root`.
const NODE_ID_KEY: &[u8] = b"node_id";

/// One node's open database. Cheap to clone; every clone shares the same sled instance
/// (sled allows one open instance of a path per process).
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
    dir: PathBuf,
    observer: observer::Observer,
}

impl Storage {
    /// Opens (creating if needed) the data directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, OpenOptions::default())
    }

    /// [`Storage::open`] with `options`.
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir.join("snapshots"))?;
        let sled_dir = dir.join("sled");
        let db = sled::Config::new()
            .path(&sled_dir)
            .mode(sled::Mode::LowSpace)
            .segment_size(segments::segment_size(&sled_dir))
            .open()?;
        let files = if options.unsafe_no_fsync {
            None
        } else {
            Some(std::sync::Arc::new(durable::DurableFiles::open(&sled_dir)?))
        };
        Ok(Storage {
            db,
            dir: dir.to_path_buf(),
            observer: observer::Observer::new(files),
        })
    }

    /// Reports fsync times and snapshots to `observer`, in the stores made after this.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn StorageObserver>) -> Self {
        self.observer = self.observer.watched_by(observer);
        self
    }

    /// The data directory this storage lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Raft log and vote store.
    pub fn log_store<C>(&self) -> Result<LogStore<C>, StoreError>
    where
        C: log_store::LogTypeConfig,
    {
        LogStore::open(&self.db, self.observer.clone())
    }

    /// The state-machine store, applying commands with `app`.
    pub fn state_machine<C, A>(&self, app: A) -> Result<StateMachineStore<C, A>, StoreError>
    where
        C: state_machine::StateTypeConfig,
        A: Application<C>,
    {
        StateMachineStore::open(
            &self.db,
            self.dir.join("snapshots"),
            app,
            self.observer.clone(),
        )
    }

    /// The node's id: read from the data directory, or created by `fresh` and stored
    /// durably on first start. A wiped directory therefore always yields a new id.
    pub fn node_id(&self, fresh: impl FnOnce() -> u64) -> Result<u64, StoreError> {
        let root = self.db.open_tree(state_machine::ROOT_TREE)?;
        if let Some(raw) = root.get(NODE_ID_KEY)? {
            return encoding::decode(&raw);
        }
        let id = fresh();
        root.insert(NODE_ID_KEY, encoding::encode(&id)?)?;
        self.observer.flush_blocking(&self.db)?;
        Ok(id)
    }

    /// Makes everything written so far durable (a clean shutdown calls this last).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.observer.flush(&self.db).await
    }

    /// Bytes the database takes on disk (sled's own estimate).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}
