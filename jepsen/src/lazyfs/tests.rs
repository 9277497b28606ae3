//! The layer mounted for real (root and /dev/fuse, as the harness runs): what survives
//! `lose()` and what does not.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use super::LazyFs;

struct Mounted {
    dir: tempfile::TempDir,
    fs: LazyFs,
}

fn mounted() -> Mounted {
    let dir = tempfile::tempdir().unwrap();
    let fs = LazyFs::mount(&dir.path().join("backing"), &dir.path().join("mnt")).unwrap();
    Mounted { dir, fs }
}

fn read(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    File::open(path).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn unfsynced_writes_are_lost_and_the_size_restored() {
    let m = mounted();
    let path = m.fs.mountpoint().join("f");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_all().unwrap();
    f.write_all(b" and more").unwrap();
    assert_eq!(read(&path), b"durable and more", "reads see pending writes");
    assert_eq!(fs::metadata(&path).unwrap().len(), 16);
    assert_eq!(m.fs.dirty_bytes(), 9);
    drop(f);
    assert_eq!(m.fs.lose(), 9);
    assert_eq!(read(&path), b"durable");
    assert_eq!(fs::metadata(&path).unwrap().len(), 7);
}

#[test]
fn fsynced_writes_and_truncations_survive() {
    let m = mounted();
    let path = m.fs.mountpoint().join("f");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"0123456789").unwrap();
    f.sync_data().unwrap();
    f.set_len(4).unwrap();
    f.sync_all().unwrap();
    assert_eq!(m.fs.lose(), 0);
    assert_eq!(read(&path), b"0123");
    // An unfsynced truncation is lost like a write.
    f.set_len(1).unwrap();
    assert_eq!(read(&path), b"0");
    m.fs.lose();
    assert_eq!(read(&path), b"0123");
}

#[test]
fn a_renamed_fsynced_file_survives_and_an_unfsynced_one_keeps_only_its_name() {
    let m = mounted();
    let dir = m.fs.mountpoint().join("snapshots");
    fs::create_dir(&dir).unwrap();
    let mut tmp = File::create(dir.join("a.tmp")).unwrap();
    tmp.write_all(b"snapshot a").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(dir.join("a.tmp"), dir.join("a.snap")).unwrap();
    File::open(&dir).unwrap().sync_all().unwrap();
    let mut tmp = File::create(dir.join("b.tmp")).unwrap();
    tmp.write_all(b"snapshot b").unwrap();
    drop(tmp);
    fs::rename(dir.join("b.tmp"), dir.join("b.snap")).unwrap();
    assert_eq!(m.fs.lose(), 10);
    assert_eq!(read(&dir.join("a.snap")), b"snapshot a");
    assert_eq!(read(&dir.join("b.snap")), b"");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.snap", "b.snap"]);
    fs::remove_file(dir.join("b.snap")).unwrap();
    assert!(!dir.join("b.snap").exists());
}

fn sled_db(path: &Path) -> sled::Db {
    // No periodic flush: only what the test flushes is made durable.
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .open()
        .unwrap()
}

/// sled's `flush` writes its log and calls `sync_file_range`, which is no fsync (it does
/// not make a grown file's size durable, and never reaches FUSE): only an fsync of its
/// file after the flush (what `raftmq-storage` does) makes an insert survive.
#[test]
fn a_sled_insert_survives_when_flushed_and_fsynced_only() {
    let m = mounted();
    let path = m.fs.mountpoint().join("sled");
    let db = sled_db(&path);
    db.insert(b"fsynced", b"1").unwrap();
    db.flush().unwrap();
    File::open(path.join("db")).unwrap().sync_all().unwrap();
    db.insert(b"flushed", b"2").unwrap();
    db.flush().unwrap();
    db.insert(b"written", b"3").unwrap();
    // The node dies here: what the disk holds is the backing directory after `lose()`.
    // (Reopening on the mount would need this db closed, and closing it flushes.)
    assert!(m.fs.lose() > 0);
    let survived = m.dir.path().join("survived");
    copy_dir(&m.dir.path().join("backing").join("sled"), &survived);
    drop(db);
    let db = sled_db(&survived);
    assert_eq!(db.get(b"fsynced").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"flushed").unwrap(), None);
    assert_eq!(db.get(b"written").unwrap(), None);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
