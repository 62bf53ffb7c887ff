//! Which pods a ReplicaSet deletes first when it has too many.
//!
//! Copies `controller.ActivePodsWithRanks.Less` (pkg/controller/controller_utils.go,
//! Kubernetes 1.32 with its default feature gates: `PodDeletionCost` and
//! `LogarithmicScaleDown` on) and `getPodsToDelete` /
//! `getPodsRankedByRelatedPodsOnSameNode` (pkg/controller/replicaset/replica_set.go).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pods::{is_active, is_ready, phase, ready_since};

/// `core.PodDeletionCost`: pods with a lower value are deleted first.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The pod's deletion cost (`helper.GetDeletionCostFromPodAnnotations`):
/// the annotation parsed as an int32; 0 when absent or malformed (a leading
/// `+`, leading zeros, out of range or non-numeric values are malformed).
pub fn deletion_cost(pod: &Pod) -> i32 {
    let Some(v) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
    else {
        return 0;
    };
    let first_ok = match v.as_bytes().first() {
        Some(b'-') => true,
        Some(b'0') => v == "0",
        Some(c) => c.is_ascii_digit(),
        None => false,
    };
    if !first_ok {
        return 0;
    }
    v.parse::<i32>().unwrap_or(0)
}

/// `podPhaseToOrdinal`: Pending 0 < Unknown 1 < Running 2; anything else 0.
fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// `maxContainerRestarts`: the highest restart count among regular
/// containers, and among restartable init (sidecar) containers.
pub fn max_container_restarts(pod: &Pod) -> (i32, i32) {
    let status = pod.status.as_ref();
    let regular = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .fold(0, i32::max);
    let sidecars: BTreeSet<&str> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| sidecars.contains(c.name.as_str()))
        .map(|c| c.restart_count)
        .fold(0, i32::max);
    (regular, sidecar)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// `afterOrZero`: a zero (absent) time sorts first, otherwise the later one.
fn after_or_zero(t1: Option<Timestamp>, t2: Option<Timestamp>) -> bool {
    match (t1, t2) {
        (Some(a), Some(b)) => a > b,
        (a, _) => a.is_none(),
    }
}

/// `logarithmicRankDiff`: floor(log2(age in ns)) of each time, compared.
fn logarithmic_rank_diff(t1: Timestamp, t2: Timestamp, now: Timestamp) -> i64 {
    let rank = |t: Timestamp| -> i64 {
        let d = now.duration_since(t).as_nanos();
        let d = i64::try_from(d).unwrap_or(if d > 0 { i64::MAX } else { i64::MIN });
        if d > 0 {
            (d as f64).log2() as i64
        } else {
            -1
        }
    };
    rank(t1) - rank(t2)
}

/// Steps 6 and 8 of `Less`: newer (or zero) time first, on a logarithmic
/// scale with the pod UID as tie-breaker. `None` when the times are equal.
fn compare_times(
    t1: Option<Timestamp>,
    t2: Option<Timestamp>,
    a: &Pod,
    b: &Pod,
    now: Timestamp,
) -> Option<bool> {
    if t1 == t2 {
        return None;
    }
    match (t1, t2) {
        (Some(x), Some(y)) => {
            let diff = logarithmic_rank_diff(x, y, now);
            if diff == 0 {
                Some(uid(a) < uid(b))
            } else {
                Some(diff < 0)
            }
        }
        _ => Some(after_or_zero(t1, t2)),
    }
}

/// Decides whether pod `a` (co-location rank `rank_a`) should be deleted
/// before pod `b` (`ActivePodsWithRanks.Less`), applying in turn:
/// 1. unassigned before assigned; 2. Pending < Unknown < Running;
/// 3. not ready before ready; 4. lower pod-deletion-cost first;
/// 5. higher co-location rank first; 6. if both ready, ready for less time
///    first (log2 buckets, then UID); 7. more regular-container restarts first,
///    then more sidecar restarts; 8. newer creationTimestamp first (log2
///    buckets, then UID). Zero (absent) times sort before any time.
pub fn prefer_for_deletion(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> bool {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa < pb;
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return !ra;
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca < cb;
    }
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    if ra && rb {
        if let Some(r) = compare_times(ready_since(a), ready_since(b), a, b, now) {
            return r;
        }
    }
    let (ma, mb) = (max_container_restarts(a), max_container_restarts(b));
    if ma.0 != mb.0 {
        return ma.0 > mb.0;
    }
    if ma.1 != mb.1 {
        return ma.1 > mb.1;
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    compare_times(created(a), created(b), a, b, now).unwrap_or(false)
}

/// `getPodsRankedByRelatedPodsOnSameNode`: for each pod, the number of active
/// pods among `related` on the same node (unassigned pods share node `""`).
pub fn co_located_ranks(pods: &[Arc<Pod>], related: &[Arc<Pod>]) -> Vec<usize> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    pods.iter()
        .map(|p| on_node.get(node_name(p)).copied().unwrap_or(0))
        .collect()
}

/// Orders `pods` deletion-first by [`prefer_for_deletion`]. A stable merge
/// sort: pods the comparison cannot tell apart keep their input order, and an
/// inconsistent comparison (possible upstream with log buckets) cannot panic.
pub fn sort_for_deletion(pods: &[Arc<Pod>], ranks: &[usize], now: Timestamp) -> Vec<Arc<Pod>> {
    let rank = |i: usize| ranks.get(i).copied().unwrap_or(0);
    let less = |i: usize, j: usize| prefer_for_deletion(&pods[i], rank(i), &pods[j], rank(j), now);
    let mut idx: Vec<usize> = (0..pods.len()).collect();
    merge_sort(&mut idx, &less);
    idx.into_iter().map(|i| Arc::clone(&pods[i])).collect()
}

/// `getPodsToDelete`: the first `diff` pods of `pods` in deletion order, the
/// co-location rank counted over `related`. When all pods go, no sorting
/// happens and the input order is kept, as upstream.
pub fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    diff: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if diff >= pods.len() {
        return pods.to_vec();
    }
    let ranks = co_located_ranks(pods, related);
    let mut sorted = sort_for_deletion(pods, &ranks, now);
    sorted.truncate(diff);
    sorted
}

fn merge_sort(v: &mut [usize], less: &dyn Fn(usize, usize) -> bool) {
    if v.len() <= 1 {
        return;
    }
    let mid = v.len() / 2;
    merge_sort(&mut v[..mid], less);
    merge_sort(&mut v[mid..], less);
    let mut out = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        // Take from the right only when strictly preferred: keeps stability.
        if less(v[j], v[i]) {
            out.push(v[j]);
            j += 1;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&v[i..mid]);
    out.extend_from_slice(&v[j..]);
    v.copy_from_slice(&out);
}

#[cfg(test)]
#[path = "ranking_test.rs"]
mod tests;
