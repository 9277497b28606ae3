//! An optional hook through which the node watches its storage — how long each fsync
//! takes, when snapshots are built and installed — without this crate depending on a
//! metrics library; and the one place every flush goes through, which makes it durable
//! (or, with `unsafe_no_fsync`, skips it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StoreError;
use crate::durable::DurableFiles;

/// What the stores report as they work. Called on the storage's tasks: keep it cheap.
pub trait StorageObserver: Send + Sync + 'static {
    /// A flush of the whole database (sled's fsync) took `took`.
    fn flushed(&self, took: Duration);
    /// A snapshot was built and recorded as the current one.
    fn snapshot_built(&self);
    /// A snapshot from the leader was installed in place of the state.
    fn snapshot_installed(&self);
}

/// How the stores flush: sled's flush, then the fsyncs it leaves out ([`DurableFiles`]),
/// timed for the observer if there is one.
#[derive(Clone)]
pub(crate) struct Observer {
    /// `None`: `unsafe_no_fsync`, flushes are skipped altogether.
    files: Option<Arc<DurableFiles>>,
    watcher: Option<Arc<dyn StorageObserver>>,
}

impl Observer {
    pub(crate) fn new(files: Option<Arc<DurableFiles>>) -> Self {
        Observer {
            files,
            watcher: None,
        }
    }

    pub(crate) fn watched_by(mut self, watcher: Arc<dyn StorageObserver>) -> Self {
        self.watcher = Some(watcher);
        self
    }

    /// Flushes `db` and makes it durable, timing it for the observer.
    pub(crate) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let Some(files) = self.files.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        db.flush_async().await?;
        tokio::task::spawn_blocking(move || files.sync())
            .await
            .map_err(std::io::Error::other)??;
        if let Some(observer) = &self.watcher {
            observer.flushed(started.elapsed());
        }
        Ok(())
    }

    /// The same, blocking (for the few flushes made outside the async stores).
    pub(crate) fn flush_blocking(&self, db: &sled::Db) -> Result<(), StoreError> {
        if let Some(files) = &self.files {
            db.flush()?;
            files.sync()?;
        }
        Ok(())
    }

    pub(crate) fn snapshot_built(&self) {
        if let Some(observer) = &self.watcher {
            observer.snapshot_built();
        }
    }

    pub(crate) fn snapshot_installed(&self) {
        if let Some(observer) = &self.watcher {
            observer.snapshot_installed();
        }
    }
}
