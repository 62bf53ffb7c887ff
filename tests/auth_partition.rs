//! Auth changes meeting a partition: a read through a member that lagged the change is judged by
//! the auth state at the read's linearization point, not by the member's stale copy.
//!
//! `BALLAST_TEST_SERVER=etcd` runs the same test against Debian's etcd 3.4.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::proxy::LinkFault;
use etcd_client::{Client, ConnectOptions};

/// Alice may read `secret`; her client is connected (and authenticated) to follower F. F's
/// incoming peer links go dark; root revokes the permission through the leader (acknowledged);
/// alice's linearizable read through F, sent then, is answered only after the links heal, and
/// must be refused: its read point is after the revocation. (Checked before the read point, on
/// F's stale auth state, it returned the secret.)
#[test]
fn a_read_through_a_lagging_member_is_checked_at_its_read_point() {
    let c = Cluster::start_proxied(3, &[]);
    let root = ["--user=root:rootpw"];
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["user", "add", "alice:alicepw"],
        &["role", "add", "reader"],
        &["role", "grant-permission", "reader", "read", "secret"],
        &["user", "grant-role", "alice", "reader"],
        &["put", "secret", "s3cr3t"],
        &["auth", "enable"],
    ] {
        c.ok(0, args);
    }
    let leader = c.leader();
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://{}", c.endpoint(follower));
    let mut alice = rt.block_on(async {
        let opts = ConnectOptions::new().with_user("alice", "alicepw");
        Client::connect([url], Some(opts)).await.unwrap()
    });
    let before = rt.block_on(alice.get("secret", None)).unwrap();
    assert_eq!(before.kvs()[0].value(), b"s3cr3t");

    c.link_fault(follower, LinkFault::Blackhole);
    let revoke = [
        &["role", "revoke-permission", "reader", "secret"][..],
        &root,
    ]
    .concat();
    assert_eq!(
        c.ok(leader, &revoke),
        "Permission of key secret is revoked from role reader\n"
    );
    let read = rt.spawn(async move { alice.get("secret", None).await });
    std::thread::sleep(Duration::from_millis(600));
    c.link_fault(follower, LinkFault::Healthy);
    let answer = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), read).await })
        .expect("the read through the follower is answered once the links heal")
        .unwrap();
    match answer {
        Ok(resp) => panic!(
            "alice read {:?} after her permission was revoked",
            resp.kvs()
                .iter()
                .map(|kv| kv.value_str().unwrap_or("?").to_owned())
                .collect::<Vec<_>>()
        ),
        Err(err) => assert!(
            err.to_string().contains("etcdserver: permission denied"),
            "expected a permission error, got {err}"
        ),
    }
}
