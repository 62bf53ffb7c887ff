//! The scheduling queue, as kube-scheduler's `PriorityQueue`
//! (`pkg/scheduler/internal/queue/scheduling_queue.go`), pure: time is always an argument.
//!
//! Three places hold a pod: activeQ (ordered by priority, then by the time it was queued,
//! as the PrioritySort plugin does), backoffQ (ordered by backoff expiry: 1 s after the
//! first attempt, doubling per attempt, capped at 10 s — `--pod-initial-backoff-seconds`,
//! `--pod-max-backoff-seconds`) and the unschedulable map (pods that failed and wait for a
//! cluster event; flushed back after 5 minutes). A popped pod is "in flight" until the
//! caller reports the outcome with `add_unschedulable`, `add_backoff` or `delete`.
//!
//! Deliberately left out: QueueingHints (every event moves every unschedulable pod),
//! scheduling gates, nominated pods, `Activate`. The 5-minute flush fires exactly at
//! 5 minutes (`>=`) instead of on Kubernetes' 30 s timer so `next_wake` is exact.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Queue timing parameters (kube-scheduler defaults via `Default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Backoff after the first failed attempt (`podInitialBackoffSeconds`, 1 s).
    pub initial_backoff: Duration,
    /// Backoff cap (`podMaxBackoffSeconds`, 10 s).
    pub max_backoff: Duration,
    /// Longest stay in the unschedulable map (`podMaxInUnschedulablePodsDuration`, 5 min).
    pub max_in_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        }
    }
}

impl QueueConfig {
    /// `calculateBackoffDuration`: 0 before any attempt, then initial * 2^(attempts-1),
    /// capped at max.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            if d > self.max_backoff.saturating_sub(d) {
                return self.max_backoff;
            }
            d += d;
        }
        d
    }
}

/// Where a queued pod currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In activeQ, ready to pop.
    Active,
    /// In backoffQ until the given time.
    Backoff(Timestamp),
    /// In the unschedulable map.
    Unschedulable,
    /// Popped; its scheduling attempt is under way.
    InFlight,
}

#[derive(Debug, Clone)]
struct Entry {
    priority: i32,
    timestamp: Timestamp,
    attempts: u32,
    place: Place,
    seq: u64,
    popped_cycle: u64,
}

type ActiveKey<K> = (Reverse<i32>, Timestamp, u64, K);

/// kube-scheduler's PriorityQueue over keys `K` (e.g. "namespace/name").
#[derive(Debug, Clone)]
pub struct SchedulingQueue<K: Ord + Clone> {
    cfg: QueueConfig,
    entries: BTreeMap<K, Entry>,
    active: BTreeSet<ActiveKey<K>>,
    backoff: BTreeSet<(Timestamp, u64, K)>,
    unschedulable: BTreeSet<(Timestamp, u64, K)>,
    scheduling_cycle: u64,
    move_request_cycle: Option<u64>,
    next_seq: u64,
}

impl<K: Ord + Clone> Default for SchedulingQueue<K> {
    fn default() -> Self {
        Self::new(QueueConfig::default())
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

impl<K: Ord + Clone> SchedulingQueue<K> {
    /// An empty queue.
    pub fn new(cfg: QueueConfig) -> Self {
        SchedulingQueue {
            cfg,
            entries: BTreeMap::new(),
            active: BTreeSet::new(),
            backoff: BTreeSet::new(),
            unschedulable: BTreeSet::new(),
            scheduling_cycle: 0,
            move_request_cycle: None,
            next_seq: 0,
        }
    }

    fn detach(&mut self, key: &K) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        match e.place {
            Place::Active => {
                self.active
                    .remove(&(Reverse(e.priority), e.timestamp, e.seq, key.clone()));
            }
            Place::Backoff(at) => {
                self.backoff.remove(&(at, e.seq, key.clone()));
            }
            Place::Unschedulable => {
                self.unschedulable
                    .remove(&(e.timestamp, e.seq, key.clone()));
            }
            Place::InFlight => {}
        }
        Some(e)
    }

    fn place(&mut self, key: K, mut e: Entry, place: Place) {
        e.place = place;
        match place {
            Place::Active => {
                self.active
                    .insert((Reverse(e.priority), e.timestamp, e.seq, key.clone()));
            }
            Place::Backoff(at) => {
                self.backoff.insert((at, e.seq, key.clone()));
            }
            Place::Unschedulable => {
                self.unschedulable.insert((e.timestamp, e.seq, key.clone()));
            }
            Place::InFlight => {}
        }
        self.entries.insert(key, e);
    }

    fn backoff_expiry(&self, e: &Entry) -> Timestamp {
        add(e.timestamp, self.cfg.backoff_duration(e.attempts))
    }

    /// Active, or Backoff when its backoff has not expired at `now` (`isPodBackingoff`).
    fn active_or_backoff(&self, e: &Entry, now: Timestamp) -> Place {
        let at = self.backoff_expiry(e);
        if at > now {
            Place::Backoff(at)
        } else {
            Place::Active
        }
    }

    /// `Add`: a new pending pod goes to activeQ, queued at `now`, with 0 attempts
    /// (replacing any previous entry for the key).
    pub fn add(&mut self, key: K, priority: i32, now: Timestamp) {
        self.detach(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        let e = Entry {
            priority,
            timestamp: now,
            attempts: 0,
            place: Place::Active,
            seq,
            popped_cycle: 0,
        };
        self.place(key, e, Place::Active);
    }

    /// `Update`: the pod changed. In activeQ/backoffQ its priority is updated in place; in
    /// the unschedulable map it moves to backoffQ or activeQ (the change may make it
    /// schedulable); in flight, it will be requeued instead of parked when its attempt
    /// fails; unknown keys are added as new.
    pub fn update(&mut self, key: K, priority: i32, now: Timestamp) {
        let Some(mut e) = self.detach(&key) else {
            self.add(key, priority, now);
            return;
        };
        e.priority = priority;
        let place = match e.place {
            Place::Unschedulable => self.active_or_backoff(&e, now),
            Place::InFlight => {
                e.popped_cycle = 0;
                Place::InFlight
            }
            p => p,
        };
        self.place(key, e, place);
    }

    /// `Delete`: forgets the key wherever it is (also after a successful bind).
    /// Returns false when unknown.
    pub fn delete(&mut self, key: &K) -> bool {
        self.detach(key).is_some()
    }

    /// Moves expired backoffs to activeQ and flushes pods that stayed 5 minutes in the
    /// unschedulable map (`flushBackoffQCompleted`, `flushUnschedulablePodsLeftover`).
    pub fn flush(&mut self, now: Timestamp) {
        while let Some((at, _, key)) = self.backoff.first().cloned() {
            if at > now {
                break;
            }
            if let Some(e) = self.detach(&key) {
                self.place(key, e, Place::Active);
            }
        }
        let mut leftover = Vec::new();
        for (ts, _, key) in &self.unschedulable {
            if add(*ts, self.cfg.max_in_unschedulable) > now {
                break;
            }
            leftover.push(key.clone());
        }
        if !leftover.is_empty() {
            self.move_to_active_or_backoff(leftover, now);
        }
    }

    fn move_to_active_or_backoff(&mut self, keys: Vec<K>, now: Timestamp) {
        for key in keys {
            if let Some(e) = self.detach(&key) {
                let place = self.active_or_backoff(&e, now);
                self.place(key, e, place);
            }
        }
        self.move_request_cycle = Some(self.scheduling_cycle);
    }

    /// `Pop`: flushes (see `flush`), then takes the highest-priority, longest-queued pod
    /// from activeQ, counts an attempt and marks it in flight. `None` when activeQ is empty.
    pub fn pop(&mut self, now: Timestamp) -> Option<K> {
        self.flush(now);
        let (_, _, _, key) = self.active.pop_first()?;
        let mut e = self.entries.remove(&key)?;
        self.scheduling_cycle += 1;
        e.attempts += 1;
        e.popped_cycle = self.scheduling_cycle;
        self.place(key.clone(), e, Place::InFlight);
        Some(key)
    }

    /// `AddUnschedulableIfNotPresent` after a failed attempt (no node fits): the pod waits
    /// in the unschedulable map for a cluster event, unless an event arrived while it
    /// was in flight, in which case it goes to backoffQ (or activeQ if its backoff is
    /// already over). `attempts` is the attempt count (as `attempts()` reports after
    /// `pop`). Returns false when the key is not in flight.
    pub fn add_unschedulable(&mut self, key: K, attempts: u32, now: Timestamp) -> bool {
        self.requeue(key, attempts, now, false)
    }

    /// Requeue after an error (API failure, bind failure): the pod goes to backoffQ with
    /// the backoff of `attempts` (activeQ when that is 0). Returns false when the key is
    /// not in flight.
    pub fn add_backoff(&mut self, key: K, attempts: u32, now: Timestamp) -> bool {
        self.requeue(key, attempts, now, true)
    }

    fn requeue(&mut self, key: K, attempts: u32, now: Timestamp, force_backoff: bool) -> bool {
        match self.entries.get(&key) {
            Some(e) if e.place == Place::InFlight => {}
            _ => return false,
        }
        let Some(mut e) = self.detach(&key) else {
            return false;
        };
        e.attempts = attempts;
        e.timestamp = now;
        let event_since_pop =
            e.popped_cycle == 0 || self.move_request_cycle.is_some_and(|m| m >= e.popped_cycle);
        let place = if force_backoff || event_since_pop {
            self.active_or_backoff(&e, now)
        } else {
            Place::Unschedulable
        };
        self.place(key, e, place);
        true
    }

    /// `MoveAllToActiveOrBackoffQueue`: a cluster event (node added or changed, pod
    /// deleted, ...) may make unschedulable pods fit; each goes to backoffQ if still
    /// backing off, else to activeQ. Pods in flight are requeued when they fail.
    pub fn move_all_to_active_or_backoff(&mut self, now: Timestamp) {
        let keys: Vec<K> = self
            .unschedulable
            .iter()
            .map(|(_, _, k)| k.clone())
            .collect();
        self.move_to_active_or_backoff(keys, now);
    }

    /// How long a loop may sleep before `pop` could return something new: zero when
    /// activeQ is non-empty, else the time to the next backoff expiry or unschedulable
    /// flush; `None` when nothing is waiting for time (empty, or only in-flight pods).
    pub fn next_wake(&self, now: Timestamp) -> Option<Duration> {
        if !self.active.is_empty() {
            return Some(Duration::ZERO);
        }
        let b = self.backoff.first().map(|(at, _, _)| *at);
        let u = self
            .unschedulable
            .first()
            .map(|(ts, _, _)| add(*ts, self.cfg.max_in_unschedulable));
        let at = match (b, u) {
            (Some(b), Some(u)) => b.min(u),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return None,
        };
        Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
    }

    /// Scheduling attempts counted for the key (0 when unknown).
    pub fn attempts(&self, key: &K) -> u32 {
        self.entries.get(key).map_or(0, |e| e.attempts)
    }

    /// Where the key is, if queued.
    pub fn place_of(&self, key: &K) -> Option<Place> {
        self.entries.get(key).map(|e| e.place)
    }

    /// Number of keys known (all places, in flight included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sizes of (activeQ, backoffQ, unschedulable map).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.active.len(),
            self.backoff.len(),
            self.unschedulable.len(),
        )
    }
}

#[cfg(test)]
#[path = "queue_test.rs"]
mod tests;
