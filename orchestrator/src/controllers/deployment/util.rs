//! Small accessors and arithmetic shared by the deployment controller files.
//!
//! Copies pkg/controller/deployment/util/deployment_util.go (`ResolveFenceposts`,
//! `MaxSurge`, `MaxUnavailable`, `NewRSNewReplicas`, `IsSaturated`, `GetProportion`,
//! replica annotations) and the API-server defaults of apps/v1 Deployments
//! (pkg/apis/apps/v1/defaults.go `SetDefaults_Deployment`), applied on read because the
//! objects handed to this module may not have been defaulted by an API server.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION};

/// Default `spec.replicas`.
pub(crate) const DEFAULT_REPLICAS: i32 = 1;
/// Default `spec.progressDeadlineSeconds`.
pub(crate) const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Default `spec.revisionHistoryLimit`.
pub(crate) const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// The resolved update strategy of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Strategy {
    Rolling {
        max_surge: IntOrString,
        max_unavailable: IntOrString,
    },
    Recreate,
    Unknown,
}

fn default_percent() -> IntOrString {
    IntOrString::String("25%".to_string())
}

pub(crate) fn spec(d: &Deployment) -> Option<&DeploymentSpec> {
    d.spec.as_ref()
}

/// `spec.replicas`, defaulted to 1.
pub(crate) fn replicas(d: &Deployment) -> i32 {
    spec(d).and_then(|s| s.replicas).unwrap_or(DEFAULT_REPLICAS)
}

pub(crate) fn paused(d: &Deployment) -> bool {
    spec(d).and_then(|s| s.paused).unwrap_or(false)
}

/// `spec.minReadySeconds` (0 when absent).
pub(crate) fn min_ready_seconds(d: &Deployment) -> i32 {
    spec(d).and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

/// `spec.strategy` with apps/v1 defaults (RollingUpdate, 25%/25%).
pub(crate) fn strategy(d: &Deployment) -> Strategy {
    let st = spec(d).and_then(|s| s.strategy.as_ref());
    match st.and_then(|s| s.type_.as_deref()) {
        None | Some("RollingUpdate") => {
            let ru = st.and_then(|s| s.rolling_update.as_ref());
            Strategy::Rolling {
                max_surge: ru
                    .and_then(|r| r.max_surge.clone())
                    .unwrap_or_else(default_percent),
                max_unavailable: ru
                    .and_then(|r| r.max_unavailable.clone())
                    .unwrap_or_else(default_percent),
            }
        }
        Some("Recreate") => Strategy::Recreate,
        Some(_) => Strategy::Unknown,
    }
}

pub(crate) fn is_rolling(d: &Deployment) -> bool {
    matches!(strategy(d), Strategy::Rolling { .. })
}

/// `progressDeadlineSeconds` (default 600); `None` when disabled (`math.MaxInt32`),
/// as `HasProgressDeadline`.
pub(crate) fn progress_deadline(d: &Deployment) -> Option<i32> {
    let v = spec(d)
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    (v != i32::MAX).then_some(v)
}

/// `revisionHistoryLimit` (default 10); `None` when unlimited (`math.MaxInt32`),
/// as `HasRevisionHistoryLimit`.
pub(crate) fn revision_history_limit(d: &Deployment) -> Option<i32> {
    let v = spec(d)
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    (v != i32::MAX).then_some(v)
}

pub(crate) fn template(d: &Deployment) -> Option<&PodTemplateSpec> {
    spec(d).map(|s| &s.template)
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int is taken as is, "N%" scales `total`
/// rounding up or down. Invalid strings (rejected by API validation) resolve to 0.
pub(crate) fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let product = p * i64::from(total);
            let scaled = if round_up {
                -((-product).div_euclid(100))
            } else {
                product.div_euclid(100)
            };
            scaled.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
        }
    }
}

/// `ResolveFenceposts`: surge rounds up, unavailable rounds down, and when both resolve to
/// zero, unavailable becomes 1.
pub(crate) fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, desired, true);
    let mut unavailable = scaled_value(max_unavailable, desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// `MaxSurge`: 0 for non-rolling deployments.
pub(crate) fn max_surge(d: &Deployment) -> i32 {
    match strategy(d) {
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } => resolve_fenceposts(&max_surge, &max_unavailable, replicas(d)).0,
        _ => 0,
    }
}

/// `MaxUnavailable`: 0 for non-rolling or zero-replica deployments, capped at replicas.
pub(crate) fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    match strategy(d) {
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } if desired != 0 => resolve_fenceposts(&max_surge, &max_unavailable, desired)
            .1
            .min(desired),
        _ => 0,
    }
}

pub(crate) fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

/// `rs.spec.replicas` (API default 1 when the field is absent).
pub(crate) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .map(|s| s.replicas.unwrap_or(1))
        .unwrap_or(0)
}

pub(crate) fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

pub(crate) fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub(crate) fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub(crate) fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub(crate) fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// `FilterActiveReplicaSets` predicate: spec.replicas > 0.
pub(crate) fn is_active(rs: &ReplicaSet) -> bool {
    rs_replicas(rs) > 0
}

/// `ReplicaSetsByCreationTimestamp`: oldest first, name as tie breaker.
pub(crate) fn cmp_by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    ta.cmp(&tb).then_with(|| rs_name(a).cmp(rs_name(b)))
}

/// `ReplicaSetsBySizeOlder`: larger first, older first on ties.
pub(crate) fn cmp_by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| cmp_by_creation(a, b))
}

/// `ReplicaSetsBySizeNewer`: larger first, newer first on ties.
pub(crate) fn cmp_by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| cmp_by_creation(b, a))
}

/// True when `meta` has a controller owner reference with the given uid.
pub(crate) fn is_controlled_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    let Some(uid) = uid else { return false };
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// Integer annotation of a ReplicaSet (`getIntFromAnnotation`).
pub(crate) fn annotation_int(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i32>().ok())
}

/// `SetReplicasAnnotations`: writes desired-replicas and max-replicas; true if changed.
pub(crate) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut updated = false;
    for (key, value) in [
        (DESIRED_REPLICAS_ANNOTATION, desired.to_string()),
        (MAX_REPLICAS_ANNOTATION, max.to_string()),
    ] {
        if ann.get(key) != Some(&value) {
            ann.insert(key.to_string(), value);
            updated = true;
        }
    }
    updated
}

/// `ReplicasAnnotationsNeedUpdate`.
pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).cloned();
    get(DESIRED_REPLICAS_ANNOTATION) != Some(desired.to_string())
        || get(MAX_REPLICAS_ANNOTATION) != Some(max.to_string())
}

/// `NewRSNewReplicas`: the size the new RS may have now. Rolling: grow up to
/// replicas + maxSurge pods in total, never beyond spec.replicas; Recreate: spec.replicas.
pub(crate) fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = replicas(d);
    match strategy(d) {
        Strategy::Rolling { max_surge, .. } => {
            let surge = scaled_value(&max_surge, desired, true);
            let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
            let max_total = desired + surge;
            let new_replicas = rs_replicas(new_rs);
            if current >= max_total {
                return new_replicas;
            }
            let up = (max_total - current).min(desired - new_replicas);
            new_replicas + up
        }
        Strategy::Recreate => desired,
        Strategy::Unknown => rs_replicas(new_rs),
    }
}

/// `IsSaturated`: the new RS owns all desired replicas, agrees on it via the
/// desired-replicas annotation, and all of them are available.
pub(crate) fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = annotation_int(rs, DESIRED_REPLICAS_ANNOTATION) else {
        return false;
    };
    let want = replicas(d);
    rs_replicas(rs) == want && desired == want && rs_available(rs) == want
}

/// `integer.RoundToInt32`: round half away from zero.
fn round_to_i32(a: f64) -> i32 {
    if a < 0.0 {
        (a - 0.5) as i32
    } else {
        (a + 0.5) as i32
    }
}

/// `getReplicaSetFraction`: how many replicas `rs` gains (or loses) when the deployment's
/// allowed size changes, from its share of the max-replicas annotation.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let desired = replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = desired + max_surge(d);
    let annotated = annotation_int(rs, MAX_REPLICAS_ANNOTATION)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    round_to_i32(size) - rs_replicas(rs)
}

/// `GetProportion`: the share of `to_add` (positive or negative) given to `rs`, bounded by
/// what is still left to distribute.
pub(crate) fn get_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
    };
    use std::collections::BTreeMap;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    fn dep(replicas: i32, surge: Option<IntOrString>, unavail: Option<IntOrString>) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: surge,
                        max_unavailable: unavail,
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(replicas: i32, max_ann: Option<i32>) -> ReplicaSet {
        let mut r = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus::default()),
            ..Default::default()
        };
        if let Some(m) = max_ann {
            r.metadata.annotations = Some(BTreeMap::from([(
                MAX_REPLICAS_ANNOTATION.to_string(),
                m.to_string(),
            )]));
        }
        r
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 10), (3, 2));
        assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 1), (1, 0));
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(2), &pct("50%"), 5),
            (2, 2)
        );
        assert_eq!(resolve_fenceposts(&pct("0%"), &pct("1%"), 2), (0, 1));
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(0), &IntOrString::Int(0), 3),
            (0, 1)
        );
        assert_eq!(scaled_value(&pct("bogus"), 10, true), 0);
    }

    #[test]
    fn defaults_and_caps() {
        let d = dep(4, None, None);
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 1));
        let d = Deployment::default();
        assert_eq!(replicas(&d), 1);
        assert!(is_rolling(&d));
        assert_eq!(progress_deadline(&d), Some(600));
        assert_eq!(revision_history_limit(&d), Some(10));
        let d = dep(2, Some(IntOrString::Int(0)), Some(IntOrString::Int(5)));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
        let d = dep(0, None, Some(IntOrString::Int(5)));
        assert_eq!(max_unavailable(&d), 0);
        let mut d = dep(3, None, None);
        if let Some(s) = d.spec.as_mut() {
            s.strategy = Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            });
            s.progress_deadline_seconds = Some(i32::MAX);
        }
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
        assert_eq!(progress_deadline(&d), None);
    }

    #[test]
    fn new_rs_replicas_respect_surge_and_desired() {
        let d = dep(10, Some(IntOrString::Int(3)), Some(IntOrString::Int(2)));
        let old = rs(10, None);
        let new = rs(0, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let old = rs(8, None);
        let new = rs(3, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 5);
        let old = rs(0, None);
        let new = rs(9, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 10);
    }

    #[test]
    fn proportions_follow_max_replicas_annotation() {
        // Deployment resized 10 -> 20 (surge 3 -> 5): annotated max 13 becomes 25.
        let d = dep(20, pct("25%").into(), pct("25%").into());
        let big = rs(8, Some(13));
        let small = rs(5, Some(13));
        let to_add = 25 - 13;
        let p1 = get_proportion(&big, &d, to_add, 0);
        assert_eq!(p1, 7); // round(8*25/13)=15 -> +7
        let p2 = get_proportion(&small, &d, to_add, p1);
        assert_eq!(p2, 5); // min(round(5*25/13)-5=5, 12-7)
                           // Scale to zero removes whole sizes.
        let z = dep(0, None, None);
        assert_eq!(get_proportion(&big, &z, -13, 0), -8);
        assert_eq!(get_proportion(&rs(0, Some(13)), &d, 12, 0), 0);
    }

    #[test]
    fn saturation_needs_annotation_size_and_availability() {
        let d = dep(3, None, None);
        let mut r = rs(3, None);
        assert!(!is_saturated(&d, Some(&r)));
        set_replicas_annotations(&mut r, 3, 4);
        assert!(!is_saturated(&d, Some(&r)));
        if let Some(s) = r.status.as_mut() {
            s.available_replicas = Some(3);
        }
        assert!(is_saturated(&d, Some(&r)));
        assert!(!replicas_annotations_need_update(&r, 3, 4));
        assert!(replicas_annotations_need_update(&r, 3, 5));
        assert!(!is_saturated(&d, None));
    }
}
