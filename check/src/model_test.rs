//! The model's rules, one step at a time.

use super::*;

const V1: u32 = 1;
const V2: u32 = 2;
const V3: u32 = 3;

fn seen(value: u32, create: i64, modified: i64, version: i64) -> Option<Seen> {
    Some(Seen {
        value,
        create,
        modified,
        version,
        lease: 0,
    })
}

fn read(seen: Option<Seen>, revision: i64) -> KeyOp {
    KeyOp::Read { seen, revision }
}

/// A put at `revision` with `unseen_before` unseen writes possibly before it.
fn put(value: u32, revision: i64, unseen_before: u32) -> KeyOp {
    KeyOp::Put {
        value,
        lease: 0,
        lease_bit: 0,
        revision,
        unseen_before,
    }
}

fn leased(value: u32, lease: i64, revision: i64) -> KeyOp {
    KeyOp::Put {
        value,
        lease,
        lease_bit: 1,
        revision,
        unseen_before: 0,
    }
}

fn revoke(lease: i64, revision: i64, maybe_attached: bool) -> KeyOp {
    KeyOp::Revoke {
        lease,
        lease_bit: 1,
        revision,
        maybe_attached,
        unseen_before: 0,
    }
}

/// Applies `ops` in order from the empty key, taking the first successor each time.
fn run(ops: &[KeyOp]) -> Result<KeyState, Reject> {
    ops.iter().try_fold(KeyState::default(), |s, op| {
        step(&s, op).map(|next| match next {
            Successors::One(s) | Successors::Two(s, _) => s,
        })
    })
}

#[test]
fn put_then_read() {
    let s = run(&[put(V1, 3, 0), put(V2, 5, 0), read(seen(V2, 3, 5, 2), 7)]).unwrap();
    assert_eq!(s.rev, 7);
}

#[test]
fn stale_and_wrong_reads_are_refused() {
    let with = |op: KeyOp| run(&[put(V1, 3, 0), put(V2, 5, 0), op]);
    assert!(matches!(
        with(read(seen(V2, 3, 5, 2), 4)),
        Err(Reject::ReadBefore { .. })
    ));
    assert!(matches!(
        with(read(seen(V1, 3, 3, 1), 5)),
        Err(Reject::OtherValue { .. })
    ));
    assert!(matches!(
        with(read(seen(V2, 3, 5, 1), 5)),
        Err(Reject::Mismatch {
            field: Field::Version,
            ..
        })
    ));
    assert!(matches!(
        with(read(seen(V2, 4, 5, 2), 5)),
        Err(Reject::Mismatch {
            field: Field::CreateRevision,
            ..
        })
    ));
    assert!(matches!(with(read(None, 5)), Err(Reject::MissedLiveKey)));
}

#[test]
fn writes_must_move_the_revision_forward() {
    assert!(matches!(
        run(&[put(V1, 5, 0), put(V2, 5, 0)]),
        Err(Reject::WriteNotAfter { .. })
    ));
}

#[test]
fn deletes() {
    let delete = |deleted, revision, unseen_before| KeyOp::Delete {
        deleted,
        revision,
        unseen_before,
    };
    assert!(run(&[delete(false, 1, 0)]).is_ok());
    assert!(matches!(
        run(&[delete(true, 2, 0)]),
        Err(Reject::Deleted { reported: true })
    ));
    // An unseen write may have created the key in between.
    assert!(run(&[delete(true, 3, 1)]).is_ok());
    let s = run(&[put(V1, 2, 0), delete(true, 4, 0), put(V2, 6, 0)]).unwrap();
    let live = s.live.unwrap();
    assert_eq!((live.create, live.version), (Span::exact(6), 1));
}

#[test]
fn cas_compares_the_mod_revision() {
    let cas = |expected, revision, unseen_before| KeyOp::CasApplied {
        expected,
        value: V2,
        revision,
        unseen_before,
    };
    assert!(run(&[put(V1, 3, 0), cas(3, 4, 0)]).is_ok());
    assert!(matches!(
        run(&[put(V1, 3, 0), cas(2, 5, 0)]),
        Err(Reject::Compare { .. })
    ));
    assert!(run(&[cas(0, 4, 0)]).is_ok());
    // An unseen write at revision 4 explains a compare with 4, not one with 3.
    let s = run(&[put(V1, 3, 1), cas(4, 5, 1), read(seen(V2, 3, 5, 3), 5)]).unwrap();
    assert_eq!(s.pinned, 1);
    // A compare that held leaves no room for an unseen write just before the Cas.
    let pinned = [put(V1, 3, 1), read(seen(V1, 3, 3, 1), 3), cas(3, 5, 1)];
    assert!(run(&[pinned[0], pinned[1], pinned[2], read(seen(V2, 3, 5, 3), 5)]).is_err());
    assert!(run(&[pinned[0], pinned[1], pinned[2], read(seen(V2, 3, 5, 2), 5)]).is_ok());
    let failed = KeyOp::CasFailed {
        expected: 3,
        seen: seen(V1, 3, 3, 1),
        revision: 3,
    };
    assert!(matches!(
        run(&[put(V1, 3, 0), failed]),
        Err(Reject::Compare { .. })
    ));
}

#[test]
fn unseen_writes_widen_the_version_until_a_read_pins_it() {
    // Two unseen writes may precede the put at 6: version 2, 3 or 4.
    let base = [put(V1, 2, 0), put(V2, 6, 2)];
    for version in 2..=4 {
        assert!(run(&[base[0], base[1], read(seen(V2, 2, 6, version), 6)]).is_ok());
    }
    assert!(run(&[base[0], base[1], read(seen(V2, 2, 6, 5), 6)]).is_err());
    // Once a read showed both took effect, neither can be counted again.
    let s = run(&[base[0], base[1], read(seen(V2, 2, 6, 4), 6), put(V3, 7, 2)]).unwrap();
    assert_eq!((s.pinned, s.live.unwrap().extra), (2, 0));
    // On an absent key they may have created it: the create revision is open too.
    let created = [put(V1, 6, 1), read(seen(V1, 4, 6, 2), 6)];
    assert_eq!(run(&created).unwrap().live.unwrap().create, Span::exact(4));
    assert!(run(&[put(V1, 6, 1), read(seen(V1, 6, 6, 2), 6)]).is_err());
}

#[test]
fn revoke_deletes_attached_key_and_blocks_later_puts() {
    let s = run(&[leased(V1, 9, 2), revoke(9, 3, false)]).unwrap();
    assert_eq!((s.live, s.rev), (None, 3));
    assert!(matches!(
        run(&[leased(V1, 9, 2), revoke(9, 3, false), leased(V2, 9, 4)]),
        Err(Reject::LeaseRevoked { lease: 9 })
    ));
    // Not attached: nothing deleted, unless an unseen put may have attached it.
    let kept = run(&[put(V1, 2, 0), revoke(9, 2, false)]).unwrap();
    assert!(kept.live.is_some());
    let maybe = step(&run(&[put(V1, 2, 0)]).unwrap(), &revoke(9, 3, true));
    assert!(matches!(maybe, Ok(Successors::Two(deleted, _)) if deleted.live.is_none()));
    // Attached, but an unseen put may have replaced the leased value: both outcomes.
    let detached = KeyOp::Revoke {
        lease: 9,
        lease_bit: 1,
        revision: 3,
        maybe_attached: false,
        unseen_before: 1,
    };
    let maybe = step(&run(&[leased(V1, 9, 2)]).unwrap(), &detached);
    assert!(
        matches!(maybe, Ok(Successors::Two(deleted, kept)) if deleted.live.is_none() && kept.live.is_some())
    );
    // Of unknown outcome: a delete, where the key is present.
    let unknown = run(&[leased(V1, 9, 2), KeyOp::DeleteUnknown]).unwrap();
    assert_eq!((unknown.live, unknown.rev), (None, 3));
    assert_eq!(run(&[KeyOp::DeleteUnknown]).unwrap(), KeyState::default());
}
