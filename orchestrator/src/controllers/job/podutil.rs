//! Pod helpers of the Job controller: deletion order, failure tests, finish
//! times, the pod-failure backoff record, the pods it creates and its patches.
//!
//! Copies `controller.ActivePods` (pkg/controller/controller_utils.go),
//! `isPodFailed`, `pastBackoffLimitOnFailure` (job_controller.go),
//! backoff_utils.go (`newBackoffRecord`, `getFinishedTime`,
//! `getRemainingTimeForFailuresCount`) and the pod construction of
//! `manageJob` / indexed_job_utils.go of Kubernetes 1.32.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::indexed::generate_name_with_index;
use super::{is_indexed, API_VERSION, COMPLETION_INDEX_KEY, KIND, TRACKING_FINALIZER};
use crate::controllers::pods::{is_ready, phase, pod_from_template, ready_since};

/// `DefaultJobPodFailureBackOff`: delay before re-creating after one failure.
pub const DEFAULT_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// `MaxJobPodFailureBackOff`: the doubling backoff stops here.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// Decides whether the pod carries the `batch.kubernetes.io/job-tracking`
/// finalizer (`hasJobTrackingFinalizer`).
pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// `isPodFailed`: phase Failed, or (unless only failed pods are replaced) a
/// pod being deleted that has not succeeded.
pub fn is_pod_failed(pod: &Pod, only_replace_failed: bool) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    !only_replace_failed && pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// `controller.IsPodTerminating`: being deleted and not yet Succeeded/Failed.
pub fn is_terminating(pod: &Pod) -> bool {
    let p = phase(pod);
    pod.metadata.deletion_timestamp.is_some() && p != "Succeeded" && p != "Failed"
}

/// `pastBackoffLimitOnFailure`: with restartPolicy OnFailure, the container
/// and init container restarts of the Running/Pending pods summed reach
/// `backoff_limit` (any restart when the limit is 0).
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>], backoff_limit: i32) -> bool {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let mut restarts: i64 = 0;
    for p in pods {
        if !matches!(phase(p), "Running" | "Pending") {
            continue;
        }
        let Some(st) = p.status.as_ref() else {
            continue;
        };
        for cs in st.init_container_statuses.iter().flatten() {
            restarts += i64::from(cs.restart_count);
        }
        for cs in st.container_statuses.iter().flatten() {
            restarts += i64::from(cs.restart_count);
        }
    }
    if backoff_limit == 0 {
        return restarts > 0;
    }
    restarts >= i64::from(backoff_limit)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// `afterOrZero`: a zero (absent) time sorts first, then later before earlier.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// `controller.ActivePods` order, most deletable first: unscheduled, then
/// Pending < Unknown < Running, not ready, ready more recently, more
/// restarts, created more recently (absent creation time first).
pub fn compare_active(a: &Pod, b: &Pod) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    phase_ordinal(a)
        .cmp(&phase_ordinal(b))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                after_or_zero(ready_since(a), ready_since(b))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let ct = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            after_or_zero(ct(a), ct(b))
        })
}

/// Sorts pods in `controller.ActivePods` order (stable).
pub fn sort_active_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| compare_active(a, b));
}

/// `getFinishedTime`: the latest container finishedAt when every container
/// terminated, else the lastTransitionTime of a `Ready=False` condition, else
/// deletionTimestamp minus the grace period, else the creation time.
pub fn finished_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status.and_then(|s| s.container_statuses.as_ref());
    let from_containers = containers.filter(|c| !c.is_empty()).and_then(|cs| {
        cs.iter().try_fold(None::<Timestamp>, |acc, c| {
            let t = c
                .state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()?
                .0;
            Some(Some(acc.map_or(t, |a: Timestamp| a.max(t))))
        })
    });
    if let Some(Some(t)) = from_containers {
        return Some(t);
    }
    let ready_false = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref());
    if let Some(t) = ready_false {
        return Some(t.0);
    }
    if let Some(d) = pod.metadata.deletion_timestamp.as_ref() {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return d.0.checked_sub(SignedDuration::from_secs(grace)).ok();
    }
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// The pod-failure backoff of one Job (`backoffRecord`), kept in memory by
/// the integrator per Job key between syncs and dropped when the Job finishes
/// or is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    /// Failed pods counted since the last success.
    pub failures_after_last_success: i32,
    /// Finish time of the latest of those failures.
    pub last_failure_time: Option<Timestamp>,
}

impl BackoffRecord {
    /// `newBackoffRecord`: folds the pods newly seen succeeded / failed into
    /// the record. A success resets it to the failures finishing after the
    /// latest success.
    pub fn updated(&self, new_succeeded: &[Arc<Pod>], new_failed: &[Arc<Pod>]) -> BackoffRecord {
        let mut failed: Vec<Option<Timestamp>> =
            new_failed.iter().map(|p| finished_time(p)).collect();
        failed.sort();
        let last_success = new_succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None if failed.is_empty() => *self,
            None => BackoffRecord {
                failures_after_last_success: self
                    .failures_after_last_success
                    .saturating_add(i32::try_from(failed.len()).unwrap_or(i32::MAX)),
                last_failure_time: failed.last().copied().flatten(),
            },
            Some(success) => {
                let after: Vec<Option<Timestamp>> =
                    failed.into_iter().filter(|t| *t > success).collect();
                BackoffRecord {
                    failures_after_last_success: i32::try_from(after.len()).unwrap_or(i32::MAX),
                    last_failure_time: after.last().copied().flatten(),
                }
            }
        }
    }

    /// `getRemainingTime`: 10s doubled per further failure, capped at 10 min,
    /// minus the time since the last failure; zero when nothing is pending.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        if self.failures_after_last_success <= 0 {
            return Duration::ZERO;
        }
        let mut backoff = DEFAULT_POD_FAILURE_BACKOFF;
        for _ in 1..self.failures_after_last_success {
            backoff = backoff.saturating_mul(2);
            if backoff >= MAX_POD_FAILURE_BACKOFF {
                backoff = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        let Some(last) = self.last_failure_time else {
            return Duration::ZERO;
        };
        let elapsed = now.duration_since(last);
        let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    }
}

/// The pod to POST for `job`, as `manageJob` builds it: the template with
/// the tracking finalizer appended, the `job-name` / `controller-uid` labels
/// (plain and `batch.kubernetes.io/`, unless `manualSelector`), a controller
/// reference to the Job, and for `Some(index)` the completion index
/// annotation and label, hostname `<job>-<index>`, the `JOB_COMPLETION_INDEX`
/// env var in every (init) container and generateName `<job>-<index>-`.
pub fn new_pod(job: &Job, index: Option<i32>) -> Option<Pod> {
    let spec = job.spec.as_ref()?;
    let mut template = spec.template.clone();
    let name = job.metadata.name.clone().unwrap_or_default();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let fins = meta.finalizers.get_or_insert_with(Vec::new);
    if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
        fins.push(TRACKING_FINALIZER.to_string());
    }
    let labels = meta.labels.get_or_insert_with(Default::default);
    if spec.manual_selector != Some(true) {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            labels.insert(k.to_string(), v.clone());
        }
    }
    if let (Some(ix), true) = (index, is_indexed(job)) {
        labels.insert(COMPLETION_INDEX_KEY.to_string(), ix.to_string());
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX_KEY.to_string(), ix.to_string());
        if let Some(ps) = template.spec.as_mut() {
            ps.hostname = Some(format!("{name}-{ix}"));
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: format!("metadata.labels['{COMPLETION_INDEX_KEY}']"),
                        api_version: None,
                    }),
                    ..Default::default()
                }),
                value: None,
            };
            let inits = ps.init_containers.iter_mut().flatten();
            for c in inits.chain(ps.containers.iter_mut()) {
                let list = c.env.get_or_insert_with(Vec::new);
                if !list.iter().any(|e| e.name == env.name) {
                    list.push(env.clone());
                }
            }
        }
    }
    let mut pod = pod_from_template(&template, &job.metadata, API_VERSION, KIND);
    if let (Some(ix), true) = (index, is_indexed(job)) {
        pod.metadata.generate_name = Some(generate_name_with_index(&name, ix));
    }
    Some(pod)
}

/// The strategic-merge patch adopting an orphan pod
/// (`ownerRefControllerPatch` with the tracking finalizer): a controller
/// reference to the Job, the finalizer, and the pod's uid as precondition.
pub fn adopt_patch(job: &Job, pod: &Pod) -> Value {
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or("");
    let mut patch =
        crate::controllers::pods::adopt_patch(&job.metadata, API_VERSION, KIND, pod_uid);
    patch["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
    patch
}

/// The strategic-merge patch releasing a pod that stopped matching: deletes
/// the owner reference with the Job's uid (pod uid as precondition).
pub fn release_patch(job: &Job, pod: &Pod) -> Value {
    crate::controllers::pods::release_patch(
        job.metadata.uid.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or(""),
    )
}

/// `removeTrackingFinalizerPatch`: the strategic-merge patch dropping the
/// tracking finalizer.
pub fn remove_finalizer_patch() -> Value {
    json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}})
}

/// `syncOrphanPod`: decides whether the tracking finalizer must be removed
/// from `pod` although no Job sync will: it has the finalizer and its
/// controller is not a `batch/v1` Job (`None` when the pod has another kind
/// of controller), or its Job is gone (`owner` = the Job from the cache with
/// the controller reference's name and uid, `None` when absent) or finished.
pub fn orphan_needs_finalizer_removal(pod: &Pod, owner: Option<&Job>) -> bool {
    if !has_tracking_finalizer(pod) {
        return false;
    }
    if let Some(r) = crate::controllers::pods::controller_ref(&pod.metadata) {
        if r.kind != KIND || r.api_version != API_VERSION {
            return false;
        }
        if let Some(job) = owner {
            if super::managed_elsewhere(job) {
                return false;
            }
            if !super::is_finished(job) {
                return false;
            }
        }
    }
    true
}
