//! Tests for server-side printing: cells per resource against kube-apiserver's printers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;

/// The server's clock in every case: 2024-05-01T12:00:00Z.
const NOW_SECS: i64 = 1_714_564_800;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS as u64)
}

/// The RFC 3339 timestamp `secs` seconds before NOW.
fn ago(secs: i64) -> String {
    rfc3339_utc(Some(i128::from(NOW_SECS - secs) * 1_000_000_000))
}

/// An object with a name, created five minutes before NOW, and `rest` merged in.
fn obj(name: &str, rest: Value) -> Value {
    let mut o = json!({"metadata": {"name": name, "creationTimestamp": ago(300)}});
    if let (Some(o), Some(rest)) = (o.as_object_mut(), rest.as_object()) {
        for (k, v) in rest {
            if k == "metadata" {
                for (mk, mv) in v.as_object().unwrap() {
                    o["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .insert(mk.clone(), mv.clone());
                }
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    o
}

/// The single row of a one-object table.
fn row(group: &str, resource: &str, object: Value) -> Value {
    let t = table(
        group,
        resource,
        &[object],
        now(),
        IncludeObject::None,
        json!({}),
    );
    t["rows"][0].clone()
}

/// The cells of a one-object table, as strings (numbers and bools via their JSON text).
fn cells(group: &str, resource: &str, object: Value) -> Vec<String> {
    let r = row(group, resource, object);
    r["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
        .collect()
}

fn column_names(group: &str, resource: &str, priority: u64) -> Vec<String> {
    let t = table(group, resource, &[], now(), IncludeObject::None, json!({}));
    let cols = t["columnDefinitions"].as_array().unwrap();
    cols.iter()
        .filter(|c| c["priority"] == priority)
        .map(|c| c["name"].as_str().unwrap().to_uppercase())
        .collect()
}

#[test]
fn human_duration_boundaries() {
    let cases = [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 1800, "3h30m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (48 * 3600 - 1, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (730 * 86400 - 1, "729d"),
        (730 * 86400, "2y"),
        (760 * 86400, "2y30d"),
        (8 * 365 * 86400, "8y"),
        (10 * 365 * 86400 + 86400, "10y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
    }
    assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
    // A clock skew of under two seconds reads as now; more is invalid.
    assert_eq!(human_nanos(-1_500_000_000), "0s");
    assert_eq!(human_nanos(-2_000_000_000), "<invalid>");
}

#[test]
fn timestamps() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
    assert_eq!(
        parse_rfc3339("2024-05-01T12:00:00Z"),
        Some(i128::from(NOW_SECS) * 1_000_000_000)
    );
    assert_eq!(parse_rfc3339("2024-05-01 12:00:00"), None);
    assert_eq!(
        rfc3339_utc(parse_rfc3339("2024-02-29T23:59:59.9-01:00")),
        "2024-03-01T00:59:59Z"
    );
    assert_eq!(rfc3339_utc(None), "0001-01-01T00:00:00Z");
    // Go's zero time is "unset": its age is unknown.
    let never = obj(
        "p",
        json!({"metadata": {"creationTimestamp": "0001-01-01T00:00:00Z"}}),
    );
    assert_eq!(cells("", "namespaces", never)[2], "<unknown>");
    assert_eq!(
        cells("", "namespaces", json!({"metadata": {"name": "x"}}))[2],
        "<unknown>"
    );
}

fn pod(rest: Value) -> Value {
    let mut p = obj(
        "web",
        json!({"spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
    );
    for (k, v) in rest.as_object().unwrap() {
        if k == "spec" || k == "status" || k == "metadata" {
            for (sk, sv) in v.as_object().unwrap() {
                p[k.as_str()][sk.as_str()] = sv.clone();
            }
        } else {
            p[k.as_str()] = v.clone();
        }
    }
    p
}

fn pod_cells(rest: Value) -> Vec<String> {
    cells("", "pods", pod(rest))[..5].to_vec()
}

#[test]
fn pod_states() {
    let running = json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(290)}}}]}});
    assert_eq!(pod_cells(running), ["web", "1/1", "Running", "0", "5m"]);

    let crashing = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(150)}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
    assert_eq!(
        pod_cells(crashing),
        ["web", "1/2", "CrashLoopBackOff", "3 (2m30s ago)", "5m"]
    );

    let completed = json!({"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "app", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
    assert_eq!(
        pod_cells(completed.clone()),
        ["web", "0/1", "Completed", "0", "5m"]
    );
    let r = row("", "pods", pod(completed));
    assert_eq!(
        r["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
        "message": "The pod has completed successfully."}])
    );

    let terminating = json!({"metadata": {"deletionTimestamp": ago(-30)}, "status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "ready": true, "state": {"running": {}}}]}});
    assert_eq!(pod_cells(terminating)[2], "Terminating");
    let lost = json!({"metadata": {"deletionTimestamp": ago(0)}, "status": {"phase": "Running", "reason": "NodeLost"}});
    assert_eq!(pod_cells(lost)[2], "Unknown");

    let init = json!({"spec": {"initContainers": [{"name": "setup"}]}, "status": {"phase": "Pending",
        "initContainerStatuses": [{"name": "setup", "ready": false, "state": {"running": {}}}],
        "containerStatuses": [{"name": "app", "ready": false, "state": {"waiting": {"reason": "PodInitializing"}}}]}});
    assert_eq!(pod_cells(init), ["web", "0/1", "Init:0/1", "0", "5m"]);
    let init_failed = json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Pending",
        "initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0}}},
                                  {"name": "b", "restartCount": 2, "state": {"terminated": {"exitCode": 2}}}]}});
    assert_eq!(pod_cells(init_failed)[2..4], ["Init:ExitCode:2", "2"]);
    let init_backoff = json!({"spec": {"initContainers": [{"name": "a"}]}, "status": {"phase": "Pending",
        "initContainerStatuses": [{"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
    assert_eq!(pod_cells(init_backoff)[2], "Init:CrashLoopBackOff");

    assert_eq!(
        pod_cells(json!({"status": {"phase": "Pending"}})),
        ["web", "0/1", "Pending", "0", "5m"]
    );
    let creating = json!({"status": {"phase": "Pending", "containerStatuses": [
        {"name": "app", "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
    assert_eq!(pod_cells(creating)[2], "ContainerCreating");
    let gated = json!({"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
    assert_eq!(pod_cells(gated)[2], "SchedulingGated");
    let killed = json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
    assert_eq!(pod_cells(killed)[2], "Signal:9");
    // A finished container beside a running one: Running once the pod is Ready.
    let mixed = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
        {"name": "a", "ready": true, "state": {"running": {}}},
        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
    assert_eq!(pod_cells(mixed)[1..3], ["1/2", "Running"]);
}

#[test]
fn pod_sidecar_and_wide() {
    let p = pod(json!({
        "spec": {"nodeName": "node-1", "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                 "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.7",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "example.com/lb", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                "lastState": {"terminated": {"finishedAt": ago(60)}}, "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}}));
    assert_eq!(
        cells("", "pods", p),
        [
            "web",
            "2/2",
            "Running",
            "1 (60s ago)",
            "5m",
            "10.0.0.7",
            "node-1",
            "<none>",
            "1/2"
        ]
    );
    assert_eq!(
        column_names("", "pods", 0),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );
    assert_eq!(
        column_names("", "pods", 1),
        ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    );
    let bare = cells("", "pods", pod(json!({"status": {"phase": "Pending"}})));
    assert_eq!(bare[5..], ["<none>", "<none>", "<none>", "<none>"]);
}

#[test]
fn deployment_columns() {
    let d = obj(
        "web",
        json!({
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]}, {"key": "canary", "operator": "DoesNotExist"}]},
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
    );
    let r = row("apps", "deployments", d);
    assert_eq!(
        r["cells"],
        json!([
            "web",
            "2/3",
            3,
            2,
            "5m",
            "app,log",
            "nginx:1.27,busybox",
            "app=web,!canary,tier in (edge,front)"
        ])
    );
    assert_eq!(
        column_names("apps", "deployments", 0),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(
        column_names("apps", "deployments", 1),
        ["CONTAINERS", "IMAGES", "SELECTOR"]
    );
    // Replicas default to 1; an empty selector prints as nothing, a bad one as <invalid>.
    let bare = obj("d", json!({"spec": {"selector": {}}}));
    assert_eq!(
        cells("apps", "deployments", bare),
        ["d", "0/1", "0", "0", "5m", "", "", ""]
    );
    let bad = obj(
        "d",
        json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}}),
    );
    assert_eq!(cells("apps", "deployments", bad)[7], "<invalid>");
    let rs = obj(
        "rs",
        json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1}}),
    );
    assert_eq!(
        cells("apps", "replicasets", rs),
        ["rs", "2", "2", "1", "5m", "", "", "<none>"]
    );
}

#[test]
fn service_columns() {
    let svc = obj(
        "web",
        json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30001}], "selector": {"app": "web", "a.b": "c"}}}),
    );
    assert_eq!(
        cells("", "services", svc),
        [
            "web",
            "NodePort",
            "10.96.0.10",
            "<none>",
            "80/TCP,443:30001/TCP",
            "5m",
            "a.b=c,app=web"
        ]
    );
    assert_eq!(
        column_names("", "services", 0),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let lb = obj(
        "lb",
        json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.1"], "externalIPs": ["1.1.1.1"]},
        "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}, {"hostname": "lb.example.com"}]}}}),
    );
    assert_eq!(
        cells("", "services", lb)[3..5],
        ["9.9.9.9,lb.example.com,1.1.1.1", "<none>"]
    );
    let pending = obj("lb", json!({"spec": {"type": "LoadBalancer"}}));
    assert_eq!(
        cells("", "services", pending)[2..4],
        ["<none>", "<pending>"]
    );
    let ext = obj(
        "x",
        json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
    );
    assert_eq!(
        cells("", "services", ext)[1..4],
        ["ExternalName", "<none>", "db.example.com"]
    );
    assert_eq!(cells("", "services", obj("d", json!({})))[1], "ClusterIP");
}

#[test]
fn node_columns() {
    let node = obj(
        "n1",
        json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "master"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.1", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "containerd://1.7.0"}}}),
    );
    assert_eq!(
        cells("", "nodes", node),
        [
            "n1",
            "Ready,SchedulingDisabled",
            "control-plane,master,worker",
            "5m",
            "v1.32.1",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12",
            "6.1.0",
            "containerd://1.7.0"
        ]
    );
    let new = obj(
        "n2",
        json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
    );
    assert_eq!(
        cells("", "nodes", new)[1..5],
        ["NotReady", "<none>", "5m", ""]
    );
    assert_eq!(cells("", "nodes", obj("n3", json!({})))[1], "Unknown");
    assert_eq!(cells("", "nodes", obj("n3", json!({})))[7], "<unknown>");
}

#[test]
fn other_resources() {
    let ns = obj("default", json!({"status": {"phase": "Terminating"}}));
    assert_eq!(
        cells("", "namespaces", ns),
        ["default", "Terminating", "5m"]
    );
    let cm = obj(
        "cfg",
        json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
    );
    assert_eq!(row("", "configmaps", cm)["cells"], json!(["cfg", 3, "5m"]));
    assert_eq!(
        row("", "secrets", obj("s", json!({"data": {"k": "dg=="}})))["cells"],
        json!(["s", "Opaque", 1, "5m"])
    );
    assert_eq!(
        row("", "serviceaccounts", obj("default", json!({})))["cells"],
        json!(["default", 0, "5m"])
    );
    let ep = obj(
        "web",
        json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
        "ports": [{"port": 80}, {"port": 81}]}]}),
    );
    assert_eq!(
        cells("", "endpoints", ep)[1],
        "10.0.0.1:80,[fd00::1]:80,10.0.0.1:81 + 1 more..."
    );
    assert_eq!(cells("", "endpoints", obj("e", json!({})))[1], "<none>");
    let slice = obj(
        "web-x",
        json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "http"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}]}),
    );
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", slice),
        ["web-x", "IPv4", "80,http", "10.0.0.1", "5m"]
    );
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", obj("e", json!({})))[2..4],
        ["<unset>", "<unset>"]
    );
    let lease = obj("l", json!({"spec": {"holderIdentity": "me"}}));
    assert_eq!(
        cells("coordination.k8s.io", "leases", lease),
        ["l", "me", "5m"]
    );
    let ss = obj(
        "db",
        json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}),
    );
    assert_eq!(cells("apps", "statefulsets", ss)[..3], ["db", "3/3", "5m"]);
    let ds = obj(
        "agent",
        json!({"spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1}}),
    );
    assert_eq!(
        cells("apps", "daemonsets", ds)[..8],
        ["agent", "2", "2", "1", "0", "0", "os=linux", "5m"]
    );
}

#[test]
fn volumes() {
    let pv = obj(
        "pv1",
        json!({"spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        "claimRef": {"namespace": "ns", "name": "data"}, "storageClassName": "fast"}, "status": {"phase": "Bound"}}),
    );
    assert_eq!(
        cells("", "persistentvolumes", pv),
        [
            "pv1",
            "10Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "ns/data",
            "fast",
            "<unset>",
            "",
            "5m",
            "Filesystem"
        ]
    );
    let pvc = obj(
        "data",
        json!({"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
        "spec": {"storageClassName": "fast"}}),
    );
    assert_eq!(
        cells("", "persistentvolumeclaims", pvc),
        [
            "data",
            "Pending",
            "",
            "",
            "",
            "old",
            "<unset>",
            "5m",
            "Filesystem"
        ]
    );
    let bound = obj(
        "data",
        json!({"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound", "accessModes": ["ReadWriteOncePod"], "capacity": {"storage": "1Gi"}}}),
    );
    assert_eq!(
        cells("", "persistentvolumeclaims", bound)[1..6],
        ["Bound", "pv1", "1Gi", "RWOP", ""]
    );
}

#[test]
fn jobs_and_autoscalers() {
    let job = obj(
        "j",
        json!({"spec": {"completions": 3, "selector": {"matchLabels": {"job": "j"}}},
        "status": {"succeeded": 1, "startTime": ago(90)}}),
    );
    assert_eq!(
        cells("batch", "jobs", job),
        ["j", "Running", "1/3", "90s", "5m", "", "", "job=j"]
    );
    let done = obj(
        "j",
        json!({"spec": {"parallelism": 2}, "status": {"succeeded": 1, "startTime": ago(200),
        "completionTime": ago(80), "conditions": [{"type": "Complete", "status": "True"}]}}),
    );
    assert_eq!(
        cells("batch", "jobs", done)[1..4],
        ["Complete", "1/1 of 2", "2m"]
    );

    let hpa = obj(
        "web",
        json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                    {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "10"}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}}),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", hpa),
        [
            "web",
            "Deployment/web",
            "cpu: 12%/50%, <unknown>/1k + 1 more...",
            "1",
            "5",
            "2",
            "5m"
        ]
    );
    let v1 = obj(
        "web",
        json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2,
        "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}}),
    );
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", v1)[2..4],
        ["cpu: <unknown>/70%", "2"]
    );
    let none = obj("web", json!({"spec": {"maxReplicas": 4}}));
    assert_eq!(
        cells("autoscaling", "horizontalpodautoscalers", none)[2],
        "cpu: <unknown>/80%"
    );
}

#[test]
fn events() {
    let core = obj(
        "web.17b",
        json!({"type": "Warning", "reason": "BackOff", "message": " Back-off restarting \n",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "source": {"component": "kubelet", "host": "node-1"}, "count": 4,
        "firstTimestamp": ago(600), "lastTimestamp": ago(30)}),
    );
    assert_eq!(
        cells("", "events", core),
        [
            "30s",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting",
            "10m",
            "4",
            "web.17b"
        ]
    );
    let new = obj(
        "e",
        json!({"apiVersion": "events.k8s.io/v1", "type": "Normal", "reason": "Scheduled", "note": "ok",
        "regarding": {"kind": "Pod", "name": "web"}, "reportingController": "default-scheduler", "eventTime": ago(45)}),
    );
    assert_eq!(
        cells("events.k8s.io", "events", new),
        [
            "45s",
            "Normal",
            "Scheduled",
            "pod/web",
            "",
            "default-scheduler",
            "ok",
            "45s",
            "1",
            "e"
        ]
    );
    let series = obj(
        "e",
        json!({"eventTime": ago(900), "series": {"count": 7, "lastObservedTime": ago(5)},
        "involvedObject": {"kind": "Node"}}),
    );
    let c = cells("", "events", series);
    assert_eq!(
        (c[0].as_str(), c[3].as_str(), c[7].as_str(), c[8].as_str()),
        ("5s", "node", "15m", "7")
    );
    assert_eq!(
        column_names("", "events", 0),
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
}

#[test]
fn table_shape_and_include_object() {
    let p = pod(
        json!({"metadata": {"namespace": "ns", "resourceVersion": "7"}, "status": {"phase": "Running"}}),
    );
    let meta = json!({"resourceVersion": "42", "continue": ""});
    let t = table(
        "",
        "pods",
        std::slice::from_ref(&p),
        now(),
        IncludeObject::Metadata,
        meta,
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0})
    );
    assert_eq!(t["columnDefinitions"][3]["type"], "string");
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": p["metadata"]})
    );
    assert!(t["rows"][0].get("conditions").is_none());
    let full = table(
        "",
        "pods",
        std::slice::from_ref(&p),
        now(),
        IncludeObject::Object,
        json!({"continue": "abc"}),
    );
    assert_eq!(full["rows"][0]["object"], p);
    assert_eq!(full["metadata"], json!({"continue": "abc"}));
    let bare = table(
        "",
        "pods",
        std::slice::from_ref(&p),
        now(),
        IncludeObject::None,
        json!({}),
    );
    assert_eq!(bare["rows"][0]["object"], Value::Null);
    assert_eq!(
        table("", "pods", &[], now(), IncludeObject::None, json!({}))["rows"],
        json!([])
    );

    assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
    let err = IncludeObject::parse("all").unwrap_err();
    assert_eq!(err.to_string(), "unrecognized includeObject value: \"all\"");
    assert_eq!(err.code(), 400);
}

#[test]
fn default_table_for_other_resources() {
    let role = obj(
        "reader",
        json!({"metadata": {"creationTimestamp": "2024-04-30T14:00:00.5+02:00"}}),
    );
    let t = table(
        "rbac.authorization.k8s.io",
        "roles",
        &[role],
        now(),
        IncludeObject::None,
        json!({}),
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["reader", "2024-04-30T12:00:00Z"])
    );
    let cols: Vec<_> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].clone(), c["type"].clone()))
        .collect();
    assert_eq!(
        cols,
        [
            (json!("Name"), json!("string")),
            (json!("Created At"), json!("date"))
        ]
    );
    // rest.DefaultTableConvertor leaves the rows of an empty list nil.
    assert_eq!(
        table(
            "example.com",
            "widgets",
            &[],
            now(),
            IncludeObject::None,
            json!({})
        )["rows"],
        Value::Null
    );
}
