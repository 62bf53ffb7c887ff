//! Job conditions and the finalizer-tracking half of a Job sync.
//!
//! Copies `newCondition`, `ensureJobConditionStatus`,
//! `trackJobStatusAndRemoveFinalizers`, `cleanUncountedPodsWithoutFinalizers`,
//! `canRemoveFinalizer` and `enactJobFinished` of
//! pkg/controller/job/job_controller.go (Kubernetes 1.32), with the counting
//! of pods whose finalizer is gone deferred to the next sync (see the parent
//! module).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::indexed::{completion_index, Intervals};
use super::podutil::is_pod_failed;
use super::{JobPlan, COMPLETE, FAILED, FAILURE_TARGET, MAX_UNCOUNTED_PODS, SUCCESS_CRITERIA_MET};
use crate::controllers::pods::phase;

/// The Job's condition of `type_`, if any.
pub(super) fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `newCondition`: probe and transition time `now`; empty reason / message
/// omitted.
pub(super) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `ensureJobConditionStatus`: sets (or replaces, when status, reason or
/// message differ) the condition of `type_`; a False condition is never
/// added. Returns whether the list changed.
pub(super) fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let new = new_condition(type_, status, reason, message, now);
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        if c.status != new.status || c.reason != new.reason || c.message != new.message {
            *c = new;
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(new);
        return true;
    }
    false
}

/// The status as it reads back from the API server: zero `active` /
/// `succeeded` / `failed` and empty `completedIndexes` / `conditions` are
/// omitted (Go's `omitempty`), so that comparing does not flap.
pub(super) fn canonical(mut s: JobStatus) -> JobStatus {
    for n in [&mut s.active, &mut s.succeeded, &mut s.failed] {
        if *n == Some(0) {
            *n = None;
        }
    }
    if s.completed_indexes.as_deref() == Some("") {
        s.completed_indexes = None;
    }
    if s.conditions.as_ref().is_some_and(|c| c.is_empty()) {
        s.conditions = None;
    }
    s
}

/// What the tracking step needs to know about this sync.
pub(super) struct Track<'a> {
    pub claimed: &'a [Arc<Pod>],
    /// Uids of claimed pods holding the tracking finalizer (adoptions included).
    pub finalized: &'a BTreeSet<String>,
    pub unc_succeeded: &'a BTreeSet<String>,
    pub unc_failed: &'a BTreeSet<String>,
    /// `Some(completions)` for an Indexed Job.
    pub indexed: Option<i32>,
    pub only_replace_failed: bool,
    pub deleting: bool,
    pub prev_indexes: &'a Intervals,
    pub succeeded_indexes: &'a Intervals,
    pub terminating: i32,
}

impl Track<'_> {
    fn valid_index(&self, p: &Pod) -> bool {
        match self.indexed {
            None => true,
            Some(c) => completion_index(p).is_some_and(|ix| ix < c),
        }
    }
}

fn uid_of(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

/// Counts pods whose finalizer is gone, records newly finished pods in
/// `uncountedTerminatedPods` (or `completedIndexes`) and lists their
/// finalizers for removal, appends the interim condition of `finished`, and
/// the terminal one when nothing is left uncounted, terminating or holding a
/// finalizer.
pub(super) fn track(
    t: &Track<'_>,
    status: &mut JobStatus,
    finished: Option<JobCondition>,
    plan: &mut JobPlan,
    now: Timestamp,
) {
    let keep = |set: &BTreeSet<String>| -> Vec<String> {
        set.iter()
            .filter(|u| t.finalized.contains(*u))
            .cloned()
            .collect()
    };
    let mut unc_succeeded = keep(t.unc_succeeded);
    let mut unc_failed = keep(t.unc_failed);
    let counted_succeeded = t.unc_succeeded.len() - unc_succeeded.len();
    let counted_failed = t.unc_failed.len() - unc_failed.len();
    let add = |n: Option<i32>, k: usize| n.unwrap_or(0).saturating_add(super::to_i32(k));
    status.failed = Some(add(status.failed, counted_failed));
    if t.indexed.is_none() {
        status.succeeded = Some(add(status.succeeded, counted_succeeded));
    }
    let mut tracked = t.claimed.to_vec();
    if t.indexed.is_some() {
        tracked.sort_by_key(|p| completion_index(p).unwrap_or(-1));
    }
    let mut new_indexes = BTreeSet::new();
    let mut reached_max = false;
    let failing = finished
        .as_ref()
        .is_some_and(|c| c.type_ != SUCCESS_CRITERIA_MET);
    for p in &tracked {
        let uid = uid_of(p);
        if !t.finalized.contains(&uid) {
            continue;
        }
        let considered_failed = is_pod_failed(p, t.only_replace_failed);
        let succeeded = phase(p) == "Succeeded";
        if !(t.deleting || finished.is_some() || succeeded || considered_failed) {
            continue;
        }
        plan.remove_finalizers
            .push(p.metadata.name.clone().unwrap_or_default());
        if succeeded && !t.unc_failed.contains(&uid) {
            if t.indexed.is_some() {
                if let Some(ix) = completion_index(p) {
                    if t.valid_index(p) && !t.prev_indexes.has(ix) {
                        new_indexes.insert(ix);
                    }
                }
            } else if !t.unc_succeeded.contains(&uid) {
                unc_succeeded.push(uid);
            }
        } else if (considered_failed || failing) && !t.unc_failed.contains(&uid) && t.valid_index(p)
        {
            unc_failed.push(uid);
        }
        if new_indexes.len() + unc_succeeded.len() + unc_failed.len() >= MAX_UNCOUNTED_PODS {
            reached_max = true;
            break;
        }
    }
    if t.indexed.is_some() {
        let all = t.succeeded_indexes.with_indexes(&new_indexes);
        status.succeeded = Some(i32::try_from(all.total()).unwrap_or(i32::MAX));
        status.completed_indexes = Some(all.to_string());
    }
    let uncounted_left = unc_succeeded.len() + unc_failed.len();
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!unc_succeeded.is_empty()).then_some(unc_succeeded),
        failed: (!unc_failed.is_empty()).then_some(unc_failed),
    });

    let Some(f) = finished else {
        return;
    };
    let conds = status.conditions.get_or_insert_with(Vec::new);
    let reason = f.reason.clone().unwrap_or_default();
    let message = f.message.clone().unwrap_or_default();
    let terminal = match f.type_.as_str() {
        FAILURE_TARGET => {
            conds.push(f);
            new_condition(FAILED, "True", &reason, &message, now)
        }
        SUCCESS_CRITERIA_MET => {
            let present = conds
                .iter()
                .any(|c| c.type_ == SUCCESS_CRITERIA_MET && c.status == "True");
            if !present {
                conds.push(f);
            }
            new_condition(COMPLETE, "True", &reason, &message, now)
        }
        _ => f,
    };
    let idle = uncounted_left == 0 && t.terminating == 0 && plan.remove_finalizers.is_empty();
    if !reached_max && idle {
        ensure_condition(conds, &terminal.type_, "True", &reason, &message, now);
        if terminal.type_ == COMPLETE {
            status.completion_time = terminal.last_transition_time.clone();
        }
        plan.finished = Some(terminal);
    }
}
