//! The pure decision core of the Job controller.
//!
//! Copies `syncJob`, `manageJob`, `trackJobStatusAndRemoveFinalizers`,
//! `enactJobFinished`, `getPodsForJob` and the condition helpers of
//! pkg/controller/job/job_controller.go (Kubernetes 1.32, default feature
//! gates: JobPodReplacementPolicy and JobManagedBy on, so terminal conditions
//! are delayed behind the interim `FailureTarget` / `SuccessCriteriaMet`
//! conditions until no pod is terminating; JobSuccessPolicy on, so success
//! has reason `CompletionsReached`). Pods are tracked with the
//! `batch.kubernetes.io/job-tracking` finalizer and
//! `.status.uncountedTerminatedPods`, like upstream.
//!
//! One deliberate difference: upstream removes finalizers and counts the pods
//! within one sync (two status writes, plus in-memory finalizer
//! expectations). Here a finished pod is recorded in `uncountedTerminatedPods`
//! by one sync's status write, its finalizer removal follows, and the next
//! sync (woken by that pod update) moves it into `succeeded` / `failed`; no
//! finalizer expectations are needed, at the cost of one more sync.
//!
//! Integrator order for a [`JobPlan`]: patch `adopt` ([`adopt_patch`]) and
//! `release` ([`release_patch`]); delete `delete` (first removing the tracking
//! finalizer with [`remove_finalizer_patch`] when `delete_remove_finalizer`)
//! after `expect_deletions`; create `create` pods ([`new_pod`] with each of
//! `create_indexes` for an Indexed Job, `None` otherwise) in slow-start
//! batches after `expect_creations`; then write `status` with
//! `replace_status` carrying the Job's resourceVersion (a conflict aborts);
//! only after it succeeded, patch `remove_finalizers` with
//! [`remove_finalizer_patch`] (NotFound is fine); keep `backoff` for the next
//! sync unless the status write failed; requeue after `requeue_after`. Emit
//! events from `finished`. Watch pods owned by Jobs (finalizer removals wake
//! the next sync) and run [`orphan_needs_finalizer_removal`] on pod events.
//!
//! Not supported (behaves as if unset): podFailurePolicy, successPolicy,
//! backoffLimitPerIndex / maxFailedIndexes.

mod indexed;
mod manage;
mod podutil;
mod status;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub use indexed::{completion_index, Intervals};
pub use podutil::{
    adopt_patch, compare_active, finished_time, has_tracking_finalizer, new_pod,
    orphan_needs_finalizer_removal, release_patch, remove_finalizer_patch, BackoffRecord,
    DEFAULT_POD_FAILURE_BACKOFF, MAX_POD_FAILURE_BACKOFF,
};

use crate::controllers::pods::{is_active, is_ready, phase};
use crate::controllers::selector::parse;
use status::{canonical, condition, ensure_condition, new_condition};

/// apiVersion written into controller references.
pub const API_VERSION: &str = "batch/v1";
/// Kind written into controller references.
pub const KIND: &str = "Job";
/// `batch.JobTrackingFinalizer`.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// `batch.JobCompletionIndexAnnotation` (also the label key).
pub const COMPLETION_INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// `batch.JobControllerName`: a Job whose spec.managedBy is set to anything
/// else is left alone.
pub const CONTROLLER_NAME: &str = "kubernetes.io/job-controller";
/// `MaxPodCreateDeletePerSync`.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// `MaxUncountedPods`: cap of `.status.uncountedTerminatedPods` per sync.
pub const MAX_UNCOUNTED_PODS: usize = 500;
/// Default `spec.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// Condition types.
pub const COMPLETE: &str = "Complete";
/// `JobFailed`.
pub const FAILED: &str = "Failed";
/// `JobFailureTarget` (interim, before `Failed`).
pub const FAILURE_TARGET: &str = "FailureTarget";
/// `JobSuccessCriteriaMet` (interim, before `Complete`).
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
/// `JobSuspended`.
pub const SUSPENDED: &str = "Suspended";
/// Failure reason when too many pods failed.
pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
/// Its message.
pub const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
/// Failure reason past activeDeadlineSeconds.
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
/// Its message.
pub const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";
/// Success reason.
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
/// Its message.
pub const MESSAGE_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";

/// What one sync of a Job should do, in the order given in the module docs.
#[derive(Debug, Clone, Default)]
pub struct JobPlan {
    /// Orphan pods to adopt, by name.
    pub adopt: Vec<String>,
    /// Owned pods no longer matching the selector, to release, by name.
    pub release: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// Remove the tracking finalizer before each delete (scale-down and
    /// suspension: such pods are not counted); `false` when the Job is
    /// finishing (the pods are counted as failed, finalizer removed later).
    pub delete_remove_finalizer: bool,
    /// How many pods to create (capped at 500).
    pub create: usize,
    /// Indexed Jobs: the completion index of each pod to create (`create`
    /// equals its length).
    pub create_indexes: Vec<i32>,
    /// New status, when it differs from the current one.
    pub status: Option<JobStatus>,
    /// Pods whose tracking finalizer to remove once `status` is written.
    pub remove_finalizers: Vec<String>,
    /// The terminal condition (`Complete` / `Failed`) `status` adds, for the
    /// `Completed` / failure events.
    pub finished: Option<JobCondition>,
    /// The backoff record to keep for the next sync.
    pub backoff: BackoffRecord,
    /// Sync again after this long (pod-failure backoff, activeDeadline).
    pub requeue_after: Option<Duration>,
    /// Set when the sync did nothing (finished Job, external managedBy,
    /// unknown completion mode, invalid selector): why.
    pub skipped: Option<String>,
}

impl JobPlan {
    /// `namespace/name` keys of `delete`, for `expect_deletions`.
    pub fn delete_keys(&self, namespace: &str) -> Vec<String> {
        self.delete
            .iter()
            .map(|n| format!("{namespace}/{n}"))
            .collect()
    }
}

/// The Job's key, `namespace/name`.
pub fn key(job: &Job) -> String {
    format!(
        "{}/{}",
        job.metadata.namespace.as_deref().unwrap_or(""),
        job.metadata.name.as_deref().unwrap_or("")
    )
}

/// Decides whether the Job uses the Indexed completion mode.
pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// `managedByExternalController`: spec.managedBy set to another controller.
pub fn managed_elsewhere(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_some_and(|m| m != CONTROLLER_NAME)
}

/// `IsJobFinished`: a `Complete` or `Failed` condition with status True.
pub fn is_finished(job: &Job) -> bool {
    let is_true = |t: &str| condition(job, t).is_some_and(|c| c.status == "True");
    is_true(COMPLETE) || is_true(FAILED)
}

/// The selector the Job's pods are claimed with: spec.selector, or the
/// generated `batch.kubernetes.io/controller-uid=<uid>` when absent.
pub fn effective_selector(job: &Job) -> LabelSelector {
    if let Some(sel) = job.spec.as_ref().and_then(|s| s.selector.clone()) {
        return sel;
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    LabelSelector {
        match_labels: Some([("batch.kubernetes.io/controller-uid".to_string(), uid)].into()),
        match_expressions: None,
    }
}

fn skip(why: &str, backoff: BackoffRecord) -> JobPlan {
    JobPlan {
        skipped: Some(why.to_string()),
        backoff,
        ..JobPlan::default()
    }
}

fn name_of(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn uid_of(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One sync of `job` (`syncJob`) over `pods`, every pod of its namespace in
/// the cache, with the controller expectations state and the backoff record
/// kept from the previous sync. See [`JobPlan`] and the module docs.
pub fn reconcile(
    job: &Job,
    pods: &[Arc<Pod>],
    expectations_satisfied: bool,
    backoff: Option<&BackoffRecord>,
    now: Timestamp,
) -> JobPlan {
    let prev_backoff = backoff.copied().unwrap_or_default();
    if managed_elsewhere(job) {
        return skip("managed by an external controller", prev_backoff);
    }
    if is_finished(job) {
        return skip("finished", BackoffRecord::default());
    }
    let mode = job.spec.as_ref().and_then(|s| s.completion_mode.as_deref());
    if !matches!(mode, None | Some("NonIndexed") | Some("Indexed")) {
        return skip("unknown completion mode", prev_backoff);
    }
    let Some(spec) = manage::defaulted(job) else {
        return skip("no spec", prev_backoff);
    };
    let indexed = match (is_indexed(job), spec.completions) {
        (false, _) => None,
        (true, Some(c)) => Some(c),
        (true, None) => return skip("Indexed Job without completions", prev_backoff),
    };
    let selector = match parse(&effective_selector(job)) {
        Ok(s) => s,
        Err(e) => return skip(&format!("invalid selector: {e}"), prev_backoff),
    };
    let claim = manage::claim(job, &selector, pods);
    let claimed = &claim.claimed;
    let deleting = job.metadata.deletion_timestamp.is_some();
    let mut plan = JobPlan {
        adopt: claim.adopt.clone(),
        release: claim.release.clone(),
        ..JobPlan::default()
    };
    let finalized: BTreeSet<String> = claimed
        .iter()
        .filter(|p| has_tracking_finalizer(p) || claim.adopted.contains(&uid_of(p)))
        .map(|p| uid_of(p))
        .collect();
    let valid_index = |p: &Pod| indexed.is_none_or(|c| completion_index(p).is_some_and(|i| i < c));

    let mut status = job.status.clone().unwrap_or_default();
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let unc_succeeded: BTreeSet<String> = uncounted.succeeded.into_iter().flatten().collect();
    let unc_failed: BTreeSet<String> = uncounted.failed.into_iter().flatten().collect();
    let active_pods: Vec<Arc<Pod>> = claimed.iter().filter(|p| is_active(p)).cloned().collect();
    let mut active = to_i32(active_pods.len());
    let mut ready = to_i32(active_pods.iter().filter(|p| is_ready(p)).count());
    let mut terminating = to_i32(
        claimed
            .iter()
            .filter(|p| podutil::is_terminating(p))
            .count(),
    );
    // getNewFinishedPods: finished pods holding the finalizer, not yet uncounted.
    let fresh = |p: &Arc<Pod>, set: &BTreeSet<String>| {
        let uid = uid_of(p);
        finalized.contains(&uid) && !set.contains(&uid) && valid_index(p)
    };
    let new_succeeded: Vec<Arc<Pod>> = claimed
        .iter()
        .filter(|p| fresh(p, &unc_succeeded) && phase(p) == "Succeeded")
        .cloned()
        .collect();
    let new_failed: Vec<Arc<Pod>> = claimed
        .iter()
        .filter(|p| fresh(p, &unc_failed) && podutil::is_pod_failed(p, spec.only_replace_failed))
        .cloned()
        .collect();
    let mut succeeded = i64::from(status.succeeded.unwrap_or(0))
        + (new_succeeded.len() + unc_succeeded.len()) as i64;
    let failed =
        i64::from(status.failed.unwrap_or(0)) + (new_failed.len() + unc_failed.len()) as i64;
    if status.start_time.is_none() && !spec.suspended {
        status.start_time = Some(Time(now));
    }
    plan.backoff = prev_backoff.updated(&new_succeeded, &new_failed);

    let mut finished = finished_condition(job, &spec, &status, failed, claimed, &mut plan, now);
    let prev_indexes = indexed.map_or_else(Intervals::default, |c| {
        Intervals::parse(status.completed_indexes.as_deref().unwrap_or(""), c)
    });
    let mut succeeded_indexes = prev_indexes.clone();
    if indexed.is_some() {
        let new: BTreeSet<i32> = new_succeeded
            .iter()
            .filter_map(|p| completion_index(p))
            .collect();
        succeeded_indexes = prev_indexes.with_indexes(&new);
        succeeded = succeeded_indexes.total();
    }

    if finished.is_some() {
        // deleteActivePods: the finishing Job's active pods go, finalizers kept.
        plan.delete = active_pods.iter().map(|p| name_of(p)).collect();
        terminating += active;
        ready = 0;
        active = 0;
        if !expectations_satisfied {
            finished = None;
        }
    } else {
        let manage_called = expectations_satisfied && !deleting;
        if manage_called {
            let ctx = manage::Manage {
                job,
                spec,
                active: &active_pods,
                claimed,
                succeeded,
                succeeded_indexes: &succeeded_indexes,
                terminating,
            };
            let m = manage::manage(&ctx, &plan.backoff, now);
            plan.delete = m.delete.iter().map(|p| name_of(p)).collect();
            plan.delete_remove_finalizer = true;
            active = active - to_i32(m.delete.len()) + to_i32(m.create);
            terminating += to_i32(m.delete.len());
            ready -= to_i32(m.delete.iter().filter(|p| is_ready(p)).count());
            plan.create = m.create;
            plan.create_indexes = m.create_indexes;
            if let Some(wait) = m.wait {
                plan.requeue_after = Some(plan.requeue_after.map_or(wait, |r| r.min(wait)));
            }
        }
        let complete = match spec.completions {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= i64::from(c) && active == 0,
        };
        if complete {
            finished = Some(new_condition(
                SUCCESS_CRITERIA_MET,
                "True",
                REASON_COMPLETIONS_REACHED,
                MESSAGE_COMPLETIONS_REACHED,
                now,
            ));
        } else if manage_called {
            let (st, reason, msg) = if spec.suspended {
                ("True", "JobSuspended", "Job suspended")
            } else {
                ("False", "JobResumed", "Job resumed")
            };
            let conds = status.conditions.get_or_insert_with(Vec::new);
            if ensure_condition(conds, SUSPENDED, st, reason, msg, now) && !spec.suspended {
                // Resuming restarts the activeDeadlineSeconds clock.
                status.start_time = Some(Time(now));
            }
        }
    }
    status.active = Some(active);
    status.ready = Some(ready.max(0));
    status.terminating = Some(terminating);

    let t = status::Track {
        claimed,
        finalized: &finalized,
        unc_succeeded: &unc_succeeded,
        unc_failed: &unc_failed,
        indexed,
        only_replace_failed: spec.only_replace_failed,
        deleting,
        prev_indexes: &prev_indexes,
        succeeded_indexes: &succeeded_indexes,
        terminating,
    };
    status::track(&t, &mut status, finished, &mut plan, now);
    let status = canonical(status);
    if canonical(job.status.clone().unwrap_or_default()) != status {
        plan.status = Some(status);
    }
    plan
}

/// The finished condition this sync works towards, checked in upstream
/// order: an existing `SuccessCriteriaMet`; an existing `FailureTarget`
/// (giving `Failed`); failures past backoffLimit or, with restartPolicy
/// OnFailure, container restarts reaching it (`FailureTarget`
/// BackoffLimitExceeded); activeDeadlineSeconds elapsed since startTime
/// (`FailureTarget` DeadlineExceeded, otherwise a requeue at the deadline).
fn finished_condition(
    job: &Job,
    spec: &manage::Spec,
    status: &JobStatus,
    failed: i64,
    claimed: &[Arc<Pod>],
    plan: &mut JobPlan,
    now: Timestamp,
) -> Option<JobCondition> {
    if let Some(c) = condition(job, SUCCESS_CRITERIA_MET).filter(|c| c.status == "True") {
        return Some(c.clone());
    }
    if let Some(ft) = condition(job, FAILURE_TARGET).filter(|c| c.status == "True") {
        let reason = ft.reason.as_deref().unwrap_or("");
        let message = ft.message.as_deref().unwrap_or("");
        return Some(new_condition(FAILED, "True", reason, message, now));
    }
    if failed > i64::from(spec.backoff_limit)
        || podutil::past_backoff_limit_on_failure(job, claimed, spec.backoff_limit)
    {
        let (r, m) = (REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT);
        return Some(new_condition(FAILURE_TARGET, "True", r, m, now));
    }
    let deadline = job.spec.as_ref().and_then(|s| s.active_deadline_seconds)?;
    let started = status.start_time.as_ref()?.0;
    if spec.suspended {
        return None;
    }
    let allowed = SignedDuration::from_secs(deadline);
    let elapsed = now.duration_since(started);
    if elapsed >= allowed {
        let (r, m) = (REASON_DEADLINE, MESSAGE_DEADLINE);
        return Some(new_condition(FAILURE_TARGET, "True", r, m, now));
    }
    let left = Duration::try_from(allowed - elapsed).unwrap_or(Duration::ZERO);
    plan.requeue_after = Some(left);
    None
}

#[cfg(test)]
#[path = "job_test.rs"]
mod tests;
