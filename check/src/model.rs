//! The per-key model that the search steps: one key of an etcd store, revision-aware.
//!
//! The state is the key's current version (value, create and mod revision, version, lease) or
//! absence, plus `rev`, the highest store revision this key's linearized ops have proven. Every
//! answered op carries a revision, and revisions prune the search hard: a write must create a
//! revision above `rev`, a read must answer at `rev` or later. So a read placed before a write
//! that the store ordered before it fails at once, and for a valid history the search rarely
//! backtracks.
//!
//! Unknown outcomes (the client never heard back): the op may take effect at any point after its
//! call, or never, at a revision nobody told us. Three cases:
//!
//! - A write whose unique value some response showed (a Get, a failed Cas's read, a Range) took
//!   effect, at the `mod_revision` shown. The caller fills that revision in, and the write is
//!   then checked like an acknowledged one, open to the end of the history.
//! - A put (or Cas) whose value nobody saw: an "unseen write". Its value can never be read, so the
//!   only traces it can leave are on later versions of the key: one more in `version`, an earlier
//!   `create_revision` if it re-created the key, a Cas whose expected revision is its revision, a
//!   delete that found the key. Searching over where each one took effect is exponential in
//!   their number (they are all pending to the end), so they are not ops of the search. Instead
//!   every known op carries `unseen_before`: how many unseen writes to the key were called before
//!   it returned, which bounds how many can have taken effect before it. A write then leaves the
//!   version within `[v, v + extra]` (and the create revision within a span when the key was
//!   absent), and the next read pins it down; `pinned` counts the unseen writes that reads proved
//!   took effect, so none is counted twice. This is exact when there are no unseen writes, and
//!   otherwise allows more histories, never fewer: it can miss a version that is off by no more
//!   than the unseen writes still unaccounted for.
//! - A delete or revoke of unknown outcome is an optional op of the search: linearized where it
//!   deletes the key, or never. A revoke is taken for a plain delete (whether the key was
//!   attached to its lease is not checked, and its lease is not remembered as revoked): that
//!   allows more histories, never fewer, and makes all of them interchangeable, which keeps the
//!   search small when many are pending.
//!
//! Reads of unknown outcome have no effect and are dropped before the search.
//!
//! Leases: a revoke deletes the key if the key is attached to the lease. When an unseen put may
//! have been the last write before it (one with that lease attaching it, or any other detaching
//! it), both outcomes are tried. A Put with a
//! lease that was revoked would be refused by the server, so an acknowledged (or observed) one
//! after the revoke is a violation. The model remembers up to 64 revoked leases per key in a bit
//! mask (a lease beyond that is never seen as revoked, which only makes the check weaker).
//!
//! Revisions and versions come from the server, so arithmetic on them saturates rather than
//! panicking on absurd values.

use std::fmt;

use crate::search::{Model, Successors};

mod reject;
pub(crate) use reject::{Field, Reject};

/// A revision known exactly (`lo == hi`) or only within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub(crate) lo: i64,
    pub(crate) hi: i64,
}

impl Span {
    fn exact(r: i64) -> Self {
        Span { lo: r, hi: r }
    }

    fn admits(self, r: i64) -> bool {
        self.lo <= r && r <= self.hi
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lo == self.hi {
            true => write!(f, "{}", self.lo),
            false => write!(f, "{}..={}", self.lo, self.hi),
        }
    }
}

/// The key's current version. `value` is the index of the op that wrote it (values are unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Live {
    pub(crate) value: u32,
    pub(crate) create: Span,
    pub(crate) modified: i64,
    /// The least version possible; up to `extra` more if unseen writes took effect before.
    pub(crate) version: i64,
    pub(crate) extra: u32,
    pub(crate) lease: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct KeyState {
    pub(crate) live: Option<Live>,
    /// The highest store revision proven by the ops linearized so far.
    pub(crate) rev: i64,
    /// The revision at which the key's state was last seen: `rev`, unless a revoke that did not
    /// delete the key moved `rev` since (it shows the store's revision, not the key). Unseen
    /// writes that left traces took effect after it.
    pub(crate) observed: i64,
    /// Revoked leases, as bits assigned per key (see [`KeyOp::Put::lease_bit`]).
    pub(crate) revoked: u64,
    /// Unseen writes that reads proved took effect.
    pub(crate) pinned: u32,
}

/// A key-value pair as a response showed it, with the value replaced by its writer's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) value: u32,
    pub(crate) create: i64,
    pub(crate) modified: i64,
    pub(crate) version: i64,
    pub(crate) lease: i64,
}

/// One op of a key's sub-history, as the model sees it. `unseen_before` is the number of unseen
/// writes to the key called before the op returned (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOp {
    /// A Get, or one key's share of a Range: the key was `seen` (absent: `None`) at `revision`.
    Read { seen: Option<Seen>, revision: i64 },
    /// An acknowledged Put, or one of unknown outcome whose value was seen.
    Put {
        value: u32,
        lease: i64,
        /// The lease's bit in [`KeyState::revoked`] (0: no lease, or not tracked).
        lease_bit: u64,
        revision: i64,
        unseen_before: u32,
    },
    /// A Cas that took effect: acknowledged, or of unknown outcome with its value seen.
    CasApplied {
        expected: i64,
        value: u32,
        revision: i64,
        unseen_before: u32,
    },
    CasFailed {
        expected: i64,
        seen: Option<Seen>,
        revision: i64,
    },
    Delete {
        deleted: bool,
        revision: i64,
        unseen_before: u32,
    },
    /// A delete or a revoke of unknown outcome.
    DeleteUnknown,
    /// An acknowledged revoke of a lease put with this key. `maybe_attached`: an unseen put with
    /// this lease was called before the revoke returned.
    Revoke {
        lease: i64,
        lease_bit: u64,
        revision: i64,
        maybe_attached: bool,
        unseen_before: u32,
    },
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyModel;

impl Model for KeyModel {
    type State = KeyState;
    type Op = KeyOp;
    type Reject = Reject;

    fn step(&self, s: &KeyState, op: &KeyOp) -> Result<Successors<KeyState>, Reject> {
        step(s, op)
    }

    fn optional(&self, op: &KeyOp) -> bool {
        *op == KeyOp::DeleteUnknown
    }

    /// The state without what unseen writes leave uncertain.
    fn skeleton(&self, s: &KeyState) -> KeyState {
        KeyState {
            live: s.live.map(|live| Live {
                create: Span::exact(live.create.hi),
                extra: 0,
                ..live
            }),
            pinned: 0,
            ..*s
        }
    }

    /// Fewer unseen writes accounted for, a wider version range and an earlier possible create
    /// revision only ever allow more.
    fn covers(&self, a: &KeyState, b: &KeyState) -> bool {
        let live = match (a.live, b.live) {
            (Some(a), Some(b)) => a.extra >= b.extra && a.create.lo <= b.create.lo,
            (None, None) => true,
            _ => false,
        };
        live && a.pinned <= b.pinned
    }
}

/// The states `op` may lead to from `s`, or why it cannot be linearized there.
pub(crate) fn step(s: &KeyState, op: &KeyOp) -> Result<Successors<KeyState>, Reject> {
    use Successors::One;
    match *op {
        KeyOp::Read { seen, revision } => read(s, seen, revision).map(One),
        KeyOp::Put {
            value,
            lease,
            lease_bit,
            revision,
            unseen_before,
        } => {
            if s.revoked & lease_bit != 0 {
                return Err(Reject::LeaseRevoked { lease });
            }
            put(s, value, lease, revision, unseen_before).map(One)
        }
        KeyOp::CasApplied {
            expected,
            value,
            revision,
            unseen_before,
        } => cas_applied(s, expected, value, revision, unseen_before).map(One),
        KeyOp::CasFailed {
            expected,
            seen,
            revision,
        } => {
            let actual = mod_revision(s);
            if actual == expected {
                return Err(Reject::Compare {
                    expected,
                    actual,
                    succeeded: false,
                });
            }
            // An unseen write just before could have made the compare fail, but then the Cas
            // would have read that write's value, which nobody saw.
            read(s, seen, revision).map(One)
        }
        KeyOp::Delete {
            deleted,
            revision,
            unseen_before,
        } => delete(s, deleted, revision, unseen_before).map(One),
        KeyOp::DeleteUnknown => Ok(One(match s.live {
            Some(_) => KeyState {
                live: None,
                rev: s.rev.saturating_add(1),
                observed: s.rev.saturating_add(1),
                ..*s
            },
            None => *s,
        })),
        KeyOp::Revoke {
            lease,
            lease_bit,
            revision,
            maybe_attached,
            unseen_before,
        } => {
            // An unseen write just before may have attached the lease, or replaced the value
            // that carried it.
            let maybe_detached = unpinned(s, unseen_before) > 0;
            revoke(
                s,
                lease,
                lease_bit,
                revision,
                maybe_attached,
                maybe_detached,
            )
        }
    }
}

fn mod_revision(s: &KeyState) -> i64 {
    s.live.map_or(0, |live| live.modified)
}

/// Unseen writes that may have taken effect before an op with `unseen_before`, beyond those
/// already pinned.
fn unpinned(s: &KeyState, unseen_before: u32) -> u32 {
    unseen_before.saturating_sub(s.pinned)
}

/// A put at `revision`, with unseen writes possibly before it.
fn put(
    s: &KeyState,
    value: u32,
    lease: i64,
    revision: i64,
    unseen_before: u32,
) -> Result<KeyState, Reject> {
    if revision <= s.rev {
        return Err(Reject::WriteNotAfter {
            revision,
            proven: s.rev,
        });
    }
    let extra = unpinned(s, unseen_before);
    let live = match s.live {
        Some(old) => Live {
            value,
            create: old.create,
            modified: revision,
            version: old.version.saturating_add(1),
            extra,
            lease,
        },
        None => Live {
            value,
            // Unseen writes after `rev` may have re-created the key.
            create: match extra {
                0 => Span::exact(revision),
                _ => Span {
                    lo: s.observed.saturating_add(1),
                    hi: revision,
                },
            },
            modified: revision,
            version: 1,
            extra,
            lease,
        },
    };
    Ok(KeyState {
        live: Some(live),
        rev: revision,
        observed: revision,
        ..*s
    })
}

/// A Cas that succeeded: its compare held, or an unseen write created the revision it expected.
fn cas_applied(
    s: &KeyState,
    expected: i64,
    value: u32,
    revision: i64,
    unseen_before: u32,
) -> Result<KeyState, Reject> {
    let actual = mod_revision(s);
    if actual == expected {
        // Nothing was written between the version compared and the Cas, so no unseen write
        // either: the version is as uncertain as it was, no more.
        let extra = s.live.map_or(0, |live| live.extra);
        return put(s, value, 0, revision, s.pinned.saturating_add(extra));
    }
    let fits_unseen =
        expected > s.observed && expected < revision && unpinned(s, unseen_before) > 0;
    if !fits_unseen {
        return Err(Reject::Compare {
            expected,
            actual,
            succeeded: true,
        });
    }
    // The unseen write at `expected`, then the Cas on top of it.
    let unseen = match s.live {
        Some(live) => Live {
            modified: expected,
            version: live.version.saturating_add(1),
            ..live
        },
        None => Live {
            value,
            create: Span {
                lo: s.observed.saturating_add(1),
                hi: expected,
            },
            modified: expected,
            version: 1,
            extra: 0,
            lease: 0,
        },
    };
    let after_unseen = KeyState {
        live: Some(unseen),
        rev: s.rev.max(expected),
        observed: expected,
        pinned: s.pinned.saturating_add(1),
        ..*s
    };
    put(&after_unseen, value, 0, revision, unseen_before)
}

/// A read at `revision` that saw `seen`; it pins down what unseen writes left uncertain.
fn read(s: &KeyState, seen: Option<Seen>, revision: i64) -> Result<KeyState, Reject> {
    if revision < s.rev {
        return Err(Reject::ReadBefore {
            revision,
            proven: s.rev,
        });
    }
    let (live, pinned) = match (s.live, seen) {
        (None, None) => (None, s.pinned),
        (None, Some(_)) => return Err(Reject::SawAbsentKey),
        (Some(_), None) => return Err(Reject::MissedLiveKey),
        (Some(live), Some(seen)) => {
            let (live, newly_pinned) = matches(live, seen, revision)?;
            (Some(live), s.pinned.saturating_add(newly_pinned))
        }
    };
    Ok(KeyState {
        live,
        rev: revision,
        observed: revision,
        pinned,
        ..*s
    })
}

/// `live` pinned down to what `seen` shows, and how many unseen writes that proves, if `seen`
/// can be `live`.
fn matches(live: Live, seen: Seen, revision: i64) -> Result<(Live, u32), Reject> {
    let mismatch = |field, seen, state| Err(Reject::Mismatch { field, seen, state });
    if live.value != seen.value {
        return Err(Reject::OtherValue {
            seen: seen.value,
            state: live.value,
        });
    }
    if live.lease != seen.lease {
        return mismatch(Field::Lease, seen.lease, Span::exact(live.lease));
    }
    if live.modified != seen.modified || seen.modified > revision {
        return mismatch(
            Field::ModRevision,
            seen.modified,
            Span::exact(live.modified),
        );
    }
    let versions = Span {
        lo: live.version,
        hi: live.version.saturating_add(i64::from(live.extra)),
    };
    if !versions.admits(seen.version) {
        return mismatch(Field::Version, seen.version, versions);
    }
    // Version 1 is the put that created the key; later ones come after it.
    let create_fits = match seen.version {
        1 => seen.create == seen.modified,
        _ => seen.create < seen.modified,
    };
    if !live.create.admits(seen.create) || !create_fits {
        return mismatch(Field::CreateRevision, seen.create, live.create);
    }
    let pinned = Live {
        create: Span::exact(seen.create),
        version: seen.version,
        extra: 0,
        ..live
    };
    // `admits` above bounds the difference by `extra`, a u32.
    let newly_pinned = u32::try_from(seen.version.saturating_sub(live.version)).unwrap_or(u32::MAX);
    Ok((pinned, newly_pinned))
}

fn delete(
    s: &KeyState,
    deleted: bool,
    revision: i64,
    unseen_before: u32,
) -> Result<KeyState, Reject> {
    if !deleted {
        // Deleting nothing creates no revision, so it is a read of absence.
        if s.live.is_some() {
            return Err(Reject::Deleted { reported: false });
        }
        if revision < s.rev {
            return Err(Reject::ReadBefore {
                revision,
                proven: s.rev,
            });
        }
        return Ok(KeyState {
            rev: revision,
            observed: revision,
            ..*s
        });
    }
    let pinned = match s.live {
        Some(_) => s.pinned,
        // An unseen write re-created the key at a revision in between.
        None if revision > s.observed.saturating_add(1) && unpinned(s, unseen_before) > 0 => {
            s.pinned.saturating_add(1)
        }
        None => return Err(Reject::Deleted { reported: true }),
    };
    if revision <= s.rev {
        return Err(Reject::WriteNotAfter {
            revision,
            proven: s.rev,
        });
    }
    Ok(KeyState {
        live: None,
        rev: revision,
        observed: revision,
        pinned,
        ..*s
    })
}

fn revoke(
    s: &KeyState,
    lease: i64,
    lease_bit: u64,
    revision: i64,
    maybe_attached: bool,
    maybe_detached: bool,
) -> Result<Successors<KeyState>, Reject> {
    let attached = s.live.is_some_and(|live| live.lease == lease);
    let revoked = s.revoked | lease_bit;
    let deleted = KeyState {
        live: None,
        rev: revision,
        observed: revision,
        revoked,
        ..*s
    };
    if s.revoked & lease_bit != 0 {
        return Err(Reject::LeaseRevoked { lease });
    }
    let deleting = (attached || (maybe_attached && s.live.is_some())) && revision > s.rev;
    let keeping = (!attached || maybe_detached) && revision >= s.rev;
    // Not deleting shows only the store's revision: an unseen write may be what it counts.
    let kept = KeyState {
        rev: revision,
        revoked,
        ..*s
    };
    match (deleting, keeping) {
        (true, true) => Ok(Successors::Two(deleted, kept)),
        (true, false) => Ok(Successors::One(deleted)),
        (false, true) => Ok(Successors::One(kept)),
        (false, false) if attached => Err(Reject::WriteNotAfter {
            revision,
            proven: s.rev,
        }),
        (false, false) => Err(Reject::ReadBefore {
            revision,
            proven: s.rev,
        }),
    }
}

#[cfg(test)]
#[path = "model_test.rs"]
mod tests;
