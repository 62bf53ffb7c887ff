//! Hand-made watches for `check_watches`, all against one small history.

mod common;

use ballast_check::{Operation, Watch, WatchEvent};
use common::*;

/// a=v1@2, b=v2@3, a=v3@4, delete b@5, a=v4@6 (unknown outcome, seen by a read), a's lease
/// revoked @8 after c=v5@7.
fn history() -> Vec<Operation> {
    History::new()
        .then(0, put("a", "v1"), put_at(2))
        .then(0, put("b", "v2"), put_at(3))
        .then(0, put("a", "v3"), put_at(4))
        .then(0, delete("b"), deleted(1, 5))
        .at(1, 100, 110, put_lease("a", "v4", 9), UNKNOWN)
        .then(0, get("a"), got(Some(kv_lease("a", "v4", 2, 6, 3, 9)), 6))
        .then(0, put("c", "v5"), put_at(7))
        .then(0, revoke(9), revoked(8))
        .ops
        .clone()
}

fn a1() -> WatchEvent {
    put_event(kv("a", "v1", 2, 2, 1))
}
fn b2() -> WatchEvent {
    put_event(kv("b", "v2", 3, 3, 1))
}
fn a3() -> WatchEvent {
    put_event(kv("a", "v3", 2, 4, 2))
}
fn a4() -> WatchEvent {
    put_event(kv_lease("a", "v4", 2, 6, 3, 9))
}
fn c5() -> WatchEvent {
    put_event(kv("c", "v5", 7, 7, 1))
}

fn everything() -> Vec<WatchEvent> {
    vec![
        a1(),
        b2(),
        a3(),
        delete_event("b", 5),
        a4(),
        c5(),
        delete_event("a", 8),
    ]
}

fn check_bad(watch: Watch) -> String {
    let watches = [watch];
    let report = assert_watch_violation(&history(), &watches, 0);
    println!("{report}");
    report
}

// ---- Must be accepted -------------------------------------------------------------------------

#[test]
fn valid_watches() {
    let watches = [
        watch("", "\0", 1, everything()),
        watch("a", "", 1, vec![a1(), a3(), a4(), delete_event("a", 8)]),
        // From a revision, and from "now" (start revision 0) seen first at revision 4.
        watch("a", "c", 4, vec![a3(), delete_event("b", 5), a4()]),
        watch("a", "", 0, vec![a3(), a4()]),
        // Cancelled at once because its start revision was compacted.
        Watch {
            compacted: Some(5),
            ..watch("a", "", 2, vec![])
        },
        watch("b", "\0", 6, vec![c5()]),
    ];
    assert_watches_ok(&history(), &watches);
}

// ---- Must be rejected -------------------------------------------------------------------------

#[test]
fn gap() {
    let report = check_bad(watch("a", "", 1, vec![a1(), a4()]));
    assert!(
        report.contains("gap: no event for the write of key \"a\" at revision 4"),
        "{report}"
    );
    // From a start revision, the first expected event is at that revision.
    assert!(check_bad(watch("a", "", 3, vec![a4()])).contains("gap"));
}

#[test]
fn duplicate() {
    assert!(check_bad(watch("a", "", 1, vec![a1(), a3(), a3()])).contains("duplicate"));
}

#[test]
fn out_of_order() {
    assert!(check_bad(watch("", "\0", 1, vec![a1(), a3(), b2()])).contains("out of order"));
}

#[test]
fn event_disagreeing_with_the_history() {
    // The value's write created revision 4, not 5.
    let wrong_revision = put_event(kv("a", "v3", 2, 5, 2));
    assert!(check_bad(watch("a", "", 5, vec![wrong_revision])).contains("created revision 4"));
    // The unknown write was read with version 3.
    let wrong_version = put_event(kv_lease("a", "v4", 2, 6, 4, 9));
    assert!(check_bad(watch("a", "", 6, vec![wrong_version])).contains("a read showed"));
    // A delete at a revision no delete of the key created.
    assert!(check_bad(watch("b", "", 4, vec![delete_event("b", 4)])).contains("Put of key \"a\""));
    assert!(check_bad(watch("c", "", 0, vec![delete_event("c", 9)])).contains("no delete"));
    // A value never written, a value of another key.
    assert!(
        check_bad(watch("a", "", 0, vec![put_event(kv("a", "zz", 9, 9, 1))]))
            .contains("never written")
    );
    assert!(
        check_bad(watch("", "\0", 0, vec![put_event(kv("a", "v2", 3, 3, 1))]))
            .contains("written to key")
    );
}

#[test]
fn event_outside_the_watch() {
    assert!(check_bad(watch("a", "", 1, vec![a1(), b2()])).contains("outside"));
    assert!(check_bad(watch("a", "", 3, vec![a1()])).contains("before the start revision"));
}

#[test]
fn broken_version_chain() {
    // A put after a delete must start at version 1... here the delete of a is followed by a put
    // event claiming version 4 (values are real, revisions are free).
    let history = {
        let mut ops = history();
        ops.push(Operation {
            client: 2,
            input: put("a", "v6"),
            output: UNKNOWN,
            call: 1_000,
            ret: 1_010,
        });
        ops
    };
    let after_delete = put_event(kv("a", "v6", 2, 9, 4));
    let watches = [watch("a", "", 8, vec![delete_event("a", 8), after_delete])];
    let report = assert_watch_violation(&history, &watches, 0);
    assert!(
        report.contains("create revision 2 and version 4 cannot go together")
            || report.contains("version 4, not 1"),
        "{report}"
    );
}

#[test]
fn watches_disagreeing() {
    let other_delete = delete_event("a", 8);
    let mut bad = other_delete.clone();
    bad.kv.create_revision = 2;
    let watches = [
        watch("a", "", 8, vec![other_delete]),
        watch("a", "", 8, vec![bad]),
    ];
    let report = assert_watch_violation(&history(), &watches, 1);
    assert!(report.contains("watch #0 delivered"), "{report}");
}
