//! The unfsynced state of one file: the bytes written since its last fsync and the size it
//! has meanwhile, kept apart from the backing file so that they can be written out on fsync
//! or dropped by `lose()`, as a page cache would write or lose them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Dirty byte ranges and the pending size of one file, over its backing file.
#[derive(Debug)]
pub(super) struct Overlay {
    /// The file's size as its users see it.
    size: u64,
    /// Backing bytes at or past this offset are hidden: the file was truncated below them
    /// (what lies there now is zeros or dirty bytes).
    floor: u64,
    /// Non-overlapping dirty ranges by start offset; touching ranges are merged, so that a
    /// file written sequentially keeps one range.
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl Overlay {
    /// A clean overlay over a backing file of `backing_len` bytes.
    pub(super) fn new(backing_len: u64) -> Self {
        Overlay {
            size: backing_len,
            floor: backing_len,
            ranges: BTreeMap::new(),
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes that `lose()` would drop.
    pub(super) fn dirty_bytes(&self) -> u64 {
        self.ranges.values().map(|r| r.len() as u64).sum()
    }

    pub(super) fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // The range that starts at or before `offset` and reaches it grows in place.
        let reaching = self
            .ranges
            .range(..=offset)
            .next_back()
            .filter(|(start, bytes)| *start + bytes.len() as u64 >= offset)
            .map(|(start, _)| *start);
        let (start, mut buf) = match reaching.and_then(|s| self.ranges.remove(&s).map(|b| (s, b))) {
            Some(found) => found,
            None => (offset, Vec::new()),
        };
        let at = (offset - start) as usize;
        if buf.len() < at + data.len() {
            buf.resize(at + data.len(), 0);
        }
        buf[at..at + data.len()].copy_from_slice(data);
        // Ranges starting inside the write (or touching its end) are covered or appended.
        let later: Vec<u64> = self.ranges.range(offset..=end).map(|(s, _)| *s).collect();
        for s in later {
            if let Some(bytes) = self.ranges.remove(&s) {
                let bytes_end = s + bytes.len() as u64;
                if bytes_end > end {
                    buf.extend_from_slice(&bytes[(end - s) as usize..]);
                }
            }
        }
        self.ranges.insert(start, buf);
        self.size = self.size.max(end);
    }

    /// A truncation (or extension) to `size`.
    pub(super) fn set_size(&mut self, size: u64) {
        if size < self.size {
            let cut: Vec<u64> = self.ranges.range(size..).map(|(s, _)| *s).collect();
            for s in cut {
                self.ranges.remove(&s);
            }
            if let Some((start, bytes)) = self.ranges.range_mut(..size).next_back() {
                let keep = (size - *start) as usize;
                bytes.truncate(keep);
            }
            self.floor = self.floor.min(size);
        }
        self.size = size;
    }

    /// Reads up to `len` bytes at `offset`: dirty bytes over the visible backing bytes,
    /// zeros elsewhere.
    pub(super) fn read(&self, backing: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = (offset + len as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let visible = end.min(self.floor);
        if offset < visible {
            read_full(backing, offset, &mut buf[..(visible - offset) as usize])?;
        }
        let first = self
            .ranges
            .range(..=offset)
            .next_back()
            .map_or(offset, |(s, _)| *s);
        for (&start, bytes) in self.ranges.range(first..end) {
            let bytes_end = start + bytes.len() as u64;
            let (from, to) = (start.max(offset), bytes_end.min(end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        Ok(buf)
    }

    /// Writes the pending state into `backing` and fsyncs it.
    pub(super) fn write_back(&self, backing: &File) -> io::Result<()> {
        if backing.metadata()?.len() > self.floor {
            backing.set_len(self.floor)?;
        }
        for (&start, bytes) in &self.ranges {
            backing.write_all_at(bytes, start)?;
        }
        if backing.metadata()?.len() != self.size {
            backing.set_len(self.size)?;
        }
        backing.sync_all()
    }
}

/// Fills `buf` from `file` at `offset`; past the end of the file it stays zero (a backing
/// file shorter than the floor cannot happen, but a short read must not be an error).
fn read_full(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn backing(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(content).unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .open(tmp.path())
            .unwrap();
        (tmp, file)
    }

    #[test]
    fn writes_merge_and_read_over_the_backing_file() {
        let (_tmp, file) = backing(b"0123456789");
        let mut o = Overlay::new(10);
        o.write(2, b"ab");
        o.write(4, b"cd");
        o.write(12, b"xy");
        assert_eq!(o.ranges.len(), 2, "touching ranges merge");
        assert_eq!(o.size(), 14);
        assert_eq!(o.read(&file, 0, 100).unwrap(), b"01abcd6789\0\0xy");
        o.write(3, b"ZZZZZZZZZZ");
        assert_eq!(o.ranges.len(), 1);
        assert_eq!(o.read(&file, 0, 100).unwrap(), b"01aZZZZZZZZZZy");
        assert_eq!(o.read(&file, 5, 3).unwrap(), b"ZZZ");
        assert_eq!(o.dirty_bytes(), 12);
    }

    #[test]
    fn truncation_hides_the_backing_tail_until_written_back() {
        let (_tmp, file) = backing(b"0123456789");
        let mut o = Overlay::new(10);
        o.write(1, b"abcd");
        o.set_size(3);
        o.set_size(6);
        assert_eq!(o.read(&file, 0, 100).unwrap(), b"0ab\0\0\0");
        o.write_back(&file).unwrap();
        let mut all = vec![0; 10];
        let n = file.read_at(&mut all, 0).unwrap();
        assert_eq!(&all[..n], b"0ab\0\0\0");
    }

    #[test]
    fn reads_stop_at_the_size() {
        let (_tmp, file) = backing(b"0123");
        let o = Overlay::new(4);
        assert_eq!(o.read(&file, 2, 10).unwrap(), b"23");
        assert!(o.read(&file, 4, 10).unwrap().is_empty());
    }
}
