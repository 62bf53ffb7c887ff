//! Where a member keeps its store and its snapshots: RocksDB, in the data directory
//! ([`Checkpoints`], the state machine's [`StoreHost`]).
//!
//! A snapshot is a RocksDB checkpoint of the store (hard links, taken between two applies, so it is
//! exactly the state at its log id) plus a metadata file, kept in `<data-dir>/snapshots/`. Installing
//! one copies the checkpoint into a new store directory (`kv-<term>-<index>`) and makes the pointer
//! file `<data-dir>/store` name it (the atomic commit point); the state machine then swaps the open
//! store. A new directory rather than a rename, because the old store may still be open (watchers
//! hold it) and RocksDB locks by path. [`recover_install`] clears leftovers at start.

use std::io;
use std::path::{Path, PathBuf};

use ballast_store::backend::RocksBackend;
use ballast_store::{DiskStore, StoreOptions};

use crate::codec::{decode, encode};
use crate::fsutil::{remove_dir_if_exists, write_atomically};
use crate::layout::{
    INSTALLED_STORE_PREFIX, SNAPSHOTS_DIR, SNAPSHOT_META, SNAPSHOT_PREFIX, STORE_DIR, STORE_POINTER,
};
use crate::state_machine::StoreHost;
use crate::types::SnapshotMeta;

/// The current store directory: the one the pointer file names, or `kv`.
pub fn store_dir(data_dir: &Path) -> io::Result<PathBuf> {
    match std::fs::read_to_string(data_dir.join(STORE_POINTER)) {
        Ok(name) if is_store_dir_name(name.trim()) => Ok(data_dir.join(name.trim())),
        Ok(name) => Err(io::Error::other(format!(
            "{}: bad store directory name {name:?}",
            data_dir.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(data_dir.join(STORE_DIR)),
        Err(e) => Err(e),
    }
}

fn is_store_dir_name(name: &str) -> bool {
    name == STORE_DIR || (name.starts_with(INSTALLED_STORE_PREFIX) && !name.contains('/'))
}

/// Where a member's snapshots are kept.
pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SNAPSHOTS_DIR)
}

/// Removes every store directory but the current one (replaced stores, or an installation a crash
/// cut short).
fn remove_other_stores(data_dir: &Path) -> io::Result<()> {
    let current = store_dir(data_dir)?;
    for entry in std::fs::read_dir(data_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_store_dir_name(&name) && path != current {
            remove_dir_if_exists(&path)?;
        }
    }
    Ok(())
}

/// Removes what an installation cut short by a crash, or replaced stores, left behind: every store
/// directory but the current one, and unfinished snapshots. Called before the store is opened.
pub fn recover_install(data_dir: &Path) -> io::Result<()> {
    remove_other_stores(data_dir)?;
    let snapshots = snapshots_dir(data_dir);
    std::fs::create_dir_all(&snapshots)?;
    for entry in std::fs::read_dir(&snapshots)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(SNAPSHOT_PREFIX)
            || !entry.path().join(SNAPSHOT_META).exists()
        {
            remove_dir_if_exists(&entry.path())?;
        }
    }
    Ok(())
}

/// Where a snapshot's files are: a checkpoint directory with a metadata file.
#[derive(Debug, Clone)]
pub struct SnapshotFiles {
    pub dir: PathBuf,
}

impl SnapshotFiles {
    /// The data files, in a fixed order (metadata excluded).
    pub fn files(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name != SNAPSHOT_META {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Written atomically: a crash between creating the file and syncing it would leave an empty or
/// torn metadata file, which start-up takes for a complete snapshot and cannot read (found by
/// `tests/durability.rs` under power loss). A directory without the file is removed at start.
fn write_meta(dir: &Path, meta: &SnapshotMeta) -> io::Result<()> {
    write_atomically(dir, SNAPSHOT_META, &encode(meta))
}

pub fn read_meta(dir: &Path) -> io::Result<SnapshotMeta> {
    Ok(decode(
        "snapshot metadata",
        &std::fs::read(dir.join(SNAPSHOT_META))?,
    )?)
}

/// Copies a snapshot's checkpoint: SST files (immutable) are hard-linked, the rest copied,
/// everything synced.
fn copy_checkpoint(from: &SnapshotFiles, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for name in from.files()? {
        let (source, target) = (from.dir.join(&name), to.join(&name));
        if name.ends_with(".sst") {
            std::fs::hard_link(source, &target)?;
        } else {
            std::fs::copy(source, &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    std::fs::File::open(to)?.sync_all()
}

/// A member's data directory as the state machine's host: the store in `kv` (or the directory
/// `store` names), snapshots as checkpoints in `snapshots/`.
#[derive(Debug)]
pub struct Checkpoints {
    data_dir: PathBuf,
    /// How an installed snapshot's store is opened.
    store_opts: StoreOptions,
}

impl Checkpoints {
    pub fn new(data_dir: PathBuf, store_opts: StoreOptions) -> Self {
        Self {
            data_dir,
            store_opts,
        }
    }

    fn snapshot_dir(&self, meta: &SnapshotMeta) -> PathBuf {
        let (term, index) = meta
            .last_log_id
            .as_ref()
            .map_or((0, 0), |id| (id.leader_id.term, id.index));
        snapshots_dir(&self.data_dir).join(format!("{SNAPSHOT_PREFIX}{term:020}-{index:020}"))
    }

    /// The snapshot directories (`snap-<term>-<index>`, so sorted oldest first), complete or not.
    fn snapshot_dirs(&self) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(snapshots_dir(&self.data_dir))? {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(SNAPSHOT_PREFIX))
            {
                dirs.push(path);
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// Removes every snapshot but `keep`.
    fn remove_other_snapshots(&self, keep: &Path) -> io::Result<()> {
        for dir in self.snapshot_dirs()? {
            if dir != keep {
                remove_dir_if_exists(&dir)?;
            }
        }
        Ok(())
    }
}

async fn blocking<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)
}

impl StoreHost for Checkpoints {
    type Backend = RocksBackend;
    type Snapshot = SnapshotFiles;

    async fn run<R: Send + 'static>(
        &self,
        heavy: bool,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<R> {
        if heavy {
            blocking(work).await
        } else {
            Ok(work())
        }
    }

    async fn take_snapshot(
        &self,
        store: &DiskStore,
        meta: &SnapshotMeta,
    ) -> io::Result<SnapshotFiles> {
        let dir = self.snapshot_dir(meta);
        let tmp = dir.with_extension("tmp");
        let (store, meta) = (store.clone(), meta.clone());
        blocking({
            let dir = dir.clone();
            move || -> io::Result<()> {
                remove_dir_if_exists(&tmp)?;
                remove_dir_if_exists(&dir)?;
                store.checkpoint(&tmp).map_err(io::Error::other)?;
                write_meta(&tmp, &meta)?;
                std::fs::rename(&tmp, &dir)
            }
        })
        .await??;
        if let Err(err) = self.remove_other_snapshots(&dir) {
            tracing::warn!(%err, "could not remove older snapshots");
        }
        tracing::info!(dir = %dir.display(), "took snapshot");
        Ok(SnapshotFiles { dir })
    }

    async fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFiles,
    ) -> io::Result<DiskStore> {
        let current = self.snapshot_dir(meta);
        let (data_dir, opts, meta) = (self.data_dir.clone(), self.store_opts.clone(), meta.clone());
        blocking(move || -> io::Result<DiskStore> {
            if snapshot.dir != current {
                remove_dir_if_exists(&current)?;
                std::fs::rename(&snapshot.dir, &current)?;
                write_meta(&current, &meta)?;
            }
            let name = current
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .replacen(SNAPSHOT_PREFIX, INSTALLED_STORE_PREFIX, 1)
                })
                .unwrap_or_default();
            let install = data_dir.join(&name);
            remove_dir_if_exists(&install)?;
            copy_checkpoint(&SnapshotFiles { dir: current }, &install)?;
            let store = DiskStore::open(&install, opts).map_err(io::Error::other)?;
            // The commit point: from here on a restart opens the installed store.
            write_atomically(&data_dir, STORE_POINTER, name.as_bytes())?;
            Ok(store)
        })
        .await?
    }

    fn installed(&self, meta: &SnapshotMeta, _old: DiskStore) -> io::Result<()> {
        // Handles still held elsewhere keep the old store's open files; Linux frees them when they go.
        remove_other_stores(&self.data_dir)?;
        self.remove_other_snapshots(&self.snapshot_dir(meta))
    }

    async fn current_snapshot(&self) -> io::Result<Option<(SnapshotMeta, SnapshotFiles)>> {
        let latest = self
            .snapshot_dirs()?
            .into_iter()
            .rev()
            .find(|dir| dir.join(SNAPSHOT_META).exists());
        match latest {
            Some(dir) => Ok(Some((read_meta(&dir)?, SnapshotFiles { dir }))),
            None => Ok(None),
        }
        .or_else(|err: io::Error| {
            // Replaced by a newer snapshot meanwhile: ask again later.
            if err.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(err)
            }
        })
    }
}
