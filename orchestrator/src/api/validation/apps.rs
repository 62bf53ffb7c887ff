//! Validation of the apps kinds (`pkg/apis/apps/validation` and the apps registry strategies):
//! Deployment, ReplicaSet, StatefulSet and DaemonSet, and the label selectors all controllers
//! share.

use serde_json::Value;

use super::gofmt::{self, quote};
use super::{
    child, field, forbidden, immutable, index, int, invalid, list, meta_for, names, nonnegative,
    not_supported, pod, required, semantic, text, validate_annotations, validate_labels, Errs,
    NameRule,
};

/// One parsed requirement of a label selector.
#[derive(Debug)]
pub(super) enum Requirement<'a> {
    In(&'a str, Vec<&'a str>),
    NotIn(&'a str, Vec<&'a str>),
    Exists(&'a str),
    DoesNotExist(&'a str),
}

/// What `metav1.LabelSelectorAsSelector` makes of a selector.
#[derive(Debug)]
pub(super) enum Selector<'a> {
    /// A nil selector: matches nothing, and is not "empty".
    Nothing,
    /// `{}`: matches everything.
    Everything,
    Requirements(Vec<Requirement<'a>>),
}

impl Selector<'_> {
    fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    pub(super) fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| field(labels, k).and_then(Value::as_str);
        match self {
            Selector::Nothing => false,
            Selector::Everything => true,
            Selector::Requirements(reqs) => reqs.iter().all(|r| match r {
                Requirement::In(k, vs) => get(k).is_some_and(|v| vs.contains(&v)),
                Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(&v)),
                Requirement::Exists(k) => get(k).is_some(),
                Requirement::DoesNotExist(k) => get(k).is_none(),
            }),
        }
    }
}

/// `LabelSelectorAsSelector`: `None` when a requirement is malformed (bad operator, key or
/// value, or a value count that does not fit the operator).
pub(super) fn as_selector(sel: Option<&Value>) -> Option<Selector<'_>> {
    let Some(sel) = sel else {
        return Some(Selector::Nothing);
    };
    let labels = field(Some(sel), "matchLabels").and_then(Value::as_object);
    let exprs = list(Some(sel), "matchExpressions");
    if labels.is_none_or(|l| l.is_empty()) && exprs.is_empty() {
        return Some(Selector::Everything);
    }
    let valid_key = |k: &str| names::qualified_name(k).is_empty();
    let mut reqs = Vec::new();
    for (k, v) in labels.map(gofmt::sorted).unwrap_or_default() {
        let v = v.as_str().unwrap_or_default();
        if !valid_key(k) || !names::label_value(v).is_empty() {
            return None;
        }
        reqs.push(Requirement::In(k, vec![v]));
    }
    for e in exprs {
        let e = Some(e);
        let (k, values) = (text(e, "key"), list(e, "values"));
        let values: Vec<&str> = values
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect();
        if !valid_key(k) || values.iter().any(|v| !names::label_value(v).is_empty()) {
            return None;
        }
        reqs.push(match (text(e, "operator"), values.is_empty()) {
            ("In", false) => Requirement::In(k, values),
            ("NotIn", false) => Requirement::NotIn(k, values),
            ("Exists", true) => Requirement::Exists(k),
            ("DoesNotExist", true) => Requirement::DoesNotExist(k),
            _ => return None,
        });
    }
    Some(Selector::Requirements(reqs))
}

/// `ValidateLabelSelector`.
pub(super) fn validate_label_selector(sel: Option<&Value>, path: &str, errs: &mut Errs) {
    let Some(sel) = sel else { return };
    validate_labels(
        field(Some(sel), "matchLabels"),
        &child(path, "matchLabels"),
        errs,
    );
    for (i, e) in list(Some(sel), "matchExpressions").iter().enumerate() {
        let (at, e) = (index(&child(path, "matchExpressions"), i), Some(e));
        let op = text(e, "operator");
        match op {
            "In" | "NotIn" if list(e, "values").is_empty() => {
                errs.push(required(
                    child(&at, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
            "Exists" | "DoesNotExist" if !list(e, "values").is_empty() => {
                let detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'";
                errs.push(forbidden(child(&at, "values"), detail));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(invalid(
                child(&at, "operator"),
                quote(other),
                "not a valid selector operator",
            )),
        }
        let k = text(e, "key");
        for m in names::qualified_name(k) {
            errs.push(invalid(child(&at, "key"), quote(k), m));
        }
    }
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet: required, valid, not
/// empty. Returns the parsed selector for the template check, or `None` when it is invalid.
fn required_selector<'a>(
    spec: Option<&'a Value>,
    kind: &str,
    errs: &mut Errs,
) -> Option<Selector<'a>> {
    let sel = field(spec, "selector");
    match sel {
        None => errs.push(required("spec.selector", "")),
        Some(s) => {
            validate_label_selector(Some(s), "spec.selector", errs);
            if as_selector(Some(s)).is_some_and(|s| s.is_empty()) {
                let detail = format!("empty selector is invalid for {kind}");
                errs.push(invalid(
                    "spec.selector",
                    gofmt::label_selector(Some(s)),
                    detail,
                ));
            }
        }
    }
    let parsed = as_selector(sel);
    if parsed.is_none() {
        let detail = if kind == "statefulset" {
            ""
        } else {
            "invalid label selector"
        };
        errs.push(invalid("spec.selector", gofmt::label_selector(sel), detail));
    }
    parsed
}

/// The template's labels must satisfy the selector.
fn template_matches(sel: &Selector, template: Option<&Value>, errs: &mut Errs) {
    let labels = field(field(template, "metadata"), "labels");
    if !sel.is_empty() && !sel.matches(labels) {
        let detail = "`selector` does not match template `labels`";
        errs.push(invalid(
            "spec.template.metadata.labels",
            gofmt::string_map(labels),
            detail,
        ));
    }
}

/// A controller's pods must restart always and have no deadline.
fn always_restart(template: Option<&Value>, kind: &str, errs: &mut Errs) {
    let spec = field(template, "spec");
    let policy = text(spec, "restartPolicy");
    if policy != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            quote(policy),
            &["Always"],
        ));
    }
    if field(spec, "activeDeadlineSeconds").is_some() {
        let detail = format!("activeDeadlineSeconds in {kind} is not Supported");
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            detail,
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn replica_set_template(spec: Option<&Value>, sel: &Selector, errs: &mut Errs) {
    let template = field(spec, "template");
    template_matches(sel, template, errs);
    pod::validate_template(template, "spec.template", errs);
    always_restart(template, "ReplicaSet", errs);
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`; returns the int or percent.
fn int_or_percent(v: Option<&Value>, path: &str, errs: &mut Errs) -> i64 {
    match v {
        Some(Value::String(s)) => {
            let msgs = names::percent(s);
            let shown = gofmt::int_or_string(v);
            errs.extend(msgs.iter().map(|m| invalid(path, shown.clone(), m.clone())));
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            if msgs.is_empty() && pct > 100 {
                errs.push(invalid(path, shown, "must not be greater than 100%"));
            }
            if msgs.is_empty() {
                pct
            } else {
                0
            }
        }
        other => {
            nonnegative(other, path, errs);
            other.and_then(Value::as_i64).unwrap_or(0)
        }
    }
}

/// The selector of an apps/v1 controller may not change (the registry strategies' check).
fn selector_immutable(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        let (new, prev) = (obj.pointer("/spec/selector"), old.pointer("/spec/selector"));
        immutable(new, prev, "spec.selector", gofmt::label_selector, errs);
    }
}

/// `ValidateDeployment` / `ValidateDeploymentUpdate`, then the strategy's selector check.
pub(super) fn validate_deployment(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    nonnegative(field(spec, "replicas"), "spec.replicas", errs);
    if let Some(sel) = required_selector(spec, "deployment", errs) {
        replica_set_template(spec, &sel, errs);
    }
    let strategy = field(spec, "strategy");
    match text(strategy, "type") {
        "Recreate" if field(strategy, "rollingUpdate").is_some() => errs.push(forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        )),
        "Recreate" => {}
        "RollingUpdate" => match field(strategy, "rollingUpdate") {
            None => errs.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let path = "spec.strategy.rollingUpdate";
                let unavailable = field(Some(ru), "maxUnavailable");
                let mut scratch = Errs::new();
                let u = int_or_percent(unavailable, &child(path, "maxUnavailable"), &mut scratch);
                let s = int_or_percent(
                    field(Some(ru), "maxSurge"),
                    &child(path, "maxSurge"),
                    &mut scratch,
                );
                // kube-apiserver reports the 100% bound for maxUnavailable only, after the zero check.
                let (over, mut rest): (Errs, Errs) = scratch.into_iter().partition(|e| {
                    e.detail == "must not be greater than 100%"
                        && e.field.ends_with("maxUnavailable")
                });
                rest.retain(|e| e.detail != "must not be greater than 100%");
                errs.append(&mut rest);
                if u == 0 && s == 0 {
                    let shown = gofmt::int_or_string(unavailable);
                    errs.push(invalid(
                        child(path, "maxUnavailable"),
                        shown,
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(over);
            }
        },
        other => {
            let shown = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}",
                quote(other),
                gofmt::pointer(
                    "apps.RollingUpdateDeployment",
                    field(strategy, "rollingUpdate")
                )
            );
            errs.push(not_supported(
                "spec.strategy",
                shown,
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    let min_ready = int(spec, "minReadySeconds").unwrap_or(0);
    nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
    nonnegative(
        field(spec, "revisionHistoryLimit"),
        "spec.revisionHistoryLimit",
        errs,
    );
    if let Some(deadline) = int(spec, "progressDeadlineSeconds") {
        nonnegative(
            field(spec, "progressDeadlineSeconds"),
            "spec.progressDeadlineSeconds",
            errs,
        );
        if deadline <= min_ready {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    selector_immutable(obj, old, errs);
}

/// `ValidateReplicaSet` / `ValidateReplicaSetUpdate`, then the strategy's selector check.
pub(super) fn validate_replica_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    nonnegative(field(spec, "replicas"), "spec.replicas", errs);
    nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
    // kube-apiserver's ReplicaSet check reuses the Deployment wording.
    if let Some(sel) = required_selector(spec, "deployment", errs) {
        replica_set_template(spec, &sel, errs);
    }
    selector_immutable(obj, old, errs);
}

/// `ValidateStatefulSet` / `ValidateStatefulSetUpdate`. kube-apiserver checks only the labels
/// and annotations of a StatefulSet's pod template, not its pod spec.
pub(super) fn validate_stateful_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Label, errs);
    let spec = obj.get("spec");
    match text(spec, "podManagementPolicy") {
        "" => errs.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            "spec.podManagementPolicy",
            quote(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = field(spec, "updateStrategy");
    let rolling = field(strategy, "rollingUpdate");
    match text(strategy, "type") {
        "" => errs.push(required("spec.updateStrategy", "")),
        "OnDelete" if rolling.is_some() => {
            let shown = format!(
                "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:{}}}",
                int(rolling, "partition").unwrap_or(0),
                gofmt::pointer("intstr.IntOrString", field(rolling, "maxUnavailable"))
            );
            let detail = "only allowed for updateStrategy 'RollingUpdate'";
            errs.push(invalid("spec.updateStrategy.rollingUpdate", shown, detail));
        }
        "OnDelete" => {}
        "RollingUpdate" => {
            let path = "spec.updateStrategy.rollingUpdate";
            nonnegative(field(rolling, "partition"), child(path, "partition"), errs);
            if let Some(mu) = field(rolling, "maxUnavailable") {
                let at = child(path, "maxUnavailable");
                if int_or_percent(Some(mu), &at, errs) == 0 {
                    errs.push(invalid(&at, gofmt::int_or_string(Some(mu)), "cannot be 0"));
                }
            }
        }
        other => {
            let shown = format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
                quote(other),
                gofmt::pointer("apps.RollingUpdateStatefulSetStrategy", rolling)
            );
            errs.push(invalid(
                "spec.updateStrategy",
                shown,
                "must be 'RollingUpdate' or 'OnDelete'",
            ));
        }
    }
    if let Some(policy) = field(spec, "persistentVolumeClaimRetentionPolicy") {
        for f in ["whenDeleted", "whenScaled"] {
            let v = text(Some(policy), f);
            if !matches!(v, "Retain" | "Delete") {
                let at = child("spec.persistentVolumeClaimRetentionPolicy", f);
                errs.push(not_supported(at, quote(v), &["Retain", "Delete"]));
            }
        }
    }
    nonnegative(field(spec, "replicas"), "spec.replicas", errs);
    nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
    nonnegative(
        field(field(spec, "ordinals"), "start"),
        "spec.ordinals.start",
        errs,
    );
    let template = field(spec, "template");
    if let Some(sel) = required_selector(spec, "statefulset", errs) {
        template_matches(&sel, template, errs);
        let meta = field(template, "metadata");
        validate_labels(field(meta, "labels"), "spec.template.labels", errs);
        validate_annotations(
            field(meta, "annotations"),
            "spec.template.annotations",
            errs,
        );
    }
    always_restart(template, "StatefulSet", errs);
    if let Some(old) = old {
        let strip = |v: Option<&Value>| {
            let mut s = semantic(v);
            if let Some(m) = s.as_object_mut() {
                for f in [
                    "replicas",
                    "template",
                    "updateStrategy",
                    "minReadySeconds",
                    "ordinals",
                    "persistentVolumeClaimRetentionPolicy",
                ] {
                    m.remove(f);
                }
            }
            s
        };
        if strip(spec) != strip(old.get("spec")) {
            errs.push(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
        }
    }
}

/// `ValidateDaemonSet` / `ValidateDaemonSetUpdate`, then the strategy's selector check. Unlike
/// the others, a DaemonSet's missing selector shows only as the template mismatch.
pub(super) fn validate_daemon_set(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    let sel = field(spec, "selector");
    validate_label_selector(sel, "spec.selector", errs);
    let template = field(spec, "template");
    let labels = field(field(template, "metadata"), "labels");
    if as_selector(sel).is_some_and(|s| !s.matches(labels)) {
        let detail = "`selector` does not match template `labels`";
        errs.push(invalid(
            "spec.template.metadata.labels",
            gofmt::string_map(labels),
            detail,
        ));
    }
    if as_selector(sel).is_some_and(|s| s.is_empty()) && sel.is_some() {
        errs.push(invalid(
            "spec.selector",
            gofmt::label_selector(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    pod::validate_template(template, "spec.template", errs);
    always_restart(template, "DaemonSet", errs);
    nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", errs);
    let strategy = field(spec, "updateStrategy");
    match text(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match field(strategy, "rollingUpdate") {
            None => errs.push(required("spec.updateStrategy.rollingUpdate", "")),
            Some(ru) => {
                let path = "spec.updateStrategy.rollingUpdate";
                let (mu, ms) = (
                    field(Some(ru), "maxUnavailable"),
                    field(Some(ru), "maxSurge"),
                );
                let u = int_or_percent(mu, &child(path, "maxUnavailable"), errs);
                let s = int_or_percent(ms, &child(path, "maxSurge"), errs);
                if u != 0 && s != 0 {
                    let detail = "may not be set when maxUnavailable is non-zero";
                    errs.push(invalid(
                        child(path, "maxSurge"),
                        gofmt::int_or_string(ms),
                        detail,
                    ));
                } else if u == 0 && s == 0 {
                    errs.push(required(
                        child(path, "maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => {
            let shown = format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
                quote(other),
                gofmt::pointer(
                    "apps.RollingUpdateDaemonSet",
                    field(strategy, "rollingUpdate")
                )
            );
            errs.push(not_supported(
                "spec.updateStrategy",
                shown,
                &["RollingUpdate", "OnDelete"],
            ));
        }
    }
    nonnegative(
        field(spec, "revisionHistoryLimit"),
        "spec.revisionHistoryLimit",
        errs,
    );
    selector_immutable(obj, old, errs);
}
