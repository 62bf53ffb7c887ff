//! The control loops on a real `ballast server`, with hollow nodes (`ballast agent --hollow`,
//! kubemark's): the scheduler places pods, the controllers keep workloads at what was asked,
//! and of three servers one leads each component. Driven by the real kubectl 1.32 and checked
//! through the API.

mod common;
#[path = "controllers/ha.rs"]
mod ha;
#[path = "controllers/lifecycle.rs"]
mod lifecycle;
#[path = "controllers/sets.rs"]
mod sets;
#[path = "controllers/workloads.rs"]
mod workloads;

use common::apiserver::ApiServer;
use common::cluster::ClusterConfig;
use common::hollow::HollowNodes;
use common::process::Server;

/// A stacked server with three hollow nodes of 4 CPUs and 16Gi each, whose pods take 300 ms
/// to start (so that ordering and rollout bounds are seen while pods start).
fn cluster() -> (ApiServer, HollowNodes) {
    let server = ApiServer::stacked(&[]);
    let nodes = HollowNodes::start(
        &server.url(),
        "hollow",
        3,
        &["--cpu=4", "--memory=16Gi", "--startup-delay=300ms"],
    );
    (server, nodes)
}

#[test]
fn workloads_on_hollow_nodes() {
    let _one = common::one_at_a_time();
    let (server, nodes) = cluster();
    workloads::nodes_register(&server);
    for (name, scenario) in workloads::ALL {
        eprintln!("scenario {name}");
        scenario(&server);
    }
    drop(nodes);
}

/// Cascading deletes, and pods leaving a lost node: a short node grace period (3 s), short
/// default tolerations (2 s) and Leases renewed every second, so that a loss is seen in seconds.
#[test]
fn lifecycle_on_hollow_nodes() {
    let _one = common::one_at_a_time();
    let server = ApiServer::stacked(&[
        "--node-monitor-grace-period=3s",
        "--default-not-ready-toleration-seconds=2",
        "--default-unreachable-toleration-seconds=2",
    ]);
    let _live = HollowNodes::start(
        &server.url(),
        "live",
        2,
        &["--node-lease-renew-interval=1s"],
    );
    lifecycle::cascading_delete(&server);
    lifecycle::pods_leave_a_lost_node(&server);
}

#[test]
fn one_leader_per_component_and_failover() {
    let _one = common::one_at_a_time();
    ha::stacked_failover();
}

#[test]
fn one_leader_per_component_and_failover_on_an_external_store() {
    let _one = common::one_at_a_time();
    let store = ClusterConfig::new(3).server(Server::Ballast).start();
    ha::external_failover(&store.endpoints());
}
