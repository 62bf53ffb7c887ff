//! What a leader does for leases, apart from the replica that runs it, so that the simulation
//! (`raft/tests/sim.rs`) runs the same code on its deterministic runtime:
//!
//! - [`LeaderWatch`]: a member that becomes leader restarts every lease countdown before it acts
//!   as leader (etcd's `Promote`), so no countdown of an earlier leadership expires anything;
//! - [`leading_with_quorum`]: a leader decides expiries only while a quorum has heard from it within
//!   the election timeout (etcd's CheckQuorum; openraft has none), and [`expire_leases`] proposes them
//!   straight into its own log, never forwarded, carrying its term (`Command::ExpireLease`);
//! - [`confirm_leadership`]: before answering for a lease, a ReadIndex round confirms that this
//!   member still leads and its store has applied everything committed (etcd's `ensureLeadership`).
//!
//! Where a member is in all this is kept in its [`Metrics`] (`leading`, `term`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use ballast_store::backend::Backend;
use ballast_store::{Store, StoreError};
use openraft::error::RaftError;
use openraft::storage::RaftStateMachine;
use openraft::{Instant as _, Raft, RaftMetrics, RaftTypeConfig, ReadPolicy, ServerState};

use crate::metrics::Metrics;
use crate::types::{BallastConfig, Command, NodeId, Reply};
use crate::wire::ReplicaError;

/// Follows a member's raft metrics into its [`Metrics`]: the term, whether it leads, leader changes.
#[derive(Debug, Default)]
pub struct LeaderWatch {
    /// The leader and term last seen.
    last: Option<(Option<NodeId>, u64)>,
}

impl LeaderWatch {
    /// Notes what raft's metrics now say. A new leadership is a new term, even with the same
    /// leader (re-elected after a partition): if this member leads it, its countdowns restart
    /// before `leading` is set, so the expiry loop never sees deadlines from an earlier one.
    pub fn observe<B: Backend>(
        &mut self,
        leader: Option<NodeId>,
        leading: bool,
        term: u64,
        metrics: &Metrics,
        store: &Store<B>,
    ) {
        metrics.term.store(term, Ordering::Relaxed);
        let new_leadership = self.last != Some((leader, term));
        if new_leadership && leading {
            store.extend_leases();
            tracing::info!(term, "became leader");
        }
        metrics.leading.store(leading, Ordering::Release);
        if new_leadership {
            if leader.is_some() && self.last.is_none_or(|(before, _)| before != leader) {
                metrics.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            self.last = Some((leader, term));
        }
    }
}

/// The term `me` leads in, if raft's metrics say it leads and a quorum acknowledged it within
/// `election_timeout` (or it is the only voter). A leader that has not heard from a quorum for
/// that long may already have been replaced, so it decides nothing on its own clock.
pub fn quorum_heard<C: RaftTypeConfig<NodeId = NodeId, Term = u64>>(
    metrics: &RaftMetrics<C>,
    me: NodeId,
    election_timeout: Duration,
) -> Option<u64> {
    if metrics.state != ServerState::Leader {
        return None;
    }
    let alone = metrics.membership_config.membership().voter_ids().eq([me]);
    let heard = metrics
        .last_quorum_acked
        .as_ref()
        .is_some_and(|acked| acked.elapsed() < election_timeout);
    (alone || heard).then_some(metrics.current_term)
}

/// The term this member leads in, as its [`Metrics`] say (so its countdowns were restarted for
/// this leadership), if a quorum heard from it lately ([`quorum_heard`]): who may expire leases.
pub fn leading_with_quorum<C: RaftTypeConfig<NodeId = NodeId, Term = u64>>(
    metrics: &Metrics,
    raft_metrics: &RaftMetrics<C>,
    me: NodeId,
    election_timeout: Duration,
) -> Option<u64> {
    if !metrics.leading.load(Ordering::Acquire) {
        return None;
    }
    let term = metrics.term.load(Ordering::Relaxed);
    quorum_heard(raft_metrics, me, election_timeout).filter(|heard| *heard == term)
}

/// Proposes, as the leader of `term`, the expiry of every lease whose countdown ran out. Stops at
/// the first proposal raft refuses (leadership lost).
pub async fn expire_leases<C, SM, B>(raft: &Raft<C, SM>, store: &Store<B>, term: u64)
where
    C: BallastConfig,
    SM: RaftStateMachine<C>,
    B: Backend,
{
    for lease in store.expired_leases() {
        let expire = Command::ExpireLease { term, lease };
        match raft.client_write(expire).await {
            Ok(resp) => match resp.data {
                Reply::Store(Ok(_)) | Reply::Store(Err(StoreError::LeaseNotFound)) => {}
                Reply::Store(Err(err)) => {
                    tracing::warn!(lease, %err, "revoking an expired lease")
                }
                Reply::None => {
                    tracing::debug!(lease, term, "an expiry from another term was not applied")
                }
            },
            Err(err) => {
                tracing::debug!(lease, %err, "revoking an expired lease");
                return;
            }
        }
    }
}

/// A read point confirmed by a quorum, on this member as leader (openraft's ReadIndex).
pub async fn read_index<C, SM>(raft: &Raft<C, SM>) -> Result<u64, ReplicaError>
where
    C: BallastConfig,
    SM: RaftStateMachine<C>,
{
    let (read_log_id, _) = raft
        .get_read_log_id(ReadPolicy::ReadIndex)
        .await
        .map_err(|err| match err {
            RaftError::APIError(openraft::error::LinearizableReadError::ForwardToLeader(_)) => {
                ReplicaError::NoLeader
            }
            RaftError::APIError(_) => ReplicaError::Timeout,
            RaftError::Fatal(_) => ReplicaError::Stopped,
        })?;
    Ok(read_log_id.index())
}

/// Waits, at most `timeout`, until this member has applied up to `index`.
pub async fn wait_applied<C, SM>(
    raft: &Raft<C, SM>,
    metrics: &Metrics,
    index: u64,
    timeout: Duration,
) -> Result<(), ReplicaError>
where
    C: BallastConfig,
    SM: RaftStateMachine<C>,
{
    if metrics.applied_index.load(Ordering::Acquire) >= index {
        return Ok(());
    }
    raft.wait(Some(timeout))
        .applied_index_at_least(Some(index), "linearizable read")
        .await
        .map_err(|_| ReplicaError::Timeout)?;
    Ok(())
}

/// etcd's `ensureLeadership` (etcd-io/etcd#15247) before a lease answer: a quorum confirms that
/// this member still leads in the term it led in (a ReadIndex round), and its store has applied
/// everything committed before. A deposed or isolated leader's countdowns are not the cluster's
/// (they told clients "remaining 6-9 s" while the majority expired the lease), and a new leader's
/// store may not yet hold a lease granted just before its election. `NoLeader` makes the caller
/// look for the leader again.
pub async fn confirm_leadership<C, SM>(
    raft: &Raft<C, SM>,
    metrics: &Metrics,
    timeout: Duration,
) -> Result<(), ReplicaError>
where
    C: BallastConfig,
    SM: RaftStateMachine<C>,
{
    let leads = |term| {
        metrics.leading.load(Ordering::Acquire) && metrics.term.load(Ordering::Relaxed) == term
    };
    let term = metrics.term.load(Ordering::Relaxed);
    if !leads(term) {
        return Err(ReplicaError::NoLeader);
    }
    let index = read_index(raft).await?;
    wait_applied(raft, metrics, index, timeout).await?;
    if !leads(term) {
        return Err(ReplicaError::NoLeader);
    }
    Ok(())
}
