//! The row printers of apps/v1's and batch/v1's workloads (Deployment, ReplicaSet, StatefulSet,
//! DaemonSet, Job), of autoscaling's HorizontalPodAutoscaler and of coordination.k8s.io's Lease,
//! as printers.go prints them.

use serde_json::{json, Value};

use super::{
    age, at, containers, deleting, format_labels, format_selector, human_nanos, int, list, name,
    quantity, selector_string, text, time_at,
};

/// `spec.replicas`, defaulted to 1.
fn replicas(v: &Value) -> i64 {
    at(v, "/spec/replicas").as_i64().unwrap_or(1)
}

pub(super) fn deployment_row(d: &Value, now: i128) -> Vec<Value> {
    let selector =
        selector_string(at(d, "/spec/selector")).unwrap_or_else(|()| "<invalid>".to_string());
    let [names, images] = containers(d, "/spec/template/spec/containers");
    vec![
        json!(name(d)),
        json!(format!(
            "{}/{}",
            int(d, "/status/readyReplicas"),
            replicas(d)
        )),
        json!(int(d, "/status/updatedReplicas")),
        json!(int(d, "/status/availableReplicas")),
        age(d, now),
        names,
        images,
        json!(selector),
    ]
}

pub(super) fn replica_set_row(rs: &Value, now: i128) -> Vec<Value> {
    let [names, images] = containers(rs, "/spec/template/spec/containers");
    vec![
        json!(name(rs)),
        json!(replicas(rs)),
        json!(int(rs, "/status/replicas")),
        json!(int(rs, "/status/readyReplicas")),
        age(rs, now),
        names,
        images,
        json!(format_selector(at(rs, "/spec/selector"))),
    ]
}

pub(super) fn stateful_set_row(ss: &Value, now: i128) -> Vec<Value> {
    let [names, images] = containers(ss, "/spec/template/spec/containers");
    let ready = format!("{}/{}", int(ss, "/status/readyReplicas"), replicas(ss));
    vec![json!(name(ss)), json!(ready), age(ss, now), names, images]
}

pub(super) fn daemon_set_row(ds: &Value, now: i128) -> Vec<Value> {
    let [names, images] = containers(ds, "/spec/template/spec/containers");
    let status = |field: &str| json!(int(ds, &format!("/status/{field}")));
    vec![
        json!(name(ds)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        json!(format_labels(at(ds, "/spec/template/spec/nodeSelector"))),
        age(ds, now),
        names,
        images,
        json!(format_selector(at(ds, "/spec/selector"))),
    ]
}

/// A job condition's status: the first condition of the type decides.
fn job_condition(job: &Value, ty: &str) -> bool {
    let found = list(job, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == ty);
    found.is_some_and(|c| text(c, "/status") == "True")
}

pub(super) fn job_row(job: &Value, now: i128) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match at(job, "/spec/completions").as_i64() {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int(job, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time_at(job, "/status/startTime"),
        time_at(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_nanos(now - start),
        (Some(start), Some(end)) => human_nanos(end - start),
    };
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if deleting(job) {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [names, images] = containers(job, "/spec/template/spec/containers");
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        age(job, now),
        names,
        images,
        json!(format_selector(at(job, "/spec/selector"))),
    ]
}

/// `formatHPAMetrics` on autoscaling/v2 metrics (or an autoscaling/v1 CPU target), with the
/// v2 default of 80% average CPU when none is set.
fn hpa_targets(hpa: &Value) -> String {
    let (specs, statuses) = match list(hpa, "/spec/metrics") {
        // An autoscaling/v1 object, or a v2 one without metrics (defaulted on read).
        [] => {
            let target = match at(hpa, "/spec/targetCPUUtilizationPercentage") {
                Value::Null => json!(80),
                t => t.clone(),
            };
            let spec = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}});
            let current = at(hpa, "/status/currentCPUUtilizationPercentage");
            let status = (!current.is_null()).then(|| json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}));
            (vec![spec], status.into_iter().collect())
        }
        specs => (specs.to_vec(), list(hpa, "/status/currentMetrics").to_vec()),
    };
    let unknown = || "<unknown>".to_string();
    let items: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let field = match text(spec, "/type") {
                "External" => "external",
                "Pods" => "pods",
                "Object" => "object",
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                _ => return "<unknown type>".to_string(),
            };
            let (spec, status) = (
                at(spec, &format!("/{field}")),
                statuses
                    .get(i)
                    .map(|s| at(s, &format!("/{field}")))
                    .filter(|s| s.is_object()),
            );
            let target_avg = at(spec, "/target/averageValue");
            let current = |pointer: &str| status.map_or_else(unknown, |s| quantity(at(s, pointer)));
            match field {
                "pods" => format!(
                    "{}/{}",
                    current("/current/averageValue"),
                    quantity(target_avg)
                ),
                "external" | "object" if !target_avg.is_null() => {
                    let cur = status
                        .map(|s| at(s, "/current/averageValue"))
                        .filter(|q| !q.is_null())
                        .map_or_else(unknown, quantity);
                    format!("{cur}/{} (avg)", quantity(target_avg))
                }
                "external" | "object" => format!(
                    "{}/{}",
                    current("/current/value"),
                    quantity(at(spec, "/target/value"))
                ),
                _ if !target_avg.is_null() => {
                    format!(
                        "{}: {}/{}",
                        text(spec, "/name"),
                        current("/current/averageValue"),
                        quantity(target_avg)
                    )
                }
                _ => {
                    let percent = |v: &Value| v.as_i64().map(|n| format!("{n}%"));
                    let cur = status
                        .and_then(|s| percent(at(s, "/current/averageUtilization")))
                        .unwrap_or_else(unknown);
                    let target = percent(at(spec, "/target/averageUtilization"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{}: {cur}/{target}", text(spec, "/name"))
                }
            }
        })
        .collect();
    match items.len() {
        0 => "<none>".to_string(),
        n if n > 2 => format!("{} + {} more...", items[..2].join(", "), n - 2),
        _ => items.join(", "),
    }
}

pub(super) fn hpa_row(hpa: &Value, now: i128) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        text(hpa, "/spec/scaleTargetRef/kind"),
        text(hpa, "/spec/scaleTargetRef/name")
    );
    let min = at(hpa, "/spec/minReplicas").as_i64().unwrap_or(1);
    vec![
        json!(name(hpa)),
        json!(reference),
        json!(hpa_targets(hpa)),
        json!(min.to_string()),
        json!(int(hpa, "/spec/maxReplicas")),
        json!(int(hpa, "/status/currentReplicas")),
        age(hpa, now),
    ]
}

pub(super) fn lease_row(lease: &Value, now: i128) -> Vec<Value> {
    vec![
        json!(name(lease)),
        json!(text(lease, "/spec/holderIdentity")),
        age(lease, now),
    ]
}
