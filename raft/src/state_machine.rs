//! The MVCC store as openraft's state machine.
//!
//! Committed entries are applied in batches of up to [`MAX_APPLY_BATCH`] with one
//! `Store::apply_batch`, whose atomic write also records the last applied log id and the membership
//! in effect (the store's opaque `applied` position). So a restart finds the store and its position
//! together: nothing is applied twice, nothing skipped.
//!
//! A snapshot is a RocksDB checkpoint of the store (hard links, taken between two applies, so it is
//! exactly the state at its log id) plus a metadata file, kept in `<data-dir>/snapshots/`. Installing
//! one copies the checkpoint into a new store directory (`kv-<term>-<index>`), makes the pointer file
//! `<data-dir>/store` name it (the atomic commit point), and swaps the open store in the shared
//! [`StoreCell`]. A new directory rather than a rename, because the old store may still be open
//! (watchers hold it) and RocksDB locks by path. [`recover_install`] clears leftovers at start.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ballast_store::{DiskStore, StoreOptions, WriteRequest};
use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, Snapshot};
use parking_lot::RwLock;

use crate::codec::{decode, encode};
use crate::fsutil::{remove_dir_if_exists, write_atomically};
use crate::metrics::Metrics;
use crate::types::{LogId, Reply, SnapshotMeta, StoredMembership, TypeConfig};

/// The most entries applied in one store batch.
pub const MAX_APPLY_BATCH: usize = 1024;

/// The store directory until a snapshot is installed.
const STORE_DIR: &str = "kv";
/// Names the current store directory when it is not `kv`.
const STORE_POINTER: &str = "store";
const SNAPSHOTS_DIR: &str = "snapshots";
const SNAPSHOT_META: &str = "ballast-snapshot-meta";

/// The open store, replaceable when a snapshot is installed. Readers take a clone (cheap) per request.
#[derive(Debug)]
pub struct StoreCell {
    store: RwLock<DiskStore>,
}

impl StoreCell {
    pub fn new(store: DiskStore) -> Self {
        Self {
            store: RwLock::new(store),
        }
    }

    pub fn get(&self) -> DiskStore {
        self.store.read().clone()
    }

    fn replace(&self, store: DiskStore) -> DiskStore {
        std::mem::replace(&mut *self.store.write(), store)
    }
}

/// The applied position stored with the data: the last applied log id and the membership.
pub fn decode_applied(bytes: Option<Vec<u8>>) -> io::Result<(Option<LogId>, StoredMembership)> {
    match bytes {
        None => Ok((None, StoredMembership::default())),
        Some(bytes) => Ok(decode("applied position", &bytes)?),
    }
}

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
    name == STORE_DIR || (name.starts_with("kv-") && !name.contains('/'))
}

/// Removes what an installation cut short by a crash, or replaced stores, left behind: every store
/// directory but the current one, and unfinished snapshots. Called before the store is opened.
pub fn recover_install(data_dir: &Path) -> io::Result<()> {
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
    let snapshots = data_dir.join(SNAPSHOTS_DIR);
    std::fs::create_dir_all(&snapshots)?;
    for entry in std::fs::read_dir(&snapshots)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("snap-")
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

#[derive(Debug)]
pub struct StateMachine {
    cell: Arc<StoreCell>,
    data_dir: PathBuf,
    store_opts: StoreOptions,
    metrics: Arc<Metrics>,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl StateMachine {
    pub fn new(
        cell: Arc<StoreCell>,
        data_dir: PathBuf,
        store_opts: StoreOptions,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let store = cell.get();
        let (applied, membership) = decode_applied(store.applied())?;
        metrics
            .applied_index
            .store(applied.map_or(0, |id| id.index), Ordering::Release);
        metrics
            .db_size_bytes
            .store(store.size_bytes(), Ordering::Relaxed);
        Ok(Self {
            cell,
            data_dir,
            store_opts,
            metrics,
            applied,
            membership,
        })
    }

    pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
        data_dir.join(SNAPSHOTS_DIR)
    }

    fn position(&self) -> Vec<u8> {
        encode(&(&self.applied, &self.membership))
    }

    async fn commit(
        &mut self,
        reqs: Vec<WriteRequest>,
        responders: Vec<(
            Option<usize>,
            Option<openraft::storage::ApplyResponder<TypeConfig>>,
        )>,
    ) -> io::Result<()> {
        let store = self.cell.get();
        let position = self.position();
        let started = std::time::Instant::now();
        self.metrics
            .entries_per_apply
            .observe(responders.len() as f64);
        let inline = inline_apply(&reqs);
        let apply = move || {
            store
                .apply_batch(&reqs, Some(&position))
                .map(|results| (results, store.size_bytes()))
        };
        // A few single-key writes take some microseconds: handing them to the blocking pool
        // would cost two thread wake-ups, more than the work, on every lightly loaded write.
        let (results, size) = if inline {
            apply()
        } else {
            tokio::task::spawn_blocking(apply)
                .await
                .map_err(io::Error::other)?
        }
        .map_err(io::Error::other)?;
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .applied_index
            .store(self.applied.map_or(0, |id| id.index), Ordering::Release);
        // Measured once per batch, where the store changes, on every member (the quota reads it).
        self.metrics.db_size_bytes.store(size, Ordering::Relaxed);
        let mut results: Vec<Option<_>> = results.into_iter().map(Some).collect();
        for (slot, responder) in responders {
            let reply = match slot {
                Some(i) => Reply::Store(results[i].take().expect("one result per request")),
                None => Reply::None,
            };
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    fn snapshot_dir(&self, meta: &SnapshotMeta) -> PathBuf {
        let (term, index) = meta
            .last_log_id
            .as_ref()
            .map_or((0, 0), |id| (id.leader_id.term, id.index));
        Self::snapshots_dir(&self.data_dir).join(format!("snap-{term:020}-{index:020}"))
    }

    /// The snapshot directories (`snap-<term>-<index>`, so sorted oldest first), complete or not.
    fn snapshot_dirs(&self) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(Self::snapshots_dir(&self.data_dir))? {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap-"))
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

/// Whether a batch is small enough to apply on the state machine's task: a few puts and
/// single-key deletes (no ranges, transactions, compaction or lease revocation, which may touch
/// many keys).
fn inline_apply(reqs: &[WriteRequest]) -> bool {
    const INLINE_APPLY_MAX: usize = 8;
    fn small(req: &WriteRequest) -> bool {
        match req {
            WriteRequest::Put(_) | WriteRequest::LeaseGrant { .. } => true,
            WriteRequest::DeleteRange(d) => d.range_end.is_empty(),
            WriteRequest::Checked { req, .. } => small(req),
            WriteRequest::Txn(_)
            | WriteRequest::Compact(_)
            | WriteRequest::LeaseRevoke(_)
            | WriteRequest::Auth(_)
            | WriteRequest::Alarm { .. } => false,
        }
    }
    reqs.len() <= INLINE_APPLY_MAX && reqs.iter().all(small)
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

/// A snapshot taken between two applies; building only hands it over.
#[derive(Debug)]
pub struct Builder {
    snapshot: Option<
        Snapshot<
            openraft::alias::CommittedLeaderIdOf<TypeConfig>,
            u64,
            crate::types::MemberNode,
            SnapshotFiles,
        >,
    >,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = SnapshotFiles;

    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::alias::SnapshotOf<TypeConfig, SnapshotFiles>, io::Error> {
        self.snapshot
            .take()
            .ok_or_else(|| io::Error::other("snapshot already built"))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFiles;
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut reqs = Vec::new();
        let mut responders = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id();
            self.applied = Some(log_id);
            let slot = match entry.payload {
                EntryPayload::Normal(command) => match command.store_request(log_id.leader_id.term)
                {
                    Some(req) => {
                        reqs.push(req);
                        Some(reqs.len() - 1)
                    }
                    // An expiry that did not come from the leader of its entry's term.
                    None => None,
                },
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    None
                }
                EntryPayload::Blank => None,
            };
            responders.push((slot, responder));
            if responders.len() >= MAX_APPLY_BATCH {
                self.commit(std::mem::take(&mut reqs), std::mem::take(&mut responders))
                    .await?;
            }
        }
        if !responders.is_empty() {
            self.commit(reqs, responders).await?;
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
        };
        let dir = self.snapshot_dir(&meta);
        let tmp = dir.with_extension("tmp");
        let store = self.cell.get();
        let taken = tokio::task::spawn_blocking({
            let (dir, tmp, meta) = (dir.clone(), tmp.clone(), meta.clone());
            move || -> io::Result<()> {
                remove_dir_if_exists(&tmp)?;
                remove_dir_if_exists(&dir)?;
                store.checkpoint(&tmp).map_err(io::Error::other)?;
                write_meta(&tmp, &meta)?;
                std::fs::rename(&tmp, &dir)
            }
        })
        .await;
        match taken {
            Ok(Ok(())) => {
                if let Err(err) = self.remove_other_snapshots(&dir) {
                    tracing::warn!(%err, "could not remove older snapshots");
                }
                tracing::info!(dir = %dir.display(), "took snapshot");
                Some(Builder {
                    snapshot: Some(Snapshot {
                        meta,
                        snapshot: SnapshotFiles { dir },
                    }),
                })
            }
            Ok(Err(err)) => {
                tracing::error!(%err, "could not take a snapshot");
                None
            }
            Err(err) => {
                tracing::error!(%err, "snapshot task failed");
                None
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        match self.try_create_snapshot_builder(true).await {
            Some(builder) => builder,
            None => Builder { snapshot: None },
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFiles,
    ) -> Result<(), io::Error> {
        let current = self.snapshot_dir(meta);
        let data_dir = self.data_dir.clone();
        let opts = self.store_opts.clone();
        let received = snapshot.dir.clone();
        let new_store = tokio::task::spawn_blocking({
            let (current, meta) = (current.clone(), meta.clone());
            move || -> io::Result<(DiskStore, PathBuf)> {
                if received != current {
                    remove_dir_if_exists(&current)?;
                    std::fs::rename(&received, &current)?;
                    write_meta(&current, &meta)?;
                }
                let name = current
                    .file_name()
                    .map(|n| n.to_string_lossy().replacen("snap-", "kv-", 1))
                    .unwrap_or_default();
                let install = data_dir.join(&name);
                remove_dir_if_exists(&install)?;
                copy_checkpoint(
                    &SnapshotFiles {
                        dir: current.clone(),
                    },
                    &install,
                )?;
                let old = store_dir(&data_dir)?;
                let store = DiskStore::open(&install, opts).map_err(io::Error::other)?;
                // The commit point: from here on a restart opens the installed store.
                write_atomically(&data_dir, STORE_POINTER, name.as_bytes())?;
                Ok((store, old))
            }
        })
        .await
        .map_err(io::Error::other)??;
        let (new_store, old_dir) = new_store;
        let (applied, membership) = decode_applied(new_store.applied())?;
        if applied != meta.last_log_id {
            return Err(io::Error::other(format!(
                "snapshot holds {applied:?}, its metadata says {:?}",
                meta.last_log_id
            )));
        }
        let old = self.cell.replace(new_store);
        old.close();
        drop(old);
        // Handles still held elsewhere keep their open files; Linux frees them when they go.
        if old_dir != store_dir(&self.data_dir)? {
            remove_dir_if_exists(&old_dir)?;
        }
        self.applied = applied;
        self.membership = membership;
        self.metrics
            .applied_index
            .store(self.applied.map_or(0, |id| id.index), Ordering::Release);
        self.metrics
            .db_size_bytes
            .store(self.cell.get().size_bytes(), Ordering::Relaxed);
        self.remove_other_snapshots(&current)?;
        self.metrics
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::alias::SnapshotOf<TypeConfig, SnapshotFiles>>, io::Error> {
        let latest = self
            .snapshot_dirs()?
            .into_iter()
            .rev()
            .find(|dir| dir.join(SNAPSHOT_META).exists());
        match latest {
            Some(dir) => Ok(Some(Snapshot {
                meta: read_meta(&dir)?,
                snapshot: SnapshotFiles { dir },
            })),
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
