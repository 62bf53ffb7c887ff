//! kubectl scenarios, each on a server of its own namespace so that they can share one server.

use crate::common::apiserver::ApiServer;
use crate::common::etcdctl;

type Scenario = fn(&ApiServer);

pub const ALL: &[(&str, Scenario)] = &[
    ("namespaces", namespaces),
    (
        "missing_objects_are_not_found",
        missing_objects_are_not_found,
    ),
    (
        "apply_is_idempotent_and_changes_only_what_changed",
        apply_is_idempotent,
    ),
    ("get_prints_columns_yaml_and_jsonpath", get_output_formats),
    ("selectors_filter", selectors_filter),
    (
        "strategic_patch_changes_one_container",
        strategic_patch_changes_one_container,
    ),
    ("scale_label_annotate", scale_label_annotate),
    (
        "replace_with_a_stale_version_conflicts",
        replace_with_a_stale_version_conflicts,
    ),
    ("get_watch_sees_a_change", get_watch_sees_a_change),
    ("api_resources_and_explain", api_resources_and_explain),
    (
        "deleting_a_namespace_deletes_its_contents",
        deleting_a_namespace_deletes_its_contents,
    ),
];

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: busybox:1.36
        command: ["sleep", "3600"]
      - name: sidecar
        image: busybox:1.35
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web}
data:
  color: blue
"#;

/// `kubectl -n ns get what -o jsonpath=path`.
pub fn jsonpath(s: &ApiServer, ns: &str, what: &str, path: &str) -> String {
    s.ok(&["-n", ns, "get", what, "-o", &format!("jsonpath={path}")])
}

/// A namespace `ns` with the web manifests applied.
fn shop(s: &ApiServer, ns: &str) {
    create_namespace(s, ns);
    s.apply(&WEB.replace("namespace: shop", &format!("namespace: {ns}")));
}

fn apply_is_idempotent(s: &ApiServer) {
    create_namespace(s, "shop");
    let out = s.apply(WEB);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "deployment.apps/web created",
            "service/web created",
            "configmap/settings created"
        ],
        "{out}"
    );
    let rv = |what: &str| jsonpath(s, "shop", what, "{.metadata.resourceVersion}");
    let before = (rv("deployment/web"), rv("configmap/settings"));
    let out = s.apply(WEB);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "deployment.apps/web unchanged",
            "service/web unchanged",
            "configmap/settings unchanged"
        ],
        "{out}"
    );
    assert_eq!(
        (rv("deployment/web"), rv("configmap/settings")),
        before,
        "a re-apply writes nothing"
    );
    // The server itself writes nothing for an update that changes nothing (kubectl apply decides
    // "unchanged" on its own; a patch is sent as it is).
    let same = [
        "-n",
        "shop",
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"color":"blue"}}"#,
    ];
    assert_eq!(s.ok(&same).trim(), "configmap/settings patched (no change)");
    assert_eq!(
        rv("configmap/settings"),
        before.1,
        "an update that changes nothing writes nothing"
    );
    // An edited re-apply changes what was edited, and only that.
    let out = s.apply(&WEB.replace("color: blue", "color: green"));
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    assert_eq!(jsonpath(s, "shop", "cm/settings", "{.data.color}"), "green");
    assert_eq!(rv("deployment/web"), before.0);
}

fn get_output_formats(s: &ApiServer) {
    shop(s, "formats");
    let out = s.ok(&["-n", "formats", "get", "deployments"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "0/2", "0", "0"], "{out}");
    let wide = s.ok(&["-n", "formats", "get", "deployments", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[5..], ["CONTAINERS", "IMAGES", "SELECTOR"], "{wide}");
    assert!(
        wide.contains("app,sidecar") && wide.contains("busybox:1.36,busybox:1.35"),
        "{wide}"
    );
    let svc = s.ok(&["-n", "formats", "get", "svc", "web"]);
    let header: Vec<&str> = svc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{svc}"
    );
    assert!(svc.contains("80/TCP"), "{svc}");
    let yaml = s.ok(&["-n", "formats", "get", "deployment", "web", "-o", "yaml"]);
    for line in [
        "kind: Deployment",
        "  name: web",
        "  replicas: 2",
        "      maxSurge: 25%",
        "  uid: ",
    ] {
        assert!(yaml.contains(line), "{line:?} not in\n{yaml}");
    }
    let images = jsonpath(
        s,
        "formats",
        "deployment/web",
        "{.spec.template.spec.containers[*].image}",
    );
    assert_eq!(images, "busybox:1.36 busybox:1.35");
}

fn selectors_filter(s: &ApiServer) {
    shop(s, "select");
    let names = |args: &[&str]| {
        let mut full = vec!["-n", "select", "get"];
        full.extend(args);
        full.extend(["-o", "name"]);
        let out = s.ok(&full);
        out.lines().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["deploy,cm", "-l", "app=web"]),
        ["deployment.apps/web", "configmap/settings"]
    );
    assert_eq!(
        names(&["deploy,cm", "-l", "tier in (front,back)"]),
        ["deployment.apps/web"]
    );
    assert_eq!(
        names(&["deploy,cm", "-l", "app!=web"]),
        Vec::<String>::new()
    );
    assert_eq!(names(&["deploy,cm", "-l", "!tier"]), ["configmap/settings"]);
    assert_eq!(
        names(&["cm", "--field-selector", "metadata.name=settings"]),
        ["configmap/settings"]
    );
    assert_eq!(
        names(&["cm", "--field-selector", "metadata.name!=settings"]),
        Vec::<String>::new()
    );
    s.kubectl(&[
        "-n",
        "select",
        "get",
        "cm",
        "--field-selector",
        "spec.color=blue",
    ])
    .fails_with(
        &["get"],
        r#""spec.color" is not a known field selector: only "metadata.name", "metadata.namespace""#,
    );
}

fn strategic_patch_changes_one_container(s: &ApiServer) {
    shop(s, "patching");
    let out = s.ok(&[
        "-n",
        "patching",
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"busybox:1.37"}]}}}}"#,
    ]);
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let images = jsonpath(
        s,
        "patching",
        "deployment/web",
        "{range .spec.template.spec.containers[*]}{.name}={.image} {end}",
    );
    assert_eq!(images.trim(), "app=busybox:1.37 sidecar=busybox:1.35");
    assert_eq!(
        jsonpath(s, "patching", "deployment/web", "{.metadata.generation}"),
        "2"
    );
    let out = s.ok(&[
        "-n",
        "patching",
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"size":"xl"}}"#,
    ]);
    assert_eq!(out.trim(), "configmap/settings patched");
    let out = s.ok(&[
        "-n",
        "patching",
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/color"}]"#,
    ]);
    assert_eq!(out.trim(), "configmap/settings patched");
    assert_eq!(
        jsonpath(s, "patching", "cm/settings", "{.data}"),
        r#"{"size":"xl"}"#
    );
}

fn scale_label_annotate(s: &ApiServer) {
    shop(s, "scaling");
    assert_eq!(
        s.ok(&[
            "-n",
            "scaling",
            "scale",
            "deployment",
            "web",
            "--replicas=5"
        ])
        .trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(
        jsonpath(s, "scaling", "deployment/web", "{.spec.replicas}"),
        "5"
    );
    assert_eq!(
        s.ok(&["-n", "scaling", "label", "cm", "settings", "env=prod"])
            .trim(),
        "configmap/settings labeled"
    );
    assert_eq!(
        s.ok(&["-n", "scaling", "annotate", "cm", "settings", "owner=ops"])
            .trim(),
        "configmap/settings annotated"
    );
    let out = jsonpath(
        s,
        "scaling",
        "cm/settings",
        "{.metadata.labels.env} {.metadata.annotations.owner}",
    );
    assert_eq!(out, "prod ops");
}

fn replace_with_a_stale_version_conflicts(s: &ApiServer) {
    shop(s, "replacing");
    let stale = s.ok(&["-n", "replacing", "get", "cm", "settings", "-o", "json"]);
    s.ok(&["-n", "replacing", "label", "cm", "settings", "moved=on"]);
    s.kubectl_stdin(&["replace", "-f", "-"], Some(&stale)).fails_with(
        &["replace"],
        "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on configmaps \"settings\": the object has been modified; please apply your changes to the latest version and try again",
    );
}

fn get_watch_sees_a_change(s: &ApiServer) {
    shop(s, "watching");
    let child = std::process::Command::new(crate::common::apiserver::kubectl_program())
        .arg(format!("--kubeconfig={}", s.kubeconfig.display()))
        .args(["-n", "watching", "get", "cm", "-w", "--output-watch-events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(2));
            s.ok(&["-n", "watching", "label", "cm", "settings", "seen=yes"]);
            s.ok(&["-n", "watching", "delete", "cm", "settings"]);
        });
        crate::common::collect_lines(child, 4, std::time::Duration::from_secs(20))
    });
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["EVENT", "NAME", "DATA"],
            vec!["ADDED", "settings", "1"],
            vec!["MODIFIED", "settings", "1"],
            vec!["DELETED", "settings", "1"],
        ],
        "{lines:#?}"
    );
}

fn api_resources_and_explain(s: &ApiServer) {
    let out = s.ok(&["api-resources"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["deployments", "deploy", "apps/v1", "true", "Deployment"]),
        "{out}"
    );
    let explain = s.ok(&["explain", "deployment.spec"]);
    assert!(
        explain.contains("KIND:") && explain.contains("Deployment"),
        "{explain}"
    );
    assert!(explain.contains("replicas"), "{explain}");
}

/// `kubectl create namespace name` (its body is protobuf).
pub fn create_namespace(s: &ApiServer, name: &str) -> String {
    s.ok(&["create", "namespace", name])
}

fn namespaces(s: &ApiServer) {
    assert_eq!(
        create_namespace(s, "team-a").trim(),
        "namespace/team-a created"
    );
    let out = s.ok(&["get", "namespace", "team-a"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("team-a"), "{out}");
    assert!(out.contains("Active"), "{out}");
    let again = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n";
    s.kubectl_stdin(&["create", "-f", "-"], Some(again)).fails_with(
        &["create", "-f", "-"],
        "Error from server (AlreadyExists): error when creating \"STDIN\": namespaces \"team-a\" already exists",
    );
    s.kubectl(&["create", "namespace", "team-a"]).fails_with(
        &["create", "namespace"],
        "Error from server (AlreadyExists): namespaces \"team-a\" already exists",
    );
    // The system namespaces are there (made by the server soon after it starts), and the
    // default one stays.
    let system = [
        "get",
        "namespace",
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s.kubectl(&system).success {
        assert!(
            std::time::Instant::now() < deadline,
            "no system namespaces within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    s.kubectl(&["delete", "namespace", "default"]).fails_with(
        &["delete", "namespace"],
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted",
    );
}

fn missing_objects_are_not_found(s: &ApiServer) {
    create_namespace(s, "missing");
    s.kubectl(&["-n", "missing", "get", "deployment", "web"])
        .fails_with(
            &["get"],
            "Error from server (NotFound): deployments.apps \"web\" not found",
        );
    s.kubectl(&["-n", "missing", "delete", "configmap", "nothing"])
        .fails_with(
            &["delete"],
            "Error from server (NotFound): configmaps \"nothing\" not found",
        );
}

/// The objects are where Kubernetes keeps them, as etcdctl sees them.
pub fn objects_are_under_kubernetes_keys(endpoints: &str) {
    let keys = etcdctl(
        endpoints,
        &["get", "--prefix", "--keys-only", "/registry/"],
        None,
    )
    .expect_ok(&["get"]);
    assert!(
        keys.lines().any(|k| k == "/registry/namespaces/team-a"),
        "{keys}"
    );
}

fn deleting_a_namespace_deletes_its_contents(s: &ApiServer) {
    shop(s, "doomed");
    // A finalizer holds one object, and with it the namespace, in Terminating.
    s.ok(&[
        "-n",
        "doomed",
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    let out = s.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    assert_eq!(out.trim(), "namespace \"doomed\" deleted");
    let phase = || jsonpath(s, "default", "namespace/doomed", "{.status.phase}");
    assert_eq!(phase(), "Terminating");
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: doomed\n";
    s.kubectl_stdin(&["create", "-f", "-"], Some(manifest)).fails_with(
        &["create"],
        "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated",
    );
    // Everything without a finalizer goes; the held object stays until its finalizer is removed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = s.ok(&["-n", "doomed", "get", "deploy,svc,cm", "-o", "name"]);
        if left.trim() == "configmap/settings" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still in the namespace: {left}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    s.ok(&[
        "-n",
        "doomed",
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.kubectl(&["get", "namespace", "doomed"]).success {
        assert!(
            std::time::Instant::now() < deadline,
            "the namespace outlived its contents by 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
