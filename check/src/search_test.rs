//! The search on a plain register, away from etcd's details.

use super::*;

/// A register of small integers: writes always succeed, reads must see the current value.
struct Register;

#[derive(Debug, Clone, Copy)]
enum Op {
    Write(u8),
    Read(u8),
    /// A write of unknown outcome that may or may not have happened.
    Maybe(u8),
    /// A write of one of two values.
    Either(u8, u8),
}

impl Model for Register {
    type State = u8;
    type Op = Op;
    type Reject = ();

    fn step(&self, state: &u8, op: &Op) -> Result<Successors<u8>, ()> {
        match *op {
            Op::Write(v) | Op::Maybe(v) => Ok(Successors::One(v)),
            Op::Read(v) if v == *state => Ok(Successors::One(v)),
            Op::Read(_) => Err(()),
            Op::Either(a, b) => Ok(Successors::Two(a, b)),
        }
    }

    fn optional(&self, op: &Op) -> bool {
        matches!(op, Op::Maybe(_))
    }
}

fn timed(call: u64, ret: u64, op: Op) -> Timed<Op> {
    Timed {
        call,
        ret,
        op,
        after: None,
    }
}

fn check(ops: &[Timed<Op>]) -> Outcome<u8> {
    search(&Register, 0, ops, None)
}

#[test]
fn sequential_and_concurrent() {
    use Op::*;
    assert!(matches!(check(&[]), Outcome::Linearizable));
    let sequential = [timed(0, 1, Write(1)), timed(2, 3, Read(1))];
    assert!(matches!(check(&sequential), Outcome::Linearizable));
    // Overlapping: the read may come first, in either order of the list.
    let overlapping = [
        timed(0, 10, Write(1)),
        timed(1, 2, Read(0)),
        timed(3, 4, Read(1)),
    ];
    assert!(matches!(check(&overlapping), Outcome::Linearizable));
    // Touching intervals count as concurrent.
    let touching = [timed(0, 5, Write(1)), timed(5, 6, Read(0))];
    assert!(matches!(check(&touching), Outcome::Linearizable));
}

#[test]
fn stale_read_is_found_with_its_context() {
    use Op::*;
    let ops = [
        timed(0, 1, Write(1)),
        timed(2, 3, Write(2)),
        timed(4, 5, Read(1)),
    ];
    let Outcome::Violation(dead_end) = check(&ops) else {
        panic!("accepted a stale read");
    };
    assert_eq!((dead_end.stuck, dead_end.depth, dead_end.state), (2, 2, 2));
    assert_eq!(dead_end.recent, vec![0, 1]);
}

#[test]
fn never_returned_ops_may_happen_late_or_never() {
    use Op::*;
    let late = [
        timed(0, u64::MAX, Write(1)),
        timed(1, 2, Read(0)),
        timed(3, 4, Read(1)),
    ];
    assert!(matches!(check(&late), Outcome::Linearizable));
    let never = [
        timed(0, u64::MAX, Maybe(1)),
        timed(1, 2, Read(0)),
        timed(3, 4, Read(0)),
    ];
    assert!(matches!(check(&never), Outcome::Linearizable));
    // A required op that never returned must still be placed.
    let required = [timed(0, u64::MAX, Write(1)), timed(1, 2, Read(0))];
    assert!(matches!(check(&required), Outcome::Linearizable));
    let impossible = [timed(0, 1, Write(1)), timed(2, u64::MAX, Read(0))];
    assert!(matches!(check(&impossible), Outcome::Violation(_)));
}

#[test]
fn twins_are_tried_in_call_order_only() {
    use Op::*;
    // Two interchangeable unknown writes of the same value: the second waits for the first, and
    // the history is still found linearizable.
    let mut ops = vec![
        timed(0, u64::MAX, Maybe(1)),
        timed(5, u64::MAX, Maybe(1)),
        timed(10, 11, Read(1)),
        timed(12, 13, Write(2)),
        timed(14, 15, Read(2)),
        timed(16, 17, Read(1)),
    ];
    ops[1].after = Some(0);
    assert!(matches!(check(&ops), Outcome::Linearizable));
    // Many pending twins that never take effect do not blow the search up.
    let mut many: Vec<Timed<Op>> = (0..40).map(|i| timed(i, u64::MAX, Maybe(9))).collect();
    for (i, op) in many.iter_mut().enumerate().skip(1) {
        op.after = Some(i - 1);
    }
    many.extend((0..200).map(|i| timed(100 + 2 * i, 101 + 2 * i, Write(1))));
    many.push(timed(1000, 1001, Read(2)));
    assert!(matches!(check(&many), Outcome::Violation(_)));
}

#[test]
fn second_successor_is_tried() {
    use Op::*;
    let ops = [
        timed(0, 1, Either(1, 2)),
        timed(2, 3, Read(2)),
        timed(4, 5, Either(3, 2)),
        timed(6, 7, Read(2)),
    ];
    assert!(matches!(check(&ops), Outcome::Linearizable));
    let neither = [timed(0, 1, Either(1, 2)), timed(2, 3, Read(3))];
    assert!(matches!(check(&neither), Outcome::Violation(_)));
}

#[test]
fn deadline_in_the_past_times_out_on_long_searches() {
    use Op::*;
    let ops: Vec<_> = (0..5000)
        .map(|i| timed(2 * i, 2 * i + 1, Write(1)))
        .collect();
    let past = Instant::now();
    assert!(matches!(
        search(&Register, 0, &ops, Some(past)),
        Outcome::TimedOut
    ));
}
