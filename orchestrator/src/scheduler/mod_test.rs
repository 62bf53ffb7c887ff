use super::*;
use crate::scheduler::testutil::{info, node, owned_by, pod, pod_spec, with_taint};
use k8s_openapi::api::core::v1::Node;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

fn cordoned(mut n: Node) -> Node {
    n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    n
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn fit_err(p: &Pod, nodes: &[NodeInfo]) -> String {
    match schedule(p, nodes, &mut rng()) {
        Ok(n) => panic!("unexpectedly scheduled on {n}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn picks_the_least_allocated_node() {
    let nodes = [
        info(node("busy", "4", "8Gi"), vec![pod("ns/a", "3", "6Gi")]),
        info(node("idle", "4", "8Gi"), vec![]),
        info(node("half", "4", "8Gi"), vec![pod("ns/b", "2", "4Gi")]),
    ];
    assert_eq!(
        schedule(&pod("ns/p", "500m", "1Gi"), &nodes, &mut rng()),
        Ok("idle".to_string())
    );
}

#[test]
fn fit_error_mixed_reasons_three_nodes() {
    let nodes = [
        info(cordoned(node("n1", "4", "8Gi")), vec![]),
        info(node("n2", "1", "8Gi"), vec![]),
        info(node("n3", "1", "8Gi"), vec![]),
    ];
    assert_eq!(
        fit_err(&pod("ns/p", "2", "1Gi"), &nodes),
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
    );
}

#[test]
fn only_the_first_failing_plugin_counts() {
    // n1 is cordoned and too small: NodeUnschedulable runs first, so only it is reported.
    let nodes = [info(cordoned(node("n1", "1", "1Gi")), vec![])];
    assert_eq!(
        fit_err(&pod("ns/p", "2", "2Gi"), &nodes),
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );
}

#[test]
fn several_reasons_per_node_and_taints() {
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![]),
        info(node("n2", "1", "1Gi"), vec![]),
    ];
    assert_eq!(
        fit_err(&pod("ns/p", "2", "2Gi"), &nodes),
        "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."
    );
    let tainted = [
        info(
            with_taint(node("n1", "4", "8Gi"), "dedicated", "gpu", "NoSchedule"),
            vec![],
        ),
        info(node("n2", "1", "8Gi"), vec![]),
    ];
    assert_eq!(
        fit_err(&pod("ns/p", "2", ""), &tainted),
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}."
    );
}

#[test]
fn no_nodes_and_prefilter_messages() {
    assert_eq!(
        fit_err(&pod("ns/p", "", ""), &[]),
        "no nodes available to schedule pods"
    );
    let pin = |names: &[&str]| json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": names}]});
    let conflict = pod_spec(
        pod("ns/p", "", ""),
        "affinity",
        json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]}
        ]}]}}}),
    );
    let nodes = [
        info(node("a", "1", "1Gi"), vec![]),
        info(node("b", "1", "1Gi"), vec![]),
    ];
    assert_eq!(
        fit_err(&conflict, &nodes),
        "0/2 nodes are available: pod affinity terms conflict."
    );
    let pinned = pod_spec(
        pod("ns/p", "2", ""),
        "affinity",
        json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [pin(&["a"])]}}}),
    );
    let three = [
        info(node("a", "1", "1Gi"), vec![]),
        info(node("b", "8", "1Gi"), vec![]),
        info(node("c", "8", "1Gi"), vec![]),
    ];
    assert_eq!(
        fit_err(&pinned, &three),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    );
}

#[test]
fn fit_error_sorts_entries_as_strings() {
    let e = FitError {
        num_all_nodes: 12,
        reasons: [
            ("Insufficient cpu".to_string(), 2),
            ("Insufficient memory".to_string(), 10),
        ]
        .into(),
        pre_filter_msg: None,
    };
    assert_eq!(
        e.to_string(),
        "0/12 nodes are available: 10 Insufficient memory, 2 Insufficient cpu."
    );
}

#[test]
fn random_tie_break_is_uniform_and_seeded() {
    let nodes: Vec<NodeInfo> = (0..4)
        .map(|i| info(node(&format!("n{i}"), "4", "8Gi"), vec![]))
        .collect();
    let p = pod("ns/p", "100m", "100Mi");
    let mut r = StdRng::seed_from_u64(42);
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..400 {
        *counts
            .entry(schedule(&p, &nodes, &mut r).expect("fits"))
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 4, "every tied node gets picked: {counts:?}");
    assert!(
        counts.values().all(|c| (60..=140).contains(c)),
        "roughly uniform: {counts:?}"
    );
    let a = schedule(&p, &nodes, &mut StdRng::seed_from_u64(1));
    let b = schedule(&p, &nodes, &mut StdRng::seed_from_u64(1));
    assert_eq!(a, b, "same seed, same choice");
}

#[test]
fn select_host_prefers_strictly_higher_totals() {
    let mk = |index, total| NodeScore {
        index,
        total,
        plugins: [("x", total); 6],
    };
    let scores = [mk(0, 10), mk(1, 30), mk(2, 20)];
    assert_eq!(select_host(&scores, &mut rng()), Some(1));
    assert_eq!(select_host(&[], &mut rng()), None);
}

#[test]
fn score_breakdown_uses_default_weights() {
    let nodes = [
        info(node("a", "4", "8Gi"), vec![]),
        info(node("b", "4", "8Gi"), vec![]),
    ];
    let p = pod("ns/p", "1", "4Gi");
    let state = prepare(&p, &nodes).expect("prefilter");
    let scores = score_nodes(&state, &nodes, &[0, 1]);
    let a = &scores[0];
    assert_eq!(
        a.plugins[0],
        ("TaintToleration", 300),
        "no taints: 100 x weight 3"
    );
    assert_eq!(
        a.plugins[1],
        ("NodeAffinity", 0),
        "skipped without preferred terms"
    );
    assert_eq!(a.plugins[2], ("NodeResourcesFit", 62), "(75 + 50) / 2");
    assert_eq!(a.plugins[5], ("NodeResourcesBalancedAllocation", 87));
    assert_eq!(a.total, 300 + 62 + 87);
}

#[test]
fn replicas_spread_over_nodes() {
    let mut nodes: Vec<NodeInfo> = (0..3)
        .map(|i| info(node(&format!("n{i}"), "8", "16Gi"), vec![]))
        .collect();
    let mut r = rng();
    for i in 0..6 {
        let p = owned_by(pod(&format!("ns/r{i}"), "100m", "100Mi"), "rs-1");
        let name = schedule(&p, &nodes, &mut r).expect("fits");
        let n = nodes
            .iter_mut()
            .find(|n| n.name() == name)
            .expect("known node");
        n.add_pod(Arc::new(p));
    }
    let per_node: BTreeSet<usize> = nodes.iter().map(|n| n.pods().len()).collect();
    assert_eq!(per_node, BTreeSet::from([2]), "2 replicas on each node");
}

#[test]
fn pinned_pod_goes_to_its_node_and_single_feasible_is_returned() {
    let nodes = [
        info(node("a", "4", "8Gi"), vec![]),
        info(node("b", "4", "8Gi"), vec![]),
    ];
    let pinned = pod_spec(pod("ns/p", "", ""), "nodeName", json!("b"));
    assert_eq!(schedule(&pinned, &nodes, &mut rng()), Ok("b".to_string()));
}

/// Micro-benchmark: `cargo test --release -- --ignored --nocapture bench_`.
#[test]
#[ignore]
fn bench_1000_nodes_100_pods() {
    let mut nodes: Vec<NodeInfo> = (0..1000)
        .map(|i| {
            let n = crate::scheduler::testutil::with_labels(
                node(&format!("n{i}"), "32", "128Gi"),
                &[("topology.kubernetes.io/zone", ["a", "b", "c"][i % 3])],
            );
            info(
                n,
                (0..10)
                    .map(|j| owned_by(pod(&format!("ns/e{i}-{j}"), "100m", "128Mi"), "old"))
                    .collect(),
            )
        })
        .collect();
    let mut r = rng();
    let start = std::time::Instant::now();
    for i in 0..100 {
        let p = owned_by(pod(&format!("ns/new{i}"), "250m", "256Mi"), "rs-bench");
        let name = schedule(&p, &nodes, &mut r).expect("fits");
        if let Some(n) = nodes.iter_mut().find(|n| n.name() == name) {
            n.add_pod(Arc::new(p));
        }
    }
    let el = start.elapsed();
    println!(
        "schedule: 100 pods over 1000 nodes (10 pods each): {el:?} total, {:?} per pod",
        el / 100
    );
}
