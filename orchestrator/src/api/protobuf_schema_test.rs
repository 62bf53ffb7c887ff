//! Checks against k8s-openapi's JSON schemas (every message we serve) and against the bodies
//! kubectl 1.32 really sends (testdata/, with the JSON its `--dry-run=client -o json` prints).

use std::collections::BTreeSet;

use base64::Engine as _;
use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, events, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use serde_json::{json, Value as Json};

use super::tests::{decode_ok, envelope, set, testdata};
use super::*;

// ---------------------------------------------------------------------------------------------
// Checker 1: schema agreement with k8s-openapi.
//
// Every message reachable from the kinds we serve is filled with a non-zero value in every
// field, recursively, sent through decode(), and the JSON is walked beside k8s-openapi's schema:
// every property printed must be in the schema with the JSON type the schema gives, and every
// property of the schema must be printed. So a missing rename or inline entry, a special type
// printed as an object, or a field dropped by the converter each fails here.

/// k8s-openapi's definition name for a proto message, and back.
fn schema_name(proto: &str) -> String {
    format!("io.{}", proto.replacen("k8s.io.", "k8s.", 1))
}

fn proto_name(schema: &str) -> String {
    schema.replacen("io.k8s.", "k8s.io.", 1)
}

/// Fields k8s-openapi's v1_33 types have but the 1.32 protobuf schemas lack: kubectl 1.32
/// cannot send them, so they are never printed.
const NEW_IN_1_33: &[(&str, &str)] = &[
    ("k8s.io.api.apps.v1.DeploymentStatus", "terminatingReplicas"),
    ("k8s.io.api.apps.v1.ReplicaSetStatus", "terminatingReplicas"),
    ("k8s.io.api.autoscaling.v2.HPAScalingRules", "tolerance"),
    ("k8s.io.api.core.v1.ContainerStatus", "stopSignal"),
    ("k8s.io.api.core.v1.Lifecycle", "stopSignal"),
    ("k8s.io.api.core.v1.NodeSystemInfo", "swap"),
    ("k8s.io.api.core.v1.PodCondition", "observedGeneration"),
    ("k8s.io.api.core.v1.PodStatus", "observedGeneration"),
    ("k8s.io.api.discovery.v1.EndpointHints", "forNodes"),
];

/// The definition a property schema refers to: schemars writes `{"$ref": ..}`, or
/// `{"allOf": [{"$ref": ..}], "description": ..}` when the property has its own description.
fn definition(
    definitions: &serde_json::Map<String, Json>,
    schema: &Json,
) -> Option<(String, Json)> {
    let reference = schema
        .get("$ref")
        .or_else(|| schema.get("allOf")?.get(0)?.get("$ref"))?;
    let name = reference.as_str()?.rsplit('/').next()?.to_owned();
    Some((name.clone(), definitions.get(&name)?.clone()))
}

/// A message with every field set to something Go would print, special types to valid values.
fn populated(desc: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    let special = match desc.full_name().rsplit('.').next() {
        Some("Time") => vec![("seconds", Value::I64(1_714_557_600))],
        Some("MicroTime") => vec![
            ("seconds", Value::I64(1_714_557_600)),
            ("nanos", Value::I32(5_000)),
        ],
        Some("Duration") => vec![("duration", Value::I64(90_000_000_000))],
        Some("Quantity") => vec![("string", Value::String("250m".into()))],
        Some("IntOrString") => vec![("type", Value::I64(0)), ("intVal", Value::I32(8080))],
        Some("RawExtension") => vec![("raw", Value::Bytes(br#"{"a":1}"#.to_vec().into()))],
        Some("FieldsV1") => vec![("Raw", Value::Bytes(br#"{"f:metadata":{}}"#.to_vec().into()))],
        _ => Vec::new(),
    };
    if !special.is_empty() {
        special.into_iter().for_each(|(f, v)| set(&mut m, f, v));
        return m;
    }
    assert!(depth < 20, "{} nests too deep", desc.full_name());
    let one = |kind: Kind| match kind {
        Kind::String => Value::String("x".into()),
        Kind::Bytes => Value::Bytes(b"x\xff".to_vec().into()),
        Kind::Int32 => Value::I32(3),
        Kind::Int64 => Value::I64(3),
        Kind::Bool => Value::Bool(true),
        Kind::Double => Value::F64(1.5),
        Kind::Message(sub) => Value::Message(populated(&sub, depth + 1)),
        other => panic!("{}: no sample for {other:?}", desc.full_name()),
    };
    for field in desc.fields() {
        let value = match field.kind() {
            Kind::Message(entry) if field.is_map() => {
                let value = one(entry.map_entry_value_field().kind());
                Value::Map(
                    [(prost_reflect::MapKey::String("k".into()), value)]
                        .into_iter()
                        .collect(),
                )
            }
            kind if field.is_list() => Value::List(vec![one(kind)]),
            kind => one(kind),
        };
        m.set_field(&field, value);
    }
    m
}

struct Walk<'a> {
    definitions: &'a serde_json::Map<String, Json>,
    seen: BTreeSet<String>,
    problems: Vec<String>,
}

impl Walk<'_> {
    fn value(&mut self, at: &str, value: &Json, schema: &Json) {
        let (name, schema) = match definition(self.definitions, schema) {
            Some((name, def)) => (Some(name), def),
            None => (None, schema.clone()),
        };
        let ty = schema.get("type").and_then(Json::as_str);
        let format = schema.get("format").and_then(Json::as_str);
        let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&json!(true));
        let ok = match value {
            Json::String(s) => match format {
                _ if int_or_string => true,
                Some("date-time") => s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T',
                Some("byte") => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
                _ => ty == Some("string"),
            },
            Json::Number(n) => {
                int_or_string || ty == Some("number") || (ty == Some("integer") && n.is_i64())
            }
            Json::Bool(_) => ty == Some("boolean"),
            Json::Array(items) => {
                let item_schema = schema.get("items").cloned().unwrap_or(Json::Null);
                items
                    .iter()
                    .for_each(|v| self.value(&format!("{at}[]"), v, &item_schema));
                ty == Some("array")
            }
            Json::Object(map) => {
                self.object(at, name.as_deref(), map, &schema);
                ty == Some("object")
            }
            Json::Null => false,
        };
        if !ok {
            self.problems
                .push(format!("{at}: printed {value} against {schema}"));
        }
    }

    fn object(
        &mut self,
        at: &str,
        name: Option<&str>,
        map: &serde_json::Map<String, Json>,
        schema: &Json,
    ) {
        if let Some(values) = schema.get("additionalProperties") {
            map.iter()
                .for_each(|(k, v)| self.value(&format!("{at}.{k}"), v, values));
            return;
        }
        let Some(properties) = schema.get("properties").and_then(Json::as_object) else {
            return; // RawExtension and FieldsV1: any JSON object
        };
        let name = name.unwrap_or("?");
        self.seen.insert(name.to_owned());
        let proto = pool().get_message_by_name(&proto_name(name));
        for (k, v) in map {
            match properties.get(k) {
                Some(sub) => self.value(&format!("{at}.{k}"), v, sub),
                None => self
                    .problems
                    .push(format!("{at}: printed {k:?}, which {name} does not have")),
            }
        }
        for property in properties.keys().filter(|p| !map.contains_key(*p)) {
            let in_proto = proto
                .as_ref()
                .is_some_and(|m| m.get_field_by_name(property).is_some());
            let newer = NEW_IN_1_33
                .iter()
                .any(|(m, f)| proto_name(name) == *m && f == property);
            // TypeMeta is inline in Go but not in the messages; decode() adds it at the top.
            let type_meta =
                (property == "apiVersion" || property == "kind") && !in_proto && at != "$";
            if newer && in_proto {
                self.problems
                    .push(format!("{name}.{property} is in the 1.32 schema after all"));
            }
            if !newer && !type_meta {
                self.problems
                    .push(format!("{at}: never printed {name}.{property}"));
            }
        }
    }
}

#[test]
fn json_agrees_with_k8s_openapi_schemas() {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let roots = [
        ("v1", "Namespace", g.subschema_for::<core::v1::Namespace>()),
        ("v1", "Node", g.subschema_for::<core::v1::Node>()),
        ("v1", "Pod", g.subschema_for::<core::v1::Pod>()),
        ("v1", "Service", g.subschema_for::<core::v1::Service>()),
        ("v1", "Endpoints", g.subschema_for::<core::v1::Endpoints>()),
        ("v1", "Event", g.subschema_for::<core::v1::Event>()),
        ("v1", "ConfigMap", g.subschema_for::<core::v1::ConfigMap>()),
        ("v1", "Secret", g.subschema_for::<core::v1::Secret>()),
        (
            "v1",
            "ServiceAccount",
            g.subschema_for::<core::v1::ServiceAccount>(),
        ),
        (
            "v1",
            "PersistentVolume",
            g.subschema_for::<core::v1::PersistentVolume>(),
        ),
        (
            "v1",
            "PersistentVolumeClaim",
            g.subschema_for::<core::v1::PersistentVolumeClaim>(),
        ),
        ("v1", "Binding", g.subschema_for::<core::v1::Binding>()),
        (
            "apps/v1",
            "Deployment",
            g.subschema_for::<apps::v1::Deployment>(),
        ),
        (
            "apps/v1",
            "ReplicaSet",
            g.subschema_for::<apps::v1::ReplicaSet>(),
        ),
        (
            "apps/v1",
            "StatefulSet",
            g.subschema_for::<apps::v1::StatefulSet>(),
        ),
        (
            "apps/v1",
            "DaemonSet",
            g.subschema_for::<apps::v1::DaemonSet>(),
        ),
        ("batch/v1", "Job", g.subschema_for::<batch::v1::Job>()),
        (
            "autoscaling/v1",
            "HorizontalPodAutoscaler",
            g.subschema_for::<autoscaling::v1::HorizontalPodAutoscaler>(),
        ),
        (
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            g.subschema_for::<autoscaling::v2::HorizontalPodAutoscaler>(),
        ),
        (
            "coordination.k8s.io/v1",
            "Lease",
            g.subschema_for::<coordination::v1::Lease>(),
        ),
        (
            "events.k8s.io/v1",
            "Event",
            g.subschema_for::<events::v1::Event>(),
        ),
        (
            "discovery.k8s.io/v1",
            "EndpointSlice",
            g.subschema_for::<discovery::v1::EndpointSlice>(),
        ),
        (
            "policy/v1",
            "Eviction",
            g.subschema_for::<policy::v1::Eviction>(),
        ),
        ("v1", "DeleteOptions", g.subschema_for::<DeleteOptions>()),
    ];
    let definitions = g.take_definitions(true);
    let mut walk = Walk {
        definitions: &definitions,
        seen: BTreeSet::new(),
        problems: Vec::new(),
    };
    for (api_version, kind, schema) in &roots {
        let desc =
            resolve_kind(api_version, kind).unwrap_or_else(|| panic!("{api_version} {kind}"));
        let json = decode_ok(&envelope(api_version, kind, &populated(&desc, 0)));
        walk.value("$", &json, &serde_json::to_value(schema).unwrap());
    }
    assert!(
        walk.seen.len() > 250,
        "only {} object schemas checked",
        walk.seen.len()
    );
    let problems = walk.problems;
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn tables_name_real_fields() {
    let field = |m: &str, f: &str| {
        let desc = pool()
            .get_message_by_name(m)
            .unwrap_or_else(|| panic!("no message {m}"));
        desc.get_field_by_name(f)
            .unwrap_or_else(|| panic!("no field {m}.{f}"))
    };
    for (m, f) in INLINE {
        let field = field(m, f);
        assert!(
            matches!(field.kind(), Kind::Message(_)) && !field.is_list(),
            "{m}.{f} is not a sub-message"
        );
        assert!(
            is_value_field(&field),
            "{m}.{f} is a pointer; Go only inlines embedded values here"
        );
    }
    for (m, f, _) in RENAMES {
        field(m, f);
    }
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let _ = g.subschema_for::<apps::v1::StatefulSet>();
    let _ = g.subschema_for::<core::v1::Event>();
    let _ = g.subschema_for::<core::v1::Node>();
    let definitions = g.take_definitions(true);
    for (m, f) in ZERO_PRINTED {
        let field = field(m, f);
        assert!(
            is_value_field(&field) && !field.is_list() && !matches!(field.kind(), Kind::Message(_)),
            "{m}.{f}"
        );
        let required = definitions[&schema_name(m)]
            .get("required")
            .cloned()
            .unwrap_or(json!([]));
        assert!(
            !required.as_array().unwrap().contains(&json!(f)),
            "{m}.{f} is required: k8s-openapi prints it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Checker 2: golden bodies captured from kubectl 1.32.

/// kubectl's `--dry-run=client -o json` prints the Go struct with encoding/json, which differs
/// from decode() only where k8s-openapi cannot tell the difference:
/// - `null`, which Go prints for a zero metav1.Time (`"creationTimestamp": null`) and nil slices
///   without omitempty; decode() leaves the property out, which reads back the same;
/// - zero scalars of Go value fields without omitempty that the schema marks required (e.g. a
///   PodDisruptionBudget's `"status": {"expectedPods": 0, ..}`): decode() drops zeros as
///   omitempty does, and k8s-openapi fills a missing required field with that same zero.
///
/// Nothing else is touched: empty objects (`"status": {}`, `"resources": {}`), optional zeros
/// and all values must match as they are.
fn normalize(value: &mut Json, schema: &Json, definitions: &serde_json::Map<String, Json>) {
    let schema = definition(definitions, schema).map_or_else(|| schema.clone(), |(_, d)| d);
    match value {
        Json::Object(map) => {
            let required: Vec<Json> = schema
                .get("required")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            let zero = |v: &Json| {
                matches!(v, Json::String(s) if s.is_empty()) || *v == json!(0) || *v == json!(false)
            };
            map.retain(|k, v| {
                let required_zero = required.contains(&json!(k)) && zero(v);
                !v.is_null() && !required_zero
            });
            for (k, v) in map.iter_mut() {
                let sub = match schema.get("properties") {
                    Some(properties) => properties.get(k),
                    None => schema.get("additionalProperties"),
                };
                if let Some(sub) = sub {
                    normalize(v, sub, definitions);
                }
            }
        }
        Json::Array(items) => {
            if let Some(sub) = schema.get("items") {
                items
                    .iter_mut()
                    .for_each(|v| normalize(v, sub, definitions));
            }
        }
        _ => {}
    }
}

/// Reads JSON into its k8s-openapi type and prints it again, as the rest of the server does.
fn typed<T: k8s_openapi::serde::de::DeserializeOwned + k8s_openapi::serde::Serialize>(
    value: &Json,
) -> Json {
    serde_json::to_value(serde_json::from_value::<T>(value.clone()).unwrap()).unwrap()
}

#[test]
fn golden_bodies_from_kubectl_decode_to_its_json() {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    type Typed = fn(&Json) -> Json;
    let roots: Vec<(&str, schemars::Schema, Typed)> = vec![
        (
            "Namespace",
            g.subschema_for::<core::v1::Namespace>(),
            typed::<core::v1::Namespace>,
        ),
        (
            "ConfigMap",
            g.subschema_for::<core::v1::ConfigMap>(),
            typed::<core::v1::ConfigMap>,
        ),
        (
            "Secret",
            g.subschema_for::<core::v1::Secret>(),
            typed::<core::v1::Secret>,
        ),
        (
            "ServiceAccount",
            g.subschema_for::<core::v1::ServiceAccount>(),
            typed::<core::v1::ServiceAccount>,
        ),
        (
            "Service",
            g.subschema_for::<core::v1::Service>(),
            typed::<core::v1::Service>,
        ),
        (
            "ResourceQuota",
            g.subschema_for::<core::v1::ResourceQuota>(),
            typed::<core::v1::ResourceQuota>,
        ),
        (
            "Deployment",
            g.subschema_for::<apps::v1::Deployment>(),
            typed::<apps::v1::Deployment>,
        ),
        (
            "Job",
            g.subschema_for::<batch::v1::Job>(),
            typed::<batch::v1::Job>,
        ),
        (
            "CronJob",
            g.subschema_for::<batch::v1::CronJob>(),
            typed::<batch::v1::CronJob>,
        ),
        (
            "HorizontalPodAutoscaler",
            g.subschema_for::<autoscaling::v1::HorizontalPodAutoscaler>(),
            typed::<autoscaling::v1::HorizontalPodAutoscaler>,
        ),
        (
            "PodDisruptionBudget",
            g.subschema_for::<policy::v1::PodDisruptionBudget>(),
            typed::<policy::v1::PodDisruptionBudget>,
        ),
    ];
    let definitions = g.take_definitions(true);
    let mut names: Vec<String> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 14, "golden files missing: {names:?}");
    for name in names {
        let body = std::fs::read(testdata().join(format!("{name}.pb"))).unwrap();
        let mut want: Json = serde_json::from_slice(
            &std::fs::read(testdata().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let got = decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (_, schema, typed) = roots
            .iter()
            .find(|(kind, ..)| want["kind"] == json!(kind))
            .unwrap_or_else(|| panic!("{name}: add its kind"));
        normalize(
            &mut want,
            &serde_json::to_value(schema).unwrap(),
            &definitions,
        );
        assert_eq!(got, want, "{name}:\n got {got:#}\nwant {want:#}");
        assert_eq!(typed(&got), typed(&want), "{name} through k8s-openapi");
    }
}

#[test]
fn golden_deployment_keeps_replicas_zero_and_empty_structs() {
    let got = decode_ok(&std::fs::read(testdata().join("deployment.pb")).unwrap());
    assert_eq!(got["spec"]["replicas"], json!(0));
    assert_eq!(got["spec"]["strategy"], json!({}));
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({})
    );
    assert!(got["metadata"].get("creationTimestamp").is_none());
}
