//! Auth changes against reads: every read is answered by the auth state at its linearization point
//! (etcd resolves a linearizable read's token and checks its permission after its ReadIndex).
//!
//! One admin client makes one change at a time: grants or revokes one user's read permission on
//! one key, disables or enables auth, or changes that user's password (retrying a change with an
//! unknown outcome until it is answered, which is safe: each is idempotent in effect). So the
//! state is known between changes: after a change returned and before the next was sent, it is
//! what that change made it. The user may read when auth is off or the permission is granted.
//!
//! Tokens: a password change ends the user's tokens and disabling auth ends every token, on each
//! member when it applies the change. A token handed out (its Authenticate answered) before such
//! a change was sent, used by a read sent after the change returned, must be refused as invalid;
//! a token no such change could have ended between its Authenticate call and the read's return
//! must be accepted. A read whose span lies in a window of known state must agree with it; a
//! read that overlaps a change could have been linearized on either side and proves nothing.

use serde::{Deserialize, Serialize};

use crate::history::Nanos;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// Granted the user's read permission.
    Grant,
    /// Revoked it.
    Revoke,
    /// Turned auth off (which ends every token).
    Disable,
    /// Turned auth on.
    Enable,
    /// Changed the user's password (which ends the user's tokens).
    Password,
}

impl ChangeKind {
    /// Does applying it end tokens the user holds?
    fn ends_tokens(self) -> bool {
        matches!(self, ChangeKind::Disable | ChangeKind::Password)
    }
}

/// One change: sent first at `call`, answered (the last attempt) at `ret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthChange {
    pub call: Nanos,
    pub ret: Nanos,
    pub kind: ChangeKind,
}

/// The state a read is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub enabled: bool,
    pub granted: bool,
}

impl AuthState {
    fn after(self, kind: ChangeKind) -> AuthState {
        match kind {
            ChangeKind::Grant => AuthState {
                granted: true,
                ..self
            },
            ChangeKind::Revoke => AuthState {
                granted: false,
                ..self
            },
            ChangeKind::Disable => AuthState {
                enabled: false,
                ..self
            },
            ChangeKind::Enable => AuthState {
                enabled: true,
                ..self
            },
            ChangeKind::Password => self,
        }
    }

    /// What a read answers in this state, by a caller whose token (if any) was accepted.
    fn answer(self, token: bool) -> ReadOutcome {
        match (self.enabled, token, self.granted) {
            (false, _, _) => ReadOutcome::Allowed,
            (true, false, _) => ReadOutcome::NoUser,
            (true, true, true) => ReadOutcome::Allowed,
            (true, true, false) => ReadOutcome::Denied,
        }
    }
}

/// When the token a read carried was handed out: its Authenticate's call and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIssue {
    pub call: Nanos,
    pub ret: Nanos,
}

/// How a read was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOutcome {
    /// With data.
    Allowed,
    /// "permission denied".
    Denied,
    /// "user name is empty": no token while auth is on.
    NoUser,
    /// "invalid auth token".
    InvalidToken,
}

/// A read of a key the permission covers, by a user whose only right to it is that permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedRead {
    pub call: Nanos,
    pub ret: Nanos,
    /// The token it carried, if any.
    pub token: Option<TokenIssue>,
    pub outcome: ReadOutcome,
}

/// Why a read's answer was certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The state was `state` for all of `window` (from one change's answer to the next's call).
    Window {
        window: (Nanos, Nanos),
        state: AuthState,
    },
    /// The token was handed out before `change` was sent, which ended it before the read was sent.
    EndedToken { change: AuthChange },
    /// No change that ends tokens overlapped the token's Authenticate call and the read's return.
    LiveToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionResult {
    Ok {
        changes: usize,
        reads: usize,
        /// Reads whose answer was certain (by a window of known state or by their token).
        judged: usize,
        /// Of those, reads with a token certainly ended before their call (refused, as they must).
        ended_tokens: usize,
    },
    /// A read answered otherwise than it certainly had to be.
    Violation {
        read: GuardedRead,
        /// The answer it had to get; `None`: any but [`ReadOutcome::InvalidToken`].
        expected: Option<ReadOutcome>,
        reason: Reason,
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
                ended_tokens,
            } => write!(
                f,
                "permissions OK: {changes} changes, {reads} reads ({judged} judged, \
                 {ended_tokens} with ended tokens), 0 violations"
            ),
            PermissionResult::Violation {
                read,
                expected,
                reason,
            } => {
                write!(f, "a read [{:.1}, {:.1}] ms ", ms(read.call), ms(read.ret))?;
                match read.token {
                    Some(t) => write!(
                        f,
                        "with a token issued in [{:.1}, {:.1}] ms ",
                        ms(t.call),
                        ms(t.ret)
                    )?,
                    None => write!(f, "without a token ")?,
                }
                match expected {
                    Some(e) => write!(f, "was answered {:?}, expected {e:?}: ", read.outcome)?,
                    None => write!(f, "was refused, expected its token accepted: ")?,
                }
                match reason {
                    Reason::Window { window, state } => write!(
                        f,
                        "auth was {} and the permission {} for all of [{:.1}, {:.1}] ms",
                        if state.enabled { "on" } else { "off" },
                        if state.granted { "granted" } else { "revoked" },
                        ms(window.0),
                        ms(window.1)
                    ),
                    Reason::EndedToken { change } => write!(
                        f,
                        "{:?} [{:.1}, {:.1}] ms ended the token before the read",
                        change.kind,
                        ms(change.call),
                        ms(change.ret)
                    ),
                    Reason::LiveToken => write!(
                        f,
                        "no password change or auth disable overlapped the token's life"
                    ),
                }
            }
        }
    }
}

/// `initially` is the state before the first change; `changes` are in the order the admin made
/// them (one at a time).
pub fn check_permissions(
    initially: AuthState,
    changes: &[AuthChange],
    reads: &[GuardedRead],
) -> PermissionResult {
    // The windows of known state: before the first change, between changes, after the last.
    // A password change leaves the state as it was, so no window ends at one.
    let mut windows = Vec::with_capacity(changes.len() + 1);
    let mut from = 0;
    let mut state = initially;
    for c in changes.iter().filter(|c| c.kind != ChangeKind::Password) {
        windows.push((from, c.call, state));
        from = c.ret;
        state = state.after(c.kind);
    }
    windows.push((from, Nanos::MAX, state));
    let enders: Vec<&AuthChange> = changes.iter().filter(|c| c.kind.ends_tokens()).collect();
    let (mut judged, mut ended_tokens) = (0, 0);
    for r in reads {
        let violation = |expected, reason| PermissionResult::Violation {
            read: *r,
            expected,
            reason,
        };
        if let Some(t) = r.token {
            // Handed out before the change applied, and the change applied before the read point.
            let ended = enders.iter().find(|c| t.ret < c.call && c.ret < r.call);
            if let Some(&&change) = ended {
                judged += 1;
                ended_tokens += 1;
                if r.outcome != ReadOutcome::InvalidToken {
                    let expected = Some(ReadOutcome::InvalidToken);
                    return violation(expected, Reason::EndedToken { change });
                }
                continue;
            }
            if r.outcome == ReadOutcome::InvalidToken {
                let live = enders.iter().all(|c| c.ret < t.call || c.call > r.ret);
                if live {
                    return violation(None, Reason::LiveToken);
                }
                continue;
            }
        }
        // The token, if any, was accepted: the state at the read point decides.
        // Windows are ordered and disjoint: the last one starting at or before the read.
        let i = windows.partition_point(|w| w.0 <= r.call);
        let Some(&(start, end, state)) = i.checked_sub(1).map(|i| &windows[i]) else {
            continue;
        };
        if r.ret > end {
            continue;
        }
        judged += 1;
        let expected = state.answer(r.token.is_some());
        if r.outcome != expected {
            let window = (start, end);
            return violation(Some(expected), Reason::Window { window, state });
        }
    }
    PermissionResult::Ok {
        changes: changes.len(),
        reads: reads.len(),
        judged,
        ended_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeKind::*;
    use ReadOutcome::*;

    const ON_GRANTED: AuthState = AuthState {
        enabled: true,
        granted: true,
    };

    fn change(call: Nanos, ret: Nanos, kind: ChangeKind) -> AuthChange {
        AuthChange { call, ret, kind }
    }

    /// A read with a token handed out in [t, t + 5].
    fn read(call: Nanos, ret: Nanos, token: Option<Nanos>, outcome: ReadOutcome) -> GuardedRead {
        let token = token.map(|t| TokenIssue {
            call: t,
            ret: t + 5,
        });
        GuardedRead {
            call,
            ret,
            token,
            outcome,
        }
    }

    fn check(changes: &[AuthChange], reads: &[GuardedRead]) -> PermissionResult {
        check_permissions(ON_GRANTED, changes, reads)
    }

    /// Checks a consistent history: (reads judged, of which with ended tokens).
    fn judged(changes: &[AuthChange], reads: &[GuardedRead]) -> (usize, usize) {
        match check(changes, reads) {
            PermissionResult::Ok {
                changes: c,
                reads: n,
                judged,
                ended_tokens,
            } => {
                assert_eq!((c, n), (changes.len(), reads.len()));
                (judged, ended_tokens)
            }
            violation => panic!("{violation}"),
        }
    }

    /// The verdict on one read: `None` if consistent, else the answer it had to get and why.
    fn verdict(changes: &[AuthChange], r: GuardedRead) -> Option<(Option<ReadOutcome>, Reason)> {
        match check(changes, &[r]) {
            PermissionResult::Ok { .. } => None,
            PermissionResult::Violation {
                read,
                expected,
                reason,
            } => {
                assert_eq!(read, r);
                Some((expected, reason))
            }
        }
    }

    #[test]
    fn reads_must_agree_with_the_known_permission() {
        // Granted until a revoke sent at 100 (answered 110), granted again from 300 (answered 310).
        let changes = [change(100, 110, Revoke), change(300, 310, Grant)];
        let ok = [
            read(10, 90, Some(0), Allowed),
            read(120, 290, Some(0), Denied),
            read(105, 200, Some(0), Allowed), // overlaps the revoke: either answer
            read(320, 400, Some(0), Allowed),
            read(320, 400, None, NoUser),
        ];
        assert_eq!(judged(&changes, &ok), (4, 0));
        // Allowed though revoked for all of its span: the stale check of a lagging member.
        assert!(matches!(
            verdict(&changes, read(150, 250, Some(0), Allowed)),
            Some((Some(Denied), Reason::Window { .. }))
        ));
        assert!(matches!(
            verdict(&changes, read(20, 30, Some(0), Denied)),
            Some((Some(Allowed), Reason::Window { .. }))
        ));
    }

    #[test]
    fn auth_off_allows_every_read_and_ends_every_token() {
        // Revoked at 110, auth off from [200, 210] to [400, 410].
        let changes = [
            change(100, 110, Revoke),
            change(200, 210, Disable),
            change(400, 410, Enable),
        ];
        let ok = [
            read(220, 300, None, Allowed),
            read(150, 190, None, NoUser),
            read(420, 500, None, NoUser),
            // Handed out before the disable: ended, also once auth is back on.
            read(220, 300, Some(120), InvalidToken),
            read(420, 500, Some(120), InvalidToken),
            // Handed out after auth came back: the permission decides.
            read(430, 500, Some(415), Denied),
            // Overlapping the disable: either answer.
            read(205, 300, Some(120), Denied),
            read(205, 300, None, Allowed),
        ];
        assert_eq!(judged(&changes, &ok), (6, 2));
        // A tokenless read refused while auth was off for all of its span.
        assert!(matches!(
            verdict(&changes, read(220, 300, None, NoUser)),
            Some((Some(Allowed), Reason::Window { .. }))
        ));
        // A token from before the disable, still accepted (by a member that lagged the disable).
        assert!(matches!(
            verdict(&changes, read(220, 300, Some(120), Allowed)),
            Some((Some(InvalidToken), Reason::EndedToken { .. }))
        ));
    }

    #[test]
    fn a_password_change_ends_the_tokens_handed_out_before_it() {
        // The password changes in [100, 110]; the permission stays granted.
        let changes = [change(100, 110, Password)];
        let ok = [
            read(50, 90, Some(0), Allowed),
            read(120, 200, Some(0), InvalidToken),
            read(120, 200, Some(112), Allowed),
            // Handed out while the change was in flight, or read while it was: either answer.
            read(120, 200, Some(97), Allowed),
            read(120, 200, Some(97), InvalidToken),
            read(105, 200, Some(0), Allowed),
            read(105, 200, Some(0), InvalidToken),
        ];
        assert_eq!(judged(&changes, &ok), (5, 1));
        // The old token still accepted after the change returned: a member resolved it before
        // its read point, with a copy of the tokens that lagged the change.
        let stale = read(120, 200, Some(0), Allowed);
        let ended = Reason::EndedToken { change: changes[0] };
        assert_eq!(verdict(&changes, stale), Some((Some(InvalidToken), ended)));
        let message = check(&changes, &[stale]).to_string();
        assert!(
            message.contains("Password [0.0, 0.0] ms ended the token"),
            "{message}"
        );
        // A token no change could have ended, refused: a member that had not applied its grant.
        for early in [
            read(120, 200, Some(112), InvalidToken),
            read(20, 30, Some(0), InvalidToken),
        ] {
            assert_eq!(verdict(&changes, early), Some((None, Reason::LiveToken)));
        }
    }
}
