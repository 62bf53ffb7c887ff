use super::*;
use crate::scheduler::labels::parse_preferred_terms;
use crate::scheduler::resources::{pod_requests, pod_requests_non_zero};
use crate::scheduler::testutil::{from, info, node, pod, with_labels, with_taint};
use serde_json::json;

#[test]
fn least_allocated_exact_values() {
    let empty = info(node("n", "4", "8Gi"), vec![]);
    let p = pod("ns/p", "1", "2Gi");
    assert_eq!(least_allocated(&pod_requests_non_zero(&p), &empty), 75);
    let busy = info(node("n", "4", "8Gi"), vec![pod("ns/a", "2", "2Gi")]);
    // cpu (4000 - 3000) * 100 / 4000 = 25, memory (8 - 4) / 8 = 50 -> 37
    assert_eq!(least_allocated(&pod_requests_non_zero(&p), &busy), 37);
    let over = pod("ns/p", "5", "1Gi");
    // cpu over capacity scores 0, memory 87 -> 43
    assert_eq!(least_allocated(&pod_requests_non_zero(&over), &empty), 43);
}

#[test]
fn least_allocated_uses_non_zero_defaults() {
    let empty = info(node("n", "4", "8Gi"), vec![]);
    let best_effort = pod("ns/p", "", "");
    // cpu (4000 - 100) * 100 / 4000 = 97, memory (8Gi - 200Mi) * 100 / 8Gi = 97
    assert_eq!(
        least_allocated(&pod_requests_non_zero(&best_effort), &empty),
        97
    );
    let n: k8s_openapi::api::core::v1::Node =
        from(json!({"metadata": {"name": "z"}, "status": {"allocatable": {"pods": "1"}}}));
    assert_eq!(
        least_allocated(&pod_requests_non_zero(&best_effort), &info(n, vec![])),
        0
    );
}

#[test]
fn balanced_allocation_exact_values() {
    let empty = info(node("n", "4", "8Gi"), vec![]);
    // fractions 0.25 and 0.5: std 0.125 -> 87
    assert_eq!(
        balanced_allocation(&pod_requests(&pod("ns/p", "1", "4Gi")), &empty),
        87
    );
    assert_eq!(
        balanced_allocation(&pod_requests(&pod("ns/p", "2", "4Gi")), &empty),
        100
    );
    // cpu fraction capped at 1, memory 0.125: std 0.4375 -> 56
    assert_eq!(
        balanced_allocation(&pod_requests(&pod("ns/p", "8", "1Gi")), &empty),
        56
    );
    let busy = info(node("n", "4", "8Gi"), vec![pod("ns/a", "1", "")]);
    // plain requests: cpu (1000 + 0) / 4000 = 0.25, memory 0 -> std 0.125 -> 87
    assert_eq!(
        balanced_allocation(&pod_requests(&pod("ns/p", "", "")), &busy),
        87
    );
}

#[test]
fn node_affinity_preferred_terms_and_normalize() {
    let terms: Vec<k8s_openapi::api::core::v1::PreferredSchedulingTerm> = from(json!([
        {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 3, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
    ]));
    let parsed = parse_preferred_terms(&terms);
    let nodes = [
        info(
            with_labels(node("n1", "1", "1Gi"), &[("zone", "a"), ("disk", "ssd")]),
            vec![],
        ),
        info(
            with_labels(node("n2", "1", "1Gi"), &[("zone", "a")]),
            vec![],
        ),
        info(node("n3", "1", "1Gi"), vec![]),
    ];
    let mut s: Vec<i64> = nodes.iter().map(|n| node_affinity(&parsed, n)).collect();
    assert_eq!(s, vec![8, 5, 0]);
    default_normalize(&mut s, false);
    assert_eq!(s, vec![100, 62, 0]);
}

#[test]
fn taint_toleration_counts_prefer_no_schedule_reversed() {
    let n1 = with_taint(
        with_taint(node("n1", "1", "1Gi"), "a", "1", "PreferNoSchedule"),
        "b",
        "1",
        "PreferNoSchedule",
    );
    let n2 = with_taint(
        with_taint(node("n2", "1", "1Gi"), "a", "1", "PreferNoSchedule"),
        "c",
        "1",
        "NoSchedule",
    );
    let nodes = [
        info(n1, vec![]),
        info(n2, vec![]),
        info(node("n3", "1", "1Gi"), vec![]),
    ];
    let none = prefer_no_schedule_tolerations(&[]);
    let mut s: Vec<i64> = nodes.iter().map(|n| taint_toleration(&none, n)).collect();
    assert_eq!(s, vec![2, 1, 0]);
    default_normalize(&mut s, true);
    assert_eq!(s, vec![0, 50, 100]);
    let tol: Vec<Toleration> = from(json!([
        {"key": "b", "operator": "Exists"},
        {"key": "a", "operator": "Exists", "effect": "NoSchedule"}
    ]));
    let considered = prefer_no_schedule_tolerations(&tol);
    assert_eq!(
        considered.len(),
        1,
        "a NoSchedule toleration is not considered"
    );
    let s: Vec<i64> = nodes
        .iter()
        .map(|n| taint_toleration(&considered, n))
        .collect();
    assert_eq!(s, vec![1, 1, 0]);
}

#[test]
fn default_normalize_edge_cases() {
    let mut zeros = vec![0, 0];
    default_normalize(&mut zeros, false);
    assert_eq!(zeros, vec![0, 0]);
    default_normalize(&mut zeros, true);
    assert_eq!(zeros, vec![100, 100]);
    let mut v = vec![3, 1];
    default_normalize(&mut v, false);
    assert_eq!(v, vec![100, 33]);
}
