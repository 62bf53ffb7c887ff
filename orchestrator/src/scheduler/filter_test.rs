use super::*;
use crate::scheduler::node_info::pod_host_ports;
use crate::scheduler::resources::pod_requests;
use crate::scheduler::testutil::{from, info, node, pod, pod_spec, with_labels, with_taint};
use k8s_openapi::api::core::v1::Node;
use serde_json::json;

fn cordoned(mut n: Node) -> Node {
    n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    n
}

fn tolerations(v: serde_json::Value) -> Vec<Toleration> {
    from(v)
}

fn err(s: &str) -> FilterResult {
    Err(vec![s.to_string()])
}

#[test]
fn node_unschedulable_pass_fail_and_toleration() {
    let ok = info(node("n", "1", "1Gi"), vec![]);
    assert_eq!(node_unschedulable(&[], &ok), Ok(()));
    let cordon = info(cordoned(node("n", "1", "1Gi")), vec![]);
    assert_eq!(
        node_unschedulable(&[], &cordon),
        err("node(s) were unschedulable")
    );
    let tol = tolerations(
        json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
    );
    assert_eq!(node_unschedulable(&tol, &cordon), Ok(()));
    let wrong = tolerations(
        json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}]),
    );
    assert_eq!(
        node_unschedulable(&wrong, &cordon),
        err(REASON_UNSCHEDULABLE)
    );
}

#[test]
fn node_name_pass_and_fail() {
    let n1 = info(node("n1", "1", "1Gi"), vec![]);
    let any = pod("ns/p", "", "");
    assert_eq!(node_name(&any, &n1), Ok(()));
    let pinned = pod_spec(pod("ns/p", "", ""), "nodeName", json!("n1"));
    assert_eq!(node_name(&pinned, &n1), Ok(()));
    let n2 = info(node("n2", "1", "1Gi"), vec![]);
    assert_eq!(
        node_name(&pinned, &n2),
        err("node(s) didn't match the requested node name")
    );
}

#[test]
fn taint_toleration_reports_first_untolerated_taint() {
    let n = with_taint(node("n", "1", "1Gi"), "soft", "x", "PreferNoSchedule");
    let n = with_taint(n, "dedicated", "gpu", "NoSchedule");
    let n = with_taint(n, "evict", "", "NoExecute");
    let ni = info(n, vec![]);
    assert_eq!(
        taint_toleration(&[], &ni),
        err("node(s) had untolerated taint {dedicated: gpu}")
    );
    let tol = tolerations(json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
    assert_eq!(
        taint_toleration(&tol, &ni),
        err("node(s) had untolerated taint {evict: }")
    );
    let all = tolerations(json!([{"operator": "Exists"}]));
    assert_eq!(taint_toleration(&all, &ni), Ok(()));
    let only_soft = info(
        with_taint(node("n", "1", "1Gi"), "soft", "x", "PreferNoSchedule"),
        vec![],
    );
    assert_eq!(
        taint_toleration(&[], &only_soft),
        Ok(()),
        "PreferNoSchedule never filters"
    );
}

fn affinity_pod(terms: serde_json::Value) -> Pod {
    pod_spec(
        pod("ns/p", "", ""),
        "affinity",
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}),
    )
}

#[test]
fn node_affinity_node_selector() {
    let p = pod_spec(pod("ns/p", "", ""), "nodeSelector", json!({"disk": "ssd"}));
    let req = RequiredNodeAffinity::of_pod(&p);
    let ssd = info(
        with_labels(node("a", "1", "1Gi"), &[("disk", "ssd")]),
        vec![],
    );
    let hdd = info(
        with_labels(node("b", "1", "1Gi"), &[("disk", "hdd")]),
        vec![],
    );
    assert_eq!(node_affinity(&req, &ssd), Ok(()));
    assert_eq!(
        node_affinity(&req, &hdd),
        err("node(s) didn't match Pod's node affinity/selector")
    );
}

#[test]
fn node_affinity_all_operators() {
    let n = info(
        with_labels(node("n1", "1", "1Gi"), &[("zone", "a"), ("cores", "8")]),
        vec![],
    );
    let cases = [
        (
            json!({"key": "zone", "operator": "In", "values": ["a", "b"]}),
            true,
        ),
        (
            json!({"key": "zone", "operator": "In", "values": ["b"]}),
            false,
        ),
        (
            json!({"key": "zone", "operator": "NotIn", "values": ["b"]}),
            true,
        ),
        (
            json!({"key": "zone", "operator": "NotIn", "values": ["a"]}),
            false,
        ),
        (json!({"key": "zone", "operator": "Exists"}), true),
        (json!({"key": "gpu", "operator": "Exists"}), false),
        (json!({"key": "gpu", "operator": "DoesNotExist"}), true),
        (json!({"key": "zone", "operator": "DoesNotExist"}), false),
        (
            json!({"key": "cores", "operator": "Gt", "values": ["4"]}),
            true,
        ),
        (
            json!({"key": "cores", "operator": "Gt", "values": ["8"]}),
            false,
        ),
        (
            json!({"key": "cores", "operator": "Lt", "values": ["16"]}),
            true,
        ),
        (
            json!({"key": "cores", "operator": "Lt", "values": ["8"]}),
            false,
        ),
    ];
    for (expr, want) in cases {
        let p = affinity_pod(json!([{"matchExpressions": [expr.clone()]}]));
        let got = node_affinity(&RequiredNodeAffinity::of_pod(&p), &n);
        assert_eq!(got.is_ok(), want, "{expr}");
    }
    let by_name = affinity_pod(
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]),
    );
    assert_eq!(
        node_affinity(&RequiredNodeAffinity::of_pod(&by_name), &n),
        Ok(())
    );
    let other = affinity_pod(
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]),
    );
    assert_eq!(
        node_affinity(&RequiredNodeAffinity::of_pod(&other), &n),
        err(REASON_NODE_AFFINITY)
    );
}

#[test]
fn node_affinity_pre_filter_node_names() {
    let pin = |names: &[&str]| json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": names}]});
    let p = affinity_pod(json!([pin(&["a", "b"]), pin(&["c"])]));
    let want: std::collections::HashSet<String> =
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(node_affinity_pre_filter(&p), NodeNamesPreFilter::Only(want));
    let conflict = affinity_pod(json!([{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["a"]},
        {"key": "metadata.name", "operator": "In", "values": ["b"]}
    ]}]));
    assert_eq!(
        node_affinity_pre_filter(&conflict),
        NodeNamesPreFilter::Conflict
    );
    let mixed = affinity_pod(
        json!([pin(&["a"]), {"matchExpressions": [{"key": "x", "operator": "Exists"}]}]),
    );
    assert_eq!(
        node_affinity_pre_filter(&mixed),
        NodeNamesPreFilter::AllNodes
    );
    assert_eq!(
        node_affinity_pre_filter(&pod("ns/p", "", "")),
        NodeNamesPreFilter::AllNodes
    );
}

#[test]
fn node_ports_conflicts() {
    let with_port = |key: &str, port: i32, ip: &str| {
        pod_spec(
            pod(key, "", ""),
            "containers",
            json!([{"name": "c", "ports": [
                {"containerPort": 80, "hostPort": port, "hostIP": ip}
            ]}]),
        )
    };
    let ni = info(
        node("n", "1", "1Gi"),
        vec![with_port("ns/a", 8080, "10.0.0.1")],
    );
    let same = pod_host_ports(&with_port("ns/b", 8080, ""));
    assert_eq!(
        node_ports(&same, &ni),
        err("node(s) didn't have free ports for the requested pod ports")
    );
    let other_ip = pod_host_ports(&with_port("ns/b", 8080, "10.0.0.2"));
    assert_eq!(node_ports(&other_ip, &ni), Ok(()));
    let other_port = pod_host_ports(&with_port("ns/b", 9090, ""));
    assert_eq!(node_ports(&other_port, &ni), Ok(()));
}

#[test]
fn node_resources_fit_each_reason() {
    let ni = info(node("n", "1", "1Gi"), vec![pod("ns/a", "600m", "512Mi")]);
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "400m", "512Mi")), &ni),
        Ok(())
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "500m", "1")), &ni),
        err("Insufficient cpu")
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "1m", "600Mi")), &ni),
        err("Insufficient memory")
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "2", "2Gi")), &ni),
        Err(vec![
            "Insufficient cpu".to_string(),
            "Insufficient memory".to_string()
        ]),
        "all reasons are reported"
    );
    let eph = pod_spec(
        pod("ns/p", "", ""),
        "containers",
        json!([{"name": "c", "resources": {"requests": {"ephemeral-storage": "1Gi"}}}]),
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&eph), &ni),
        err("Insufficient ephemeral-storage")
    );
    let gpu = pod_spec(
        pod("ns/p", "", ""),
        "containers",
        json!([{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]),
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&gpu), &ni),
        err("Insufficient nvidia.com/gpu")
    );
}

#[test]
fn node_resources_fit_too_many_pods() {
    let n: Node = from(json!({
        "metadata": {"name": "n"},
        "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "1"}}
    }));
    let ni = info(n, vec![pod("ns/a", "", "")]);
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "", "")), &ni),
        err("Too many pods")
    );
    assert_eq!(
        node_resources_fit(&pod_requests(&pod("ns/p", "2", "")), &ni),
        Err(vec![
            "Too many pods".to_string(),
            "Insufficient cpu".to_string()
        ])
    );
}
