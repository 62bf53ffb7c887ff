//! Members that disagree on a limit flag (as in the middle of a rolling change of it) must still
//! apply the same log: request limits are checked by the member a client reaches, before the
//! request is proposed, and never again at apply time against each member's own flag.
//!
//! `BALLAST_TEST_SERVER=etcd` runs the same test against Debian's etcd 3.4.

mod common;

use common::cluster::Cluster;

/// An `etcdctl txn -i` script with no compares and `puts` puts in its success branch.
fn txn_of_puts(prefix: &str, puts: usize) -> String {
    let mut script = String::from("\n");
    for i in 0..puts {
        script.push_str(&format!("put {prefix}{i:03} v\n"));
    }
    // An empty failure branch, then the end of the script.
    script.push_str("\n\n");
    script
}

/// n1 takes up to 256 ops per txn, n2 and n3 128 (etcd's default). A 200-op txn through n1 is
/// acknowledged and then held by every member, whoever leads; the same txn through n2 is refused
/// with etcd's error and changes nothing anywhere. (Before the check moved ahead of proposing,
/// each member checked the logged txn against its own flag: n1 applied it, n2 and n3 skipped it,
/// and the replicas served different data.)
#[test]
fn members_with_different_max_txn_ops_apply_the_same_log() {
    let c = Cluster::start_each(
        3,
        &[],
        &[
            &["--max-txn-ops", "256"],
            &["--max-txn-ops", "128"],
            &["--max-txn-ops", "128"],
        ],
    );
    let args = ["txn", "-i"];
    let refused = c.ctl_stdin(1, &args, &txn_of_puts("refused/", 200));
    refused.expect_error(&args, "etcdserver: too many operations in txn request");
    let out = c
        .ctl_stdin(0, &args, &txn_of_puts("big/", 200))
        .expect_ok(&args);
    assert!(out.contains("\nSUCCESS\n"), "txn printed {out:?}");
    c.wait_converged();
    for i in 0..3 {
        let count = c.ok(i, &["get", "big/", "--prefix", "--keys-only", "-w", "json"]);
        assert_eq!(
            common::json(&count)["count"].as_i64(),
            Some(200),
            "member {i} after the 200-op txn: {count}"
        );
        let refused = c.ok(
            i,
            &["get", "refused/", "--prefix", "--keys-only", "-w", "json"],
        );
        assert_eq!(
            common::json(&refused)["count"].as_i64(),
            None,
            "member {i} holds keys of the refused txn: {refused}"
        );
    }
}
