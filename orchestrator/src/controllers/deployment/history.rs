//! Revision bookkeeping and revision-history cleanup.
//!
//! Copies pkg/controller/deployment/util/deployment_util.go (`Revision`, `MaxRevision`,
//! `SetNewReplicaSetAnnotations`, `copyDeploymentAnnotationsToReplicaSet`,
//! `ReplicaSetsByRevision`) and pkg/controller/deployment/sync.go (`cleanupDeployment`).
//! `kubectl rollout history` reads the revision annotation (and `kubernetes.io/change-cause`,
//! copied from the deployment) from these ReplicaSets; `kubectl rollout undo` copies an old
//! RS template into the deployment, after which that RS becomes the new one and receives
//! revision max+1, its previous revision being appended to the revision-history annotation.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util;
use super::{
    Action, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
};

/// `maxRevHistoryLengthInChars` of sync.go: the revision-history annotation keeps at most
/// this many characters, dropping the oldest entries first.
pub(crate) const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

/// Deployment annotations never copied to its ReplicaSets (`annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

/// `Revision`: the revision annotation as a number; absent means 0; `Err` if not a number.
pub(crate) fn revision(meta: &ObjectMeta) -> Result<i64, std::num::ParseIntError> {
    match meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
    {
        None => Ok(0),
        Some(v) => v.parse::<i64>(),
    }
}

/// `MaxRevision`: highest parsable revision among the given ReplicaSets (0 if none).
pub(crate) fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(&rs.metadata).ok())
        .fold(0, i64::max)
}

/// `ReplicaSetsByRevision`: ascending revision, creation time (then name) on ties or when a
/// revision cannot be parsed.
pub(crate) fn cmp_by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(&a.metadata), revision(&b.metadata)) {
        (Ok(ra), Ok(rb)) if ra != rb => ra.cmp(&rb),
        _ => util::cmp_by_creation(a, b),
    }
}

/// `copyDeploymentAnnotationsToReplicaSet`: copies every deployment annotation except the
/// controller-owned ones; true if the ReplicaSet changed.
fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) || ann.get(k) == Some(v) {
            continue;
        }
        ann.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Appends `old` to a comma separated history, dropping the oldest entries to stay within
/// `limit` characters (the `revHistoryLimitInChars` loop of `SetNewReplicaSetAnnotations`).
fn append_history(history: &str, old: &str, limit: usize) -> Option<String> {
    let entries: Vec<&str> = history.split(',').collect();
    if entries.first().is_none_or(|e| e.is_empty()) {
        return Some(old.to_string());
    }
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > limit && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > limit {
        return None;
    }
    let mut kept: Vec<&str> = entries[start..].to_vec();
    kept.push(old);
    Some(kept.join(","))
}

/// `SetNewReplicaSetAnnotations`: copies the deployment's annotations, raises the revision
/// annotation to `new_revision` when lower (recording the previous value in the
/// revision-history annotation if one existed), and, for a ReplicaSet about to be created
/// (`exists == false`), sets desired-replicas and max-replicas. Returns true if changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
    let old_revision = ann.get(REVISION_ANNOTATION).cloned();
    let old_int = match old_revision.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) if old_revision.as_deref() == Some("") => 0,
        Some(Err(_)) => return false,
    };
    if old_int < new_revision {
        ann.insert(REVISION_ANNOTATION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old_revision {
            let history = ann
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            if let Some(h) = append_history(&history, &old, MAX_REV_HISTORY_LENGTH_IN_CHARS) {
                ann.insert(REVISION_HISTORY_ANNOTATION.to_string(), h);
            }
        }
    }
    if !exists {
        let desired = util::replicas(d);
        if util::set_replicas_annotations(rs, desired, desired + util::max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// `cleanupDeployment`: deletes the oldest (by revision) old ReplicaSets beyond
/// `revisionHistoryLimit`, skipping any that still have replicas (spec or status), whose
/// latest spec the RS controller has not observed yet, or that are already being deleted.
pub(crate) fn cleanup_actions(d: &Deployment, old: &[&ReplicaSet]) -> Vec<Action> {
    let Some(limit) = util::revision_history_limit(d) else {
        return Vec::new();
    };
    let mut cleanable: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = cleanable.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Vec::new();
    }
    cleanable.sort_by(|a, b| cmp_by_revision(a, b));
    let mut actions = Vec::new();
    for rs in cleanable.iter().take(diff as usize) {
        let observed = rs
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if util::rs_status_replicas(rs) != 0
            || util::rs_replicas(rs) != 0
            || rs.metadata.generation.unwrap_or(0) > observed
        {
            continue;
        }
        actions.push(Action::DeleteReplicaSet {
            name: util::rs_name(rs).to_string(),
            uid: rs.metadata.uid.clone(),
            resource_version: rs.metadata.resource_version.clone(),
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use std::collections::BTreeMap;

    fn rs(name: &str, rev: Option<&str>, replicas: i32) -> ReplicaSet {
        let mut r = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ..Default::default()
            }),
            ..Default::default()
        };
        r.metadata.name = Some(name.into());
        if let Some(v) = rev {
            r.metadata.annotations = Some(BTreeMap::from([(
                REVISION_ANNOTATION.to_string(),
                v.to_string(),
            )]));
        }
        r
    }

    fn dep(limit: Option<i32>) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                revision_history_limit: limit,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ann<'a>(rs: &'a ReplicaSet, k: &str) -> Option<&'a str> {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .map(|s| s.as_str())
    }

    #[test]
    fn max_revision_skips_unparsable() {
        let a = rs("a", Some("3"), 0);
        let b = rs("b", Some("junk"), 0);
        let c = rs("c", None, 0);
        assert_eq!(max_revision([&a, &b, &c]), 3);
        assert_eq!(max_revision([&c]), 0);
    }

    #[test]
    fn rollback_target_gets_new_revision_and_history() {
        let d = dep(None);
        let mut target = rs("web-a", Some("1"), 0);
        assert!(set_new_rs_annotations(&d, &mut target, 3, true));
        assert_eq!(ann(&target, REVISION_ANNOTATION), Some("3"));
        assert_eq!(ann(&target, REVISION_HISTORY_ANNOTATION), Some("1"));
        // Rolled back to again later: history accumulates.
        assert!(set_new_rs_annotations(&d, &mut target, 5, true));
        assert_eq!(ann(&target, REVISION_HISTORY_ANNOTATION), Some("1,3"));
        // Never lowered, and idempotent.
        assert!(!set_new_rs_annotations(&d, &mut target, 4, true));
        assert_eq!(ann(&target, REVISION_ANNOTATION), Some("5"));
    }

    #[test]
    fn history_respects_length_limit() {
        assert_eq!(append_history("", "7", 10), Some("7".into()));
        assert_eq!(append_history("1,2,3", "4", 10), Some("1,2,3,4".into()));
        assert_eq!(
            append_history("11,22,33", "44", 10),
            Some("22,33,44".into())
        );
        assert_eq!(append_history("1", "123456789012", 10), None);
    }

    #[test]
    fn annotations_copied_except_controller_owned() {
        let mut d = dep(None);
        d.metadata.annotations = Some(BTreeMap::from([
            ("kubernetes.io/change-cause".to_string(), "bump".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
            (REVISION_ANNOTATION.to_string(), "9".to_string()),
        ]));
        let mut r = rs("n", None, 0);
        assert!(set_new_rs_annotations(&d, &mut r, 2, false));
        assert_eq!(ann(&r, "kubernetes.io/change-cause"), Some("bump"));
        assert_eq!(
            ann(&r, "kubectl.kubernetes.io/last-applied-configuration"),
            None
        );
        assert_eq!(ann(&r, REVISION_ANNOTATION), Some("2"));
        assert_eq!(ann(&r, REVISION_HISTORY_ANNOTATION), None);
        assert_eq!(ann(&r, DESIRED_REPLICAS_ANNOTATION), Some("3"));
        assert_eq!(ann(&r, MAX_REPLICAS_ANNOTATION), Some("4"));
    }

    #[test]
    fn cleanup_deletes_oldest_revisions_beyond_limit() {
        let d = dep(Some(2));
        let olds: Vec<ReplicaSet> = (1..=5)
            .map(|i| rs(&format!("r{i}"), Some(&i.to_string()), 0))
            .collect();
        let refs: Vec<&ReplicaSet> = olds.iter().rev().collect();
        let names: Vec<String> = cleanup_actions(&d, &refs)
            .into_iter()
            .filter_map(|a| match a {
                Action::DeleteReplicaSet { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec!["r1", "r2", "r3"]);
    }

    #[test]
    fn cleanup_skips_busy_or_unobserved_and_honours_default_limit() {
        let d = dep(Some(0));
        let busy = rs("busy", Some("1"), 2);
        let mut unobserved = rs("unobserved", Some("2"), 0);
        unobserved.metadata.generation = Some(3);
        let idle = rs("idle", Some("3"), 0);
        let acts = cleanup_actions(&d, &[&busy, &unobserved, &idle]);
        assert_eq!(acts.len(), 1);
        assert!(matches!(&acts[0], Action::DeleteReplicaSet { name, .. } if name == "idle"));
        // Default limit 10: ten idle old RSs are kept.
        let olds: Vec<ReplicaSet> = (1..=10).map(|i| rs(&format!("o{i}"), None, 0)).collect();
        let refs: Vec<&ReplicaSet> = olds.iter().collect();
        assert!(cleanup_actions(&dep(None), &refs).is_empty());
        assert!(cleanup_actions(&dep(Some(i32::MAX)), &[&idle]).is_empty());
    }
}
