//! Taint-based eviction and the default not-ready / unreachable tolerations.
//!
//! Copies `processPodOnNode` / `getMinTolerationTime` of
//! pkg/controller/tainteviction/taint_eviction.go, `GetMatchingTolerations`
//! of pkg/apis/core/v1/helper and `Toleration.ToleratesTaint` of
//! staging/src/k8s.io/api/core/v1/toleration.go, and kube-apiserver's
//! DefaultTolerationSeconds admission plugin
//! (plugin/pkg/admission/defaulttolerationseconds) (Kubernetes 1.32).
//!
//! Difference: upstream times a pod's eviction from the moment the
//! controller saw it under the taints, in memory; here it is timed from the
//! taints' `timeAdded` (set by the node lifecycle controller), so the answer
//! is the same after a restart. A taint without timeAdded counts as added
//! `now`: the integrator should fill in when it first saw such a taint.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::controllers::pods::pod_key;

/// `Toleration.ToleratesTaint`: effect empty or equal, key empty or equal,
/// operator `Exists`, or `Equal` (or empty) with equal values.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// When each pod on a node must be evicted because of the node's NoExecute
/// taints, as `(namespace/name, delay from now)`: at once (zero) when a
/// taint is not tolerated; otherwise, per taint, its timeAdded plus the
/// tolerationSeconds of the first toleration matching it (`<= 0` means at
/// once), the earliest of those; never (left out) when every matching
/// toleration has no tolerationSeconds. Pods already being deleted and
/// nodes without NoExecute taints give nothing.
pub fn evictions(
    node_taints: &[Taint],
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> Vec<(String, Duration)> {
    let taints: Vec<&Taint> = node_taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .collect();
    if taints.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[]);
        let mut when: Option<Timestamp> = None;
        let mut all_tolerated = true;
        for taint in &taints {
            let Some(tol) = tolerations.iter().find(|t| tolerates(t, taint)) else {
                all_tolerated = false;
                break;
            };
            let Some(secs) = tol.toleration_seconds else {
                continue;
            };
            let added = taint.time_added.as_ref().map_or(now, |t| t.0);
            let at = added
                .checked_add(SignedDuration::from_secs(secs.max(0)))
                .unwrap_or(added);
            when = Some(when.map_or(at, |w| w.min(at)));
        }
        let delay = if !all_tolerated {
            Some(Duration::ZERO)
        } else {
            when.map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
        };
        if let Some(d) = delay {
            out.push((pod_key(pod), d));
        }
    }
    out
}
