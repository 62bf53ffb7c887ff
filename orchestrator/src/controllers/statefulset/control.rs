//! The core of one StatefulSet sync: ordered (or parallel) creation,
//! replacement of failed pods, scale down from the highest ordinal, and the
//! rolling update, with the status they leave.
//!
//! Copies pkg/controller/statefulset/stateful_set_control.go of Kubernetes
//! 1.32 (`updateStatefulSet`, `processReplica`, `processCondemned`,
//! `runForAll`, `computeReplicaStatus`, `updateStatus`) and from
//! stateful_set_utils.go `isRunningAndReady`, `isRunningAndAvailable`,
//! `isCreated`, `isPending`, `isFailed`, `isSucceeded`, `isTerminating`,
//! `isHealthy`, `completeRollingUpdate`, `inconsistentStatus`. The
//! MaxUnavailableStatefulSet gate (alpha, off in 1.32) is not modelled: a
//! rolling update replaces one pod at a time.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::history::Revisions;
use super::identity::{
    identity_matches, new_versioned_pod, ordinal, pod_revision, storage_matches, Strategy,
};
use super::podcontrol::PodControl;
use super::DeleteReason;
use crate::controllers::pods::{self, is_ready, phase};

/// `isCreated`: the pod has a phase (it exists in the API).
pub fn is_created(pod: &Pod) -> bool {
    !phase(pod).is_empty()
}

/// `isTerminating`: the pod has a deletionTimestamp.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `isRunningAndReady`: phase Running and condition Ready true.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == pods::PHASE_RUNNING && is_ready(pod)
}

/// `isRunningAndAvailable`: `podutil.IsPodAvailable` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    pods::is_available(pod, min_ready_seconds, now)
}

/// `isHealthy`: running and ready and not terminating.
pub fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && !is_terminating(pod)
}

/// One slot of `[start, end]`: the pod of the cache, or the pod to create.
#[derive(Debug, Clone)]
enum Slot {
    Existing(Arc<Pod>),
    Missing(Box<Pod>),
}

impl Slot {
    fn pod(&self) -> &Pod {
        match self {
            Slot::Existing(p) => p,
            Slot::Missing(p) => p,
        }
    }
}

/// `updateStatus`: counts of `pods` against the current and update revision.
pub fn count_status<'p>(
    status: &mut StatefulSetStatus,
    pods: impl IntoIterator<Item = &'p Pod>,
    min_ready_seconds: i32,
    current: &str,
    update: &str,
    now: Timestamp,
) {
    let (mut replicas, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
    for pod in pods {
        if is_created(pod) {
            replicas += 1;
        }
        if is_running_and_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                available += 1;
            }
        }
        if is_created(pod) && !is_terminating(pod) {
            let rev = pod_revision(pod);
            if rev == current {
                cur += 1;
            }
            if rev == update {
                upd += 1;
            }
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(cur);
    status.updated_replicas = Some(upd);
}

/// Inputs of [`update_stateful_set`] besides the planner.
#[derive(Debug)]
pub struct Target<'a> {
    /// Current and update revisions.
    pub revisions: &'a Revisions,
    /// Template of the current revision (`ApplyRevision(set, current)`).
    pub current_template: &'a PodTemplateSpec,
    /// Template of the update revision.
    pub update_template: &'a PodTemplateSpec,
    /// The clock.
    pub now: Timestamp,
}

/// `updateStatefulSet`: plans the pod writes of one sync over the claimed
/// `pods` and returns the status they leave (before
/// `completeRollingUpdate`) and the error the sync ends with, if any.
pub fn update_stateful_set(
    pc: &mut PodControl,
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    t: &Target,
) -> (StatefulSetStatus, Option<String>) {
    let s = pc.s;
    let current_name = t
        .revisions
        .current
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    let update_name = t.revisions.update.metadata.name.clone().unwrap_or_default();
    let mrs = s.min_ready_seconds;
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(current_name.clone()),
        update_revision: Some(update_name.clone()),
        collision_count: Some(t.revisions.collision_count),
        ..StatefulSetStatus::default()
    };
    count_status(
        &mut status,
        pods.iter().map(|p| p.as_ref()),
        mrs,
        &current_name,
        &update_name,
        t.now,
    );

    let count = usize::try_from(s.replicas).unwrap_or(0);
    let mut existing: Vec<Option<Arc<Pod>>> = vec![None; count];
    let mut condemned: Vec<Arc<Pod>> = Vec::new();
    for pod in pods {
        let ord = ordinal(pod);
        if s.in_range(ord) {
            let idx = usize::try_from(ord - i64::from(s.start)).unwrap_or(usize::MAX);
            if let Some(slot) = existing.get_mut(idx) {
                *slot = Some(Arc::clone(pod));
            }
        } else if ord >= 0 {
            condemned.push(Arc::clone(pod));
        }
    }
    let replicas: Vec<Slot> = existing
        .into_iter()
        .enumerate()
        .map(|(idx, p)| match p {
            Some(p) => Slot::Existing(p),
            None => {
                let ord = i64::from(s.start) + i64::try_from(idx).unwrap_or(0);
                Slot::Missing(Box::new(new_versioned_pod(
                    s,
                    set,
                    (t.current_template, &current_name),
                    (t.update_template, &update_name),
                    ord,
                )))
            }
        })
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));

    // firstUnhealthyPod: the lowest unhealthy replica, else the lowest
    // unhealthy condemned pod.
    let first_unhealthy: Option<String> = replicas
        .iter()
        .map(Slot::pod)
        .chain(condemned.iter().rev().map(|p| p.as_ref()))
        .find(|p| !is_healthy(p))
        .and_then(|p| p.metadata.name.clone());

    let final_status =
        |status: &mut StatefulSetStatus, replicas: &[Slot], condemned: &[Arc<Pod>]| {
            count_status(
                status,
                replicas
                    .iter()
                    .map(Slot::pod)
                    .chain(condemned.iter().map(|p| p.as_ref())),
                mrs,
                &current_name,
                &update_name,
                t.now,
            );
        };

    if set.metadata.deletion_timestamp.is_some() {
        return (status, None);
    }
    let monotonic = !s.parallel;

    // Living replicas, in ordinal order.
    for slot in &replicas {
        match process_replica(pc, slot, monotonic, t.now) {
            Ok(false) => {}
            Ok(true) if !monotonic => {}
            Ok(true) => {
                final_status(&mut status, &replicas, &condemned);
                return (status, None);
            }
            Err(e) => {
                final_status(&mut status, &replicas, &condemned);
                return (status, Some(e));
            }
        }
    }

    // Retention references of condemned pods' claims.
    for pod in &condemned {
        if !pc.claims_match_retention(pod) {
            pc.update_claims_for_retention(pod);
        }
    }

    // Scale down, highest ordinal first.
    for pod in &condemned {
        if process_condemned(pc, pod, first_unhealthy.as_deref(), monotonic, t.now) && monotonic {
            final_status(&mut status, &replicas, &condemned);
            return (status, None);
        }
    }
    final_status(&mut status, &replicas, &condemned);

    let partition = match s.strategy {
        Strategy::OnDelete => return (status, None),
        Strategy::RollingUpdate { partition } => partition.unwrap_or(0),
    };
    let update_min = usize::try_from(partition).unwrap_or(0);
    for slot in replicas.iter().skip(update_min).rev() {
        let pod = slot.pod();
        let already = pc
            .deleted
            .contains(pod.metadata.name.as_deref().unwrap_or(""));
        if pod_revision(pod) != update_name && !is_terminating(pod) && !already {
            pc.delete_pod(pod, DeleteReason::Update);
            status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
            return (status, None);
        }
        if !is_healthy(pod) {
            return (status, None);
        }
    }
    (status, None)
}

/// `processReplica`: `Ok(true)` when the sync must stop here in
/// OrderedReady mode.
fn process_replica(
    pc: &mut PodControl,
    slot: &Slot,
    monotonic: bool,
    now: Timestamp,
) -> Result<bool, String> {
    let pod = slot.pod();
    let ph = phase(pod);
    if ph == pods::PHASE_FAILED || ph == pods::PHASE_SUCCEEDED {
        if !is_terminating(pod) {
            let reason = if ph == pods::PHASE_FAILED {
                DeleteReason::Failed
            } else {
                DeleteReason::Succeeded
            };
            pc.delete_pod(pod, reason);
        }
        // A new pod is created on the next sync, once this one is gone.
        return Ok(true);
    }
    if let Slot::Missing(p) = slot {
        if pc.claim_is_stale(p) {
            return Ok(true);
        }
        pc.create_pod(p)?;
        if monotonic {
            return Ok(true);
        }
    }
    if ph == pods::PHASE_PENDING {
        pc.create_missing_claims(pod)?;
    }
    if monotonic
        && (is_terminating(pod)
            || !is_running_and_ready(pod)
            || !is_available(pod, pc.s.min_ready_seconds, now))
    {
        return Ok(true);
    }
    let retention_match = pc.claims_match_retention(pod);
    if identity_matches(pc.s, pod) && storage_matches(pc.s, pc.set, pod) && retention_match {
        return Ok(false);
    }
    pc.update_pod(pod)?;
    Ok(false)
}

/// `processCondemned`: true when it planned a delete or must wait (the
/// caller stops there in OrderedReady mode).
fn process_condemned(
    pc: &mut PodControl,
    pod: &Pod,
    first_unhealthy: Option<&str>,
    monotonic: bool,
    now: Timestamp,
) -> bool {
    if is_terminating(pod) {
        return monotonic;
    }
    let is_first_unhealthy = pod.metadata.name.as_deref() == first_unhealthy;
    if monotonic
        && !is_first_unhealthy
        && (!is_running_and_ready(pod) || !is_available(pod, pc.s.min_ready_seconds, now))
    {
        return true;
    }
    pc.delete_pod(pod, DeleteReason::ScaleDown);
    true
}

/// `completeRollingUpdate`: with RollingUpdate, once every replica is
/// created, ready and updated, the update revision becomes current.
pub fn complete_rolling_update(strategy: Strategy, replicas: i32, status: &mut StatefulSetStatus) {
    let n = |v: Option<i32>| v.unwrap_or(0);
    if matches!(strategy, Strategy::RollingUpdate { .. })
        && n(status.updated_replicas) == replicas
        && n(status.ready_replicas) == replicas
        && status.replicas == replicas
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// `inconsistentStatus`: the new status must be written (a newer
/// observedGeneration, or any count or revision differs).
pub fn inconsistent_status(set: &StatefulSet, new: &StatefulSetStatus) -> bool {
    let old = set.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    new.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || new.replicas != old.replicas
        || n(new.current_replicas) != n(old.current_replicas)
        || n(new.ready_replicas) != n(old.ready_replicas)
        || n(new.updated_replicas) != n(old.updated_replicas)
        || new.current_revision.as_deref().unwrap_or("")
            != old.current_revision.as_deref().unwrap_or("")
        || n(new.available_replicas) != n(old.available_replicas)
        || new.update_revision.as_deref().unwrap_or("")
            != old.update_revision.as_deref().unwrap_or("")
}
