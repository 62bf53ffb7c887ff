//! Three `ballast server` processes, one leader per component: `/metrics` says which, and when
//! the controller manager's leader is killed another takes over within the lease duration and
//! the work goes on without duplicate pods.

use std::time::{Duration, Instant};

use crate::common::apiserver::ApiServer;
use crate::common::hollow::{is_running_ready, live_pods, wait_for, HollowNodes};
use crate::common::http_get;

/// Short elections, so that the test waits seconds, not the default 15.
const ELECTION: &[&str] = &[
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
];

/// What `/metrics` says this server leads: the names with `leader_election_master_status` 1.
fn leads(server: &ApiServer) -> Vec<String> {
    let (code, text) = http_get(server.port, "/metrics");
    if code != 200 {
        return Vec::new();
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("leader_election_master_status{name=\""))
        .filter_map(|l| l.split_once("\"} "))
        .filter(|(_, v)| v.trim() == "1")
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The index of the one server leading `component`, once exactly one does.
fn leader(servers: &[Option<ApiServer>], component: &str, timeout: Duration) -> usize {
    wait_for(&format!("one {component} leader"), timeout, || {
        let leading: Vec<usize> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.as_ref()
                    .is_some_and(|s| leads(s).iter().any(|n| n == component))
            })
            .map(|(i, _)| i)
            .collect();
        match leading.as_slice() {
            [one] => Ok(*one),
            other => Err(format!("leaders: {other:?}")),
        }
    })
}

/// Three stacked servers (their members one raft group).
pub fn stacked_failover() {
    failover(ApiServer::stacked_cluster_with(3, ELECTION));
}

/// Three servers on one external store (a 3-member `ballast kv` cluster).
pub fn external_failover(endpoints: &str) {
    failover(
        (0..3)
            .map(|_| ApiServer::external(endpoints, ELECTION))
            .collect(),
    );
}

fn failover(servers: Vec<ApiServer>) {
    let mut servers: Vec<Option<ApiServer>> = servers.into_iter().map(Some).collect();
    let cm = leader(&servers, "kube-controller-manager", Duration::from_secs(30));
    leader(&servers, "kube-scheduler", Duration::from_secs(30));
    // Nodes and the user talk to a server that will survive.
    let other = (cm + 1) % 3;
    let survivor = servers[other].as_ref().unwrap();
    let _nodes = HollowNodes::start(&survivor.url(), "ha", 3, &[]);
    survivor.ok(&["create", "namespace", "ha"]);
    survivor.ok(&[
        "-n",
        "ha",
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=6",
    ]);
    let six = |s: &ApiServer| {
        let pods = live_pods(s, "ha", "app=web");
        let ready = pods.iter().filter(|p| is_running_ready(p)).count();
        if pods.len() == 6 && ready == 6 {
            Ok(())
        } else {
            Err(format!("{} pods, {ready} ready", pods.len()))
        }
    };
    wait_for("6 pods", Duration::from_secs(60), || six(survivor));
    let killed_at = Instant::now();
    servers[cm].as_mut().unwrap().kill();
    servers[cm] = None;
    let next = leader(&servers, "kube-controller-manager", Duration::from_secs(20));
    let took = killed_at.elapsed();
    assert_ne!(next, cm);
    // Within the lease duration (4 s) plus a retry period and the time the standby took to
    // see the last renewal.
    assert!(took < Duration::from_secs(8), "takeover took {took:?}");
    let survivor = servers[other].as_ref().unwrap();
    leader(&servers, "kube-scheduler", Duration::from_secs(20));
    survivor.ok(&["-n", "ha", "scale", "deployment", "web", "--replicas=9"]);
    wait_for(
        "9 pods after the takeover, never more",
        Duration::from_secs(60),
        || {
            let pods = live_pods(survivor, "ha", "app=web");
            assert!(
                pods.len() <= 9,
                "{} pods: duplicates after the takeover",
                pods.len()
            );
            let ready = pods.iter().filter(|p| is_running_ready(p)).count();
            if pods.len() == 9 && ready == 9 {
                Ok(())
            } else {
                Err(format!("{} pods, {ready} ready", pods.len()))
            }
        },
    );
    // Stays at 9 a little longer (a second controller manager would overshoot).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(live_pods(survivor, "ha", "app=web").len(), 9);
}
