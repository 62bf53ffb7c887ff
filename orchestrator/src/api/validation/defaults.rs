//! kube-apiserver's defaulting of the built-in kinds (`SetDefaults_*` in
//! `pkg/apis/*/v1/defaults.go` and the declarative defaults of `zz_generated.defaults.go`), plus
//! the few create-time fills of the registry that complete an object (a Job's generated
//! selector, a Service's ipFamilyPolicy, a Secret's stringData).
//!
//! Not here, because they are admission plugins or allocators rather than defaulting: a Pod's
//! `serviceAccountName` (ServiceAccount admission), `priority`/`preemptionPolicy` (Priority
//! admission), the not-ready/unreachable tolerations (DefaultTolerationSeconds), a Service's
//! clusterIP(s), ipFamilies and node ports, and a Pod's status.

use serde_json::{json, Map, Value};

use super::pod_defaults;

/// Sets `obj[key] = value` unless the key holds a non-null value already.
pub(super) fn set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// The object under `key`, created empty when absent (or null).
pub(super) fn object<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    set(obj, key, json!({}));
    obj.get_mut(key).and_then(Value::as_object_mut)
}

/// Runs `f` on each object of the list under `key`.
pub(super) fn each(
    obj: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(&mut f);
    }
}

/// The value at a JSON pointer below `obj` (`/spec/template` is `obj["spec"]["template"]`).
fn at<'a>(obj: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let pointer = pointer.trim_start_matches('/');
    let (first, rest) = pointer.split_once('/').unwrap_or((pointer, ""));
    let v = obj.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        v.pointer(&format!("/{rest}"))
    }
}

pub(super) fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// See `super::default_object`.
pub(super) fn default_object(group: &str, kind: &str, value: &mut Value) {
    let v1 = value.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1");
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = object_at(obj, "spec") {
                pod_defaults::pod_spec(spec, true);
            }
        }
        ("", "PodTemplate") => template(obj),
        ("", "ReplicationController") => {
            let labels = at(obj, "/spec/template/metadata/labels")
                .filter(|l| !l.is_null())
                .cloned();
            if let (Some(labels), Some(spec)) = (labels, object_at(obj, "spec")) {
                if spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty)
                {
                    spec.insert("selector".into(), labels.clone());
                }
                if let Some(meta) = object(obj, "metadata") {
                    if meta
                        .get("labels")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty)
                    {
                        meta.insert("labels".into(), labels);
                    }
                }
            }
            replicas_and_template(obj);
        }
        ("", "Service") => service(obj),
        ("", "Namespace") => {
            let name = at(obj, "/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !name.is_empty() {
                if let Some(labels) = object(obj, "metadata").and_then(|m| object(m, "labels")) {
                    labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
                }
            }
            if let Some(status) = object(obj, "status") {
                set(status, "phase", json!("Active"));
            }
        }
        ("", "Secret") => secret(obj),
        ("", "PersistentVolumeClaim") => claim(obj),
        ("", "PersistentVolume") => {
            if let Some(spec) = object_at(obj, "spec") {
                set(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = object(obj, "status") {
                set(status, "phase", json!("Pending"));
            }
        }
        ("", "Endpoints") => each(obj, "subsets", |s| {
            each(s, "ports", |p| set(p, "protocol", json!("TCP")))
        }),
        ("discovery.k8s.io", "EndpointSlice") => each(obj, "ports", |p| {
            set(p, "name", json!(""));
            set(p, "protocol", json!("TCP"));
        }),
        ("apps", "Deployment") => {
            if let Some(spec) = object_at(obj, "spec") {
                set(spec, "replicas", json!(1));
                if let Some(strategy) = object(spec, "strategy") {
                    set(strategy, "type", json!("RollingUpdate"));
                    if text(strategy, "type") == "RollingUpdate" {
                        if let Some(ru) = object(strategy, "rollingUpdate") {
                            set(ru, "maxUnavailable", json!("25%"));
                            set(ru, "maxSurge", json!("25%"));
                        }
                    }
                }
                set(spec, "revisionHistoryLimit", json!(10));
                set(spec, "progressDeadlineSeconds", json!(600));
            }
            template_of(obj);
        }
        ("apps", "ReplicaSet") => replicas_and_template(obj),
        ("apps", "StatefulSet") => {
            if let Some(spec) = object_at(obj, "spec") {
                set(spec, "podManagementPolicy", json!("OrderedReady"));
                if let Some(strategy) = object(spec, "updateStrategy") {
                    if text(strategy, "type").is_empty() {
                        strategy.insert("type".into(), json!("RollingUpdate"));
                        set(strategy, "rollingUpdate", json!({}));
                    }
                    let rolling = text(strategy, "type") == "RollingUpdate";
                    if let Some(ru) = strategy
                        .get_mut("rollingUpdate")
                        .and_then(Value::as_object_mut)
                        .filter(|_| rolling)
                    {
                        set(ru, "partition", json!(0));
                    }
                }
                if let Some(policy) = object(spec, "persistentVolumeClaimRetentionPolicy") {
                    set(policy, "whenDeleted", json!("Retain"));
                    set(policy, "whenScaled", json!("Retain"));
                }
                set(spec, "replicas", json!(1));
                set(spec, "revisionHistoryLimit", json!(10));
                each(spec, "volumeClaimTemplates", claim);
            }
            template_of(obj);
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = object_at(obj, "spec") {
                if let Some(strategy) = object(spec, "updateStrategy") {
                    set(strategy, "type", json!("RollingUpdate"));
                    if text(strategy, "type") == "RollingUpdate" {
                        if let Some(ru) = object(strategy, "rollingUpdate") {
                            set(ru, "maxUnavailable", json!(1));
                            set(ru, "maxSurge", json!(0));
                        }
                    }
                }
                set(spec, "revisionHistoryLimit", json!(10));
            }
            template_of(obj);
        }
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => {
            if let Some(spec) = object_at(obj, "spec") {
                set(spec, "concurrencyPolicy", json!("Allow"));
                set(spec, "suspend", json!(false));
                set(spec, "successfulJobsHistoryLimit", json!(3));
                set(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(job_spec) = spec
                    .get_mut("jobTemplate")
                    .and_then(|t| t.get_mut("spec"))
                    .and_then(Value::as_object_mut)
                {
                    template(job_spec);
                }
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if let Some(spec) = object_at(obj, "spec") {
                set(spec, "minReplicas", json!(1));
                if !v1 {
                    hpa_v2(spec);
                }
            }
        }
        _ => {}
    }
}

/// The object under `key` when it is one (not created when absent).
pub(super) fn object_at<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    obj.get_mut(key).and_then(Value::as_object_mut)
}

/// `spec.replicas` 1 and the pod template's defaults (ReplicaSet, ReplicationController).
fn replicas_and_template(obj: &mut Map<String, Value>) {
    if let Some(spec) = object_at(obj, "spec") {
        set(spec, "replicas", json!(1));
    }
    template_of(obj);
}

/// The pod template under `spec.template` of a workload.
fn template_of(obj: &mut Map<String, Value>) {
    if let Some(spec) = object_at(obj, "spec") {
        template(spec);
    }
}

/// The pod spec defaults inside the `template` of `parent`.
fn template(parent: &mut Map<String, Value>) {
    if let Some(spec) = object_at(parent, "template").and_then(|t| object_at(t, "spec")) {
        pod_defaults::pod_spec(spec, false);
    }
}

/// `SetDefaults_Service`, and the ipFamilyPolicy the Service registry fills on create.
fn service(obj: &mut Map<String, Value>) {
    let Some(spec) = object_at(obj, "spec") else {
        return;
    };
    set(spec, "sessionAffinity", json!("None"));
    match text(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let timeout = at(spec, "/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_some_and(|t| !t.is_null());
            if !timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set(spec, "type", json!("ClusterIP"));
    each(spec, "ports", |p| {
        set(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(t) => t.as_i64() == Some(0),
        };
        if unset {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            p.insert("targetPort".into(), port);
        }
    });
    let ty = text(spec, "type").to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if matches!(ty.as_str(), "LoadBalancer" | "NodePort") || (ty == "ClusterIP" && has_external_ips)
    {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        let headless = text(spec, "clusterIP") == "None";
        let no_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let two_families = spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_some_and(|f| f.len() == 2);
        let policy = if (headless && no_selector) || two_families {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set(spec, "ipFamilyPolicy", json!(policy));
    }
    if ty == "LoadBalancer" {
        if let Some(ingress) = obj
            .get_mut("status")
            .and_then(|s| s.pointer_mut("/loadBalancer/ingress"))
            .and_then(Value::as_array_mut)
        {
            for i in ingress.iter_mut().filter_map(Value::as_object_mut) {
                if !text(i, "ip").is_empty() {
                    set(i, "ipMode", json!("VIP"));
                }
            }
        }
    }
}

/// `SetDefaults_Secret`, after the v1 conversion folds `stringData` into `data` (base64).
fn secret(obj: &mut Map<String, Value>) {
    set(obj, "type", json!("Opaque"));
    if let Some(Value::Object(plain)) = obj.remove("stringData") {
        if let Some(data) = object(obj, "data") {
            for (k, v) in plain {
                data.insert(
                    k,
                    Value::String(base64(v.as_str().unwrap_or_default().as_bytes())),
                );
            }
        }
    }
}

/// Standard base64 with padding, as Go's encoding/json writes a `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `SetDefaults_PersistentVolumeClaim` and its spec's (also for a StatefulSet's claim
/// templates).
fn claim(obj: &mut Map<String, Value>) {
    if let Some(spec) = object_at(obj, "spec") {
        set(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = object(obj, "status") {
        set(status, "phase", json!("Pending"));
    }
}

/// `SetDefaults_Job`, then the Job registry's generated selector: the pods get `job-name` and
/// `controller-uid` labels (plain and `batch.kubernetes.io/`) and the selector matches the uid.
fn job(obj: &mut Map<String, Value>) {
    let name = at(obj, "/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = at(obj, "/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let template_labels = at(obj, "/spec/template/metadata/labels")
        .filter(|l| !l.is_null())
        .cloned();
    if let (Some(labels), Some(meta)) = (template_labels, object(obj, "metadata")) {
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), labels);
        }
    }
    let Some(spec) = object_at(obj, "spec") else {
        return;
    };
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null());
    set(
        spec,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    set(
        spec,
        "podReplacementPolicy",
        json!(if failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    set(spec, "manualSelector", json!(false));
    if let Some(policy) = object_at(spec, "podFailurePolicy") {
        each(policy, "rules", |r| {
            each(r, "onPodConditions", |c| set(c, "status", json!("True")))
        });
    }
    if spec.get("manualSelector").and_then(Value::as_bool) != Some(true) {
        if let Some(labels) = object(spec, "template")
            .and_then(|t| object(t, "metadata"))
            .and_then(|m| object(m, "labels"))
        {
            for (label, value) in [
                ("job-name", &name),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("batch.kubernetes.io/controller-uid", &uid),
            ] {
                set(labels, label, json!(value));
            }
        }
        if let Some(match_labels) = object(spec, "selector").and_then(|s| object(s, "matchLabels"))
        {
            set(
                match_labels,
                "batch.kubernetes.io/controller-uid",
                json!(uid),
            );
        }
    }
    template(spec);
}

/// `SetDefaults_HorizontalPodAutoscaler` of autoscaling/v2: an 80% CPU target when no metric is
/// given, and a behavior's unset scaling rules filled from the built-in ones.
fn hpa_v2(spec: &mut Map<String, Value>) {
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let cpu = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        spec.insert("metrics".into(), cpu);
    }
    let Some(behavior) = object_at(spec, "behavior") else {
        return;
    };
    let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15}]});
    let down = json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]});
    for (direction, defaults) in [("scaleUp", up), ("scaleDown", down)] {
        let Some(rules) = object(behavior, direction) else {
            continue;
        };
        if let Value::Object(defaults) = defaults {
            for (k, v) in defaults {
                set(rules, &k, v);
            }
        }
    }
}
