//! Container resources: resource names, quantities, and requests against limits (kube-apiserver's
//! `ValidateContainerResourceRequirements`).

use serde_json::Value;

use super::gofmt::{self, quote};
use super::{child, field, invalid, names, required, Errs};

/// A resource quantity's value (`500m` is 0.5, `1Gi` 2^30), when it parses.
pub(super) fn quantity(v: &Value) -> Option<f64> {
    let s = match v {
        Value::Number(n) => return n.as_f64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => 10f64.powi(exp.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * scale)
}

/// Resource names Kubernetes defines itself (`IsStandardResourceName`).
const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "requests.storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// `validateContainerResourceName`.
fn resource_name(name: &str, path: &str, errs: &mut Errs) {
    let qualified = names::qualified_name(name);
    let hugepages = name.starts_with("hugepages-");
    if !qualified.is_empty() {
        errs.extend(qualified.into_iter().map(|m| invalid(path, quote(name), m)));
    } else if !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !hugepages {
        errs.push(invalid(
            path,
            quote(name),
            "must be a standard resource type or fully qualified",
        ));
    }
    if !name.contains('/') && !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !hugepages
    {
        errs.push(invalid(
            path,
            quote(name),
            "must be a standard resource for containers",
        ));
    }
}

/// Whether requests of a resource may be below its limit (not for extended resources and huge
/// pages).
fn overcommit_allowed(name: &str) -> bool {
    (!name.contains('/') || name.contains("kubernetes.io/")) && !name.starts_with("hugepages-")
}

/// `ValidateContainerResourceRequirements`: known names, non-negative quantities, requests not
/// above limits.
pub(super) fn validate_resources(res: Option<&Value>, path: &str, errs: &mut Errs) {
    let (limits_path, requests_path) = (child(path, "limits"), child(path, "requests"));
    let limits = field(res, "limits").and_then(Value::as_object);
    for (k, q) in limits.map(gofmt::sorted).unwrap_or_default() {
        resource_name(k, &super::key(&limits_path, k), errs);
        if quantity(q).is_some_and(|v| v < 0.0) {
            errs.push(invalid(
                super::key(&limits_path, k),
                gofmt::scalar(Some(q)),
                "must be greater than or equal to 0",
            ));
        }
    }
    let requests = field(res, "requests").and_then(Value::as_object);
    for (k, q) in requests.map(gofmt::sorted).unwrap_or_default() {
        resource_name(k, &super::key(&requests_path, k), errs);
        if quantity(q).is_some_and(|v| v < 0.0) {
            errs.push(invalid(
                super::key(&requests_path, k),
                gofmt::scalar(Some(q)),
                "must be greater than or equal to 0",
            ));
        }
        let shown = |q: &Value| q.as_str().map_or_else(|| q.to_string(), str::to_string);
        match limits.and_then(|l| l.get(k)) {
            Some(limit) => {
                let (request, cap) = (quantity(q), quantity(limit));
                if !overcommit_allowed(k) && request != cap {
                    let detail = format!("must be equal to {k} limit of {}", shown(limit));
                    errs.push(invalid(&requests_path, quote(&shown(q)), detail));
                } else if matches!((request, cap), (Some(r), Some(c)) if r > c) {
                    let detail = format!(
                        "must be less than or equal to {k} limit of {}",
                        shown(limit)
                    );
                    errs.push(invalid(&requests_path, quote(&shown(q)), detail));
                }
            }
            None if !overcommit_allowed(k) => {
                errs.push(required(
                    &limits_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
}
