//! `Store`: the MVCC key-value store. Opening recovers the last committed state; reads run on the
//! caller's thread at a committed revision; writes are serialized by one lock and committed as one
//! atomic batch each; watches and physical compaction run on the store's own threads.
//!
//! Every method but `Watcher::recv` blocks on storage: an async caller runs it off its worker
//! (`spawn_blocking`, or `block_in_place` for short reads; ARCHITECTURE.md, "Where blocking work runs").

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::auth::{AuthState, Tokens};
#[cfg(feature = "rocks")]
use crate::backend::RocksBackend;
use crate::backend::{Backend, Batch, Cursor, MemoryBackend, RocksOptions, Space};
use crate::compact::{compact_loop, Compactor};
use crate::encoding::{
    decode_alarms, decode_i64, Alarms, META_ALARMS, META_APPLIED, META_AUTH, META_COMPACT,
    META_COMPACT_DONE, META_LEASE_SEQ, META_REV,
};
use crate::error::{BackendError, Result, StoreError};
use crate::latest::Latest;
use crate::lease::{Clock, Lessor, MonotonicClock};
use crate::range::{evaluate, read_revision};
use crate::txn::{check_range, check_txn};
use crate::types::{
    DeleteRangeRequest, DeleteRangeResponse, LeaseId, LeaseStatus, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, TxnRequest, TxnResponse,
};
use crate::watch::{sync_loop, Hub, WatchRequest, WatchStats, Watcher};
use crate::write::{Exec, WriteRequest, WriteResponse};

/// How a store behaves. The defaults are etcd's.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Make each commit durable (fsync) before it returns. A replicated member, whose raft log is
    /// the durable record, turns this off.
    pub sync: bool,
    /// The time source for lease deadlines.
    pub clock: Arc<dyn Clock>,
    /// Lease TTLs below this many seconds are raised to it.
    pub min_lease_ttl: i64,
    /// etcd's `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// Responses buffered per watcher before it falls back to catching up from disk.
    pub watch_capacity: usize,
    /// Revision-log entries handled per physical compaction batch.
    pub compaction_batch: usize,
    /// Revoke expired leases from a store thread. Off when someone else decides expiry (raft).
    pub expire_leases: bool,
    /// Memory for the newest versions of recently written keys, which serve point reads and a
    /// write's lookup of a key's current version without the backend (`latest.rs`); 0 turns it off.
    pub latest_cache_bytes: u64,
    pub rocks: RocksOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: true,
            clock: Arc::new(MonotonicClock::default()),
            min_lease_ttl: 2,
            max_txn_ops: 128,
            watch_capacity: 128,
            compaction_batch: 1000,
            expire_leases: true,
            latest_cache_bytes: 64 << 20,
            rocks: RocksOptions::default(),
        }
    }
}

/// A summary of the store's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub revision: i64,
    pub compact_revision: i64,
    /// The newest compaction whose superseded versions are physically gone.
    pub compacted_physically: i64,
    pub size_bytes: u64,
    pub applied: Option<Vec<u8>>,
}

pub(crate) struct Inner<B: Backend> {
    pub backend: B,
    pub opts: StoreOptions,
    /// Serializes writers; holds the lease-id sequence.
    lease_seq: Mutex<i64>,
    current_rev: AtomicI64,
    compact_rev: AtomicI64,
    applied: Mutex<Option<Vec<u8>>>,
    pub lessor: Mutex<Lessor>,
    pub hub: Arc<Hub>,
    pub compactor: Compactor,
    /// The newest versions of recently written keys (filled by the writer only).
    pub latest: Latest,
    /// Users, roles and permissions: replaced whole by the writer after a commit that changes them.
    pub auth: RwLock<Arc<AuthState>>,
    tokens: Tokens,
    /// Raised alarms (etcd's are replicated: every member sees every member's).
    pub alarms: RwLock<Arc<Alarms>>,
    failed: AtomicBool,
}

impl<B: Backend> Inner<B> {
    pub fn compact_rev(&self) -> i64 {
        self.compact_rev.load(Ordering::Acquire)
    }

    /// Marks the store unusable after a storage failure: memory and disk may disagree.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    fn check_healthy(&self) -> Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(BackendError::Corrupt {
                space: "store",
                what: "an earlier write failed",
            }));
        }
        Ok(())
    }
}

/// Stops the store's threads when the last handle goes.
struct Threads<B: Backend> {
    inner: Arc<Inner<B>>,
    handles: Vec<JoinHandle<()>>,
    stop_leases: Arc<AtomicBool>,
}

impl<B: Backend> Drop for Threads<B> {
    fn drop(&mut self) {
        self.inner.hub.shutdown();
        self.inner.compactor.shutdown();
        self.stop_leases.store(true, Ordering::SeqCst);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// The MVCC store. Cheap to clone; the last clone dropped stops its threads and closes the backend.
pub struct Store<B: Backend> {
    inner: Arc<Inner<B>>,
    _threads: Arc<Threads<B>>,
}

impl<B: Backend> Clone for Store<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _threads: self._threads.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.revision())
            .field("compacted", &self.compact_revision())
            .finish()
    }
}

#[cfg(feature = "rocks")]
pub type DiskStore = Store<RocksBackend>;
pub type MemStore = Store<MemoryBackend>;

#[cfg(feature = "rocks")]
impl Store<RocksBackend> {
    /// Opens (or creates) a store in the directory `path`, recovering its last committed state.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Self> {
        let backend = RocksBackend::open(path.as_ref(), &opts.rocks)?;
        Self::with_backend(backend, opts)
    }
}

impl Store<MemoryBackend> {
    pub fn in_memory(opts: StoreOptions) -> Result<Self> {
        Self::with_backend(MemoryBackend::new(), opts)
    }
}

fn meta_i64<B: Backend>(backend: &B, key: &[u8], default: i64) -> Result<i64, BackendError> {
    backend
        .get(Space::Meta, key)?
        .map_or(Ok(default), |v| decode_i64(&v, "meta"))
}

impl<B: Backend> Store<B> {
    pub fn with_backend(backend: B, opts: StoreOptions) -> Result<Self> {
        // A fresh store is at revision 1, so the first write is revision 2 (as etcd).
        let rev = meta_i64(&backend, META_REV, 1)?;
        // -1 = never compacted (etcd's initial compactMainRev), so that compacting to 0 works once.
        let compact = meta_i64(&backend, META_COMPACT, -1)?;
        let compact_done = meta_i64(&backend, META_COMPACT_DONE, 0)?;
        let lease_seq = meta_i64(&backend, META_LEASE_SEQ, 0)?;
        let applied = backend.get(Space::Meta, META_APPLIED)?;
        let lessor = load_leases(&backend, opts.clock.now())?;
        let auth = match backend.get(Space::Meta, META_AUTH)? {
            Some(bytes) => AuthState::decode(&bytes)?,
            None => AuthState::default(),
        };
        let alarms = backend
            .get(Space::Meta, META_ALARMS)?
            .map_or(Ok(Alarms::new()), |b| decode_alarms(&b))?;
        let inner = Arc::new(Inner {
            hub: Arc::new(Hub::new(rev, compact, opts.watch_capacity)),
            compactor: Compactor::new(compact, compact_done),
            backend,
            lease_seq: Mutex::new(lease_seq),
            current_rev: AtomicI64::new(rev),
            compact_rev: AtomicI64::new(compact),
            applied: Mutex::new(applied),
            lessor: Mutex::new(lessor),
            failed: AtomicBool::new(false),
            latest: Latest::new(opts.latest_cache_bytes),
            auth: RwLock::new(Arc::new(auth)),
            tokens: Tokens::default(),
            alarms: RwLock::new(Arc::new(alarms)),
            opts,
        });
        let mut handles = Vec::new();
        let (hub, sync_inner) = (inner.hub.clone(), inner.clone());
        handles.push(spawn("ballast-watch-sync", move || {
            sync_loop(hub, &sync_inner.backend)
        })?);
        let compact_inner = inner.clone();
        handles.push(spawn("ballast-compact", move || {
            compact_loop(compact_inner)
        })?);
        let stop_leases = Arc::new(AtomicBool::new(false));
        if inner.opts.expire_leases {
            let (weak, stop) = (Arc::downgrade(&inner), stop_leases.clone());
            handles.push(spawn("ballast-lease-expiry", move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    let Some(inner) = weak.upgrade() else { return };
                    let expired = inner.lessor.lock().expired(inner.opts.clock.now());
                    for id in expired {
                        match commit_batch(&inner, &[WriteRequest::LeaseRevoke(id)], None) {
                            Err(err) => tracing::error!(%err, "lease expiry failed"),
                            Ok(mut out) => match out.pop() {
                                // Revoked meanwhile by someone else: nothing to do.
                                Some(Err(StoreError::LeaseNotFound)) | Some(Ok(_)) | None => {}
                                Some(Err(err)) => {
                                    tracing::error!(%err, lease = id, "lease expiry failed")
                                }
                            },
                        }
                    }
                }
            })?);
        }
        let threads = Threads {
            inner: inner.clone(),
            handles,
            stop_leases,
        };
        let store = Store {
            inner,
            _threads: Arc::new(threads),
        };
        Ok(store)
    }

    pub fn revision(&self) -> i64 {
        self.inner.current_rev.load(Ordering::Acquire)
    }

    pub fn compact_revision(&self) -> i64 {
        self.inner.compact_rev()
    }

    pub fn status(&self) -> Status {
        Status {
            revision: self.revision(),
            compact_revision: self.compact_revision(),
            compacted_physically: self.inner.compactor.done(),
            size_bytes: self.size_bytes(),
            applied: self.inner.applied.lock().clone(),
        }
    }

    /// The database's size on disk (RocksDB's SST files and memtables).
    pub fn size_bytes(&self) -> u64 {
        self.inner.backend.size()
    }

    /// The opaque position last passed to [`Store::apply_batch`], as of the last commit.
    pub fn applied(&self) -> Option<Vec<u8>> {
        self.inner.applied.lock().clone()
    }

    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// etcd's Range.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        self.inner.check_healthy()?;
        check_range(req)?;
        let current = self.revision();
        let rev = read_revision(req.revision, current, self.compact_revision())?;
        let resp = evaluate(&self.inner.backend, &self.inner.latest, req, rev, None)?;
        // A compaction that started while we read may have removed what we needed.
        if rev < self.compact_revision() {
            return Err(StoreError::Compacted);
        }
        Ok(RangeResponse {
            revision: current,
            ..resp
        })
    }

    pub fn put(&self, req: PutRequest) -> Result<PutResponse> {
        match self.apply_one(WriteRequest::Put(req))? {
            WriteResponse::Put(r) => Ok(r),
            other => unreachable!("put answered {other:?}"),
        }
    }

    pub fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        match self.apply_one(WriteRequest::DeleteRange(req))? {
            WriteResponse::DeleteRange(r) => Ok(r),
            other => unreachable!("delete answered {other:?}"),
        }
    }

    /// etcd's Txn. A transaction with no put or delete anywhere runs as a read, without the write lock.
    pub fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        if is_read_only(&req) {
            self.inner.check_healthy()?;
            check_txn(&req, self.inner.opts.max_txn_ops)?;
            let compacted_before = self.compact_revision();
            let mut exec = Exec::new(&self.inner, self.revision(), 0);
            let resp = exec.txn(&req)?;
            debug_assert!(exec.batch.is_empty());
            // As for Range: a compaction that started while we read may have removed what we read.
            let compacted = self.compact_revision();
            if compacted != compacted_before && oldest_read(&req).is_some_and(|rev| rev < compacted)
            {
                return Err(StoreError::Compacted);
            }
            return Ok(resp);
        }
        match self.apply_one(WriteRequest::Txn(req))? {
            WriteResponse::Txn(r) => Ok(r),
            other => unreachable!("txn answered {other:?}"),
        }
    }

    /// Records a compaction at `rev`; reads below it fail from now on. Superseded versions are removed
    /// in the background; [`Store::wait_compacted`] waits for that.
    pub fn compact(&self, rev: i64) -> Result<i64> {
        match self.apply_one(WriteRequest::Compact(rev))? {
            WriteResponse::Compact { revision } => Ok(revision),
            other => unreachable!("compact answered {other:?}"),
        }
    }

    /// Blocks until history below `rev` is physically removed.
    pub fn wait_compacted(&self, rev: i64) {
        self.inner.compactor.wait(rev);
    }

    /// Grants a lease of `ttl` seconds (id 0: the store picks one). Returns the id and granted TTL.
    pub fn lease_grant(&self, id: LeaseId, ttl: i64) -> Result<(LeaseId, i64)> {
        match self.apply_one(WriteRequest::LeaseGrant { id, ttl })? {
            WriteResponse::LeaseGrant { id, ttl, .. } => Ok((id, ttl)),
            other => unreachable!("lease grant answered {other:?}"),
        }
    }

    /// Revokes a lease, deleting its keys in one revision.
    pub fn lease_revoke(&self, id: LeaseId) -> Result<i64> {
        match self.apply_one(WriteRequest::LeaseRevoke(id))? {
            WriteResponse::LeaseRevoke { revision } => Ok(revision),
            other => unreachable!("lease revoke answered {other:?}"),
        }
    }

    /// Restarts a lease's countdown; returns its TTL.
    pub fn lease_keep_alive(&self, id: LeaseId) -> Result<i64> {
        let now = self.inner.opts.clock.now();
        self.inner
            .lessor
            .lock()
            .keep_alive(id, now)
            .ok_or(StoreError::LeaseNotFound)
    }

    /// etcd's LeaseTimeToLive: TTL -1 for a lease that does not exist.
    pub fn lease_time_to_live(&self, id: LeaseId, with_keys: bool) -> LeaseStatus {
        let now = self.inner.opts.clock.now();
        match self.inner.lessor.lock().leases.get(&id) {
            Some(lease) => LeaseStatus {
                id,
                ttl: (lease.deadline.saturating_sub(now) / 1000) as i64,
                granted_ttl: lease.ttl,
                keys: if with_keys {
                    lease.keys.iter().cloned().collect()
                } else {
                    Vec::new()
                },
            },
            None => LeaseStatus {
                id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            },
        }
    }

    pub fn lease_leases(&self) -> Vec<LeaseId> {
        let mut ids: Vec<_> = self.inner.lessor.lock().leases.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The leases whose deadline has passed on the store's clock (the caller decides to revoke them).
    pub fn expired_leases(&self) -> Vec<LeaseId> {
        self.inner
            .lessor
            .lock()
            .expired(self.inner.opts.clock.now())
    }

    /// Restarts every lease's countdown, as a new leader does instead of expiring leases at once.
    pub fn extend_leases(&self) {
        self.inner
            .lessor
            .lock()
            .extend_all(self.inner.opts.clock.now());
    }

    /// Starts a watch. History from `start_revision` is replayed first; see [`crate::watch`].
    pub fn watch(&self, req: WatchRequest) -> Result<Watcher> {
        self.inner.check_healthy()?;
        if req.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        Ok(self.inner.hub.watch(req))
    }

    /// Users, roles, permissions and whether auth is on, as of the last commit.
    pub fn auth(&self) -> Arc<AuthState> {
        self.inner.auth.read().clone()
    }

    /// The raised alarms as of the last commit, as (member id, alarm type).
    pub fn alarms(&self) -> Arc<Alarms> {
        self.inner.alarms.read().clone()
    }

    /// The user a token was handed to, if it is known and has not expired (using it keeps it).
    pub fn token_user(&self, token: &str) -> Option<String> {
        self.inner.tokens.user(token, self.inner.opts.clock.now())
    }

    pub fn watch_stats(&self) -> WatchStats {
        self.inner.hub.stats()
    }

    /// Reclaims the space freed by compaction now (etcd's Defragment, without stopping anything).
    /// etcd's `HashKV`: a hash of every version visible at `rev` (0 = the current revision), with the
    /// compaction revision it was taken under and the revision it covers.
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64, i64)> {
        let compact = self.compact_revision();
        let rev = read_revision(rev, self.revision(), compact)?;
        let hash = crate::hash::hash_kv(&self.inner.backend, rev, compact)?;
        Ok((hash, compact, rev))
    }

    /// Writes a consistent copy of the store into the new directory `dir` (see
    /// [`Backend::checkpoint`]); [`Store::open`] on `dir` gives the store as of that moment.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        self.inner.check_healthy()?;
        Ok(self.inner.backend.checkpoint(dir)?)
    }

    /// Forgets the caller's applied position (for a store restored from a snapshot into a new
    /// cluster, whose log starts afresh).
    pub fn reset_applied(&self) -> Result<()> {
        self.inner.check_healthy()?;
        let _writer = self.inner.lease_seq.lock();
        let mut batch = Batch::default();
        batch.delete(Space::Meta, META_APPLIED.to_vec());
        self.inner.backend.write(batch, true)?;
        *self.inner.applied.lock() = None;
        Ok(())
    }

    /// Takes the store out of service: every later request fails and every watcher ends. For a
    /// store being replaced (a member installing a snapshot) whose handles may still be held.
    pub fn close(&self) {
        self.inner.fail();
        self.inner.hub.shutdown();
    }

    pub fn defragment(&self) -> Result<()> {
        for space in Space::ALL {
            self.inner.backend.reclaim(space, &[], &[0xff; 16])?;
        }
        Ok(())
    }

    fn apply_one(&self, req: WriteRequest) -> Result<WriteResponse> {
        commit_batch(&self.inner, std::slice::from_ref(&req), None)?
            .pop()
            .expect("one response per request")
    }

    /// Applies write requests in order as one atomic commit, with `applied` (an opaque position of
    /// the caller's, e.g. a raft log id) stored in the same batch. Each request succeeds or fails on
    /// its own; the outer error is a storage failure, after which the store refuses all work.
    pub fn apply_batch(
        &self,
        reqs: &[WriteRequest],
        applied: Option<&[u8]>,
    ) -> Result<Vec<Result<WriteResponse>>> {
        commit_batch(&self.inner, reqs, applied)
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| StoreError::Backend(e.into()))
}

/// What the batch did to tokens takes effect once it is committed (or, with nothing to write, at once).
fn apply_token_effects<B: Backend>(inner: &Inner<B>, exec: &mut Exec<'_, B>) {
    let now = inner.opts.clock.now();
    exec.token_effects
        .drain(..)
        .for_each(|effect| inner.tokens.apply(effect, now));
}

fn commit_batch<B: Backend>(
    inner: &Inner<B>,
    reqs: &[WriteRequest],
    applied: Option<&[u8]>,
) -> Result<Vec<Result<WriteResponse>>> {
    inner.check_healthy()?;
    let mut lease_seq = inner.lease_seq.lock();
    let mut exec = Exec::new(inner, inner.current_rev.load(Ordering::Acquire), *lease_seq);
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        let resp = exec.apply(req);
        if resp.as_ref().is_err_and(StoreError::is_fatal) {
            inner.fail();
            return Err(resp.expect_err("checked"));
        }
        out.push(resp);
    }
    if !exec.finish(applied) {
        // Nothing to write, yet a token may have been handed out (an embedded store, no log).
        apply_token_effects(inner, &mut exec);
        return Ok(out);
    }
    let batch = std::mem::take(&mut exec.batch);
    if let Err(err) = inner.backend.write(batch, inner.opts.sync) {
        inner.fail();
        return Err(err.into());
    }
    *lease_seq = exec.lease_seq();
    if let Some(pos) = applied {
        *inner.applied.lock() = Some(pos.to_vec());
    }
    // Before the revision is published: a reader at it must find these, not older ones.
    for (key, versions) in &exec.overlay {
        if let Some((rev, kv)) = versions.last() {
            inner.latest.record(key, *rev, kv.as_ref());
        }
    }
    if let Some(auth) = exec.auth.take() {
        *inner.auth.write() = Arc::new(auth);
    }
    if let Some(alarms) = exec.alarms.take() {
        *inner.alarms.write() = Arc::new(alarms);
    }
    apply_token_effects(inner, &mut exec);
    let rev = exec.revision();
    if let Some(compact) = exec.compact_to {
        inner.compact_rev.store(compact, Ordering::Release);
        inner.hub.set_compacted(compact);
        inner.compactor.schedule(compact);
    }
    inner.current_rev.store(rev, Ordering::Release);
    inner.hub.publish(&exec.published, rev);
    Ok(out)
}

fn load_leases<B: Backend>(backend: &B, now: u64) -> Result<Lessor, BackendError> {
    let mut lessor = Lessor::default();
    let mut cursor = backend.cursor(Space::Lease);
    cursor.seek(b"");
    // Attachments ('K') sort before grants ('L'): collect them, attach once every lease is known.
    let mut attached = Vec::new();
    while cursor.valid() {
        let key = cursor.key();
        let bad = BackendError::Corrupt {
            space: "lease",
            what: "malformed key",
        };
        let id = key
            .get(1..9)
            .ok_or(bad)?
            .try_into()
            .map(i64::from_be_bytes)
            .expect("8 bytes");
        match key[0] {
            b'L' => lessor.grant(id, decode_i64(cursor.value(), "lease")?, now),
            b'K' => attached.push((id, bytes::Bytes::copy_from_slice(&key[9..]))),
            _ => {
                return Err(BackendError::Corrupt {
                    space: "lease",
                    what: "unknown record kind",
                })
            }
        }
        cursor.next();
    }
    cursor.status()?;
    for (id, key) in attached {
        lessor.attach(id, key);
    }
    Ok(lessor)
}

/// The oldest explicit revision any range in the txn reads at (in either branch).
fn oldest_read(req: &TxnRequest) -> Option<i64> {
    req.success
        .iter()
        .chain(&req.failure)
        .filter_map(|op| match op {
            RequestOp::Range(r) if r.revision > 0 => Some(r.revision),
            RequestOp::Txn(t) => oldest_read(t),
            _ => None,
        })
        .min()
}

fn is_read_only(req: &TxnRequest) -> bool {
    req.success.iter().chain(&req.failure).all(|op| match op {
        RequestOp::Range(_) => true,
        RequestOp::Txn(t) => is_read_only(t),
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
    })
}
