//! Permission changes against reads: every read is allowed or refused by the auth state at its
//! linearization point (etcd checks a read against the auth revision it reads at).
//!
//! One admin client changes one permission, one change at a time, alternately granting and
//! revoking (retrying a change with an unknown outcome until it is answered, which is safe:
//! both are idempotent in effect). So the permission's state is known between changes: after a
//! change returned and before the next was sent, it is what that change made it. A read whose
//! whole span lies in such a window must agree with it; a read that overlaps a change could have
//! been linearized on either side and proves nothing.

use serde::{Deserialize, Serialize};

use crate::history::Nanos;

/// One change of the permission: sent first at `call`, answered (the last attempt) at `ret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionChange {
    pub call: Nanos,
    pub ret: Nanos,
    pub granted: bool,
}

/// A read of a key the permission covers, by a user whose only right to it is that permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedRead {
    pub call: Nanos,
    pub ret: Nanos,
    /// Answered with data (true) or refused with "permission denied" (false).
    pub allowed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionResult {
    Ok {
        changes: usize,
        reads: usize,
        /// Reads wholly inside a window where the permission's state was known.
        judged: usize,
    },
    /// A read answered against a state the permission was certainly not in.
    Violation {
        read: GuardedRead,
        /// The window (from one change's answer to the next change's call) and its state.
        window: (Nanos, Nanos),
        granted: bool,
    },
}

impl std::fmt::Display for PermissionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |n: Nanos| n as f64 / 1e6;
        match self {
            PermissionResult::Ok {
                changes,
                reads,
                judged,
            } => write!(
                f,
                "permissions OK: {changes} changes, {reads} reads ({judged} judged), 0 violations"
            ),
            PermissionResult::Violation {
                read,
                window,
                granted,
            } => write!(
                f,
                "a read [{:.1}, {:.1}] ms was {} while the permission was {} for all of [{:.1}, {:.1}] ms",
                ms(read.call),
                ms(read.ret),
                if read.allowed { "allowed" } else { "refused" },
                if *granted { "granted" } else { "revoked" },
                ms(window.0),
                ms(window.1)
            ),
        }
    }
}

/// `initially` is the permission's state before the first change; `changes` are in the order the
/// admin made them.
pub fn check_permissions(
    initially: bool,
    changes: &[PermissionChange],
    reads: &[GuardedRead],
) -> PermissionResult {
    // The windows of known state: before the first change, between changes, after the last.
    let mut windows = Vec::with_capacity(changes.len() + 1);
    let mut from = 0;
    let mut state = initially;
    for c in changes {
        windows.push((from, c.call, state));
        from = c.ret;
        state = c.granted;
    }
    windows.push((from, Nanos::MAX, state));
    let mut judged = 0;
    for r in reads {
        // Windows are ordered and disjoint: the last one starting at or before the read.
        let i = windows.partition_point(|w| w.0 <= r.call);
        let Some(&(start, end, granted)) = i.checked_sub(1).map(|i| &windows[i]) else {
            continue;
        };
        if r.ret > end {
            continue;
        }
        judged += 1;
        if r.allowed != granted {
            return PermissionResult::Violation {
                read: *r,
                window: (start, end),
                granted,
            };
        }
    }
    PermissionResult::Ok {
        changes: changes.len(),
        reads: reads.len(),
        judged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(call: Nanos, ret: Nanos, granted: bool) -> PermissionChange {
        PermissionChange { call, ret, granted }
    }

    fn read(call: Nanos, ret: Nanos, allowed: bool) -> GuardedRead {
        GuardedRead { call, ret, allowed }
    }

    #[test]
    fn reads_must_agree_with_the_known_state() {
        // Granted until a revoke sent at 100 (answered 110), granted again from 300 (answered 310).
        let changes = [change(100, 110, false), change(300, 310, true)];
        let ok = [
            read(10, 90, true),
            read(120, 290, false),
            read(105, 200, true), // overlaps the revoke: either answer
            read(320, 400, true),
        ];
        assert_eq!(
            check_permissions(true, &changes, &ok),
            PermissionResult::Ok {
                changes: 2,
                reads: 4,
                judged: 3
            }
        );
        // Allowed though revoked for all of its span: the stale check of a lagging member.
        assert!(matches!(
            check_permissions(true, &changes, &[read(150, 250, true)]),
            PermissionResult::Violation { granted: false, .. }
        ));
        assert!(matches!(
            check_permissions(true, &changes, &[read(20, 30, false)]),
            PermissionResult::Violation { granted: true, .. }
        ));
    }
}
