//! etcd's strict reconfiguration check (`--strict-reconfig-check`, on by default): the leader
//! refuses a membership change that the members it can reach could not complete. Pure rules over
//! what the leader knows of each voter; `replica.rs` gathers that and runs the change.
//!
//! Membership changes go through joint consensus, which needs a quorum of the old AND of the new
//! voters: removing a healthy voter while another is down leaves the joint configuration without
//! a quorum, so the change (and every write after it) waits until the down member returns.

use crate::types::NodeId;
use crate::wire::ReplicaError;

/// How recently the leader must have heard from a voter to count it as connected (etcd's
/// `HealthInterval`).
pub const HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// A voter as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voter {
    pub id: NodeId,
    /// It has published its name (etcd's `IsStarted`).
    pub started: bool,
    /// The leader heard from it within `HEALTH_INTERVAL` (the leader itself always has).
    pub connected: bool,
}

fn quorum(members: usize) -> usize {
    members / 2 + 1
}

/// etcd's `mayAddMember`: a new voter needs a quorum of started members counting it, and any
/// new member needs every voter connected.
pub fn may_add(voters: &[Voter], learner: bool) -> Result<(), ReplicaError> {
    if !learner {
        let started = voters.iter().filter(|v| v.started).count();
        let members = voters.len() + 1;
        // Adding a second member to a restored one-member cluster.
        let restoring = started == 1 && members == 2;
        if !restoring && started < quorum(members) {
            return Err(ReplicaError::NotEnoughStarted);
        }
    }
    if !voters.iter().all(|v| v.connected) {
        return Err(ReplicaError::Unhealthy);
    }
    Ok(())
}

/// etcd's `mayRemoveMember`: the voters left must hold a quorum of started members, and, unless
/// the one removed is down (removing it cannot cost the quorum anything), the connected voters
/// other than it must be a quorum of the current voters.
pub fn may_remove(voters: &[Voter], leader: NodeId, id: NodeId) -> Result<(), ReplicaError> {
    let Some(target) = voters.iter().find(|v| v.id == id) else {
        // A learner never counts toward a quorum.
        return Ok(());
    };
    let rest: Vec<&Voter> = voters.iter().filter(|v| v.id != id).collect();
    let started = rest.iter().filter(|v| v.started).count();
    if started < quorum(rest.len()) {
        return Err(ReplicaError::NotEnoughStarted);
    }
    if id != leader && !target.connected {
        return Ok(());
    }
    let connected = voters.iter().filter(|v| v.connected).count();
    if connected - 1 < quorum(voters.len()) {
        return Err(ReplicaError::Unhealthy);
    }
    Ok(())
}

/// etcd's `mayPromoteMember`: the learner counts as started, and the voters with it must hold a
/// quorum of started members.
pub fn may_promote(voters: &[Voter]) -> Result<(), ReplicaError> {
    let started = voters.iter().filter(|v| v.started).count() + 1;
    if started < quorum(voters.len() + 1) {
        return Err(ReplicaError::NotEnoughStarted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voters 1..=n, started and connected unless listed.
    fn voters(n: u64, down: &[u64], unstarted: &[u64]) -> Vec<Voter> {
        (1..=n)
            .map(|id| Voter {
                id,
                started: !unstarted.contains(&id),
                connected: !down.contains(&id),
            })
            .collect()
    }

    fn text(r: Result<(), ReplicaError>) -> String {
        r.map_or_else(|e| e.to_string(), |()| "ok".into())
    }

    #[test]
    fn removing_a_healthy_voter_while_another_is_down_is_refused() {
        let unhealthy = "etcdserver: unhealthy cluster";
        // 3 voters, 3 down: removing 2 would leave the joint configuration {1,2,3} & {1,3}
        // waiting for 3.
        assert_eq!(text(may_remove(&voters(3, &[3], &[]), 1, 2)), unhealthy);
        // Removing the down member itself is safe.
        assert_eq!(text(may_remove(&voters(3, &[3], &[]), 1, 3)), "ok");
        assert_eq!(text(may_remove(&voters(3, &[], &[]), 1, 2)), "ok");
        // 5 voters, one down: one healthy voter may go (3 of 5 connected remain).
        assert_eq!(text(may_remove(&voters(5, &[5], &[]), 1, 2)), "ok");
        assert_eq!(text(may_remove(&voters(5, &[4, 5], &[]), 1, 2)), unhealthy);
        // The leader removing itself counts itself out too.
        assert_eq!(text(may_remove(&voters(3, &[3], &[]), 1, 1)), unhealthy);
        // A learner is not a voter: always fine.
        assert_eq!(text(may_remove(&voters(3, &[2, 3], &[]), 1, 9)), "ok");
    }

    #[test]
    fn adds_need_every_voter_connected_and_started_voters() {
        assert_eq!(text(may_add(&voters(3, &[], &[]), false)), "ok");
        assert_eq!(
            text(may_add(&voters(3, &[3], &[]), true)),
            "etcdserver: unhealthy cluster"
        );
        assert_eq!(
            text(may_add(&voters(3, &[], &[2, 3]), false)),
            "etcdserver: re-configuration failed due to not enough started members"
        );
        // A restored single member takes a second one.
        assert_eq!(text(may_add(&voters(1, &[], &[]), false)), "ok");
    }

    #[test]
    fn promotion_counts_the_learner_as_started() {
        assert_eq!(text(may_promote(&voters(3, &[], &[3]))), "ok");
        assert_eq!(
            text(may_promote(&voters(3, &[], &[2, 3]))),
            "etcdserver: re-configuration failed due to not enough started members"
        );
    }
}
