//! The pure decision core of the ReplicaSet controller.
//!
//! Copies `syncReplicaSet`, `manageReplicas`, `claimPods`, `slowStartBatch`,
//! `getIndirectlyRelatedPods` (pkg/controller/replicaset/replica_set.go),
//! `calculateStatus` / `updateReplicaSetStatus` (replica_set_utils.go) and
//! `PodControllerRefManager.ClaimPods` / `BaseControllerRefManager.ClaimObject`
//! (pkg/controller/controller_ref_manager.go) of Kubernetes 1.32, without I/O:
//! [`reconcile`] returns a [`Plan`] that the caller carries out.
//!
//! Order the integrator follows, as upstream: read `expectations.satisfied`
//! before listing pods; call [`reconcile`]; patch adoptions/releases (abort the
//! sync and requeue on any error other than NotFound); if `create > 0`, call
//! `expect_creations(key, create)` then create [`new_pod`]s in
//! [`slow_start_batches`], stopping at the first batch with a failure and
//! calling `creation_observed` once per pod never attempted or failed (a
//! failure because the namespace is terminating counts as success); if
//! `delete` is non-empty, call `expect_deletions(key, plan.delete_keys())`
//! then delete them all, calling `deletion_observed` for each failed delete;
//! finally write `plan.status` (or [`Plan::status_after_error`] with the first
//! create/delete error other than NotFound) through the status subresource,
//! and requeue with [`requeue_after`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::pods::{
    available_at, controller_ref, is_active, is_available, is_ready, pod_from_template,
};
use super::ranking::pods_to_delete;
use super::selector::{parse, Selector};

/// `BurstReplicas`: at most this many pods are created or deleted per sync.
pub const BURST_REPLICAS: usize = 500;
/// apiVersion written into controller references.
pub const API_VERSION: &str = "apps/v1";
/// Kind written into controller references.
pub const KIND: &str = "ReplicaSet";
/// `apps.ReplicaSetReplicaFailure` condition type.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// Condition reason when pods could not be created (`FailedCreatePodReason`).
pub const FAILED_CREATE: &str = "FailedCreate";
/// Condition reason when pods could not be deleted (`FailedDeletePodReason`).
pub const FAILED_DELETE: &str = "FailedDelete";

/// What one sync of a ReplicaSet should do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Orphan pods to adopt (patch in a controller reference), by name.
    pub adopt: Vec<String>,
    /// Owned pods that no longer match the selector, to release, by name.
    pub release: Vec<String>,
    /// How many pods to create (capped at [`BURST_REPLICAS`]).
    pub create: usize,
    /// Pods to delete, by name, most preferred first (capped at [`BURST_REPLICAS`]).
    pub delete: Vec<String>,
    /// New status to write, only when it differs from the current one.
    pub status: Option<ReplicaSetStatus>,
    /// The active pods this ReplicaSet owns once adoptions/releases are done
    /// (upstream's `filteredPods`), input order.
    pub claimed: Vec<Arc<Pod>>,
    /// Set when the selector is invalid (or the spec is missing): upstream
    /// logs and does nothing else (no claim, no scaling, no status write).
    pub selector_error: Option<String>,
}

impl Plan {
    /// The expectation keys (`namespace/name`) of `delete`, for
    /// `ControllerExpectations::expect_deletions`.
    pub fn delete_keys(&self, namespace: &str) -> Vec<String> {
        self.delete
            .iter()
            .map(|n| format!("{namespace}/{n}"))
            .collect()
    }

    /// The status to write when carrying out the plan failed with `error`
    /// (first create/delete error): adds the `ReplicaFailure` condition
    /// unless one is already present. `None` when nothing changed.
    pub fn status_after_error(
        &self,
        rs: &ReplicaSet,
        error: &str,
        now: Timestamp,
    ) -> Option<ReplicaSetStatus> {
        if self.selector_error.is_some() {
            return None;
        }
        status_update(rs, calculate_status(rs, &self.claimed, Some(error), now))
    }
}

/// The result of claiming pods (`PodControllerRefManager.ClaimPods`).
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// Active pods owned (or adopted) and matching the selector.
    pub claimed: Vec<Arc<Pod>>,
    /// Orphans to adopt (also in `claimed`).
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods to release (not in `claimed`).
    pub release: Vec<Arc<Pod>>,
}

/// The ReplicaSet's key, `namespace/name` (`controller.KeyFunc`).
pub fn key(rs: &ReplicaSet) -> String {
    format!(
        "{}/{}",
        namespace(rs),
        rs.metadata.name.as_deref().unwrap_or("")
    )
}

fn namespace(rs: &ReplicaSet) -> &str {
    rs.metadata.namespace.as_deref().unwrap_or("")
}

fn desired_replicas(rs: &ReplicaSet) -> usize {
    let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    usize::try_from(n).unwrap_or(0)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn rs_selector(rs: &ReplicaSet) -> Result<Selector, String> {
    match rs.spec.as_ref() {
        Some(spec) => parse(&spec.selector).map_err(|e| e.to_string()),
        None => Err("ReplicaSet has no spec".to_string()),
    }
}

fn labels_of(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

/// Claims the active pods of the ReplicaSet's namespace among `pods`, as
/// `ClaimObject` does for each: a pod controlled by another owner is ignored;
/// an owned pod that matches is kept (even while the ReplicaSet is being
/// deleted); an owned pod that stopped matching is released unless the
/// ReplicaSet is being deleted; an orphan that matches is adopted unless the
/// ReplicaSet is being deleted (inactive pods are never considered).
pub fn claim_pods(rs: &ReplicaSet, selector: &Selector, pods: &[Arc<Pod>]) -> Claim {
    let rs_uid = rs.metadata.uid.as_deref().unwrap_or("");
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let ns = namespace(rs);
    let mut claim = Claim::default();
    for pod in pods {
        if pod.metadata.namespace.as_deref().unwrap_or("") != ns || !is_active(pod) {
            continue;
        }
        let matched = selector.matches(&labels_of(pod));
        match controller_ref(&pod.metadata) {
            Some(r) if r.uid != rs_uid => {}
            Some(_) if matched => claim.claimed.push(Arc::clone(pod)),
            Some(_) if !deleting => claim.release.push(Arc::clone(pod)),
            Some(_) => {}
            None if matched && !deleting => {
                claim.adopt.push(Arc::clone(pod));
                claim.claimed.push(Arc::clone(pod));
            }
            None => {}
        }
    }
    claim
}

/// `getIndirectlyRelatedPods`: every pod (active or not) selected by a
/// ReplicaSet controlled by the same owner as `rs` (`rs` included), each
/// once. Empty when `rs` has no controller, as upstream. `replica_sets` may
/// be every ReplicaSet of the namespace; when it lacks `rs`, `rs` is added.
pub fn related_pods(
    rs: &ReplicaSet,
    replica_sets: &[Arc<ReplicaSet>],
    pods: &[Arc<Pod>],
) -> Vec<Arc<Pod>> {
    let Some(owner) = controller_ref(&rs.metadata) else {
        return Vec::new();
    };
    let mut selectors: Vec<(String, Selector)> = Vec::new();
    let mut seen_rs: Vec<&str> = Vec::new();
    let own = std::iter::once(rs).chain(replica_sets.iter().map(|r| r.as_ref()));
    for r in own {
        let uid = r.metadata.uid.as_deref().unwrap_or("");
        let same_owner = controller_ref(&r.metadata).is_some_and(|o| o.uid == owner.uid);
        if !same_owner || seen_rs.contains(&uid) {
            continue;
        }
        seen_rs.push(uid);
        if let Ok(sel) = rs_selector(r) {
            selectors.push((namespace(r).to_string(), sel));
        }
    }
    let mut seen_pods: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (ns, sel) in &selectors {
        for pod in pods {
            if pod.metadata.namespace.as_deref().unwrap_or("") != ns
                || !sel.matches(&labels_of(pod))
            {
                continue;
            }
            let id = pod
                .metadata
                .uid
                .clone()
                .or_else(|| pod.metadata.name.clone())
                .unwrap_or_default();
            if !seen_pods.contains(&id) {
                seen_pods.push(id);
                out.push(Arc::clone(pod));
            }
        }
    }
    out
}

/// One sync of `rs` (`syncReplicaSet` + `manageReplicas` + `calculateStatus`)
/// over `pods`, every pod of its namespace in the cache. The co-location
/// deletion rank only sees `rs` itself; use [`reconcile_with_siblings`] to
/// rank against the other ReplicaSets of the same Deployment as upstream.
pub fn reconcile(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    expectations_satisfied: bool,
    now: Timestamp,
) -> Plan {
    reconcile_with_siblings(rs, &[], pods, expectations_satisfied, now)
}

/// [`reconcile`] with `replica_sets`, the ReplicaSets of the namespace from the
/// cache, used for the co-location rank of the deletion order
/// (`getIndirectlyRelatedPods`).
///
/// Claims pods ([`claim_pods`]); then, only when `expectations_satisfied`
/// and `rs` is not being deleted, compares the claimed pods with
/// `spec.replicas` (default 1): too few gives `create`, too many gives
/// `delete` ranked by [`super::ranking`]; both capped at [`BURST_REPLICAS`].
/// The status assumes the plan succeeds (any `ReplicaFailure` condition is
/// cleared); see [`Plan::status_after_error`].
pub fn reconcile_with_siblings(
    rs: &ReplicaSet,
    replica_sets: &[Arc<ReplicaSet>],
    pods: &[Arc<Pod>],
    expectations_satisfied: bool,
    now: Timestamp,
) -> Plan {
    let selector = match rs_selector(rs) {
        Ok(s) => s,
        Err(e) => {
            return Plan {
                selector_error: Some(e),
                ..Plan::default()
            }
        }
    };
    let claim = claim_pods(rs, &selector, pods);
    let names = |v: &[Arc<Pod>]| -> Vec<String> {
        v.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    };
    let mut plan = Plan {
        adopt: names(&claim.adopt),
        release: names(&claim.release),
        ..Plan::default()
    };
    if expectations_satisfied && rs.metadata.deletion_timestamp.is_none() {
        let have = claim.claimed.len();
        let want = desired_replicas(rs);
        if have < want {
            plan.create = (want - have).min(BURST_REPLICAS);
        } else if have > want {
            let diff = (have - want).min(BURST_REPLICAS);
            let related = related_pods(rs, replica_sets, pods);
            plan.delete = names(&pods_to_delete(&claim.claimed, &related, diff, now));
        }
    }
    plan.status = status_update(rs, calculate_status(rs, &claim.claimed, None, now));
    plan.claimed = claim.claimed;
    plan
}

/// `calculateStatus`: the current status with replicas (claimed pods),
/// fullyLabeledReplicas (pods carrying every template label), readyReplicas
/// and availableReplicas (ready for `minReadySeconds`) recounted. With
/// `manage_error`, adds a `ReplicaFailure` condition (reason `FailedCreate`
/// when short of pods, `FailedDelete` when over) unless one exists; without
/// it, removes any `ReplicaFailure` condition. observedGeneration is left to
/// [`status_update`].
pub fn calculate_status(
    rs: &ReplicaSet,
    claimed: &[Arc<Pod>],
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mrs = min_ready_seconds(rs);
    let (mut fully, mut ready, mut available) = (0i32, 0i32, 0i32);
    for pod in claimed {
        let labels = labels_of(pod);
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully += 1;
        }
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, mrs, now) {
                available += 1;
            }
        }
    }
    let has_failure = status
        .conditions
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| c.type_ == REPLICA_FAILURE));
    match manage_error {
        Some(msg) if !has_failure => {
            let want = desired_replicas(rs);
            let reason = match claimed.len().cmp(&want) {
                std::cmp::Ordering::Less => Some(FAILED_CREATE.to_string()),
                std::cmp::Ordering::Greater => Some(FAILED_DELETE.to_string()),
                std::cmp::Ordering::Equal => None,
            };
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(ReplicaSetCondition {
                    type_: REPLICA_FAILURE.to_string(),
                    status: "True".to_string(),
                    reason,
                    message: Some(msg.to_string()),
                    last_transition_time: Some(Time(now)),
                });
        }
        None if has_failure => {
            let kept: Vec<ReplicaSetCondition> = status
                .conditions
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.type_ != REPLICA_FAILURE)
                .collect();
            status.conditions = (!kept.is_empty()).then_some(kept);
        }
        _ => {}
    }
    status.replicas = i32::try_from(claimed.len()).unwrap_or(i32::MAX);
    status.fully_labeled_replicas = Some(fully);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status
}

/// `updateReplicaSetStatus`'s skip test: `None` when the counts and
/// conditions are unchanged and `metadata.generation` was already observed;
/// otherwise `new` with `observedGeneration = metadata.generation`.
pub fn status_update(rs: &ReplicaSet, mut new: ReplicaSetStatus) -> Option<ReplicaSetStatus> {
    let old = rs.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let conds = |c: &Option<Vec<ReplicaSetCondition>>| c.clone().unwrap_or_default();
    let generation = rs.metadata.generation.unwrap_or(0);
    let unchanged = old.replicas == new.replicas
        && n(old.fully_labeled_replicas) == n(new.fully_labeled_replicas)
        && n(old.ready_replicas) == n(new.ready_replicas)
        && n(old.available_replicas) == n(new.available_replicas)
        && generation == old.observed_generation.unwrap_or(0)
        && conds(&old.conditions) == conds(&new.conditions);
    if unchanged {
        return None;
    }
    new.observed_generation = Some(generation);
    Some(new)
}

/// `slowStartBatch` batch sizes with `SlowStartInitialBatchSize` 1: 1, 2, 4,
/// ... each capped at what remains, summing to `n`.
pub fn slow_start_batches(n: usize) -> impl Iterator<Item = usize> {
    let mut remaining = n;
    let mut next = 1usize;
    std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let batch = next.min(remaining);
        remaining -= batch;
        next = batch.saturating_mul(2);
        Some(batch)
    })
}

/// The pod to POST for `rs` (`GetPodFromTemplate` with a controller reference
/// `apps/v1` `ReplicaSet`): `None` when the ReplicaSet has no template.
pub fn new_pod(rs: &ReplicaSet) -> Option<Pod> {
    let template = rs.spec.as_ref()?.template.as_ref()?;
    Some(pod_from_template(template, &rs.metadata, API_VERSION, KIND))
}

/// The strategic-merge patch that adopts `pod` (`ownerRefControllerPatch`):
/// adds a controller reference to `rs`, with the pod's uid as precondition.
pub fn adopt_patch(rs: &ReplicaSet, pod: &Pod) -> Value {
    super::pods::adopt_patch(&rs.metadata, API_VERSION, KIND, uid(&pod.metadata))
}

/// The strategic-merge patch that releases `pod`
/// (`GenerateDeleteOwnerRefStrategicMergeBytes`): deletes the owner reference
/// with `rs`'s uid, with the pod's uid as precondition.
pub fn release_patch(rs: &ReplicaSet, pod: &Pod) -> Value {
    super::pods::release_patch(uid(&rs.metadata), uid(&pod.metadata))
}

fn uid(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

/// When to sync `rs` again so availableReplicas catches up: with
/// `minReadySeconds > 0`, the earliest moment a claimed pod that is ready but
/// not yet available becomes available, plus one second (upstream's pod
/// update handler enqueues after `minReadySeconds + 1s` for clock skew); a
/// ready pod without Ready transition time gives `minReadySeconds` (the
/// "last line of defense" resync of `syncReplicaSet`). `None` otherwise.
pub fn requeue_after(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp) -> Option<Duration> {
    let mrs = min_ready_seconds(rs);
    if mrs <= 0 {
        return None;
    }
    let selector = rs_selector(rs).ok()?;
    let fallback = Duration::from_secs(u64::try_from(mrs).unwrap_or(0));
    claim_pods(rs, &selector, pods)
        .claimed
        .iter()
        .filter(|p| is_ready(p) && !is_available(p, mrs, now))
        .map(|p| match available_at(p, mrs) {
            Some(at) => {
                let wait = at.duration_since(now).as_millis() + 1000;
                Duration::from_millis(u64::try_from(wait.max(1000)).unwrap_or(u64::MAX))
            }
            None => fallback,
        })
        .min()
}

#[cfg(test)]
#[path = "replicaset_test.rs"]
mod tests;
