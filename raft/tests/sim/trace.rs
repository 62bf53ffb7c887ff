//! What a run leaves: its trace (hashed, to compare replays) and its counts.

use super::*;

// ---------------------------------------------------------------------------------------------
// The trace and the statistics.

/// What happened in a run, as text: a hash of every line (to compare replays), the last events
/// (to print when a check fails), and with `SIM_TRACE=<seed>` every line of that seed's run on
/// stderr as it happens. Times
/// are simulated.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) start: Instant,
    pub(crate) hash: u64,
    pub(crate) tail: VecDeque<String>,
    pub(crate) print: bool,
}

impl Trace {
    pub(crate) fn new(seed: u64) -> Self {
        let print = env_u64("SIM_TRACE") == Some(seed);
        Self {
            start: Instant::now(),
            hash: FNV_START,
            tail: VecDeque::new(),
            print,
        }
    }

    /// Records a line in the hash (and prints it with `SIM_TRACE`).
    pub(crate) fn detail(&mut self, line: impl Display) -> String {
        let line = format!("{:>8.3}s {line}", self.start.elapsed().as_secs_f64());
        self.hash = fnv(self.hash, line.as_bytes());
        if self.print {
            eprintln!("{line}");
        }
        line
    }

    /// Records a line, and keeps it among the last events.
    pub(crate) fn event(&mut self, line: impl Display) {
        let line = self.detail(line);
        if self.tail.len() == TRACE_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// Counts for the per-seed report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) steps: u64,
    pub(crate) sim_millis: u64,
    pub(crate) leaderships: u64,
    pub(crate) multi_leader_terms: u64,
    pub(crate) writes: u64,
    pub(crate) acked: u64,
    pub(crate) snapshots_built: u64,
    pub(crate) snapshots_sent: u64,
    pub(crate) crashes: u64,
    pub(crate) partitions: u64,
    pub(crate) messages: u64,
    pub(crate) lost: u64,
    pub(crate) lease_grants: u64,
    pub(crate) keep_alives: u64,
    pub(crate) expiries: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        self.sim_millis += other.sim_millis;
        self.leaderships += other.leaderships;
        self.multi_leader_terms += other.multi_leader_terms;
        self.writes += other.writes;
        self.acked += other.acked;
        self.snapshots_built += other.snapshots_built;
        self.snapshots_sent += other.snapshots_sent;
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.messages += other.messages;
        self.lost += other.lost;
        self.lease_grants += other.lease_grants;
        self.keep_alives += other.keep_alives;
        self.expiries += other.expiries;
    }
}

impl Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} steps, {:.1} s simulated, {} leaderships ({} terms with two leaders), {}/{} writes acknowledged, \
             {} snapshots built, {} installed from a leader, {} crashes, {} partitions, {} messages ({} lost), \
             {} leases granted, {} keep-alives, {} expiries",
            self.steps,
            self.sim_millis as f64 / 1000.0,
            self.leaderships,
            self.multi_leader_terms,
            self.acked,
            self.writes,
            self.snapshots_built,
            self.snapshots_sent,
            self.crashes,
            self.partitions,
            self.messages,
            self.lost,
            self.lease_grants,
            self.keep_alives,
            self.expiries,
        )
    }
}

/// What the storage, the network, the client tasks and the driver share: the checker, the trace
/// and the counts.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) checker: Mutex<Checker>,
    pub(crate) trace: Mutex<Trace>,
    pub(crate) stats: Mutex<Stats>,
}

impl World {
    pub(crate) fn event(&self, line: impl Display) {
        self.trace.lock().event(line);
    }

    /// Simulated milliseconds since the seed started.
    pub(crate) fn now_ms(&self) -> u64 {
        self.trace.lock().start.elapsed().as_millis() as u64
    }
}
