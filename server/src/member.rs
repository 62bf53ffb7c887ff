//! One KV member as the API services see it: the replica (raft log + store), who the member is, its
//! alarms, and the path every write takes.
//!
//! Writes go through raft ([`Replica::write`]), from any member: a follower forwards to the leader.
//! Group commit happens twice over: openraft batches proposals into appends, the log syncs every
//! append queued meanwhile with one fsync, and the state machine applies committed entries in
//! batches of one store write. Linearizable reads wait for [`Member::linearize`] (ReadIndex), then
//! read the local store; serializable reads read it directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ballast_proto::pb;
use ballast_raft::layout::ALARMS_FILE;
use ballast_raft::{MemberNode, RaftStatus, Replica, ReplicaOptions};
use ballast_store::{DiskStore, StoreOptions, WriteRequest, WriteResponse};

use crate::error::{ApiError, ApiResult, OpenError};
use crate::identity::{self, Identity};

/// What a member is started with (etcd's flags, resolved).
#[derive(Debug, Clone)]
pub struct MemberOptions {
    pub name: String,
    pub data_dir: PathBuf,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub cluster_token: String,
    /// `--initial-cluster`: every initial member's name and peer URLs (this one's included).
    pub initial_cluster: Vec<(String, Vec<String>)>,
    /// `--initial-cluster-state new` (bootstrap) rather than `existing` (join).
    pub new_cluster: bool,
    /// etcd's `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// etcd's `--quota-backend-bytes`; 0 means etcd's default of 2 GiB.
    pub quota_backend_bytes: u64,
    pub max_txn_ops: usize,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    /// etcd's `--snapshot-count`: applied entries between snapshots.
    pub snapshot_count: u64,
}

impl MemberOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: "default".to_owned(),
            data_dir: data_dir.into(),
            peer_urls: vec!["http://localhost:2380".to_owned()],
            client_urls: vec!["http://localhost:2379".to_owned()],
            cluster_token: "etcd-cluster".to_owned(),
            initial_cluster: Vec::new(),
            new_cluster: true,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            quota_backend_bytes: 0,
            max_txn_ops: 128,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
        }
    }

    fn quota(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            DEFAULT_QUOTA_BYTES
        } else {
            self.quota_backend_bytes
        }
    }

    /// The initial members by id: `--initial-cluster`, or this member alone. Every initial member
    /// must compute the same configuration, so client URLs (which only each member knows of
    /// itself) are left out; each member publishes its own once the cluster runs.
    fn initial_members(&self) -> BTreeMap<u64, MemberNode> {
        let mut members: BTreeMap<u64, MemberNode> = BTreeMap::new();
        for (name, peer_urls) in &self.initial_cluster {
            let id = identity::member_id(peer_urls, &self.cluster_token);
            members.insert(
                id,
                MemberNode {
                    name: name.clone(),
                    peer_urls: peer_urls.clone(),
                    client_urls: Vec::new(),
                },
            );
        }
        if members.is_empty() {
            let id = identity::member_id(&self.peer_urls, &self.cluster_token);
            members.insert(
                id,
                MemberNode {
                    name: self.name.clone(),
                    peer_urls: self.peer_urls.clone(),
                    client_urls: Vec::new(),
                },
            );
        }
        members
    }
}

/// etcd 3.4's default `--snapshot-count`.
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;

/// etcd's defaults: 1.5 MiB per request, a 2 GiB backend.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

/// The alarm types, as etcd numbers them.
pub const ALARM_NOSPACE: i32 = pb::AlarmType::Nospace as i32;

struct Inner {
    replica: Replica,
    identity: Identity,
    /// This member as the membership lists it once started: its name and URLs.
    advertised: MemberNode,
    opts: MemberOptions,
    running: std::sync::atomic::AtomicBool,
    /// True once this member's name and client URLs are in the membership.
    published: tokio::sync::watch::Sender<bool>,
    metrics: Metrics,
}

/// Counters for `/metrics`, named after etcd's (the log's and the state machine's are the
/// replica's: [`Replica::metrics`]).
#[derive(Debug, Default)]
pub struct Metrics {
    pub proposals_pending: AtomicU64,
    pub proposals_failed: AtomicU64,
}

/// A running member. Cheap to clone.
#[derive(Clone)]
pub struct Member {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("member", &self.inner.advertised)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// Opens the member's data directory and starts its replica (bootstrapping or joining the
    /// cluster as the options say).
    pub async fn open(opts: MemberOptions) -> Result<Self, OpenError> {
        std::fs::create_dir_all(&opts.data_dir)?;
        // Checkpoints of snapshots cut short by a crash: hard links that would pin old files.
        for entry in std::fs::read_dir(&opts.data_dir)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(ballast_raft::layout::SNAPSHOT_TMP_PREFIX)
            {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        let member_id = identity::member_id(&opts.peer_urls, &opts.cluster_token);
        let initial = opts.initial_members();
        if opts.new_cluster && !initial.contains_key(&member_id) {
            return Err(OpenError::Config(format!(
                "--initial-cluster has no member with this member's peer URLs {:?}",
                opts.peer_urls
            )));
        }
        let founders: Vec<u64> = initial
            .keys()
            .copied()
            .filter(|&id| opts.new_cluster || id != member_id)
            .collect();
        let fresh = Identity {
            cluster_id: identity::cluster_id(&founders),
            member_id,
        };
        let identity = identity::load_or_store(&opts.data_dir, fresh)?;
        // Alarms were kept per member in this file before they were replicated: raise them
        // through the log once this member has joined, then drop the file.
        let legacy_alarms = load_alarms(&opts.data_dir)?;
        let mut replica_opts = ReplicaOptions::new(identity.member_id, opts.data_dir.clone());
        replica_opts.store = StoreOptions {
            // --max-txn-ops is checked before proposing (kv.rs); applying a logged txn must not
            // depend on this member's flag, or members with different limits would diverge.
            max_txn_ops: usize::MAX,
            ..StoreOptions::default()
        };
        replica_opts.initial_members = if opts.new_cluster {
            initial
        } else {
            BTreeMap::new()
        };
        replica_opts.heartbeat = opts.heartbeat;
        replica_opts.election_timeout = opts.election_timeout;
        replica_opts.snapshot_count = opts.snapshot_count;
        let replica = Replica::open(replica_opts).await?;
        let advertised = MemberNode {
            name: opts.name.clone(),
            peer_urls: opts.peer_urls.clone(),
            client_urls: opts.client_urls.clone(),
        };
        let inner = Arc::new(Inner {
            replica,
            identity,
            advertised,
            opts,
            running: std::sync::atomic::AtomicBool::new(true),
            published: tokio::sync::watch::Sender::new(false),
            metrics: Metrics::default(),
        });
        let weak = Arc::downgrade(&inner);
        let replica = inner.replica.clone();
        let (name, client_urls) = (
            inner.advertised.name.clone(),
            inner.advertised.client_urls.clone(),
        );
        let data_dir = inner.opts.data_dir.clone();
        tokio::spawn(async move {
            replica.publish(name, client_urls).await;
            if let Some(inner) = weak.upgrade() {
                inner.published.send_replace(true);
            }
            if legacy_alarms.is_empty() {
                return;
            }
            for &(member, alarm) in &legacy_alarms {
                if let Err(err) = replica
                    .write(WriteRequest::Alarm {
                        activate: true,
                        member,
                        alarm,
                    })
                    .await
                {
                    tracing::warn!(%err, "could not raise an alarm kept from an older version; keeping its file");
                    return;
                }
            }
            if let Err(err) = std::fs::remove_file(data_dir.join(ALARMS_FILE)) {
                tracing::warn!(%err, "could not remove the old alarms file");
            }
        });
        Ok(Self { inner })
    }

    /// Resolves once this member has joined the cluster's membership with its name and client
    /// URLs, which needs a leader (a quorum). etcd serves clients only from then on too.
    pub async fn wait_published(&self) {
        let mut published = self.inner.published.subscribe();
        let _ = published.wait_for(|&p| p).await;
    }

    /// The store as of now. Take it per request: installing a snapshot replaces it.
    pub fn store(&self) -> DiskStore {
        self.inner.replica.store()
    }

    pub fn replica(&self) -> &Replica {
        &self.inner.replica
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub fn options(&self) -> &MemberOptions {
        &self.inner.opts
    }

    pub fn raft_status(&self) -> RaftStatus {
        self.inner.replica.status()
    }

    /// The raft term.
    pub fn term(&self) -> u64 {
        self.inner.replica.term()
    }

    pub fn applied_index(&self) -> u64 {
        self.raft_status().applied_index
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// False once the member has been shut down.
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    pub fn has_alarm(&self) -> bool {
        !self.store().alarms().is_empty()
    }

    /// The raised alarms as this member knows them (every member's: alarms are replicated).
    pub fn alarms(&self) -> Vec<(u64, i32)> {
        self.store().alarms().iter().copied().collect()
    }

    pub fn db_size(&self) -> u64 {
        self.inner
            .replica
            .metrics()
            .db_size_bytes
            .load(Ordering::Relaxed)
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
        self.header(self.store().revision())
    }

    /// Waits until reading the local store is linearizable (ReadIndex through the leader).
    pub async fn linearize(&self) -> ApiResult<()> {
        if !self.is_running() {
            return Err(ApiError::Stopped);
        }
        Ok(self.inner.replica.linearize().await?)
    }

    /// Commits a write through raft and returns its result. Requests that can grow the database
    /// are refused while the NOSPACE alarm is raised.
    pub async fn propose(&self, req: WriteRequest) -> ApiResult<WriteResponse> {
        if !self.is_running() {
            return Err(ApiError::Stopped);
        }
        if grows(&req) {
            self.check_quota().await?;
        }
        let metrics = &self.inner.metrics;
        metrics.proposals_pending.fetch_add(1, Ordering::Relaxed);
        let result = self.inner.replica.write(req).await;
        metrics.proposals_pending.fetch_sub(1, Ordering::Relaxed);
        if result.is_err() {
            metrics.proposals_failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(result??)
    }

    async fn check_quota(&self) -> ApiResult<()> {
        if self
            .store()
            .alarms()
            .iter()
            .any(|&(_, a)| a == ALARM_NOSPACE)
        {
            return Err(ApiError::NoSpace);
        }
        if self.db_size() > self.inner.opts.quota() {
            tracing::warn!(
                size = self.db_size(),
                quota = self.inner.opts.quota(),
                "database space exceeded; raising NOSPACE"
            );
            let raise = WriteRequest::Alarm {
                activate: true,
                member: self.inner.identity.member_id,
                alarm: ALARM_NOSPACE,
            };
            if let Err(err) = self.inner.replica.write(raise).await {
                tracing::error!(%err, "could not raise the NOSPACE alarm");
            }
            return Err(ApiError::NoSpace);
        }
        Ok(())
    }

    /// etcd's Alarm: GET lists (linearizably), ACTIVATE raises, DEACTIVATE clears; answers the
    /// affected alarms. Alarms are replicated state of the store (as etcd's), so every member
    /// sees and enforces every member's, and a restart does not clear them.
    pub async fn alarm(
        &self,
        action: pb::alarm_request::AlarmAction,
        member: u64,
        alarm: i32,
    ) -> ApiResult<Vec<(u64, i32)>> {
        use pb::alarm_request::AlarmAction;
        let activate = match action {
            AlarmAction::Get => {
                self.linearize().await?;
                return Ok(self.alarms());
            }
            AlarmAction::Activate if alarm == pb::AlarmType::None as i32 => return Ok(vec![]),
            AlarmAction::Activate => true,
            AlarmAction::Deactivate => false,
        };
        match self
            .propose(WriteRequest::Alarm {
                activate,
                member,
                alarm,
            })
            .await?
        {
            WriteResponse::Alarm { changed: true, .. } => Ok(vec![(member, alarm)]),
            WriteResponse::Alarm { changed: false, .. } => Ok(vec![]),
            other => Err(ApiError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Stops raft. Later requests get "server stopped".
    pub async fn shutdown(&self) {
        self.inner.running.store(false, Ordering::Release);
        self.inner.replica.shutdown().await;
    }
}

/// Requests that may make the database bigger; the rest are allowed over quota, so that space can
/// be freed (etcd allows deletes, compaction and lease revocation under NOSPACE).
fn grows(req: &WriteRequest) -> bool {
    match req {
        WriteRequest::Put(_) | WriteRequest::Txn(_) | WriteRequest::LeaseGrant { .. } => true,
        WriteRequest::Checked { req, .. } => grows(req),
        WriteRequest::DeleteRange(_)
        | WriteRequest::Compact(_)
        | WriteRequest::LeaseRevoke(_)
        | WriteRequest::Auth(_)
        | WriteRequest::Alarm { .. } => false,
    }
}

fn load_alarms(dir: &std::path::Path) -> Result<BTreeSet<(u64, i32)>, OpenError> {
    let text = match std::fs::read_to_string(dir.join(ALARMS_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e.into()),
    };
    let bad = || {
        OpenError::Config(format!(
            "{}: malformed alarms file",
            dir.join(ALARMS_FILE).display()
        ))
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (member, alarm) = line.split_once(' ').ok_or_else(bad)?;
            Ok((
                u64::from_str_radix(member, 16).map_err(|_| bad())?,
                alarm.parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn leftover_snapshot_checkpoints_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(format!(
            "{}123-0",
            ballast_raft::layout::SNAPSHOT_TMP_PREFIX
        ));
        std::fs::create_dir_all(left.join("db")).unwrap();
        std::fs::write(left.join("db").join("000001.sst"), b"x").unwrap();
        let member = Member::open(MemberOptions::new(dir.path())).await.unwrap();
        assert!(!left.exists());
        assert!(dir.path().join("kv").exists() && dir.path().join("identity").exists());
        member.shutdown().await;
    }
}
