//! The defaults of a pod spec, in a Pod or in a workload's template: `SetDefaults_PodSpec`,
//! `SetDefaults_Pod` for a Pod itself, and the generated defaults of its volumes, containers,
//! ports, env, probes and hooks (`pkg/apis/core/v1/defaults.go`, `zz_generated.defaults.go`).

use serde_json::{json, Map, Value};

use super::defaults::{each, object, object_at, set, text};

/// `SetDefaults_PodSpec` and the generated defaults of everything a pod spec holds; for a Pod
/// itself (`is_pod`) also `SetDefaults_Pod`.
pub(super) fn pod_spec(spec: &mut Map<String, Value>, is_pod: bool) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "securityContext", json!({}));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "schedulerName", json!("default-scheduler"));
    each(spec, "volumes", volume);
    for kind in ["initContainers", "containers", "ephemeralContainers"] {
        each(spec, kind, container);
    }
    if !is_pod {
        return;
    }
    set(spec, "enableServiceLinks", json!(true));
    for kind in ["initContainers", "containers"] {
        // Requests default to the limits a container sets without them.
        each(spec, kind, |c| {
            let Some(resources) = object_at(c, "resources") else {
                return;
            };
            let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
                return;
            };
            if let Some(requests) = object(resources, "requests") {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        });
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for kind in ["initContainers", "containers"] {
            each(spec, kind, |c| {
                each(c, "ports", |p| {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        let port = p.get("containerPort").cloned().unwrap_or(Value::Null);
                        p.insert("hostPort".into(), port);
                    }
                });
            });
        }
    }
}

/// The volume source fields of `VolumeSource`: a volume with none of them is an emptyDir.
const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// `SetDefaults_Volume` and the defaults of its sources.
fn volume(vol: &mut Map<String, Value>) {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| vol.get(*s).is_some_and(|v| !v.is_null()))
    {
        vol.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = object_at(vol, source) {
            set(src, "defaultMode", json!(420));
        }
    }
    if let Some(host) = object_at(vol, "hostPath") {
        set(host, "type", json!(""));
    }
    if let Some(api) = object_at(vol, "downwardAPI") {
        each(api, "items", field_ref);
    }
    if let Some(projected) = object_at(vol, "projected") {
        each(projected, "sources", |s| {
            if let Some(token) = object_at(s, "serviceAccountToken") {
                set(token, "expirationSeconds", json!(3600));
            }
            if let Some(api) = object_at(s, "downwardAPI") {
                each(api, "items", field_ref);
            }
        });
    }
    if let Some(claim) = vol
        .get_mut("ephemeral")
        .and_then(|e| e.get_mut("volumeClaimTemplate"))
    {
        if let Some(spec) = claim.get_mut("spec").and_then(Value::as_object_mut) {
            set(spec, "volumeMode", json!("Filesystem"));
        }
    }
}

/// `SetDefaults_ObjectFieldSelector` for an item holding a `fieldRef`.
fn field_ref(item: &mut Map<String, Value>) {
    if let Some(f) = object_at(item, "fieldRef") {
        set(f, "apiVersion", json!("v1"));
    }
}

/// Whether an image reference names no tag (or `latest`) and no digest, after which kubelet
/// would re-pull it: parsers.ParseImageName's tag is then "latest". A reference that does not
/// parse (upper case in the repository) has no tag.
fn pulls_latest(image: &str) -> bool {
    if image.is_empty() || image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let repository = image
        .rsplit_once(':')
        .filter(|_| last.contains(':'))
        .map_or(image, |(r, _)| r);
    // The registry host may be in any case; the repository path must be lower case.
    let path = match repository.split_once('/') {
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => path,
        _ => repository,
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

/// `SetDefaults_Container` and the generated defaults of its ports, env, probes and hooks.
fn container(c: &mut Map<String, Value>) {
    let policy = if pulls_latest(text(c, "image")) {
        "Always"
    } else {
        "IfNotPresent"
    };
    set(c, "imagePullPolicy", json!(policy));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    // ResourceRequirements is a struct, not a pointer: it is always written, if empty.
    set(c, "resources", json!({}));
    each(c, "ports", |p| set(p, "protocol", json!("TCP")));
    each(c, "env", |e| {
        if let Some(from) = object_at(e, "valueFrom") {
            field_ref(from);
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = object_at(c, probe) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            handler(p);
            if let Some(grpc) = object_at(p, "grpc") {
                set(grpc, "service", json!(""));
            }
        }
    }
    if let Some(lifecycle) = object_at(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = object_at(lifecycle, hook) {
                handler(h);
            }
        }
    }
}

/// `SetDefaults_HTTPGetAction`.
fn handler(h: &mut Map<String, Value>) {
    if let Some(get) = object_at(h, "httpGet") {
        set(get, "path", json!("/"));
        set(get, "scheme", json!("HTTP"));
    }
}
