//! The storage seam's conformance suite: every case runs on each adapter the orchestrator can
//! stand on, the embedded member (stacked), a 3-member `ballast kv` cluster and Debian's etcd 3.4
//! (external), and must pass on all of them: what the API server builds on is the etcd contract,
//! not one implementation of it. The watch fan-out above the seam runs on each as well.

#[path = "storage/cases.rs"]
mod cases;
mod common;
#[path = "storage/fanout.rs"]
mod fanout;

use std::sync::Arc;
use std::time::Duration;

use ballast_orchestrator::storage::external::External;
use ballast_orchestrator::storage::stacked::Stacked;
use ballast_orchestrator::storage::Storage;
use ballast_server::{Member as Embedded, MemberOptions};
use common::cluster::ClusterConfig;
use common::process::Server;

async fn run_all(storage: Arc<dyn Storage>) {
    for (name, case) in cases::ALL.iter().chain(fanout::ALL) {
        eprintln!("case {name} on {}", storage.describe());
        case(storage.clone()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacked_member() {
    let dir = tempfile::tempdir().unwrap();
    let member = Embedded::open(MemberOptions::new(dir.path().join("data")))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), member.wait_published())
        .await
        .expect("the embedded member publishes itself");
    run_all(Arc::new(Stacked::new(member.clone()))).await;
    member.shutdown().await;
}

/// One external cluster at a time (the lock is held outside the runtime, in the test's thread).
fn external(server: Server) {
    let _one = common::one_at_a_time();
    let mut cluster = ClusterConfig::new(3).server(server).start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let storage: Arc<dyn Storage> = Arc::new(External::new(&cluster.endpoints()).unwrap());
        run_all(storage.clone()).await;
        cases::survives_losing_its_endpoint(storage, &mut cluster).await;
    });
}

#[test]
fn external_ballast_cluster() {
    external(Server::Ballast);
}

#[test]
fn external_etcd() {
    external(Server::Etcd);
}
