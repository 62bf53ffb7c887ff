//! Checkers for histories recorded against an etcd-API server (Ballast or etcd itself).
//!
//! A chaos test records every request its clients made ([`Operation`]) and every event its
//! watches delivered ([`Watch`]), then asks two questions:
//!
//! - [`check_linearizable`]: could the key-value operations have happened one at a time, each at
//!   some instant between its call and its return, in an order that a single etcd would produce?
//!   It runs cheap whole-history checks first (every response on its own, distinct write
//!   revisions, revisions never going back in real time) and then porcupine's search once per key.
//! - [`check_watches`]: is every watch stream ordered, free of gaps and duplicates, and in
//!   agreement with the key-value history and with every other watch?
//!
//! Code map (each module says why it is built the way it is):
//!
//! | module | what it owns |
//! |---|---|
//! | `history` | The recorded input types (the harness codes against them). |
//! | `index` | Facts about a history that every check needs: who wrote each unique value, what was observed, which key each lease belongs to. |
//! | `responses` | Checks of each response on its own (reads return written values of the right key, ranges are sorted and in range). |
//! | `order` | Whole-history revision checks: distinct write revisions, no revision going back in real time. |
//! | `partition` | Splitting the history into one sub-history per key, multi-key ranges projected onto each key. |
//! | `model` | The revision-aware per-key model that the search steps. |
//! | `search` | Porcupine's search (Wing & Gong with Lowe's memoization), generic over a model. |
//! | `linearizable` | [`check_linearizable`]: runs the above in order and explains a failure. |
//! | `watch` | [`check_watches`]. |
//! | `leases` | [`check_leases`]: keys of kept-alive leases stay, one lock holder at a time. |
//! | `permissions` | [`check_permissions`]: each read allowed or refused by the auth state at its read point (permission granted, auth on or off), and a token ended by a password change or an auth disable refused. |
//! | `result`, `report` | The verdicts and their human-readable form. |
//!
//! Architecture invariant: this crate is pure logic over recorded values. It never talks to a
//! server and depends on no other Ballast crate, so it can judge etcd itself just as well.

mod bitset;
mod hash;
pub mod history;
mod index;
mod keyrange;
pub mod leases;
mod linearizable;
mod model;
mod order;
mod partition;
pub mod permissions;
mod report;
mod responses;
mod result;
mod search;
mod watch;

pub use history::{EventKind, Input, Kv, Nanos, Operation, Output, Watch, WatchEvent};
pub use leases::{check_leases, KeysRead, LeaseResult, LeaseSession, LockHold};
pub use linearizable::check_linearizable;
pub use permissions::{
    check_permissions, AuthChange, AuthState, ChangeKind, GuardedRead, PermissionResult,
    ReadOutcome, TokenIssue,
};
pub use result::{LinResult, Unsupported, WatchResult};
pub use watch::check_watches;
