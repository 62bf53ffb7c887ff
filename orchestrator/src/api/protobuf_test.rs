//! Conversion rules and refusals of bad input; the checks against k8s-openapi's schemas and
//! kubectl's golden bodies are in protobuf_schema_test.rs.

use std::path::PathBuf;

use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};
use serde_json::{json, Value as Json};

use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers: build bodies the way a Go client does.

pub(super) fn message(name: &str) -> DynamicMessage {
    DynamicMessage::new(
        pool()
            .get_message_by_name(name)
            .unwrap_or_else(|| panic!("no message {name}")),
    )
}

pub(super) fn set(m: &mut DynamicMessage, field: &str, value: Value) {
    m.try_set_field_by_name(field, value)
        .unwrap_or_else(|e| panic!("{field}: {e}"));
}

pub(super) fn envelope_with(
    api_version: &str,
    kind: &str,
    raw: Vec<u8>,
    encoding: &str,
) -> Vec<u8> {
    let mut type_meta = message("k8s.io.apimachinery.pkg.runtime.TypeMeta");
    set(
        &mut type_meta,
        "apiVersion",
        Value::String(api_version.into()),
    );
    set(&mut type_meta, "kind", Value::String(kind.into()));
    let mut unknown = message("k8s.io.apimachinery.pkg.runtime.Unknown");
    set(&mut unknown, "typeMeta", Value::Message(type_meta));
    set(&mut unknown, "raw", Value::Bytes(raw.into()));
    set(
        &mut unknown,
        "contentEncoding",
        Value::String(encoding.into()),
    );
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

pub(super) fn envelope(api_version: &str, kind: &str, object: &DynamicMessage) -> Vec<u8> {
    envelope_with(api_version, kind, object.encode_to_vec(), "")
}

pub(super) fn named(kind: &str, name: &str) -> DynamicMessage {
    let mut meta = message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    set(&mut meta, "name", Value::String(name.into()));
    let mut object = message(kind);
    set(&mut object, "metadata", Value::Message(meta));
    object
}

pub(super) fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api/protobuf/testdata")
}

pub(super) fn decode_ok(body: &[u8]) -> Json {
    decode(body).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Checker 3: bad input.

fn decode_err(body: &[u8]) -> String {
    match decode(body) {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_magic_is_refused() {
    let mut body = envelope(
        "v1",
        "Namespace",
        &named("k8s.io.api.core.v1.Namespace", "a"),
    );
    body[0] = b'K';
    let err = decode_err(&body);
    assert_eq!(
        err,
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    );
    assert!(decode_err(b"{\"kind\":\"Namespace\"}")
        .contains("does not appear to be a protobuf message"));
    assert!(decode_err(b"").contains("expected prefix"));
}

#[test]
fn truncated_envelope_is_refused() {
    let body = envelope(
        "v1",
        "Namespace",
        &named("k8s.io.api.core.v1.Namespace", "a"),
    );
    let err = decode_err(&body[..body.len() - 3]);
    assert!(
        err.starts_with("could not decode the protobuf envelope"),
        "{err}"
    );
}

#[test]
fn garbage_object_bytes_are_refused() {
    let err = decode_err(&envelope_with(
        "v1",
        "ConfigMap",
        vec![0x0a, 0x05, 0x01],
        "",
    ));
    assert!(
        err.starts_with("could not decode ConfigMap from protobuf:"),
        "{err}"
    );
    let err = decode_err(&envelope_with("apps/v1", "Deployment", vec![0xff; 7], ""));
    assert!(
        err.starts_with("could not decode Deployment from protobuf:"),
        "{err}"
    );
}

#[test]
fn unknown_kinds_and_versions_are_refused() {
    let raw = named("k8s.io.api.core.v1.Namespace", "a").encode_to_vec();
    assert_eq!(
        decode_err(&envelope_with("v1", "Foo", raw.clone(), "")),
        r#"no kind "Foo" is registered for version "v1""#
    );
    assert_eq!(
        decode_err(&envelope_with(
            "example.com/v1",
            "Namespace",
            raw.clone(),
            ""
        )),
        r#"no kind "Namespace" is registered for version "example.com/v1""#
    );
    // Messages that are parts of objects, not kinds, and names that are not plain identifiers.
    for kind in ["Container", "ObjectMeta.LabelsEntry", "Time", "Status2"] {
        assert!(
            decode_err(&envelope_with("v1", kind, raw.clone(), "")).contains("registered"),
            "{kind}"
        );
    }
    let token = std::fs::read(testdata().join("tokenrequest.pb")).unwrap();
    assert_eq!(
        decode_err(&token),
        r#"no kind "TokenRequest" is registered for version "authentication.k8s.io/v1""#
    );
    let mut bare = b"k8s\0".to_vec();
    bare.extend(message("k8s.io.apimachinery.pkg.runtime.Unknown").encode_to_vec());
    assert_eq!(
        decode_err(&bare),
        "protobuf envelope has no apiVersion or kind"
    );
}

#[test]
fn content_encoding_is_refused() {
    let raw = named("k8s.io.api.core.v1.Namespace", "a").encode_to_vec();
    assert_eq!(
        decode_err(&envelope_with("v1", "Namespace", raw, "gzip")),
        r#"protobuf envelope has unsupported content encoding "gzip""#
    );
}

#[test]
fn bad_special_values_are_refused_with_their_path() {
    let mut port = message("k8s.io.api.core.v1.ServicePort");
    set(&mut port, "port", Value::I32(80));
    let mut target = message("k8s.io.apimachinery.pkg.util.intstr.IntOrString");
    set(&mut target, "type", Value::I64(7));
    set(&mut port, "targetPort", Value::Message(target));
    let mut spec = message("k8s.io.api.core.v1.ServiceSpec");
    set(&mut spec, "ports", Value::List(vec![Value::Message(port)]));
    let mut svc = named("k8s.io.api.core.v1.Service", "s");
    set(&mut svc, "spec", Value::Message(spec));
    let err = decode_err(&envelope("v1", "Service", &svc));
    assert_eq!(err, "invalid Service field spec.ports.0.targetPort: IntOrString type 7 is neither 0 (int) nor 1 (string)");
}

// ---------------------------------------------------------------------------------------------
// Conversion rules.

fn msg(name: &str, fields: Vec<(&str, Value)>) -> Value {
    let mut m = message(name);
    fields.into_iter().for_each(|(f, v)| set(&mut m, f, v));
    Value::Message(m)
}

fn string(s: &str) -> Value {
    Value::String(s.into())
}

const CORE: &str = "k8s.io.api.core.v1";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";

#[test]
fn pointer_zeros_survive_and_value_zeros_are_dropped() {
    let container = msg(
        &format!("{CORE}.Container"),
        vec![
            ("name", string("c")),
            ("stdin", Value::Bool(false)),
            ("workingDir", string("")),
            (
                "ports",
                Value::List(vec![msg(
                    &format!("{CORE}.ContainerPort"),
                    vec![
                        ("containerPort", Value::I32(80)),
                        ("hostPort", Value::I32(0)),
                    ],
                )]),
            ),
            (
                "resources",
                msg(&format!("{CORE}.ResourceRequirements"), vec![]),
            ),
        ],
    );
    let pod_spec = msg(
        &format!("{CORE}.PodSpec"),
        vec![
            ("containers", Value::List(vec![container])),
            ("automountServiceAccountToken", Value::Bool(false)),
            ("terminationGracePeriodSeconds", Value::I64(0)),
            ("nodeSelector", Value::Map(Default::default())),
            ("volumes", Value::List(vec![])),
        ],
    );
    let template = msg(&format!("{CORE}.PodTemplateSpec"), vec![("spec", pod_spec)]);
    let spec = msg(
        "k8s.io.api.apps.v1.DeploymentSpec",
        vec![("replicas", Value::I32(0)), ("template", template)],
    );
    let mut deployment = named("k8s.io.api.apps.v1.Deployment", "d");
    set(&mut deployment, "spec", spec);
    let got = decode_ok(&envelope("apps/v1", "Deployment", &deployment));
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 0,
                "template": {
                    // metadata is a Go value struct: absent on the wire still prints, as `{}`.
                    "metadata": {},
                    "spec": {
                        "containers": [{"name": "c", "ports": [{"containerPort": 80}], "resources": {}}],
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": 0,
                    },
                },
                "strategy": {},
            },
            "status": {},
        })
    );
    // A pointer that is not set is left out; a value field printed without omitempty is not.
    set(
        &mut deployment,
        "spec",
        msg("k8s.io.api.apps.v1.DeploymentSpec", vec![]),
    );
    let got = decode_ok(&envelope("apps/v1", "Deployment", &deployment));
    assert_eq!(
        got["spec"],
        json!({"template": {"metadata": {}, "spec": {}}, "strategy": {}})
    );
    let statefulset = named("k8s.io.api.apps.v1.StatefulSet", "s");
    let got = decode_ok(&envelope("apps/v1", "StatefulSet", &statefulset));
    assert_eq!(got["spec"]["serviceName"], json!(""));
    assert_eq!(got["status"], json!({"availableReplicas": 0}));
}

#[test]
fn inline_fields_are_flattened_into_their_parent() {
    let config_map = msg(
        &format!("{CORE}.ConfigMapVolumeSource"),
        vec![(
            "localObjectReference",
            msg(
                &format!("{CORE}.LocalObjectReference"),
                vec![("name", string("cm"))],
            ),
        )],
    );
    let volume_source = msg(
        &format!("{CORE}.VolumeSource"),
        vec![("configMap", config_map)],
    );
    let volume = msg(
        &format!("{CORE}.Volume"),
        vec![("name", string("v")), ("volumeSource", volume_source)],
    );
    let http_get = msg(
        &format!("{CORE}.HTTPGetAction"),
        vec![("path", string("/healthz"))],
    );
    let probe = msg(
        &format!("{CORE}.Probe"),
        vec![
            (
                "handler",
                msg(&format!("{CORE}.ProbeHandler"), vec![("httpGet", http_get)]),
            ),
            ("periodSeconds", Value::I32(5)),
        ],
    );
    let container = msg(
        &format!("{CORE}.Container"),
        vec![("name", string("c")), ("livenessProbe", probe)],
    );
    let spec = msg(
        &format!("{CORE}.PodSpec"),
        vec![
            ("volumes", Value::List(vec![volume])),
            ("containers", Value::List(vec![container])),
        ],
    );
    let mut pod = named(&format!("{CORE}.Pod"), "p");
    set(&mut pod, "spec", spec);
    let got = decode_ok(&envelope("v1", "Pod", &pod));
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}])
    );
    assert_eq!(
        got["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 0}, "periodSeconds": 5})
    );
}

#[test]
fn special_types_print_as_go_does() {
    let port = |v: Value| {
        msg(
            &format!("{CORE}.ServicePort"),
            vec![("port", Value::I32(80)), ("targetPort", v)],
        )
    };
    let int_or_string = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
    let ports = vec![
        port(msg(
            int_or_string,
            vec![("type", Value::I64(0)), ("intVal", Value::I32(8080))],
        )),
        port(msg(
            int_or_string,
            vec![("type", Value::I64(1)), ("strVal", string("http"))],
        )),
    ];
    let mut svc = named(&format!("{CORE}.Service"), "s");
    set(
        &mut svc,
        "spec",
        msg(
            &format!("{CORE}.ServiceSpec"),
            vec![("ports", Value::List(ports))],
        ),
    );
    let got = decode_ok(&envelope("v1", "Service", &svc));
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080}, {"port": 80, "targetPort": "http"}])
    );

    let quantity = |s: Option<&str>| {
        msg(
            "k8s.io.apimachinery.pkg.api.resource.Quantity",
            s.map(|s| vec![("string", string(s))]).unwrap_or_default(),
        )
    };
    let hard = [("cpu", quantity(Some("500m"))), ("pods", quantity(None))];
    let hard = Value::Map(
        hard.into_iter()
            .map(|(k, v)| (MapKey::String(k.into()), v))
            .collect(),
    );
    let mut quota = named(&format!("{CORE}.ResourceQuota"), "q");
    set(
        &mut quota,
        "spec",
        msg(&format!("{CORE}.ResourceQuotaSpec"), vec![("hard", hard)]),
    );
    let got = decode_ok(&envelope("v1", "ResourceQuota", &quota));
    assert_eq!(got["spec"]["hard"], json!({"cpu": "500m", "pods": "0"}));

    let data = Value::Map(
        [(
            MapKey::String("k".into()),
            Value::Bytes(b"\x00\xffhi".to_vec().into()),
        )]
        .into_iter()
        .collect(),
    );
    let mut secret = named(&format!("{CORE}.Secret"), "s");
    set(&mut secret, "data", data);
    assert_eq!(
        decode_ok(&envelope("v1", "Secret", &secret))["data"],
        json!({"k": "AP9oaQ=="})
    );
}

#[test]
fn times_print_as_rfc3339_in_utc() {
    let time = |seconds: i64, nanos: i32| {
        msg(
            TIME,
            vec![
                ("seconds", Value::I64(seconds)),
                ("nanos", Value::I32(nanos)),
            ],
        )
    };
    let mut event = named(&format!("{CORE}.Event"), "e");
    set(
        &mut event,
        "firstTimestamp",
        time(1_714_557_600, 999_999_999),
    );
    set(&mut event, "lastTimestamp", msg(TIME, vec![]));
    set(
        &mut event,
        "eventTime",
        msg(
            MICRO,
            vec![
                ("seconds", Value::I64(1_714_557_600)),
                ("nanos", Value::I32(123_456_789)),
            ],
        ),
    );
    let mut meta = message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    set(&mut meta, "creationTimestamp", time(GO_ZERO_TIME, 0));
    set(&mut meta, "deletionTimestamp", time(0, 0));
    set(&mut event, "metadata", Value::Message(meta));
    let got = decode_ok(&envelope("v1", "Event", &event));
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1", "kind": "Event",
            // The zero time is left out, the epoch is a real time.
            "metadata": {"deletionTimestamp": "1970-01-01T00:00:00Z"},
            "involvedObject": {}, "source": {},
            "firstTimestamp": "2024-05-01T10:00:00Z",
            "eventTime": "2024-05-01T10:00:00.123456Z",
            "reportingComponent": "", "reportingInstance": "",
        })
    );
    assert_eq!(format_time(-1, None).unwrap(), "1969-12-31T23:59:59Z");
    assert_eq!(
        format_time(1_709_164_800, None).unwrap(),
        "2024-02-29T00:00:00Z"
    );
    assert_eq!(
        format_time(253_402_300_799, Some(7)).unwrap(),
        "9999-12-31T23:59:59.000007Z"
    );
    assert_eq!(
        format_time(GO_ZERO_TIME, None).unwrap(),
        "0001-01-01T00:00:00Z"
    );
    assert!(format_time(253_402_300_800, None).is_err());
    set(&mut event, "firstTimestamp", time(i64::MAX / 2, 0));
    let err = decode_err(&envelope("v1", "Event", &event));
    assert!(
        err.starts_with("invalid Event field firstTimestamp: time"),
        "{err}"
    );
}

#[test]
fn durations_print_as_go_strings() {
    let cases = [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (500_000_000, "500ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (-90_000_000_000, "-1m30s"),
        (360_000_500_000_000, "100h0m0.5s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ];
    for (nanos, want) in cases {
        assert_eq!(go_duration(nanos), want);
    }
    let Value::Message(d) = msg(
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
        vec![("duration", Value::I64(3_000_000_000))],
    ) else {
        unreachable!()
    };
    assert_eq!(message_to_json(&d).unwrap(), json!("3s"));
}

#[test]
fn raw_json_fields_are_embedded() {
    let entry = msg(
        "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
        vec![
            ("manager", string("kubectl")),
            (
                "fieldsV1",
                msg(
                    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
                    vec![("Raw", Value::Bytes(br#"{"f:data":{}}"#.to_vec().into()))],
                ),
            ),
        ],
    );
    let mut cm = named(&format!("{CORE}.ConfigMap"), "c");
    let Some(Value::Message(mut meta)) = cm.get_field_by_name("metadata").map(|v| v.into_owned())
    else {
        unreachable!()
    };
    set(&mut meta, "managedFields", Value::List(vec![entry]));
    set(&mut cm, "metadata", Value::Message(meta.clone()));
    let got = decode_ok(&envelope("v1", "ConfigMap", &cm));
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "fieldsV1": {"f:data": {}}}])
    );

    let bad = msg(
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
        vec![("Raw", Value::Bytes(b"not json".to_vec().into()))],
    );
    set(
        &mut meta,
        "managedFields",
        Value::List(vec![msg(
            "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
            vec![("fieldsV1", bad)],
        )]),
    );
    set(&mut cm, "metadata", Value::Message(meta));
    let err = decode_err(&envelope("v1", "ConfigMap", &cm));
    assert!(err.starts_with("invalid ConfigMap field metadata.managedFields.0.fieldsV1: embedded raw bytes are not JSON"), "{err}");
}

#[test]
fn unknown_wire_fields_are_ignored() {
    let cm = named(&format!("{CORE}.ConfigMap"), "c");
    let mut raw = cm.encode_to_vec();
    // Field 99, length-delimited, as a newer client could send.
    raw.extend([0x9a, 0x06, 0x02, b'h', b'i']);
    let got = decode_ok(&envelope_with("v1", "ConfigMap", raw, ""));
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    );
}

#[test]
fn meta_kinds_resolve_under_any_group_version() {
    let mut options = message("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions");
    set(&mut options, "gracePeriodSeconds", Value::I64(0));
    set(&mut options, "dryRun", Value::List(vec![string("All")]));
    let got = decode_ok(&envelope("apps/v1", "DeleteOptions", &options));
    assert_eq!(
        got,
        json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "dryRun": ["All"]})
    );
    assert_eq!(MEDIA_TYPE, "application/vnd.kubernetes.protobuf");
}
