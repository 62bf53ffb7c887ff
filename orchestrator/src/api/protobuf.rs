//! Decoding of `application/vnd.kubernetes.protobuf` request bodies.
//!
//! kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|service|job|...`)
//! send protobuf with no JSON fallback, while the rest of the API server reads JSON through
//! k8s-openapi. So a protobuf body is turned into the JSON object that Go's encoding/json would
//! print for the Go struct kube-apiserver decodes the body into, and then takes the JSON path.
//!
//! The schemas come from `protobuf/kubernetes-1.32.fds` (taken from the kubectl 1.32 binary by
//! scripts/extract-k8s-descriptors.py). The JSON shape is Go's, not protobuf's canonical JSON
//! mapping: field names are the proto names (Go's json tags agree for every message here), Go's
//! embedded structs are flattened (`INLINE`), zero values of Go value fields are dropped as
//! `omitempty` does, and the apimachinery wrapper types print as their Go `MarshalJSON` does.

use std::collections::HashSet;
use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use serde_json::{Map, Value as Json};

/// kube's protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes, so that a reader can tell it from JSON or YAML.
const MAGIC: [u8; 4] = *b"k8s\0";

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// gogoproto's `nullable` option: 0 marks a Go value field (not a pointer).
const GOGO_NULLABLE: u32 = 65001;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds; `metav1.Time` prints it as null.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Fields whose JSON name differs from the proto field name, as (message, proto name, JSON name).
///
/// Empty on purpose: the schema-agreement test prints every field of every message we serve and
/// finds each name in k8s-openapi's JSON schema (Go's json tags in these groups all repeat the
/// proto name). A difference appearing in a later schema belongs here.
pub(crate) const RENAMES: &[(&str, &str, &str)] = &[];

/// Go fields embedded without a JSON name (`json:",inline"`): the sub-message's fields are
/// written into the parent object. Proven complete by the schema-agreement test.
#[rustfmt::skip]
pub(crate) const INLINE: &[(&str, &str)] = &[
    ("k8s.io.api.core.v1.ConfigMapEnvSource", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapKeySelector", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapProjection", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapVolumeSource", "localObjectReference"),
    ("k8s.io.api.core.v1.EphemeralContainer", "ephemeralContainerCommon"),
    ("k8s.io.api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
    ("k8s.io.api.core.v1.Probe", "handler"),
    ("k8s.io.api.core.v1.SecretEnvSource", "localObjectReference"),
    ("k8s.io.api.core.v1.SecretKeySelector", "localObjectReference"),
    ("k8s.io.api.core.v1.SecretProjection", "localObjectReference"),
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
];

/// Go value fields without `omitempty` that k8s-openapi models as optional: Go prints their
/// zero value (`"serviceName": ""`), so it is kept here too, or the object read back from
/// k8s-openapi would lack a property kube-apiserver shows. Other value fields without
/// `omitempty` are required in the schema, and k8s-openapi fills and prints their zero itself.
/// Taken from the Go json tags of the API types (k8s.io/api, k8s.io/apimachinery).
pub(crate) const ZERO_PRINTED: &[(&str, &str)] = &[
    ("k8s.io.api.apps.v1.StatefulSetOrdinals", "start"),
    ("k8s.io.api.apps.v1.StatefulSetSpec", "serviceName"),
    ("k8s.io.api.apps.v1.StatefulSetStatus", "availableReplicas"),
    ("k8s.io.api.core.v1.Event", "reportingComponent"),
    ("k8s.io.api.core.v1.Event", "reportingInstance"),
    ("k8s.io.api.core.v1.NodeRuntimeHandler", "name"),
];

/// The meta/v1 kinds kube registers in every group version (as `metav1.AddToGroupVersion` does),
/// so a body of kind DeleteOptions under "apps/v1" is found although apps/v1 has no such message.
const META_KINDS: &[&str] = &[
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "ListOptions",
    "PatchOptions",
    "Status",
    "UpdateOptions",
];

/// Why a body could not be decoded; the caller answers 400 BadRequest with this text.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    Prefix,
    #[error("could not decode the protobuf envelope (runtime.Unknown): {0}")]
    Envelope(prost::DecodeError),
    #[error("protobuf envelope has no apiVersion or kind")]
    MissingTypeMeta,
    #[error("protobuf envelope has unsupported content encoding {0:?}")]
    ContentEncoding(String),
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    NotRegistered { kind: String, api_version: String },
    #[error("could not decode {kind} from protobuf: {source}")]
    Object {
        kind: String,
        source: prost::DecodeError,
    },
    #[error("invalid {kind} field {path}: {reason}")]
    Field {
        kind: String,
        path: String,
        reason: String,
    },
}

/// A conversion failure below the top level, with the JSON path collected on the way out.
#[derive(Debug)]
struct FieldError {
    path: Vec<String>,
    reason: String,
}

impl FieldError {
    fn new(reason: impl Into<String>) -> Self {
        FieldError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.insert(0, segment.into());
        self
    }
}

struct Schema {
    pool: DescriptorPool,
    unknown: MessageDescriptor,
    /// Full names of fields marked `(gogoproto.nullable) = false`: Go value fields.
    value_fields: HashSet<String>,
}

/// Built once: the descriptor set is fixed at compile time, so a failure here is a build defect.
static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let pool = DescriptorPool::decode(include_bytes!("protobuf/kubernetes-1.32.fds").as_ref())
        .expect("the embedded kubernetes-1.32.fds is a valid FileDescriptorSet");
    let unknown = pool
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is in the descriptor set");
    let value_fields = pool
        .all_messages()
        .flat_map(|m| m.fields().collect::<Vec<_>>())
        .filter(|f| gogo_option(f, GOGO_NULLABLE) == Some(0))
        .map(|f| f.full_name().to_owned())
        .collect();
    Schema {
        pool,
        unknown,
        value_fields,
    }
});

/// Reads a varint gogo option. The gogo extension is not in the pool, so its options sit in the
/// FieldOptions as unknown fields, whose values prost-reflect only gives out by re-encoding.
fn gogo_option(field: &FieldDescriptor, number: u32) -> Option<u64> {
    let options = field.options();
    let unknown = options.unknown_fields().find(|u| u.number() == number)?;
    let mut buf = Vec::new();
    unknown.encode(&mut buf);
    let mut bytes = buf.as_slice();
    let (_, wire_type) = prost::encoding::decode_key(&mut bytes).ok()?;
    if wire_type != prost::encoding::WireType::Varint {
        return None;
    }
    prost::encoding::decode_varint(&mut bytes).ok()
}

pub(crate) fn pool() -> &'static DescriptorPool {
    &SCHEMA.pool
}

/// Whether the Go field is a value (not a pointer): absence and zero then mean the same.
pub(crate) fn is_value_field(field: &FieldDescriptor) -> bool {
    SCHEMA.value_fields.contains(field.full_name())
}

fn in_table(table: &[(&str, &str)], field: &FieldDescriptor) -> bool {
    let message = field.parent_message();
    table
        .iter()
        .any(|(m, f)| *m == message.full_name() && *f == field.name())
}

pub(crate) fn is_inline(field: &FieldDescriptor) -> bool {
    in_table(INLINE, field)
}

pub(crate) fn json_name(field: &FieldDescriptor) -> &str {
    let message = field.parent_message();
    RENAMES
        .iter()
        .find(|(m, f, _)| *m == message.full_name() && *f == field.name())
        .map_or(field.name(), |(_, _, json)| json)
}

/// Maps an apiVersion to the proto package holding its kinds.
fn package_for(api_version: &str) -> Option<&'static str> {
    Some(match api_version {
        "v1" => "k8s.io.api.core.v1",
        "apps/v1" => "k8s.io.api.apps.v1",
        "batch/v1" => "k8s.io.api.batch.v1",
        "autoscaling/v1" => "k8s.io.api.autoscaling.v1",
        "autoscaling/v2" => "k8s.io.api.autoscaling.v2",
        "policy/v1" => "k8s.io.api.policy.v1",
        "coordination.k8s.io/v1" => "k8s.io.api.coordination.v1",
        "discovery.k8s.io/v1" => "k8s.io.api.discovery.v1",
        "events.k8s.io/v1" => "k8s.io.api.events.v1",
        _ => return None,
    })
}

/// Finds the message of a kind. Only messages with `metadata` (objects and lists) and the meta
/// options kinds count: a body claiming to be a `Container` is refused as kube refuses it.
fn resolve_kind(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let pool = pool();
    let package = package_for(api_version)?;
    if let Some(message) = pool.get_message_by_name(&format!("{package}.{kind}")) {
        if message.get_field_by_name("metadata").is_some() {
            return Some(message);
        }
    }
    if META_KINDS.contains(&kind) {
        return pool.get_message_by_name(&format!("{META}.{kind}"));
    }
    None
}

/// Decodes a body sent as MEDIA_TYPE to the JSON object kube-apiserver would have read from it.
pub fn decode(body: &[u8]) -> Result<Json, ProtobufError> {
    let envelope = body.strip_prefix(&MAGIC).ok_or(ProtobufError::Prefix)?;
    let unknown = DynamicMessage::decode(SCHEMA.unknown.clone(), envelope)
        .map_err(ProtobufError::Envelope)?;

    let string_at =
        |message: &DynamicMessage, name: &str| match message.get_field_by_name(name).as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
    let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(Value::Message(m)) => m.clone(),
        _ => return Err(ProtobufError::MissingTypeMeta),
    };
    let api_version = string_at(&type_meta, "apiVersion");
    let kind = string_at(&type_meta, "kind");
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let encoding = string_at(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(encoding));
    }
    let raw = match unknown.get_field_by_name("raw").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };

    let desc = resolve_kind(&api_version, &kind).ok_or_else(|| ProtobufError::NotRegistered {
        kind: kind.clone(),
        api_version: api_version.clone(),
    })?;
    let object = DynamicMessage::decode(desc, raw).map_err(|source| ProtobufError::Object {
        kind: kind.clone(),
        source,
    })?;

    let mut out = Map::new();
    out.insert("apiVersion".into(), Json::String(api_version));
    out.insert("kind".into(), Json::String(kind.clone()));
    write_fields(&object, &mut out).map_err(|e| ProtobufError::Field {
        kind,
        path: e.path.join("."),
        reason: e.reason,
    })?;
    Ok(Json::Object(out))
}

/// Writes a message's fields into `out` under Go's presence rules (see the module docs).
fn write_fields(message: &DynamicMessage, out: &mut Map<String, Json>) -> Result<(), FieldError> {
    for field in message.descriptor().fields() {
        let name = json_name(&field);
        let value = message.get_field(&field);
        if is_inline(&field) {
            // The sub-message's properties sit in the parent, so the error path skips it too.
            if let Value::Message(sub) = value.as_ref() {
                write_fields(sub, out)?;
            }
            continue;
        }
        let json = if field.is_map() {
            let Value::Map(map) = value.as_ref() else {
                continue;
            };
            if map.is_empty() {
                continue;
            }
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let value_kind = entry.map_entry_value_field().kind();
            let mut object = Map::new();
            for (key, v) in map {
                let key = map_key(key);
                let v = value_to_json(v, &value_kind).map_err(|e| e.at(key.clone()).at(name))?;
                object.insert(key, v);
            }
            Json::Object(object)
        } else if field.is_list() {
            let Value::List(items) = value.as_ref() else {
                continue;
            };
            if items.is_empty() {
                continue;
            }
            let kind = field.kind();
            let items = items
                .iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v, &kind).map_err(|e| e.at(i.to_string()).at(name)))
                .collect::<Result<Vec<_>, _>>()?;
            Json::Array(items)
        } else if is_value_field(&field) {
            // Go writes value fields always, so presence says nothing; omitempty drops zeros
            // of scalars, while a struct value prints even when empty (as `{}`).
            let is_message = matches!(field.kind(), Kind::Message(_));
            if !is_message && value.is_default(&field.kind()) && !in_table(ZERO_PRINTED, &field) {
                continue;
            }
            value_to_json(&value, &field.kind()).map_err(|e| e.at(name))?
        } else {
            // A pointer: present means set, even to zero (`replicas: 0`).
            if !message.has_field(&field) {
                continue;
            }
            value_to_json(&value, &field.kind()).map_err(|e| e.at(name))?
        };
        // Null is what Go prints for a zero time; absent reads back the same.
        if !json.is_null() {
            out.insert(name.to_owned(), json);
        }
    }
    Ok(())
}

/// Go prints map keys as strings whatever their type.
fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn value_to_json(value: &Value, kind: &Kind) -> Result<Json, FieldError> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => float(f64::from(*n))?,
        Value::F64(n) => float(*n)?,
        Value::String(s) => Json::String(s.clone()),
        // Go's []byte prints as standard, padded base64 (Secret.data, ConfigMap.binaryData).
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => Json::from(*n),
        Value::Message(m) => message_to_json(m)?,
        Value::List(_) | Value::Map(_) => {
            return Err(FieldError::new(format!(
                "unexpected nested collection for {kind:?}"
            )))
        }
    })
}

fn float(n: f64) -> Result<Json, FieldError> {
    serde_json::Number::from_f64(n)
        .map(Json::Number)
        .ok_or_else(|| FieldError::new(format!("{n} is not a finite number")))
}

/// A message as Go prints it: the apimachinery types with their own `MarshalJSON` by hand,
/// everything else as an object of its fields.
fn message_to_json(message: &DynamicMessage) -> Result<Json, FieldError> {
    let int = |name: &str| match message.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    };
    let string = |name: &str| match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let bytes = |name: &str| match message.get_field_by_name(name).as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let any_field_set = || message.fields().next().is_some();
    match message.descriptor().full_name() {
        // An empty message is Go's zero time, as is the zero instant itself. Time drops the
        // nanoseconds when decoding protobuf, since its JSON only carries seconds.
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => {
            let seconds = int("seconds");
            if !any_field_set() || seconds == GO_ZERO_TIME {
                return Ok(Json::Null);
            }
            Ok(Json::String(format_time(seconds, None)?))
        }
        // MicroTime keeps microseconds: the nanoseconds are truncated, as kube does.
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let total = i128::from(int("seconds")) * 1_000_000_000 + i128::from(int("nanos"));
            let seconds = i64::try_from(total.div_euclid(1_000_000_000))
                .map_err(|_| FieldError::new("time out of range"))?;
            let micros = u32::try_from(total.rem_euclid(1_000_000_000) / 1_000).unwrap_or(0);
            if !any_field_set() || (seconds == GO_ZERO_TIME && micros == 0) {
                return Ok(Json::Null);
            }
            Ok(Json::String(format_time(seconds, Some(micros))?))
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            Ok(Json::String(go_duration(int("duration"))))
        }
        // A message without its string is Go's zero Quantity, which prints as "0".
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            if message.has_field_by_name("string") {
                Ok(Json::String(string("string")))
            } else {
                Ok(Json::String("0".into()))
            }
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => match int("type") {
            0 => Ok(Json::from(int("intVal"))),
            1 => Ok(Json::String(string("strVal"))),
            other => Err(FieldError::new(format!(
                "IntOrString type {other} is neither 0 (int) nor 1 (string)"
            ))),
        },
        // Both carry JSON verbatim; Go prints nil bytes as null.
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => raw_json(&bytes("raw")),
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => raw_json(&bytes("Raw")),
        // `type Verbs []string`: a list in Go, a message only on the wire.
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => {
            match message.get_field_by_name("items").as_deref() {
                Some(Value::List(items)) if !items.is_empty() => Ok(Json::Array(
                    items
                        .iter()
                        .map(|v| value_to_json(v, &Kind::String))
                        .collect::<Result<_, _>>()?,
                )),
                _ => Ok(Json::Null),
            }
        }
        _ => {
            let mut out = Map::new();
            write_fields(message, &mut out)?;
            Ok(Json::Object(out))
        }
    }
}

fn raw_json(raw: &[u8]) -> Result<Json, FieldError> {
    if raw.is_empty() {
        return Ok(Json::Null);
    }
    serde_json::from_slice(raw)
        .map_err(|e| FieldError::new(format!("embedded raw bytes are not JSON: {e}")))
}

/// Formats Unix seconds as RFC 3339 in UTC, with six fractional digits when `micros` is given
/// (metav1.MicroTime), without any otherwise (metav1.Time).
fn format_time(seconds: i64, micros: Option<u32>) -> Result<String, FieldError> {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(FieldError::new(format!(
            "time {seconds}s since the epoch is outside years 0-9999"
        )));
    }
    let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    let frac = micros.map_or(String::new(), |us| format!(".{us:06}"));
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{frac}Z"
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), by Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Duration.String()`: "1h0m0s", "1m30s", "1.5s", "500ms", "1µs", "0s".
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (whole, frac) = split_fraction(u, prec);
        format!("{whole}{frac}{unit}")
    } else {
        let (secs, frac) = split_fraction(u, 9);
        let (mins, hours) = (secs / 60, secs / 3600);
        let mut out = format!("{}{frac}s", secs % 60);
        if mins > 0 {
            out = format!("{}m{out}", mins % 60);
            if hours > 0 {
                out = format!("{hours}h{out}");
            }
        }
        out
    };
    format!("{sign}{body}")
}

/// Splits `v` into `v / 10^prec` and its fraction printed as ".ddd" without trailing zeros.
fn split_fraction(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let (whole, rest) = (v / scale, v % scale);
    if rest == 0 {
        return (whole, String::new());
    }
    let digits = format!("{rest:0width$}", width = prec as usize);
    (whole, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
#[path = "protobuf_test.rs"]
mod tests;

#[cfg(test)]
#[path = "protobuf_schema_test.rs"]
mod schema_tests;
