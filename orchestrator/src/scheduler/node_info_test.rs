use super::*;
use crate::scheduler::testutil::{from, node, owned_by, pod, pod_spec};
use serde_json::json;

fn hp(ip: &str, proto: &str, port: i32) -> HostPort {
    HostPort {
        ip: ip.into(),
        protocol: proto.into(),
        port,
    }
}

#[test]
fn add_and_remove_pods_update_aggregates() {
    let mut ni = NodeInfo::new(node("n1", "4", "8Gi"));
    let p = pod_spec(
        pod("ns/a", "500m", "1Gi"),
        "containers",
        json!([{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                "ports": [{"containerPort": 80, "hostPort": 8080}]}]),
    );
    ni.add_pod(Arc::new(p));
    ni.add_pod(Arc::new(pod("ns/b", "", "")));
    assert_eq!(ni.pods().len(), 2);
    assert_eq!(ni.requested().milli_cpu, 500);
    assert_eq!(ni.requested().pods, 2);
    assert_eq!(
        ni.non_zero_requested().milli_cpu,
        600,
        "b counts 100m when scoring"
    );
    assert!(ni.used_ports().conflicts(&hp("0.0.0.0", "TCP", 8080)));
    assert!(ni.remove_pod("ns/a"), "by namespace/name");
    assert!(!ni.used_ports().conflicts(&hp("0.0.0.0", "TCP", 8080)));
    assert_eq!(ni.requested().milli_cpu, 0);
    assert!(ni.remove_pod("uid-b"), "by uid");
    assert!(!ni.remove_pod("ns/zzz"));
    assert_eq!(ni.requested(), &Resources::default());
    assert_eq!(ni.non_zero_requested().milli_cpu, 0);
}

#[test]
fn host_port_wildcard_conflict_rules() {
    let mut h = HostPortInfo::default();
    h.add(&hp("127.0.0.1", "TCP", 80));
    assert!(h.conflicts(&hp("127.0.0.1", "TCP", 80)));
    assert!(
        h.conflicts(&hp("0.0.0.0", "TCP", 80)),
        "wildcard wants every IP"
    );
    assert!(
        !h.conflicts(&hp("10.0.0.1", "TCP", 80)),
        "other specific IP is free"
    );
    assert!(
        !h.conflicts(&hp("127.0.0.1", "UDP", 80)),
        "protocol differs"
    );
    h.add(&hp("0.0.0.0", "UDP", 53));
    assert!(
        h.conflicts(&hp("10.0.0.1", "UDP", 53)),
        "used wildcard blocks specific IPs"
    );
    h.add(&hp("127.0.0.1", "TCP", 80));
    h.remove(&hp("127.0.0.1", "TCP", 80));
    assert!(
        h.conflicts(&hp("127.0.0.1", "TCP", 80)),
        "counted: one user remains"
    );
    h.remove(&hp("127.0.0.1", "TCP", 80));
    h.remove(&hp("0.0.0.0", "UDP", 53));
    assert!(h.is_empty());
}

#[test]
fn host_ports_are_sanitized_and_include_sidecars() {
    let p: Pod = from(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a", "ports": [
                {"containerPort": 1, "hostPort": 81},
                {"containerPort": 2},
                {"containerPort": 3, "hostPort": 82, "hostIP": "10.0.0.1", "protocol": "UDP"}
            ]}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "ports": [{"containerPort": 4, "hostPort": 83}]},
                {"name": "i", "ports": [{"containerPort": 5, "hostPort": 84}]}
            ]
        }
    }));
    let ports = pod_host_ports(&p);
    assert_eq!(
        ports,
        vec![
            hp("0.0.0.0", "TCP", 83),
            hp("0.0.0.0", "TCP", 81),
            hp("10.0.0.1", "UDP", 82)
        ]
    );
}

#[test]
fn controller_counts_skip_terminating_and_set_node_refreshes() {
    let mut gone = owned_by(pod("ns/b", "", ""), "rs-1");
    gone.metadata.deletion_timestamp = Some(from(json!("2024-01-01T00:00:00Z")));
    let mut ni = NodeInfo::new(node("n1", "1", "1Gi"));
    ni.add_pod(Arc::new(owned_by(pod("ns/a", "", ""), "rs-1")));
    ni.add_pod(Arc::new(gone));
    assert_eq!(ni.pods_of_controller("rs-1"), 1);
    assert!(ni.remove_pod("ns/a"));
    assert_eq!(ni.pods_of_controller("rs-1"), 0);
    ni.set_node(node("n1", "8", "1Gi"));
    assert_eq!(ni.allocatable().milli_cpu, 8000);
    assert_eq!(ni.pods().len(), 1, "pods kept");
}
