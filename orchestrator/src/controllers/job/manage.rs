//! Claiming and scaling of a Job's pods.
//!
//! Copies `getPodsForJob` (with `PodControllerRefManager.ClaimPods`),
//! `SetDefaults_Job` (pkg/apis/batch/v1/defaults.go) and `manageJob` /
//! `activePodsForRemoval` of pkg/controller/job/job_controller.go
//! (Kubernetes 1.32).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::indexed::{duplicated_index_pods, first_pending_indexes, Intervals};
use super::podutil::{is_terminating, sort_active_pods, BackoffRecord};
use super::{is_indexed, DEFAULT_BACKOFF_LIMIT, MAX_POD_CREATE_DELETE_PER_SYNC};
use crate::controllers::pods::controller_ref;
use crate::controllers::selector::Selector;

/// The defaulted spec values the sync uses (`SetDefaults_Job`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    /// `None` only when parallelism is set without completions (work queue).
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub backoff_limit: i32,
    pub suspended: bool,
    /// podReplacementPolicy `Failed` (the default with a podFailurePolicy).
    pub only_replace_failed: bool,
}

pub(super) fn defaulted(job: &Job) -> Option<Spec> {
    let s = job.spec.as_ref()?;
    let completions = match (s.completions, s.parallelism) {
        (None, None) => Some(1),
        (c, _) => c,
    };
    let default_limit = if s.backoff_limit_per_index.is_some() {
        i32::MAX
    } else {
        DEFAULT_BACKOFF_LIMIT
    };
    Some(Spec {
        completions,
        parallelism: s.parallelism.unwrap_or(1).max(0),
        backoff_limit: s.backoff_limit.unwrap_or(default_limit),
        suspended: s.suspend == Some(true),
        only_replace_failed: s.pod_replacement_policy.as_deref() == Some("Failed")
            || s.pod_failure_policy.is_some(),
    })
}

/// The Job's pods after claiming.
#[derive(Debug, Default)]
pub(super) struct Claim {
    /// Pods the Job controls (finished ones too), adoptions included.
    pub claimed: Vec<Arc<Pod>>,
    pub adopt: Vec<String>,
    pub release: Vec<String>,
    /// Uids of the adopted pods (the adoption patch adds the finalizer).
    pub adopted: BTreeSet<String>,
}

/// `ClaimPods`: pods of the Job's namespace controlled by it and matching
/// are kept; controlled but no longer matching are released; matching
/// orphans not being deleted are adopted. A Job being deleted neither adopts
/// nor releases.
pub(super) fn claim(job: &Job, selector: &Selector, pods: &[Arc<Pod>]) -> Claim {
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let ns = job.metadata.namespace.as_deref().unwrap_or("");
    let deleting = job.metadata.deletion_timestamp.is_some();
    let mut c = Claim::default();
    for p in pods {
        if p.metadata.namespace.as_deref().unwrap_or("") != ns {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let matched = selector.matches(&p.metadata.labels.clone().unwrap_or_default());
        match controller_ref(&p.metadata) {
            Some(r) if r.uid != uid => {}
            Some(_) if matched => c.claimed.push(Arc::clone(p)),
            Some(_) if !deleting => c.release.push(name),
            Some(_) => {}
            None if matched && !deleting && p.metadata.deletion_timestamp.is_none() => {
                c.adopt.push(name);
                c.adopted.insert(p.metadata.uid.clone().unwrap_or_default());
                c.claimed.push(Arc::clone(p));
            }
            None => {}
        }
    }
    c
}

/// Inputs of [`manage`].
pub(super) struct Manage<'a> {
    pub job: &'a Job,
    pub spec: Spec,
    pub active: &'a [Arc<Pod>],
    pub claimed: &'a [Arc<Pod>],
    pub succeeded: i64,
    pub succeeded_indexes: &'a Intervals,
    pub terminating: i32,
}

/// What [`manage`] decided.
#[derive(Debug, Default)]
pub(super) struct Managed {
    pub delete: Vec<Arc<Pod>>,
    pub create: usize,
    pub create_indexes: Vec<i32>,
    /// Creations held back by the pod-failure backoff for this long.
    pub wait: Option<Duration>,
}

fn ordered(mut v: Vec<Arc<Pod>>) -> Vec<Arc<Pod>> {
    sort_active_pods(&mut v);
    v
}

/// `manageJob`: suspension deletes every active pod; otherwise the active
/// count is steered to `min(parallelism, completions - succeeded)` (or
/// parallelism until the first success without completions); deletions take
/// precedence over creations; creations wait out the pod-failure backoff.
pub(super) fn manage(ctx: &Manage<'_>, backoff: &BackoffRecord, now: Timestamp) -> Managed {
    let mut out = Managed::default();
    let active = ctx.active.len() as i64;
    if ctx.spec.suspended {
        out.delete = ordered(ctx.active.to_vec());
        return out;
    }
    let parallelism = i64::from(ctx.spec.parallelism);
    let want = match ctx.spec.completions {
        None if ctx.succeeded > 0 => active,
        None => parallelism,
        Some(c) => (i64::from(c) - ctx.succeeded).min(parallelism).max(0),
    };
    let rm_at_least = usize::try_from(active - want).unwrap_or(0);
    let (mut rm, left) = if is_indexed(ctx.job) {
        duplicated_index_pods(ctx.active, ctx.spec.completions.unwrap_or(0))
    } else {
        (Vec::new(), ctx.active.to_vec())
    };
    if rm.len() < rm_at_least {
        let need = rm_at_least - rm.len();
        rm.extend(ordered(left).into_iter().take(need));
    }
    rm.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
    if !rm.is_empty() {
        out.delete = rm;
        return out;
    }
    let terminating = if ctx.spec.only_replace_failed {
        i64::from(ctx.terminating)
    } else {
        0
    };
    let diff = want - terminating - active;
    if diff <= 0 {
        return out;
    }
    let wait = backoff.remaining(now);
    if !wait.is_zero() {
        out.wait = Some(wait);
        return out;
    }
    let diff = usize::try_from(diff)
        .unwrap_or(0)
        .min(MAX_POD_CREATE_DELETE_PER_SYNC);
    if is_indexed(ctx.job) {
        let mut busy = ctx.active.to_vec();
        if ctx.spec.only_replace_failed {
            busy.extend(ctx.claimed.iter().filter(|p| is_terminating(p)).cloned());
        }
        let c = ctx.spec.completions.unwrap_or(0);
        out.create_indexes = first_pending_indexes(ctx.succeeded_indexes, &busy, diff, c);
        out.create = out.create_indexes.len();
    } else {
        out.create = diff;
    }
    out
}
