//! lazyfs: a FUSE passthrough filesystem over a directory that can lose what was not synced, as a
//! disk loses its volatile cache on power loss. SIGKILL keeps the page cache, so killing a process
//! tests nothing about fsync; killing it and then crashing lazyfs does.
//!
//! # The model
//!
//! - File contents: lazyfs remembers, per file, its length at its last `fsync`/`fdatasync` and the
//!   old bytes of every region below that length overwritten (or truncated away) since. A crash
//!   (`Mount::crash`, or `crash` on the binary's control socket) reverts every file to that state:
//!   the overwritten regions are written back and the file is cut to its synced length. A file
//!   created through lazyfs and never synced becomes empty; a file that existed before it was first
//!   written through lazyfs counts as synced as it was. Appends cost nothing to track, overwrites
//!   only the bytes they replace.
//! - Metadata (create, mkdir, rename, link, unlink, rmdir, chmod) takes effect at once and is
//!   durable at once, like ext4 with `data=ordered` once its journal commits; `fsyncdir` is a no-op.
//!   So the model catches a missing file `fsync`, not a missing directory `fsync`.
//! - `fdatasync` counts as `fsync` (the length is the only metadata kept). A file opened with
//!   `O_SYNC` or `O_DSYNC` is synced after each write. `Options::sync_every_write` syncs every write
//!   of every file: nothing is ever lost, for comparison.
//! - lazyfs never syncs the underlying files: it models a disk; the host's own is not at stake.
//!
//! # What it supports
//!
//! What RocksDB does: open, create, read, write (at any offset), truncate and ftruncate, fallocate
//! (`FALLOC_FL_KEEP_SIZE` is accepted and changes nothing; mode 0 grows the file; other modes get
//! `EOPNOTSUPP`), fsync, fdatasync, flush, release, rename (not `RENAME_EXCHANGE`), link, unlink,
//! mkdir, rmdir, readdir, getattr, setattr, statfs, symlink and readlink. Extended attributes get
//! `ENOSYS`, which the kernel remembers as "not supported". File locks are not implemented, so the
//! kernel keeps POSIX and BSD locks locally (FUSE does so unless the filesystem asks for
//! `FUSE_POSIX_LOCKS`): RocksDB's `fcntl` lock on its LOCK file works between processes.
//!
//! The mount asks for no writeback cache (so every write reaches lazyfs before `write(2)`
//! returns), no `default_permissions` and no `allow_other`: it is meant for root, on a test
//! machine. A crash must come after the writers are dead (a write racing a crash may land on
//! either side of it).
//!
//! # Code map
//!
//! `durability.rs` (the `Tracker`: what is durable, and the revert), `inodes.rs` (FUSE inode
//! numbers and paths), `fs.rs` (the `fuser::Filesystem`), this file (mounting and the crash
//! command), `main.rs` (the `lazyfs` binary with its control socket).

mod durability;
mod fs;
mod inodes;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use durability::CrashReport;
use fuser::{BackgroundSession, INodeNo, MountOption, Notifier};

/// How to mount.
#[derive(Debug, Clone)]
pub struct Options {
    /// Treat every write as synced: a crash loses nothing (to compare with the lossy mode).
    pub sync_every_write: bool,
    /// Threads serving the kernel's requests.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sync_every_write: false,
            threads: 4,
        }
    }
}

/// Crashes a mounted lazyfs: cheap to clone and to send to another thread.
#[derive(Debug, Clone)]
pub struct Crasher {
    shared: Arc<fs::Shared>,
    notifier: Notifier,
}

impl Crasher {
    /// Reverts every file to its state at its last sync, then drops the kernel's cached pages and
    /// attributes of the files that changed. Kill the writers first.
    pub fn crash(&self) -> io::Result<CrashReport> {
        let (report, inos) = self.shared.tracker().crash()?;
        for ino in inos {
            // ENOENT: the kernel does not know the inode (nothing cached). Other errors leave
            // stale pages at worst until the next open, which drops them too.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        Ok(report)
    }

    /// How many files have unsynced changes now.
    pub fn dirty_files(&self) -> usize {
        self.shared.tracker().dirty_files()
    }
}

/// A mounted lazyfs; unmounted when dropped.
#[derive(Debug)]
pub struct Mount {
    session: Mutex<Option<BackgroundSession>>,
    crasher: Crasher,
    mountpoint: PathBuf,
}

impl Mount {
    /// Mounts lazyfs over `backing` (a directory) at `mountpoint` (an existing directory), served by
    /// background threads of this process.
    pub fn new(backing: &Path, mountpoint: &Path, options: &Options) -> io::Result<Mount> {
        let shared = Arc::new(fs::Shared {
            tracker: Mutex::default(),
            sync_every_write: options.sync_every_write,
        });
        let filesystem = fs::LazyFs::new(backing.canonicalize()?, shared.clone())?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("lazyfs".into()),
            MountOption::Subtype("lazyfs".into()),
        ];
        config.n_threads = Some(options.threads.max(1));
        config.clone_fd = options.threads > 1;
        let session = fuser::spawn_mount(filesystem, mountpoint, &config)?;
        let crasher = Crasher {
            shared,
            notifier: session.notifier(),
        };
        tracing::debug!(backing = %backing.display(), mountpoint = %mountpoint.display(), "lazyfs mounted");
        Ok(Mount {
            session: Mutex::new(Some(session)),
            crasher,
            mountpoint: mountpoint.to_owned(),
        })
    }

    /// See `Crasher::crash`.
    pub fn crash(&self) -> io::Result<CrashReport> {
        self.crasher.crash()
    }

    pub fn crasher(&self) -> Crasher {
        self.crasher.clone()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits until the filesystem is unmounted from outside (`umount`).
    pub fn wait(&self) -> io::Result<()> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match session {
            Some(session) => session.join(),
            None => Ok(()),
        }
    }

    /// Unmounts (lazily, if something still has a file open) and stops the serving threads.
    pub fn unmount(&self) -> io::Result<()> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(session) = session else {
            return Ok(());
        };
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                // Busy: detach it; the kernel ends the session once the last file is closed.
                nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|_| e)
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!(mountpoint = %self.mountpoint.display(), error = %e, "lazyfs: unmounting failed");
        }
    }
}
