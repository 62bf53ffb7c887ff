use super::*;
use crate::scheduler::testutil::{info, node, pod, pod_labels, pod_spec, with_labels};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

fn term(app: &str, key: &str) -> Value {
    json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
}

fn with_affinity(p: Pod, kind: &str, mode: &str, terms: Value) -> Pod {
    pod_spec(p, "affinity", json!({kind: {mode: terms}}))
}

const REQ: &str = "requiredDuringSchedulingIgnoredDuringExecution";
const PREF: &str = "preferredDuringSchedulingIgnoredDuringExecution";
const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

fn run(p: &Pod, nodes: &[NodeInfo]) -> Vec<FilterResult> {
    let facts = PodFacts::of(p);
    let (ns, labels) = (
        p.metadata.namespace.as_deref().unwrap_or(""),
        crate::scheduler::labels::labels_of(&p.metadata),
    );
    match pre_filter(ns, labels, &facts, nodes) {
        None => nodes.iter().map(|_| Ok(())).collect(),
        Some(s) => nodes
            .iter()
            .map(|n| filter(&s, ns, labels, &facts, n))
            .collect(),
    }
}

fn db(key: &str) -> Pod {
    pod_labels(pod(key, "", ""), &[("app", "db")])
}

fn err(s: &str) -> FilterResult {
    Err(vec![s.to_string()])
}

#[test]
fn required_affinity_on_hostname() {
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![db("ns/db")]),
        info(node("n2", "1", "1Gi"), vec![]),
    ];
    let p = with_affinity(
        pod("ns/p", "", ""),
        "podAffinity",
        REQ,
        json!([term("db", HOST)]),
    );
    assert_eq!(
        run(&p, &nodes),
        vec![Ok(()), err("node(s) didn't match pod affinity rules")]
    );
}

#[test]
fn required_affinity_on_zone_and_missing_label() {
    let z = |n: &str, zone: &str| with_labels(node(n, "1", "1Gi"), &[(ZONE, zone)]);
    let nodes = [
        info(z("n1", "a"), vec![db("ns/db")]),
        info(z("n2", "a"), vec![]),
        info(z("n3", "b"), vec![]),
        info(node("n4", "1", "1Gi"), vec![]),
    ];
    let p = with_affinity(
        pod("ns/p", "", ""),
        "podAffinity",
        REQ,
        json!([term("db", ZONE)]),
    );
    let e = err(REASON_AFFINITY);
    assert_eq!(run(&p, &nodes), vec![Ok(()), Ok(()), e.clone(), e]);
}

#[test]
fn self_affinity_lets_the_first_pod_in() {
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![]),
        info(node("n2", "1", "1Gi"), vec![]),
    ];
    let p = with_affinity(db("ns/p"), "podAffinity", REQ, json!([term("db", HOST)]));
    assert_eq!(run(&p, &nodes), vec![Ok(()), Ok(())]);
    let other = with_affinity(
        pod("ns/p", "", ""),
        "podAffinity",
        REQ,
        json!([term("db", HOST)]),
    );
    assert_eq!(
        run(&other, &nodes),
        vec![err(REASON_AFFINITY), err(REASON_AFFINITY)]
    );
}

#[test]
fn required_anti_affinity() {
    let web = pod_labels(pod("ns/w", "", ""), &[("app", "web")]);
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![web]),
        info(node("n2", "1", "1Gi"), vec![]),
    ];
    let p = with_affinity(
        pod("ns/p", "", ""),
        "podAntiAffinity",
        REQ,
        json!([term("web", HOST)]),
    );
    assert_eq!(
        run(&p, &nodes),
        vec![err("node(s) didn't match pod anti-affinity rules"), Ok(())]
    );
}

#[test]
fn existing_pods_anti_affinity() {
    let z = |n: &str, zone: &str| with_labels(node(n, "1", "1Gi"), &[(ZONE, zone)]);
    let guard = with_affinity(
        pod("ns/g", "", ""),
        "podAntiAffinity",
        REQ,
        json!([term("web", ZONE)]),
    );
    let nodes = [
        info(z("n1", "a"), vec![guard]),
        info(z("n2", "a"), vec![]),
        info(z("n3", "b"), vec![]),
    ];
    let web = pod_labels(pod("ns/p", "", ""), &[("app", "web")]);
    let e = err("node(s) didn't satisfy existing pods anti-affinity rules");
    assert_eq!(run(&web, &nodes), vec![e.clone(), e, Ok(())]);
    let other = pod("ns/q", "", "");
    let facts = PodFacts::of(&other);
    assert_eq!(
        pre_filter("ns", &Labels::new(), &facts, &nodes),
        None,
        "nothing applies: Skip"
    );
}

#[test]
fn term_namespaces() {
    let db_other = pod_labels(pod("other/db", "", ""), &[("app", "db")]);
    let nodes = [info(node("n1", "1", "1Gi"), vec![db_other])];
    let own_ns = with_affinity(
        pod("ns/p", "", ""),
        "podAffinity",
        REQ,
        json!([term("db", HOST)]),
    );
    assert_eq!(
        run(&own_ns, &nodes),
        vec![err(REASON_AFFINITY)],
        "term defaults to the pod's namespace"
    );
    let mut t = term("db", HOST);
    t["namespaces"] = json!(["other"]);
    let listed = with_affinity(pod("ns/p", "", ""), "podAffinity", REQ, json!([t]));
    assert_eq!(run(&listed, &nodes), vec![Ok(())]);
    let mut t = term("db", HOST);
    t["namespaceSelector"] = json!({});
    let all = with_affinity(pod("ns/p", "", ""), "podAffinity", REQ, json!([t]));
    assert_eq!(
        run(&all, &nodes),
        vec![Ok(())],
        "namespaceSelector {{}} selects all namespaces"
    );
}

fn scores(p: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
    let facts = PodFacts::of(p);
    let labels = crate::scheduler::labels::labels_of(&p.metadata);
    let Some(s) = pre_score("ns", labels, &facts, nodes) else {
        return vec![0; nodes.len()];
    };
    let mut v: Vec<i64> = nodes.iter().map(|n| score(&s, n)).collect();
    normalize(&mut v);
    v
}

#[test]
fn preferred_affinity_and_anti_affinity_scores() {
    let web = pod_labels(pod("ns/w", "", ""), &[("app", "web")]);
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![db("ns/db")]),
        info(node("n2", "1", "1Gi"), vec![]),
        info(node("n3", "1", "1Gi"), vec![web]),
    ];
    let pref = json!([
        {"weight": 10, "podAffinityTerm": term("db", HOST)}
    ]);
    let p = with_affinity(pod("ns/p", "", ""), "podAffinity", PREF, pref);
    assert_eq!(scores(&p, &nodes), vec![100, 0, 0]);
    let anti = json!([{"weight": 50, "podAffinityTerm": term("web", HOST)}]);
    let p = with_affinity(pod("ns/p", "", ""), "podAntiAffinity", PREF, anti);
    assert_eq!(
        scores(&p, &nodes),
        vec![100, 100, 0],
        "raw 0, 0, -50 scaled min-max"
    );
    assert_eq!(scores(&pod("ns/p", "", ""), &nodes), vec![0, 0, 0]);
}

#[test]
fn existing_pods_terms_count_in_score() {
    // An existing pod with required affinity to app=web attracts web pods (hard weight 1);
    // one with preferred anti-affinity (weight 20) repels them.
    let attract = with_affinity(
        pod("ns/a", "", ""),
        "podAffinity",
        REQ,
        json!([term("web", HOST)]),
    );
    let repel = with_affinity(
        pod("ns/r", "", ""),
        "podAntiAffinity",
        PREF,
        json!([{"weight": 20, "podAffinityTerm": term("web", HOST)}]),
    );
    let nodes = [
        info(node("n1", "1", "1Gi"), vec![attract]),
        info(node("n2", "1", "1Gi"), vec![]),
        info(node("n3", "1", "1Gi"), vec![repel]),
    ];
    let web = pod_labels(pod("ns/p", "", ""), &[("app", "web")]);
    let facts = PodFacts::of(&web);
    let s = pre_score(
        "ns",
        crate::scheduler::labels::labels_of(&web.metadata),
        &facts,
        &nodes,
    )
    .expect("state");
    let raw: Vec<i64> = nodes.iter().map(|n| score(&s, n)).collect();
    assert_eq!(raw, vec![1, 0, -20]);
    let mut v = raw;
    normalize(&mut v);
    assert_eq!(v, vec![100, 95, 0]);
}
