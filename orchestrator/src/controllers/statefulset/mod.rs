//! Pure decision core of kube-controller-manager's StatefulSet controller
//! (Kubernetes 1.32, pkg/controller/statefulset).
//!
//! [`reconcile`] plans what one `StatefulSetController.sync` does
//! (stateful_set.go: `sync`, `adoptOrphanRevisions`, `getPodsForStatefulSet`,
//! `syncStatefulSet`; stateful_set_control.go: `UpdateStatefulSet`,
//! `performUpdate`, `truncateHistory`) as an ordered list of [`Action`]s. It
//! reads no clock and performs no I/O.
//!
//! Integration: on every watch event of the set, its pods, its claims or its
//! ControllerRevisions, call [`reconcile`] with the cache contents, execute
//! `plan.actions` in order and stop at the first failure (then requeue with
//! backoff). A NotFound answer to `AdoptPod`, `ReleasePod`, `AdoptRevision`
//! or `DeletePod` counts as success. After the actions, record
//! [`Action::event`] for each executed action, record `plan.events`, return
//! `plan.error` as the sync error when set (requeue with backoff), and
//! requeue after `plan.requeue_after`. The StatefulSet controller uses no
//! expectations: pod names are fixed, so a stale cache gives AlreadyExists
//! (a failure: requeue) rather than duplicates.

mod control;
mod history;
mod identity;
mod podcontrol;
mod retention;

#[cfg(test)]
mod testutil;

#[cfg(test)]
#[path = "identity_test.rs"]
mod identity_test;

#[cfg(test)]
#[path = "history_test.rs"]
mod history_test;

#[cfg(test)]
#[path = "control_test.rs"]
mod control_test;

#[cfg(test)]
#[path = "retention_test.rs"]
mod retention_test;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

pub use control::{
    complete_rolling_update, inconsistent_status, is_created, is_healthy, is_running_and_ready,
};
pub use history::{
    canonical_json, equal_revision, fnv32, hash_revision, patch_for, revision_name, safe_encode,
    template_of,
};
pub use identity::{
    claims_for, identity_matches, is_member, new_pod, ordinal, parent_and_ordinal, pod_revision,
    storage_matches, Settings, Strategy,
};

use crate::controllers::pods::controller_ref;
use crate::controllers::selector::{parse, Selector};

/// apiVersion written into controller references.
pub const API_VERSION: &str = "apps/v1";
/// Kind written into controller references.
pub const KIND: &str = "StatefulSet";
/// `apps.StatefulSetPodNameLabel`.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.PodIndexLabel`.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// `apps.StatefulSetRevisionLabel` (= `ControllerRevisionHashLabelKey`).
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// `history.ControllerRevisionHashLabel`, on every ControllerRevision.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// `v1.EventTypeNormal`.
pub const EVENT_NORMAL: &str = "Normal";
/// `v1.EventTypeWarning`.
pub const EVENT_WARNING: &str = "Warning";

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// The pod failed; it is recreated on a later sync.
    Failed,
    /// The pod succeeded (e.g. evicted with exit 0); recreated later.
    Succeeded,
    /// Its ordinal is outside `[start, start + replicas)`.
    ScaleDown,
    /// RollingUpdate: its revision is not the update revision.
    Update,
}

/// One API write of the plan. Objects are complete: `Create*` are POSTed,
/// `Update*` are PUT (they carry the cached resourceVersion), patches are
/// strategic-merge patches.
#[derive(Debug, Clone)]
pub enum Action {
    /// Patch an orphan ControllerRevision to add the set's controller
    /// reference (`AdoptControllerRevision`).
    AdoptRevision {
        /// Revision name.
        name: String,
        /// Strategic-merge patch (with the revision's uid as precondition).
        patch: Value,
    },
    /// Patch an orphan member pod to add the set's controller reference.
    AdoptPod {
        /// Pod name.
        name: String,
        /// Strategic-merge patch (with the pod's uid as precondition).
        patch: Value,
    },
    /// Patch an owned pod that no longer matches to drop the set's reference.
    ReleasePod {
        /// Pod name.
        name: String,
        /// Strategic-merge patch (with the pod's uid as precondition).
        patch: Value,
    },
    /// Create the revision of the set's current template.
    CreateRevision(ControllerRevision),
    /// Rollback: an older revision equal to the template gets the next
    /// revision number (PUT of the cached object with `revision` changed).
    UpdateRevision(ControllerRevision),
    /// Create a pod's claim from a volumeClaimTemplate.
    CreateClaim {
        /// The claim to POST.
        claim: PersistentVolumeClaim,
        /// The pod it is for (event text).
        pod: String,
    },
    /// Rewrite a claim's ownerReferences for the retention policy.
    UpdateClaim {
        /// The claim to PUT.
        claim: PersistentVolumeClaim,
        /// The pod it belongs to (event text).
        pod: String,
    },
    /// Create a pod (`<set>-<ordinal>`).
    CreatePod(Pod),
    /// PUT a pod whose identity labels or claim volumes were repaired.
    UpdatePod(Pod),
    /// Delete a pod (uid usable as a delete precondition).
    DeletePod {
        /// Pod name.
        name: String,
        /// Pod uid from the cache.
        uid: Option<String>,
        /// Why.
        reason: DeleteReason,
    },
    /// Write the status subresource.
    UpdateStatus(StatefulSetStatus),
    /// Delete a revision beyond revisionHistoryLimit.
    DeleteRevision {
        /// Revision name.
        name: String,
    },
}

/// An event to record on the StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// Reason, e.g. `SuccessfulCreate`.
    pub reason: String,
    /// Message.
    pub message: String,
}

impl Action {
    /// The event upstream records for this write once it was attempted
    /// (`recordPodEvent` / `recordClaimEvent` of stateful_pod_control.go):
    /// `error` is the API error text of a failed write, `None` on success.
    /// `None` for writes upstream records nothing for. For AlreadyExists on
    /// `CreatePod`/`CreateClaim` upstream records nothing either.
    pub fn event(&self, set_name: &str, error: Option<&str>) -> Option<Event> {
        let pod_event = |verb: &str, pod: &str| {
            let title = match verb {
                "create" => "Create",
                "update" => "Update",
                _ => "Delete",
            };
            Some(match error {
                None => Event {
                    type_: EVENT_NORMAL,
                    reason: format!("Successful{title}"),
                    message: format!("{verb} Pod {pod} in StatefulSet {set_name} successful"),
                },
                Some(e) => Event {
                    type_: EVENT_WARNING,
                    reason: format!("Failed{title}"),
                    message: format!(
                        "{verb} Pod {pod} in StatefulSet {set_name} failed error: {e}"
                    ),
                },
            })
        };
        let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        match self {
            Action::CreatePod(p) => pod_event("create", &name(p)),
            Action::UpdatePod(p) => pod_event("update", &name(p)),
            Action::DeletePod { name, .. } => pod_event("delete", name),
            Action::CreateClaim { claim, pod } => {
                let c = claim.metadata.name.as_deref().unwrap_or("");
                Some(match error {
                    None => Event {
                        type_: EVENT_NORMAL,
                        reason: "SuccessfulCreate".into(),
                        message: format!(
                            "create Claim {c} Pod {pod} in StatefulSet {set_name} success"
                        ),
                    },
                    Some(e) => Event {
                        type_: EVENT_WARNING,
                        reason: "FailedCreate".into(),
                        message: format!(
                            "create Claim {c} for Pod {pod} in StatefulSet {set_name} failed error: {e}"
                        ),
                    },
                })
            }
            Action::UpdateClaim { claim, pod } => error.and_then(|e| {
                let c = claim.metadata.name.as_deref().unwrap_or("");
                let msg = format!("could not update claim {c} for delete policy ownerRefs: {e}");
                pod_event("update", pod).map(|mut ev| {
                    ev.message =
                        format!("update Pod {pod} in StatefulSet {set_name} failed error: {msg}");
                    ev
                })
            }),
            _ => None,
        }
    }
}

/// What one sync of a StatefulSet should do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// API writes, in order; stop at the first failure.
    pub actions: Vec<Action>,
    /// Events to record whatever the writes give.
    pub events: Vec<Event>,
    /// The error the sync ends with after the actions (requeue with
    /// backoff), e.g. an invalid selector or a claim being deleted.
    pub error: Option<String>,
    /// Sync again after this long (minReadySeconds > 0 and not all replicas
    /// available), as `syncStatefulSet` does.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// The pods the plan creates, in order.
    pub fn created_pods(&self) -> Vec<&Pod> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreatePod(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The names of the pods the plan deletes, in order.
    pub fn deleted_pods(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::DeletePod { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The status the plan writes, if any.
    pub fn status(&self) -> Option<&StatefulSetStatus> {
        self.actions.iter().find_map(|a| match a {
            Action::UpdateStatus(s) => Some(s),
            _ => None,
        })
    }
}

/// The pod adoption patch (`ownerRefControllerPatch`).
fn adopt_pod_patch(set: &StatefulSet, pod: &Pod) -> Value {
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or("");
    crate::controllers::pods::adopt_patch(&set.metadata, API_VERSION, KIND, pod_uid)
}

/// The pod release patch (`GenerateDeleteOwnerRefStrategicMergeBytes`).
fn release_pod_patch(set: &StatefulSet, pod: &Pod) -> Value {
    crate::controllers::pods::release_patch(
        set.metadata.uid.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or(""),
    )
}

/// `getPodsForStatefulSet` (`ClaimPods` with the `isMemberOf` filter): the
/// pods of the namespace the set owns, adopting orphans that match the
/// selector and are named `<set>-<n>` (not while either is being deleted)
/// and releasing owned pods that stopped matching (not while the set is
/// being deleted). Unlike the ReplicaSet, finished pods are claimed too.
pub fn claim_pods(
    s: &Settings,
    set: &StatefulSet,
    selector: &Selector,
    pods: &[Arc<Pod>],
    actions: &mut Vec<Action>,
) -> Vec<Arc<Pod>> {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let mut claimed = Vec::new();
    for pod in pods {
        if pod.metadata.namespace.as_deref().unwrap_or("") != s.namespace {
            continue;
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let matched = selector.matches(&labels) && is_member(s, pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        match controller_ref(&pod.metadata) {
            Some(r) if r.uid != s.uid => {}
            Some(_) if matched => claimed.push(Arc::clone(pod)),
            Some(_) if !deleting => actions.push(Action::ReleasePod {
                name,
                patch: release_pod_patch(set, pod),
            }),
            Some(_) => {}
            None if matched && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                actions.push(Action::AdoptPod {
                    name,
                    patch: adopt_pod_patch(set, pod),
                });
                claimed.push(Arc::clone(pod));
            }
            None => {}
        }
    }
    claimed
}

/// One sync of `set`: `pods` and `pvcs` are every pod and claim of its
/// namespace in the cache; `revisions` the ControllerRevisions of the
/// namespace (at least those owned by the set; the others only serve to
/// avoid name collisions). Order of the actions, as upstream: adopt orphan
/// revisions, adopt/release pods, create (or renumber) the update revision,
/// the pod and claim writes of `updateStatefulSet`, the status, then the
/// deletion of revisions beyond the history limit.
pub fn reconcile(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    pvcs: &[PersistentVolumeClaim],
    revisions: &[ControllerRevision],
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    let Some(s) = Settings::from_set(set) else {
        plan.error = Some("StatefulSet has no spec".into());
        return plan;
    };
    let selector = match set.spec.as_ref().map(|sp| parse(&sp.selector)) {
        Some(Ok(sel)) => sel,
        Some(Err(e)) => {
            plan.error = Some(format!("error converting StatefulSet selector: {e}"));
            return plan;
        }
        None => return plan,
    };

    let (mut owned, orphans) = history::select_revisions(&s, set, &selector, revisions);
    for rev in orphans {
        plan.actions.push(Action::AdoptRevision {
            name: rev.metadata.name.clone().unwrap_or_default(),
            patch: history::adopt_patch(set, rev),
        });
        owned.push(rev);
    }
    owned.sort_by(|a, b| history::cmp_revisions(a, b));

    let claimed = claim_pods(&s, set, &selector, pods, &mut plan.actions);
    let revs = history::get_revisions(&s, set, &owned, revisions, &mut plan.actions);
    let templates = template_of(&revs.current).and_then(|c| Ok((c, template_of(&revs.update)?)));
    let (current_template, update_template) = match templates {
        Ok(t) => t,
        Err(e) => {
            plan.error = Some(e);
            return plan;
        }
    };

    let mut pc = podcontrol::PodControl::new(&s, set, pvcs);
    pc.actions = std::mem::take(&mut plan.actions);
    let target = control::Target {
        revisions: &revs,
        current_template: &current_template,
        update_template: &update_template,
        now,
    };
    let (mut status, error) = control::update_stateful_set(&mut pc, set, &claimed, &target);
    plan.actions = std::mem::take(&mut pc.actions);
    plan.events = std::mem::take(&mut pc.events);
    plan.error = error;

    complete_rolling_update(s.strategy, s.replicas, &mut status);
    if inconsistent_status(set, &status) {
        plan.actions.push(Action::UpdateStatus(status.clone()));
    }

    let mut live: Vec<&str> = vec![
        revs.current.metadata.name.as_deref().unwrap_or(""),
        revs.update.metadata.name.as_deref().unwrap_or(""),
    ];
    live.extend(claimed.iter().map(|p| pod_revision(p)));
    for name in history::truncate(&s, &owned, &live) {
        plan.actions.push(Action::DeleteRevision { name });
    }

    if s.min_ready_seconds > 0 && status.available_replicas.unwrap_or(0) != s.replicas {
        plan.requeue_after = Some(Duration::from_secs(
            u64::try_from(s.min_ready_seconds).unwrap_or(0),
        ));
    }
    plan
}
