//! The row printers of core/v1's kinds, as printers.go prints them: Pod, Namespace, Node,
//! Service, Endpoints, Event, ConfigMap, Secret, ServiceAccount, PersistentVolume and
//! PersistentVolumeClaim; also events.k8s.io's Event and discovery.k8s.io's EndpointSlice, whose
//! printers share the core Event's and Endpoints' code.

use serde_json::{json, Value};

use super::{
    age, at, deleting, format_labels, int, join_or, len_of, list, name, or, quantity, since, text,
    time_at,
};

pub(super) fn pod_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn has_condition(v: &Value, ty: &str) -> bool {
    list(v, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == "True")
}

/// The reason a terminated container with no reason prints as: `Signal:9` or `ExitCode:1`.
fn exit_reason(terminated: &Value) -> String {
    match int(terminated, "/signal") {
        0 => format!("ExitCode:{}", int(terminated, "/exitCode")),
        signal => format!("Signal:{signal}"),
    }
}

pub(super) fn pod_row(pod: &Value, now: i128) -> Vec<Value> {
    let phase = text(pod, "/status/phase");
    let mut reason = or(text(pod, "/status/reason"), phase).to_string();
    let conditions = list(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }
    let init_specs = list(pod, "/spec/initContainers");
    // A sidecar: an init container with restartPolicy Always, counted among the pod's containers.
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    };
    let total = list(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let (mut ready, mut restarts, mut sidecar_restarts) = (0usize, 0i64, 0i64);
    let (mut last_restart, mut last_sidecar_restart): (Option<i128>, Option<i128>) = (None, None);
    let mut initializing = false;
    for (i, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int(status, "/restartCount");
        let finished = time_at(status, "/lastState/terminated/finishedAt");
        restarts += count;
        last_restart = last_restart.max(finished);
        let is_sidecar = sidecar(text(status, "/name"));
        if is_sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = last_sidecar_restart.max(finished);
        }
        let terminated = at(status, "/state/terminated");
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated.is_object() && int(terminated, "/exitCode") == 0 {
            continue;
        } else if is_sidecar && at(status, "/started").as_bool() == Some(true) {
            ready += usize::from(at(status, "/ready").as_bool() == Some(true));
            continue;
        } else if terminated.is_object() {
            reason = match text(terminated, "/reason") {
                "" => format!("Init:{}", exit_reason(terminated)),
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }
    if !initializing || has_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount");
            last_restart = last_restart.max(time_at(status, "/lastState/terminated/finishedAt"));
            let terminated = at(status, "/state/terminated");
            let waiting_reason = text(status, "/state/waiting/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated.is_object() {
                reason = match text(terminated, "/reason") {
                    "" => exit_reason(terminated),
                    r => r.to_string(),
                };
            } else if at(status, "/ready").as_bool() == Some(true)
                && at(status, "/state/running").is_object()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }
    if deleting(pod) && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(now, Some(t))),
        _ => restarts.to_string(),
    };
    let ip = or(text(pod, "/status/podIP"), text(pod, "/status/podIPs/0/ip"));
    let gates = list(pod, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| {
                let ty = text(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == ty)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age(pod, now),
        json!(or(ip, "<none>")),
        json!(or(text(pod, "/spec/nodeName"), "<none>")),
        json!(or(text(pod, "/status/nominatedNodeName"), "<none>")),
        json!(gates),
    ]
}

pub(super) fn namespace_row(ns: &Value, now: i128) -> Vec<Value> {
    vec![
        json!(name(ns)),
        json!(or(text(ns, "/status/phase"), "Active")),
        age(ns, now),
    ]
}

pub(super) fn node_row(node: &Value, now: i128) -> Vec<Value> {
    // The last Ready condition wins, as in printers.go's map of conditions by type.
    let conditions = list(node, "/status/conditions");
    let ready = conditions
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(node, "/spec/unschedulable").as_bool() == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = at(node, "/metadata/labels").as_object() {
        for (k, v) in labels {
            match k.strip_prefix("node-role.kubernetes.io/") {
                Some(role) if !role.is_empty() => roles.push(role),
                Some(_) => {}
                None if k == "kubernetes.io/role" => {
                    roles.extend(v.as_str().filter(|v| !v.is_empty()))
                }
                None => {}
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let address = |ty: &str| {
        let found = list(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == ty);
        found.map_or("<none>", |a| text(a, "/address")).to_string()
    };
    let info = |field: &str| {
        json!(or(
            text(node, &format!("/status/nodeInfo/{field}")),
            "<unknown>"
        ))
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(join_or(&roles, "<none>")),
        age(node, now),
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    list(v, pointer)
        .iter()
        .map(|s| s.as_str().unwrap_or("").to_string())
        .collect()
}

pub(super) fn service_row(svc: &Value, now: i128) -> Vec<Value> {
    let ty = or(text(svc, "/spec/type"), "ClusterIP");
    let cluster_ip = or(
        or(
            text(svc, "/spec/clusterIPs/0"),
            text(svc, "/spec/clusterIP"),
        ),
        "<none>",
    );
    let external_ips = strings(svc, "/spec/externalIPs");
    let external = match ty {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            // A sorted set of the ingress points, not clipped: the server prints wide.
            let mut lb: Vec<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| or(text(i, "/ip"), text(i, "/hostname")))
                .filter(|s| !s.is_empty())
                .collect();
            lb.sort_unstable();
            lb.dedup();
            let all: Vec<String> = lb
                .iter()
                .map(|s| s.to_string())
                .chain(external_ips)
                .collect();
            join_or(&all, "<pending>")
        }
        "ExternalName" => text(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let (port, node_port, proto) = (
                int(p, "/port"),
                int(p, "/nodePort"),
                or(text(p, "/protocol"), "TCP"),
            );
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    vec![
        json!(name(svc)),
        json!(ty),
        json!(cluster_ip),
        json!(external),
        json!(join_or(&ports, "<none>")),
        age(svc, now),
        json!(format_labels(at(svc, "/spec/selector"))),
    ]
}

/// A list of at most three items, then ` + N more...` (`listWithMoreString` and friends).
fn with_more(items: Vec<String>, total: usize, empty: &str) -> String {
    let shown = items.into_iter().take(3).collect::<Vec<_>>().join(",");
    if total > 3 {
        format!("{shown} + {} more...", total - 3)
    } else if shown.is_empty() {
        empty.to_string()
    } else {
        shown
    }
}

pub(super) fn endpoints_row(ep: &Value, now: i128) -> Vec<Value> {
    let subsets = list(ep, "/subsets");
    let mut items = Vec::new();
    for ss in subsets {
        let addrs = list(ss, "/addresses");
        let ports = list(ss, "/ports");
        if ports.is_empty() {
            // A headless service with no ports lists bare addresses.
            items.extend(addrs.iter().map(|a| text(a, "/ip").to_string()));
        }
        for port in ports {
            for a in addrs {
                let ip = text(a, "/ip");
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                items.push(format!("{host}:{}", int(port, "/port")));
            }
        }
    }
    let total = items.len();
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        with_more(items, total, "")
    };
    vec![json!(name(ep)), json!(cell), age(ep, now)]
}

pub(super) fn endpoint_slice_row(slice: &Value, now: i128) -> Vec<Value> {
    let ports: Vec<String> = list(slice, "/ports")
        .iter()
        .map(|p| match at(p, "/port").as_i64() {
            Some(n) => n.to_string(),
            None => at(p, "/name").as_str().unwrap_or("*").to_string(),
        })
        .collect();
    let addresses: Vec<String> = list(slice, "/endpoints")
        .iter()
        .flat_map(|e| strings(e, "/addresses"))
        .collect();
    let (n_ports, n_addresses) = (ports.len(), addresses.len());
    vec![
        json!(name(slice)),
        json!(text(slice, "/addressType")),
        json!(with_more(ports, n_ports, "<unset>")),
        json!(with_more(addresses, n_addresses, "<unset>")),
        age(slice, now),
    ]
}

/// Core v1 and (`new_api`) events.k8s.io/v1 events, one printer for both kube-apiserver: the
/// latter's fields have other names.
pub(super) fn event_row(ev: &Value, now: i128, new_api: bool) -> Vec<Value> {
    let f = |core: &'static str, events: &'static str| if new_api { events } else { core };
    let first = match time_at(ev, f("/firstTimestamp", "/deprecatedFirstTimestamp")) {
        Some(t) => since(now, Some(t)),
        None => since(now, time_at(ev, "/eventTime")),
    };
    let mut last = match time_at(ev, f("/lastTimestamp", "/deprecatedLastTimestamp")) {
        Some(t) => since(now, Some(t)),
        None => first.clone(),
    };
    let mut count = int(ev, f("/count", "/deprecatedCount"));
    if at(ev, "/series").is_object() {
        last = since(now, time_at(ev, "/series/lastObservedTime"));
        count = int(ev, "/series/count");
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let involved = f("/involvedObject", "/regarding");
    let kind = text(ev, &format!("{involved}/kind")).to_lowercase();
    let target = match text(ev, &format!("{involved}/name")) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = f("/source", "/deprecatedSource");
    let component = or(
        text(ev, &format!("{source}/component")),
        text(ev, f("/reportingComponent", "/reportingController")),
    );
    let host = or(
        text(ev, &format!("{source}/host")),
        text(ev, "/reportingInstance"),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(text(ev, "/type")),
        json!(text(ev, "/reason")),
        json!(target),
        json!(text(ev, &format!("{involved}/fieldPath"))),
        json!(source),
        json!(text(ev, f("/message", "/note")).trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
}

pub(super) fn configmap_row(cm: &Value, now: i128) -> Vec<Value> {
    vec![
        json!(name(cm)),
        json!(len_of(cm, "/data") + len_of(cm, "/binaryData")),
        age(cm, now),
    ]
}

pub(super) fn secret_row(secret: &Value, now: i128) -> Vec<Value> {
    let ty = or(text(secret, "/type"), "Opaque");
    vec![
        json!(name(secret)),
        json!(ty),
        json!(len_of(secret, "/data")),
        age(secret, now),
    ]
}

pub(super) fn service_account_row(sa: &Value, now: i128) -> Vec<Value> {
    vec![json!(name(sa)), json!(len_of(sa, "/secrets")), age(sa, now)]
}

/// `helper.GetAccessModesAsString`: RWO,ROX,RWX,RWOP in that order, each once.
fn access_modes(v: &Value, pointer: &str) -> String {
    let modes = strings(v, pointer);
    let known = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    let present: Vec<&str> = known
        .iter()
        .filter(|(m, _)| modes.iter().any(|x| x == m))
        .map(|(_, s)| *s)
        .collect();
    join_or(&present, "")
}

/// A storage quantity: a missing one is Go's zero Quantity, "0".
fn storage(v: &Value, pointer: &str) -> String {
    match at(v, pointer) {
        Value::Null => "0".to_string(),
        q => quantity(q),
    }
}

/// The storage class, from the beta annotation first (`GetPersistentVolume(Claim)Class`).
fn storage_class(v: &Value) -> &str {
    at(v, "/metadata/annotations")
        .get("volume.beta.kubernetes.io/storage-class")
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(v, "/spec/storageClassName"))
}

pub(super) fn pv_row(pv: &Value, now: i128) -> Vec<Value> {
    let claim = match at(pv, "/spec/claimRef") {
        c if c.is_object() => format!("{}/{}", text(c, "/namespace"), text(c, "/name")),
        _ => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        or(text(pv, "/status/phase"), "Pending")
    };
    vec![
        json!(name(pv)),
        json!(storage(pv, "/spec/capacity/storage")),
        json!(access_modes(pv, "/spec/accessModes")),
        json!(or(
            text(pv, "/spec/persistentVolumeReclaimPolicy"),
            "Retain"
        )),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(or(text(pv, "/spec/volumeAttributesClassName"), "<unset>")),
        json!(text(pv, "/status/reason")),
        age(pv, now),
        json!(or(text(pv, "/spec/volumeMode"), "Filesystem")),
    ]
}

pub(super) fn pvc_row(pvc: &Value, now: i128) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        or(text(pvc, "/status/phase"), "Pending")
    };
    let volume = text(pvc, "/spec/volumeName");
    // Capacity and access modes are the bound volume's, so they print only once bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        let capacity = storage(pvc, "/status/capacity/storage");
        (capacity, access_modes(pvc, "/status/accessModes"))
    };
    vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(or(text(pvc, "/spec/volumeAttributesClassName"), "<unset>")),
        age(pvc, now),
        json!(or(text(pvc, "/spec/volumeMode"), "Filesystem")),
    ]
}
