//! [`Replica`]: one member of a replicated store, behind a small API of our own so that the rest of
//! Ballast never names openraft.
//!
//! - Writes go through the log; a follower forwards them to the leader (`Peer.Forward`, in batches:
//!   see `forward`), so clients can use any member.
//! - Linearizable reads use ReadIndex: the leader confirms its leadership with a quorum (openraft
//!   answers every read waiting for the same confirmation with one heartbeat round), then the member
//!   waits until it has applied up to the leader's commit point and reads locally. A follower asks
//!   the leader for that point. Serializable reads need none of this.
//! - Leases: only the leader's countdowns are authoritative; it proposes revocations of expired
//!   leases through the log. A new leader restarts every countdown instead of expiring at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballast_store::backend::RocksBackend;
use ballast_store::{
    DiskStore, LeaseId, LeaseStatus, StoreError, StoreOptions, WriteRequest, WriteResponse,
};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, Instant as _, Raft, ServerState, SnapshotPolicy};
use tokio_stream::StreamExt;

use crate::checkpoints::{self, Checkpoints};
use crate::forward::{self, WriteForwarder};
use crate::layout;
use crate::leadership::{self, LeaderWatch};
use crate::log_store::LogStore;
use crate::metrics::Metrics;
use crate::network::Network;
use crate::reconfig;
use crate::state_machine::{StateMachine, StoreCell};
use crate::types::{Command, MemberNode, NodeId, Reply, TypeConfig};
pub use crate::wire::ReplicaError;
use crate::wire::{LeaderReply, LeaderRequest};

type OpenRaft = Raft<TypeConfig, StateMachine<Checkpoints>>;

/// How a member is started.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub store: StoreOptions,
    /// The initial members (this one included) for a new cluster; empty to join an existing one.
    pub initial_members: BTreeMap<NodeId, MemberNode>,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    /// Entries between snapshots (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    /// Entries kept behind a snapshot for slow followers.
    pub catch_up_entries: u64,
}

impl ReplicaOptions {
    pub fn new(id: NodeId, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id,
            data_dir: data_dir.into(),
            store: StoreOptions::default(),
            initial_members: BTreeMap::new(),
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            snapshot_count: 10_000,
            catch_up_entries: 5_000,
        }
    }
}

/// A member in the cluster's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: NodeId,
    pub node: MemberNode,
    pub is_learner: bool,
}

/// What `Status` and response headers report.
#[derive(Debug, Clone, Default)]
pub struct RaftStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub applied_index: u64,
    pub commit_index: u64,
    pub is_learner: bool,
}

/// Linearizable reads waiting for a read point (see [`Replica::linearize`]).
#[derive(Default)]
struct ReadRounds {
    in_flight: bool,
    waiting: Vec<tokio::sync::oneshot::Sender<Result<u64, ReplicaError>>>,
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    read_rounds: parking_lot::Mutex<ReadRounds>,
    pub(crate) raft: OpenRaft,
    cell: Arc<StoreCell<RocksBackend>>,
    network: Network,
    metrics: Arc<Metrics>,
    pub(crate) data_dir: PathBuf,
    election_timeout: Duration,
    /// Set when the member stops: ends the append streams it serves (a leader keeps an idle one
    /// open indefinitely, and a server's graceful shutdown would wait for it).
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// Batches the writes this member forwards to the leader.
    forwarder: WriteForwarder,
}

/// One member. Cheap to clone.
#[derive(Clone)]
pub struct Replica {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Opens (or creates) the member's log and store under `data_dir` and starts raft. A new cluster
    /// is initialized from `initial_members` by every initial member (identical configurations
    /// elect one leader); a member joining an existing cluster waits to be replicated to.
    pub async fn open(opts: ReplicaOptions) -> io::Result<Self> {
        std::fs::create_dir_all(&opts.data_dir)?;
        checkpoints::recover_install(&opts.data_dir)?;
        let store_opts = StoreOptions {
            // The log is synced before anything is applied; the store's own sync would be a second fsync.
            sync: false,
            // Only the leader decides expiry, through the log.
            expire_leases: false,
            ..opts.store.clone()
        };
        let store = DiskStore::open(checkpoints::store_dir(&opts.data_dir)?, store_opts.clone())
            .map_err(io::Error::other)?;
        let cell = Arc::new(StoreCell::new(store));
        let metrics = Arc::new(Metrics::default());
        let sm = StateMachine::new(
            cell.clone(),
            Checkpoints::new(opts.data_dir.clone(), store_opts),
            metrics.clone(),
        )?;
        let log = LogStore::open(&opts.data_dir.join(layout::RAFT_LOG_DIR), metrics.clone())?;
        let heartbeat = opts.heartbeat.as_millis() as u64;
        let election = opts.election_timeout.as_millis() as u64;
        let config = Config {
            cluster_name: "ballast".into(),
            heartbeat_interval: heartbeat,
            // A follower stands for election once it has heard nothing from the leader for
            // openraft's leader lease (election_timeout_max) plus a random election timeout in
            // [min, max): here [t, 1.5t) for `--election-timeout` t, as etcd's [t, 2t) but
            // narrower. (Taking min = t, as etcd's flag reads, waited [2.5t, 3t).) A voter
            // refuses other candidates for the lease, 0.75t, which has passed by then.
            election_timeout_min: election / 4,
            election_timeout_max: election * 3 / 4,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_count.max(1)),
            max_in_snapshot_log_to_keep: opts.catch_up_entries,
            purge_batch_size: 256,
            max_payload_entries: 1024,
            install_snapshot_timeout: 10_000,
            // A restarted leader must not lead on from its own idea of what is committed: the
            // commit index and the store are written unsynced, so after a power loss that idea can
            // be older than a write the leader acknowledged, and it would serve linearizable reads
            // from there. It stands for election like any member (as in etcd); the new leader
            // commits an entry of its term before it serves reads.
            enable_leader_restore: Some(false),
            ..Config::default()
        }
        .validate()
        .map_err(io::Error::other)?;
        let network = Network::default();
        let raft = Raft::new(opts.id, Arc::new(config), network.clone(), log, sm)
            .await
            .map_err(io::Error::other)?;
        if !raft.is_initialized().await.map_err(io::Error::other)? {
            if !opts.initial_members.is_empty() {
                tracing::info!(
                    members = opts.initial_members.len(),
                    "initializing a new cluster"
                );
                if let Err(err) = raft.initialize(opts.initial_members.clone()).await {
                    tracing::warn!(%err, "initialize");
                }
            }
        } else {
            let voters = raft.with_raft_state(|st| {
                st.membership_state
                    .effective()
                    .voter_ids()
                    .collect::<Vec<_>>()
            });
            // The only voter need not wait out an election timeout to lead again (etcd
            // fast-forwards its election ticks the same way).
            if voters.await.map_err(io::Error::other)? == [opts.id] {
                raft.trigger()
                    .elect(false)
                    .await
                    .map_err(io::Error::other)?;
            }
        }
        let replica = Self {
            inner: Arc::new(Inner {
                id: opts.id,
                read_rounds: Default::default(),
                raft,
                cell,
                network: network.clone(),
                metrics: Arc::clone(&metrics),
                data_dir: opts.data_dir.clone(),
                election_timeout: opts.election_timeout,
                closing: tokio::sync::watch::Sender::new(false),
                forwarder: WriteForwarder::new(network.clone(), metrics, opts.election_timeout * 5),
            }),
        };
        tokio::spawn(lease_loop(Arc::downgrade(&replica.inner)));
        tokio::spawn(watch_leader(
            Arc::downgrade(&replica.inner),
            replica.inner.raft.metrics(),
        ));
        Ok(replica)
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The store as of now (replaced when a snapshot is installed: take it per request).
    pub fn store(&self) -> DiskStore {
        self.inner.cell.get()
    }

    pub fn status(&self) -> RaftStatus {
        let m = self.raft_metrics();
        let applied = self
            .inner
            .metrics
            .applied_index
            .load(std::sync::atomic::Ordering::Acquire);
        RaftStatus {
            leader: m.current_leader,
            term: m.current_term,
            // The state machine's own count is ahead of openraft's metrics, which follow the apply.
            applied_index: applied,
            commit_index: m
                .local_committed
                .as_ref()
                .map_or(0, |id| id.index)
                .max(applied),
            is_learner: m.state == ServerState::Learner,
        }
    }

    /// The current term (cheap: for every response header).
    pub fn term(&self) -> u64 {
        self.inner
            .metrics
            .term
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn raft_metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.inner.raft.metrics().borrow_watched().clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Leader changes this member has seen (etcd's `leader_changes_seen_total`).
    pub fn leader_changes(&self) -> u64 {
        self.inner
            .metrics
            .leader_changes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_leader(&self) -> bool {
        self.inner
            .metrics
            .leading
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every member of the current membership, voters first by id, then learners.
    pub fn members(&self) -> Vec<MemberInfo> {
        let metrics = self.raft_metrics();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(&id, node)| MemberInfo {
                id,
                node: node.clone(),
                is_learner: !voters.contains(&id),
            })
            .collect()
    }

    /// Commits a write and returns the store's answer, from whichever member is leader.
    pub async fn write(
        &self,
        req: WriteRequest,
    ) -> Result<Result<WriteResponse, StoreError>, ReplicaError> {
        match self
            .leader_op(LeaderRequest::Write(Command::Store(req)))
            .await?
        {
            LeaderReply::Write(result) => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// Waits until a read of the local store is linearizable (ReadIndex).
    ///
    /// Reads share read points: while one ReadIndex round is in flight, the reads that arrive
    /// wait for the next round, which starts when it ends (a round that started before a read
    /// arrived cannot serve it). So 256 concurrent readers cost a few rounds, not 256.
    pub async fn linearize(&self) -> Result<(), ReplicaError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let drive = {
            let mut rounds = self.inner.read_rounds.lock();
            rounds.waiting.push(tx);
            !std::mem::replace(&mut rounds.in_flight, true)
        };
        if drive {
            // In its own task: a caller that goes away must not strand the others.
            let this = self.clone();
            tokio::spawn(async move { this.read_rounds().await });
        }
        let index = rx.await.map_err(|_| ReplicaError::Stopped)??;
        self.wait_applied(index).await
    }

    /// Waits until this member has applied up to `index`.
    async fn wait_applied(&self, index: u64) -> Result<(), ReplicaError> {
        let inner = &self.inner;
        leadership::wait_applied(
            &inner.raft,
            &inner.metrics,
            index,
            inner.election_timeout * 5,
        )
        .await
    }

    /// A read point confirmed by a quorum, on this member as leader (openraft's ReadIndex).
    async fn read_index(&self) -> Result<u64, ReplicaError> {
        leadership::read_index(&self.inner.raft).await
    }

    /// Runs ReadIndex rounds while reads wait for one.
    async fn read_rounds(&self) {
        loop {
            let waiting = std::mem::take(&mut self.inner.read_rounds.lock().waiting);
            let index = match self.leader_op(LeaderRequest::ReadIndex).await {
                Ok(LeaderReply::ReadIndex(index)) => Ok(index),
                Ok(other) => Err(unexpected(&other)),
                Err(err) => Err(err),
            };
            for waiter in waiting {
                let _ = waiter.send(index.clone());
            }
            let mut rounds = self.inner.read_rounds.lock();
            if rounds.waiting.is_empty() {
                rounds.in_flight = false;
                return;
            }
        }
    }

    /// Restarts a lease's countdown on the leader; returns its TTL.
    pub async fn lease_keep_alive(
        &self,
        id: LeaseId,
    ) -> Result<Result<i64, StoreError>, ReplicaError> {
        match self.leader_op(LeaderRequest::KeepAlive(id)).await? {
            LeaderReply::KeepAlive(result) => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// A lease's remaining time, as the leader counts it.
    pub async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseStatus, ReplicaError> {
        match self
            .leader_op(LeaderRequest::TimeToLive { lease: id, keys })
            .await?
        {
            LeaderReply::TimeToLive(status) => Ok(status),
            other => Err(unexpected(&other)),
        }
    }

    /// etcd's MemberAdd: a learner, or a voter (which counts toward quorum at once).
    pub async fn add_member(
        &self,
        id: NodeId,
        node: MemberNode,
        learner: bool,
    ) -> Result<(), ReplicaError> {
        self.leader_op(LeaderRequest::AddMember { id, node, learner })
            .await
            .map(drop)
    }

    pub async fn promote_member(&self, id: NodeId) -> Result<(), ReplicaError> {
        self.leader_op(LeaderRequest::Promote(id)).await.map(drop)
    }

    pub async fn remove_member(&self, id: NodeId) -> Result<(), ReplicaError> {
        self.leader_op(LeaderRequest::Remove(id)).await.map(drop)
    }

    pub async fn update_member(
        &self,
        id: NodeId,
        peer_urls: Vec<String>,
    ) -> Result<(), ReplicaError> {
        let member = self
            .members()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or(ReplicaError::MemberNotFound)?;
        let node = MemberNode {
            peer_urls,
            ..member.node
        };
        self.leader_op(LeaderRequest::SetNode(id, node))
            .await
            .map(drop)
    }

    /// Records this member's name and client URLs in the membership (etcd members publish
    /// themselves once started), unless they are there already. Retries until it is done.
    pub async fn publish(&self, name: String, client_urls: Vec<String>) {
        loop {
            let Some(me) = self.members().into_iter().find(|m| m.id == self.id()) else {
                // Not in the membership (yet): a joining member waits to be replicated to.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if me.node.name == name && me.node.client_urls == client_urls {
                return;
            }
            let node = MemberNode {
                name: name.clone(),
                client_urls: client_urls.clone(),
                ..me.node
            };
            match self
                .leader_op(LeaderRequest::SetNode(self.id(), node))
                .await
            {
                Ok(_) => tracing::info!(%name, "published this member's name and client URLs"),
                Err(ReplicaError::Stopped) => return,
                Err(err) => {
                    tracing::debug!(%err, "publishing this member");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), ReplicaError> {
        self.leader_op(LeaderRequest::TransferLeader(to))
            .await
            .map(drop)
    }

    /// Ends the append streams this member serves, and refuses new ones: call before stopping
    /// the peer server (whose graceful shutdown waits for open streams). [`Replica::shutdown`]
    /// does it too.
    pub fn close_peer_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    pub async fn shutdown(&self) {
        self.close_peer_streams();
        if let Err(err) = self.inner.raft.shutdown().await {
            tracing::warn!(%err, "raft shutdown");
        }
    }

    /// Runs `req` here if this member leads, or on the leader. Retries while there is no leader, up
    /// to a few election timeouts.
    async fn leader_op(&self, req: LeaderRequest) -> Result<LeaderReply, ReplicaError> {
        let deadline = tokio::time::Instant::now() + self.inner.election_timeout * 5;
        loop {
            // The hot path (this member leads) reads one atomic; the rest looks at openraft's metrics.
            let attempt = if self
                .inner
                .metrics
                .leading
                .load(std::sync::atomic::Ordering::Acquire)
            {
                self.run_as_leader(&req).await
            } else {
                let metrics = self.raft_metrics();
                if metrics.running_state.is_err() {
                    return Err(ReplicaError::Stopped);
                }
                match metrics.current_leader {
                    Some(leader) if leader == self.inner.id => self.run_as_leader(&req).await,
                    Some(leader) => {
                        match (
                            metrics.membership_config.membership().get_node(&leader),
                            &req,
                        ) {
                            (Some(node), LeaderRequest::Write(command)) => {
                                self.inner
                                    .forwarder
                                    .write(leader, node, command.clone())
                                    .await
                            }
                            (Some(node), _) => {
                                // A read point or a lease query gets one election timeout per
                                // attempt, then goes to whoever leads by then (etcd sends a
                                // ReadIndex again every 500 ms): a leader cut off mid-call held
                                // every read of this member for 5 election timeouts, though
                                // another leader took over after one.
                                let timeout = if req.may_repeat() {
                                    self.inner.election_timeout
                                } else {
                                    self.inner.election_timeout * 5
                                };
                                forward::call(&self.inner.network, leader, node, &req, timeout)
                                    .await
                            }
                            (None, _) => Err(ReplicaError::NoLeader),
                        }
                    }
                    None => Err(ReplicaError::NoLeader),
                }
            };
            match attempt {
                Err(ReplicaError::NoLeader) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    pub(crate) async fn run_as_leader(
        &self,
        req: &LeaderRequest,
    ) -> Result<LeaderReply, ReplicaError> {
        let raft = &self.inner.raft;
        match req {
            LeaderRequest::Write(command) => raft
                .client_write(command.clone())
                .await
                .map_err(write_error)
                .and_then(|resp| store_reply(resp.data))
                .map(LeaderReply::Write),
            LeaderRequest::Writes(commands) => {
                // One message to openraft's core for the batch; each write answered on its own.
                let mut results = raft
                    .client_write_many(commands.iter().cloned())
                    .await
                    .map_err(|_| ReplicaError::Stopped)?;
                let mut replies = Vec::with_capacity(commands.len());
                while let Some(result) = results.next().await {
                    let result = result.map_err(|_| ReplicaError::Stopped)?;
                    replies.push(
                        result
                            .map_err(|err| write_error(RaftError::APIError(err)))
                            .and_then(|resp| store_reply(resp.response)),
                    );
                }
                Ok(LeaderReply::Writes(replies))
            }
            LeaderRequest::ReadIndex => Ok(LeaderReply::ReadIndex(self.read_index().await?)),
            LeaderRequest::KeepAlive(id) => {
                self.confirm_leadership().await?;
                self.leader_only(|| LeaderReply::KeepAlive(self.store().lease_keep_alive(*id)))
            }
            LeaderRequest::TimeToLive { lease, keys } => {
                self.confirm_leadership().await?;
                self.leader_only(|| {
                    LeaderReply::TimeToLive(self.store().lease_time_to_live(*lease, *keys))
                })
            }
            LeaderRequest::AddMember { id, node, learner } => {
                reconfig::may_add(&self.voters_seen(), *learner)?;
                let members = self.members();
                if members.iter().any(|m| m.id == *id) {
                    return Err(ReplicaError::MemberExists);
                }
                if members
                    .iter()
                    .any(|m| m.node.peer_urls.iter().any(|u| node.peer_urls.contains(u)))
                {
                    return Err(ReplicaError::PeerUrlExists);
                }
                if *learner {
                    raft.add_learner(*id, node.clone(), false)
                        .await
                        .map_err(write_error)?;
                } else {
                    // One membership change, node and vote together: as a learner add and then
                    // a promotion, a failure between the two left a learner behind, and the
                    // client's retry found "member ID already exist".
                    let voters = BTreeMap::from([(*id, node.clone())]);
                    raft.change_membership(ChangeMembers::AddVoters(voters), true)
                        .await
                        .map_err(write_error)?;
                }
                Ok(LeaderReply::Done)
            }
            LeaderRequest::Promote(id) => {
                let member = self
                    .members()
                    .into_iter()
                    .find(|m| m.id == *id)
                    .ok_or(ReplicaError::MemberNotFound)?;
                if !member.is_learner {
                    return Err(ReplicaError::NotLearner);
                }
                reconfig::may_promote(&self.voters_seen())?;
                // etcd's rule: the learner must have 90% of the leader's log.
                let metrics = self.raft_metrics();
                let last = metrics.last_log_index.unwrap_or(0);
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned().flatten())
                    .map_or(0, |log_id| log_id.index);
                if (matched as f64) < (last as f64) * 0.9 {
                    return Err(ReplicaError::LearnerNotReady);
                }
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*id])), true)
                    .await
                    .map_err(write_error)?;
                Ok(LeaderReply::Done)
            }
            LeaderRequest::Remove(id) => {
                let member = self
                    .members()
                    .into_iter()
                    .find(|m| m.id == *id)
                    .ok_or(ReplicaError::MemberNotFound)?;
                reconfig::may_remove(&self.voters_seen(), self.inner.id, *id)?;
                let change = if member.is_learner {
                    ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
                } else {
                    ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
                };
                raft.change_membership(change, false)
                    .await
                    .map_err(write_error)?;
                Ok(LeaderReply::Done)
            }
            LeaderRequest::SetNode(id, node) => {
                let members = self.members();
                if !members.iter().any(|m| m.id == *id) {
                    return Err(ReplicaError::MemberNotFound);
                }
                // etcd's ValidateConfigurationChange: new peer URLs must not be another's.
                if members.iter().any(|m| {
                    m.id != *id && m.node.peer_urls.iter().any(|u| node.peer_urls.contains(u))
                }) {
                    return Err(ReplicaError::PeerUrlExists);
                }
                raft.change_membership(
                    ChangeMembers::SetNodes(BTreeMap::from([(*id, node.clone())])),
                    true,
                )
                .await
                .map_err(write_error)?;
                Ok(LeaderReply::Done)
            }
            LeaderRequest::TransferLeader(to) => {
                if !self.members().iter().any(|m| m.id == *to && !m.is_learner) {
                    return Err(ReplicaError::MemberNotFound);
                }
                raft.trigger()
                    .transfer_leader(*to)
                    .await
                    .map_err(|_| ReplicaError::Stopped)?;
                // Done once the target leads (etcd's MoveLeader waits too).
                raft.wait(Some(self.inner.election_timeout * 5))
                    .metrics(|m| m.current_leader == Some(*to), "leadership transfer")
                    .await
                    .map_err(|_| ReplicaError::Timeout)?;
                Ok(LeaderReply::Done)
            }
        }
    }

    /// What this leader knows of each voter, for the strict reconfiguration check: started
    /// (published its name) and connected (acknowledged a heartbeat or an append lately).
    fn voters_seen(&self) -> Vec<reconfig::Voter> {
        let metrics = self.raft_metrics();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .map(|id| {
                let heard = metrics
                    .heartbeat
                    .as_ref()
                    .and_then(|beats| beats.get(&id).cloned().flatten())
                    .is_some_and(|at| at.elapsed() < reconfig::HEALTH_INTERVAL);
                reconfig::Voter {
                    id,
                    started: membership
                        .get_node(&id)
                        .is_some_and(|node| !node.name.is_empty()),
                    connected: id == self.inner.id || heard,
                }
            })
            .collect()
    }

    /// Before a lease answer (`leadership::confirm_leadership`). Not `linearize`, whose shared
    /// rounds go through `leader_op`, which runs this.
    async fn confirm_leadership(&self) -> Result<(), ReplicaError> {
        let inner = &self.inner;
        leadership::confirm_leadership(&inner.raft, &inner.metrics, inner.election_timeout * 5)
            .await
    }

    /// The term this member leads in, if it leads and a quorum acknowledged it within the
    /// election timeout (`leadership::leading_with_quorum`).
    fn leading_with_quorum(&self) -> Option<u64> {
        let inner = &self.inner;
        leadership::leading_with_quorum(
            &inner.metrics,
            &self.raft_metrics(),
            inner.id,
            inner.election_timeout,
        )
    }

    fn leader_only(&self, f: impl FnOnce() -> LeaderReply) -> Result<LeaderReply, ReplicaError> {
        if self.is_leader() {
            Ok(f())
        } else {
            Err(ReplicaError::NoLeader)
        }
    }
}

fn unexpected(reply: &LeaderReply) -> ReplicaError {
    ReplicaError::Other(format!("unexpected reply from the leader: {reply:?}"))
}

/// The store's answer to a committed write.
fn store_reply(reply: Reply) -> Result<Result<WriteResponse, StoreError>, ReplicaError> {
    match reply {
        Reply::Store(result) => Ok(result),
        Reply::None => Err(ReplicaError::Other("no reply for a write".into())),
    }
}

fn write_error(err: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> ReplicaError {
    match err {
        // Leadership moved between the check and the proposal: the caller looks again.
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ReplicaError::NoLeader,
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => ReplicaError::LeaderChanged,
        RaftError::APIError(other) => ReplicaError::Other(other.to_string()),
        RaftError::Fatal(_) => ReplicaError::Stopped,
    }
}

/// Follows leadership (`leadership::LeaderWatch`): a member that becomes leader restarts every
/// lease countdown at once.
async fn watch_leader(
    inner: std::sync::Weak<Inner>,
    mut metrics: openraft::alias::WatchReceiverOf<TypeConfig, openraft::RaftMetrics<TypeConfig>>,
) {
    let mut watch = LeaderWatch::default();
    loop {
        let (leader, leading, term) = {
            let m = metrics.borrow_and_update();
            (
                m.current_leader,
                m.state == ServerState::Leader,
                m.current_term,
            )
        };
        let Some(inner) = inner.upgrade() else { return };
        watch.observe(leader, leading, term, &inner.metrics, &inner.cell.get());
        drop(inner);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// The leader revokes expired leases through the log, itself (`leadership::expire_leases`): an
/// expiry is proposed only by a member that leads with a quorum that heard from it lately,
/// straight into its own log (never forwarded), and carries its term, so that it applies only if
/// that leadership logged it (`Command::ExpireLease`). An isolated leader's countdowns run on
/// while the majority elects another leader and keeps the lease alive; forwarded at heal, its
/// expiries revoked live leases.
async fn lease_loop(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(inner) = inner.upgrade() else { return };
        let replica = Replica { inner };
        let Some(term) = replica.leading_with_quorum() else {
            continue;
        };
        leadership::expire_leases(&replica.inner.raft, &replica.store(), term).await;
    }
}
