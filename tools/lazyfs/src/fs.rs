//! The FUSE filesystem: every operation passes through to the underlying directory, and every
//! change to file contents is first reported to the `Tracker`, so that a crash can undo what was
//! not synced.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{
    DirBuilderExt, DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::durability::Tracker;
use crate::inodes::Inodes;

/// How long the kernel may cache attributes and names. Short, so that a test that looks at the
/// underlying directory and the mount sees one picture; a crash also invalidates explicitly.
const TTL: Duration = Duration::from_secs(1);

/// What the filesystem and its controllers (`Mount::crash`, the control socket) share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tracker: Mutex<Tracker>,
    /// Every write counts as synced: nothing is ever lost (the comparison mode).
    pub(crate) sync_every_write: bool,
}

impl Shared {
    pub(crate) fn tracker(&self) -> MutexGuard<'_, Tracker> {
        lock(&self.tracker)
    }
}

/// An open file.
#[derive(Debug, Clone)]
struct Handle {
    file: Arc<File>,
    ino: u64,
    /// Opened with O_SYNC or O_DSYNC: each write makes the file durable.
    sync_writes: bool,
}

#[derive(Debug)]
struct DirEntry {
    ino: u64,
    kind: FileType,
    name: OsString,
}

#[derive(Debug)]
pub(crate) struct LazyFs {
    root: PathBuf,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, Handle>>,
    /// An open directory's entries, read at opendir (so that offsets stay meaningful).
    dirs: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_fh: AtomicU64,
    shared: Arc<Shared>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Result<T> = std::result::Result<T, Errno>;

impl LazyFs {
    pub(crate) fn new(root: PathBuf, shared: Arc<Shared>) -> io::Result<LazyFs> {
        let root_ino = std::fs::metadata(&root)?.ino();
        Ok(LazyFs {
            root,
            inodes: Mutex::new(Inodes::new(root_ino)),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            shared,
        })
    }

    fn backing(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn rel_path(&self, ino: INodeNo) -> Result<PathBuf> {
        lock(&self.inodes).path(ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf> {
        Ok(self.rel_path(parent)?.join(name))
    }

    fn handle(&self, fh: FileHandle) -> Result<Handle> {
        lock(&self.files).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Stats `rel` (not following a symlink) and records that it leads to its inode.
    fn entry(&self, rel: PathBuf) -> Result<FileAttr> {
        let meta = std::fs::symlink_metadata(self.backing(&rel))?;
        let mut inodes = lock(&self.inodes);
        let ino = inodes.fuse_ino(meta.ino());
        inodes.add(ino, rel);
        Ok(attr(&meta, ino))
    }

    fn getattr_inner(&self, ino: INodeNo, fh: Option<FileHandle>) -> Result<FileAttr> {
        if let Some(handle) = fh.and_then(|fh| self.handle(fh).ok()) {
            return Ok(attr(&handle.file.metadata()?, ino.0));
        }
        let meta = std::fs::symlink_metadata(self.backing(&self.rel_path(ino)?))?;
        Ok(attr(&meta, ino.0))
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr_inner(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr> {
        let handle = fh.and_then(|fh| self.handle(fh).ok());
        let path = || -> Result<PathBuf> { Ok(self.backing(&self.rel_path(ino)?)) };
        let open = |write: bool| -> Result<Arc<File>> {
            match &handle {
                Some(h) => Ok(h.file.clone()),
                None => Ok(Arc::new(
                    OpenOptions::new().read(true).write(write).open(path()?)?,
                )),
            }
        };
        if let Some(size) = size {
            let file = open(true)?;
            let mut tracker = self.shared.tracker();
            if !self.shared.sync_every_write {
                tracker.before_set_len(ino.0, &file, size)?;
            }
            file.set_len(size)?;
        }
        if let Some(mode) = mode {
            let perm = Permissions::from_mode(mode & 0o7777);
            match &handle {
                Some(h) => h.file.set_permissions(perm)?,
                None => std::fs::set_permissions(path()?, perm)?,
            }
        }
        if uid.is_some() || gid.is_some() {
            match &handle {
                Some(h) => std::os::unix::fs::fchown(&*h.file, uid, gid)?,
                None => std::os::unix::fs::lchown(path()?, uid, gid)?,
            }
        }
        if atime.is_some() || mtime.is_some() {
            let resolve = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut times = std::fs::FileTimes::new();
            if let Some(t) = atime {
                times = times.set_accessed(resolve(t));
            }
            if let Some(t) = mtime {
                times = times.set_modified(resolve(t));
            }
            open(false)?.set_times(times)?;
        }
        self.getattr_inner(ino, fh)
    }

    fn open_inner(&self, ino: INodeNo, flags: OpenFlags) -> Result<u64> {
        let path = self.backing(&self.rel_path(ino)?);
        // Read-write whenever writing at all: a crash may need to read what a write replaces.
        let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        let fh = self.new_fh();
        let handle = Handle {
            file: Arc::new(file),
            ino: ino.0,
            sync_writes: flags.0 & libc::O_DSYNC != 0,
        };
        lock(&self.files).insert(fh, handle);
        Ok(fh)
    }

    fn create_inner(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64)> {
        let rel = self.child(parent, name)?;
        let path = self.backing(&rel);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).mode(mode & !umask & 0o7777);
        let (file, new) = match opts.clone().create_new(true).open(&path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 => {
                (opts.open(&path)?, false)
            }
            Err(e) => return Err(e.into()),
        };
        let file = Arc::new(file);
        let attr = self.entry(rel)?;
        if !self.shared.sync_every_write {
            let mut tracker = self.shared.tracker();
            if new {
                tracker.created(attr.ino.0, &file);
            } else if flags & libc::O_TRUNC != 0 {
                tracker.before_set_len(attr.ino.0, &file, 0)?;
                file.set_len(0)?;
            }
        }
        let fh = self.new_fh();
        let handle = Handle {
            file,
            ino: attr.ino.0,
            sync_writes: flags & libc::O_DSYNC != 0,
        };
        lock(&self.files).insert(fh, handle);
        Ok((attr, fh))
    }

    fn write_inner(&self, fh: FileHandle, offset: u64, data: &[u8]) -> Result<u32> {
        let handle = self.handle(fh)?;
        let mut tracker = self.shared.tracker();
        let track = !self.shared.sync_every_write;
        if track {
            tracker.before_write(handle.ino, &handle.file, offset, data.len() as u64)?;
        }
        handle.file.write_all_at(data, offset)?;
        if track && handle.sync_writes {
            tracker.synced(handle.ino);
        }
        Ok(data.len() as u32)
    }

    fn fallocate_inner(&self, fh: FileHandle, offset: u64, length: u64, mode: i32) -> Result<()> {
        if mode == libc::FALLOC_FL_KEEP_SIZE {
            // Reserving space changes no contents.
            return Ok(());
        }
        if mode != 0 {
            return Err(Errno::from_i32(libc::EOPNOTSUPP));
        }
        // Plain allocation: the file grows to cover the range, with zeros (as a hole reads).
        let handle = self.handle(fh)?;
        let end = offset.saturating_add(length);
        let mut tracker = self.shared.tracker();
        if handle.file.metadata()?.len() < end {
            if !self.shared.sync_every_write {
                tracker.before_set_len(handle.ino, &handle.file, end)?;
            }
            handle.file.set_len(end)?;
        }
        Ok(())
    }

    fn opendir_inner(&self, ino: INodeNo) -> Result<u64> {
        let path = self.backing(&self.rel_path(ino)?);
        let mut entries = vec![
            DirEntry {
                ino: ino.0,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntry {
                ino: ino.0,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        let inodes = lock(&self.inodes);
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            entries.push(DirEntry {
                ino: inodes.fuse_ino(entry.ino()),
                kind,
                name: entry.file_name(),
            });
        }
        drop(inodes);
        let fh = self.new_fh();
        lock(&self.dirs).insert(fh, entries);
        Ok(fh)
    }

    fn unlink_inner(&self, parent: INodeNo, name: &OsStr) -> Result<()> {
        let rel = self.child(parent, name)?;
        let path = self.backing(&rel);
        let meta = std::fs::symlink_metadata(&path)?;
        std::fs::remove_file(&path)?;
        let ino = lock(&self.inodes).fuse_ino(meta.ino());
        lock(&self.inodes).remove(ino, &rel);
        if meta.nlink() <= 1 {
            self.shared.tracker().forget(ino);
        }
        Ok(())
    }

    fn rmdir_inner(&self, parent: INodeNo, name: &OsStr) -> Result<()> {
        let rel = self.child(parent, name)?;
        let path = self.backing(&rel);
        let meta = std::fs::symlink_metadata(&path)?;
        std::fs::remove_dir(&path)?;
        let mut inodes = lock(&self.inodes);
        let ino = inodes.fuse_ino(meta.ino());
        inodes.remove(ino, &rel);
        Ok(())
    }

    fn rename_inner(
        &self,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        let (from_rel, to_rel) = (self.child(parent, name)?, self.child(newparent, newname)?);
        let (from, to) = (self.backing(&from_rel), self.backing(&to_rel));
        let source = std::fs::symlink_metadata(&from)?;
        let replaced = std::fs::symlink_metadata(&to).ok();
        if replaced.is_some() && flags.contains(RenameFlags::RENAME_NOREPLACE) {
            return Err(Errno::from_i32(libc::EEXIST));
        }
        std::fs::rename(&from, &to)?;
        if replaced.as_ref().is_some_and(|r| r.ino() == source.ino()) {
            // Two links of one file: rename(2) does nothing.
            return Ok(());
        }
        lock(&self.inodes).renamed(&from_rel, &to_rel);
        if let Some(replaced) = replaced {
            if !replaced.is_dir() && replaced.nlink() <= 1 {
                let ino = lock(&self.inodes).fuse_ino(replaced.ino());
                self.shared.tracker().forget(ino);
            }
        }
        Ok(())
    }

    fn statfs_inner(&self) -> Result<nix::sys::statvfs::Statvfs> {
        nix::sys::statvfs::statvfs(&self.root).map_err(|e| Errno::from_i32(e as i32))
    }
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = nanos.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0) + Duration::new(0, nanos)
    }
}

fn attr(meta: &std::fs::Metadata, ino: u64) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: meta.blksize() as u32,
        flags: 0,
    }
}

/// Reads from `offset` until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn reply_empty(reply: ReplyEmpty, result: Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn reply_entry(reply: ReplyEntry, result: Result<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn reply_attr(reply: ReplyAttr, result: Result<FileAttr>) {
    match result {
        Ok(attr) => reply.attr(&TTL, &attr),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(
            reply,
            self.child(parent, name).and_then(|rel| self.entry(rel)),
        );
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        reply_attr(reply, self.getattr_inner(ino, fh));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply_attr(
            reply,
            self.setattr_inner(ino, mode, uid, gid, size, atime, mtime, fh),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .rel_path(ino)
            .and_then(|rel| std::fs::read_link(self.backing(&rel)).map_err(Errno::from))
        {
            Ok(target) => reply.data(target.as_os_str().as_bytes()),
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
        let result = self.child(parent, name).and_then(|rel| {
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(self.backing(&rel))?;
            self.entry(rel)
        });
        reply_entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.unlink_inner(parent, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.rmdir_inner(parent, name));
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let result = self.child(parent, link_name).and_then(|rel| {
            std::os::unix::fs::symlink(target, self.backing(&rel))?;
            self.entry(rel)
        });
        reply_entry(reply, result);
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
        reply_empty(
            reply,
            self.rename_inner(parent, name, newparent, newname, flags),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = self.rel_path(ino).and_then(|from| {
            let to = self.child(newparent, newname)?;
            std::fs::hard_link(self.backing(&from), self.backing(&to))?;
            self.entry(to)
        });
        reply_entry(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // No FOPEN_KEEP_CACHE: each open drops the kernel's cached pages of the file, so that a
        // process started after a crash reads what the crash left.
        match self.open_inner(ino, flags) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.handle(fh).and_then(|handle| {
            let mut buf = vec![0; size as usize];
            let n = read_full(&handle.file, &mut buf, offset)?;
            buf.truncate(n);
            Ok(buf)
        });
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.write_inner(fh, offset, data) {
            Ok(n) => reply.written(n),
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
        // close(2) makes nothing durable.
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
        lock(&self.files).remove(&fh.0);
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
        // The underlying file is not synced: lazyfs models the disk, the host's own is not at
        // stake. fdatasync counts as fsync: the size is all the metadata the model keeps.
        self.shared.tracker().synced(ino.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.opendir_inner(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dirs = lock(&self.dirs);
        let Some(entries) = dirs.get(&fh.0) else {
            reply.error(Errno::EBADF);
            return;
        };
        for (i, entry) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(entry.ino), (i + 1) as u64, entry.kind, &entry.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Metadata is durable at once in this model.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.statfs_inner() {
            Ok(st) => reply.statfs(
                st.blocks(),
                st.blocks_free(),
                st.blocks_available(),
                st.files(),
                st.files_free(),
                u32::try_from(st.block_size()).unwrap_or(4096),
                u32::try_from(st.name_max()).unwrap_or(255),
                u32::try_from(st.fragment_size()).unwrap_or(4096),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Everything runs as root.
        reply.ok();
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
        match self.create_inner(parent, name, mode, umask, flags) {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.fallocate_inner(fh, offset, length, mode));
    }
}
