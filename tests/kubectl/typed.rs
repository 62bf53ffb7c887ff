//! kubectl's typed commands (their bodies are protobuf), a kind served in two versions over one
//! stored form, what the API server allocates (Services' addresses), field validation's three
//! modes, aggregated discovery, and the `kubernetes` Service.

use crate::common::apiserver::ApiServer;
use crate::scenarios::{create_namespace, jsonpath};

type Scenario = fn(&ApiServer);

pub const ALL: &[(&str, Scenario)] = &[
    ("typed_create_commands", typed_create_commands),
    ("events_in_both_versions", events_in_both_versions),
    ("services_get_addresses", services_get_addresses),
    ("unknown_fields_by_validation", unknown_fields_by_validation),
    ("discovery_is_aggregated", discovery_is_aggregated),
    ("the_kubernetes_service", the_kubernetes_service),
];

/// kubectl's typed `create` commands and `autoscale` send protobuf bodies; what they create is
/// what the same command's JSON would have made, defaulted as usual.
fn typed_create_commands(s: &ApiServer) {
    create_namespace(s, "typed");
    // (what to create, what kubectl says, what to read back, where, what it must be)
    let cases: &[(&[&str], &str, &str, &str, &str)] = &[
        (
            &["configmap", "cm1", "--from-literal=a=1"],
            "configmap/cm1 created",
            "cm/cm1",
            "{.data.a}",
            "1",
        ),
        (
            &["secret", "generic", "s1", "--from-literal=password=hunter2"],
            "secret/s1 created",
            "secret/s1",
            "{.data.password}",
            "aHVudGVyMg==",
        ),
        // A zero pointer is kept...
        (
            &["deployment", "web", "--image=busybox:1.36", "--replicas=0"],
            "deployment.apps/web created",
            "deploy/web",
            "{.spec.replicas}",
            "0",
        ),
        // ...and the object is defaulted as a JSON body is.
        (
            &["deployment", "web2", "--image=busybox:1.36"],
            "deployment.apps/web2 created",
            "deploy/web2",
            "{.spec.template.spec.containers[0].terminationMessagePath}",
            "/dev/termination-log",
        ),
        (
            &["service", "clusterip", "svc1", "--tcp=80:8080"],
            "service/svc1 created",
            "svc/svc1",
            "{.spec.ports[0].targetPort}",
            "8080",
        ),
        (
            &["job", "j1", "--image=busybox", "--", "echo", "hi"],
            "job.batch/j1 created",
            "job/j1",
            "{.spec.template.spec.containers[0].command}",
            r#"["echo","hi"]"#,
        ),
    ];
    for (args, said, what, path, want) in cases {
        let out = s.ok(&[&["-n", "typed", "create"][..], args].concat());
        assert_eq!(out.trim(), *said);
        assert_eq!(jsonpath(s, "typed", what, path), *want, "{args:?}");
    }
    // autoscale writes autoscaling/v1; it reads back as v2 (the preferred version) and as v1.
    assert_eq!(
        s.ok(&[
            "-n",
            "typed",
            "autoscale",
            "deployment",
            "web",
            "--max=3",
            "--cpu-percent=60"
        ])
        .trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    assert_eq!(
        jsonpath(
            s,
            "typed",
            "hpa/web",
            "{.spec.metrics[0].resource.target.averageUtilization}"
        ),
        "60"
    );
    assert_eq!(
        jsonpath(
            s,
            "typed",
            "horizontalpodautoscalers.v1.autoscaling/web",
            "{.spec.targetCPUUtilizationPercentage}"
        ),
        "60"
    );
}

const EVENT_V1: &str = r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web.1, namespace: typed}
eventTime: "2026-12-07T10:00:00.000000Z"
reportingController: ballast/test
reportingInstance: test-1
action: Scale
reason: ScalingReplicaSet
type: Normal
note: Scaled up replica set web-1 to 1
regarding: {apiVersion: apps/v1, kind: Deployment, name: web, namespace: typed}
"#;

/// An events.k8s.io/v1 Event is a core/v1 Event too, with the fields named as each version
/// names them.
fn events_in_both_versions(s: &ApiServer) {
    s.kubectl_stdin(&["create", "-f", "-"], Some(EVENT_V1))
        .ok(&["create", "-f", "-"]);
    assert_eq!(
        jsonpath(s, "typed", "events.v1.events.k8s.io/web.1", "{.note}"),
        "Scaled up replica set web-1 to 1"
    );
    assert_eq!(
        jsonpath(
            s,
            "typed",
            "events.v1./web.1",
            "{.message} {.involvedObject.kind} {.reportingComponent}"
        ),
        "Scaled up replica set web-1 to 1 Deployment ballast/test"
    );
}

/// A Service is given a cluster IP from the service CIDR and node ports from their range; a
/// node port is one Service's until that Service goes.
fn services_get_addresses(s: &ApiServer) {
    create_namespace(s, "addresses");
    let ns = ["-n", "addresses"];
    let create = |args: &[&str]| s.kubectl(&[&ns[..], &["create", "service"], args].concat());
    create(&["clusterip", "a", "--tcp=80:8080"]).ok(&["create", "service"]);
    let ip = jsonpath(s, "addresses", "svc/a", "{.spec.clusterIP}");
    assert!(ip.starts_with("10.43."), "{ip}");
    // (get's columns are checked in get_prints_columns_yaml_and_jsonpath)
    let out = s.ok(&["-n", "addresses", "get", "svc", "a"]);
    assert!(out.contains(&ip), "{out}");
    create(&["nodeport", "np", "--tcp=80:8080", "--node-port=30080"]).ok(&["create", "service"]);
    assert_eq!(
        jsonpath(s, "addresses", "svc/np", "{.spec.ports[0].nodePort}"),
        "30080"
    );
    create(&["nodeport", "np2", "--tcp=80:8080", "--node-port=30080"]).fails_with(
        &["create", "service"],
        "failed to create NodePort service: Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
    );
    // A replace without the address keeps it; an edit of it is refused.
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: addresses}\nspec:\n  ports: [{port: 81}]\n";
    s.kubectl_stdin(&["replace", "-f", "-"], Some(manifest))
        .ok(&["replace"]);
    assert_eq!(jsonpath(s, "addresses", "svc/a", "{.spec.clusterIP}"), ip);
    s.ok(&["-n", "addresses", "delete", "svc", "np"]);
    create(&["nodeport", "np2", "--tcp=80:8080", "--node-port=30080"]).ok(&["create", "service"]);
}

/// A field the type does not have: refused with kubectl's default validation, a warning with
/// `--validate=warn` (the object is stored without it), ignored with `--validate=false`.
fn unknown_fields_by_validation(s: &ApiServer) {
    create_namespace(s, "fields");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: fields}\ndata: {k: v}\ncolour: blue\n";
    s.kubectl_stdin(&["apply", "-f", "-"], Some(manifest))
        .fails_with(&["apply"], "unknown field \"colour\"");
    let warned = s.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], Some(manifest));
    assert!(warned.success, "{}", warned.stderr);
    assert!(
        warned.stderr.contains("Warning: unknown field \"colour\""),
        "{}",
        warned.stderr
    );
    assert_eq!(jsonpath(s, "fields", "cm/c", "{.data.k}"), "v");
    let quiet = s.kubectl_stdin(&["replace", "--validate=false", "-f", "-"], Some(manifest));
    assert!(
        quiet.success && !quiet.stderr.contains("Warning"),
        "{}",
        quiet.stderr
    );
}

/// kubectl asks for aggregated discovery first and, answered, reads no group version's
/// document on its own (one request for `/api`, one for `/apis`).
fn discovery_is_aggregated(s: &ApiServer) {
    let cache = std::env::temp_dir().join(format!("ballast-discovery-{}", std::process::id()));
    let cache = cache.to_str().unwrap();
    let out = s.kubectl(&["api-resources", "-v=6", "--cache-dir", cache]);
    let _ = std::fs::remove_dir_all(cache);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("deployments"), "{}", out.stdout);
    assert!(out.stderr.contains("/apis?timeout"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("/apis/apps/v1?timeout"),
        "kubectl fell back to the classic documents:\n{}",
        out.stderr
    );
}

/// The `kubernetes` Service in `default` takes the service CIDR's first address, and its
/// endpoints are the API servers.
fn the_kubernetes_service(s: &ApiServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let endpoints = [
        "-n",
        "default",
        "get",
        "endpoints",
        "kubernetes",
        "-o",
        "jsonpath={.subsets[0].addresses[0].ip}",
    ];
    while !s.kubectl(&endpoints).success {
        assert!(
            std::time::Instant::now() < deadline,
            "no kubernetes Endpoints within 15 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(s.ok(&endpoints), "127.0.0.1");
    assert_eq!(
        jsonpath(s, "default", "svc/kubernetes", "{.spec.clusterIP}"),
        "10.43.0.1"
    );
    assert_eq!(
        jsonpath(
            s,
            "default",
            "endpointslices/kubernetes",
            "{.endpoints[0].addresses[0]}"
        ),
        "127.0.0.1"
    );
}
