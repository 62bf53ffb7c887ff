//! Pod validation: kube-apiserver's `ValidatePodSpec` (volumes, DNS, tolerations and the rest of
//! the spec; containers are in `container`), `ValidatePodTemplateSpec` for the templates of
//! workloads, and a Pod's own create and update rules.

use serde_json::Value;

use super::container;
use super::gofmt::{self, quote};
use super::{
    child, duplicate, field, forbidden, index, int, invalid, list, names, not_supported, required,
    semantic, text, validate_annotations, validate_labels, validate_meta, validate_meta_update,
    Errs, NameRule,
};

/// The volumes that validated, by name, for the mounts to refer to.
pub(super) type Volumes<'a> = Vec<&'a str>;

/// `ValidatePodCreate` or `ValidatePodUpdate`.
pub(super) fn validate_pod(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        validate_meta_update(obj, old, errs);
    }
    validate_meta(obj, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    validate_spec(spec, "spec", true, errs);
    for kind in ["containers", "initContainers"] {
        for (i, c) in list(spec, kind).iter().enumerate() {
            let image = text(Some(c), "image");
            if image.trim() != image {
                let path = child(&index(&child("spec", kind), i), "image");
                errs.push(invalid(
                    path,
                    quote(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match old {
        None => {
            if !list(spec, "ephemeralContainers").is_empty() {
                errs.push(forbidden(
                    "spec.ephemeralContainers",
                    "cannot be set on create",
                ));
            }
            if !text(spec, "nodeName").is_empty() && !list(spec, "schedulingGates").is_empty() {
                errs.push(forbidden(
                    "spec.nodeName",
                    "cannot be set until all schedulingGates have been cleared",
                ));
            }
        }
        Some(old) => validate_pod_update(spec, old.get("spec"), errs),
    }
}

/// The fields of a running pod's spec that an update may change.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The rest of `ValidatePodUpdate`: only images, activeDeadlineSeconds (downwards), tolerations
/// and scheduling gates may change.
fn validate_pod_update(spec: Option<&Value>, old: Option<&Value>, errs: &mut Errs) {
    for kind in ["containers", "initContainers"] {
        let (new_list, old_list) = (list(spec, kind), list(old, kind));
        if new_list.len() != old_list.len() {
            errs.push(forbidden(
                child("spec", kind),
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in new_list.iter().enumerate() {
            if text(Some(c), "image").is_empty() {
                errs.push(required(
                    child(&index(&child("spec", kind), i), "image"),
                    "",
                ));
            }
        }
    }
    let (deadline, old_deadline) = (
        int(spec, "activeDeadlineSeconds"),
        int(old, "activeDeadlineSeconds"),
    );
    match (deadline, old_deadline) {
        (Some(d), _) if !(0..=i64::from(i32::MAX)).contains(&d) => {
            errs.push(invalid(
                "spec.activeDeadlineSeconds",
                d.to_string(),
                "must be between 0 and 2147483647, inclusive",
            ));
            return;
        }
        (Some(d), Some(o)) if o < d => {
            errs.push(invalid(
                "spec.activeDeadlineSeconds",
                d.to_string(),
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Munge the updatable fields back to their old values; whatever still differs is forbidden.
    let mut munged = spec.cloned().unwrap_or(Value::Null);
    for kind in ["containers", "initContainers"] {
        for (i, c) in list(old, kind).iter().enumerate() {
            if let Some(slot) = munged.pointer_mut(&format!("/{kind}/{i}/image")) {
                *slot = c.get("image").cloned().unwrap_or(Value::Null);
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for f in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match old.and_then(|o| o.get(f)) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
    }
    let (munged, old) = (semantic(Some(&munged)), semantic(old));
    if munged != old {
        // kube-apiserver appends go-cmp's diff of the two specs; this lists the fields that
        // differ, old then new, in a simpler form.
        let mut diff = String::new();
        if let (Some(new_map), Some(old_map)) = (munged.as_object(), old.as_object()) {
            let mut keys: Vec<&String> = new_map.keys().chain(old_map.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys
                .into_iter()
                .filter(|k| new_map.get(*k) != old_map.get(*k))
            {
                diff.push_str(&format!(
                    "- {k}: {}\n+ {k}: {}\n",
                    gofmt::scalar(old_map.get(k)),
                    gofmt::scalar(new_map.get(k))
                ));
            }
        }
        errs.push(forbidden(
            "spec",
            format!("pod updates may not change fields other than {UPDATABLE}\n{diff}"),
        ));
    }
}

/// `ValidatePodTemplateSpec`. Its labels and annotations are reported at `<path>.labels`, not
/// `<path>.metadata.labels`, as kube-apiserver does.
pub(super) fn validate_template(template: Option<&Value>, path: &str, errs: &mut Errs) {
    let meta = field(template, "metadata");
    validate_labels(field(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(
        field(meta, "annotations"),
        &child(path, "annotations"),
        errs,
    );
    let spec_path = child(path, "spec");
    validate_spec(field(template, "spec"), &spec_path, false, errs);
    if !list(field(template, "spec"), "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `ValidatePodSpec`. `is_pod` is kube-apiserver's ResourceIsPod: a template may leave a
/// host-network port's hostPort unset, a pod may not.
pub(super) fn validate_spec(spec: Option<&Value>, path: &str, is_pod: bool, errs: &mut Errs) {
    if field(spec, "terminationGracePeriodSeconds").is_none() {
        errs.push(required(child(path, "terminationGracePeriodSeconds"), ""));
    }
    let grace = int(spec, "terminationGracePeriodSeconds");
    let volumes = validate_volumes(list(spec, "volumes"), &child(path, "volumes"), errs);
    container::validate_containers(spec, &volumes, path, grace, errs);
    container::validate_init_containers(spec, &volumes, path, grace, errs);
    if field(spec, "hostNetwork").and_then(Value::as_bool) == Some(true) {
        for (i, c) in list(spec, "containers").iter().enumerate() {
            for (j, p) in list(Some(c), "ports").iter().enumerate() {
                let (host, cont) = (
                    int(Some(p), "hostPort").unwrap_or(0),
                    int(Some(p), "containerPort").unwrap_or(0),
                );
                if (is_pod || host != 0) && host != cont {
                    let at = format!("{path}.containers[{i}].ports[{j}].hostPort");
                    errs.push(invalid(
                        at,
                        host.to_string(),
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    one_of(
        spec,
        path,
        "restartPolicy",
        &["Always", "OnFailure", "Never"],
        errs,
    );
    one_of(
        spec,
        path,
        "dnsPolicy",
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        errs,
    );
    validate_labels(
        field(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
        errs,
    );
    validate_dns_config(spec, &child(path, "dnsConfig"), errs);
    for (i, gate) in list(spec, "readinessGates").iter().enumerate() {
        let ty = text(Some(gate), "conditionType");
        for m in names::qualified_name(ty) {
            errs.push(invalid(
                child(&index(&child(path, "readinessGates"), i), "conditionType"),
                quote(ty),
                m,
            ));
        }
    }
    let mut gates: Vec<&str> = Vec::new();
    for (i, gate) in list(spec, "schedulingGates").iter().enumerate() {
        let (name, at) = (
            text(Some(gate), "name"),
            index(&child(path, "schedulingGates"), i),
        );
        for m in names::qualified_name(name) {
            errs.push(invalid(&at, quote(name), m));
        }
        if gates.contains(&name) {
            errs.push(duplicate(at, quote(name)));
        }
        gates.push(name);
    }
    for f in ["serviceAccountName", "nodeName"] {
        subdomain_if_set(spec, path, f, errs);
    }
    if let Some(d) =
        int(spec, "activeDeadlineSeconds").filter(|d| !(1..=i64::from(i32::MAX)).contains(d))
    {
        let detail = "must be between 1 and 2147483647, inclusive";
        errs.push(invalid(
            child(path, "activeDeadlineSeconds"),
            d.to_string(),
            detail,
        ));
    }
    for f in ["hostname", "subdomain"] {
        let v = text(spec, f);
        for m in if v.is_empty() {
            Vec::new()
        } else {
            names::dns1123_label(v)
        } {
            errs.push(invalid(child(path, f), quote(v), m));
        }
    }
    validate_tolerations(list(spec, "tolerations"), &child(path, "tolerations"), errs);
    subdomain_if_set(spec, path, "priorityClassName", errs);
    if let Some(p) = field(spec, "preemptionPolicy").and_then(Value::as_str) {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            let supported = ["PreemptLowerPriority", "Never"];
            errs.push(not_supported(
                child(path, "preemptionPolicy"),
                quote(p),
                &supported,
            ));
        }
    }
}

/// A required enumerated string: `Required value` when empty, `Unsupported value` when unknown.
pub(super) fn one_of(
    obj: Option<&Value>,
    path: &str,
    name: &str,
    supported: &[&str],
    errs: &mut Errs,
) {
    match text(obj, name) {
        "" => errs.push(required(child(path, name), "")),
        v if supported.contains(&v) => {}
        v => errs.push(not_supported(child(path, name), quote(v), supported)),
    }
}

fn subdomain_if_set(obj: Option<&Value>, path: &str, name: &str, errs: &mut Errs) {
    let v = text(obj, name);
    for m in if v.is_empty() {
        Vec::new()
    } else {
        names::dns1123_subdomain(v)
    } {
        errs.push(invalid(child(path, name), quote(v), m));
    }
}

fn validate_dns_config(spec: Option<&Value>, path: &str, errs: &mut Errs) {
    let config = field(spec, "dnsConfig");
    if text(spec, "dnsPolicy") == "None" {
        if config.is_none() {
            errs.push(required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return;
        }
        if list(config, "nameservers").is_empty() {
            let detail = "must provide at least one DNS nameserver when `dnsPolicy` is None";
            errs.push(required(child(path, "nameservers"), detail));
            return;
        }
    }
    let servers = list(config, "nameservers");
    if servers.len() > 3 {
        let shown = gofmt::string_slice(field(config, "nameservers"));
        errs.push(invalid(
            child(path, "nameservers"),
            shown,
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in servers.iter().enumerate() {
        let ns = ns.as_str().unwrap_or_default();
        for m in names::ip(ns) {
            errs.push(invalid(index(&child(path, "nameservers"), i), quote(ns), m));
        }
    }
    for (i, option) in list(config, "options").iter().enumerate() {
        if text(Some(option), "name").is_empty() {
            errs.push(required(
                index(&child(path, "options"), i),
                "must not be empty",
            ));
        }
    }
}

/// The volume source fields in the order kube-apiserver tries them, with the name it uses in
/// its "more than 1 volume type" message (a few differ from the JSON field, as upstream).
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// `ValidateVolumes`: returns the names of the volumes that validated.
fn validate_volumes<'a>(volumes: &'a [Value], path: &str, errs: &mut Errs) -> Volumes<'a> {
    let mut valid = Volumes::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let (at, vol) = (index(path, i), Some(vol));
        let name = text(vol, "name");
        let mut el = Errs::new();
        volume_source(vol, &at, &mut el);
        if name.is_empty() {
            el.push(required(child(&at, "name"), ""));
        } else {
            for m in names::dns1123_label(name) {
                el.push(invalid(child(&at, "name"), quote(name), m));
            }
        }
        if seen.contains(&name) {
            el.push(duplicate(child(&at, "name"), quote(name)));
        }
        if el.is_empty() {
            seen.push(name);
            valid.push(name);
        } else {
            errs.append(&mut el);
        }
    }
    valid
}

/// `validateVolumeSource`: exactly one source, and the common sources' own required fields.
fn volume_source(vol: Option<&Value>, path: &str, errs: &mut Errs) {
    let mut count = 0;
    for (json, shown) in VOLUME_SOURCES {
        let Some(src) = field(vol, json) else {
            continue;
        };
        count += 1;
        if count > 1 {
            errs.push(forbidden(
                child(path, shown),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        let (at, src) = (child(path, json), Some(src));
        let must = |name: &str, errs: &mut Errs| {
            if text(src, name).is_empty() {
                errs.push(required(child(&at, name), ""));
            }
        };
        match json {
            "hostPath" => {
                must("path", errs);
                no_backsteps(text(src, "path"), &child(&at, "path"), errs);
            }
            "secret" => must("secretName", errs),
            "configMap" | "persistentVolumeClaim" | "nfs" | "gitRepo" | "csi" => {
                let name = match json {
                    "configMap" => "name",
                    "persistentVolumeClaim" => "claimName",
                    "nfs" => "server",
                    "gitRepo" => "repository",
                    _ => "driver",
                };
                must(name, errs);
                if json == "nfs" {
                    must("path", errs);
                    if !text(src, "path").starts_with('/') {
                        errs.push(invalid(
                            child(&at, "path"),
                            quote(text(src, "path")),
                            "must be an absolute path",
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(mode) = int(src, "defaultMode").filter(|m| !(0..=0o777).contains(m)) {
            let detail = "must be a number between 0 and 0777 (octal), both inclusive";
            errs.push(invalid(child(&at, "defaultMode"), mode.to_string(), detail));
        }
        for (j, item) in list(src, "items").iter().enumerate() {
            let item_path = index(&child(&at, "items"), j);
            for k in ["key", "path"] {
                if text(Some(item), k).is_empty() && json != "downwardAPI" {
                    errs.push(required(child(&item_path, k), ""));
                }
            }
            local_path(text(Some(item), "path"), &child(&item_path, "path"), errs);
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a volume type"));
    }
}

pub(super) fn no_backsteps(p: &str, path: &str, errs: &mut Errs) {
    if p.split('/').any(|part| part == "..") {
        errs.push(invalid(path, quote(p), "must not contain '..'"));
    }
}

/// `ValidateLocalNonReservedPath`: relative, without `..` elements, not starting with `..`.
fn local_path(p: &str, path: &str, errs: &mut Errs) {
    if p.starts_with('/') {
        errs.push(invalid(path, quote(p), "must be a relative path"));
    }
    no_backsteps(p, path, errs);
    if p.starts_with("..") && !p.starts_with("../") {
        errs.push(invalid(path, quote(p), "must not start with '..'"));
    }
}

/// `ValidateTolerations`.
fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut Errs) {
    for (i, t) in tolerations.iter().enumerate() {
        let (at, t) = (index(path, i), Some(t));
        let (k, op, value, effect) = (
            text(t, "key"),
            text(t, "operator"),
            text(t, "value"),
            text(t, "effect"),
        );
        for m in if k.is_empty() {
            Vec::new()
        } else {
            names::qualified_name(k)
        } {
            errs.push(invalid(child(&at, "key"), quote(k), m));
        }
        if k.is_empty() && op != "Exists" {
            let detail = "operator must be Exists when `key` is empty, which means \"match all values and all keys\"";
            errs.push(invalid(child(&at, "operator"), quote(op), detail));
        }
        if field(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            let detail = "effect must be 'NoExecute' when `tolerationSeconds` is set";
            errs.push(invalid(child(&at, "effect"), quote(effect), detail));
        }
        match op {
            "" | "Equal" => {
                let msgs = names::label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(
                        child(&at, "operator"),
                        quote(value),
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => {
                let detail = "value must be empty when `operator` is 'Exists'";
                errs.push(invalid(child(&at, "operator"), quote(value), detail));
            }
            "Exists" => {}
            other => errs.push(not_supported(
                child(&at, "operator"),
                quote(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            let supported = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
            errs.push(not_supported(
                child(&at, "effect"),
                quote(effect),
                &supported,
            ));
        }
    }
}
