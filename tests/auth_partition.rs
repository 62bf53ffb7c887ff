//! Auth changes meeting a partition: a read through a member that lagged the change is judged by
//! the auth state at the read's linearization point, not by the member's stale copy: both the
//! permission and the token it carries.
//!
//! `BALLAST_TEST_SERVER=etcd` runs the same tests against Debian's etcd 3.4.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::proxy::LinkFault;
use etcd_client::{Client, ConnectOptions, Error};

const ROOT: &str = "--user=root:rootpw";

/// Alice may read `secret`; her client is connected (and authenticated) to follower F. F's
/// incoming peer links go dark; root makes `change` through the leader (acknowledged); alice's
/// linearizable read through F, with her token, sent then, is answered only after the links heal:
/// its read point is after the change. Returns its error (an answer with data fails the test).
fn read_through_a_member_that_lagged(change: impl FnOnce(&Cluster, usize)) -> Error {
    let c = Cluster::start_proxied(3, &[]);
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
    let rt = common::grpc::client_runtime();
    let url = format!("http://{}", c.endpoint(follower));
    let mut alice = rt.block_on(async {
        let opts = ConnectOptions::new().with_user("alice", "alicepw");
        Client::connect([url], Some(opts)).await.unwrap()
    });
    let before = rt.block_on(alice.get("secret", None)).unwrap();
    assert_eq!(before.kvs()[0].value(), b"s3cr3t");

    c.link_fault(follower, LinkFault::Blackhole);
    change(&c, leader);
    let read = rt.spawn(async move { alice.get("secret", None).await });
    std::thread::sleep(Duration::from_millis(600));
    c.link_fault(follower, LinkFault::Healthy);
    let answer = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), read).await })
        .expect("the read through the follower is answered once the links heal")
        .unwrap();
    match answer {
        Ok(resp) => panic!(
            "alice read {:?} after the change",
            resp.kvs()
                .iter()
                .map(|kv| kv.value_str().unwrap_or("?").to_owned())
                .collect::<Vec<_>>()
        ),
        Err(err) => err,
    }
}

/// Root revokes alice's permission: the read must be refused. (Checked before the read point, on
/// F's stale auth state, it returned the secret.)
#[test]
fn a_read_through_a_lagging_member_is_checked_at_its_read_point() {
    let err = read_through_a_member_that_lagged(|c, leader| {
        let revoke = ["role", "revoke-permission", "reader", "secret", ROOT];
        assert_eq!(
            c.ok(leader, &revoke),
            "Permission of key secret is revoked from role reader\n"
        );
    });
    assert!(
        err.to_string().contains("etcdserver: permission denied"),
        "expected a permission error, got {err}"
    );
}

/// Root changes alice's password, which ends her tokens: the read, with the token she had, must
/// be refused as carrying an invalid token. (Resolved before the read point, from F's stale
/// tokens, the token was still alice's and the read returned the secret.)
#[test]
fn a_token_ended_by_a_password_change_is_refused_by_a_lagging_member() {
    let err = read_through_a_member_that_lagged(|c, leader| {
        let passwd = ["user", "passwd", "alice", "--interactive=false", ROOT];
        let out = c.ctl_stdin(leader, &passwd, "newpw\n");
        assert_eq!(
            (out.success, out.stdout.as_str()),
            (true, "Password updated\n"),
            "{}",
            out.stderr
        );
    });
    assert!(
        err.to_string().contains("etcdserver: invalid auth token"),
        "expected an invalid token error, got {err}"
    );
}
