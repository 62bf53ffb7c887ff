//! The real kubectl 1.32 against real `ballast server` processes: what a Kubernetes user types,
//! and what kubectl prints back. Every scenario runs on a stacked server; `external_*` run the
//! same scenarios on a `ballast kv` cluster and on etcd 3.4. The servers run without their
//! scheduler and controllers (`API_ONLY`): these are the API's semantics; tests/controllers.rs
//! has the control loops.

mod common;
#[path = "kubectl/scenarios.rs"]
mod scenarios;
#[path = "kubectl/typed.rs"]
mod typed;

use common::apiserver::{ApiServer, API_ONLY};
use common::cluster::ClusterConfig;
use common::process::Server;

fn all(server: &ApiServer) {
    for (name, scenario) in scenarios::ALL.iter().chain(typed::ALL) {
        eprintln!("scenario {name}");
        scenario(server);
    }
}

#[test]
fn stacked() {
    let server = ApiServer::stacked(API_ONLY);
    all(&server);
}

#[test]
fn external_ballast_cluster() {
    let _one = common::one_at_a_time();
    let cluster = ClusterConfig::new(3).server(Server::Ballast).start();
    let server = ApiServer::external(&cluster.endpoints(), API_ONLY);
    all(&server);
    scenarios::objects_are_under_kubernetes_keys(&cluster.endpoints());
}

#[test]
fn external_etcd() {
    let _one = common::one_at_a_time();
    let cluster = ClusterConfig::new(3).server(Server::Etcd).start();
    let server = ApiServer::external(&cluster.endpoints(), API_ONLY);
    all(&server);
    scenarios::objects_are_under_kubernetes_keys(&cluster.endpoints());
}

/// Three stacked servers form one cluster: what one writes, the others serve; with one killed,
/// the other two go on.
#[test]
fn stacked_cluster() {
    let _one = common::one_at_a_time();
    let mut servers = ApiServer::stacked_cluster_with(3, API_ONLY);
    scenarios::create_namespace(&servers[0], "shared");
    servers[1].apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shared\ndata:\n  k: v\n",
    );
    let got = servers[2].ok(&["-n", "shared", "get", "cm", "c", "-o", "jsonpath={.data.k}"]);
    assert_eq!(got, "v");
    servers[0].kill();
    // The next write may wait out an election (up to a few seconds) if the killed one led.
    let patch = [
        "-n",
        "shared",
        "patch",
        "cm",
        "c",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"w"}}"#,
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !servers[2].kubectl(&patch).success {
        assert!(
            std::time::Instant::now() < deadline,
            "no write within 20 s of losing a member"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let got = servers[1].ok(&["-n", "shared", "get", "cm", "c", "-o", "jsonpath={.data.k}"]);
    assert_eq!(got, "w");
}
