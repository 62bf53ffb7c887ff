//! StatefulSets and DaemonSets on hollow nodes: ordered, stable pods that keep their claims;
//! one daemon pod per node.

use std::time::Duration;

use serde_json::Value;

use crate::common::apiserver::{request, ApiServer};
use crate::common::hollow::{get, is_running_ready, items, live_pods, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

const WEB: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: sts
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
";

fn creation_order(pods: &[Value]) -> Vec<String> {
    let mut by_time: Vec<(String, String)> = pods
        .iter()
        .map(|p| {
            (
                p["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    by_time.sort();
    by_time.into_iter().map(|(_, n)| n).collect()
}

/// web-0, web-1, web-2 start one after the other (each only once the one before runs), each
/// with its claim data-web-<i>; a deleted pod comes back with the same name and claim.
pub fn statefulset_orders_and_keeps_claims(server: &ApiServer) {
    server.ok(&["create", "namespace", "sts"]);
    server.apply(WEB);
    // Watch the set grow: never a pod i+1 while pod i is not Running and Ready.
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        let pods = live_pods(server, "sts", "app=web");
        let mut names: Vec<String> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        let expected: Vec<String> = (0..names.len()).map(|i| format!("web-{i}")).collect();
        assert_eq!(names, expected, "pods are web-0..web-<n-1>, no gaps");
        for (i, name) in names.iter().enumerate().take(names.len().saturating_sub(1)) {
            let pod = pods
                .iter()
                .find(|p| p["metadata"]["name"] == *name)
                .unwrap();
            assert!(
                is_running_ready(pod),
                "web-{} exists before web-{i} is Running and Ready",
                i + 1
            );
        }
        if names.len() == 3 && pods.iter().all(is_running_ready) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "3 ordered pods in {CONVERGE:?}: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pods = live_pods(server, "sts", "app=web");
    let _ = creation_order(&pods);
    let claims = items(server, "/api/v1/namespaces/sts/persistentvolumeclaims");
    let mut claim_names: Vec<&str> = claims
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    claim_names.sort();
    assert_eq!(claim_names, ["data-web-0", "data-web-1", "data-web-2"]);
    let pod1 = get(server, "/api/v1/namespaces/sts/pods/web-1");
    let volume = pod1["spec"]["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "data").cloned())
        .unwrap_or_default();
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"], "data-web-1",
        "{pod1}"
    );
    assert_eq!(pod1["spec"]["hostname"], "web-1");
    assert_eq!(pod1["spec"]["subdomain"], "web");
    let claim_uid = get(
        server,
        "/api/v1/namespaces/sts/persistentvolumeclaims/data-web-1",
    )["metadata"]["uid"]
        .clone();
    let old_uid = pod1["metadata"]["uid"].clone();
    server.ok(&["-n", "sts", "delete", "pod", "web-1"]);
    wait_for("web-1 comes back", CONVERGE, || {
        let (code, pod) = request(
            server,
            "GET",
            "/api/v1/namespaces/sts/pods/web-1",
            "application/json",
            b"",
        );
        if code == 200 && pod["metadata"]["uid"] != old_uid && is_running_ready(&pod) {
            Ok(())
        } else {
            Err(format!("{code} {}", pod["metadata"]["uid"]))
        }
    });
    let claim = get(
        server,
        "/api/v1/namespaces/sts/persistentvolumeclaims/data-web-1",
    );
    assert_eq!(
        claim["metadata"]["uid"], claim_uid,
        "the claim outlives the pod"
    );
    wait_for("kubectl get sts shows 3/3", CONVERGE, || {
        let out = server.ok(&["-n", "sts", "get", "sts", "web", "--no-headers"]);
        if out.split_whitespace().nth(1) == Some("3/3") {
            Ok(())
        } else {
            Err(out)
        }
    });
    // Scale down: the highest ordinal goes first, its claim stays.
    server.ok(&["-n", "sts", "scale", "sts", "web", "--replicas=1"]);
    wait_for("scaled down to web-0", CONVERGE, || {
        let pods = live_pods(server, "sts", "app=web");
        let names: Vec<&str> = pods
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        if names == ["web-0"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    assert_eq!(
        items(server, "/api/v1/namespaces/sts/persistentvolumeclaims").len(),
        3
    );
}

/// A DaemonSet runs one pod on every node (3 hollow nodes here).
pub fn daemonset_runs_one_pod_per_node(server: &ApiServer) {
    server.ok(&["create", "namespace", "ds"]);
    server.apply(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  namespace: ds\nspec:\n  selector:\n    matchLabels: {app: agent}\n  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    );
    let pods = wait_for("one daemon pod per node", CONVERGE, || {
        let pods = live_pods(server, "ds", "app=agent");
        let running = pods.iter().filter(|p| is_running_ready(p)).count();
        if pods.len() == 3 && running == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods, {running} running", pods.len()))
        }
    });
    let mut nodes: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "on three different nodes: {nodes:?}");
    wait_for("kubectl get ds shows 3 ready", CONVERGE, || {
        let out = server.ok(&["-n", "ds", "get", "ds", "agent", "--no-headers"]);
        let cols: Vec<&str> = out.split_whitespace().collect();
        if cols.get(1..4) == Some(&["3", "3", "3"]) {
            Ok(())
        } else {
            Err(out)
        }
    });
}

/// A Service's Endpoints and EndpointSlices follow its pods (ready ones with their IPs, the
/// target port).
pub fn service_endpoints_follow_pods(server: &ApiServer) {
    server.ok(&["create", "namespace", "ep"]);
    server.ok(&[
        "-n",
        "ep",
        "create",
        "deployment",
        "ep",
        "--image=busybox",
        "--replicas=2",
    ]);
    server.ok(&[
        "-n",
        "ep",
        "expose",
        "deployment",
        "ep",
        "--port=80",
        "--target-port=8080",
    ]);
    let addresses = |n: usize| {
        wait_for(&format!("{n} endpoint addresses"), CONVERGE, || {
            let (code, ep) = request(
                server,
                "GET",
                "/api/v1/namespaces/ep/endpoints/ep",
                "application/json",
                b"",
            );
            let subset = &ep["subsets"][0];
            let have = subset["addresses"].as_array().map_or(0, Vec::len);
            if code == 200 && have == n && subset["ports"][0]["port"] == 8080 {
                Ok(())
            } else {
                Err(format!("{code} {ep}"))
            }
        });
        wait_for(&format!("{n} slice endpoints"), CONVERGE, || {
            let slices = items(server, "/apis/discovery.k8s.io/v1/namespaces/ep/endpointslices?labelSelector=kubernetes.io/service-name=ep");
            let ready = slices
                .iter()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            if ready == n {
                Ok(())
            } else {
                Err(format!("{slices:?}"))
            }
        });
    };
    addresses(2);
    server.ok(&["-n", "ep", "scale", "deployment", "ep", "--replicas=3"]);
    addresses(3);
    let out = server.ok(&["-n", "ep", "get", "endpoints", "ep", "--no-headers"]);
    assert_eq!(out.matches(":8080").count(), 3, "{out}");
}
