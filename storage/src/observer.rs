//! An optional hook through which the node watches its storage — how long each fsync
//! takes, when snapshots are built and installed — without this crate depending on a
//! metrics library.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StoreError;

/// What the stores report as they work. Called on the storage's tasks: keep it cheap.
pub trait StorageObserver: Send + Sync + 'static {
    /// A flush of the whole database (sled's fsync) took `took`.
    fn flushed(&self, took: Duration);
    /// A snapshot was built and recorded as the current one.
    fn snapshot_built(&self);
    /// A snapshot from the leader was installed in place of the state.
    fn snapshot_installed(&self);
}

/// The observer the stores share, if any.
#[derive(Clone, Default)]
pub(crate) struct Observer(Option<Arc<dyn StorageObserver>>);

impl Observer {
    pub(crate) fn new(observer: Arc<dyn StorageObserver>) -> Self {
        Observer(Some(observer))
    }

    /// Flushes `db`, timing the flush for the observer.
    pub(crate) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let started = Instant::now();
        db.flush_async().await?;
        if let Some(observer) = &self.0 {
            observer.flushed(started.elapsed());
        }
        Ok(())
    }

    pub(crate) fn snapshot_built(&self) {
        if let Some(observer) = &self.0 {
            observer.snapshot_built();
        }
    }

    pub(crate) fn snapshot_installed(&self) {
        if let Some(observer) = &self.0 {
            observer.snapshot_installed();
        }
    }
}
