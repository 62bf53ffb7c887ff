//! Tests of kube-apiserver's defaulting and validation: each case defaults an object as
//! kube-apiserver would, validates it, and compares the causes (`<field>: <message>`) with the
//! texts kube-apiserver 1.32 answers with.

use serde_json::{json, Value};

use super::{default_object, validate};

const SUBDOMAIN: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Defaults `object`, validates it (as an update of `old` when given) and compares the causes.
fn check_update(group: &str, kind: &str, mut object: Value, old: Option<Value>, expected: &[&str]) {
    default_object(group, kind, &mut object);
    let old = old.map(|mut o| {
        default_object(group, kind, &mut o);
        o
    });
    let got: Vec<String> = validate(group, kind, &object, old.as_ref())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, expected, "{group}/{kind}: {object:#}");
}

fn check(group: &str, kind: &str, object: Value, expected: &[&str]) {
    check_update(group, kind, object, None, expected);
}

/// The causes of a create, for the cases that look at more than the text.
fn causes(group: &str, kind: &str, mut object: Value) -> Vec<super::FieldError> {
    default_object(group, kind, &mut object);
    validate(group, kind, &object, None)
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default"})
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
        "spec": {
            "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    })
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("p"), "spec": spec})
}

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": spec})
}

fn job(restart: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": restart, "containers": [{"name": "pi", "image": "perl"}]}}}
    })
}

// ---- Defaulting ------------------------------------------------------------------------------

#[test]
fn a_minimal_deployment_gains_every_default() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    default_object("apps", "Deployment", &mut d);
    let expected = json!({
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
                }],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "securityContext": {}, "schedulerName": "default-scheduler"
            }
        }
    });
    assert_eq!(d["spec"], expected);
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.2", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:1.2", "IfNotPresent"),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
    ] {
        let mut p = pod(json!({"containers": [{"name": "c", "image": image}]}));
        default_object("", "Pod", &mut p);
        assert_eq!(
            p["spec"]["containers"][0]["imagePullPolicy"], policy,
            "{image}"
        );
    }
}

#[test]
fn a_pod_gains_pod_only_defaults_and_probe_defaults() {
    let mut p = pod(json!({"containers": [{
        "name": "c", "image": "nginx:1.2",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1"}},
        "livenessProbe": {"httpGet": {"port": 80}}
    }], "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}]}));
    default_object("", "Pod", &mut p);
    let c = &p["spec"]["containers"][0];
    assert_eq!(p["spec"]["enableServiceLinks"], true);
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
               "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(p["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
}

#[test]
fn workload_defaults() {
    let mut s = json!({"metadata": meta("db"), "spec": {"template": {"spec": {"containers": []}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}});
    default_object("apps", "StatefulSet", &mut s);
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        s["spec"]["volumeClaimTemplates"][0]["status"],
        json!({"phase": "Pending"})
    );
    let mut d = json!({"metadata": meta("agent"), "spec": {"template": {"spec": {}}}});
    default_object("apps", "DaemonSet", &mut d);
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
}

#[test]
fn a_job_gains_its_defaults_and_generated_selector() {
    let mut j = job("Never");
    default_object("batch", "Job", &mut j);
    let spec = &j["spec"];
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ("manualSelector", json!(false)),
        (
            "selector",
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}),
        ),
    ] {
        assert_eq!(spec[k], v, "{k}");
    }
    assert_eq!(
        spec["template"]["metadata"]["labels"],
        json!({"controller-uid": "u-1", "job-name": "pi", "batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi"})
    );
    check("batch", "Job", job("Never"), &[]);
}

#[test]
fn service_namespace_secret_and_volume_defaults() {
    let mut s = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    default_object("", "Service", &mut s);
    assert_eq!(
        s["spec"],
        json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
               "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
               "ipFamilyPolicy": "SingleStack"})
    );
    let mut ns = json!({"metadata": {"name": "team-a"}});
    default_object("", "Namespace", &mut ns);
    assert_eq!(
        ns["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-a"})
    );
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    let mut secret = json!({"metadata": meta("s"), "stringData": {"user": "admin"}});
    default_object("", "Secret", &mut secret);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"], json!({"user": "YWRtaW4="}));
    assert!(secret.get("stringData").is_none());
    let mut pvc = json!({"metadata": meta("c"), "spec": {}});
    default_object("", "PersistentVolumeClaim", &mut pvc);
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    let mut pv = json!({"metadata": {"name": "v"}, "spec": {}});
    default_object("", "PersistentVolume", &mut pv);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
}

// ---- Metadata ------------------------------------------------------------------------------

#[test]
fn a_defaulted_deployment_is_valid() {
    check(
        "apps",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
        &[],
    );
}

#[test]
fn name_is_required_unless_generated() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["metadata"] = json!({"namespace": "default"});
    check(
        "apps",
        "Deployment",
        d.clone(),
        &["metadata.name: Required value: name or generateName is required"],
    );
    d["metadata"]["generateName"] = json!("web-");
    check("apps", "Deployment", d, &[]);
}

#[test]
fn names_follow_each_kinds_rule() {
    let cm = json!({"metadata": meta("My_Config"), "data": {}});
    check(
        "",
        "ConfigMap",
        cm,
        &[&format!(
            "metadata.name: Invalid value: \"My_Config\": {SUBDOMAIN}"
        )],
    );
    let mut s = service(json!({"ports": [{"port": 80}]}));
    s["metadata"]["name"] = json!("1web");
    check("", "Service", s, &["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]);
    check(
        "",
        "Namespace",
        json!({"metadata": {"name": "team.a"}}),
        &["metadata.name: Invalid value: \"team.a\": must not contain dots"],
    );
    let long = "a".repeat(254);
    check(
        "",
        "ConfigMap",
        json!({"metadata": meta(&long)}),
        &[&format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"
        )],
    );
    let pod_name = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
    let mut dotted = pod_name.clone();
    dotted["metadata"]["name"] = json!("web.v1");
    check("", "Pod", dotted, &[]);
}

#[test]
fn namespace_is_required_and_a_label() {
    let mut cm = json!({"metadata": {"name": "c"}});
    check(
        "",
        "ConfigMap",
        cm.clone(),
        &["metadata.namespace: Required value"],
    );
    cm["metadata"]["namespace"] = json!("Team");
    check(
        "",
        "ConfigMap",
        cm,
        &[&format!(
            "metadata.namespace: Invalid value: \"Team\": {LABEL}"
        )],
    );
}

#[test]
fn labels_and_annotations_are_qualified_names() {
    let mut cm = json!({"metadata": meta("c")});
    cm["metadata"]["labels"] = json!({"bad key!": "ok", "app": "-x", "x/y/z": "v"});
    cm["metadata"]["annotations"] = json!({"/a": "v"});
    check("", "ConfigMap", cm, &[
        "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        "metadata.labels: Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "metadata.labels: Invalid value: \"x/y/z\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        "metadata.annotations: Invalid value: \"/a\": prefix part must be non-empty",
    ]);
}

#[test]
fn identity_metadata_is_immutable_on_update() {
    let old = json!({"metadata": {"name": "c", "namespace": "default", "uid": "u-1", "creationTimestamp": "2024-01-02T03:04:05Z"}});
    let new = json!({"metadata": {"name": "d", "namespace": "other", "uid": "u-2", "creationTimestamp": "2024-05-06T07:08:09Z"}});
    check_update("", "ConfigMap", new, Some(old.clone()), &[
        "metadata.name: Invalid value: \"d\": field is immutable",
        "metadata.namespace: Invalid value: \"other\": field is immutable",
        "metadata.uid: Invalid value: \"u-2\": field is immutable",
        "metadata.creationTimestamp: Invalid value: 2024-05-06 07:08:09 +0000 UTC: field is immutable",
    ]);
    // An omitted uid is the stored one, as kube-apiserver fills it in.
    check_update(
        "",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "default"}}),
        Some(old),
        &[],
    );
}

// ---- Pods ----------------------------------------------------------------------------------

#[test]
fn containers_are_required() {
    check(
        "",
        "Pod",
        pod(json!({})),
        &["spec.containers: Required value"],
    );
}

#[test]
fn container_name_and_image_are_required_and_names_unique() {
    check(
        "",
        "Pod",
        pod(json!({"containers": [{}]})),
        &[
            "spec.containers[0].name: Required value",
            "spec.containers[0].image: Required value",
        ],
    );
    check(
        "",
        "Pod",
        pod(json!({"containers": [{"name": "Web_1", "image": "i"}]})),
        &[&format!(
            "spec.containers[0].name: Invalid value: \"Web_1\": {LABEL}"
        )],
    );
    let two = json!({"containers": [{"name": "web", "image": "i"}, {"name": "web", "image": "i"}]});
    check(
        "",
        "Pod",
        pod(two),
        &["spec.containers[1].name: Duplicate value: \"web\""],
    );
}

#[test]
fn container_ports_are_in_range() {
    let spec = json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}, {"containerPort": 80, "hostPort": -1, "protocol": "HTTP"}]}]});
    check("", "Pod", pod(spec), &[
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[1].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    ]);
}

#[test]
fn restart_policy_is_one_of_three() {
    let spec = json!({"restartPolicy": "Sometimes", "containers": [{"name": "c", "image": "i"}]});
    check("", "Pod", pod(spec), &["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]);
}

#[test]
fn volumes_are_unique_and_mounts_refer_to_them() {
    let spec = json!({
        "volumes": [{"name": "data"}, {"name": "data"}],
        "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "cache", "mountPath": "/d"}]}]
    });
    let errs = causes("", "Pod", pod(spec));
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(shown[0], "spec.volumes[1].name: Duplicate value: \"data\"");
    assert_eq!(
        shown[1],
        "spec.containers[0].volumeMounts[1].name: Not found: \"cache\""
    );
    assert_eq!(
        shown[2],
        "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique"
    );
    assert_eq!(shown.len(), 3);
}

#[test]
fn env_probes_and_resources() {
    let spec = json!({"containers": [{
        "name": "c", "image": "i",
        "env": [{"name": "A", "valueFrom": {}}, {"name": "B=C", "value": "x"}],
        "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
        "readinessProbe": {},
        "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}
    }]});
    check("", "Pod", pod(spec), &[
        "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        "spec.containers[0].env[1].name: Invalid value: \"B=C\": a valid environment variable name must consist only of printable ASCII characters other than '='",
        "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    ]);
}

#[test]
fn a_pod_update_may_change_only_images() {
    let old = pod(json!({"containers": [{"name": "c", "image": "nginx:1"}]}));
    let mut ok = old.clone();
    ok["spec"]["containers"][0]["image"] = json!("nginx:2");
    check_update("", "Pod", ok, Some(old.clone()), &[]);
    let mut bad = old.clone();
    bad["spec"]["containers"][0]["name"] = json!("d");
    let mut new = bad.clone();
    default_object("", "Pod", &mut new);
    let mut prev = old;
    default_object("", "Pod", &mut prev);
    let errs = validate("", "Pod", &new, Some(&prev));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert!(errs[0].to_string().starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    ));
}

// ---- Workloads -----------------------------------------------------------------------------

#[test]
fn replicas_may_not_be_negative() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["replicas"] = json!(-1);
    check(
        "apps",
        "Deployment",
        d,
        &["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
    );
}

#[test]
fn a_deployment_needs_a_selector_that_matches() {
    check("apps", "Deployment", deployment(Value::Null, json!({"app": "x"})), &[
        "spec.selector: Required value",
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
    ]);
    check("apps", "Deployment", deployment(json!({"matchLabels": {"app": "y"}}), json!({"app": "x"})), &[
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
    ]);
    check("apps", "Deployment", deployment(json!({}), json!({"app": "x"})), &[
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    ]);
    let exprs =
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "z"]}]});
    check(
        "apps",
        "Deployment",
        deployment(exprs, json!({"app": "x"})),
        &[],
    );
}

#[test]
fn the_selector_is_immutable_on_update() {
    let old = deployment(
        json!({"matchLabels": {"app": "x"}}),
        json!({"app": "x", "tier": "y"}),
    );
    let new = deployment(
        json!({"matchLabels": {"app": "x", "tier": "y"}}),
        json!({"app": "x", "tier": "y"}),
    );
    check_update("apps", "Deployment", new, Some(old), &[
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\", \"tier\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
    ]);
}

#[test]
fn rolling_update_may_not_stand_still() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
    check("apps", "Deployment", d, &[
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
    ]);
}

#[test]
fn stateful_sets_and_daemon_sets() {
    let sts = json!({"metadata": meta("db"), "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}}});
    check("apps", "StatefulSet", sts, &[
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset",
    ]);
    let ds = json!({"metadata": meta("agent"), "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "i"}]}}}});
    check("apps", "DaemonSet", ds.clone(), &[
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`",
    ]);
    let mut ok = ds;
    ok["spec"]["selector"] = json!({"matchLabels": {"app": "a"}});
    check("apps", "DaemonSet", ok, &[]);
}

#[test]
fn a_job_template_must_not_restart_always() {
    check("batch", "Job", job("Always"), &["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]);
    check("batch", "Job", job("Sometimes"), &[
        "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
    ]);
}

// ---- Services, ConfigMaps, Secrets, claims ------------------------------------------------

#[test]
fn a_cluster_ip_service_needs_valid_ports() {
    check(
        "",
        "Service",
        service(json!({"selector": {"app": "web"}})),
        &["spec.ports: Required value"],
    );
    let ports =
        json!({"ports": [{"name": "http", "port": 0, "targetPort": "Not-A-Name"}, {"port": 443}]});
    check("", "Service", service(ports), &[
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[0].targetPort: Invalid value: \"Not-A-Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "spec.ports[1].name: Required value",
    ]);
    check("", "Service", service(json!({"clusterIP": "None"})), &[]);
}

#[test]
fn config_map_and_secret_keys_are_config_keys() {
    let cm = json!({"metadata": meta("c"), "data": {"bad key": "v", "good.key": "v"}});
    check("", "ConfigMap", cm, &["data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]);
    let secret = json!({"metadata": meta("s"), "data": {"..": "eA=="}});
    check(
        "",
        "Secret",
        secret,
        &["data[..]: Invalid value: \"..\": must not be '..'"],
    );
    let tls =
        json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
    check("", "Secret", tls, &["data[tls.key]: Required value"]);
}

#[test]
fn a_secrets_type_is_immutable() {
    let old = json!({"metadata": meta("s"), "type": "Opaque"});
    let new = json!({"metadata": meta("s"), "type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}});
    check_update(
        "",
        "Secret",
        new,
        Some(old),
        &["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"],
    );
}

#[test]
fn a_claim_needs_access_modes_and_storage() {
    let pvc = json!({"metadata": meta("c"), "spec": {"accessModes": ["ReadWriteSometimes"]}});
    check("", "PersistentVolumeClaim", pvc, &[
        "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
        "spec.resources[storage]: Required value",
    ]);
    let ok = json!({"metadata": meta("c"), "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    check("", "PersistentVolumeClaim", ok, &[]);
}

#[test]
fn a_namespace_is_cluster_scoped() {
    check(
        "",
        "Namespace",
        json!({"metadata": {"name": "team-a"}}),
        &[],
    );
}

#[test]
fn cron_jobs_and_autoscalers() {
    let cron = json!({"metadata": meta(&"c".repeat(53)), "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Sometimes",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}}}}});
    check("batch", "CronJob", cron, &[
        "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        &format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "c".repeat(53)),
    ]);
    let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": meta("h"), "spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"}}});
    check(
        "autoscaling",
        "HorizontalPodAutoscaler",
        hpa,
        &[
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.scaleTargetRef.name: Required value",
        ],
    );
}

#[test]
fn finalizers_are_qualified_or_kubernetes_own() {
    let mut cm = json!({"metadata": meta("c")});
    cm["metadata"]["finalizers"] = json!(["kubernetes", "example.com/cleanup", "cleanup"]);
    check("", "ConfigMap", cm, &[
        "metadata.finalizers[2]: Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified",
    ]);
}
