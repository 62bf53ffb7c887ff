//! kube-apiserver's defaulting and validation of the built-in kinds, on the object as it arrives
//! (decoded JSON): the defaults its scheme fills in (`pkg/apis/*/v1/defaults.go` and the generated
//! `zz_generated.defaults.go`) and the field errors its validation reports
//! (`pkg/apis/*/validation`), with kube-apiserver's paths and exact message texts, so that a 422
//! from here reads as one from kube-apiserver.
//!
//! The work is split by concern into child modules: `defaults` and `pod_defaults` (defaulting),
//! `names` (the format checks of apimachinery), `gofmt` (Go's rendering of bad values), `pod`
//! and `container` (pod specs and templates), `core_kinds` (Service, ConfigMap, Secret, Namespace,
//! volumes, HPA), `apps` (Deployment, ReplicaSet, StatefulSet, DaemonSet, label selectors) and
//! `batch` (Job, CronJob); `resources` checks container resources.

use serde_json::Value;

use super::error::{FieldError, FieldErrorKind};

mod apps;
mod batch;
mod container;
mod core_kinds;
mod defaults;
mod gofmt;
mod names;
mod pod;
mod pod_defaults;
mod resources;
mod status;

use gofmt::quote;

/// Fills what kube-apiserver's defaulters fill (pkg/apis/*/v1/defaults.go and
/// zz_generated.defaults.go in kubernetes/kubernetes), for the object of `kind` in `group` (""
/// for core, "apps", "batch", "autoscaling", "coordination.k8s.io", "events.k8s.io",
/// "discovery.k8s.io").
///
/// A few things kube-apiserver's registry does on create rather than in its defaulters are done
/// here too, because the object is incomplete without them: a Job's generated selector and
/// labels (its `metadata.name` and `metadata.uid` must be set first), a Service's
/// `ipFamilyPolicy`, and folding a Secret's `stringData` into `data`.
pub fn default_object(group: &str, kind: &str, object: &mut Value) {
    defaults::default_object(group, kind, object);
}

/// The status a new object starts with (kube-apiserver's `PrepareForCreate`): a Namespace is
/// Active, with the `kubernetes` finalizer; a Pod is Pending, with its QoS class. Called after
/// defaulting (a Pod's QoS reads its defaulted requests).
pub fn initial_status(group: &str, kind: &str, object: &mut Value) {
    status::initial_status(group, kind, object);
}

/// kube-apiserver's validation (pkg/apis/*/validation/validation.go) for create (`old` None) and
/// update (`old` Some(stored object)); returns every problem found, in kube-apiserver's order
/// where practical. The object should have been defaulted (and its generated name, if any, set)
/// as kube-apiserver does before it validates.
pub fn validate(group: &str, kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    match (group, kind) {
        ("", "Pod") => pod::validate_pod(object, old, &mut errs),
        ("", "PodTemplate") => {
            meta_for(object, old, true, NameRule::Subdomain, &mut errs);
            pod::validate_template(object.get("template"), "template", &mut errs);
        }
        ("", "Service") => core_kinds::validate_service(object, old, &mut errs),
        ("", "ConfigMap") => core_kinds::validate_config_map(object, old, &mut errs),
        ("", "Secret") => core_kinds::validate_secret(object, old, &mut errs),
        ("", "Namespace") => core_kinds::validate_namespace(object, old, &mut errs),
        ("", "PersistentVolumeClaim") => core_kinds::validate_pvc(object, old, &mut errs),
        ("", "PersistentVolume") => core_kinds::validate_pv(object, old, &mut errs),
        ("", "Node") => meta_for(object, old, false, NameRule::Subdomain, &mut errs),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            core_kinds::validate_hpa(object, old, &mut errs)
        }
        ("apps", "Deployment") => apps::validate_deployment(object, old, &mut errs),
        ("apps", "ReplicaSet") => apps::validate_replica_set(object, old, &mut errs),
        ("apps", "StatefulSet") => apps::validate_stateful_set(object, old, &mut errs),
        ("apps", "DaemonSet") => apps::validate_daemon_set(object, old, &mut errs),
        ("batch", "Job") => batch::validate_job(object, old, &mut errs),
        ("batch", "CronJob") => batch::validate_cron_job(object, old, &mut errs),
        // Everything else (ServiceAccount, Endpoints, Lease, EndpointSlice, Event, ...) is checked
        // for its metadata only: a DNS subdomain name, and a namespace when it came with one.
        _ => {
            let namespaced = !text(object.get("metadata"), "namespace").is_empty();
            meta_for(object, old, namespaced, NameRule::Subdomain, &mut errs);
        }
    }
    // kube-apiserver's message lists each distinct cause once (ErrorList.ToAggregate), and
    // several update paths validate the same field twice.
    let mut unique: Vec<FieldError> = Vec::with_capacity(errs.len());
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    unique
}

/// The accumulated causes.
type Errs = Vec<FieldError>;

// ---- Field paths, as Kubernetes' field.Path prints them --------------------------------------

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

// ---- Errors, as Kubernetes' field package builds them ----------------------------------------

fn required(field: impl Into<String>, detail: &str) -> FieldError {
    FieldError::required(field, detail)
}

fn invalid(
    field: impl Into<String>,
    value: impl Into<String>,
    detail: impl Into<String>,
) -> FieldError {
    FieldError::invalid(field, value, detail)
}

/// `field.NotSupported`: the supported values quoted, in the order kube-apiserver lists them.
fn not_supported(
    field: impl Into<String>,
    value: impl Into<String>,
    supported: &[&str],
) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
    let detail = format!("supported values: {}", list.join(", "));
    FieldError::new(
        FieldErrorKind::NotSupported,
        field,
        Some(value.into()),
        detail,
    )
}

fn duplicate(field: impl Into<String>, value: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::Duplicate, field, Some(value.into()), "")
}

fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::Forbidden, field, None, detail)
}

/// `field.TooLong` as kube-apiserver 1.32 words it (the value is never printed).
fn too_long(field: impl Into<String>, max: usize) -> FieldError {
    FieldError::new(
        FieldErrorKind::TooLong,
        field,
        None,
        format!("may not be more than {max} bytes"),
    )
}

/// `field.NotFound` (`spec.containers[0].volumeMounts[0].name: Not found: "data"`).
///
/// FieldErrorKind has no NotFound ("FieldValueNotFound", "Not found") yet, so this stands in
/// with Invalid and the detail "not found" until error.rs gains the kind; it is the one place to
/// change then.
fn not_found(field: impl Into<String>, value: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::NotFound, field, Some(value.into()), "")
}

/// `ValidateNonnegativeField`.
fn nonnegative(v: Option<&Value>, field: impl Into<String>, errs: &mut Errs) {
    if let Some(n) = v.and_then(Value::as_i64).filter(|n| *n < 0) {
        errs.push(invalid(
            field,
            n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// `ValidateImmutableField` on two JSON values, compared as Go's semantic equality would (an
/// absent field equals its zero value). `shown` renders the new value as kube-apiserver does.
fn immutable(
    new: Option<&Value>,
    old: Option<&Value>,
    field: &str,
    shown: fn(Option<&Value>) -> String,
    errs: &mut Errs,
) {
    if semantic(new) != semantic(old) {
        errs.push(invalid(field, shown(new), "field is immutable"));
    }
}

/// A JSON value with its Go zero values removed (null, "", false, 0, empty lists), so that two
/// objects compare as Go's `apiequality.Semantic.DeepEqual` compares their decoded structs.
fn semantic(v: Option<&Value>) -> Value {
    fn zero(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(a) => a.is_empty(),
            Value::Object(_) => false,
        }
    }
    match v {
        None => Value::Null,
        Some(Value::Object(m)) => Value::Object(
            m.iter()
                .filter(|(_, v)| !zero(v))
                .map(|(k, v)| (k.clone(), semantic(Some(v))))
                .collect(),
        ),
        Some(Value::Array(a)) => Value::Array(a.iter().map(|v| semantic(Some(v))).collect()),
        Some(other) if zero(other) => Value::Null,
        Some(other) => other.clone(),
    }
}

// ---- Reading the decoded object --------------------------------------------------------------

fn field<'a>(v: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    v?.get(k).filter(|v| !v.is_null())
}

fn text<'a>(v: Option<&'a Value>, k: &str) -> &'a str {
    field(v, k).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: Option<&'a Value>, k: &str) -> &'a [Value] {
    field(v, k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn int(v: Option<&Value>, k: &str) -> Option<i64> {
    field(v, k).and_then(Value::as_i64)
}

// ---- Object metadata -------------------------------------------------------------------------

/// Which name format a kind requires of `metadata.name`.
#[derive(Debug, Clone, Copy)]
enum NameRule {
    /// `NameIsDNSSubdomain`: most kinds.
    Subdomain,
    /// `NameIsDNSLabel`: Namespace, StatefulSet.
    Label,
    /// `NameIsDNS1035Label`: Service.
    Dns1035,
}

impl NameRule {
    /// The messages for a name, or for a `generateName` prefix (whose trailing dash is masked,
    /// as the random suffix will follow it).
    fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len().saturating_sub(2)]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Subdomain => names::dns1123_subdomain(name),
            NameRule::Label => names::dns1123_label(name),
            NameRule::Dns1035 => names::dns1035_label(name),
        }
    }
}

/// The metadata checks of create, or of update when `old` is given.
fn meta_for(obj: &Value, old: Option<&Value>, namespaced: bool, rule: NameRule, errs: &mut Errs) {
    match old {
        None => validate_meta(obj, namespaced, rule, errs),
        Some(old) => validate_meta_update(obj, old, errs),
    }
}

/// `ValidateObjectMeta` (apimachinery's, then core's finalizer check). A name still empty while
/// `generateName` is set is taken as one the caller has yet to generate.
fn validate_meta(obj: &Value, namespaced: bool, rule: NameRule, errs: &mut Errs) {
    let meta = obj.get("metadata");
    let generate = text(meta, "generateName");
    let name = text(meta, "name");
    if !generate.is_empty() {
        for m in rule.check(generate, true) {
            errs.push(invalid("metadata.generateName", quote(generate), m));
        }
    }
    if name.is_empty() {
        if generate.is_empty() {
            errs.push(required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for m in rule.check(name, false) {
            errs.push(invalid("metadata.name", quote(name), m));
        }
    }
    if namespaced {
        let ns = text(meta, "namespace");
        if ns.is_empty() {
            errs.push(required("metadata.namespace", ""));
        } else {
            for m in names::dns1123_label(ns) {
                errs.push(invalid("metadata.namespace", quote(ns), m));
            }
        }
    }
    validate_meta_common(meta, errs);
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable. kube-apiserver copies an omitted
/// uid, creationTimestamp, deletionTimestamp and deletionGracePeriodSeconds from the stored
/// object before it validates, so only a differing value that was sent is an error here.
fn validate_meta_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let (meta, old_meta) = (obj.get("metadata"), old.get("metadata"));
    if field(old_meta, "deletionTimestamp").is_some() {
        let before: Vec<&str> = list(old_meta, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut added: Vec<&str> = list(meta, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !before.contains(f))
            .collect();
        added.sort_unstable();
        added.dedup();
        if !added.is_empty() {
            let shown: Vec<String> = added.iter().map(|f| quote(f)).collect();
            let detail = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                shown.join(", ")
            );
            errs.push(forbidden("metadata.finalizers", detail));
        }
    }
    for (name, always) in [("name", true), ("namespace", true), ("uid", false)] {
        let (new, prev) = (text(meta, name), text(old_meta, name));
        if new != prev && (always || !new.is_empty()) {
            errs.push(invalid(
                child("metadata", name),
                quote(new),
                "field is immutable",
            ));
        }
    }
    for name in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (new, prev) = (field(meta, name), field(old_meta, name));
        let copied = name != "creationTimestamp" && prev.is_some();
        if new.is_some() && new != prev && !copied {
            let shown = match name {
                "deletionGracePeriodSeconds" => gofmt::scalar(new),
                _ => gofmt::time(new),
            };
            errs.push(invalid(
                child("metadata", name),
                shown,
                "field is immutable",
            ));
        }
    }
    validate_meta_common(meta, errs);
}

/// The metadata checks shared by create and update: labels, annotations, owner references and
/// finalizers.
fn validate_meta_common(meta: Option<&Value>, errs: &mut Errs) {
    validate_labels(field(meta, "labels"), "metadata.labels", errs);
    validate_annotations(field(meta, "annotations"), "metadata.annotations", errs);
    for r in list(meta, "ownerReferences") {
        let r = Some(r);
        let version = text(r, "apiVersion").rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(invalid(
                "metadata.ownerReferences.apiVersion",
                quote(text(r, "apiVersion")),
                "version must not be empty",
            ));
        }
        for k in ["kind", "name", "uid"] {
            if text(r, k).is_empty() {
                errs.push(invalid(
                    child("metadata.ownerReferences", k),
                    "\"\"",
                    "must not be empty",
                ));
            }
        }
    }
    let finalizers: Vec<&str> = list(meta, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in &finalizers {
        for m in names::qualified_name(f) {
            errs.push(invalid("metadata.finalizers", quote(f), m));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        let shown: Vec<String> = finalizers.iter().map(|f| quote(f)).collect();
        errs.push(invalid(
            "metadata.finalizers",
            format!("[]string{{{}}}", shown.join(", ")),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        kube_finalizer_name(f, &index("metadata.finalizers", i), errs);
    }
}

/// `validateKubeFinalizerName`: an unqualified finalizer must be one of Kubernetes' own.
fn kube_finalizer_name(f: &str, path: &str, errs: &mut Errs) {
    if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
        errs.push(invalid(
            path,
            quote(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

/// `ValidateLabels`: every key a qualified name, every value a label value, both reported at
/// the map's own path.
fn validate_labels(labels: Option<&Value>, path: &str, errs: &mut Errs) {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in gofmt::sorted(labels) {
        for m in names::qualified_name(k) {
            errs.push(invalid(path, quote(k), m));
        }
        let v = v.as_str().unwrap_or_default();
        for m in names::label_value(v) {
            errs.push(invalid(path, quote(v), m));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively) and all of them together
/// stay under 256 KiB.
fn validate_annotations(annotations: Option<&Value>, path: &str, errs: &mut Errs) {
    let Some(annotations) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut size = 0;
    for (k, v) in gofmt::sorted(annotations) {
        for m in names::qualified_name(&k.to_lowercase()) {
            errs.push(invalid(path, quote(k), m));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    if size > 256 * 1024 {
        errs.push(too_long(path, 256 * 1024));
    }
}

#[cfg(test)]
#[path = "validation_test.rs"]
mod tests;
