use super::*;
use crate::scheduler::testutil::{info, node, owned_by, pod, pod_labels, pod_spec, with_labels};
use serde_json::json;

fn zoned(n: &str, zone: &str) -> k8s_openapi::api::core::v1::Node {
    with_labels(node(n, "1", "1Gi"), &[(LABEL_ZONE, zone)])
}

fn rs(key: &str) -> Pod {
    owned_by(pod(key, "", ""), "rs-1")
}

fn scores(p: &Pod, nodes: &[NodeInfo]) -> Option<Vec<i64>> {
    let facts = PodFacts::of(p);
    let req = RequiredNodeAffinity::of_pod(p);
    let feasible: Vec<usize> = (0..nodes.len()).collect();
    let s = pre_score(p, &facts, &req, nodes, &feasible)?;
    let mut v: Vec<i64> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| score(&s, i, n, "ns"))
        .collect();
    normalize(&s, &mut v);
    Some(v)
}

#[test]
fn default_constraints_prefer_nodes_with_fewer_replicas() {
    let nodes = [
        info(zoned("n1", "a"), vec![rs("ns/r1"), rs("ns/r2")]),
        info(zoned("n2", "a"), vec![pod("ns/other", "", "")]),
        info(zoned("n3", "a"), vec![rs("ns/r3")]),
    ];
    // raw: n1 round(2 ln5 + 2 + 3 ln3 + 4) = 13, n2 9, n3 11; 100 * (13 + 9 - s) / 13.
    assert_eq!(scores(&rs("ns/new"), &nodes), Some(vec![69, 100, 84]));
    assert_eq!(
        scores(&pod("ns/bare", "", ""), &nodes),
        None,
        "no controller: no default constraint"
    );
}

#[test]
fn default_constraints_spread_across_zones() {
    let nodes = [
        info(zoned("n1", "a"), vec![rs("ns/r1")]),
        info(zoned("n2", "a"), vec![]),
        info(zoned("n3", "b"), vec![]),
        info(node("n4", "1", "1Gi"), vec![]),
    ];
    let s = scores(&rs("ns/new"), &nodes).expect("scored");
    assert!(
        s[2] > s[1] && s[1] > s[0],
        "empty zone b beats zone a: {s:?}"
    );
    assert!(
        s[3] > 0,
        "a node without zone label is not ignored by defaults: {s:?}"
    );
}

fn spread_pod(when: &str, max_skew: i32, extra: serde_json::Value) -> Pod {
    let mut c = json!({
        "maxSkew": max_skew, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}}
    });
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    pod_labels(
        pod_spec(pod("ns/p", "", ""), "topologySpreadConstraints", json!([c])),
        &[("app", "web")],
    )
}

fn web(key: &str) -> Pod {
    pod_labels(pod(key, "", ""), &[("app", "web")])
}

fn run_filter(p: &Pod, nodes: &[NodeInfo]) -> Vec<FilterResult> {
    let facts = PodFacts::of(p);
    let req = RequiredNodeAffinity::of_pod(p);
    let s = pre_filter(p, &facts, &req, nodes).expect("has DoNotSchedule constraints");
    let labels = crate::scheduler::labels::labels_of(&p.metadata);
    nodes
        .iter()
        .map(|n| filter(&s, labels, &facts, n))
        .collect()
}

#[test]
fn do_not_schedule_skew_and_missing_label() {
    let nodes = [
        info(zoned("n1", "a"), vec![web("ns/w1"), web("ns/w2")]),
        info(zoned("n2", "b"), vec![]),
        info(node("n3", "1", "1Gi"), vec![]),
    ];
    let p = spread_pod("DoNotSchedule", 1, json!({}));
    assert_eq!(
        run_filter(&p, &nodes),
        vec![
            Err(vec![
                "node(s) didn't match pod topology spread constraints".to_string()
            ]),
            Ok(()),
            Err(vec![
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .to_string()
            ]),
        ]
    );
    let facts = PodFacts::of(&p);
    assert!(pre_filter(
        &spread_pod("ScheduleAnyway", 1, json!({})),
        &facts,
        &RequiredNodeAffinity::of_pod(&p),
        &nodes
    )
    .is_none());
}

#[test]
fn min_domains_zeroes_the_global_minimum() {
    let nodes = [
        info(zoned("n1", "a"), vec![web("ns/w1")]),
        info(zoned("n2", "b"), vec![web("ns/w2")]),
    ];
    let p = spread_pod("DoNotSchedule", 1, json!({}));
    assert_eq!(run_filter(&p, &nodes), vec![Ok(()), Ok(())]);
    let p = spread_pod("DoNotSchedule", 1, json!({"minDomains": 3}));
    let e = Err(vec![REASON_SPREAD.to_string()]);
    assert_eq!(run_filter(&p, &nodes), vec![e.clone(), e]);
}

#[test]
fn own_schedule_anyway_constraint_scores_and_ignores_unlabeled_nodes() {
    let nodes = [
        info(zoned("n1", "a"), vec![web("ns/w1"), web("ns/w2")]),
        info(zoned("n2", "b"), vec![web("ns/w3")]),
        info(zoned("n3", "c"), vec![]),
        info(node("n4", "1", "1Gi"), vec![]),
    ];
    let s = scores(&spread_pod("ScheduleAnyway", 1, json!({})), &nodes).expect("scored");
    // weight ln(3 + 2); raw = round(count * 1.609): 3, 2, 0 -> 100 * (3 + 0 - s) / 3.
    assert_eq!(s, vec![0, 33, 100, 0]);
}
