//! Controller expectations: what creates and deletes a controller waits to see
//! in its informer before it trusts the cache again.
//!
//! Copies `ControllerExpectations` and `UIDTrackingControllerExpectations` of
//! pkg/controller/controller_utils.go, with the clock passed in (`now`) instead
//! of read. Not synchronised: the integrator keeps one instance behind a
//! `Mutex` shared by the reconciler and the pod event handlers.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `controller.ExpectationsTimeout`: expectations older than this are treated
/// as satisfied, so a dropped watch event cannot stall a controller forever.
pub const EXPECTATIONS_TIMEOUT: SignedDuration = SignedDuration::from_secs(5 * 60);

/// Pending adds / deletes of one controller (`ControlleeExpectations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlleeExpectations {
    /// Creations still expected (may go negative, as upstream).
    pub add: i64,
    /// Deletions still expected (may go negative, as upstream).
    pub del: i64,
    /// When the expectations were last set.
    pub timestamp: Timestamp,
}

impl ControlleeExpectations {
    /// `Fulfilled`: no creation and no deletion is pending.
    pub fn fulfilled(&self) -> bool {
        self.add <= 0 && self.del <= 0
    }

    /// `isExpired`: strictly more than [`EXPECTATIONS_TIMEOUT`] since they were set.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.duration_since(self.timestamp) > EXPECTATIONS_TIMEOUT
    }
}

/// Expectations of every controller, keyed by the controller's
/// `namespace/name` (`UIDTrackingControllerExpectations` wrapping
/// `ControllerExpectations`): counts for creations, and the exact pod keys
/// (`namespace/name`) for deletions so that a graceful delete (update that
/// sets deletionTimestamp) followed by the real delete is counted once.
#[derive(Debug, Clone, Default)]
pub struct ControllerExpectations {
    counts: HashMap<String, ControlleeExpectations>,
    deletions: HashMap<String, BTreeSet<String>>,
}

impl ControllerExpectations {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pending counts of `key`, if any were recorded (`GetExpectations`).
    pub fn get(&self, key: &str) -> Option<&ControlleeExpectations> {
        self.counts.get(key)
    }

    /// The pod keys whose deletion `key` still waits for (`GetUIDs`).
    pub fn pending_deletions(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.deletions.get(key)
    }

    /// Decides whether controller `key` may act on its cache
    /// (`SatisfiedExpectations`): true when nothing was recorded, when all
    /// recorded adds/deletes were observed, or when they expired.
    pub fn satisfied(&self, key: &str, now: Timestamp) -> bool {
        match self.counts.get(key) {
            None => true,
            Some(e) => e.fulfilled() || e.is_expired(now),
        }
    }

    /// When the expectations of `key` expire (and count as satisfied even if
    /// unobserved); `None` when none are recorded. Handy for a requeue.
    pub fn expires_at(&self, key: &str) -> Option<Timestamp> {
        let e = self.counts.get(key)?;
        e.timestamp.checked_add(EXPECTATIONS_TIMEOUT).ok()
    }

    /// `SetExpectations`: replaces the counts of `key`, stamped `now`.
    pub fn set_expectations(&mut self, key: &str, add: i64, del: i64, now: Timestamp) {
        self.counts.insert(
            key.to_string(),
            ControlleeExpectations {
                add,
                del,
                timestamp: now,
            },
        );
    }

    /// `ExpectCreations`: `key` is about to create `adds` pods (replaces any
    /// earlier counts, deletions set to 0).
    pub fn expect_creations(&mut self, key: &str, adds: usize, now: Timestamp) {
        self.set_expectations(key, to_i64(adds), 0, now);
    }

    /// `UIDTrackingControllerExpectations.ExpectDeletions`: `key` is about to
    /// delete the pods with these `namespace/name` keys (replaces the tracked
    /// set and the counts: adds 0, deletions = distinct keys).
    pub fn expect_deletions(&mut self, key: &str, pod_keys: &[String], now: Timestamp) {
        let set: BTreeSet<String> = pod_keys.iter().cloned().collect();
        let n = to_i64(set.len());
        self.deletions.insert(key.to_string(), set);
        self.set_expectations(key, 0, n, now);
    }

    /// `LowerExpectations`: subtracts from the counts of `key` if recorded
    /// (the timestamp is kept).
    pub fn lower_expectations(&mut self, key: &str, add: i64, del: i64) {
        if let Some(e) = self.counts.get_mut(key) {
            e.add -= add;
            e.del -= del;
        }
    }

    /// `RaiseExpectations`: adds to the counts of `key` if recorded.
    pub fn raise_expectations(&mut self, key: &str, add: i64, del: i64) {
        self.lower_expectations(key, -add, -del);
    }

    /// `CreationObserved`: one pod created by `key` was seen (or one planned
    /// creation was skipped or failed).
    pub fn creation_observed(&mut self, key: &str) {
        self.lower_expectations(key, 1, 0);
    }

    /// `UIDTrackingControllerExpectations.DeletionObserved`: the pod `pod_key`
    /// (`namespace/name`) was seen deleted or terminating, or its delete call
    /// failed. Counts only if `key` was waiting for that pod, and only once.
    pub fn deletion_observed(&mut self, key: &str, pod_key: &str) {
        let removed = self
            .deletions
            .get_mut(key)
            .is_some_and(|set| set.remove(pod_key));
        if removed {
            self.lower_expectations(key, 0, 1);
        }
    }

    /// `DeleteExpectations`: forgets everything about `key` (the controller
    /// was deleted, so a new one with the same name starts clean).
    pub fn delete_expectations(&mut self, key: &str) {
        self.counts.remove(key);
        self.deletions.remove(key);
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn unknown_controller_is_satisfied() {
        let e = ControllerExpectations::new();
        assert!(e.satisfied("ns/rs", t(0)));
        assert!(e.get("ns/rs").is_none());
    }

    #[test]
    fn creations_must_all_be_observed() {
        let mut e = ControllerExpectations::new();
        e.expect_creations("ns/rs", 2, t(0));
        assert!(!e.satisfied("ns/rs", t(1)));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs", t(1)));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs", t(1)));
        // Extra observations go negative and stay satisfied.
        e.creation_observed("ns/rs");
        assert_eq!(e.get("ns/rs").map(|x| x.add), Some(-1));
        assert!(e.satisfied("ns/rs", t(1)));
    }

    #[test]
    fn deletions_are_tracked_by_pod_key_and_counted_once() {
        let mut e = ControllerExpectations::new();
        let keys = vec!["ns/a".to_string(), "ns/b".to_string()];
        e.expect_deletions("ns/rs", &keys, t(0));
        assert_eq!(e.get("ns/rs").map(|x| (x.add, x.del)), Some((0, 2)));
        e.deletion_observed("ns/rs", "ns/a");
        // Graceful delete then real delete of the same pod: counted once.
        e.deletion_observed("ns/rs", "ns/a");
        // A pod the controller did not ask to delete does not count.
        e.deletion_observed("ns/rs", "ns/zzz");
        assert!(!e.satisfied("ns/rs", t(1)));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs", t(1)));
        assert!(e.pending_deletions("ns/rs").is_some_and(|s| s.is_empty()));
    }

    #[test]
    fn expire_strictly_after_five_minutes() {
        let mut e = ControllerExpectations::new();
        e.expect_creations("ns/rs", 3, t(0));
        assert!(!e.satisfied("ns/rs", t(300)));
        assert!(e.satisfied("ns/rs", t(301)));
        assert_eq!(e.expires_at("ns/rs"), Some(t(300)));
    }

    #[test]
    fn lowering_for_skipped_creations_satisfies() {
        let mut e = ControllerExpectations::new();
        e.expect_creations("ns/rs", 7, t(0));
        // slow start: batches 1 and 2 succeeded and were observed, batch of 4 failed.
        e.lower_expectations("ns/rs", 4, 0);
        for _ in 0..3 {
            e.creation_observed("ns/rs");
        }
        assert!(e.satisfied("ns/rs", t(1)));
    }

    #[test]
    fn delete_expectations_forgets_everything() {
        let mut e = ControllerExpectations::new();
        e.expect_deletions("ns/rs", &["ns/a".to_string()], t(0));
        e.delete_expectations("ns/rs");
        assert!(e.satisfied("ns/rs", t(0)));
        assert!(e.pending_deletions("ns/rs").is_none());
        // Observations on a forgotten key are no-ops.
        e.creation_observed("ns/rs");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(e.get("ns/rs").is_none());
    }

    #[test]
    fn new_expectations_replace_old_ones_and_raise_works() {
        let mut e = ControllerExpectations::new();
        e.expect_deletions("ns/rs", &["ns/a".to_string()], t(0));
        e.expect_creations("ns/rs", 1, t(10));
        assert_eq!(e.get("ns/rs").map(|x| (x.add, x.del)), Some((1, 0)));
        e.raise_expectations("ns/rs", 1, 0);
        assert_eq!(e.get("ns/rs").map(|x| x.add), Some(2));
        assert_eq!(e.expires_at("ns/rs"), Some(t(310)));
    }
}
