//! Score plugins that need no cluster-wide state, the default normalization and the
//! default plugin weights of kube-scheduler 1.32
//! (`pkg/scheduler/apis/config/v1/default_plugins.go`).
//!
//! Copies `noderesources/least_allocated.go`, `noderesources/balanced_allocation.go`,
//! `noderesources/resource_allocation.go`, `nodeaffinity/node_affinity.go` (Score),
//! `tainttoleration/taint_toleration.go` (Score) and `helper/normalize_score.go`.

use k8s_openapi::api::core::v1::Toleration;

use crate::scheduler::labels::{tolerations_tolerate, NodeTerm};
use crate::scheduler::node_info::NodeInfo;
use crate::scheduler::resources::Resources;

/// Highest score a plugin gives (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;
/// Default weight of TaintToleration.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
/// Default weight of NodeAffinity.
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
/// Default weight of NodeResourcesFit (LeastAllocated).
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
/// Default weight of PodTopologySpread.
pub const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;
/// Default weight of InterPodAffinity.
pub const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
/// Default weight of NodeResourcesBalancedAllocation.
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// NodeResourcesFit score with the default LeastAllocated strategy (cpu and memory,
/// weight 1 each): per resource `(allocatable - requested) * 100 / allocatable`, where
/// requested is the node's non-zero requests plus the pod's non-zero requests (missing
/// container requests count as 100m / 200Mi); resources with 0 allocatable are skipped.
pub fn least_allocated(pod_non_zero: &Resources, node: &NodeInfo) -> i64 {
    let alloc = node.allocatable();
    let used = node.non_zero_requested();
    let pairs = [
        (used.milli_cpu + pod_non_zero.milli_cpu, alloc.milli_cpu),
        (used.memory + pod_non_zero.memory, alloc.memory),
    ];
    let (mut sum, mut weights) = (0, 0);
    for (req, cap) in pairs {
        if cap == 0 {
            continue;
        }
        sum += least_requested(req, cap);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

/// NodeResourcesBalancedAllocation score (cpu, memory): `(1 - std) * 100` of the
/// requested/allocatable fractions (each capped at 1) after adding the pod's plain
/// requests to the node's requested total; with two resources std = |f1 - f2| / 2.
pub fn balanced_allocation(pod_requests: &Resources, node: &NodeInfo) -> i64 {
    let alloc = node.allocatable();
    let used = node.requested();
    let pairs = [
        (used.milli_cpu + pod_requests.milli_cpu, alloc.milli_cpu),
        (used.memory + pod_requests.memory, alloc.memory),
    ];
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(_, cap)| *cap != 0)
        .map(|(req, cap)| (*req as f64 / *cap as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// NodeAffinity raw score: sum of the weights of the preferred terms the node matches.
pub fn node_affinity(preferred: &[(NodeTerm, i64)], node: &NodeInfo) -> i64 {
    preferred
        .iter()
        .filter(|(t, _)| t.matches(node.labels(), node.name()))
        .map(|(_, w)| *w)
        .sum()
}

/// The tolerations TaintToleration scoring considers: effect empty or PreferNoSchedule
/// (`getAllTolerationPreferNoSchedule`).
pub fn prefer_no_schedule_tolerations(tolerations: &[Toleration]) -> Vec<Toleration> {
    tolerations
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .cloned()
        .collect()
}

/// TaintToleration raw score: number of PreferNoSchedule taints not tolerated
/// (normalized in reverse: fewer is better).
pub fn taint_toleration(prefer_tolerations: &[Toleration], node: &NodeInfo) -> i64 {
    node.node()
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations_tolerate(prefer_tolerations, t))
        .count() as i64
}

/// `helper.DefaultNormalizeScore(100, reverse, scores)`: scale by the maximum to 0..=100;
/// reversed, `100 - scaled`. All zero stays zero (or all 100 when reversed).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
#[path = "score_test.rs"]
mod tests;
