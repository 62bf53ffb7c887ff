//! Test builders (compiled only for tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use crate::scheduler::node_info::NodeInfo;

/// Deserializes a JSON value into a k8s-openapi type, panicking on mistakes in tests.
pub fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test object must deserialize")
}

/// A node with allocatable cpu/memory/pods 110 and its hostname label.
pub fn node(name: &str, cpu: &str, mem: &str) -> Node {
    from(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}
    }))
}

/// Adds labels to a node.
pub fn with_labels(mut n: Node, labels: &[(&str, &str)]) -> Node {
    let m = n.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in labels {
        m.insert(k.to_string(), v.to_string());
    }
    n
}

/// Adds a taint to a node.
pub fn with_taint(mut n: Node, key: &str, value: &str, effect: &str) -> Node {
    let spec = n.spec.get_or_insert_with(Default::default);
    spec.taints.get_or_insert_with(Vec::new).push(from(json!({
        "key": key, "value": value, "effect": effect
    })));
    n
}

/// A pod "ns/name" with one container requesting cpu/memory ("" = no request).
pub fn pod(key: &str, cpu: &str, mem: &str) -> Pod {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    let mut req = serde_json::Map::new();
    if !cpu.is_empty() {
        req.insert("cpu".into(), json!(cpu));
    }
    if !mem.is_empty() {
        req.insert("memory".into(), json!(mem));
    }
    from(json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}
    }))
}

/// Adds labels to a pod.
pub fn pod_labels(mut p: Pod, labels: &[(&str, &str)]) -> Pod {
    let m = p.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in labels {
        m.insert(k.to_string(), v.to_string());
    }
    p
}

/// Sets a pod's spec field from JSON (merged at the top level of `spec`).
pub fn pod_spec(p: Pod, field: &str, v: Value) -> Pod {
    let mut j = serde_json::to_value(&p).expect("pod serializes");
    j["spec"][field] = v;
    from(j)
}

/// Sets the controller owner reference of a pod.
pub fn owned_by(mut p: Pod, uid: &str) -> Pod {
    p.metadata.owner_references = Some(vec![from(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true
    }))]);
    p
}

/// A NodeInfo holding the given pods.
pub fn info(n: Node, pods: Vec<Pod>) -> NodeInfo {
    let mut ni = NodeInfo::new(n);
    for p in pods {
        ni.add_pod(Arc::new(p));
    }
    ni
}
