//! Validation of the batch kinds (`pkg/apis/batch/validation` and the Job registry strategy):
//! Job, with the selector kube-apiserver generates for it, and CronJob.

use serde_json::Value;

use super::apps::{as_selector, validate_label_selector};
use super::gofmt::{self, quote};
use super::{
    child, field, immutable, int, invalid, meta_for, names, nonnegative, not_supported, pod,
    required, semantic, text, Errs, NameRule,
};

/// The labels kube-apiserver generates on a Job's pods and checks on create.
const JOB_LABELS: [(&str, bool); 4] = [
    ("controller-uid", true),
    ("job-name", false),
    ("batch.kubernetes.io/controller-uid", true),
    ("batch.kubernetes.io/job-name", false),
];

/// `ValidateJob` (with the generated-selector check), and on update `ValidateJobUpdate`.
pub(super) fn validate_job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    if let Some(old) = old {
        meta_for(obj, Some(old), true, NameRule::Subdomain, errs);
    }
    meta_for(obj, None, true, NameRule::Subdomain, errs);
    let (spec, meta) = (obj.get("spec"), obj.get("metadata"));
    let (name, uid) = (text(meta, "name"), text(meta, "uid"));
    let manual = field(spec, "manualSelector").and_then(Value::as_bool) == Some(true);
    // Old jobs without the prefixed labels keep validating without them.
    let prefixed = old.is_none_or(|o| {
        let labels = o.pointer("/spec/template/metadata/labels");
        field(labels, JOB_LABELS[2].0).is_some() && field(labels, JOB_LABELS[3].0).is_some()
    });
    if !manual && field(spec, "selector").is_some() {
        if uid.is_empty() {
            errs.push(required("metadata.uid", ""));
        }
        let labels = obj.pointer("/spec/template/metadata/labels");
        for (label, is_uid) in JOB_LABELS
            .iter()
            .filter(|(l, _)| prefixed || !l.contains('/'))
        {
            let want = if *is_uid { uid } else { name };
            let path = format!("spec.template.metadata.labels[{label}]");
            match field(labels, label).and_then(Value::as_str) {
                None => errs.push(required(path, &format!("must be '{want}'"))),
                Some(v) if v != want => errs.push(invalid(
                    path,
                    gofmt::string_map(labels),
                    format!("must be '{want}'"),
                )),
                Some(_) => {}
            }
        }
        let expected: serde_json::Map<String, Value> = JOB_LABELS
            .iter()
            .filter(|(l, _)| prefixed || !l.contains('/'))
            .map(|(l, is_uid)| (l.to_string(), Value::from(if *is_uid { uid } else { name })))
            .collect();
        let expected = Value::Object(expected);
        if as_selector(field(spec, "selector")).is_some_and(|s| !s.matches(Some(&expected))) {
            errs.push(invalid(
                "spec.selector",
                gofmt::label_selector(field(spec, "selector")),
                "`selector` not auto-generated",
            ));
        }
    }
    job_spec(spec, "spec", errs);
    let sel = field(spec, "selector");
    match sel {
        None => errs.push(required("spec.selector", "")),
        Some(s) => validate_label_selector(Some(s), "spec.selector", errs),
    }
    if let Some(s) = as_selector(sel) {
        let labels = obj.pointer("/spec/template/metadata/labels");
        if !s.matches(labels) {
            let detail = "`selector` does not match template `labels`";
            errs.push(invalid(
                "spec.template.metadata.labels",
                gofmt::string_map(labels),
                detail,
            ));
        }
    }
    let indexed = text(spec, "completionMode") == "Indexed";
    if let Some(c) = int(spec, "completions").filter(|c| indexed && *c > 0) {
        let host = format!("{name}-{}", c - 1);
        if !names::dns1123_label(&host).is_empty() {
            let detail = format!("will not able to create pod with invalid DNS label: {host}");
            errs.push(invalid("metadata.name", quote(name), detail));
        }
    }
    let Some(old) = old else { return };
    let old_spec = old.get("spec");
    if !indexed {
        immutable(
            field(spec, "completions"),
            field(old_spec, "completions"),
            "spec.completions",
            gofmt::scalar,
            errs,
        );
    }
    immutable(
        sel,
        field(old_spec, "selector"),
        "spec.selector",
        gofmt::label_selector,
        errs,
    );
    let suspended = field(old_spec, "suspend").and_then(Value::as_bool) == Some(true);
    let started = old
        .pointer("/status/startTime")
        .is_some_and(|t| !t.is_null());
    let strip = |t: Option<&Value>| {
        let mut t = semantic(t);
        if suspended && !started {
            for p in [
                "/spec/nodeSelector",
                "/spec/tolerations",
                "/spec/schedulingGates",
                "/spec/affinity/nodeAffinity",
            ] {
                if let Some(v) = t.pointer_mut(p) {
                    *v = Value::Null;
                }
            }
            if let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
        }
        t
    };
    if strip(field(spec, "template")) != strip(field(old_spec, "template")) {
        errs.push(invalid(
            "spec.template",
            gofmt::scalar(field(spec, "template")),
            "field is immutable",
        ));
    }
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        immutable(
            field(spec, f),
            field(old_spec, f),
            &child("spec", f),
            gofmt::scalar,
            errs,
        );
    }
}

/// `validateJobSpec` (shared with a CronJob's job template).
fn job_spec(spec: Option<&Value>, path: &str, errs: &mut Errs) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(field(spec, f), child(path, f), errs);
    }
    nonnegative(
        field(spec, "backoffLimitPerIndex"),
        child(path, "backoffLimitPerIndex"),
        errs,
    );
    nonnegative(
        field(spec, "maxFailedIndexes"),
        child(path, "maxFailedIndexes"),
        errs,
    );
    match field(spec, "completionMode").and_then(Value::as_str) {
        Some("Indexed") if field(spec, "completions").is_none() => {
            errs.push(required(
                child(path, "completions"),
                "when completion mode is Indexed",
            ));
        }
        None | Some("Indexed" | "NonIndexed") => {}
        Some(other) => {
            errs.push(not_supported(
                child(path, "completionMode"),
                quote(other),
                &["NonIndexed", "Indexed"],
            ));
        }
    }
    if let Some(p) = field(spec, "podReplacementPolicy").and_then(Value::as_str) {
        if field(spec, "podFailurePolicy").is_some() && p != "Failed" {
            errs.push(not_supported(
                child(path, "podReplacementPolicy"),
                quote(p),
                &["Failed"],
            ));
        } else if !matches!(p, "Failed" | "TerminatingOrFailed") {
            errs.push(not_supported(
                child(path, "podReplacementPolicy"),
                quote(p),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template_path = child(path, "template");
    pod::validate_template(field(spec, "template"), &template_path, errs);
    let policy_path = child(&template_path, "spec.restartPolicy");
    match field(spec, "template")
        .and_then(|t| t.pointer("/spec/restartPolicy"))
        .and_then(Value::as_str)
    {
        None | Some("" | "Always") => errs.push(required(
            policy_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        Some("OnFailure" | "Never") if field(spec, "podFailurePolicy").is_some() => {
            let rp = field(spec, "template").and_then(|t| t.pointer("/spec/restartPolicy"));
            if rp.and_then(Value::as_str) != Some("Never") {
                let detail = "only \"Never\" is supported when podFailurePolicy is specified";
                errs.push(invalid(policy_path, gofmt::scalar(rp), detail));
            }
        }
        Some("OnFailure" | "Never") => {}
        Some(other) => errs.push(not_supported(
            policy_path,
            quote(other),
            &["OnFailure", "Never"],
        )),
    }
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate`.
pub(super) fn validate_cron_job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    meta_for(obj, old, true, NameRule::Subdomain, errs);
    let spec = obj.get("spec");
    if text(spec, "schedule").is_empty() {
        errs.push(required("spec.schedule", ""));
    }
    nonnegative(
        field(spec, "startingDeadlineSeconds"),
        "spec.startingDeadlineSeconds",
        errs,
    );
    match text(spec, "concurrencyPolicy") {
        "" => errs.push(required("spec.concurrencyPolicy", "")),
        "Allow" | "Forbid" | "Replace" => {}
        other => errs.push(not_supported(
            "spec.concurrencyPolicy",
            quote(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let job = field(field(spec, "jobTemplate"), "spec");
    job_spec(job, "spec.jobTemplate.spec", errs);
    if let Some(sel) = field(job, "selector") {
        let shown = gofmt::label_selector(Some(sel));
        errs.push(invalid(
            "spec.jobTemplate.spec.selector",
            shown,
            "`selector` will be auto-generated",
        ));
    }
    if field(job, "manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        ));
    }
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        nonnegative(field(spec, f), child("spec", f), errs);
    }
    let name = text(obj.get("metadata"), "name");
    if old.is_none() && name.len() > 52 {
        errs.push(invalid(
            "metadata.name",
            quote(name),
            "must be no more than 52 characters",
        ));
    }
}
