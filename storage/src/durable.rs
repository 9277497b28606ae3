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
//! really is. The descriptors of the log file and of the blob directory are opened once:
//! a flush opens nothing unless the blob directory changed (its modification time, read
//! through the held descriptor), so a node out of file descriptors (a flood of half-open
//! connections) still commits.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long after a change of the blob directory it is scanned again at every flush:
/// file times come from a coarse clock, so a file created just after a scan can leave the
/// directory's time as the scan saw it.
const SETTLE: Duration = Duration::from_millis(100);

/// sled's files in one database directory.
#[derive(Debug)]
pub(crate) struct DurableFiles {
    log: File,
    blobs: PathBuf,
    blobs_dir: File,
    scan: Mutex<BlobScan>,
}

/// What the last scan of the blob directory saw.
#[derive(Debug, Default)]
struct BlobScan {
    /// The directory's modification time then, and when the scan ran.
    seen: Option<(SystemTime, SystemTime)>,
    /// Blob files already synced (sled never rewrites a blob: each is named by the log
    /// position it belongs to).
    synced: HashSet<OsString>,
}

impl DurableFiles {
    /// The files of the sled database at `sled_dir` (already opened by sled, so they exist).
    pub(crate) fn open(sled_dir: &Path) -> io::Result<Self> {
        let log = File::open(sled_dir.join("db"))?;
        let blobs = sled_dir.join("blobs");
        std::fs::create_dir_all(&blobs)?;
        let blobs_dir = File::open(&blobs)?;
        Ok(DurableFiles {
            log,
            blobs,
            blobs_dir,
            scan: Mutex::new(BlobScan::default()),
        })
    }

    /// Makes what sled wrote so far durable. Blocking: call it off the async workers.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.sync_blobs()?;
        self.log.sync_data()
    }

    fn sync_blobs(&self) -> io::Result<()> {
        let mut scan = self.scan.lock().unwrap_or_else(|p| p.into_inner());
        let changed = self.blobs_dir.metadata()?.modified()?;
        let settled = scan.seen.is_some_and(|(mtime, at)| {
            mtime == changed && at.duration_since(mtime).is_ok_and(|d| d > SETTLE)
        });
        if settled {
            return Ok(());
        }
        let scanned_at = SystemTime::now();
        let mut present = HashSet::with_capacity(scan.synced.len());
        let mut new = false;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            if !scan.synced.contains(&name) {
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
            self.blobs_dir.sync_all()?;
        }
        scan.synced = present;
        scan.seen = Some((changed, scanned_at));
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
        files.sync().expect("syncs without blobs");
        std::fs::write(dir.path().join("blobs/17"), b"big value").expect("a blob");
        files.sync().expect("syncs");
        let synced = |files: &DurableFiles| {
            let mut names: Vec<_> = files
                .scan
                .lock()
                .expect("not poisoned")
                .synced
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
        // Settled: a flush reads only the directory's time, and a new blob changes it.
        std::thread::sleep(SETTLE * 2);
        files.sync().expect("syncs");
        files.sync().expect("syncs without a scan");
        std::fs::write(dir.path().join("blobs/19"), b"third").expect("a blob");
        files.sync().expect("syncs");
        assert_eq!(
            synced(&files),
            vec![OsString::from("18"), OsString::from("19")]
        );
    }
}
