//! The storage crate's error type, and its conversion to openraft's `StorageError`.

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};
use thiserror::Error;

/// What can go wrong in the store. None of these is recoverable by retrying: openraft
/// stops the node on a storage error, which is the safe answer to a failing disk.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a stored value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode a stored value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("snapshot is corrupt: {0}")]
    CorruptSnapshot(String),
    /// A stored record that decodes but contradicts the rest of the state (the
    /// application's own consistency checks).
    #[error("stored state is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps the error for openraft, naming what was being done to what.
    pub(crate) fn raft(self, subject: ErrorSubject<u64>, verb: ErrorVerb) -> StorageError<u64> {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}
