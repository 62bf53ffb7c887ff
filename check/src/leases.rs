//! Lease and lock safety, judged from what clients saw (the model is Jepsen's etcd lock test and
//! etcd's lease guarantee): a lease that answered a keep-alive stays alive at least its TTL from
//! when that keep-alive was sent, and so does every key attached to it; a lock is held by one
//! client at a time while each holder's lease is still guaranteed alive.
//!
//! Why sent, not answered: the leader restarts the countdown when it handles the keep-alive,
//! which is after the client sent it; and a lease never comes back once gone (ids are never
//! reused here), so a lease alive when a keep-alive was handled was alive all the time before.
//! A read linearized before `sent + TTL` must therefore see the key. The read's linearization
//! point is no later than its return, so a read that returned before then is judged; the others
//! prove nothing either way.

use serde::{Deserialize, Serialize};

use crate::history::Nanos;

/// One lease a client held, with its key and what its keep-alives were answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSession {
    pub lease: i64,
    pub ttl_secs: i64,
    pub key: Vec<u8>,
    /// When the put of `key` (on this lease) returned successfully.
    pub attached: Nanos,
    /// Send times of the grant and of every keep-alive answered with TTL > 0.
    pub renewed: Vec<Nanos>,
    /// When the client itself asked to revoke the lease (its key may vanish from then on).
    pub revoke_called: Option<Nanos>,
    /// When a keep-alive answered that the lease no longer exists (TTL 0), if one did.
    pub gone: Option<Nanos>,
}

impl LeaseSession {
    /// Until when (exclusive) the lease, and so its key, is guaranteed to exist.
    pub fn alive_until(&self, allowance: Nanos) -> Nanos {
        let last = self.renewed.iter().copied().max().unwrap_or(0);
        (last + self.ttl_secs.max(0) as u64 * 1_000_000_000).saturating_sub(allowance)
    }
}

/// A linearizable read of every session key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysRead {
    pub call: Nanos,
    pub ret: Nanos,
    pub keys: Vec<Vec<u8>>,
}

/// One time a client held a lock: from when Lock returned to when it called Unlock (or gave
/// up), on a lease that was alive until `alive_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHold {
    pub client: usize,
    pub acquired: Nanos,
    pub released: Nanos,
    /// `LeaseSession::alive_until` of the lease the lock was taken on.
    pub alive_until: Nanos,
    /// The lease id, and when a keep-alive answered that it was gone, if one did.
    pub lease: i64,
    pub gone: Option<Nanos>,
}

impl LockHold {
    /// The time during which this client certainly held the lock.
    fn held(&self) -> (Nanos, Nanos) {
        (self.acquired, self.released.min(self.alive_until))
    }
}

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseResult {
    Ok {
        sessions: usize,
        reads: usize,
        /// Reads that fell within some lease's guaranteed life (so were actually judged).
        judged: usize,
        holds: usize,
    },
    /// A keep-alive answered "no such lease" while the lease was guaranteed alive.
    LeaseGone {
        lease: i64,
        answered: Nanos,
        alive_until: Nanos,
    },
    /// A key missing from a read while its lease was guaranteed alive.
    KeyLost {
        key: Vec<u8>,
        lease: i64,
        read: KeysRead,
        alive_until: Nanos,
    },
    /// Two clients held the lock at once.
    TwoHolders { first: LockHold, second: LockHold },
}

impl std::fmt::Display for LeaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |n: Nanos| n as f64 / 1e6;
        match self {
            LeaseResult::Ok {
                sessions,
                reads,
                judged,
                holds,
            } => write!(
                f,
                "leases OK: {sessions} sessions, {reads} reads ({judged} key checks), {holds} lock holds, 0 violations"
            ),
            LeaseResult::LeaseGone {
                lease,
                answered,
                alive_until,
            } => write!(
                f,
                "a keep-alive of lease {lease:x} answered at {:.1} ms that it was gone, though it was alive until {:.1} ms",
                ms(*answered),
                ms(*alive_until)
            ),
            LeaseResult::KeyLost {
                key,
                lease,
                read,
                alive_until,
            } => write!(
                f,
                "key {:?} of lease {lease:x} missing from a read [{:.1} ms, {:.1} ms] though the lease was alive until {:.1} ms",
                String::from_utf8_lossy(key),
                ms(read.call),
                ms(read.ret),
                ms(*alive_until)
            ),
            LeaseResult::TwoHolders { first, second } => write!(
                f,
                "clients {} and {} held the lock at once: [{:.1}, {:.1}] and [{:.1}, {:.1}] ms",
                first.client,
                second.client,
                ms(first.held().0),
                ms(first.held().1),
                ms(second.held().0),
                ms(second.held().1)
            ),
        }
    }
}

/// Checks every read against every session, then the lock holds against each other.
/// `allowance` is taken off every lease's guaranteed life (scheduling noise between the clock
/// reading and the request leaving).
pub fn check_leases(
    sessions: &[LeaseSession],
    reads: &[KeysRead],
    holds: &[LockHold],
    allowance: Nanos,
) -> LeaseResult {
    let mut judged = 0;
    for s in sessions {
        let until = s.alive_until(allowance);
        if let Some(answered) = s.gone.filter(|&gone| gone < until) {
            return LeaseResult::LeaseGone {
                lease: s.lease,
                answered,
                alive_until: until,
            };
        }
        for r in reads {
            let in_life = r.call >= s.attached
                && r.ret < until
                && s.revoke_called.is_none_or(|revoke| revoke > r.ret);
            if !in_life {
                continue;
            }
            judged += 1;
            if !r.keys.contains(&s.key) {
                return LeaseResult::KeyLost {
                    key: s.key.clone(),
                    lease: s.lease,
                    read: r.clone(),
                    alive_until: until,
                };
            }
        }
    }
    if let Some(h) = holds
        .iter()
        .find(|h| h.gone.is_some_and(|gone| gone < h.alive_until))
    {
        return LeaseResult::LeaseGone {
            lease: h.lease,
            answered: h.gone.unwrap_or_default(),
            alive_until: h.alive_until,
        };
    }
    let mut sorted: Vec<&LockHold> = holds.iter().filter(|h| h.held().0 < h.held().1).collect();
    sorted.sort_by_key(|h| h.held());
    // Sorted by start: an overlap, if any, is with the hold that reaches furthest so far.
    let mut furthest: Option<&LockHold> = None;
    for h in sorted {
        if let Some(f) = furthest {
            if h.held().0 < f.held().1 && h.client != f.client {
                return LeaseResult::TwoHolders {
                    first: f.clone(),
                    second: h.clone(),
                };
            }
        }
        if furthest.is_none_or(|f| h.held().1 > f.held().1) {
            furthest = Some(h);
        }
    }
    LeaseResult::Ok {
        sessions: sessions.len(),
        reads: reads.len(),
        judged,
        holds: holds.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn session(renewed: &[Nanos]) -> LeaseSession {
        LeaseSession {
            lease: 1,
            ttl_secs: 2,
            key: b"session/1".to_vec(),
            attached: S,
            renewed: renewed.to_vec(),
            revoke_called: None,
            gone: None,
        }
    }

    fn read(call: Nanos, ret: Nanos, present: bool) -> KeysRead {
        KeysRead {
            call,
            ret,
            keys: if present {
                vec![b"session/1".to_vec()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn a_key_missing_while_its_lease_was_renewed_is_caught() {
        let s = [session(&[0, 2 * S])];
        // Alive until 4 s: a read at 3 s must see the key, one ending after 4 s need not.
        assert!(matches!(
            check_leases(&s, &[read(3 * S, 3 * S + 10, false)], &[], 0),
            LeaseResult::KeyLost { .. }
        ));
        assert!(matches!(
            check_leases(&s, &[read(3 * S, 4 * S + 10, false)], &[], 0),
            LeaseResult::Ok { judged: 0, .. }
        ));
        assert!(matches!(
            check_leases(&s, &[read(3 * S, 3 * S + 10, true)], &[], 0),
            LeaseResult::Ok { judged: 1, .. }
        ));
        // Before the key was attached, or after the client revoked, nothing is judged.
        assert!(matches!(
            check_leases(&s, &[read(S / 2, S / 2 + 10, false)], &[], 0),
            LeaseResult::Ok { judged: 0, .. }
        ));
        // A keep-alive told "gone" before the last renewal's TTL ran out; after it, fine.
        let mut gone = session(&[0, 2 * S]);
        gone.gone = Some(3 * S);
        assert!(matches!(
            check_leases(&[gone.clone()], &[], &[], 0),
            LeaseResult::LeaseGone { .. }
        ));
        gone.gone = Some(4 * S + 1);
        assert!(matches!(
            check_leases(&[gone], &[], &[], 0),
            LeaseResult::Ok { .. }
        ));
        let mut revoked = session(&[0, 2 * S]);
        revoked.revoke_called = Some(3 * S);
        assert!(matches!(
            check_leases(&[revoked], &[read(3 * S, 3 * S + 10, false)], &[], 0),
            LeaseResult::Ok { judged: 0, .. }
        ));
    }

    fn hold(client: usize, acquired: Nanos, released: Nanos, alive_until: Nanos) -> LockHold {
        LockHold {
            client,
            acquired,
            released,
            alive_until,
            lease: 1,
            gone: None,
        }
    }

    #[test]
    fn two_holders_at_once_are_caught() {
        let ok = [hold(0, 0, S, 10 * S), hold(1, S + 1, 2 * S, 10 * S)];
        assert!(matches!(
            check_leases(&[], &[], &ok, 0),
            LeaseResult::Ok { .. }
        ));
        let overlap = [hold(0, 0, 2 * S, 10 * S), hold(1, S, 3 * S, 10 * S)];
        assert!(matches!(
            check_leases(&[], &[], &overlap, 0),
            LeaseResult::TwoHolders { .. }
        ));
        // A holder whose lease may have expired no longer counts as holding: no violation.
        let expired = [hold(0, 0, 5 * S, S / 2), hold(1, S, 3 * S, 10 * S)];
        assert!(matches!(
            check_leases(&[], &[], &expired, 0),
            LeaseResult::Ok { .. }
        ));
        // An overlap with an earlier, longer hold, not the one just before.
        let nested = [
            hold(0, 0, 10 * S, 20 * S),
            hold(0, S, 2 * S, 20 * S),
            hold(1, 5 * S, 6 * S, 20 * S),
        ];
        assert!(matches!(
            check_leases(&[], &[], &nested, 0),
            LeaseResult::TwoHolders { .. }
        ));
    }
}
