//! Objects' lives beyond one controller: cascading deletion by the garbage collector
//! (background, foreground, orphan), and pods leaving a node that stopped renewing its Lease.

use std::time::Duration;

use serde_json::Value;

use crate::common::apiserver::ApiServer;
use crate::common::hollow::{get, is_running_ready, items, live_pods, wait_for, HollowNodes};

const CONVERGE: Duration = Duration::from_secs(60);

fn running(server: &ApiServer, ns: &str, selector: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} pods {selector} Running"), CONVERGE, || {
        let pods = live_pods(server, ns, selector);
        let ready = pods.iter().filter(|p| is_running_ready(p)).count();
        if pods.len() == n && ready == n {
            Ok(pods)
        } else {
            Err(format!("{} pods, {ready} ready", pods.len()))
        }
    })
}

fn replicasets(server: &ApiServer, ns: &str) -> Vec<Value> {
    items(
        server,
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
    )
}

/// Background (kubectl's default): the Deployment goes at once, then its ReplicaSet and pods.
/// Orphan: they stay, no longer owned. Foreground: the owner stays, marked, until its
/// dependents are gone.
pub fn cascading_delete(server: &ApiServer) {
    server.ok(&["create", "namespace", "gc"]);
    for name in ["bg", "orphan", "fg"] {
        server.ok(&[
            "-n",
            "gc",
            "create",
            "deployment",
            name,
            "--image=busybox",
            "--replicas=2",
        ]);
    }
    for name in ["bg", "orphan", "fg"] {
        running(server, "gc", &format!("app={name}"), 2);
    }
    server.ok(&["-n", "gc", "delete", "deployment", "bg"]);
    wait_for(
        "the background delete takes the ReplicaSet and pods",
        CONVERGE,
        || {
            let left = live_pods(server, "gc", "app=bg").len()
                + replicasets(server, "gc")
                    .iter()
                    .filter(|r| {
                        r["metadata"]["name"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("bg-")
                    })
                    .count();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} dependents left"))
            }
        },
    );

    server.ok(&[
        "-n",
        "gc",
        "delete",
        "deployment",
        "orphan",
        "--cascade=orphan",
    ]);
    wait_for("the orphaned ReplicaSet loses its owner", CONVERGE, || {
        let rs: Vec<Value> = replicasets(server, "gc")
            .into_iter()
            .filter(|r| {
                r["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("orphan-")
            })
            .collect();
        match rs.as_slice() {
            [one]
                if one["metadata"]["ownerReferences"]
                    .as_array()
                    .is_none_or(|o| o.is_empty()) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    let (code, _) = crate::common::apiserver::request(
        server,
        "GET",
        "/apis/apps/v1/namespaces/gc/deployments/orphan",
        "application/json",
        b"",
    );
    assert_eq!(code, 404, "the orphaning owner is gone");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        live_pods(server, "gc", "app=orphan").len(),
        2,
        "orphaned pods stay"
    );

    server.ok(&[
        "-n",
        "gc",
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let marked = get(server, "/apis/apps/v1/namespaces/gc/deployments/fg");
    assert!(
        !marked["metadata"]["deletionTimestamp"].is_null(),
        "{marked}"
    );
    assert!(
        marked["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion")),
        "{marked}"
    );
    wait_for(
        "the foreground delete takes the pods, the ReplicaSet, then the Deployment",
        CONVERGE,
        || {
            let (code, _) = crate::common::apiserver::request(
                server,
                "GET",
                "/apis/apps/v1/namespaces/gc/deployments/fg",
                "application/json",
                b"",
            );
            let pods = live_pods(server, "gc", "app=fg").len();
            let sets = replicasets(server, "gc")
                .iter()
                .filter(|r| {
                    r["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("fg-")
                })
                .count();
            if code == 404 {
                assert_eq!((pods, sets), (0, 0), "the owner went before its dependents");
                Ok(())
            } else {
                Err(format!("deployment {code}, {sets} sets, {pods} pods"))
            }
        },
    );
}

/// A hollow node process killed: after the grace period its nodes go Unknown and tainted, and
/// after the pods' toleration their pods are evicted and made again on the other nodes.
pub fn pods_leave_a_lost_node(server: &ApiServer) {
    let mut doomed = HollowNodes::start(
        &server.url(),
        "doomed",
        2,
        &["--node-lease-renew-interval=1s"],
    );
    wait_for("the doomed nodes are Ready", CONVERGE, || {
        let out = server.ok(&["get", "nodes", "--no-headers"]);
        let ready = out
            .lines()
            .filter(|l| l.starts_with("doomed-") && l.contains(" Ready "))
            .count();
        if ready == 2 {
            Ok(())
        } else {
            Err(out)
        }
    });
    server.ok(&["create", "namespace", "lost"]);
    server.ok(&[
        "-n",
        "lost",
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=10",
    ]);
    let pods = running(server, "lost", "app=web", 10);
    let on_doomed = pods
        .iter()
        .filter(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .unwrap_or("")
                .starts_with("doomed-")
        })
        .count();
    assert!(on_doomed > 0, "some pods landed on the doomed nodes");
    doomed.kill();
    wait_for(
        "the lost nodes go Unknown with the unreachable taint",
        CONVERGE,
        || {
            let node = get(server, "/api/v1/nodes/doomed-0");
            let ready = node["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
                .unwrap_or_default();
            let tainted = node["spec"]["taints"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"
                })
            });
            if ready["status"] == "Unknown" && ready["reason"] == "NodeStatusUnknown" && tainted {
                Ok(())
            } else {
                Err(node["status"]["conditions"].to_string())
            }
        },
    );
    wait_for("every pod runs on a live node again", CONVERGE, || {
        let pods = live_pods(server, "lost", "app=web");
        let good = pods
            .iter()
            .filter(|p| {
                is_running_ready(p)
                    && !p["spec"]["nodeName"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("doomed-")
            })
            .count();
        if pods.len() == 10 && good == 10 {
            Ok(())
        } else {
            Err(format!("{} pods, {good} on live nodes", pods.len()))
        }
    });
}
