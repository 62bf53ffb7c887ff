//! Workloads on hollow nodes: what a user sees with kubectl while the scheduler and the
//! ReplicaSet and Deployment controllers work.

use std::time::Duration;

use serde_json::Value;

use crate::common::apiserver::ApiServer;
use crate::common::hollow::{get, is_running_ready, items, live_pods, wait_for};

type Scenario = fn(&ApiServer);

pub const ALL: &[(&str, Scenario)] = &[
    ("replicaset_heals", replicaset_heals),
    (
        "deployment_rolls_within_its_bounds",
        deployment_rolls_within_its_bounds,
    ),
    ("deployment_scales", deployment_scales),
    (
        "unschedulable_pod_is_reported",
        unschedulable_pod_is_reported,
    ),
    (
        "statefulset_orders_and_keeps_claims",
        crate::sets::statefulset_orders_and_keeps_claims,
    ),
    (
        "daemonset_runs_one_pod_per_node",
        crate::sets::daemonset_runs_one_pod_per_node,
    ),
    (
        "service_endpoints_follow_pods",
        crate::sets::service_endpoints_follow_pods,
    ),
];

const CONVERGE: Duration = Duration::from_secs(60);

pub fn nodes_register(server: &ApiServer) {
    wait_for("3 hollow nodes Ready", CONVERGE, || {
        let out = server.ok(&["get", "nodes", "--no-headers"]);
        let ready = out
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count();
        if ready == 3 {
            Ok(())
        } else {
            Err(out)
        }
    });
}

fn namespace(server: &ApiServer, name: &str) {
    server.ok(&["create", "namespace", name]);
}

/// Waits until `n` pods matching `selector` run and are ready; returns them.
fn running(server: &ApiServer, ns: &str, selector: &str, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} pods {selector} Running and Ready"),
        CONVERGE,
        || {
            let pods = live_pods(server, ns, selector);
            let ready = pods.iter().filter(|p| is_running_ready(p)).count();
            if pods.len() == n && ready == n {
                Ok(pods)
            } else {
                Err(format!("{} pods, {ready} ready", pods.len()))
            }
        },
    )
}

fn names(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A ReplicaSet keeps its count: a deleted pod is replaced, on some node, and the
/// ReplicaSet's columns say so.
fn replicaset_heals(server: &ApiServer) {
    namespace(server, "heal");
    server.apply(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: rs\n  namespace: heal\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: rs}\n  template:\n    metadata:\n      labels: {app: rs}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    );
    let pods = running(server, "heal", "app=rs", 3);
    for pod in &pods {
        assert!(
            pod["spec"]["nodeName"]
                .as_str()
                .unwrap_or("")
                .starts_with("hollow-"),
            "{pod}"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }
    let victim = names(&pods)[0].clone();
    server.ok(&["-n", "heal", "delete", "pod", &victim]);
    let healed = running(server, "heal", "app=rs", 3);
    assert!(!names(&healed).contains(&victim), "{victim} was replaced");
    wait_for("kubectl get rs shows 3 ready", CONVERGE, || {
        let out = server.ok(&["-n", "heal", "get", "rs", "rs", "--no-headers"]);
        let cols: Vec<&str> = out.split_whitespace().collect();
        if cols.get(1..4) == Some(&["3", "3", "3"]) {
            Ok(())
        } else {
            Err(out)
        }
    });
    let events = server.ok(&[
        "-n",
        "heal",
        "get",
        "events",
        "--field-selector=reason=SuccessfulCreate",
    ]);
    assert!(events.contains("Created pod: rs-"), "{events}");
}

/// `kubectl rollout status deployment/web`, which must succeed within a minute.
fn rollout_status(server: &ApiServer, ns: &str) -> String {
    server.ok(&[
        "-n",
        ns,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=60s",
    ])
}

/// The Deployment's pods, split by readiness: (total, available).
fn counts(server: &ApiServer, ns: &str) -> (usize, usize) {
    let pods = live_pods(server, ns, "app=web");
    let ready = pods.iter().filter(|p| is_running_ready(p)).count();
    (pods.len(), ready)
}

/// A rolling update of 10 replicas with maxSurge 2 and maxUnavailable 1: at every moment
/// watched, at most 12 pods and at least 9 available; `rollout status`, `history` and `undo`
/// work as with Kubernetes.
fn deployment_rolls_within_its_bounds(server: &ApiServer) {
    namespace(server, "roll");
    server.ok(&[
        "-n",
        "roll",
        "create",
        "deployment",
        "web",
        "--image=busybox:1",
        "--replicas=10",
    ]);
    server.ok(&[
        "-n",
        "roll",
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":2,"maxUnavailable":1}}}}"#,
    ]);
    running(server, "roll", "app=web", 10);
    rollout_status(server, "roll");
    server.ok(&[
        "-n",
        "roll",
        "set",
        "image",
        "deployment/web",
        "busybox=busybox:2",
    ]);
    let deadline = std::time::Instant::now() + CONVERGE;
    let mut samples = 0;
    loop {
        let (total, available) = counts(server, "roll");
        assert!(total <= 12, "{total} pods: more than replicas + maxSurge");
        assert!(
            available >= 9,
            "{available} available: fewer than replicas - maxUnavailable"
        );
        samples += 1;
        let pods = live_pods(server, "roll", "app=web");
        let done = pods.len() == 10
            && pods
                .iter()
                .all(|p| is_running_ready(p) && p["spec"]["containers"][0]["image"] == "busybox:2");
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout not done in {CONVERGE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(samples > 3, "the rollout was watched ({samples} samples)");
    let status = rollout_status(server, "roll");
    assert!(status.contains("successfully rolled out"), "{status}");
    let history = server.ok(&["-n", "roll", "rollout", "history", "deployment/web"]);
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    server.ok(&["-n", "roll", "rollout", "undo", "deployment/web"]);
    wait_for("the undo brings busybox:1 back", CONVERGE, || {
        let pods = live_pods(server, "roll", "app=web");
        let old = pods
            .iter()
            .filter(|p| is_running_ready(p) && p["spec"]["containers"][0]["image"] == "busybox:1")
            .count();
        if pods.len() == 10 && old == 10 {
            Ok(())
        } else {
            Err(format!("{} pods, {old} on busybox:1", pods.len()))
        }
    });
    let rss = items(server, "/apis/apps/v1/namespaces/roll/replicasets");
    assert_eq!(rss.len(), 2, "one ReplicaSet per template");
    let revisions: Vec<&str> = rss
        .iter()
        .filter_map(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str())
        .collect();
    assert!(
        revisions.contains(&"3") && revisions.contains(&"2"),
        "{revisions:?}"
    );
}

/// Scale 10 -> 100 -> 10: the pods follow, and the Deployment's status says so.
fn deployment_scales(server: &ApiServer) {
    namespace(server, "scale");
    server.ok(&[
        "-n",
        "scale",
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=10",
    ]);
    running(server, "scale", "app=web", 10);
    server.ok(&[
        "-n",
        "scale",
        "scale",
        "deployment",
        "web",
        "--replicas=100",
    ]);
    running(server, "scale", "app=web", 100);
    server.ok(&["-n", "scale", "scale", "deployment", "web", "--replicas=10"]);
    running(server, "scale", "app=web", 10);
    wait_for("the Deployment reports 10 available", CONVERGE, || {
        let d = get(server, "/apis/apps/v1/namespaces/scale/deployments/web");
        let s = &d["status"];
        if s["availableReplicas"] == 10 && s["replicas"] == 10 && s["updatedReplicas"] == 10 {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
}

/// A pod that fits nowhere stays Pending with kube-scheduler's condition and event.
fn unschedulable_pod_is_reported(server: &ApiServer) {
    namespace(server, "big");
    server.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\n  namespace: big\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        cpu: \"100\"\n",
    );
    let message = "0/3 nodes are available: 3 Insufficient cpu.";
    wait_for("the FailedScheduling event", CONVERGE, || {
        let out = server.ok(&[
            "-n",
            "big",
            "get",
            "events",
            "--field-selector=reason=FailedScheduling",
        ]);
        if out.contains(message) {
            Ok(())
        } else {
            Err(out)
        }
    });
    let pod = get(server, "/api/v1/namespaces/big/pods/huge");
    assert_eq!(pod["status"]["phase"], "Pending");
    let cond = pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or_default();
    assert_eq!(cond["status"], "False", "{pod}");
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(cond["message"], message);
    assert!(pod["spec"]["nodeName"].is_null(), "not bound: {pod}");
}
