//! Unit tests for selector.rs, one line per case; the expected texts are apimachinery 1.32's.

use super::*;
use serde_json::json;

/// `"a=b,c=d"` as a label map; `""` is no labels, `"a="` an empty value.
fn labels(spec: &str) -> Map<String, Value> {
    spec.split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (kv.to_string(), json!("")),
        })
        .collect()
}

fn check(selector: &str, label_spec: &str, expected: bool) {
    let parsed = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
    assert_eq!(
        parsed.matches(&labels(label_spec)),
        expected,
        "{selector:?} on {label_spec:?}"
    );
}

fn check_err(selector: &str, message: &str) {
    match LabelSelector::parse(selector) {
        Err(ApiError::BadRequest(m)) => assert_eq!(m, message, "{selector:?}"),
        other => panic!("{selector:?}: expected BadRequest, got {other:?}"),
    }
}

fn check_shown(selector: &str, shown: &str) {
    assert_eq!(
        LabelSelector::parse(selector).map(|s| s.to_string()),
        Ok(shown.to_string()),
        "{selector:?}"
    );
}

fn check_from(selector: Value, label_spec: &str, expected: bool) {
    let parsed =
        LabelSelector::from_label_selector(&selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
    assert_eq!(
        parsed.matches(&labels(label_spec)),
        expected,
        "{selector} on {label_spec:?}"
    );
}

fn check_from_err(selector: Value, message: &str) {
    assert_eq!(
        LabelSelector::from_label_selector(&selector),
        Err(message.to_string()),
        "{selector}"
    );
}

fn fcheck(selector: &str, object: Value, expected: bool) {
    let parsed = FieldSelector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
    assert_eq!(
        parsed.matches(&object),
        expected,
        "{selector:?} on {object}"
    );
}

fn fcheck_err(selector: &str, message: &str) {
    match FieldSelector::parse(selector) {
        Err(ApiError::BadRequest(m)) => assert_eq!(m, message, "{selector:?}"),
        other => panic!("{selector:?}: expected BadRequest, got {other:?}"),
    }
}

/// `message` None: supported; Some: the 400's text.
fn supported(resource: &str, selector: &str, message: Option<&str>) {
    let parsed = FieldSelector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
    let expected = message.map(|m| ApiError::BadRequest(m.to_string()));
    assert_eq!(
        parsed.check_supported(resource).err(),
        expected,
        "{resource} {selector:?}"
    );
}

const KEY_REGEX: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

#[test]
fn label_operators() {
    check("", "", true);
    check("", "a=b", true);
    check("a=b", "a=b", true);
    check("a=b", "a=c", false);
    check("a=b", "", false);
    check("a==b", "a=b", true);
    check("a==b", "a=bb", false);
    check("a!=b", "a=b", false);
    check("a!=b", "a=c", true);
    check("a!=b", "", true);
    check("a in (b,c)", "a=c", true);
    check("a in (b,c)", "a=d", false);
    check("a in (b,c)", "", false);
    check("a notin (b,c)", "a=c", false);
    check("a notin (b,c)", "a=d", true);
    check("a notin (b,c)", "", true);
    check("a", "a=", true);
    check("a", "b=c", false);
    check("!a", "", true);
    check("!a", "a=x", false);
    check("a>1", "a=2", true);
    check("a>1", "a=1", false);
    check("a<1", "a=0", true);
    check("a<10", "a=-5", true);
    check("a>1", "a=x", false);
    check("a>1", "", false);
    check("a=", "a=", true);
    check("a=", "", false);
    check("a!=", "", true);
    check("a!=", "a=", false);
}

#[test]
fn label_value_sets_and_conjunctions() {
    check("a in ()", "a=", true);
    check("a in ()", "a=b", false);
    check("a in (,b)", "a=", true);
    check("a in (b,)", "a=", true);
    check("a in (b,,c)", "a=", true);
    check("a in (b,,c)", "a=c", true);
    check("x in (foo,,baz),y,z notin ()", "x=foo,y=1", true);
    check("x in (foo,,baz),y,z notin ()", "x=foo,y=1,z=", false);
    check("a=b,c", "a=b,c=d", true);
    check("a=b,c", "a=b", false);
    check("a=b,!c", "a=b", true);
    check("a=b,a=c", "a=b", false);
    check("in in (in)", "in=in", true);
    check("notin notin (notin,in)", "notin=in", false);
    check("notin notin (notin,in)", "notin=x", true);
    check("a=in", "a=in", true);
    check("example.com/app=web", "example.com/app=web", true);
    check(
        "app.kubernetes.io/name in (web)",
        "app.kubernetes.io/name=db",
        false,
    );
}

#[test]
fn label_whitespace() {
    check("  a = b  ,  c  ", "a=b,c=", true);
    check("a\tin\t( b , c )", "a=c", true);
    check("a\r\nnotin(b)", "a=c", true);
    check(" \n\t", "", true);
    check("! a", "", true);
    check("a ==b", "a=b", true);
    check("a !=b", "a=b", false);
}

#[test]
fn label_syntax_errors() {
    check_err(
        "a in",
        "unable to parse requirement: found '' expected: '('",
    );
    check_err(
        "a in b",
        "unable to parse requirement: found 'b' expected: '('",
    );
    check_err(
        "a in (",
        "unable to parse requirement: found '', expected: ',', ')' or identifier",
    );
    check_err(
        "a in (=)",
        "unable to parse requirement: found '=', expected: ',', ')' or identifier",
    );
    check_err(
        "a in (b",
        "unable to parse requirement: found '', expected: ',' or ')'",
    );
    check_err(
        "a in (b c)",
        "unable to parse requirement: found 'c', expected: ',' or ')'",
    );
    // apimachinery 1.32 consumes one comma too many here (fixed only in 1.35).
    check_err(
        "a in (b,,)",
        "unable to parse requirement: found ')', expected: ',', or identifier",
    );
    check_err(
        "a b",
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
    );
    check_err(
        "a (b)",
        "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
    );
    check_err(
        "a=(",
        "unable to parse requirement: found '(', expected: identifier",
    );
    check_err(
        "!",
        "unable to parse requirement: found '', expected: identifier",
    );
    check_err(
        "!!a",
        "unable to parse requirement: found '!', expected: identifier",
    );
    check_err(
        "!=a",
        "found '!=', expected: !, identifier, or 'end of string'",
    );
    check_err(
        "=b",
        "found '=', expected: !, identifier, or 'end of string'",
    );
    check_err(
        ",a",
        "found ',', expected: !, identifier, or 'end of string'",
    );
    check_err("a,", "found '', expected: identifier after ','");
    check_err("a,,b", "found ',', expected: identifier after ','");
    check_err("a=b c", "found 'c', expected: ',' or 'end of string'");
    check_err("a=b)", "found ')', expected: ',' or 'end of string'");
    check_err("!a=b", "found '=', expected: ',' or 'end of string'");
}

#[test]
fn label_key_and_value_errors() {
    check_err(
        "-a=b",
        &format!(
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part {KEY_REGEX}"
        ),
    );
    check_err(
        "a_",
        &format!(
            "unable to parse requirement: <nil>: Invalid value: \"a_\": name part {KEY_REGEX}"
        ),
    );
    check_err(
        "a/b/c",
        &format!("unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name {KEY_REGEX} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    );
    check_err(
        "/a",
        "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty",
    );
    check_err(
        "Example.com/a",
        "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    check_err(
        "a/",
        &format!("unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; name part {KEY_REGEX}"),
    );
    let long = "k".repeat(64);
    check_err(
        &long,
        &format!("unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters"),
    );
    check_err(
        "a=-b",
        &format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {VALUE_REGEX}"),
    );
    check_err("a=\"b\"", &format!("unable to parse requirement: values[0][a]: Invalid value: \"\\\"b\\\"\": {VALUE_REGEX}"));
    check_err(
        "a in (y-,-x)",
        &format!("unable to parse requirement: [values[0][a]: Invalid value: \"-x\": {VALUE_REGEX}, values[1][a]: Invalid value: \"y-\": {VALUE_REGEX}]"),
    );
    let long = "v".repeat(64);
    check_err(
        &format!("a={long}"),
        &format!("unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"),
    );
    check_err("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer");
    check_err("a<", "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer");
    check_err(
        "a>-1",
        &format!("unable to parse requirement: values[0][a]: Invalid value: \"-1\": {VALUE_REGEX}"),
    );
    check_err(
        "a>x-",
        &format!("unable to parse requirement: [values[0]: Invalid value: \"x-\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][a]: Invalid value: \"x-\": {VALUE_REGEX}]"),
    );
}

#[test]
fn label_selector_display_and_emptiness() {
    check_shown(
        "b in (z,a), a=1, !c,d,e notin (x),f==2,g!=3,h>4",
        "a=1,b in (a,z),!c,d,e notin (x),f==2,g!=3,h>4",
    );
    check_shown("", "");
    assert!(LabelSelector::parse("  ")
        .map(|s| s.is_empty())
        .unwrap_or(false));
    assert!(!LabelSelector::parse("a")
        .map(|s| s.is_empty())
        .unwrap_or(true));
    let web = LabelSelector::parse("app=web").unwrap_or_default();
    assert!(web.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!web.matches_object(&json!({"metadata": {}})));
    assert!(LabelSelector::parse("!app")
        .unwrap_or_default()
        .matches_object(&json!({})));
}

#[test]
fn label_selector_from_match_expressions() {
    let nothing = LabelSelector::from_label_selector(&Value::Null).unwrap_or_default();
    assert!(!nothing.is_empty());
    assert!(!nothing.matches(&labels("")));
    check_from(json!({}), "", true);
    check_from(
        json!({"matchLabels": null, "matchExpressions": []}),
        "a=b",
        true,
    );
    check_from(json!({"matchLabels": {"app": "web"}}), "app=web,x=y", true);
    check_from(json!({"matchLabels": {"app": "web"}}), "app=db", false);
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
        "tier=b",
        true,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
        "tier=c",
        false,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}),
        "",
        true,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}),
        "tier=a",
        false,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
        "tier=",
        true,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
        "",
        false,
    );
    check_from(
        json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
        "",
        true,
    );
    check_from(
        json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
        "app=web,env=dev",
        true,
    );
    let shown = LabelSelector::from_label_selector(&json!({
        "matchLabels": {"b": "1"},
        "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}, {"key": "c", "operator": "DoesNotExist"}]
    }));
    assert_eq!(
        shown.map(|s| s.to_string()),
        Ok("a in (x,y),b=1,!c".to_string())
    );
}

#[test]
fn label_selector_conversion_errors() {
    check_from_err(
        json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]}),
        "\"Foo\" is not a valid label selector operator",
    );
    check_from_err(
        json!({"matchExpressions": [{"key": "a"}]}),
        "\"\" is not a valid label selector operator",
    );
    check_from_err(
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
    );
    check_from_err(
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]}),
        "values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for exists and does not exist",
    );
    check_from_err(
        json!({"matchLabels": {"-a": "b"}}),
        &format!("key: Invalid value: \"-a\": name part {KEY_REGEX}"),
    );
    check_from_err(
        json!({"matchLabels": {"app": "-x"}}),
        &format!("values[0][app]: Invalid value: \"-x\": {VALUE_REGEX}"),
    );
    check_from_err(
        json!({"matchLabels": {"-a": "-x"}}),
        &format!("[key: Invalid value: \"-a\": name part {KEY_REGEX}, values[0][-a]: Invalid value: \"-x\": {VALUE_REGEX}]"),
    );
    check_from_err(
        json!({"matchLabels": {"app": 1}}),
        "invalid type: integer `1`, expected a string",
    );
    check_from_err(
        json!("app=web"),
        "invalid type: string \"app=web\", expected struct MetaLabelSelector",
    );
}

fn pod() -> Value {
    json!({
        "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"nodeName": "node1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccount": "robot"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
    })
}

#[test]
fn field_operators_and_values() {
    fcheck("", pod(), true);
    fcheck(",", pod(), true);
    fcheck("status.phase=Running", pod(), true);
    fcheck("status.phase==Running", pod(), true);
    fcheck("status.phase!=Running", pod(), false);
    fcheck("status.phase=Pending", pod(), false);
    fcheck("metadata.name=web-1,metadata.namespace=prod", pod(), true);
    fcheck("metadata.name=web-1,metadata.namespace!=prod", pod(), false);
    fcheck("metadata.name=web-1,,", pod(), true);
    fcheck("spec.nodeName=node1", pod(), true);
    fcheck("spec.host=node1", pod(), true);
    fcheck("spec.nodeName=", json!({"spec": {}}), true);
    fcheck("spec.nodeName!=", json!({"spec": {}}), false);
    fcheck("spec.hostNetwork=false", pod(), true);
    fcheck(
        "spec.hostNetwork=true",
        json!({"spec": {"hostNetwork": true}}),
        true,
    );
    fcheck("spec.serviceAccountName=robot", pod(), true);
    fcheck(
        "spec.serviceAccountName=a",
        json!({"spec": {"serviceAccountName": "a", "serviceAccount": "b"}}),
        true,
    );
    fcheck("status.podIP=10.0.0.1", pod(), true);
    fcheck(
        "status.podIP=10.0.0.2",
        json!({"status": {"podIP": "10.0.0.2", "podIPs": [{"ip": "10.0.0.1"}]}}),
        true,
    );
    fcheck("status.podIPs=10.0.0.1", pod(), false);
    fcheck("status.podIPs=", pod(), true);
    fcheck("status.nominatedNodeName=", pod(), true);
    fcheck(
        "metadata.namespace=",
        json!({"metadata": {"name": "node1"}}),
        true,
    );
    fcheck("spec.unschedulable=false", json!({"spec": {}}), true);
    fcheck(
        "spec.unschedulable=true",
        json!({"spec": {"unschedulable": true}}),
        true,
    );
    fcheck("status.successful=0", json!({"status": {}}), true);
    fcheck(
        "status.successful=2",
        json!({"status": {"succeeded": 2}}),
        true,
    );
    fcheck(
        "status.replicas=3",
        json!({"status": {"replicas": 3}}),
        true,
    );
    fcheck(
        "type=kubernetes.io/tls",
        json!({"type": "kubernetes.io/tls"}),
        true,
    );
    fcheck(
        "spec.type=ClusterIP,spec.clusterIP!=None",
        json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1"}}),
        true,
    );
}

#[test]
fn field_event_values() {
    let core = json!({"involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Started", "reportingComponent": "kubelet"});
    fcheck(
        "involvedObject.kind=Pod,involvedObject.name=web-1,reason=Started",
        core.clone(),
        true,
    );
    fcheck("source=kubelet", core.clone(), true);
    fcheck(
        "source=kubelet",
        json!({"source": {"component": "scheduler"}, "reportingComponent": "kubelet"}),
        false,
    );
    fcheck("reportingComponent=kubelet", core.clone(), true);
    fcheck("involvedObject.uid=", core, true);
    let new = json!({"regarding": {"kind": "Pod"}, "reportingController": "kubelet", "deprecatedSource": {"component": "x"}});
    fcheck("regarding.kind=Pod", new.clone(), true);
    fcheck("involvedObject.kind=Pod", new.clone(), true);
    fcheck("reportingController=kubelet", new.clone(), true);
    fcheck("source=x", new, true);
}

#[test]
fn field_escapes_and_errors() {
    fcheck(
        "metadata.name=a\\,b",
        json!({"metadata": {"name": "a,b"}}),
        true,
    );
    fcheck(
        "metadata.name=a\\=b",
        json!({"metadata": {"name": "a=b"}}),
        true,
    );
    fcheck(
        "metadata.name=a\\\\b",
        json!({"metadata": {"name": "a\\b"}}),
        true,
    );
    fcheck(
        "metadata.name!=a\\,b,metadata.namespace=x",
        json!({"metadata": {"name": "a", "namespace": "x"}}),
        true,
    );
    fcheck_err("a", "invalid selector: 'a'; can't understand 'a'");
    fcheck_err("b=1,a", "invalid selector: 'b=1,a'; can't understand 'a'");
    fcheck_err("a!b", "invalid selector: 'a!b'; can't understand 'a!b'");
    fcheck_err(
        "metadata.name=a\\",
        "invalid field selector: invalid escape sequence: \\",
    );
    fcheck_err(
        "metadata.name=a\\x",
        "invalid field selector: invalid escape sequence: \\x",
    );
    fcheck_err(
        "metadata.name=a=b",
        "invalid field selector: unescaped character in value: 61",
    );
    fcheck_err(
        "metadata.name!=a=b",
        "invalid field selector: unescaped character in value: 61",
    );
    let spaced = FieldSelector::parse("metadata.name = a").unwrap_or_default();
    assert_eq!(spaced.requires_exact_match("metadata.name "), Some(" a"));
    let shown = FieldSelector::parse("b=x\\,y,a!=1,c==z").map(|s| s.to_string());
    assert_eq!(shown, Ok("a!=1,b=x\\,y,c=z".to_string()));
    assert!(FieldSelector::parse(",,")
        .map(|s| s.is_empty())
        .unwrap_or(false));
    let named = FieldSelector::parse("metadata.name!=b,metadata.name=a").unwrap_or_default();
    assert_eq!(named.requires_exact_match("metadata.name"), Some("a"));
}

#[test]
fn field_labels_per_resource() {
    supported("pods", "spec.nodeName=a,spec.host=a,spec.hostNetwork=true,status.podIPs=x,status.nominatedNodeName=", None);
    supported(
        "pods",
        "spec.foo=1",
        Some("field label not supported: spec.foo"),
    );
    supported("pods", "z=1,b=2", Some("field label not supported: b"));
    supported(
        "pods",
        "metadata.name = a",
        Some("field label not supported: metadata.name "),
    );
    supported("nodes", "metadata.name=a,spec.unschedulable=true", None);
    supported(
        "nodes",
        "metadata.namespace=",
        Some("field label not supported: metadata.namespace"),
    );
    supported("namespaces", "status.phase=Active", None);
    supported(
        "namespaces",
        "metadata.namespace=",
        Some("field label not supported: metadata.namespace"),
    );
    supported("secrets", "type=Opaque,metadata.namespace=a", None);
    supported("secrets", "data=x", Some("field label not supported: data"));
    supported("services", "spec.clusterIP=None,spec.type=NodePort", None);
    supported("replicationcontrollers", "status.replicas=1", None);
    supported("events", "involvedObject.kind=Pod,involvedObject.uid=1,reason=x,reportingComponent=y,source=z,type=Normal", None);
    supported(
        "events",
        "regarding.kind=Pod",
        Some("field label not supported: regarding.kind"),
    );
    supported(
        "events.events.k8s.io",
        "regarding.kind=Pod,reportingController=x,source=y",
        None,
    );
    supported(
        "events.events.k8s.io",
        "involvedObject.kind=Pod",
        Some("field label not supported: involvedObject.kind"),
    );
    supported("jobs", "status.successful=1", None);
    supported(
        "jobs",
        "status.active=1",
        Some("field label \"status.active\" not supported for Job"),
    );
    supported("certificatesigningrequests", "spec.signerName=x", None);
    supported(
        "certificatesigningrequests",
        "metadata.namespace=",
        Some("field label not supported: metadata.namespace"),
    );
    let not_known = "is not a known field selector: only \"metadata.name\", \"metadata.namespace\"";
    supported("configmaps", "metadata.name=a,metadata.namespace=b", None);
    supported(
        "configmaps",
        "data.x=1",
        Some(&format!("\"data.x\" {not_known}")),
    );
    supported(
        "replicasets",
        "status.replicas=1",
        Some(&format!("\"status.replicas\" {not_known}")),
    );
    supported("deployments", "=x", Some(&format!("\"\" {not_known}")));
    supported("persistentvolumes", "metadata.namespace=", None);
    supported("widgets", "", None);
}
