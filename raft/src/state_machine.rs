//! The MVCC store as openraft's state machine.
//!
//! Committed entries are applied in batches of up to [`MAX_APPLY_BATCH`] with one
//! `Store::apply_batch`, whose atomic write also records the last applied log id and the membership
//! in effect (the store's opaque `applied` position). So a restart finds the store and its position
//! together: nothing is applied twice, nothing skipped.
//!
//! What this file decides (which entries apply, in what batches, with what replies, and what an
//! installed snapshot must hold) is apart from where the store and its snapshots live, which is
//! its [`StoreHost`]'s business: RocksDB checkpoints in the data directory for a member
//! ([`crate::checkpoints::Checkpoints`]), copies in memory for the simulation
//! (`raft/tests/sim.rs`), which so runs this very apply and commit code. Likewise it is generic
//! over the type configuration ([`BallastConfig`]), as the simulation's runs openraft on its own
//! deterministic runtime.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ballast_store::backend::Backend;
use ballast_store::{Store, WriteRequest};
use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{ApplyResponder, EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, Snapshot};
use parking_lot::RwLock;

use crate::codec::{decode, encode};
use crate::metrics::Metrics;
use crate::types::{
    BallastConfig, CommittedLeaderId, LogId, MemberNode, NodeId, Reply, SnapshotMeta,
    StoredMembership,
};

/// The most entries applied in one store batch.
pub const MAX_APPLY_BATCH: usize = 1024;

/// The open store, replaceable when a snapshot is installed. Readers take a clone (cheap) per request.
pub struct StoreCell<B: Backend> {
    store: RwLock<Store<B>>,
}

impl<B: Backend> fmt::Debug for StoreCell<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCell").finish_non_exhaustive()
    }
}

impl<B: Backend> StoreCell<B> {
    pub fn new(store: Store<B>) -> Self {
        Self {
            store: RwLock::new(store),
        }
    }

    pub fn get(&self) -> Store<B> {
        self.store.read().clone()
    }

    /// Puts `store` in place of the open one, which it returns.
    pub fn replace(&self, store: Store<B>) -> Store<B> {
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

/// Where the state machine's store and snapshots live, and how its slow work runs.
pub trait StoreHost: fmt::Debug + Send + Sync + 'static {
    type Backend: Backend;
    /// A snapshot as openraft passes it around (`RaftStateMachine::SnapshotData`).
    type Snapshot: fmt::Debug + Send + Sync + 'static;

    /// Runs store work: off the async threads if `heavy` (it may touch many keys).
    fn run<R: Send + 'static>(
        &self,
        heavy: bool,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = io::Result<R>> + Send;

    /// Takes a snapshot of `store`: between two applies, so exactly the state at `meta`'s log id.
    fn take_snapshot(
        &self,
        store: &Store<Self::Backend>,
        meta: &SnapshotMeta,
    ) -> impl Future<Output = io::Result<Self::Snapshot>> + Send;

    /// Makes a received snapshot the store a restart opens, and returns it opened.
    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        snapshot: Self::Snapshot,
    ) -> impl Future<Output = io::Result<Store<Self::Backend>>> + Send;

    /// After the store installed from `meta` replaced `old` (closed): clears what is left of it.
    fn installed(&self, meta: &SnapshotMeta, old: Store<Self::Backend>) -> io::Result<()>;

    /// The latest complete snapshot.
    fn current_snapshot(
        &self,
    ) -> impl Future<Output = io::Result<Option<(SnapshotMeta, Self::Snapshot)>>> + Send;

    /// Sees each request just before it is applied. Nothing to do for a member; the simulation
    /// plants a wrong apply here, to show that its checks catch one.
    fn before_apply(&self, _log_id: &LogId, _req: &mut WriteRequest) {}

    /// Sees every applied batch before its replies go out: the store as it now is, and each
    /// entry's log id with what applying it gave. The simulation checks here that every member
    /// applies alike.
    fn applied(&self, _store: &Store<Self::Backend>, _replies: &[(LogId, Reply)]) {}
}

/// The state machine: the store in its [`StoreCell`], and where applying has got to.
pub struct StateMachine<H: StoreHost> {
    cell: Arc<StoreCell<H::Backend>>,
    host: H,
    metrics: Arc<Metrics>,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl<H: StoreHost> fmt::Debug for StateMachine<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachine")
            .field("host", &self.host)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// One entry of a batch being applied: its log id, the index of its store request (if it has
/// one), and the client waiting for its reply (if any).
type Slot<C> = (LogId, Option<usize>, Option<ApplyResponder<C>>);

impl<H: StoreHost> StateMachine<H> {
    pub fn new(
        cell: Arc<StoreCell<H::Backend>>,
        host: H,
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
            host,
            metrics,
            applied,
            membership,
        })
    }

    fn position(&self) -> Vec<u8> {
        encode(&(&self.applied, &self.membership))
    }

    async fn commit<C: BallastConfig>(
        &mut self,
        reqs: Vec<WriteRequest>,
        slots: Vec<Slot<C>>,
    ) -> io::Result<()> {
        let store = self.cell.get();
        let position = self.position();
        let started = std::time::Instant::now();
        self.metrics.entries_per_apply.observe(slots.len() as f64);
        // A few single-key writes take some microseconds: handing them to the blocking pool
        // would cost two thread wake-ups, more than the work, on every lightly loaded write.
        let heavy = !inline_apply(&reqs);
        let applying = store.clone();
        let (results, size) = self
            .host
            .run(heavy, move || {
                applying
                    .apply_batch(&reqs, Some(&position))
                    .map(|results| (results, applying.size_bytes()))
            })
            .await?
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
        let (replies, responders): (Vec<_>, Vec<_>) = slots
            .into_iter()
            .map(|(log_id, slot, responder)| {
                let reply = match slot {
                    Some(i) => Reply::Store(results[i].take().expect("one result per request")),
                    None => Reply::None,
                };
                ((log_id, reply), responder)
            })
            .unzip();
        self.host.applied(&store, &replies);
        for ((_, reply), responder) in replies.into_iter().zip(responders) {
            if let Some(responder) = responder {
                responder.send(reply);
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

/// A snapshot taken between two applies; building only hands it over.
#[derive(Debug)]
pub struct Builder<S: fmt::Debug + Send + Sync + 'static> {
    snapshot: Option<Snapshot<CommittedLeaderId, NodeId, MemberNode, S>>,
}

impl<C: BallastConfig, S: fmt::Debug + Send + Sync + 'static> RaftSnapshotBuilder<C>
    for Builder<S>
{
    type SnapshotData = S;

    async fn build_snapshot(&mut self) -> Result<openraft::alias::SnapshotOf<C, S>, io::Error> {
        self.snapshot
            .take()
            .ok_or_else(|| io::Error::other("snapshot already built"))
    }
}

impl<C: BallastConfig, H: StoreHost> RaftStateMachine<C> for StateMachine<H> {
    type SnapshotData = H::Snapshot;
    type SnapshotBuilder = Builder<H::Snapshot>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut reqs = Vec::new();
        let mut slots: Vec<Slot<C>> = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id();
            self.applied = Some(log_id);
            let slot = match entry.payload {
                EntryPayload::Normal(command) => match command.store_request(log_id.leader_id.term)
                {
                    Some(mut req) => {
                        self.host.before_apply(&log_id, &mut req);
                        reqs.push(req);
                        Some(reqs.len() - 1)
                    }
                    // An expiry that did not come from the leader of its entry's term.
                    None => None,
                },
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                    None
                }
                EntryPayload::Blank => None,
            };
            slots.push((log_id, slot, responder));
            if slots.len() >= MAX_APPLY_BATCH {
                self.commit(std::mem::take(&mut reqs), std::mem::take(&mut slots))
                    .await?;
            }
        }
        if !slots.is_empty() {
            self.commit(reqs, slots).await?;
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
        };
        match self.host.take_snapshot(&self.cell.get(), &meta).await {
            Ok(snapshot) => Some(Builder {
                snapshot: Some(Snapshot { meta, snapshot }),
            }),
            Err(err) => {
                tracing::error!(%err, "could not take a snapshot");
                None
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        match RaftStateMachine::<C>::try_create_snapshot_builder(self, true).await {
            Some(builder) => builder,
            None => Builder { snapshot: None },
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: H::Snapshot,
    ) -> Result<(), io::Error> {
        let new_store = self.host.install_snapshot(meta, snapshot).await?;
        let (applied, membership) = decode_applied(new_store.applied())?;
        if applied != meta.last_log_id {
            return Err(io::Error::other(format!(
                "snapshot holds {applied:?}, its metadata says {:?}",
                meta.last_log_id
            )));
        }
        let size = new_store.size_bytes();
        let old = self.cell.replace(new_store);
        old.close();
        self.host.installed(meta, old)?;
        self.applied = applied;
        self.membership = membership;
        self.metrics
            .applied_index
            .store(self.applied.map_or(0, |id| id.index), Ordering::Release);
        self.metrics.db_size_bytes.store(size, Ordering::Relaxed);
        self.metrics
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::alias::SnapshotOf<C, H::Snapshot>>, io::Error> {
        Ok(self
            .host
            .current_snapshot()
            .await?
            .map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}
