//! Validation of the core kinds that are not pods: Service, ConfigMap, Secret, Namespace,
//! PersistentVolumeClaim, PersistentVolume, and autoscaling's HorizontalPodAutoscaler
//! (`pkg/apis/core/validation/validation.go`, `pkg/apis/autoscaling/validation`).

use serde_json::Value;

use super::gofmt::{self, quote};
use super::{
    child, duplicate, field, forbidden, index, int, invalid, key, list, meta_for, names,
    not_supported, required, semantic, text, too_long, validate_labels, Errs, NameRule,
};

/// Secrets and ConfigMaps may hold at most 1 MiB of data (`core.MaxSecretSize`).
const MAX_DATA_SIZE: usize = 1024 * 1024;

/// Whether a Service is headless (`clusterIP: None`).
fn headless(spec: Option<&Value>) -> bool {
    text(spec, "clusterIP") == "None"
        || list(spec, "clusterIPs").first().and_then(Value::as_str) == Some("None")
}

/// `ValidateService` (and `ValidateServiceUpdate`'s metadata part). ClusterIP and node-port
/// allocation are the registry's, so their fields are checked only for shape.
pub(super) fn validate_service(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), true, NameRule::Dns1035, errs);
    }
    meta_for(obj, None, true, NameRule::Dns1035, errs);
    let spec = obj.get("spec");
    let ty = text(spec, "type");
    let ports = list(spec, "ports");
    if ports.is_empty() && !headless(spec) && ty != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless(spec) => {
            let which = if ty == "NodePort" {
                "NodePort"
            } else {
                "LoadBalancer"
            };
            errs.push(invalid(
                "spec.clusterIPs[0]",
                "\"None\"",
                format!("may not be set to 'None' for {which} services"),
            ));
        }
        "ExternalName" => {
            if !list(spec, "clusterIPs").is_empty() {
                errs.push(forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if field(spec, "ipFamilyPolicy").is_some() {
                errs.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = text(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            }
            for m in if cname.is_empty() {
                Vec::new()
            } else {
                names::dns1123_subdomain(cname)
            } {
                errs.push(invalid("spec.externalName", quote(cname), m));
            }
        }
        _ => {}
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let (path, p) = (index("spec.ports", i), Some(p));
        let name = text(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(child(&path, "name"), ""));
        } else if !name.is_empty() {
            for m in names::dns1123_label(name) {
                errs.push(invalid(child(&path, "name"), quote(name), m));
            }
            if port_names.contains(&name) {
                errs.push(duplicate(child(&path, "name"), quote(name)));
            } else {
                port_names.push(name);
            }
        }
        let port = int(p, "port").unwrap_or(0);
        for m in names::port_num(port) {
            errs.push(invalid(child(&path, "port"), port.to_string(), m));
        }
        protocol(p, &path, errs);
        super::container::port_num_or_name(
            field(p, "targetPort"),
            &child(&path, "targetPort"),
            errs,
        );
        if let Some(app) = field(p, "appProtocol").and_then(Value::as_str) {
            for m in names::qualified_name(app) {
                errs.push(invalid(child(&path, "appProtocol"), quote(app), m));
            }
        }
    }
    validate_labels(field(spec, "selector"), "spec.selector", errs);
    match text(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "None" if field(spec, "sessionAffinityConfig").is_some() => {
            errs.push(forbidden(
                "spec.sessionAffinityConfig",
                "must not be set when session affinity is None",
            ));
        }
        "None" | "ClientIP" => {}
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            quote(other),
            &["ClientIP", "None"],
        )),
    }
    if let Some(policy) = field(spec, "ipFamilyPolicy").and_then(Value::as_str) {
        if !matches!(
            policy,
            "SingleStack" | "PreferDualStack" | "RequireDualStack"
        ) {
            let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
            errs.push(not_supported(
                "spec.ipFamilyPolicy",
                quote(policy),
                &supported,
            ));
        }
    }
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        for m in names::ip(ip) {
            errs.push(invalid(index("spec.externalIPs", i), quote(ip), m));
        }
    }
    match ty {
        "" => errs.push(required("spec.type", "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => {
            let supported = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
            errs.push(not_supported("spec.type", quote(other), &supported));
        }
    }
    let mut seen_node_ports: Vec<(&str, i64)> = Vec::new();
    let mut seen_ports: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let (path, p) = (index("spec.ports", i), Some(p));
        let node_port = int(p, "nodePort").unwrap_or(0);
        if ty == "ClusterIP" && node_port != 0 {
            errs.push(forbidden(
                child(&path, "nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if node_port != 0 {
            if seen_node_ports.contains(&(text(p, "protocol"), node_port)) {
                errs.push(duplicate(child(&path, "nodePort"), node_port.to_string()));
            }
            seen_node_ports.push((text(p, "protocol"), node_port));
        }
        let pair = (text(p, "protocol"), int(p, "port").unwrap_or(0));
        if seen_ports.contains(&pair) {
            let shown = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                quote(pair.0),
                pair.1
            );
            errs.push(duplicate(path, shown));
        }
        seen_ports.push(pair);
    }
    if !list(spec, "loadBalancerSourceRanges").is_empty() && ty != "LoadBalancer" {
        errs.push(forbidden(
            "spec.LoadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if field(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        errs.push(forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && field(spec, "allocateLoadBalancerNodePorts").is_none() {
        errs.push(required("allocateLoadBalancerNodePorts", ""));
    }
    let external = matches!(ty, "LoadBalancer" | "NodePort")
        || (ty == "ClusterIP" && !list(spec, "externalIPs").is_empty());
    match (external, text(spec, "externalTrafficPolicy")) {
        (false, "") | (true, "Cluster" | "Local") => {}
        (false, etp) => errs.push(invalid(
            "spec.externalTrafficPolicy",
            quote(etp),
            "may only be set for externally-accessible services",
        )),
        (true, "") => errs.push(required("spec.externalTrafficPolicy", "")),
        (true, etp) => errs.push(not_supported(
            "spec.externalTrafficPolicy",
            quote(etp),
            &["Cluster", "Local"],
        )),
    }
    match field(spec, "internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(required("spec.internalTrafficPolicy", ""));
        }
        Some(itp) if !matches!(itp, "Cluster" | "Local") => {
            errs.push(not_supported(
                "spec.internalTrafficPolicy",
                quote(itp),
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = field(spec, "trafficDistribution").and_then(Value::as_str) {
        if td != "PreferClose" {
            errs.push(not_supported(
                "spec.trafficDistribution",
                quote(td),
                &["PreferClose"],
            ));
        }
    }
}

/// A port's protocol: required, and one of TCP, UDP and SCTP.
pub(super) fn protocol(p: Option<&Value>, path: &str, errs: &mut Errs) {
    match text(p, "protocol") {
        "" => errs.push(required(child(path, "protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => errs.push(not_supported(
            child(path, "protocol"),
            quote(other),
            &["SCTP", "TCP", "UDP"],
        )),
    }
}

/// The decoded size of a base64 value (Secret data, ConfigMap binaryData).
fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// Checks the keys of a data map and returns its total decoded size.
fn data_keys(data: Option<&Value>, path: &str, base64: bool, errs: &mut Errs) -> usize {
    let Some(data) = data.and_then(Value::as_object) else {
        return 0;
    };
    let mut size = 0;
    for (k, v) in gofmt::sorted(data) {
        for m in names::config_map_key(k) {
            errs.push(invalid(key(path, k), quote(k), m));
        }
        let v = v.as_str().unwrap_or_default();
        size += if base64 { decoded_len(v) } else { v.len() };
    }
    size
}

/// `ValidateConfigMap` and `ValidateConfigMapUpdate`.
pub(super) fn validate_config_map(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), true, NameRule::Subdomain, errs);
        immutable_data(obj, old, &["data", "binaryData"], errs);
    }
    meta_for(obj, None, true, NameRule::Subdomain, errs);
    let mut size = data_keys(obj.get("data"), "data", false, errs);
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (k, _) in gofmt::sorted(data) {
            if field(obj.get("binaryData"), k).is_some() {
                errs.push(invalid(
                    key("data", k),
                    quote(k),
                    "duplicate of key present in binaryData",
                ));
            }
        }
    }
    size += data_keys(obj.get("binaryData"), "binaryData", true, errs);
    if size > MAX_DATA_SIZE {
        errs.push(too_long("", MAX_DATA_SIZE));
    }
}

/// Once `immutable: true`, neither that flag nor the data may change.
fn immutable_data(obj: &Value, old: &Value, fields: &[&str], errs: &mut Errs) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        if semantic(obj.get(*f)) != semantic(old.get(*f)) {
            errs.push(forbidden(*f, "field is immutable when `immutable` is set"));
        }
    }
}

/// `ValidateSecret` and `ValidateSecretUpdate`.
pub(super) fn validate_secret(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), true, NameRule::Subdomain, errs);
        let (new_ty, old_ty) = (text(Some(obj), "type"), text(Some(old), "type"));
        if new_ty != old_ty {
            errs.push(invalid("type", quote(new_ty), "field is immutable"));
        }
        immutable_data(obj, old, &["data"], errs);
    }
    meta_for(obj, None, true, NameRule::Subdomain, errs);
    let data = obj.get("data");
    if data_keys(data, "data", true, errs) > MAX_DATA_SIZE {
        errs.push(too_long("data", MAX_DATA_SIZE));
    }
    let has = |k: &str| field(data, k).is_some();
    match text(Some(obj), "type") {
        "kubernetes.io/service-account-token" => {
            let annotations = field(obj.get("metadata"), "annotations");
            if text(annotations, "kubernetes.io/service-account.name").is_empty() {
                errs.push(required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(required("data[.dockercfg]", ""))
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("data[username]", ""));
            errs.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if text(data, "ssh-privatekey").is_empty() => {
            errs.push(required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(required(key("data", k), ""));
                }
            }
        }
        _ => {}
    }
}

/// `ValidateNamespace` (a DNS-1123 label, cluster-scoped) and `ValidateNamespaceUpdate`.
pub(super) fn validate_namespace(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, false, NameRule::Label, errs);
    if old.is_none() {
        for f in list(obj.get("spec"), "finalizers")
            .iter()
            .filter_map(Value::as_str)
        {
            for m in names::qualified_name(f) {
                errs.push(invalid("spec.finalizers", quote(f), m));
            }
            super::kube_finalizer_name(f, "spec.finalizers", errs);
        }
    }
}

/// The access modes of a claim or volume: each supported, and ReadWriteOncePod alone.
fn access_modes(spec: Option<&Value>, errs: &mut Errs) {
    let (mut once_pod, mut other) = (false, false);
    for mode in list(spec, "accessModes")
        .iter()
        .map(|m| m.as_str().unwrap_or_default())
    {
        match mode {
            "ReadWriteOncePod" => once_pod = true,
            "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" => other = true,
            _ => {
                let supported = [
                    "ReadOnlyMany",
                    "ReadWriteMany",
                    "ReadWriteOnce",
                    "ReadWriteOncePod",
                ];
                errs.push(not_supported("spec.accessModes", quote(mode), &supported));
            }
        }
    }
    if once_pod && other {
        errs.push(forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn volume_mode(spec: Option<&Value>, errs: &mut Errs) {
    if let Some(mode) = field(spec, "volumeMode").and_then(Value::as_str) {
        if !matches!(mode, "Block" | "Filesystem") {
            errs.push(not_supported(
                "spec.volumeMode",
                quote(mode),
                &["Block", "Filesystem"],
            ));
        }
    }
}

fn storage_class(spec: Option<&Value>, errs: &mut Errs) {
    let class = text(spec, "storageClassName");
    for m in if class.is_empty() {
        Vec::new()
    } else {
        names::dns1123_subdomain(class)
    } {
        errs.push(invalid("spec.storageClassName", quote(class), m));
    }
}

/// `ValidatePersistentVolumeClaim` and its update: the spec is immutable but for the storage
/// request (and a first volumeName).
pub(super) fn validate_pvc(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), true, NameRule::Subdomain, errs);
    }
    meta_for(obj, None, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    if list(spec, "accessModes").is_empty() {
        errs.push(required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = field(spec, "selector") {
        super::apps::validate_label_selector(Some(sel), "spec.selector", errs);
    }
    access_modes(spec, errs);
    match field(field(field(spec, "resources"), "requests"), "storage") {
        None => errs.push(required("spec.resources[storage]", "")),
        Some(q) => {
            let shown = gofmt::scalar(Some(q));
            if super::resources::quantity(q).is_some_and(|v| v <= 0.0) {
                errs.push(invalid(
                    "spec.resources[storage]",
                    shown,
                    "must be greater than zero",
                ));
            }
        }
    }
    storage_class(spec, errs);
    volume_mode(spec, errs);
    if let Some(old) = old {
        let (mut new_spec, mut old_spec) = (semantic(spec), semantic(old.get("spec")));
        for s in [&mut new_spec, &mut old_spec] {
            if let Some(requests) = s
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut)
            {
                requests.remove("storage");
            }
        }
        if text(old.get("spec"), "volumeName").is_empty() {
            if let Some(m) = new_spec.as_object_mut() {
                m.remove("volumeName");
            }
        }
        if new_spec != old_spec {
            errs.push(forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
}

/// `ValidatePersistentVolume` (cluster-scoped): access modes, a storage capacity, a supported
/// reclaim policy and exactly one volume source.
pub(super) fn validate_pv(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), false, NameRule::Subdomain, errs);
    }
    meta_for(obj, None, false, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    if list(spec, "accessModes").is_empty() {
        errs.push(required("spec.accessModes", ""));
    }
    access_modes(spec, errs);
    let capacity = field(spec, "capacity").and_then(Value::as_object);
    if capacity.is_none_or(|c| c.is_empty()) {
        errs.push(required("spec.capacity", ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        let shown = capacity.map_or("core.ResourceList(nil)".into(), |c| {
            Value::Object(c.clone()).to_string()
        });
        errs.push(not_supported("spec.capacity", shown, &["storage"]));
    }
    if let Some(policy) = field(spec, "persistentVolumeReclaimPolicy").and_then(Value::as_str) {
        if !matches!(policy, "Delete" | "Recycle" | "Retain") {
            let supported = ["Delete", "Recycle", "Retain"];
            errs.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                quote(policy),
                &supported,
            ));
        }
    }
    const SOURCES: [&str; 22] = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "glusterfs",
        "flocker",
        "nfs",
        "rbd",
        "quobyte",
        "cephfs",
        "iscsi",
        "cinder",
        "fc",
        "flexVolume",
        "azureFile",
        "vsphereVolume",
        "photonPersistentDisk",
        "portworxVolume",
        "azureDisk",
        "scaleIO",
        "local",
        "storageos",
        "csi",
    ];
    let mut count = 0;
    for s in SOURCES {
        if field(spec, s).is_some() {
            count += 1;
            if count > 1 {
                errs.push(forbidden(
                    child("spec", s),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if count == 0 {
        errs.push(required("spec", "must specify a volume type"));
    }
    storage_class(spec, errs);
    volume_mode(spec, errs);
}

/// `ValidateHorizontalPodAutoscaler`: the replica bounds and the scale target.
pub(super) fn validate_hpa(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    let min = int(spec, "minReplicas");
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if let Some(min) = min.filter(|m| *m < 1) {
        errs.push(invalid(
            "spec.minReplicas",
            min.to_string(),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(invalid(
            "spec.maxReplicas",
            max.to_string(),
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|min| max < min) {
        errs.push(invalid(
            "spec.maxReplicas",
            max.to_string(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = field(spec, "scaleTargetRef");
    for k in ["kind", "name"] {
        if text(target, k).is_empty() {
            errs.push(required(child("spec.scaleTargetRef", k), ""));
        }
    }
}
