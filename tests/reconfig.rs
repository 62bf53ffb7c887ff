//! Strict reconfiguration (etcd's `--strict-reconfig-check`, on by default): with a member down,
//! a membership change that the reachable members could not complete is refused at once, and
//! the cluster keeps serving. Joint consensus needs a quorum of the old and the new voters: a
//! removal of a healthy voter while another is down used to hang, and every write with it,
//! until the down member came back.
//!
//! `BALLAST_TEST_SERVER=etcd` runs the same test against Debian's etcd 3.4.

mod common;

use std::time::Duration;

use common::cluster::Cluster;

#[test]
fn a_change_that_would_lose_quorum_is_refused_with_a_member_down() {
    let mut c = Cluster::start(3, &[]);
    let leader = c.leader();
    let down = (0..3).find(|&i| i != leader).unwrap();
    let healthy = (0..3).find(|&i| i != leader && i != down).unwrap();
    let (down_id, healthy_id) = (c.member_id(down), c.member_id(healthy));
    c.kill9(down);
    // The leader counts a member as connected for 5 s after it last heard from it (etcd's
    // HealthInterval).
    std::thread::sleep(Duration::from_secs(6));
    let remove = ["member", "remove", &format!("{healthy_id:x}")];
    c.ctl(leader, &remove)
        .expect_error(&remove, "etcdserver: unhealthy cluster");
    let add = ["member", "add", "n9", "--peer-urls", "http://127.0.0.1:9"];
    c.ctl(leader, &add)
        .expect_error(&add, "etcdserver: unhealthy cluster");
    assert_eq!(c.ok(leader, &["put", "after-refusal", "1"]), "OK\n");
    assert_eq!(
        c.member_list().len(),
        3,
        "the refused changes changed nothing"
    );
    // Removing the member that is down cannot cost a quorum: allowed.
    let out = c.ok(leader, &["member", "remove", &format!("{down_id:x}")]);
    assert!(out.contains("removed from cluster"), "{out}");
    assert_eq!(c.ok(healthy, &["put", "after-removal", "2"]), "OK\n");
    assert_eq!(c.member_list().len(), 2);
}
