//! The FUSE side of the layer: the kernel's requests, answered from a backing directory.
//! Names (lookup, create, mkdir, unlink, rmdir, rename) go straight to the backing
//! directory; file data goes through each inode's [`Overlay`] until fsync.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::overlay::Overlay;

/// Attributes and names are never cached by the kernel: sizes change under it when
/// `lose()` drops pending writes.
const TTL: Duration = Duration::ZERO;

/// One file or directory the kernel knows.
struct Inode {
    /// Where it is in the backing directory; `None` once unlinked.
    path: Option<PathBuf>,
    /// The backing file, open while the kernel holds handles on it.
    file: Option<Arc<File>>,
    handles: usize,
    /// Writes and size changes since the last fsync.
    overlay: Option<Overlay>,
}

impl Inode {
    fn at(path: &Path) -> Inode {
        Inode {
            path: Some(path.to_path_buf()),
            file: None,
            handles: 0,
            overlay: None,
        }
    }
}

/// Everything the layer knows, behind one lock shared with [`super::LazyFs`].
pub(super) struct State {
    inodes: HashMap<u64, Inode>,
    by_key: HashMap<(u64, u64), u64>,
    handles: HashMap<u64, u64>,
    next_ino: u64,
    next_handle: u64,
}

impl State {
    pub(super) fn new(root: &Path) -> io::Result<State> {
        let meta = fs::metadata(root)?;
        let key = (meta.dev(), meta.ino());
        let root_ino = u64::from(INodeNo::ROOT);
        let mut state = State {
            inodes: HashMap::new(),
            by_key: HashMap::new(),
            handles: HashMap::new(),
            next_ino: root_ino + 1,
            next_handle: 1,
        };
        state.inodes.insert(root_ino, Inode::at(root));
        state.by_key.insert(key, root_ino);
        Ok(state)
    }

    /// Drops every pending write and size change; the bytes dropped.
    pub(super) fn lose(&mut self) -> u64 {
        self.inodes
            .values_mut()
            .filter_map(|inode| inode.overlay.take())
            .map(|overlay| overlay.dirty_bytes())
            .sum()
    }

    pub(super) fn dirty_bytes(&self) -> u64 {
        self.inodes
            .values()
            .filter_map(|inode| inode.overlay.as_ref())
            .map(Overlay::dirty_bytes)
            .sum()
    }

    fn inode(&mut self, ino: INodeNo) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    fn path(&mut self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.inode(ino)?.path.clone().ok_or(Errno::ENOENT)
    }

    fn child(&mut self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// The inode number of the backing file at `path`, known or new.
    fn intern(&mut self, path: &Path, meta: &fs::Metadata) -> u64 {
        let key = (meta.dev(), meta.ino());
        if let Some(&ino) = self.by_key.get(&key)
            && let Some(inode) = self.inodes.get_mut(&ino)
        {
            inode.path = Some(path.to_path_buf());
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::at(path));
        self.by_key.insert(key, ino);
        ino
    }

    /// The backing file `meta` described (before an unlink, or a rename over it) is gone:
    /// its inode keeps its data for open handles, and is forgotten when the last one
    /// closes.
    fn unlinked(&mut self, meta: Option<fs::Metadata>) {
        let Some(meta) = meta else {
            return;
        };
        if meta.nlink() > 1 && !meta.is_dir() {
            return;
        }
        if let Some(ino) = self.by_key.remove(&(meta.dev(), meta.ino())) {
            let drop_now = self.inodes.get_mut(&ino).is_some_and(|inode| {
                inode.path = None;
                inode.handles == 0
            });
            if drop_now {
                self.inodes.remove(&ino);
            }
        }
    }

    /// After a rename, the moved inode and everything below it live under `to`.
    fn moved(&mut self, from: &Path, to: &Path) {
        for inode in self.inodes.values_mut() {
            if let Some(path) = &inode.path
                && let Ok(rest) = path.strip_prefix(from)
            {
                inode.path = Some(if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                });
            }
        }
    }

    fn attr(&mut self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let inode = self.inode(ino)?;
        let meta = match (&inode.file, &inode.path) {
            (Some(file), _) => file.metadata()?,
            (None, Some(path)) => fs::symlink_metadata(path)?,
            (None, None) => return Err(Errno::ENOENT),
        };
        let size = inode.overlay.as_ref().map(Overlay::size);
        Ok(file_attr(ino, &meta, size))
    }

    fn entry(&mut self, path: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(path)?;
        let ino = INodeNo(self.intern(path, &meta));
        self.attr(ino)
    }

    /// The overlay of `ino`, made on first use over the backing file's current length.
    fn overlay(&mut self, ino: INodeNo) -> Result<&mut Overlay, Errno> {
        let inode = self.inode(ino)?;
        if inode.overlay.is_none() {
            let len = match (&inode.file, &inode.path) {
                (Some(file), _) => file.metadata()?.len(),
                (None, Some(path)) => fs::metadata(path)?.len(),
                (None, None) => return Err(Errno::ENOENT),
            };
            inode.overlay = Some(Overlay::new(len));
        }
        inode.overlay.as_mut().ok_or(Errno::EIO)
    }

    fn open(&mut self, ino: INodeNo) -> Result<FileHandle, Errno> {
        let inode = self.inode(ino)?;
        if inode.file.is_none() {
            let path = inode.path.clone().ok_or(Errno::ENOENT)?;
            let file = File::options().read(true).write(true).open(&path)?;
            inode.file = Some(Arc::new(file));
        }
        inode.handles += 1;
        let fh = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(fh, ino.0);
        Ok(FileHandle(fh))
    }

    fn release(&mut self, fh: FileHandle) {
        let Some(ino) = self.handles.remove(&fh.0) else {
            return;
        };
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        inode.handles = inode.handles.saturating_sub(1);
        if inode.handles == 0 {
            inode.file = None;
            if inode.path.is_none() {
                self.inodes.remove(&ino);
            }
        }
    }

    fn file(&mut self, ino: INodeNo) -> Result<Arc<File>, Errno> {
        self.inode(ino)?.file.clone().ok_or(Errno::EBADF)
    }

    /// fsync: the pending state goes to the backing file, which is fsynced.
    fn sync(&mut self, ino: INodeNo) -> Result<(), Errno> {
        let file = self.file(ino)?;
        let inode = self.inode(ino)?;
        match &inode.overlay {
            Some(overlay) => overlay.write_back(&file)?,
            None => file.sync_all()?,
        }
        inode.overlay = None;
        Ok(())
    }
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = nanos.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

fn file_attr(ino: INodeNo, meta: &fs::Metadata, size: Option<u64>) -> FileAttr {
    let size = size.unwrap_or(meta.size());
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// The filesystem the kernel talks to.
pub(super) struct Layer {
    pub(super) state: Arc<Mutex<State>>,
}

impl Layer {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// unlink and rmdir: `remove` in the backing directory, then the inode is forgotten.
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        remove: fn(&Path) -> io::Result<()>,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|path| {
            let meta = fs::symlink_metadata(&path)?;
            remove(&path)?;
            state.unlinked(Some(meta));
            Ok(())
        });
        reply_empty(reply, result);
    }
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn reply_entry(reply: ReplyEntry, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Layer {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|p| state.entry(&p));
        reply_entry(reply, result);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        // Times are not kept: nothing here reads them back.
        let result = (|| {
            let path = state.path(ino)?;
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid)?;
            }
            if let Some(size) = size {
                state.overlay(ino)?.set_size(size);
            }
            state.attr(ino)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|path| {
            fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(&path)?;
            state.entry(&path)
        });
        reply_entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, |p| fs::remove_file(p), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, |p| fs::remove_dir(p), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            // RENAME_NOREPLACE / RENAME_EXCHANGE: nothing the node uses.
            reply.error(Errno::EINVAL);
            return;
        }
        let mut state = self.state();
        let result = (|| {
            let from = state.child(parent, name)?;
            let to = state.child(newparent, newname)?;
            let source = fs::symlink_metadata(&from)?;
            // Renaming a file onto itself (or a hard link of it) replaces nothing.
            let replaced = fs::symlink_metadata(&to)
                .ok()
                .filter(|m| (m.dev(), m.ino()) != (source.dev(), source.ino()));
            fs::rename(&from, &to)?;
            state.unlinked(replaced);
            state.moved(&from, &to);
            Ok(())
        })();
        reply_empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Direct I/O: the kernel keeps no page of these files, so what `lose()` drops
        // cannot come back from its cache.
        match self.state().open(ino) {
            Ok(fh) => reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let result = (|| {
            let path = state.child(parent, name)?;
            let mut options = File::options();
            options.read(true).write(true).mode(mode & !umask & 0o7777);
            if flags & libc::O_EXCL != 0 {
                options.create_new(true);
            } else {
                options.create(true);
            }
            drop(options.open(&path)?);
            let attr = state.entry(&path)?;
            let fh = state.open(attr.ino)?;
            Ok((attr, fh))
        })();
        match result {
            Ok((attr, fh)) => {
                reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::FOPEN_DIRECT_IO)
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut state = self.state();
        let result = (|| {
            let file = state.file(ino)?;
            let len = file.metadata()?.len();
            let overlay = state.inode(ino)?.overlay.as_ref();
            let data = match overlay {
                Some(overlay) => overlay.read(&file, offset, size as usize)?,
                None => Overlay::new(len).read(&file, offset, size as usize)?,
            };
            Ok::<_, Errno>(data)
        })();
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        match state.overlay(ino) {
            Ok(overlay) => {
                overlay.write(offset, data);
                reply.written(data.len() as u32);
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) does not make data durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().release(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.state().sync(ino);
        reply_empty(reply, result);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = (|| {
            let path = self.state().path(ino)?;
            let mut entries = vec![
                (ino, FileType::Directory, ".".into()),
                (ino, FileType::Directory, "..".into()),
            ];
            for entry in fs::read_dir(&path)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
                // d_ino is informational; lookups give the real numbers.
                entries.push((INodeNo(meta.ino()), kind, entry.file_name()));
            }
            Ok::<_, Errno>(entries)
        })();
        match listed {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(*ino, i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Names are already in the backing directory; make them durable there too.
        let result = self
            .state()
            .path(ino)
            .and_then(|path| Ok(File::open(path)?.sync_all()?));
        reply_empty(reply, result);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let result = self.state().path(ino).and_then(|path| {
            rustix::fs::statvfs(&path).map_err(|e| Errno::from_i32(e.raw_os_error()))
        });
        match result {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let result = self.state().inode(ino).map(|_| ());
        reply_empty(reply, result);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // Plain allocation only extends the size (a pending change like a write's);
        // hole punching and the other modes are not modelled.
        if mode != 0 {
            reply.error(Errno::EOPNOTSUPP);
            return;
        }
        let mut state = self.state();
        let result = state.overlay(ino).map(|overlay| {
            let end = offset + length;
            if end > overlay.size() {
                overlay.set_size(end);
            }
        });
        reply_empty(reply, result);
    }
}
