//! A small FUSE layer that loses unfsynced writes on command, for the
//! `lose-unfsynced-writes` nemesis: a SIGKILL alone leaves the kernel's page cache intact,
//! so a node that forgot an fsync would read its writes back after a restart and the test
//! could not tell.
//!
//! [`LazyFs::mount`] mirrors a backing directory at a mount point. Data written to a file
//! stays in the layer's memory (per inode: dirty byte ranges and a pending size, see
//! `overlay`) until the file is fsynced (fsync or fdatasync; then the backing file is
//! written and fsynced); reads merge the backing file with those pending bytes. Every file
//! is opened with direct I/O, so the kernel caches none of its pages.
//! [`LazyFs::lose`] drops every pending write and size change of the mount, as a power
//! loss drops dirty pages.
//!
//! What is modelled is lost data, not lost names: create, mkdir, unlink, rmdir and rename
//! go straight to the backing directory and survive `lose()` whether or not the
//! directory was fsynced. `sync_file_range(2)` never reaches a FUSE filesystem (the kernel
//! answers it from its page cache, which direct I/O leaves empty), so it makes nothing
//! durable here. Locks (flock, fcntl) stay in the kernel, local to the mount. Symlinks,
//! hard links, device nodes and extended attributes are answered with an error.

mod fs;
mod overlay;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{BackgroundSession, Config, MountOption};

use self::fs::{Layer, State};

/// The source name of the layer's mounts (in `/proc/self/mounts`), to find stale ones.
const FS_NAME: &str = "raftmq-lazyfs";

/// ENOTCONN: what a mount whose FUSE process died answers.
const NOT_CONNECTED: i32 = 107;

/// One mount of the layer; unmounted when dropped.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

impl LazyFs {
    /// Mounts the layer over `backing` at `mountpoint` (both created if missing; a stale
    /// mount left there by a crashed run is cleared first).
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<LazyFs> {
        std::fs::create_dir_all(backing)?;
        clear_if_stale(mountpoint)?;
        std::fs::create_dir_all(mountpoint)?;
        let state = Arc::new(Mutex::new(State::new(backing)?));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.to_string()),
            MountOption::NoAtime,
        ];
        // One thread per mount: every request takes the layer's lock anyway.
        config.n_threads = Some(1);
        let layer = Layer {
            state: state.clone(),
        };
        let session = fuser::spawn_mount2(layer, mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mounting the FUSE layer at {}: {e}", mountpoint.display()),
            )
        })?;
        Ok(LazyFs {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    /// Drops every write and size change not fsynced yet; the bytes dropped.
    pub fn lose(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lose()
    }

    /// Bytes written and not fsynced yet.
    pub fn dirty_bytes(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dirty_bytes()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts (what drop does, with the error reported).
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_now()
    }

    fn unmount_now(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.umount_and_join().is_err() {
            // Busy (a process still in it): detach it, it goes when the last user does.
            lazy_unmount(&self.mountpoint)?;
        }
        Ok(())
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_now() {
            eprintln!("unmounting {}: {e}", self.mountpoint.display());
        }
    }
}

/// A mount point whose FUSE process is gone answers ENOTCONN to everything: detach it.
fn clear_if_stale(mountpoint: &Path) -> io::Result<()> {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(NOT_CONNECTED) => lazy_unmount(mountpoint),
        _ => Ok(()),
    }
}

fn lazy_unmount(mountpoint: &Path) -> io::Result<()> {
    let detached = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(mountpoint)
        .status()
        .is_ok_and(|s| s.success())
        || Command::new("umount")
            .arg("-l")
            .arg(mountpoint)
            .status()
            .is_ok_and(|s| s.success());
    if detached {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "could not unmount {}",
            mountpoint.display()
        )))
    }
}

/// Detaches every mount of the layer whose process died (a crashed earlier run), so that
/// its directories can be removed and its paths reused. Live mounts are left alone.
pub fn sweep_stale_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        if fields.next() != Some(FS_NAME) {
            continue;
        }
        if let Some(path) = fields.next() {
            // /proc/mounts escapes space, tab, newline and backslash as octal.
            let path = path
                .replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\");
            if let Err(e) = clear_if_stale(Path::new(&path)) {
                eprintln!("stale FUSE mount {path}: {e}");
            }
        }
    }
}
