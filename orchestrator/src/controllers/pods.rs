//! Pod predicates and pod construction shared by the workload controllers.
//!
//! Copies pkg/api/v1/pod/util.go (`IsPodReady`, `IsPodAvailable`),
//! pkg/controller/controller_utils.go (`IsPodActive`, `PodKey`,
//! `GetPodFromTemplate`, `getPodsPrefix`, `RealPodControl.createPods`) and
//! apimachinery's `metav1.GetControllerOf` / `metav1.NewControllerRef`.

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::selector::is_dns1123_subdomain;

/// `v1.PodSucceeded`.
pub const PHASE_SUCCEEDED: &str = "Succeeded";
/// `v1.PodFailed`.
pub const PHASE_FAILED: &str = "Failed";
/// `v1.PodPending`.
pub const PHASE_PENDING: &str = "Pending";
/// `v1.PodRunning`.
pub const PHASE_RUNNING: &str = "Running";
/// `v1.PodUnknown`.
pub const PHASE_UNKNOWN: &str = "Unknown";

/// The pod's phase, `""` when absent.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Decides whether a pod still counts as a replica (`controller.IsPodActive`):
/// not Succeeded, not Failed and no deletionTimestamp.
pub fn is_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != PHASE_SUCCEEDED && p != PHASE_FAILED && pod.metadata.deletion_timestamp.is_none()
}

/// The first `Ready` condition of the pod (`podutil.GetPodReadyCondition`).
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Decides whether the pod is ready (`podutil.IsPodReady`): its `Ready`
/// condition has status `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod became ready: the `lastTransitionTime` of a `True` Ready
/// condition; `None` when not ready or when the time is absent (Go's zero time).
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// Decides whether the pod is available (`podutil.IsPodAvailable`): ready, and
/// either `min_ready_seconds` is 0 or the Ready condition's lastTransitionTime
/// plus `min_ready_seconds` is strictly before `now`. A ready pod without
/// lastTransitionTime is never available when `min_ready_seconds > 0`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    available_at(pod, min_ready_seconds).is_some_and(|at| at < now)
}

/// The instant after which a ready pod counts as available: Ready
/// lastTransitionTime + `min_ready_seconds` (availability needs `now` strictly
/// after it). `None` when not ready or the transition time is absent.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    since
        .checked_add(SignedDuration::from_secs(i64::from(
            min_ready_seconds.max(0),
        )))
        .ok()
}

/// The pod's key in expectations and queues, `namespace/name`
/// (`controller.PodKey`).
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The controller owner reference of an object (`metav1.GetControllerOf`):
/// the first ownerReference with `controller: true`.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (`metav1.NewControllerRef`): apiVersion,
/// kind, name, uid, `controller: true`, `blockOwnerDeletion: true`.
pub fn new_controller_ref(owner: &ObjectMeta, api_version: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The generateName prefix for pods of a controller (`getPodsPrefix`):
/// `"<name>-"`, or `"<name>"` when the dash would make an invalid name prefix
/// (longer than 253 characters).
pub fn pods_prefix(controller_name: &str) -> String {
    // ValidatePodName(prefix, true) masks the trailing dash before checking
    // the DNS-1123 subdomain rules.
    let masked = format!("{controller_name}a");
    if is_dns1123_subdomain(&masked) {
        format!("{controller_name}-")
    } else {
        controller_name.to_string()
    }
}

/// Builds the pod a controller creates from its template, as
/// `controller.GetPodFromTemplate` plus the namespace `CreatePods` posts to:
/// generateName `<owner>-`, labels / annotations / finalizers copied from the
/// template, a controller reference to the owner, the template's spec, and the
/// owner's namespace. Name, uid and status are left empty.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner: &ObjectMeta,
    owner_api_version: &str,
    owner_kind: &str,
) -> Pod {
    let tmeta = template.metadata.as_ref();
    let mut meta = ObjectMeta {
        generate_name: Some(pods_prefix(owner.name.as_deref().unwrap_or(""))),
        namespace: owner.namespace.clone(),
        labels: tmeta.and_then(|m| m.labels.clone()),
        annotations: tmeta.and_then(|m| m.annotations.clone()),
        finalizers: tmeta.and_then(|m| m.finalizers.clone()),
        ..ObjectMeta::default()
    };
    meta.owner_references = Some(vec![new_controller_ref(
        owner,
        owner_api_version,
        owner_kind,
    )]);
    Pod {
        metadata: meta,
        spec: template.spec.clone(),
        status: None,
    }
}

/// The checks `RealPodControl.CreatePodsWithGenerateName` makes before posting
/// a pod, in upstream order: a complete controller reference
/// (`validateControllerRef`; `controller_ref` already requires
/// `controller: true`), then labels (`"unable to create pods, no labels"`).
pub fn check_creatable(pod: &Pod) -> Result<(), String> {
    let r = controller_ref(&pod.metadata).ok_or("controllerRef is nil")?;
    if r.api_version.is_empty() {
        return Err("controllerRef has empty APIVersion".into());
    }
    if r.kind.is_empty() {
        return Err("controllerRef has empty Kind".into());
    }
    if r.block_owner_deletion != Some(true) {
        return Err("controllerRef.BlockOwnerDeletion is not set".into());
    }
    if pod.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err("unable to create pods, no labels".into());
    }
    Ok(())
}

/// `ownerRefControllerPatch`: the strategic-merge patch that adopts the object with
/// `dependent_uid` for `owner` (a controller reference, blockOwnerDeletion), the dependent's
/// uid as precondition. Every controller's adoption (pods, ControllerRevisions) is this patch.
pub fn adopt_patch(
    owner: &ObjectMeta,
    api_version: &str,
    kind: &str,
    dependent_uid: &str,
) -> Value {
    json!({"metadata": {
        "ownerReferences": [{
            "apiVersion": api_version,
            "kind": kind,
            "name": owner.name.as_deref().unwrap_or(""),
            "uid": owner.uid.as_deref().unwrap_or(""),
            "controller": true,
            "blockOwnerDeletion": true,
        }],
        "uid": dependent_uid,
    }})
}

/// `GenerateDeleteOwnerRefStrategicMergeBytes`: the strategic-merge patch that drops the
/// reference to `owner_uid` from the object with `dependent_uid` (its uid as precondition).
pub fn release_patch(owner_uid: &str, dependent_uid: &str) -> Value {
    json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
        "uid": dependent_uid,
    }})
}

#[cfg(test)]
#[path = "pods_test.rs"]
mod tests;
