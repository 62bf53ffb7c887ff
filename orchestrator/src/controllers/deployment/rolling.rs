//! RollingUpdate strategy: one step of `rolloutRolling`.
//!
//! Copies pkg/controller/deployment/rolling.go (`rolloutRolling`, `reconcileNewReplicaSet`,
//! `reconcileOldReplicaSets`, `cleanupUnhealthyReplicas`,
//! `scaleDownOldReplicaSetsForRollingUpdate`). A step either scales the new RS up (within
//! replicas + maxSurge), or scales old ones down (within replicas - maxUnavailable available
//! pods), or, once complete, cleans up history; then it writes the rollout status.

use super::status::deployment_complete;
use super::sync::{Planner, Stop};
use super::util;

/// `rolloutRolling`.
pub(crate) fn rollout(p: &mut Planner) -> Result<(), Stop> {
    let (new, old) = p.get_all_and_sync_revision(true)?;
    let Some(new) = new else {
        return Ok(());
    };
    let snap = p.snapshot();
    let mut all: Vec<usize> = old.clone();
    all.push(new);

    if reconcile_new(p, &all, new) {
        p.sync_rollout_status(&snap, Some(new));
        return Ok(());
    }
    let active_old: Vec<usize> = old
        .iter()
        .copied()
        .filter(|i| util::is_active(&p.rss[*i]))
        .collect();
    if reconcile_old(p, &all, active_old, new) {
        p.sync_rollout_status(&snap, Some(new));
        return Ok(());
    }
    if deployment_complete(&p.d, p.d.status.as_ref()) {
        p.cleanup(&snap, &old);
    }
    p.sync_rollout_status(&snap, Some(new));
    Ok(())
}

/// `reconcileNewReplicaSet`: shrink the new RS if above spec.replicas, else grow it as far
/// as `NewRSNewReplicas` allows. True if it was resized.
fn reconcile_new(p: &mut Planner, all: &[usize], new: usize) -> bool {
    let desired = util::replicas(&p.d);
    let current = util::rs_replicas(&p.rss[new]);
    if current == desired {
        return false;
    }
    if current > desired {
        return p.scale_and_record(new, desired);
    }
    let all_rs: Vec<_> = all.iter().map(|i| &p.rss[*i]).collect();
    let target = util::new_rs_new_replicas(&p.d, &all_rs, &p.rss[new]);
    p.scale_and_record(new, target)
}

/// `reconcileOldReplicaSets`: how far old RSs may shrink is
/// allPods - minAvailable - unavailable pods of the new RS; unhealthy old replicas go
/// first, then available ones while availability stays above minAvailable.
fn reconcile_old(p: &mut Planner, all: &[usize], mut old: Vec<usize>, new: usize) -> bool {
    let sum = |p: &Planner, ids: &[usize]| -> i32 {
        ids.iter().map(|i| util::rs_replicas(&p.rss[*i])).sum()
    };
    if sum(p, &old) == 0 {
        return false;
    }
    let all_pods = sum(p, all);
    let min_available = util::replicas(&p.d) - util::max_unavailable(&p.d);
    let new_rs = &p.rss[new];
    let new_unavailable = util::rs_replicas(new_rs) - util::rs_available(new_rs);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return false;
    }
    old.sort_by(|a, b| util::cmp_by_creation(&p.rss[*a], &p.rss[*b]));
    let Some(cleaned) = cleanup_unhealthy(p, &old, max_scaled_down) else {
        return false;
    };
    let Some(scaled) = scale_down_old(p, &old, new) else {
        return false;
    };
    cleaned + scaled > 0
}

/// `cleanupUnhealthyReplicas`: removes not-available replicas of old RSs (oldest first), at
/// most `max_cleanup` in total. `None` mirrors Go's error on a nonsensical request.
fn cleanup_unhealthy(p: &mut Planner, old: &[usize], max_cleanup: i32) -> Option<i32> {
    let mut total = 0;
    for &i in old {
        if total >= max_cleanup {
            break;
        }
        let replicas = util::rs_replicas(&p.rss[i]);
        let available = util::rs_available(&p.rss[i]);
        if replicas == 0 || replicas == available {
            continue;
        }
        let count = (max_cleanup - total).min(replicas - available);
        let target = replicas - count;
        if target > replicas {
            return None;
        }
        p.scale_and_record(i, target);
        total += count;
    }
    Some(total)
}

/// `scaleDownOldReplicaSetsForRollingUpdate`: scales old RSs (oldest first) down by
/// available - minAvailable, counting availability over the old RSs and the new one.
fn scale_down_old(p: &mut Planner, old: &[usize], new: usize) -> Option<i32> {
    let min_available = util::replicas(&p.d) - util::max_unavailable(&p.d);
    let available: i32 = old
        .iter()
        .chain([&new])
        .map(|i| util::rs_available(&p.rss[*i]))
        .sum();
    if available <= min_available {
        return Some(0);
    }
    let budget = available - min_available;
    let mut total = 0;
    for &i in old {
        if total >= budget {
            break;
        }
        let replicas = util::rs_replicas(&p.rss[i]);
        if replicas == 0 {
            continue;
        }
        let count = replicas.min(budget - total);
        let target = replicas - count;
        if target > replicas {
            return None;
        }
        p.scale_and_record(i, target);
        total += count;
    }
    Some(total)
}
