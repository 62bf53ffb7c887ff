//! [`check_linearizable`]: the cheap whole-history checks, then one search per key, and a
//! readable account of the first failure.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::history::Operation;
use crate::index::{Finding, Index};
use crate::model::{step, KeyModel, KeyState, Live};
use crate::partition::{self, Partition};
use crate::report::Bytes;
use crate::result::LinResult;
use crate::search::{search, DeadEnd, Outcome};
use crate::{order, responses};

/// How many ops a violation found by the search reports at most.
const CONTEXT: usize = 24;

/// Checks that `ops` is linearizable with respect to etcd's key-value semantics.
///
/// Assumptions (see [`Unsupported`](crate::Unsupported) for the ones that are checked): every
/// value written is unique; each lease is put with at most one key; the keys the history touches
/// start absent; no lease expires during the history (an expiry deletes keys with no op to account
/// for it). `Rejected` ops are ignored; ops of `Unknown` outcome may take effect any time after
/// their call, or never.
///
/// Order of the checks: each response on its own, distinct write revisions, revisions in
/// real-time order across all keys, then porcupine's search per key (keys in byte order), which
/// also checks every Range through its projection onto each key. The first failure is returned.
/// `budget` bounds the whole call; when it runs out mid-search the result is
/// [`LinResult::Timeout`].
///
/// Precision: exact, except that a put or Cas of unknown outcome whose value nobody read widens
/// the `version` (and, on a re-created key, the `create_revision`) that later reads may show, by
/// one per such write not yet accounted for (see the `model` module); and a revoke of unknown
/// outcome is only assumed to have happened where it deleted the key.
pub fn check_linearizable(ops: &[Operation], budget: Duration) -> LinResult {
    let deadline = Instant::now().checked_add(budget);
    let index = match Index::build(ops) {
        Ok(index) => index,
        Err(why) => return LinResult::Unsupported(why),
    };
    let whole_history = [
        responses::check,
        order::check_distinct,
        order::check_real_time,
    ];
    if let Some(finding) = whole_history.iter().find_map(|check| check(&index)) {
        return violation(ops, finding);
    }
    let parts = partition::split(&index);
    for (key, part) in &parts {
        match search(&KeyModel, KeyState::default(), &part.ops, deadline) {
            Outcome::Linearizable => {}
            Outcome::TimedOut => return LinResult::Timeout { key: key.to_vec() },
            Outcome::Violation(dead_end) => {
                return violation(ops, explain(&index, key, part, &dead_end))
            }
        }
    }
    LinResult::Ok {
        partitions: parts.len(),
        ops_checked: index.live.len(),
    }
}

fn violation(ops: &[Operation], finding: Finding) -> LinResult {
    LinResult::Violation {
        key: finding.key,
        reason: finding.reason,
        ops: finding.ops.iter().map(|&i| ops[i].clone()).collect(),
    }
}

/// Turns the search's deepest dead end into a report: which op could not be placed, why the
/// model refused it in the state reached, and the ops around it.
fn explain(index: &Index, key: &[u8], part: &Partition, dead_end: &DeadEnd<KeyState>) -> Finding {
    let value = |writer: u32| {
        index
            .ops
            .get(writer as usize)
            .and_then(|op| op.input.written_value())
            .map_or_else(|| "?".to_string(), |v| Bytes(v).to_string())
    };
    let stuck = &part.ops[dead_end.stuck];
    let origin = part.origin[dead_end.stuck];
    let why = match (dead_end.waiting, step(&dead_end.state, &stuck.op)) {
        (Some(before), _) => format!(
            "by revision it comes after op #{}, which could not be placed before it returned",
            part.origin[before]
        ),
        (None, Err(reject)) => reject.explain(&value),
        (None, Ok(_)) => {
            "it fits there, but every way on from there was already tried and failed".into()
        }
    };
    let reason = format!(
        "no linearization of the {} ops on this key. The longest linearizable prefix has {} ops; \
         after it the key is {}, and op #{origin} ({}) cannot come next: {why}",
        part.ops.len(),
        dead_end.depth,
        describe(&dead_end.state, &value),
        index.ops[origin],
    );
    Finding {
        key: key.to_vec(),
        reason,
        ops: context(index, part, dead_end),
    }
}

fn describe(state: &KeyState, value: &dyn Fn(u32) -> String) -> String {
    let proven = state.rev;
    match state.live {
        None => format!("absent (at revision >= {proven})"),
        Some(Live {
            value: v,
            create,
            modified,
            version,
            extra,
            lease,
        }) => {
            let versions = match extra {
                0 => version.to_string(),
                _ => format!("{version}..={}", version.saturating_add(i64::from(extra))),
            };
            format!(
                "{} (create {create}, mod {modified}, version {versions}, lease {lease}; at \
                 revision >= {proven})",
                value(v)
            )
        }
    }
}

/// The ops worth reading for a dead end: all of a small sub-history; otherwise the last ops
/// linearized, the op that could not be, and the ops concurrent with it, as recorded ops in call
/// order.
fn context(index: &Index, part: &Partition, dead_end: &DeadEnd<KeyState>) -> Vec<usize> {
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    if part.ops.len() <= CONTEXT {
        chosen.extend(part.origin.iter().copied());
    } else {
        let stuck = &part.ops[dead_end.stuck];
        chosen.extend(dead_end.recent.iter().map(|&j| part.origin[j]));
        chosen.insert(part.origin[dead_end.stuck]);
        let mut concurrent: Vec<(u64, usize)> = part
            .ops
            .iter()
            .zip(&part.origin)
            .filter(|(op, _)| op.call <= stuck.ret && op.ret >= stuck.call)
            .map(|(op, &origin)| (op.call.abs_diff(stuck.call), origin))
            .collect();
        concurrent.sort_unstable();
        for (_, origin) in concurrent {
            if chosen.len() >= CONTEXT {
                break;
            }
            chosen.insert(origin);
        }
    }
    let mut ops: Vec<usize> = chosen.into_iter().collect();
    ops.sort_by_key(|&i| (index.ops[i].call, i));
    ops
}
