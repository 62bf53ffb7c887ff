//! Leases: the in-memory lessor (ids, TTLs, deadlines, attached keys) and the clock it reads.
//! The store persists grants and attachments; deadlines live only in memory and are extended on
//! reopen (and, later, when a member becomes leader), as etcd does.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::types::{LeaseId, Millis};

/// etcd's `MaxLeaseTTL`: 9,000,000,000 seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// The caller-supplied time source. The store only compares readings of it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Millis;
}

/// Milliseconds since the clock was made, from `Instant`.
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Millis {
        self.origin.elapsed().as_millis() as Millis
    }
}

/// A clock moved by hand, for tests and simulations.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn advance(&self, ms: Millis) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, ms: Millis) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// The granted TTL in seconds (after raising to the minimum).
    pub ttl: i64,
    pub deadline: Millis,
    pub keys: BTreeSet<Bytes>,
}

#[derive(Debug, Default)]
pub(crate) struct Lessor {
    pub leases: HashMap<LeaseId, Lease>,
}

impl Lessor {
    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn grant(&mut self, id: LeaseId, ttl: i64, now: Millis) {
        self.leases.insert(
            id,
            Lease {
                ttl,
                deadline: deadline(now, ttl),
                keys: BTreeSet::new(),
            },
        );
    }

    pub fn attach(&mut self, id: LeaseId, key: Bytes) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key);
        }
    }

    pub fn detach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    /// Restarts one lease's countdown; returns its TTL, or `None` if there is no such lease or it
    /// has expired. An expired lease is being revoked (its revocation may be on its way through
    /// the log): renewing it would tell the client a TTL for a lease about to vanish. etcd's
    /// `Renew` waits for that revocation and answers "lease not found"; this answers it at once.
    pub fn keep_alive(&mut self, id: LeaseId, now: Millis) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        if lease.deadline <= now {
            return None;
        }
        lease.deadline = deadline(now, lease.ttl);
        Some(lease.ttl)
    }

    /// Restarts every lease's countdown from `now`.
    pub fn extend_all(&mut self, now: Millis) {
        for lease in self.leases.values_mut() {
            lease.deadline = deadline(now, lease.ttl);
        }
    }

    pub fn expired(&self, now: Millis) -> Vec<LeaseId> {
        let mut ids: Vec<_> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn deadline(now: Millis, ttl_secs: i64) -> Millis {
    now.saturating_add((ttl_secs.max(0) as u64).saturating_mul(1000))
}
