//! The size of sled's log segments, which also decides what goes to a blob file.
//!
//! sled writes a page (a tree node: up to 16 log entries in a leaf) that is larger than a
//! quarter of a segment to a file of its own under `blobs/`, and each such file costs a
//! flush an `fsync` of the file and one of the directory (`durable.rs`), beside the log's
//! own `fdatasync`. With sled's default 512 KiB segments that is any page over 128 KiB:
//! under QoS 1 load a leaf of the Raft log (entries of up to 1,024 commands) is, and a
//! node wrote about 50 blob files a second. New databases therefore use 8 MiB segments
//! (blobs only above 2 MiB; sled allows at most 16 MiB). sled refuses to open a database
//! with a segment size other than the one it was made with, so an existing one keeps the
//! size written in its `conf` file.

use std::path::Path;

/// For a database created now.
pub(crate) const NEW_SEGMENT_SIZE: usize = 8 << 20;

/// The segment size to open the sled database in `sled_dir` with: the one it was made
/// with, or [`NEW_SEGMENT_SIZE`] for a new one.
pub(crate) fn segment_size(sled_dir: &Path) -> usize {
    std::fs::read(sled_dir.join("conf"))
        .ok()
        .and_then(|conf| recorded(&String::from_utf8_lossy(&conf)))
        .unwrap_or(NEW_SEGMENT_SIZE)
}

/// The `segment_size: N` line of a sled `conf` file (lines of `key: value`, then a CRC).
fn recorded(conf: &str) -> Option<usize> {
    conf.lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_large_segments_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let sled_dir = dir.path().join("sled");
        assert_eq!(segment_size(&sled_dir), NEW_SEGMENT_SIZE);

        // A database made with sled's default opens again only with that default.
        let old = sled::Config::new().path(&sled_dir).open().unwrap();
        old.insert(b"k", b"v").unwrap();
        old.flush().unwrap();
        drop(old);
        assert_eq!(segment_size(&sled_dir), 512 * 1024);
        let again = sled::Config::new()
            .path(&sled_dir)
            .segment_size(segment_size(&sled_dir))
            .open()
            .unwrap();
        assert_eq!(again.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn the_conf_line_is_read_and_anything_else_is_not_a_size() {
        assert_eq!(
            recorded("segment_size: 8388608\nuse_compression: false\n"),
            Some(8 << 20)
        );
        assert_eq!(recorded("use_compression: false\n"), None);
        assert_eq!(recorded("segment_size: lots\n"), None);
    }

    /// Blob files after writing 64 entries of 20 KB (leaves of 16: 320 KB pages).
    fn blobs_after_large_entries(segment_size: usize) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let sled_dir = dir.path().join("sled");
        let db = sled::Config::new()
            .path(&sled_dir)
            .segment_size(segment_size)
            .open()
            .unwrap();
        for i in 0u64..64 {
            db.insert(i.to_be_bytes(), vec![7u8; 20_000]).unwrap();
        }
        db.flush().unwrap();
        std::fs::read_dir(sled_dir.join("blobs")).unwrap().count()
    }

    #[test]
    fn large_log_entries_stay_out_of_the_blob_directory() {
        assert!(blobs_after_large_entries(512 * 1024) > 0, "sled's default");
        assert_eq!(blobs_after_large_entries(NEW_SEGMENT_SIZE), 0);
    }
}
