//! Server-side printing: the `meta.k8s.io/v1` Table kube-apiserver answers to
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns and cell values of
//! kube-apiserver's printers (`pkg/printers/internalversion/printers.go`, 1.32).
//!
//! kube-apiserver always prints the wide form (`GenerateOptions{Wide: true}`) and leaves it to
//! kubectl to hide the priority-1 columns, so every row here carries every column. Objects are
//! read as kube-apiserver reads them from storage, which applies the API's defaults on decode:
//! where a default changes a cell (replicas 1, Service type ClusterIP, PV phase Pending, ...),
//! a missing field is printed as its default.
//!
//! The work is split by concern into child modules: `columns` (each resource's column
//! definitions, with the Go types' descriptions), `core_kinds` (the row printers of core/v1's
//! kinds, with events.k8s.io's Event and discovery.k8s.io's EndpointSlice, whose printers share
//! theirs) and `workloads` (the row printers of apps/v1's and batch/v1's workloads, of
//! autoscaling's HorizontalPodAutoscaler and of coordination.k8s.io's Lease). This file keeps the
//! Table itself, the dispatch from a resource to its printer, and the helpers the printers share
//! for reading the JSON and for time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::error::ApiError;

mod columns;
mod core_kinds;
mod workloads;

use self::columns::*;
use self::core_kinds::{
    configmap_row, endpoint_slice_row, endpoints_row, event_row, namespace_row, node_row,
    pod_conditions, pod_row, pv_row, pvc_row, secret_row, service_account_row, service_row,
};
use self::workloads::{
    daemon_set_row, deployment_row, hpa_row, job_row, lease_row, replica_set_row, stateful_set_row,
};

// The tests compare a column's description with the text it comes from, through `super::*`.
#[cfg(test)]
use self::columns::doc::NAME_DOC;

/// The `includeObject` query parameter: what each row's `object` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `None`: `object` is null.
    None,
    /// `Metadata` (also the default when the parameter is absent, which is what kubectl sends
    /// unless `--sort-by` is given): a `meta.k8s.io/v1` `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// `Object`: the whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Reads the query parameter; the empty string means the default, `Metadata`. Note that
    /// kube-apiserver checks the value only while filling rows, so an unknown value is an
    /// error only for a table with at least one row: callers that want that exact behaviour
    /// should report this error only when there are objects.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        match value {
            "" | "Metadata" => Ok(Self::Metadata),
            "Object" => Ok(Self::Object),
            "None" => Ok(Self::None),
            other => Err(ApiError::BadRequest(format!(
                "unrecognized includeObject value: {other:?}"
            ))),
        }
    }
}

/// apimachinery's `duration.HumanDuration`: "42s", "5m3s", "10m", "3h20m", "2d3h", "1y30d".
pub fn human_duration(d: Duration) -> String {
    human_nanos(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// `HumanDuration` on a signed duration in nanoseconds: a time slightly in the future (clock
/// skew) prints as "0s", one more than a second ahead as "<invalid>".
fn human_nanos(nanos: i128) -> String {
    let seconds = nanos / 1_000_000_000;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    } else if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// One column definition: name, type, description and priority (1: only with `-o wide`).
/// Every `Name` column has format `name`; no other column has a format.
type Col = (&'static str, &'static str, &'static str, u8);

/// Builds one row's cells from an object and the server's clock (nanoseconds since the epoch).
type RowFn = fn(&Value, i128) -> Vec<Value>;

/// The Table for `objects` (each a full object as JSON) of the plural `resource` in API group
/// `group` ("" for core). `now` is the server's clock for AGE-style columns; `list_meta` gives
/// the Table's `metadata` (`resourceVersion`, `continue`, `remainingItemCount`).
pub fn table(
    group: &str,
    resource: &str,
    objects: &[Value],
    now: SystemTime,
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    let mut metadata = Map::new();
    for key in ["resourceVersion", "continue", "remainingItemCount"] {
        match list_meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                metadata.insert(key.to_string(), v.clone());
            }
        }
    }
    let printer = printer(group, resource);
    let (columns, row) = printer.unwrap_or((DEFAULT_COLUMNS, default_row));
    let pods = group.is_empty() && resource == "pods";
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            table_row(
                row(o, now),
                pods.then(|| pod_conditions(o)).flatten(),
                o,
                include,
            )
        })
        .collect();
    // rest.DefaultTableConvertor appends rows to a nil slice: an empty list has `"rows": null`.
    let rows = if rows.is_empty() && printer.is_none() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    let columns: Vec<Value> = columns
        .iter()
        .map(|&(name, ty, description, priority)| {
            let format = if name == "Name" { "name" } else { "" };
            json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn table_row(
    cells: Vec<Value>,
    conditions: Option<Value>,
    object: &Value,
    include: IncludeObject,
) -> Value {
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => object.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    let mut row = json!({ "cells": cells, "object": object });
    if let Some(conditions) = conditions {
        row["conditions"] = conditions;
    }
    row
}

fn printer(group: &str, resource: &str) -> Option<(&'static [Col], RowFn)> {
    Some(match (group, resource) {
        ("", "pods") => (POD_COLUMNS, pod_row),
        ("", "namespaces") => (NAMESPACE_COLUMNS, namespace_row),
        ("", "nodes") => (NODE_COLUMNS, node_row),
        ("", "services") => (SERVICE_COLUMNS, service_row),
        ("", "endpoints") => (ENDPOINTS_COLUMNS, endpoints_row),
        ("", "events") => (EVENT_COLUMNS, |ev, now| event_row(ev, now, false)),
        ("events.k8s.io", "events") => (EVENT_COLUMNS, |ev, now| event_row(ev, now, true)),
        ("", "configmaps") => (CONFIGMAP_COLUMNS, configmap_row),
        ("", "secrets") => (SECRET_COLUMNS, secret_row),
        ("", "serviceaccounts") => (SERVICE_ACCOUNT_COLUMNS, service_account_row),
        ("", "persistentvolumes") => (PV_COLUMNS, pv_row),
        ("", "persistentvolumeclaims") => (PVC_COLUMNS, pvc_row),
        ("apps", "deployments") => (DEPLOYMENT_COLUMNS, deployment_row),
        ("apps", "replicasets") => (REPLICA_SET_COLUMNS, replica_set_row),
        ("apps", "statefulsets") => (STATEFUL_SET_COLUMNS, stateful_set_row),
        ("apps", "daemonsets") => (DAEMON_SET_COLUMNS, daemon_set_row),
        ("batch", "jobs") => (JOB_COLUMNS, job_row),
        ("autoscaling", "horizontalpodautoscalers") => (HPA_COLUMNS, hpa_row),
        ("coordination.k8s.io", "leases") => (LEASE_COLUMNS, lease_row),
        ("discovery.k8s.io", "endpointslices") => (ENDPOINT_SLICE_COLUMNS, endpoint_slice_row),
        _ => return None,
    })
}

/// `rest.DefaultTableConvertor`'s row: the name and the creation time in RFC 3339.
fn default_row(o: &Value, _now: i128) -> Vec<Value> {
    vec![
        json!(name(o)),
        json!(rfc3339_utc(time_at(o, "/metadata/creationTimestamp"))),
    ]
}

// ---- Reading the JSON. Missing or mistyped fields read as Go's zero values. ----

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or(&Value::Null)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer).as_str().unwrap_or("")
}

fn int(v: &Value, pointer: &str) -> i64 {
    at(v, pointer).as_i64().unwrap_or(0)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    at(v, pointer).as_array().map_or(&[], Vec::as_slice)
}

fn len_of(v: &Value, pointer: &str) -> i64 {
    let n = match at(v, pointer) {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

/// The items joined by commas, or `default` when there are none.
fn join_or<S: AsRef<str>>(items: &[S], default: &str) -> String {
    if items.is_empty() {
        return default.to_string();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

fn name(v: &Value) -> &str {
    text(v, "/metadata/name")
}

fn deleting(v: &Value) -> bool {
    !at(v, "/metadata/deletionTimestamp").is_null()
}

/// A resource.Quantity as its `String()`: the serialized form, "<nil>" for a nil pointer.
fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "<nil>".to_string(),
    }
}

/// `labels.FormatLabels`: sorted `k=v` pairs, or `<none>`.
fn format_labels(v: &Value) -> String {
    let mut pairs: Vec<String> = match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect(),
        None => Vec::new(),
    };
    pairs.sort();
    join_or(&pairs, "<none>")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key; a missing or
/// empty selector prints as "". Err for an operator or value count kube would refuse.
fn selector_string(sel: &Value) -> Result<String, ()> {
    let mut reqs: Vec<(&str, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k, format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in list(sel, "/matchExpressions") {
        let key = text(expr, "/key");
        let mut values: Vec<&str> = list(expr, "/values")
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        values.sort_unstable();
        let req = match (text(expr, "/operator"), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key, req));
    }
    // Go's sort.Sort on a handful of requirements is an insertion sort, hence stable.
    reqs.sort_by(|a, b| a.0.cmp(b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like `selector_string`, "<none>" when empty, "<error>" when bad.
fn format_selector(sel: &Value) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: container names and images, each comma-separated.
fn containers(v: &Value, pointer: &str) -> [Value; 2] {
    let cs = list(v, pointer);
    let join = |field: &str| {
        cs.iter()
            .map(|c| text(c, field))
            .collect::<Vec<_>>()
            .join(",")
    };
    [json!(join("/name")), json!(join("/image"))]
}

// ---- Time. ----

/// Nanoseconds since the epoch of an RFC 3339 timestamp; None when absent, unreadable or Go's
/// zero time (`0001-01-01T00:00:00Z`), which metav1 treats as unset.
fn time_at(v: &Value, pointer: &str) -> Option<i128> {
    parse_rfc3339(at(v, pointer).as_str()?).filter(|&t| t != GO_ZERO_TIME)
}

const GO_ZERO_TIME: i128 = -62_135_596_800 * 1_000_000_000;

fn parse_rfc3339(s: &str) -> Option<i128> {
    s.parse::<Timestamp>().ok().map(|t| t.as_nanosecond())
}

/// `t.UTC().Format(time.RFC3339)`, whole seconds; Go's zero time for an unset one.
fn rfc3339_utc(t: Option<i128>) -> String {
    let t = Timestamp::from_nanosecond(t.unwrap_or(GO_ZERO_TIME)).unwrap_or(Timestamp::UNIX_EPOCH);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `translateTimestampSince`: the age of a timestamp, "<unknown>" when unset.
fn since(now: i128, t: Option<i128>) -> String {
    t.map_or_else(|| "<unknown>".to_string(), |t| human_nanos(now - t))
}

fn age(v: &Value, now: i128) -> Value {
    json!(since(now, time_at(v, "/metadata/creationTimestamp")))
}

#[cfg(test)]
#[path = "table_test.rs"]
mod tests;
