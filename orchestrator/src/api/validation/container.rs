//! Container validation, for the regular and init containers of a pod spec: names, images,
//! ports, env, mounts, resources, probes and lifecycle hooks (kube-apiserver's
//! `validateContainerCommon` and what it calls).

use serde_json::Value;

use super::gofmt::quote;
use super::pod::{no_backsteps, one_of, Volumes};
use super::resources;
use super::{
    child, duplicate, field, forbidden, index, int, invalid, list, names, nonnegative, not_found,
    not_supported, required, text, Errs, NameRule,
};

/// `validateContainers`: at least one, names unique, probes and lifecycle valid.
pub(super) fn validate_containers(
    spec: Option<&Value>,
    vols: &Volumes,
    path: &str,
    grace: Option<i64>,
    errs: &mut Errs,
) {
    let at = child(path, "containers");
    let containers = list(spec, "containers");
    if containers.is_empty() {
        errs.push(required(at, ""));
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let (cp, c) = (index(&at, i), Some(c));
        container_common(c, vols, &cp, errs);
        let name = text(c, "name");
        if seen.contains(&name) {
            errs.push(duplicate(child(&cp, "name"), quote(name)));
        } else {
            seen.push(name);
        }
        handlers_and_probes(c, &cp, grace, errs);
        if field(c, "restartPolicy").is_some() {
            errs.push(forbidden(
                child(&cp, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    host_port_conflicts(containers, &at, errs);
}

/// `validateInitContainers`: names unique across all containers; only restartable (sidecar)
/// init containers may have probes and lifecycle hooks.
pub(super) fn validate_init_containers(
    spec: Option<&Value>,
    vols: &Volumes,
    path: &str,
    grace: Option<i64>,
    errs: &mut Errs,
) {
    let at = child(path, "initContainers");
    let mut seen: Vec<&str> = list(spec, "containers")
        .iter()
        .map(|c| text(Some(c), "name"))
        .collect();
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let (cp, ctr) = (index(&at, i), Some(c));
        container_common(ctr, vols, &cp, errs);
        let policy = field(ctr, "restartPolicy").and_then(Value::as_str);
        if let Some(p) = policy.filter(|p| *p != "Always") {
            errs.push(not_supported(
                child(&cp, "restartPolicy"),
                quote(p),
                &["Always"],
            ));
        }
        let name = text(ctr, "name");
        if seen.contains(&name) {
            errs.push(duplicate(child(&cp, "name"), quote(name)));
        } else if !name.is_empty() {
            seen.push(name);
        }
        // Init containers run one at a time, so each is checked alone; kube-apiserver then
        // reports a clash at index 0 whatever the container's index, as here.
        host_port_conflicts(std::slice::from_ref(c), &at, errs);
        if policy == Some("Always") {
            handlers_and_probes(ctr, &cp, grace, errs);
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if field(ctr, f).is_some() {
                    let detail = "may not be set for init containers without restartPolicy=Always";
                    errs.push(forbidden(child(&cp, f), detail));
                }
            }
        }
    }
}

/// `validateContainerCommon`.
fn container_common(c: Option<&Value>, vols: &Volumes, path: &str, errs: &mut Errs) {
    let name = text(c, "name");
    if name.is_empty() {
        errs.push(required(child(path, "name"), ""));
    }
    for m in if name.is_empty() {
        Vec::new()
    } else {
        names::dns1123_label(name)
    } {
        errs.push(invalid(child(path, "name"), quote(name), m));
    }
    if text(c, "image").is_empty() {
        errs.push(required(child(path, "image"), ""));
    }
    one_of(
        c,
        path,
        "terminationMessagePolicy",
        &["File", "FallbackToLogsOnError"],
        errs,
    );
    validate_ports(list(c, "ports"), &child(path, "ports"), errs);
    validate_env(list(c, "env"), &child(path, "env"), errs);
    validate_env_from(list(c, "envFrom"), &child(path, "envFrom"), errs);
    validate_mounts(c, vols, &child(path, "volumeMounts"), errs);
    one_of(
        c,
        path,
        "imagePullPolicy",
        &["Always", "IfNotPresent", "Never"],
        errs,
    );
    resources::validate_resources(field(c, "resources"), &child(path, "resources"), errs);
    let sc = field(c, "securityContext");
    for f in ["runAsUser", "runAsGroup"] {
        if let Some(id) = int(sc, f).filter(|id| !(0..=4_294_967_295).contains(id)) {
            let detail = "must be between 0 and 4294967295, inclusive";
            errs.push(invalid(
                child(&child(path, "securityContext"), f),
                id.to_string(),
                detail,
            ));
        }
    }
}

fn validate_ports(ports: &[Value], path: &str, errs: &mut Errs) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let (at, p) = (index(path, i), Some(p));
        let name = text(p, "name");
        if !name.is_empty() {
            let msgs = names::port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| invalid(child(&at, "name"), quote(name), m)),
                );
            } else if seen.contains(&name) {
                errs.push(duplicate(child(&at, "name"), quote(name)));
            } else {
                seen.push(name);
            }
        }
        match int(p, "containerPort").unwrap_or(0) {
            0 => errs.push(required(child(&at, "containerPort"), "")),
            n => errs.extend(
                names::port_num(n)
                    .into_iter()
                    .map(|m| invalid(child(&at, "containerPort"), n.to_string(), m)),
            ),
        }
        if let Some(n) = int(p, "hostPort").filter(|n| *n != 0) {
            errs.extend(
                names::port_num(n)
                    .into_iter()
                    .map(|m| invalid(child(&at, "hostPort"), n.to_string(), m)),
            );
        }
        super::core_kinds::protocol(p, &at, errs);
    }
}

/// `AccumulateUniqueHostPorts`: a protocol/hostIP/hostPort triple at most once.
fn host_port_conflicts(containers: &[Value], path: &str, errs: &mut Errs) {
    let mut seen: Vec<String> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, p) in list(Some(c), "ports").iter().enumerate() {
            let p = Some(p);
            let Some(port) = int(p, "hostPort").filter(|n| *n != 0) else {
                continue;
            };
            let key = format!("{}/{}/{}", text(p, "protocol"), text(p, "hostIP"), port);
            if seen.contains(&key) {
                errs.push(duplicate(
                    format!("{path}[{i}].ports[{j}].hostPort"),
                    quote(&key),
                ));
            } else {
                seen.push(key);
            }
        }
    }
}

/// The downward API paths an env var may refer to, and those a conversion accepts at all.
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const CONVERTIBLE_FIELD_PATHS: [&str; 5] = [
    "metadata.annotations",
    "metadata.labels",
    "spec.restartPolicy",
    "spec.schedulerName",
    "status.phase",
];

fn validate_env(vars: &[Value], path: &str, errs: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let (at, ev) = (index(path, i), Some(ev));
        let name = text(ev, "name");
        if name.is_empty() {
            errs.push(required(child(&at, "name"), ""));
        } else {
            for m in names::env_var_name(name) {
                errs.push(invalid(child(&at, "name"), quote(name), m));
            }
        }
        let Some(from) = field(ev, "valueFrom") else {
            continue;
        };
        let from_path = child(&at, "valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ];
        let count = sources
            .iter()
            .filter(|s| field(Some(from), s).is_some())
            .count();
        if let Some(f) = field(Some(from), "fieldRef") {
            field_ref(Some(f), &child(&from_path, "fieldRef"), errs);
        }
        for s in ["configMapKeyRef", "secretKeyRef"] {
            let Some(r) = field(Some(from), s) else {
                continue;
            };
            let (r, rp) = (Some(r), child(&from_path, s));
            let name = text(r, "name");
            for m in names::dns1123_subdomain(name) {
                errs.push(invalid(child(&rp, "name"), quote(name), m));
            }
            let k = text(r, "key");
            if k.is_empty() {
                errs.push(required(child(&rp, "key"), ""));
            }
            for m in if k.is_empty() {
                Vec::new()
            } else {
                names::config_map_key(k)
            } {
                errs.push(invalid(child(&rp, "key"), quote(k), m));
            }
        }
        if count == 0 {
            let detail = "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`";
            errs.push(invalid(from_path, "\"\"", detail));
        } else if !text(ev, "value").is_empty() {
            errs.push(invalid(
                from_path,
                "\"\"",
                "may not be specified when `value` is not empty",
            ));
        } else if count > 1 {
            errs.push(invalid(
                from_path,
                "\"\"",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// `validateObjectFieldSelector` for env vars.
fn field_ref(f: Option<&Value>, path: &str, errs: &mut Errs) {
    if text(f, "apiVersion").is_empty() {
        errs.push(required(child(path, "apiVersion"), ""));
        return;
    }
    let fp = text(f, "fieldPath");
    if fp.is_empty() {
        errs.push(required(child(path, "fieldPath"), ""));
        return;
    }
    let (base, subscript) = match fp.split_once("['") {
        Some((base, rest)) => (base, rest.strip_suffix("']")),
        None => (fp, None),
    };
    if !ENV_FIELD_PATHS.contains(&base) && !CONVERTIBLE_FIELD_PATHS.contains(&base) {
        let detail = format!("error converting fieldPath: field label not supported: {fp}");
        errs.push(invalid(child(path, "fieldPath"), quote(fp), detail));
        return;
    }
    match (base, subscript) {
        ("metadata.annotations" | "metadata.labels", Some(sub)) => {
            let sub = if base == "metadata.annotations" {
                sub.to_lowercase()
            } else {
                sub.to_string()
            };
            errs.extend(
                names::qualified_name(&sub)
                    .into_iter()
                    .map(|m| invalid(path, quote(&sub), m)),
            );
        }
        (_, Some(_)) => errs.push(invalid(path, quote(base), "does not support subscript")),
        (_, None) if !ENV_FIELD_PATHS.contains(&base) => {
            errs.push(not_supported(
                child(path, "fieldPath"),
                quote(base),
                &ENV_FIELD_PATHS,
            ));
        }
        _ => {}
    }
}

fn validate_env_from(sources: &[Value], path: &str, errs: &mut Errs) {
    for (i, src) in sources.iter().enumerate() {
        let (at, src) = (index(path, i), Some(src));
        let prefix = text(src, "prefix");
        for m in if prefix.is_empty() {
            Vec::new()
        } else {
            names::env_var_name(prefix)
        } {
            errs.push(invalid(child(&at, "prefix"), quote(prefix), m));
        }
        let mut count = 0;
        for s in ["configMapRef", "secretRef"] {
            let Some(r) = field(src, s) else { continue };
            count += 1;
            let name = text(Some(r), "name");
            if name.is_empty() {
                errs.push(required(child(&child(&at, s), "name"), ""));
            }
            for m in if name.is_empty() {
                Vec::new()
            } else {
                NameRule::Subdomain.check(name, true)
            } {
                errs.push(invalid(child(&child(&at, s), "name"), quote(name), m));
            }
        }
        match count {
            0 => errs.push(invalid(
                path,
                "\"\"",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(invalid(
                path,
                "\"\"",
                "may not have more than one field specified at a time",
            )),
        }
    }
}

/// `ValidateVolumeMounts`: each names a volume of the pod, at a unique path.
fn validate_mounts(c: Option<&Value>, vols: &Volumes, path: &str, errs: &mut Errs) {
    let mut points: Vec<&str> = Vec::new();
    let privileged =
        field(field(c, "securityContext"), "privileged").and_then(Value::as_bool) == Some(true);
    for (i, m) in list(c, "volumeMounts").iter().enumerate() {
        let (at, m) = (index(path, i), Some(m));
        let (name, mount_path) = (text(m, "name"), text(m, "mountPath"));
        if name.is_empty() {
            errs.push(required(child(&at, "name"), ""));
        }
        if !vols.contains(&name) {
            errs.push(not_found(child(&at, "name"), quote(name)));
        }
        if mount_path.is_empty() {
            errs.push(required(child(&at, "mountPath"), ""));
        }
        if points.contains(&mount_path) {
            errs.push(invalid(
                child(&at, "mountPath"),
                quote(mount_path),
                "must be unique",
            ));
        }
        points.push(mount_path);
        // kube-apiserver reports these at the list's path, not the item's.
        for f in ["subPath", "subPathExpr"] {
            let sub = text(m, f);
            if !sub.is_empty() {
                if sub.starts_with('/') {
                    errs.push(invalid(
                        child(path, f),
                        quote(sub),
                        "must be a relative path",
                    ));
                }
                no_backsteps(sub, &child(path, f), errs);
            }
        }
        if !text(m, "subPath").is_empty() && !text(m, "subPathExpr").is_empty() {
            let detail = "subPathExpr and subPath are mutually exclusive";
            errs.push(invalid(
                child(&at, "subPathExpr"),
                quote(text(m, "subPathExpr")),
                detail,
            ));
        }
        if let Some(p) = field(m, "mountPropagation").and_then(Value::as_str) {
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&p) {
                errs.push(not_supported(
                    child(path, "mountPropagation"),
                    quote(p),
                    &supported,
                ));
            } else if p == "Bidirectional" && !privileged {
                let detail =
                    "Bidirectional mount propagation is available only to privileged containers";
                errs.push(forbidden(child(path, "mountPropagation"), detail));
            }
        }
    }
}

/// A container's lifecycle hooks and probes.
fn handlers_and_probes(c: Option<&Value>, path: &str, grace: Option<i64>, errs: &mut Errs) {
    if let Some(lifecycle) = field(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = field(Some(lifecycle), hook) {
                handler(
                    Some(h),
                    &child(&child(path, "lifecycle"), hook),
                    grace,
                    errs,
                );
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = field(c, probe) else { continue };
        let (at, p) = (child(path, probe), Some(p));
        handler(p, &at, grace, errs);
        for f in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            nonnegative(field(p, f), child(&at, f), errs);
        }
        if let Some(g) = int(p, "terminationGracePeriodSeconds").filter(|g| *g <= 0) {
            errs.push(invalid(
                child(&at, "terminationGracePeriodSeconds"),
                g.to_string(),
                "must be greater than 0",
            ));
        }
        let success = int(p, "successThreshold").unwrap_or(0);
        if probe != "readinessProbe" && success != 1 {
            errs.push(invalid(
                child(&at, "successThreshold"),
                success.to_string(),
                "must be 1",
            ));
        }
        if let Some(g) =
            int(p, "terminationGracePeriodSeconds").filter(|_| probe == "readinessProbe")
        {
            let detail = "must not be set for readinessProbes";
            errs.push(invalid(
                child(&at, "terminationGracePeriodSeconds"),
                g.to_string(),
                detail,
            ));
        }
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (hooks).
fn handler(h: Option<&Value>, path: &str, grace: Option<i64>, errs: &mut Errs) {
    let mut count = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(action) = field(h, kind) else {
            continue;
        };
        count += 1;
        let (at, action) = (child(path, kind), Some(action));
        if count > 1 {
            errs.push(forbidden(at, "may not specify more than 1 handler type"));
            continue;
        }
        match kind {
            "exec" if list(action, "command").is_empty() => {
                errs.push(required(child(&at, "command"), ""))
            }
            "httpGet" => {
                if text(action, "path").is_empty() {
                    errs.push(required(child(&at, "path"), ""));
                }
                port_num_or_name(field(action, "port"), &child(&at, "port"), errs);
                let scheme = text(action, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(not_supported(
                        child(&at, "scheme"),
                        quote(scheme),
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in list(action, "httpHeaders") {
                    let name = text(Some(header), "name");
                    for m in names::http_header_name(name) {
                        errs.push(invalid(child(&at, "httpHeaders"), quote(name), m));
                    }
                }
            }
            "tcpSocket" | "grpc" => {
                port_num_or_name(field(action, "port"), &child(&at, "port"), errs)
            }
            "sleep" => {
                let seconds = int(action, "seconds").unwrap_or(0);
                if let Some(g) = grace.filter(|g| seconds <= 0 || seconds > *g) {
                    let detail = format!("must be greater than 0 and less than terminationGracePeriodSeconds ({g}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep.");
                    errs.push(invalid(at, seconds.to_string(), detail));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
}

/// `ValidatePortNumOrName`: a number in 1..=65535 or an IANA service name.
pub(super) fn port_num_or_name(port: Option<&Value>, path: &str, errs: &mut Errs) {
    match port {
        Some(Value::String(name)) => errs.extend(
            names::port_name(name)
                .into_iter()
                .map(|m| invalid(path, quote(name), m)),
        ),
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            errs.extend(
                names::port_num(n)
                    .into_iter()
                    .map(|m| invalid(path, n.to_string(), m)),
            );
        }
    }
}
