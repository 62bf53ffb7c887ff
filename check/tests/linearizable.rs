//! Hand-made histories for `check_linearizable`: each bad one shows a way a server can be wrong
//! and must be rejected; each good one shows a behaviour that is allowed and must be accepted.

mod common;

use ballast_check::{check_linearizable, LinResult, Unsupported};
use common::*;

// ---- Must be rejected -------------------------------------------------------------------------

#[test]
fn stale_read() {
    // A Get returns the old value after a newer Put returned, with a current header revision.
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, put("a", "v2"), put_at(3))
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 3))
        .ops
        .clone();
    let report = assert_violation(&ops);
    assert!(
        report.contains("shows value \"v1\", but the key holds \"v2\""),
        "{report}"
    );
}

#[test]
fn stale_read_with_its_old_header_revision() {
    // The same stale read, answered from an old snapshot: the revision went back in real time.
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, put("a", "v2"), put_at(3))
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2))
        .ops
        .clone();
    let report = assert_violation(&ops);
    assert!(report.contains("revision went back"), "{report}");
}

#[test]
fn lost_write() {
    // Acknowledged, then a later read shows the previous state.
    let absent = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, get("a"), got(None, 2))
        .ops
        .clone();
    assert!(assert_violation(&absent).contains("shows the key absent"));
    let previous = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("a", "v2"), put_at(3))
        .then(1, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 4))
        .ops
        .clone();
    assert_violation(&previous);
}

#[test]
fn revision_going_back() {
    // Two sequential ops of one client on different keys; the second has a smaller revision.
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(5))
        .then(0, get("b"), got(None, 3))
        .ops
        .clone();
    let report = assert_violation(&ops);
    assert!(report.contains("revision went back"), "{report}");
    // A write after a read must create a revision above the read's.
    let write = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 4))
        .then(0, put("b", "v2"), put_at(4))
        .ops
        .clone();
    assert!(assert_violation(&write).contains("revision went back"));
}

#[test]
fn duplicate_revisions() {
    let ops = History::new()
        .at(0, 0, 10, put("a", "v1"), put_at(2))
        .at(1, 0, 10, put("b", "v2"), put_at(2))
        .ops
        .clone();
    assert!(assert_violation(&ops).contains("two writes created revision 2"));
}

#[test]
fn cas_succeeding_against_the_wrong_mod_revision() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, cas("a", 1, "v2"), cas_ok(3))
        .ops
        .clone();
    let report = assert_violation(&ops);
    assert!(
        report.contains("the Cas succeeded comparing mod_revision with 1"),
        "{report}"
    );
    // And failing although the compare holds.
    let failed = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(
            0,
            cas("a", 2, "v2"),
            cas_failed(Some(kv("a", "v1", 2, 2, 1)), 2),
        )
        .ops
        .clone();
    assert_violation(&failed);
}

#[test]
fn read_of_a_value_never_written() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, get("a"), got(Some(kv("a", "ghost", 2, 2, 1)), 2))
        .ops
        .clone();
    assert!(assert_violation(&ops).contains("never written"));
    // A value written to another key.
    let moved = History::new()
        .then(0, put("b", "v1"), put_at(2))
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2))
        .ops
        .clone();
    assert!(assert_violation(&moved).contains("written to key \"b\""));
    // A value whose Cas failed.
    let failed = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(
            0,
            cas("a", 7, "v2"),
            cas_failed(Some(kv("a", "v1", 2, 2, 1)), 2),
        )
        .then(0, get("a"), got(Some(kv("a", "v2", 2, 3, 2)), 3))
        .ops
        .clone();
    assert!(assert_violation(&failed).contains("never written"));
}

#[test]
fn range_missing_a_key() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("b", "v2"), put_at(3))
        .then(1, range("a", "c"), ranged(vec![kv("a", "v1", 2, 2, 1)], 3))
        .ops
        .clone();
    let report = assert_violation(&ops);
    assert!(
        report.contains("key \"b\"") && report.contains("absent"),
        "{report}"
    );
}

#[test]
fn range_not_a_snapshot() {
    // Each key's value was current at some point, but never both at the range's revision.
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("b", "v2"), put_at(3))
        .then(0, put("a", "v3"), put_at(4))
        .then(
            1,
            range("a", "\0"),
            ranged(vec![kv("a", "v1", 2, 2, 1), kv("b", "v2", 3, 3, 1)], 4),
        )
        .ops
        .clone();
    assert_violation(&ops);
    // Out of its range, and unsorted.
    let outside = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, range("b", "c"), ranged(vec![kv("a", "v1", 2, 2, 1)], 2))
        .ops
        .clone();
    assert!(assert_violation(&outside).contains("outside the range"));
}

#[test]
fn wrong_metadata() {
    // The right value with a wrong version, mod revision or lease.
    let base = || {
        let mut h = History::new();
        h.then(0, put("a", "v1"), put_at(2))
            .then(0, put("a", "v2"), put_at(3));
        h
    };
    for shown in [
        kv("a", "v2", 2, 3, 1),
        kv("a", "v2", 3, 3, 2),
        kv("a", "v2", 2, 4, 2),
        kv_lease("a", "v2", 2, 3, 2, 5),
    ] {
        let ops = base().then(1, get("a"), got(Some(shown), 4)).ops.clone();
        assert_violation(&ops);
    }
}

#[test]
fn put_with_a_revoked_lease_accepted() {
    let ops = History::new()
        .then(0, grant(7), granted(1))
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .then(0, revoke(7), revoked(3))
        .then(0, put_lease("a", "v2", 7), put_at(4))
        .ops
        .clone();
    assert!(assert_violation(&ops).contains("after it was revoked"));
}

#[test]
fn revoke_that_left_its_key() {
    let ops = History::new()
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .then(0, revoke(7), revoked(3))
        .then(0, get("a"), got(Some(kv_lease("a", "v1", 2, 2, 1, 7)), 3))
        .ops
        .clone();
    assert_violation(&ops);
}

#[test]
fn unknown_write_observed_at_two_revisions() {
    let ops = History::new()
        .at(0, 0, 5, put("a", "v1"), UNKNOWN)
        .then(1, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2))
        .then(1, get("a"), got(Some(kv("a", "v1", 3, 3, 1)), 3))
        .ops
        .clone();
    assert_violation(&ops);
}

#[test]
fn unknown_write_observed_before_it_was_called() {
    // A read returned revision 5 before the put was called, yet the put created revision 4.
    let ops = History::new()
        .then(1, get("b"), got(None, 5))
        .at(0, 100, 200, put("a", "v1"), UNKNOWN)
        .then(1, get("a"), got(Some(kv("a", "v1", 4, 4, 1)), 6))
        .ops
        .clone();
    assert!(assert_violation(&ops).contains("revision went back"));
}

#[test]
fn violation_report_is_readable() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(1, put("a", "v2"), put_at(3))
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 3))
        .ops
        .clone();
    let report = check_linearizable(&ops, BUDGET).to_string();
    println!("{report}");
    assert!(report.starts_with("NOT linearizable (key \"a\")"));
    assert!(
        report.contains("client 0 [0.000010ms .. 0.000020ms] Put \"a\"=\"v1\" -> ok, revision 2")
    );
}

// ---- Must be accepted -------------------------------------------------------------------------

#[test]
fn concurrent_ops_in_either_order() {
    // A long Put overlaps two reads: one before it took effect, one after.
    let mut h = History::new();
    h.at(0, 0, 100, put("a", "v1"), put_at(2))
        .at(1, 10, 20, get("a"), got(None, 1))
        .at(1, 30, 40, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2));
    assert_linearizable(&h.ops);
    let mut reversed = h.ops.clone();
    reversed.reverse();
    assert_linearizable(&reversed);
    // Two concurrent Puts take effect in the opposite order of their calls.
    let swapped = History::new()
        .at(0, 0, 100, put("a", "v1"), put_at(3))
        .at(1, 10, 90, put("a", "v2"), put_at(2))
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 3, 2)), 3))
        .ops
        .clone();
    assert_linearizable(&swapped);
}

#[test]
fn unknown_put_later_observed() {
    let ops = History::new()
        .at(0, 0, 5, put("a", "v1"), UNKNOWN)
        .then(1, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2))
        .then(1, put("a", "v2"), put_at(3))
        .ops
        .clone();
    assert_linearizable(&ops);
    // Observed only through a Range.
    let by_range = History::new()
        .at(0, 0, 5, put("a", "v1"), UNKNOWN)
        .then(1, range("a", "b"), ranged(vec![kv("a", "v1", 2, 2, 1)], 2))
        .ops
        .clone();
    assert_linearizable(&by_range);
}

#[test]
fn unknown_put_never_observed() {
    // It may never have happened...
    let never = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .at(1, 30, 40, put("a", "v2"), UNKNOWN)
        .then(0, get("a"), got(Some(kv("a", "v1", 2, 2, 1)), 2))
        .then(0, put("a", "v3"), put_at(3))
        .then(0, get("a"), got(Some(kv("a", "v3", 2, 3, 2)), 3))
        .ops
        .clone();
    assert_linearizable(&never);
    // ...or happened unseen, which only the next version number tells.
    let unseen = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .at(1, 30, 40, put("a", "v2"), UNKNOWN)
        .then(0, put("a", "v3"), put_at(4))
        .then(0, get("a"), got(Some(kv("a", "v3", 2, 4, 3)), 4))
        .ops
        .clone();
    assert_linearizable(&unseen);
    // Or it created the key unseen, which only a later create revision tells.
    let created = History::new()
        .at(1, 0, 10, put("a", "v1"), UNKNOWN)
        .then(0, put("a", "v2"), put_at(6))
        .then(0, get("a"), got(Some(kv("a", "v2", 5, 6, 2)), 6))
        .ops
        .clone();
    assert_linearizable(&created);
}

#[test]
fn unknown_cas_and_delete() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .at(1, 30, 40, cas("a", 2, "v2"), UNKNOWN)
        .at(2, 30, 40, delete("a"), UNKNOWN)
        .then(0, get("a"), got(None, 4))
        .ops
        .clone();
    assert_linearizable(&ops);
}

#[test]
fn delete_of_an_absent_key() {
    let ops = History::new()
        .then(0, put("b", "v1"), put_at(2))
        .then(0, delete("a"), deleted(0, 2))
        .then(0, put("a", "v2"), put_at(3))
        .then(0, delete("a"), deleted(1, 4))
        .then(0, delete("a"), deleted(0, 4))
        .then(0, get("a"), got(None, 4))
        .ops
        .clone();
    assert_linearizable(&ops);
}

#[test]
fn lease_revoke_deletes_its_key() {
    let ops = History::new()
        .then(0, grant(7), granted(1))
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .then(1, get("a"), got(Some(kv_lease("a", "v1", 2, 2, 1, 7)), 2))
        .then(0, revoke(7), revoked(3))
        .then(1, get("a"), got(None, 3))
        .then(0, put_lease("a", "v2", 7), REJECTED)
        .then(1, range("a", "\0"), ranged(vec![], 3))
        .ops
        .clone();
    assert_linearizable(&ops);
    // A revoke after the key was rewritten without the lease deletes nothing.
    let detached = History::new()
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .then(0, put("a", "v2"), put_at(3))
        .then(0, revoke(7), revoked(3))
        .then(1, get("a"), got(Some(kv("a", "v2", 2, 3, 2)), 3))
        .ops
        .clone();
    assert_linearizable(&detached);
}

#[test]
fn unseen_put_explains_a_revoke_revision() {
    // The revoke deletes nothing and answers with the revision of a put nobody saw, which also
    // re-created the key (found by the property test).
    let ops = History::new()
        .then(0, put_lease("a", "v1", 5), put_at(2))
        .then(0, delete("a"), deleted(1, 3))
        .then(1, get("a"), got(None, 3))
        .at(2, 100, 110, put("a", "v2"), UNKNOWN)
        .then(0, revoke(5), revoked(4))
        .then(0, put("a", "v3"), put_at(5))
        .then(0, get("a"), got(Some(kv("a", "v3", 4, 5, 2)), 5))
        .ops
        .clone();
    assert_linearizable(&ops);
    // An unseen put replaced the leased value, so the revoke deleted nothing.
    let detached = History::new()
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .at(1, 100, 110, put("a", "v2"), UNKNOWN)
        .then(0, revoke(7), revoked(3))
        .then(0, delete("a"), deleted(1, 4))
        .ops
        .clone();
    assert_linearizable(&detached);
    // Without the unknown put, the key was gone after the revoke.
    let mut gone = detached.clone();
    gone.remove(1);
    assert!(assert_violation(&gone).contains("reports a key deleted, but the key is absent"));
}

#[test]
fn cas_both_ways() {
    let ops = History::new()
        .then(0, cas("a", 0, "v1"), cas_ok(2))
        .then(
            0,
            cas("a", 0, "v2"),
            cas_failed(Some(kv("a", "v1", 2, 2, 1)), 2),
        )
        .then(0, cas("a", 2, "v3"), cas_ok(3))
        .then(0, get("a"), got(Some(kv("a", "v3", 2, 3, 2)), 3))
        .ops
        .clone();
    assert_linearizable(&ops);
}

#[test]
fn ranges_over_several_keys() {
    let ops = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("b", "v2"), put_at(3))
        .at(
            1,
            45,
            100,
            range("a", "c"),
            ranged(vec![kv("a", "v1", 2, 2, 1)], 2),
        )
        .at(0, 50, 60, put("a", "v3"), put_at(4))
        .ops
        .clone();
    // The put of b returned before the range was called, so the range must show it.
    assert_violation(&ops);
    let ok = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .at(0, 30, 40, put("b", "v2"), put_at(3))
        .at(
            1,
            35,
            100,
            range("a", "c"),
            ranged(vec![kv("a", "v1", 2, 2, 1)], 2),
        )
        .at(0, 50, 60, put("a", "v3"), put_at(4))
        .then(
            1,
            range("", "\0"),
            ranged(vec![kv("a", "v3", 2, 4, 2), kv("b", "v2", 3, 3, 1)], 4),
        )
        .ops
        .clone();
    assert_linearizable(&ok);
}

// ---- No verdict -------------------------------------------------------------------------------

#[test]
fn unsupported_histories() {
    let lease = History::new()
        .then(0, put_lease("a", "v1", 7), put_at(2))
        .then(0, put_lease("b", "v2", 7), put_at(3))
        .ops
        .clone();
    assert!(matches!(
        check_linearizable(&lease, BUDGET),
        LinResult::Unsupported(Unsupported::LeaseOnSeveralKeys { lease: 7, .. })
    ));
    let repeated = History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("a", "v1"), put_at(3))
        .ops
        .clone();
    assert!(matches!(
        check_linearizable(&repeated, BUDGET),
        LinResult::Unsupported(Unsupported::DuplicateValue { .. })
    ));
}
