//! The verdicts of the two checkers. A violation carries enough to read without a debugger: the
//! key, a sentence saying what cannot be explained, and the operations involved.

use std::fmt;

use crate::history::Operation;
use crate::report::Bytes;

/// The verdict of [`check_linearizable`](crate::check_linearizable).
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinResult {
    /// Every check passed: the history is linearizable.
    Ok {
        /// Keys searched separately.
        partitions: usize,
        /// Operations taken into account (all but the `Rejected` ones).
        ops_checked: usize,
    },
    /// The history is not linearizable. `key` is the key whose sub-history has no linearization,
    /// or the key of the later op of a whole-history revision check (empty for lease ops).
    Violation {
        key: Vec<u8>,
        reason: String,
        /// The ops the reason is about: for the per-key search, the op that could not be placed,
        /// the ops concurrent with it and the last ones placed before it; otherwise the one or two
        /// ops at fault.
        ops: Vec<Operation>,
    },
    /// The search of `key` did not finish within the budget: no verdict.
    Timeout { key: Vec<u8> },
    /// The history breaks an assumption the checker relies on; no verdict.
    Unsupported(Unsupported),
}

impl LinResult {
    /// True only for [`LinResult::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, LinResult::Ok { .. })
    }
}

/// The verdict of [`check_watches`](crate::check_watches).
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchResult {
    Ok {
        watches: usize,
        events: usize,
    },
    /// `watch_index` indexes the `watches` slice given to the checker.
    Violation {
        watch_index: usize,
        reason: String,
    },
    /// The key-value history breaks an assumption the checker relies on; no verdict.
    Unsupported(Unsupported),
}

impl WatchResult {
    /// True only for [`WatchResult::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, WatchResult::Ok { .. })
    }
}

/// An assumption about the recorded history that does not hold, so that no verdict is possible.
/// These are bugs of the harness, not of the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// The per-key split needs each lease to be attached to at most one key, so that a revoke
    /// belongs to one key's sub-history.
    #[error("lease {lease} is put with two keys ({} and {}); the checker needs each lease on at most one key", Bytes(.first), Bytes(.second))]
    LeaseOnSeveralKeys {
        lease: i64,
        first: Vec<u8>,
        second: Vec<u8>,
    },
    /// Reads are matched to writes by value, so no two writes may write the same value.
    #[error("ops #{first} and #{second} both write the value {}; values must be unique per history", Bytes(.value))]
    DuplicateValue {
        value: Vec<u8>,
        first: usize,
        second: usize,
    },
    #[error("op #{index}: the output is of another request type than the input")]
    MismatchedOutput { index: usize },
    #[error("op #{index} returned before it was called")]
    ReturnBeforeCall { index: usize },
}

impl fmt::Display for LinResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinResult::Ok {
                partitions,
                ops_checked,
            } => write!(f, "linearizable: {ops_checked} ops over {partitions} keys"),
            LinResult::Violation { key, reason, ops } => {
                writeln!(f, "NOT linearizable (key {}): {reason}", Bytes(key))?;
                writeln!(f, "ops involved ({}):", ops.len())?;
                for op in ops {
                    writeln!(f, "  {op}")?;
                }
                Ok(())
            }
            LinResult::Timeout { key } => write!(
                f,
                "no verdict: the search of key {} ran out of time",
                Bytes(key)
            ),
            LinResult::Unsupported(why) => write!(f, "no verdict: {why}"),
        }
    }
}

impl fmt::Display for WatchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchResult::Ok { watches, events } => {
                write!(f, "watches valid: {watches} watches, {events} events")
            }
            WatchResult::Violation {
                watch_index,
                reason,
            } => write!(f, "watch #{watch_index} is invalid: {reason}"),
            WatchResult::Unsupported(why) => write!(f, "no verdict: {why}"),
        }
    }
}
