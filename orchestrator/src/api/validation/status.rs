//! The status a new object starts with, as kube-apiserver's registry strategies set it on
//! create (`PrepareForCreate`): a Namespace is Active and held by the `kubernetes` finalizer; a
//! Pod is Pending, with its QoS class (`qos.GetPodQOS`).

use serde_json::{json, Map, Value};

use super::resources::quantity;

/// The finalizer kube-apiserver puts in every Namespace's spec: the namespace controller's.
const NAMESPACE_FINALIZER: &str = "kubernetes";

/// The resources QoS is decided on.
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// Sets the status a new object of `kind` starts with.
pub(super) fn initial_status(group: &str, kind: &str, object: &mut Value) {
    match (group, kind) {
        ("", "Namespace") => {
            object["status"] = json!({"phase": "Active"});
            let spec = &mut object["spec"];
            if !spec.is_object() {
                *spec = json!({});
            }
            let finalizers = &mut spec["finalizers"];
            if !finalizers.is_array() {
                *finalizers = json!([]);
            }
            let list = finalizers.as_array_mut().expect("an array");
            if !list.iter().any(|f| f == NAMESPACE_FINALIZER) {
                list.push(json!(NAMESPACE_FINALIZER));
            }
        }
        ("", "Pod") => {
            let qos = qos_class(&object["spec"]);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        _ => {}
    }
}

/// `GetPodQOS`: BestEffort when no container asks for or is limited in CPU or memory;
/// Guaranteed when every container is limited in both, and asks for what it is limited to;
/// Burstable otherwise.
pub(super) fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let empty = Map::new();
        let requests = c
            .pointer("/resources/requests")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let limits = c
            .pointer("/resources/limits")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for r in QOS_RESOURCES {
            let (request, limit) = (
                requests.get(r).and_then(quantity),
                limits.get(r).and_then(quantity),
            );
            // A zero request counts as none (kube skips zero quantities).
            if request.is_some_and(|q| q != 0.0) || limit.is_some_and(|q| q != 0.0) {
                any = true;
            }
            match (request, limit) {
                (_, None) => guaranteed = false,
                (Some(req), Some(lim)) if req != lim => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: Value) -> Value {
        json!({"containers": containers})
    }

    #[test]
    fn qos_classes_as_kubernetes_decides_them() {
        assert_eq!(qos_class(&pod(json!([{"name": "a"}]))), "BestEffort");
        let both = json!({"cpu": "500m", "memory": "64Mi"});
        let same =
            json!([{"resources": {"limits": both, "requests": {"cpu": "0.5", "memory": "64Mi"}}}]);
        assert_eq!(qos_class(&pod(same)), "Guaranteed", "500m is 0.5");
        let only_limits = json!([{"resources": {"limits": both}}]);
        assert_eq!(qos_class(&pod(only_limits)), "Guaranteed");
        let less = json!([{"resources": {"limits": both, "requests": {"cpu": "100m"}}}]);
        assert_eq!(qos_class(&pod(less)), "Burstable");
        let one_unlimited = json!([{"resources": {"limits": both}}, {"name": "b"}]);
        assert_eq!(qos_class(&pod(one_unlimited)), "Burstable");
        let cpu_only = json!([{"resources": {"limits": {"cpu": "1"}}}]);
        assert_eq!(qos_class(&pod(cpu_only)), "Burstable");
    }

    #[test]
    fn new_namespaces_and_pods_start_with_their_status() {
        let mut ns = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["x"]}});
        initial_status("", "Namespace", &mut ns);
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(ns["spec"]["finalizers"], json!(["x", "kubernetes"]));
        let mut p =
            json!({"spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}});
        initial_status("", "Pod", &mut p);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }
}
