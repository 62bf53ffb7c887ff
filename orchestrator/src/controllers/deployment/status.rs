//! Deployment status and conditions.
//!
//! Copies pkg/controller/deployment/sync.go (`calculateStatus`), progress.go
//! (`syncRolloutStatus`, `getReplicaFailures`, `requeueStuckDeployment`) and the condition
//! helpers of util/deployment_util.go (`SetDeploymentCondition`, `DeploymentComplete`,
//! `DeploymentProgressing`, `DeploymentTimedOut`). `kubectl rollout status` reads
//! observedGeneration, updatedReplicas, replicas, availableReplicas and the
//! `ProgressDeadlineExceeded` reason written here.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::util;
use super::*;

/// `NewDeploymentCondition`: both times set to `now`.
pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `GetDeploymentCondition`.
pub(crate) fn get_condition<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

/// `SetDeploymentCondition`: no-op when a condition of that type already has the same
/// status and reason; keeps lastTransitionTime when only the reason changes; the updated
/// condition moves to the end of the list.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(cur) = get_condition(Some(status), &cond.type_) {
        if cur.status == cond.status && cur.reason == cond.reason {
            return;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// `RemoveDeploymentCondition`.
pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            status.conditions = None;
        }
    }
}

fn int(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Semantic equality of two statuses (`reflect.DeepEqual` on Go's value fields): an absent
/// counter equals 0 and an absent condition list equals an empty one.
pub(crate) fn statuses_equal(a: Option<&DeploymentStatus>, b: Option<&DeploymentStatus>) -> bool {
    let def = DeploymentStatus::default();
    let (a, b) = (a.unwrap_or(&def), b.unwrap_or(&def));
    let empty = Vec::new();
    int(a.replicas) == int(b.replicas)
        && int(a.updated_replicas) == int(b.updated_replicas)
        && int(a.ready_replicas) == int(b.ready_replicas)
        && int(a.available_replicas) == int(b.available_replicas)
        && int(a.unavailable_replicas) == int(b.unavailable_replicas)
        && int(a.terminating_replicas) == int(b.terminating_replicas)
        && a.observed_generation.unwrap_or(0) == b.observed_generation.unwrap_or(0)
        && a.collision_count == b.collision_count
        && a.conditions.as_ref().unwrap_or(&empty) == b.conditions.as_ref().unwrap_or(&empty)
}

/// `calculateStatus`: counters summed over all ReplicaSets (updatedReplicas from the new
/// one), conditions carried over, and the Available condition recomputed against
/// replicas - maxUnavailable.
pub(crate) fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| util::rs_available(rs)).sum();
    let total_spec: i32 = all.iter().map(|rs| util::rs_replicas(rs)).sum();
    let unavailable = (total_spec - available).max(0);
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: Some(all.iter().map(|rs| util::rs_status_replicas(rs)).sum()),
        updated_replicas: Some(new_rs.map(util::rs_status_replicas).unwrap_or(0)),
        ready_replicas: Some(all.iter().map(|rs| util::rs_ready(rs)).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some(unavailable),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        conditions: d
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .filter(|c| !c.is_empty()),
        terminating_replicas: None,
    };
    let cond = if available >= util::replicas(d) - util::max_unavailable(d) {
        new_condition(
            CONDITION_AVAILABLE,
            "True",
            REASON_MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        new_condition(
            CONDITION_AVAILABLE,
            "False",
            REASON_MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, cond);
    status
}

/// `DeploymentComplete`: all desired replicas updated and available, no old pods, and the
/// current generation observed.
pub(crate) fn deployment_complete(d: &Deployment, s: Option<&DeploymentStatus>) -> bool {
    let want = util::replicas(d);
    let Some(s) = s else { return false };
    int(s.updated_replicas) == want
        && int(s.replicas) == want
        && int(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated/ready/available pods, or fewer old pods, than the
/// status currently recorded on the deployment.
pub(crate) fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let def = DeploymentStatus::default();
    let old = d.status.as_ref().unwrap_or(&def);
    let old_old = int(old.replicas) - int(old.updated_replicas);
    let new_old = int(new.replicas) - int(new.updated_replicas);
    int(new.updated_replicas) > int(old.updated_replicas)
        || new_old < old_old
        || int(new.ready_replicas) > int(old.ready_replicas)
        || int(new.available_replicas) > int(old.available_replicas)
}

/// `DeploymentTimedOut`: the Progressing condition (unless it already reports success) was
/// last updated more than progressDeadlineSeconds before `now`.
pub(crate) fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = util::progress_deadline(d) else {
        return false;
    };
    let Some(cond) = get_condition(Some(new), CONDITION_PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(REASON_NEW_RS_AVAILABLE) => return false,
        Some(REASON_TIMED_OUT) => return true,
        _ => {}
    }
    let from = cond
        .last_update_time
        .as_ref()
        .or(cond.last_transition_time.as_ref());
    match from {
        // A condition without any time counts from the zero time, as in Go.
        None => true,
        Some(t) => {
            t.0.checked_add(SignedDuration::from_secs(i64::from(deadline)))
                .is_ok_and(|end| end < now)
        }
    }
}

fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

fn rs_or_deployment_message(d: &Deployment, new_rs: Option<&ReplicaSet>, tail: &str) -> String {
    match new_rs {
        Some(rs) => format!("ReplicaSet {} {tail}", go_quote(util::rs_name(rs))),
        None => format!(
            "Deployment {} {tail}",
            go_quote(d.metadata.name.as_deref().unwrap_or(""))
        ),
    }
}

fn rs_to_deployment_condition(c: &ReplicaSetCondition) -> DeploymentCondition {
    DeploymentCondition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        last_transition_time: c.last_transition_time.clone(),
        last_update_time: c.last_transition_time.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

/// `getReplicaFailures`: ReplicaFailure conditions of the new RS, else of any RS.
fn replica_failures(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<DeploymentCondition> {
    let failures = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.type_ == CONDITION_REPLICA_FAILURE)
            .map(rs_to_deployment_condition)
            .collect()
    };
    let from_new = new_rs.map(failures).unwrap_or_default();
    if !from_new.is_empty() {
        return from_new;
    }
    all.iter().flat_map(|rs| failures(rs)).collect()
}

/// The status `syncRolloutStatus` would write: `calculateStatus` plus the Progressing
/// condition (NewReplicaSetAvailable / ReplicaSetUpdated / ProgressDeadlineExceeded) and
/// promoted ReplicaFailure conditions.
pub(crate) fn rollout_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut new_status = calculate_status(all, new_rs, d, now);
    let has_deadline = util::progress_deadline(d).is_some();
    if !has_deadline {
        remove_condition(&mut new_status, CONDITION_PROGRESSING);
    }
    let current = get_condition(d.status.as_ref(), CONDITION_PROGRESSING);
    let is_complete = int(new_status.replicas) == int(new_status.updated_replicas)
        && current.is_some_and(|c| c.reason.as_deref() == Some(REASON_NEW_RS_AVAILABLE));
    if has_deadline && !is_complete {
        if deployment_complete(d, Some(&new_status)) {
            let msg = rs_or_deployment_message(d, new_rs, "has successfully progressed.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                REASON_NEW_RS_AVAILABLE,
                msg,
                now,
            );
            set_condition(&mut new_status, c);
        } else if deployment_progressing(d, &new_status) {
            let msg = rs_or_deployment_message(d, new_rs, "is progressing.");
            let mut c = new_condition(CONDITION_PROGRESSING, "True", REASON_RS_UPDATED, msg, now);
            if let Some(cur) = current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut new_status, CONDITION_PROGRESSING);
            }
            set_condition(&mut new_status, c);
        } else if deployment_timed_out(d, &new_status, now) {
            let msg = rs_or_deployment_message(d, new_rs, "has timed out progressing.");
            let c = new_condition(CONDITION_PROGRESSING, "False", REASON_TIMED_OUT, msg, now);
            set_condition(&mut new_status, c);
        }
    }
    match replica_failures(all, new_rs).into_iter().next() {
        Some(f) => set_condition(&mut new_status, f),
        None => remove_condition(&mut new_status, CONDITION_REPLICA_FAILURE),
    }
    new_status
}

/// `requeueStuckDeployment`: when to look at the deployment again to detect a missed
/// progress deadline. `None`: no need; `Some(ZERO)`: now; otherwise the remaining time plus
/// one second (kube's skew margin).
pub(crate) fn requeue_after_status(
    d: &Deployment,
    new_status: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let deadline = util::progress_deadline(d)?;
    let cur = get_condition(d.status.as_ref(), CONDITION_PROGRESSING)?;
    if deployment_complete(d, Some(new_status)) || cur.reason.as_deref() == Some(REASON_TIMED_OUT) {
        return None;
    }
    let Some(from) = cur.last_update_time.as_ref() else {
        return Some(Duration::ZERO);
    };
    let end = from
        .0
        .checked_add(SignedDuration::from_secs(i64::from(deadline)))
        .ok()?;
    let after = end.duration_since(now);
    if after < SignedDuration::from_secs(1) {
        return Some(Duration::ZERO);
    }
    Duration::try_from(after)
        .ok()
        .map(|a| a + Duration::from_secs(1))
}

#[cfg(test)]
#[path = "status_test.rs"]
mod tests;
