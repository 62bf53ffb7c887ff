//! Counters for `/metrics`: disk and apply timings of the log and the state machine.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the log and the state machine measure (etcd's names are given where they are rendered).
#[derive(Debug)]
pub struct Metrics {
    /// Durations of one log sync (covering every append queued meanwhile).
    pub wal_fsync_seconds: Histogram,
    /// Appends covered per log sync (group commit).
    pub appends_per_sync: Histogram,
    /// Durations of one state-machine commit (a store batch).
    pub apply_seconds: Histogram,
    /// Entries per state-machine commit.
    pub entries_per_apply: Histogram,
    /// Writes per batch this member forwarded to the leader.
    pub writes_per_forward: Histogram,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: AtomicU64,
    /// The index of the last entry the state machine applied (kept here so that a read can check
    /// it without going through openraft).
    pub applied_index: AtomicU64,
    /// The current term, as last seen.
    pub term: AtomicU64,
    /// The store's size on disk after the last applied batch.
    pub db_size_bytes: AtomicU64,
    /// Leader changes this member has seen (etcd's `leader_changes_seen_total`).
    pub leader_changes: AtomicU64,
    /// Whether this member leads, as last seen.
    pub leading: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let counts = || Histogram::new((0..11).map(|k| f64::from(1u32 << k)).collect());
        Self {
            wal_fsync_seconds: Histogram::default(),
            appends_per_sync: counts(),
            apply_seconds: Histogram::default(),
            entries_per_apply: counts(),
            writes_per_forward: counts(),
            snapshots_installed: AtomicU64::new(0),
            applied_index: AtomicU64::new(0),
            term: AtomicU64::new(0),
            db_size_bytes: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            leading: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// A cumulative histogram with fixed buckets, for Prometheus' text format.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    /// etcd's buckets for disk durations: 1 ms doubling up to ~8 s.
    fn default() -> Self {
        Self::new((0..14).map(|k| 0.001 * f64::from(1u32 << k)).collect())
    }
}

impl Histogram {
    pub fn new(bounds: Vec<f64>) -> Self {
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds,
            counts,
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }

    pub fn observe(&self, v: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if v <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    /// Appends the histogram in Prometheus' text format.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum());
        let _ = writeln!(out, "{name}_count {count}");
    }
}
