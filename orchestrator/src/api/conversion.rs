//! Resources served in a version other than the one they are stored in, as kube-apiserver
//! serves one stored form in several versions:
//! - events.k8s.io/v1 Events are kept as core/v1 Events, under the same keys
//!   (`/registry/events/<namespace>/<name>`), so that both APIs see every event, whichever wrote
//!   it (the field pairs of kube's conversion between the two);
//! - autoscaling/v1 HorizontalPodAutoscalers are kept as autoscaling/v2 ones: v1's CPU target is
//!   v2's CPU utilization metric, and what v1 cannot show (other metrics, behavior, conditions)
//!   rides in kube's `autoscaling.alpha.kubernetes.io/*` annotations, so that a v1 update keeps it.
//!
//! Conversion happens at the store's edge only: an object is in its served form from the moment
//! it is read ([`served`]) until it is written ([`stored`]). Both are idempotent, so an object
//! already in the other form passes through unchanged.

use serde_json::{json, Map, Value};

use super::resources::ResourceInfo;

/// How one served version maps onto its stored one.
#[derive(Debug)]
pub struct Conversion {
    /// A served object as stored.
    pub stored: fn(Map<String, Value>) -> Map<String, Value>,
    /// A stored object as served.
    pub served: fn(Map<String, Value>) -> Map<String, Value>,
}

/// events.k8s.io/v1 Event over core/v1 Event.
pub static EVENTS_V1: Conversion = Conversion {
    stored: |o| typed(renamed(o, EVENT_FIELDS, false), "v1", "Event"),
    served: |o| typed(renamed(o, EVENT_FIELDS, true), "events.k8s.io/v1", "Event"),
};

/// (events.k8s.io/v1 name, core/v1 name) of the fields named differently.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// autoscaling/v1 HorizontalPodAutoscaler over autoscaling/v2.
pub static HPA_V1: Conversion = Conversion {
    stored: |o| typed(hpa_v2_of_v1(o), "autoscaling/v2", "HorizontalPodAutoscaler"),
    served: |o| typed(hpa_v1_of_v2(o), "autoscaling/v1", "HorizontalPodAutoscaler"),
};

/// `object` (of `info`'s served version) as it is stored.
pub fn stored(info: &ResourceInfo, object: Value) -> Value {
    match (info.conversion, object) {
        (Some(c), Value::Object(o)) => Value::Object((c.stored)(o)),
        (_, object) => object,
    }
}

/// A stored object as `info`'s version serves it.
pub fn served(info: &ResourceInfo, object: Value) -> Value {
    match (info.conversion, object) {
        (Some(c), Value::Object(o)) => Value::Object((c.served)(o)),
        (_, object) => object,
    }
}

fn renamed(
    mut o: Map<String, Value>,
    pairs: &[(&str, &str)],
    backwards: bool,
) -> Map<String, Value> {
    for (a, b) in pairs {
        let (from, to) = if backwards { (b, a) } else { (a, b) };
        if let Some(value) = o.remove(*from) {
            o.insert(to.to_string(), value);
        }
    }
    o
}

/// The object with this apiVersion and kind, first, as every object is shown.
fn typed(mut o: Map<String, Value>, api_version: &str, kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    o.remove("apiVersion");
    o.remove("kind");
    out.extend(o);
    out
}

/// kube's annotations for what autoscaling/v1 cannot show.
const HPA_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

fn annotations(o: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let meta = meta.as_object_mut().expect("an object");
    let notes = meta.entry("annotations").or_insert_with(|| json!({}));
    if !notes.is_object() {
        *notes = json!({});
    }
    notes.as_object_mut().expect("an object")
}

/// Moves `value` into annotation `key` as JSON text (nothing if absent or empty).
fn stash(o: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    let keep = match &value {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    if keep {
        let text = value.expect("kept").to_string();
        annotations(o).insert(key.into(), Value::String(text));
    }
}

/// Takes annotation `key` back out as the JSON it holds.
fn unstash(o: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let notes = o
        .get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()?;
    let text = notes.remove(key)?;
    if notes.is_empty() {
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("annotations");
        }
    }
    serde_json::from_str(text.as_str()?).ok()
}

fn hpa_v1_of_v2(mut o: Map<String, Value>) -> Map<String, Value> {
    if o.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1") {
        return o;
    }
    let mut spec = o.remove("spec").unwrap_or_else(|| json!({}));
    let mut status = o.remove("status");
    let metrics: Vec<Value> = spec
        .as_object_mut()
        .and_then(|s| s.remove("metrics"))
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    let (cpu, other): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(target) = cpu
        .first()
        .map(|m| m["resource"]["target"]["averageUtilization"].clone())
    {
        spec["targetCPUUtilizationPercentage"] = target;
    }
    stash(&mut o, HPA_METRICS, Some(Value::Array(other)));
    let behavior = spec.as_object_mut().and_then(|s| s.remove("behavior"));
    stash(&mut o, HPA_BEHAVIOR, behavior);
    if let Some(Value::Object(st)) = status.as_mut() {
        let current: Vec<Value> = st
            .remove("currentMetrics")
            .and_then(|m| serde_json::from_value(m).ok())
            .unwrap_or_default();
        let (cpu, other): (Vec<Value>, Vec<Value>) = current
            .into_iter()
            .partition(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu");
        if let Some(now) = cpu
            .first()
            .map(|m| m["resource"]["current"]["averageUtilization"].clone())
        {
            if !now.is_null() {
                st.insert("currentCPUUtilizationPercentage".into(), now);
            }
        }
        let conditions = st.remove("conditions");
        stash(&mut o, HPA_CURRENT_METRICS, Some(Value::Array(other)));
        stash(&mut o, HPA_CONDITIONS, conditions);
    }
    o.insert("spec".into(), spec);
    if let Some(status) = status {
        o.insert("status".into(), status);
    }
    o
}

fn hpa_v2_of_v1(mut o: Map<String, Value>) -> Map<String, Value> {
    if o.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v2") {
        return o;
    }
    let mut spec = o.remove("spec").unwrap_or_else(|| json!({}));
    let mut status = o.remove("status");
    let mut metrics = Vec::new();
    let cpu = spec
        .as_object_mut()
        .and_then(|s| s.remove("targetCPUUtilizationPercentage"));
    if let Some(cpu) = cpu.filter(|c| !c.is_null()) {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}));
    }
    if let Some(Value::Array(other)) = unstash(&mut o, HPA_METRICS) {
        metrics.extend(other);
    }
    if !metrics.is_empty() {
        spec["metrics"] = Value::Array(metrics);
    }
    if let Some(behavior) = unstash(&mut o, HPA_BEHAVIOR) {
        spec["behavior"] = behavior;
    }
    let mut current = Vec::new();
    let now = status
        .as_mut()
        .and_then(Value::as_object_mut)
        .and_then(|st| st.remove("currentCPUUtilizationPercentage"));
    if let Some(now) = now.filter(|n| !n.is_null()) {
        current.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": now}}}));
    }
    if let Some(Value::Array(other)) = unstash(&mut o, HPA_CURRENT_METRICS) {
        current.extend(other);
    }
    let conditions = unstash(&mut o, HPA_CONDITIONS);
    if let Some(Value::Object(st)) = status.as_mut() {
        if !current.is_empty() {
            st.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = conditions {
            st.insert("conditions".into(), conditions);
        }
    }
    o.insert("spec".into(), spec);
    if let Some(status) = status {
        o.insert("status".into(), status);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::find;

    #[test]
    fn events_v1_round_trip_through_core_events() {
        let info = find("events.k8s.io", "v1", "events").unwrap();
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "pulled", "reason": "Pulled",
            "reportingController": "ballast/agent", "reportingInstance": "n1",
            "eventTime": "2026-12-07T10:00:00.000000Z", "type": "Normal", "action": "Pull",
        });
        let kept = stored(info, event.clone());
        assert_eq!(kept["apiVersion"], "v1");
        assert_eq!(kept["involvedObject"]["name"], "p");
        assert_eq!(kept["message"], "pulled");
        assert_eq!(kept["reportingComponent"], "ballast/agent");
        assert!(kept.get("note").is_none() && kept.get("regarding").is_none());
        // A core/v1 Event reads as events.k8s.io/v1 and back, field for field.
        let core = find("", "v1", "events").unwrap();
        assert_eq!(
            served(core, kept.clone()),
            kept,
            "core events are stored as served"
        );
        assert_eq!(served(info, kept.clone()), event);
        assert_eq!(stored(info, kept.clone()), kept, "idempotent");
        assert_eq!(served(info, event.clone()), event, "idempotent");
    }

    #[test]
    fn hpa_v1_keeps_what_it_cannot_show() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        let memory = json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let object = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60}}}, memory],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 2,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 40}}}],
                "conditions": [{"type": "AbleToScale", "status": "True"}]},
        });
        assert_eq!(served(v2, object.clone()), object, "v2 is stored as served");
        let shown = served(v1, object.clone());
        assert_eq!(shown["apiVersion"], "autoscaling/v1");
        assert_eq!(shown["spec"]["targetCPUUtilizationPercentage"], 60);
        assert!(shown["spec"].get("metrics").is_none());
        assert_eq!(shown["status"]["currentCPUUtilizationPercentage"], 40);
        let notes = &shown["metadata"]["annotations"];
        let others: Value = serde_json::from_str(notes[HPA_METRICS].as_str().unwrap()).unwrap();
        assert_eq!(others, json!([memory]));
        // Back through v1 (an update that changes only the CPU target) nothing else is lost.
        let mut edited = shown.clone();
        edited["spec"]["targetCPUUtilizationPercentage"] = json!(70);
        let kept = stored(v1, edited);
        let mut expected = object.clone();
        expected["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = json!(70);
        assert_eq!(kept, expected);
        assert_eq!(stored(v1, kept.clone()), kept, "idempotent");
        // A v1 object with no CPU target has no metric (v2's defaulting adds its own).
        let bare = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "b"}, "spec": {"maxReplicas": 3}});
        assert!(stored(v1, bare)["spec"].get("metrics").is_none());
    }
}
