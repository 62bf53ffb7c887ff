//! Pure decision core of kube-controller-manager's Deployment controller (Kubernetes 1.32,
//! pkg/controller/deployment).
//!
//! [`reconcile`] performs what one `syncDeployment` call does (deployment_controller.go):
//! given a deployment, the ReplicaSets it controls and their pods, it returns the API writes
//! kube would make, in order, as [`Action`]s. It performs no I/O and reads no clock. The
//! integrator executes the actions in order (stopping at the first failure) and calls
//! [`reconcile`] again on the next watch event for the deployment, its ReplicaSets or their
//! pods, and after [`requeue_after`] elapses.
//!
//! Deliberately not covered: ReplicaSet adoption/orphaning (`ClaimReplicaSets`, the caller
//! passes only ReplicaSets whose controller reference is the deployment), the deprecated
//! `spec.rollbackTo` / `deprecated.deployment.rollback.to` server-side rollback (kubectl
//! rolls back client side by copying the old template), events, and the 1.33
//! terminatingReplicas status field.

mod hash;
mod history;
mod recreate;
mod rolling;
mod status;
mod sync;
mod util;

#[cfg(test)]
mod testutil;

#[cfg(test)]
#[path = "reconcile_test.rs"]
mod reconcile_test;

#[cfg(test)]
#[path = "sim_test.rs"]
mod sim_test;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

pub use hash::{compute_hash, equal_ignore_hash, POD_TEMPLATE_HASH_LABEL};

/// ReplicaSet (and deployment) annotation holding the rollout revision number.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// ReplicaSet annotation listing the revisions it served before (rollbacks).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// ReplicaSet annotation: spec.replicas of the deployment when the RS was last sized.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// ReplicaSet annotation: spec.replicas + maxSurge when the RS was last sized.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotation that `kubectl rollout history` shows as CHANGE-CAUSE.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";

/// Condition type: minimum availability reached.
pub const CONDITION_AVAILABLE: &str = "Available";
/// Condition type: rollout progress.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: a ReplicaSet could not create or delete pods.
pub const CONDITION_REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing reason: a ReplicaSet was resized during the rollout.
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
/// Progressing reason: the new ReplicaSet could not be created.
pub const REASON_FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
/// Progressing reason: the new ReplicaSet was created.
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// Progressing reason: an existing new ReplicaSet was found.
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// Progressing reason: the rollout completed.
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Progressing reason: no progress within progressDeadlineSeconds.
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Progressing reason: the deployment is paused.
pub const REASON_DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
/// Progressing reason: the deployment was resumed.
pub const REASON_DEPLOYMENT_RESUMED: &str = "DeploymentResumed";
/// Available reason: at least replicas - maxUnavailable pods are available.
pub const REASON_MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
/// Available reason: fewer than replicas - maxUnavailable pods are available.
pub const REASON_MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// One API write decided by [`reconcile`]; execute in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create this ReplicaSet (name, labels, selector, owner reference and annotations set).
    /// On AlreadyExists call [`on_replica_set_already_exists`]; on another error,
    /// [`on_replica_set_create_failed`].
    CreateReplicaSet(ReplicaSet),
    /// Replace this ReplicaSet (spec.replicas, minReadySeconds and/or annotations changed).
    /// It carries the resourceVersion given to [`reconcile`]; each ReplicaSet appears at most
    /// once per plan, so an optimistic-concurrency update is safe.
    UpdateReplicaSet(ReplicaSet),
    /// Delete an old ReplicaSet beyond revisionHistoryLimit (uid/resourceVersion usable as
    /// preconditions; a NotFound answer is not an error).
    DeleteReplicaSet {
        /// Name of the ReplicaSet (same namespace as the deployment).
        name: String,
        /// Its uid as passed in, for a delete precondition.
        uid: Option<String>,
        /// Its resourceVersion as passed in, for a delete precondition.
        resource_version: Option<String>,
    },
    /// Set the deployment's `deployment.kubernetes.io/revision` annotation (kube writes it
    /// through the status subresource; a metadata-only patch is equivalent).
    SetDeploymentRevision(String),
    /// Replace the deployment's status subresource with this status.
    UpdateStatus(DeploymentStatus),
}

/// Decides one sync of deployment `d` (`syncDeployment`): an empty selector only records
/// observedGeneration; a deployment being deleted only gets its status refreshed; a paused
/// deployment or a scaling event is resized without rollout (`sync`, proportional scaling);
/// otherwise one step of the Recreate or RollingUpdate rollout is planned, followed by the
/// status write. `rss`: the ReplicaSets whose controller reference is `d`. `pods`: pods of
/// those ReplicaSets (only consulted by Recreate, to wait for old pods to stop; extra pods
/// are ignored). Returns no action when nothing needs writing.
pub fn reconcile(d: &Deployment, rss: &[ReplicaSet], pods: &[Pod], now: Timestamp) -> Vec<Action> {
    if d.spec.is_none() {
        return Vec::new();
    }
    let mut p = sync::Planner::new(d, rss, now);
    // `Err(Stop)` ends the sync early; the actions planned so far still apply.
    let _ = run(&mut p, pods);
    p.actions
}

fn run(p: &mut sync::Planner, pods: &[Pod]) -> Result<(), sync::Stop> {
    let selector_empty = p.d.spec.as_ref().is_none_or(|s| {
        s.selector
            .match_labels
            .as_ref()
            .is_none_or(|m| m.is_empty())
            && s.selector
                .match_expressions
                .as_ref()
                .is_none_or(|m| m.is_empty())
    });
    if selector_empty {
        let generation = p.d.metadata.generation.unwrap_or(0);
        let status = p.d.status.get_or_insert_with(Default::default);
        if status.observed_generation.unwrap_or(0) < generation {
            status.observed_generation = Some(generation);
            p.push_status();
        }
        return Ok(());
    }
    if p.d.metadata.deletion_timestamp.is_some() {
        return p.sync_status_only();
    }
    p.check_paused_conditions();
    if util::paused(&p.d) {
        return p.sync();
    }
    if p.is_scaling_event()? {
        return p.sync();
    }
    match util::strategy(&p.d) {
        util::Strategy::Recreate => recreate::rollout(p, pods),
        util::Strategy::Rolling { .. } => rolling::rollout(p),
        util::Strategy::Unknown => Ok(()),
    }
}

/// When to call [`reconcile`] again without any watch event so that a stalled rollout gets
/// its `ProgressDeadlineExceeded` condition (`requeueStuckDeployment`, progress.go).
/// `None`: not needed (no deadline, no Progressing condition, paused, complete or already
/// timed out); `Some(Duration::ZERO)`: right away (rate-limited); otherwise the time left
/// until lastUpdateTime + progressDeadlineSeconds, plus one second. Call it with the
/// objects as last observed (typically after the actions of [`reconcile`] were applied).
pub fn requeue_after(d: &Deployment, rss: &[ReplicaSet], now: Timestamp) -> Option<Duration> {
    if d.spec.is_none() || util::paused(d) || d.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let p = sync::Planner::new(d, rss, now);
    let (new, _) = p.split();
    let all: Vec<&ReplicaSet> = p.rss.iter().collect();
    let s = status::calculate_status(&all, new.map(|i| &p.rss[i]), d, p.now);
    status::requeue_after_status(d, &s, p.now)
}

/// Handles an AlreadyExists answer to [`Action::CreateReplicaSet`] (the `IsAlreadyExists`
/// branch of `getNewReplicaSet`): if `existing` is controlled by `d` and has the
/// deployment's template, nothing is needed (reconcile again with it in the list);
/// otherwise it is a hash collision and status.collisionCount is bumped, which changes the
/// name of the next ReplicaSet attempted.
pub fn on_replica_set_already_exists(d: &Deployment, existing: &ReplicaSet) -> Vec<Action> {
    let ours = util::is_controlled_by(&existing.metadata, d.metadata.uid.as_deref());
    let same = match (util::rs_template(existing), util::template(d)) {
        (Some(a), Some(b)) => equal_ignore_hash(a, b),
        _ => false,
    };
    if ours && same {
        return Vec::new();
    }
    let mut s = d.status.clone().unwrap_or_default();
    s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
    vec![Action::UpdateStatus(s)]
}

/// Handles any other failure of [`Action::CreateReplicaSet`]: with a progress deadline, sets
/// Progressing=False, reason `ReplicaSetCreateError`, message
/// `Failed to create new replica set "<name>": <error>` (getNewReplicaSet).
pub fn on_replica_set_create_failed(
    d: &Deployment,
    rs_name: &str,
    error: &str,
    now: Timestamp,
) -> Vec<Action> {
    if util::progress_deadline(d).is_none() {
        return Vec::new();
    }
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let msg = format!("Failed to create new replica set {rs_name:?}: {error}");
    let c = status::new_condition(
        CONDITION_PROGRESSING,
        "False",
        REASON_FAILED_RS_CREATE,
        msg,
        now,
    );
    let mut s = d.status.clone().unwrap_or_default();
    status::set_condition(&mut s, c);
    vec![Action::UpdateStatus(s)]
}
