//! One KV member as the API services see it: the store, who the member is, its alarms, and the path
//! every write takes.
//!
//! Writes are group-committed: the services queue them to one apply thread, which takes everything
//! queued meanwhile and commits it as one store batch with one fsync, recording the position (the
//! "raft index" of a single member) in the same batch. Reads go straight to the store.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use ballast_proto::pb;
use ballast_store::{DiskStore, StoreError, StoreOptions, WriteRequest, WriteResponse};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult, OpenError};
use crate::identity::{self, Identity, Member};

/// The most write requests committed in one batch.
const MAX_BATCH: usize = 1024;

/// What a member is started with (etcd's flags, resolved).
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub name: String,
    pub data_dir: PathBuf,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub cluster_token: String,
    /// etcd's `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// etcd's `--quota-backend-bytes`; 0 means etcd's default of 2 GiB.
    pub quota_backend_bytes: u64,
    pub max_txn_ops: usize,
}

impl NodeOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: "default".to_owned(),
            data_dir: data_dir.into(),
            peer_urls: vec!["http://localhost:2380".to_owned()],
            client_urls: vec!["http://localhost:2379".to_owned()],
            cluster_token: "etcd-cluster".to_owned(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            quota_backend_bytes: 0,
            max_txn_ops: 128,
        }
    }

    fn quota(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            DEFAULT_QUOTA_BYTES
        } else {
            self.quota_backend_bytes
        }
    }
}

/// etcd's defaults: 1.5 MiB per request, a 2 GiB backend.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

/// The alarm types, as etcd numbers them.
pub const ALARM_NOSPACE: i32 = pb::AlarmType::Nospace as i32;

struct Proposal {
    req: WriteRequest,
    reply: oneshot::Sender<ApiResult<WriteResponse>>,
}

struct Inner {
    store: DiskStore,
    identity: Identity,
    member: Member,
    opts: NodeOptions,
    proposals: Mutex<Option<mpsc::Sender<Proposal>>>,
    applier: Mutex<Option<JoinHandle<()>>>,
    applied_index: AtomicU64,
    db_size: AtomicU64,
    /// Active alarms as (member id, alarm type).
    alarms: Mutex<BTreeSet<(u64, i32)>>,
    metrics: Metrics,
}

/// Counters for `/metrics`, named after etcd's.
#[derive(Debug, Default)]
pub struct Metrics {
    pub proposals_pending: AtomicU64,
    pub proposals_failed: AtomicU64,
    /// Commit (one store batch with its fsync) durations.
    pub commit_seconds: Histogram,
    /// Requests per commit.
    pub batch_sizes: Histogram,
}

/// A cumulative histogram with fixed buckets, for Prometheus' text format.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    /// etcd's buckets for disk durations: 1 ms doubling up to ~8 s.
    fn default() -> Self {
        Self::new((0..14).map(|k| 0.001 * f64::from(1u32 << k)).collect())
    }
}

impl Histogram {
    pub fn new(bounds: Vec<f64>) -> Self {
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self { bounds, counts, count: AtomicU64::new(0), sum_micros: AtomicU64::new(0) }
    }

    pub fn observe(&self, v: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if v <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    /// Appends the histogram in Prometheus' text format.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// A running member. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("member", &self.inner.member).finish_non_exhaustive()
    }
}

impl Node {
    pub fn open(opts: NodeOptions) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&opts.data_dir)?;
        // Checkpoints of snapshots cut short by a crash: hard links that would pin old files.
        for entry in std::fs::read_dir(&opts.data_dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(crate::maintenance::SNAPSHOT_TMP_PREFIX) {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        let member_id = identity::member_id(&opts.peer_urls, &opts.cluster_token);
        let fresh = Identity { cluster_id: identity::cluster_id(&[member_id]), member_id };
        let identity = identity::load_or_store(&opts.data_dir, fresh)?;
        let alarms = load_alarms(&opts.data_dir)?;
        let store_opts = StoreOptions { max_txn_ops: opts.max_txn_ops, ..StoreOptions::default() };
        let store = DiskStore::open(opts.data_dir.join("kv"), store_opts)?;
        let applied = store.applied().map(|pos| decode_index(&pos)).transpose()?.unwrap_or(0);
        let member = Member {
            id: identity.member_id,
            name: opts.name.clone(),
            peer_urls: opts.peer_urls.clone(),
            client_urls: opts.client_urls.clone(),
            is_learner: false,
        };
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            db_size: AtomicU64::new(store.status().size_bytes),
            store,
            identity,
            member,
            opts,
            proposals: Mutex::new(Some(tx)),
            applier: Mutex::new(None),
            applied_index: AtomicU64::new(applied),
            alarms: Mutex::new(alarms),
            metrics: Metrics { batch_sizes: Histogram::new((0..11).map(|k| f64::from(1u32 << k)).collect()), ..Metrics::default() },
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new().name("ballast-apply".into()).spawn(move || apply_loop(weak, rx))?;
        *inner.applier.lock() = Some(handle);
        Ok(Self { inner })
    }

    pub fn store(&self) -> &DiskStore {
        &self.inner.store
    }

    pub fn member(&self) -> &Member {
        &self.inner.member
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub fn options(&self) -> &NodeOptions {
        &self.inner.opts
    }

    /// The raft term. A single member is always in its first term.
    pub fn term(&self) -> u64 {
        1
    }

    pub fn applied_index(&self) -> u64 {
        self.inner.applied_index.load(Ordering::Acquire)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// False once the member cannot take writes any more.
    pub fn is_running(&self) -> bool {
        self.inner.proposals.lock().is_some()
    }

    pub fn has_alarm(&self) -> bool {
        !self.inner.alarms.lock().is_empty()
    }

    pub fn db_size(&self) -> u64 {
        self.inner.db_size.load(Ordering::Relaxed)
    }

    pub fn header(&self, revision: i64) -> pb::ResponseHeader {
        pb::ResponseHeader {
            cluster_id: self.inner.identity.cluster_id,
            member_id: self.inner.identity.member_id,
            revision,
            raft_term: self.term(),
        }
    }

    /// A header at the store's current revision.
    pub fn current_header(&self) -> pb::ResponseHeader {
        self.header(self.inner.store.revision())
    }

    /// Commits a write through the apply thread (with every write queued meanwhile) and returns its
    /// result. Requests that can grow the database are refused while the NOSPACE alarm is raised.
    pub async fn propose(&self, req: WriteRequest) -> ApiResult<WriteResponse> {
        if grows(&req) {
            self.check_quota()?;
        }
        let (reply, rx) = oneshot::channel();
        {
            let proposals = self.inner.proposals.lock();
            let tx = proposals.as_ref().ok_or(ApiError::Stopped)?;
            tx.send(Proposal { req, reply }).map_err(|_| ApiError::Stopped)?;
        }
        let metrics = &self.inner.metrics;
        metrics.proposals_pending.fetch_add(1, Ordering::Relaxed);
        let result = rx.await.map_err(|_| ApiError::Stopped);
        metrics.proposals_pending.fetch_sub(1, Ordering::Relaxed);
        let result = result?;
        if matches!(result, Err(ApiError::Stopped)) {
            metrics.proposals_failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn check_quota(&self) -> ApiResult<()> {
        let id = self.inner.identity.member_id;
        let mut alarms = self.inner.alarms.lock();
        if alarms.iter().any(|&(_, a)| a == ALARM_NOSPACE) {
            return Err(ApiError::NoSpace);
        }
        if self.db_size() > self.inner.opts.quota() {
            tracing::warn!(size = self.db_size(), quota = self.inner.opts.quota(), "database space exceeded; raising NOSPACE");
            alarms.insert((id, ALARM_NOSPACE));
            if let Err(err) = store_alarms(&self.inner.opts.data_dir, &alarms) {
                tracing::error!(%err, "could not persist the NOSPACE alarm");
            }
            return Err(ApiError::NoSpace);
        }
        Ok(())
    }

    /// etcd's Alarm: GET lists, ACTIVATE raises, DEACTIVATE clears; answers the affected alarms.
    /// Alarms are kept in the data directory, so a restart does not clear them (as etcd's).
    pub fn alarm(&self, action: pb::alarm_request::AlarmAction, member_id: u64, alarm: i32) -> ApiResult<Vec<(u64, i32)>> {
        use pb::alarm_request::AlarmAction;
        let mut alarms = self.inner.alarms.lock();
        let changed = match action {
            AlarmAction::Get => return Ok(alarms.iter().copied().collect()),
            AlarmAction::Activate if alarm == pb::AlarmType::None as i32 => return Ok(vec![]),
            AlarmAction::Activate => {
                alarms.insert((member_id, alarm));
                true
            }
            AlarmAction::Deactivate => alarms.remove(&(member_id, alarm)),
        };
        if !changed {
            return Ok(vec![]);
        }
        store_alarms(&self.inner.opts.data_dir, &alarms).map_err(ApiError::Persist)?;
        Ok(vec![(member_id, alarm)])
    }

    /// Stops the apply thread once queued writes are committed. Later writes get "server stopped".
    pub fn shutdown(&self) {
        self.inner.proposals.lock().take();
        if let Some(handle) = self.inner.applier.lock().take() {
            let _ = handle.join();
        }
    }
}

/// Requests that may make the database bigger; the rest are allowed over quota, so that space can
/// be freed (etcd allows deletes, compaction and lease revocation under NOSPACE).
fn grows(req: &WriteRequest) -> bool {
    matches!(req, WriteRequest::Put(_) | WriteRequest::Txn(_) | WriteRequest::LeaseGrant { .. })
}

const ALARMS_FILE: &str = "alarms";

fn load_alarms(dir: &std::path::Path) -> Result<BTreeSet<(u64, i32)>, OpenError> {
    let text = match std::fs::read_to_string(dir.join(ALARMS_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e.into()),
    };
    let bad = || OpenError::Config(format!("{}: malformed alarms file", dir.join(ALARMS_FILE).display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (member, alarm) = line.split_once(' ').ok_or_else(bad)?;
            Ok((u64::from_str_radix(member, 16).map_err(|_| bad())?, alarm.parse().map_err(|_| bad())?))
        })
        .collect()
}

fn store_alarms(dir: &std::path::Path, alarms: &BTreeSet<(u64, i32)>) -> std::io::Result<()> {
    let text: String = alarms.iter().map(|(member, alarm)| format!("{member:x} {alarm}\n")).collect();
    identity::write_atomically(dir, ALARMS_FILE, &text)
}

fn decode_index(pos: &[u8]) -> Result<u64, StoreError> {
    pos.try_into().map(u64::from_be_bytes).map_err(|_| {
        StoreError::Backend(ballast_store::BackendError::Corrupt { space: "meta", what: "malformed applied index" })
    })
}

fn apply_loop(node: std::sync::Weak<Inner>, rx: mpsc::Receiver<Proposal>) {
    while let Ok(first) = rx.recv() {
        let mut reqs = vec![first.req];
        let mut replies = vec![first.reply];
        while reqs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => {
                    reqs.push(p.req);
                    replies.push(p.reply);
                }
                Err(_) => break,
            }
        }
        let Some(inner) = node.upgrade() else { break };
        let index = inner.applied_index.load(Ordering::Acquire) + reqs.len() as u64;
        let started = std::time::Instant::now();
        let committed = inner.store.apply_batch(&reqs, Some(&index.to_be_bytes()));
        inner.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        inner.metrics.batch_sizes.observe(reqs.len() as f64);
        match committed {
            Ok(results) => {
                inner.applied_index.store(index, Ordering::Release);
                inner.db_size.store(inner.store.status().size_bytes, Ordering::Relaxed);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(ApiError::from));
                }
            }
            Err(err) => {
                tracing::error!(%err, "commit failed; the member stops taking writes");
                for reply in replies {
                    let _ = reply.send(Err(ApiError::Stopped));
                }
                inner.proposals.lock().take();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_snapshot_checkpoints_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(format!("{}123-0", crate::maintenance::SNAPSHOT_TMP_PREFIX));
        std::fs::create_dir_all(left.join("db")).unwrap();
        std::fs::write(left.join("db").join("000001.sst"), b"x").unwrap();
        let node = Node::open(NodeOptions::new(dir.path())).unwrap();
        assert!(!left.exists());
        assert!(dir.path().join("kv").exists() && dir.path().join("identity").exists());
        node.shutdown();
    }
}
