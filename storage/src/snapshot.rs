//! The snapshot file: a header with openraft's snapshot metadata, then every key and value
//! of the state tree, then a CRC-32 of everything before it. Written and read as a stream,
//! record by record, so a snapshot of millions of messages never sits in memory whole, and
//! a snapshot received from a peer is checked before it replaces anything.
//!
//! ```text
//! "RMQSNAP1" | u32 meta_len | meta (bincode) | { u32 key_len | key | u32 value_len | value }*
//!            | u32 0xFFFF_FFFF | u32 crc32
//! ```

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::encoding::{decode, encode};
use crate::state::Record;

const MAGIC: &[u8; 8] = b"RMQSNAP1";
const END: u32 = u32::MAX;
/// Larger metadata than this is not a snapshot of ours.
const MAX_META_LEN: u32 = 64 * 1024 * 1024;

/// Writes a snapshot to `<path>.tmp`; [`SnapshotWriter::finish`] fsyncs it and renames it
/// into place, so a file under the final name is always complete.
pub(crate) struct SnapshotWriter {
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    tmp: PathBuf,
    path: PathBuf,
}

impl SnapshotWriter {
    pub(crate) fn create<M: Serialize>(path: &Path, meta: &M) -> Result<Self, StoreError> {
        let tmp = path.with_extension("snap.tmp");
        let out = BufWriter::new(File::create(&tmp)?);
        let mut writer = SnapshotWriter {
            out,
            crc: crc32fast::Hasher::new(),
            tmp,
            path: path.to_path_buf(),
        };
        writer.put(MAGIC)?;
        let meta = encode(meta)?;
        writer.put_len(meta.len())?;
        writer.put(&meta)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.crc.update(bytes);
        self.out.write_all(bytes)?;
        Ok(())
    }

    fn put_len(&mut self, len: usize) -> Result<(), StoreError> {
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l != END)
            .ok_or_else(|| {
                StoreError::CorruptSnapshot(format!("a record of {len} bytes is too large"))
            })?;
        self.put(&len.to_be_bytes())
    }

    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put_len(key.len())?;
        self.put(key)?;
        self.put_len(value.len())?;
        self.put(value)
    }

    pub(crate) fn finish(mut self) -> Result<PathBuf, StoreError> {
        self.put(&END.to_be_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_be_bytes())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(self.path)
    }

    /// Drops an unfinished snapshot.
    pub(crate) fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = fs::remove_file(tmp);
    }
}

/// Reads a snapshot record by record; the CRC is checked when the end marker is reached,
/// so the caller must not make what it read visible before [`SnapshotReader::next`] has
/// returned `None`.
pub(crate) struct SnapshotReader<R> {
    input: BufReader<R>,
    crc: crc32fast::Hasher,
}

impl<R: Read> SnapshotReader<R> {
    /// Opens the stream and returns the reader with the snapshot's metadata.
    pub(crate) fn open<M: DeserializeOwned>(input: R) -> Result<(Self, M), StoreError> {
        let mut reader = SnapshotReader {
            input: BufReader::new(input),
            crc: crc32fast::Hasher::new(),
        };
        let magic = reader.take(MAGIC.len())?;
        if magic != MAGIC {
            return Err(StoreError::CorruptSnapshot("not a raftmq snapshot".into()));
        }
        let len = reader.len()?;
        if len > MAX_META_LEN {
            return Err(StoreError::CorruptSnapshot(format!(
                "metadata of {len} bytes"
            )));
        }
        let meta = decode(&reader.take(len as usize)?)?;
        Ok((reader, meta))
    }

    /// Reads exactly `n` bytes, growing the buffer only as bytes arrive: a length read from
    /// a peer's file is never trusted for an allocation.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::new();
        (&mut self.input).take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(truncated());
        }
        self.crc.update(&buf);
        Ok(buf)
    }

    fn len(&mut self) -> Result<u32, StoreError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The next record, or `None` after the end marker and a matching CRC.
    pub(crate) fn next(&mut self) -> Result<Option<Record>, StoreError> {
        let key_len = self.len()?;
        if key_len == END {
            let expected = self.crc.clone().finalize();
            let mut stored = [0u8; 4];
            self.input
                .read_exact(&mut stored)
                .map_err(|_| truncated())?;
            if u32::from_be_bytes(stored) != expected {
                return Err(StoreError::CorruptSnapshot("checksum mismatch".into()));
            }
            return Ok(None);
        }
        let key = self.take(key_len as usize)?;
        let value_len = self.len()?;
        let value = self.take(value_len as usize)?;
        Ok(Some((key, value)))
    }
}

fn truncated() -> StoreError {
    StoreError::CorruptSnapshot("the file ends early".into())
}

/// Removes a file that may already be gone.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_sample(dir: &Path) -> PathBuf {
        let mut w = SnapshotWriter::create(&dir.join("s.snap"), &"meta".to_string()).unwrap();
        w.record(b"a", b"1").unwrap();
        w.record(b"bb", &[7u8; 5000]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path());
        assert!(!dir.path().join("s.snap.tmp").exists());
        let (mut r, meta) = SnapshotReader::open::<String>(File::open(path).unwrap()).unwrap();
        assert_eq!(meta, "meta");
        assert_eq!(r.next().unwrap(), Some((b"a".to_vec(), b"1".to_vec())));
        assert_eq!(r.next().unwrap(), Some((b"bb".to_vec(), vec![7u8; 5000])));
        assert_eq!(r.next().unwrap(), None);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = fs::read(write_sample(dir.path())).unwrap();
        let read_all = |data: Vec<u8>| -> Result<(), StoreError> {
            let (mut r, _) = SnapshotReader::open::<String>(io::Cursor::new(data))?;
            while r.next()?.is_some() {}
            Ok(())
        };
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(read_all(bad).is_err(), "flip at {i} undetected");
            assert!(
                read_all(bytes[..i].to_vec()).is_err(),
                "truncation at {i} undetected"
            );
        }
        assert!(read_all(bytes).is_ok());
    }

    #[test]
    fn a_huge_length_does_not_allocate_it() {
        let mut data = MAGIC.to_vec();
        let meta = encode(&"meta".to_string()).unwrap();
        data.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        data.extend_from_slice(&meta);
        data.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        let (mut r, _) =
            SnapshotReader::open::<String>(io::Cursor::new(data)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(r.next(), Err(StoreError::CorruptSnapshot(_))));
    }
}
