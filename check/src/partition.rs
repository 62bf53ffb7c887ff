//! Splitting a history into one sub-history per key, in the form the model steps.
//!
//! Linearizability is compositional (Herlihy & Wing): a history is linearizable iff each object's
//! sub-history is, so each key is searched on its own, which keeps every search small. The ops
//! that touch several keys are handled so as to keep that split:
//!
//! - A Range is projected onto every key of its range that the history writes: on each, it is a
//!   read that saw that key's pair in the answer (or its absence) at the Range's revision. Since a
//!   read at revision H fits only after every write of revision <= H and before every write above
//!   it, each projection pins that key's state at H, so together they check that the Range
//!   returned exactly the state of its range at revision H, and `order` checks that H is in
//!   real-time order with everything else.
//! - A LeaseRevoke belongs to the one key its lease was put with (the index refuses a lease on
//!   two keys); a revoke of a lease never put with a key changes no key and is left to `order`.
//! - LeaseGrant changes no key.
//!
//! Ops of unknown outcome: reads are dropped (they have no effect); unseen writes are not ops of
//! the search but counted into every op's `unseen_before` (see `model`); deletes and revokes are
//! optional unknown deletes (a revoke is taken for a delete, which allows more histories, never
//! fewer), linked in call order ([`Timed::after`]) so that the search tries them in that order
//! only. Required ops are linked in revision order (see [`Partition::link`]).

use std::collections::{BTreeMap, HashMap};

use crate::history::{Input, Kv, Output};
use crate::index::Index;
use crate::keyrange::KeyRange;
use crate::model::{KeyOp, Seen};
use crate::search::Timed;

/// One key's sub-history.
#[derive(Debug, Default)]
pub(crate) struct Partition {
    pub(crate) ops: Vec<Timed<KeyOp>>,
    /// For each of `ops`, the index of the recorded op it came from.
    pub(crate) origin: Vec<usize>,
    /// Lease -> its bit in the model's revoked mask; at most 64 leases get one.
    lease_bits: HashMap<i64, u64>,
    unseen: Unseen,
}

/// The key's unseen writes: puts and Cas requests of unknown outcome whose value nobody saw.
#[derive(Debug, Default)]
struct Unseen {
    /// Their call times, sorted.
    calls: Vec<u64>,
    /// Lease -> the earliest call of an unseen put with it.
    leased: HashMap<i64, u64>,
}

impl Unseen {
    /// How many were called no later than `ret`, so could have taken effect before an op that
    /// returned at `ret` (a call and a return at one instant count as concurrent).
    fn before(&self, ret: u64) -> u32 {
        let n = self.calls.partition_point(|&call| call <= ret);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether an unseen put with `lease` was called no later than `ret`.
    fn leased_before(&self, lease: i64, ret: u64) -> bool {
        self.leased.get(&lease).is_some_and(|&call| call <= ret)
    }
}

impl Partition {
    fn push(&mut self, origin: usize, call: u64, ret: u64, op: KeyOp) {
        self.ops.push(Timed {
            call,
            ret,
            op,
            after: None,
        });
        self.origin.push(origin);
    }

    fn lease_bit(&mut self, lease: i64) -> u64 {
        if lease == 0 {
            return 0;
        }
        let next = self.lease_bits.len();
        *self
            .lease_bits
            .entry(lease)
            .or_insert(if next < 64 { 1 << next } else { 0 })
    }

    /// Sets [`Timed::after`]: each unknown delete follows the previous one in call order (they
    /// are interchangeable), and each required op follows the write that the revisions order
    /// right before it.
    ///
    /// The revision links only spell out what the model already demands (a write's revision
    /// must exceed, and a read's must reach, the revision of every write linearized before it),
    /// so no linearization is lost. They save the search from trying ops far out of place, above
    /// all writes of unknown outcome that were observed: they never returned, so without the link
    /// each would be tried at every point after its call.
    fn link(&mut self) {
        let mut order: Vec<usize> = (0..self.ops.len()).collect();
        order.sort_by_key(|&j| (self.ops[j].call, j));
        let mut last = None;
        for j in order {
            if self.ops[j].op == KeyOp::DeleteUnknown {
                self.ops[j].after = last.replace(j);
            }
        }
        let mut writes: Vec<(i64, usize)> = self
            .ops
            .iter()
            .enumerate()
            .filter_map(|(j, op)| Some((written_revision(&op.op)?, j)))
            .collect();
        writes.sort_unstable();
        for (j, op) in self.ops.iter_mut().enumerate() {
            let before = match (written_revision(&op.op), read_revision(&op.op)) {
                (Some(revision), _) => writes.partition_point(|&(r, _)| r < revision),
                (None, Some(revision)) => writes.partition_point(|&(r, _)| r <= revision),
                (None, None) => continue,
            };
            op.after = before
                .checked_sub(1)
                .map(|at| writes[at].1)
                .filter(|&w| w != j);
        }
    }
}

/// The revision a required op creates, if it surely creates one.
fn written_revision(op: &KeyOp) -> Option<i64> {
    match *op {
        KeyOp::Put { revision, .. } | KeyOp::CasApplied { revision, .. } => Some(revision),
        KeyOp::Delete {
            deleted: true,
            revision,
            ..
        } => Some(revision),
        _ => None,
    }
}

/// The revision a required op that may create none answered at: every write of a revision up to
/// it comes before it.
fn read_revision(op: &KeyOp) -> Option<i64> {
    match *op {
        KeyOp::Read { revision, .. }
        | KeyOp::CasFailed { revision, .. }
        | KeyOp::Delete {
            deleted: false,
            revision,
            ..
        }
        | KeyOp::Revoke { revision, .. } => Some(revision),
        _ => None,
    }
}

/// The sub-history of every key a single-key op touches, by key.
pub(crate) fn split<'a>(index: &Index<'a>) -> BTreeMap<&'a [u8], Partition> {
    let mut parts: BTreeMap<&'a [u8], Partition> = BTreeMap::new();
    for &i in &index.live {
        let op = &index.ops[i];
        let Some(key) = op.input.key() else {
            continue;
        };
        let part = parts.entry(key).or_default();
        if is_unseen_write(index, i) {
            part.unseen.calls.push(op.call);
            let lease = op.input.written_lease();
            if lease != 0 {
                let earliest = part.unseen.leased.entry(lease).or_insert(op.call);
                *earliest = (*earliest).min(op.call);
            }
        }
    }
    for part in parts.values_mut() {
        part.unseen.calls.sort_unstable();
    }
    for &i in &index.live {
        add(index, &mut parts, i);
    }
    for part in parts.values_mut() {
        part.link();
    }
    parts
}

/// A put or Cas of unknown outcome whose value nobody saw.
fn is_unseen_write(index: &Index, i: usize) -> bool {
    let op = &index.ops[i];
    matches!(op.output, Output::Unknown)
        && op.input.written_value().is_some()
        && index.write_revision(i).is_none()
}

fn add<'a>(index: &Index<'a>, parts: &mut BTreeMap<&'a [u8], Partition>, i: usize) {
    let op = &index.ops[i];
    if is_unseen_write(index, i) {
        return;
    }
    let call = op.call;
    let ret = match op.output {
        Output::Unknown => u64::MAX,
        _ => op.ret,
    };
    if let (Input::Range { start, end }, Output::Range { kvs, revision }) = (&op.input, &op.output)
    {
        project_range(index, parts, i, KeyRange::new(start, end), kvs, *revision);
        return;
    }
    let key = match &op.input {
        Input::LeaseRevoke { lease } => index.lease_key(*lease),
        input => input.key(),
    };
    let Some(part) = key.and_then(|key| parts.get_mut(key)) else {
        return;
    };
    if let Some(key_op) = key_op(index, part, i, ret) {
        part.push(i, call, ret, key_op);
    }
}

/// The model's view of op `i` on its key, if it has one.
fn key_op(index: &Index, part: &mut Partition, i: usize, ret: u64) -> Option<KeyOp> {
    let op = &index.ops[i];
    let unseen_before = part.unseen.before(ret);
    let value = |v: &[u8]| index.writer(v).map_or(u32::MAX, |w| w as u32);
    let seen_opt = |kv: &Option<Kv>| kv.as_ref().map(|kv| seen(index, kv));
    Some(match (&op.input, &op.output) {
        (Input::Get { .. }, Output::Get { kv, revision }) => KeyOp::Read {
            seen: seen_opt(kv),
            revision: *revision,
        },
        (
            Input::Put {
                value: v, lease, ..
            },
            _,
        ) => KeyOp::Put {
            value: value(v),
            lease: *lease,
            lease_bit: part.lease_bit(*lease),
            // Acknowledged, or seen (unseen writes were left out above).
            revision: index.write_revision(i)?,
            unseen_before,
        },
        (
            Input::Cas {
                expected_mod_revision,
                ..
            },
            Output::Cas {
                succeeded: false,
                kv,
                revision,
            },
        ) => KeyOp::CasFailed {
            expected: *expected_mod_revision,
            seen: seen_opt(kv),
            revision: *revision,
        },
        (
            Input::Cas {
                expected_mod_revision,
                value: v,
                ..
            },
            _,
        ) => KeyOp::CasApplied {
            expected: *expected_mod_revision,
            value: value(v),
            revision: index.write_revision(i)?,
            unseen_before,
        },
        (Input::Delete { .. }, Output::Delete { deleted, revision }) => KeyOp::Delete {
            deleted: *deleted > 0,
            revision: *revision,
            unseen_before,
        },
        (Input::Delete { .. }, Output::Unknown) => KeyOp::DeleteUnknown,
        // Of unknown outcome: taken as an unknown delete (see `model`).
        (Input::LeaseRevoke { .. }, Output::Unknown) => KeyOp::DeleteUnknown,
        (Input::LeaseRevoke { lease }, Output::LeaseRevoke { revision }) => KeyOp::Revoke {
            lease: *lease,
            lease_bit: part.lease_bit(*lease),
            revision: *revision,
            maybe_attached: part.unseen.leased_before(*lease, ret),
            unseen_before,
        },
        // Reads of unknown outcome, lease grants.
        _ => return None,
    })
}

/// Adds a Range's read of each written key in its range to that key's sub-history.
fn project_range<'a>(
    index: &Index<'a>,
    parts: &mut BTreeMap<&'a [u8], Partition>,
    i: usize,
    range: KeyRange<'_>,
    kvs: &[Kv],
    revision: i64,
) {
    let op = &index.ops[i];
    let keys: Vec<&'a [u8]> = range.select(parts).map(|(key, _)| *key).collect();
    for key in keys {
        // `responses` checked that the answer is sorted by key.
        let shown = kvs
            .binary_search_by(|kv| kv.key.as_slice().cmp(key))
            .ok()
            .map(|at| seen(index, &kvs[at]));
        if let Some(part) = parts.get_mut(key) {
            part.push(
                i,
                op.call,
                op.ret,
                KeyOp::Read {
                    seen: shown,
                    revision,
                },
            );
        }
    }
}

fn seen(index: &Index, kv: &Kv) -> Seen {
    Seen {
        // `responses` already refused values never written; u32::MAX matches no state.
        value: index.writer(&kv.value).map_or(u32::MAX, |w| w as u32),
        create: kv.create_revision,
        modified: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}
