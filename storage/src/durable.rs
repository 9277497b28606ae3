//! What sled's flush leaves undone, done after it: a real fsync of its files.
//!
//! sled 0.34 makes a write "stable" on Linux with `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)` on its log file: the pages go to the device, but the device's volatile
//! write cache is not flushed and the file's metadata is not written, so a power loss (or
//! a storage layer that keeps unsynced writes in memory, as the Jepsen harness's
//! `lose-unfsynced-writes` does) can take back what raftmq has already acknowledged. Only
//! its background thread calls `fsync`, every 500 ms. Values too large for its log
//! (blobs) go to files of their own under `blobs/`, written and never synced.
//!
//! So after every sled flush the stores also `fdatasync` the log file (any descriptor of
//! the file flushes it, with the device's cache) and `fsync` each blob file not synced
//! before, and then the blob directory. A flush therefore reports durable only what
//! really is.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// sled's files in one database directory.
#[derive(Debug)]
pub(crate) struct DurableFiles {
    log: File,
    blobs: PathBuf,
    /// Blob files already synced (sled never rewrites a blob: each is named by the log
    /// position it belongs to). Also serializes the scans.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl DurableFiles {
    /// The files of the sled database at `sled_dir` (already opened by sled, so they exist).
    pub(crate) fn open(sled_dir: &Path) -> io::Result<Self> {
        let log = File::open(sled_dir.join("db"))?;
        Ok(DurableFiles {
            log,
            blobs: sled_dir.join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
        })
    }

    /// Makes what sled wrote so far durable. Blocking: call it off the async workers.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.sync_blobs()?;
        self.log.sync_data()
    }

    fn sync_blobs(&self) -> io::Result<()> {
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::with_capacity(synced.len());
        let mut new = false;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(file) => file.sync_all()?,
                    // Collected by sled meanwhile: nothing left to make durable.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        // The new files' names, too.
        if new {
            File::open(&self.blobs)?.sync_all()?;
        }
        *synced = present;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_blob_is_synced_once_and_forgotten_when_collected() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("db"), b"log").expect("the log file");
        let files = DurableFiles::open(dir.path()).expect("opens");
        // No blob directory yet (sled makes it with the first blob).
        files.sync().expect("syncs without blobs");
        std::fs::create_dir(dir.path().join("blobs")).expect("blobs dir");
        std::fs::write(dir.path().join("blobs/17"), b"big value").expect("a blob");
        files.sync().expect("syncs");
        let synced = |files: &DurableFiles| {
            let mut names: Vec<_> = files
                .synced_blobs
                .lock()
                .expect("not poisoned")
                .iter()
                .cloned()
                .collect();
            names.sort();
            names
        };
        assert_eq!(synced(&files), vec![OsString::from("17")]);
        std::fs::write(dir.path().join("blobs/18"), b"another").expect("a blob");
        std::fs::remove_file(dir.path().join("blobs/17")).expect("collected");
        files.sync().expect("syncs");
        assert_eq!(synced(&files), vec![OsString::from("18")]);
    }
}
