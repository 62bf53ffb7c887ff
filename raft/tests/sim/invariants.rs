//! The safety properties the simulation checks after every step ([`Checker`]).

use super::*;

// ---------------------------------------------------------------------------------------------
// The invariants.

/// The first application of an index, which every later one (on any member) must repeat.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) log_id: LogId,
    pub(crate) payload: u64,
    pub(crate) reply: u64,
    pub(crate) by: NodeId,
}

/// The safety properties, fed by the storage (votes, applies), the members' metrics, the clients'
/// answers and the driver (logs, after every step). Violations are collected; the driver stops at
/// the first.
#[derive(Debug)]
pub(crate) struct Checker {
    pub(crate) violations: Vec<String>,
    /// Whether to check vote monotonicity (off to see what a lost vote leads to).
    pub(crate) check_votes: bool,
    /// The last vote each member persisted.
    pub(crate) votes: BTreeMap<NodeId, Vote>,
    /// The vote each member had persisted when it last crashed: it must start again from there.
    pub(crate) floors: BTreeMap<NodeId, Vote>,
    /// The vote each member currently leads with.
    pub(crate) leading: BTreeMap<NodeId, Vote>,
    /// The members that led in each term.
    pub(crate) leaders: BTreeMap<u64, BTreeSet<NodeId>>,
    /// Every log id ever held by any member's log, with its payload's digest.
    pub(crate) entries: BTreeMap<LogId, u64>,
    /// Per index, the entry applied there (so committed) and the reply it gave.
    pub(crate) applied: BTreeMap<u64, Applied>,
    /// Per index, the store's `hash_kv` (hash, compact revision, revision) after applying up to it.
    pub(crate) hashes: BTreeMap<u64, ((u32, i64, i64), NodeId)>,
    /// Every write a client got an answer for.
    pub(crate) acked: Vec<LogId>,
    /// Per member, the indexes at which its log holds the committed entry.
    pub(crate) held: BTreeMap<NodeId, BTreeSet<u64>>,
    /// Acknowledged grants and keep-alives, and applied revocations.
    pub(crate) leases: LeaseHistory,
}

impl Checker {
    pub(crate) fn new(check_votes: bool) -> Self {
        Self {
            violations: Vec::new(),
            check_votes,
            votes: BTreeMap::new(),
            floors: BTreeMap::new(),
            leading: BTreeMap::new(),
            leaders: BTreeMap::new(),
            entries: BTreeMap::new(),
            applied: BTreeMap::new(),
            hashes: BTreeMap::new(),
            acked: Vec::new(),
            held: BTreeMap::new(),
            leases: LeaseHistory::default(),
        }
    }

    pub(crate) fn fail(&mut self, violation: String) {
        self.violations.push(violation);
    }

    /// Election safety, the member's part: each vote it persists is at least its last one.
    pub(crate) fn saved_vote(&mut self, member: NodeId, vote: &Vote) {
        if let Some(last) = self.votes.get(&member) {
            if self.check_votes && below(vote, last) {
                self.fail(format!(
                    "election safety: n{member} persisted vote {vote} after vote {last}"
                ));
            }
        }
        self.votes.insert(member, *vote);
    }

    pub(crate) fn crashed(&mut self, member: NodeId) {
        if let Some(vote) = self.votes.get(&member) {
            self.floors.insert(member, *vote);
        }
        self.leading.remove(&member);
    }

    /// Election safety, as the member acts: after a restart it never votes below what it had
    /// persisted. Returns whether this is a new leadership, to count and trace.
    pub(crate) fn saw_metrics(
        &mut self,
        member: NodeId,
        metrics: &RaftMetrics<SimConfig>,
        stats: &mut Stats,
    ) -> bool {
        if let Some(floor) = self.floors.get(&member) {
            if self.check_votes && below(&metrics.vote, floor) {
                let violation =
                    format!("election safety: n{member} restarted with vote {} below its persisted vote {floor}", metrics.vote);
                self.fail(violation);
            }
        }
        if metrics.state != ServerState::Leader {
            self.leading.remove(&member);
            return false;
        }
        if self.leading.get(&member) == Some(&metrics.vote) {
            return false;
        }
        self.leading.insert(member, metrics.vote);
        let leaders = self.leaders.entry(metrics.current_term).or_default();
        leaders.insert(member);
        stats.leaderships += 1;
        if leaders.len() == 2 {
            stats.multi_leader_terms += 1;
        }
        true
    }

    /// State-machine safety: every member applies the same entry, with the same reply, at an index.
    pub(crate) fn applied(&mut self, member: NodeId, log_id: &LogId, payload: u64, reply: u64) {
        match self.applied.get(&log_id.index) {
            None => {
                let first = Applied {
                    log_id: *log_id,
                    payload,
                    reply,
                    by: member,
                };
                self.applied.insert(log_id.index, first);
            }
            Some(first)
                if first.log_id == *log_id && first.payload == payload && first.reply == reply => {}
            Some(first) => {
                let violation = format!(
                    "state-machine safety: n{member} applied {log_id} (payload {payload:x}, reply {reply:x}) at index {}, \
                     n{} applied {} (payload {:x}, reply {:x})",
                    log_id.index, first.by, first.log_id, first.payload, first.reply
                );
                self.fail(violation);
            }
        }
    }

    /// State-machine safety: the stores agree after applying up to the same index.
    pub(crate) fn store_hash(&mut self, member: NodeId, index: u64, hash: (u32, i64, i64)) {
        match self.hashes.get(&index) {
            None => {
                self.hashes.insert(index, (hash, member));
            }
            Some((first, _)) if *first == hash => {}
            Some((first, by)) => {
                let violation = format!(
                    "state-machine safety: after index {index}, n{member}'s store has hash_kv {hash:?}, n{by}'s {first:?}"
                );
                self.fail(violation);
            }
        }
    }

    /// Durability: a client's answer is what the state machines computed for that entry.
    pub(crate) fn acked(&mut self, member: NodeId, log_id: &LogId, payload: u64, reply: u64) {
        match self.applied.get(&log_id.index) {
            Some(first)
                if first.log_id == *log_id && first.payload == payload && first.reply == reply => {}
            Some(first) => {
                let violation = format!(
                    "durability: n{member} acknowledged {log_id} (payload {payload:x}, reply {reply:x}), \
                     but n{} applied {} (payload {:x}, reply {:x}) there",
                    first.by, first.log_id, first.payload, first.reply
                );
                self.fail(violation);
            }
            None => self.fail(format!(
                "durability: n{member} acknowledged {log_id}, which nobody applied"
            )),
        }
        self.acked.push(*log_id);
    }

    /// Log matching and durability over the logs as they are now: `(log id, payload digest)` per
    /// entry, in index order, per member.
    pub(crate) fn check_logs(&mut self, logs: &BTreeMap<NodeId, LogView>) {
        for (member, view) in logs {
            self.check_committed_kept(*member, view);
            let log = &view.entries;
            if log.first().is_some_and(|(id, _)| id.index != view.first) {
                self.fail(format!(
                    "log matching: n{member}'s log starts at {}, after its purge point",
                    log[0].0
                ));
            }
            for pair in log.windows(2) {
                let (a, b) = (&pair[0].0, &pair[1].0);
                if b.index != a.index + 1 {
                    self.fail(format!(
                        "log matching: n{member}'s log has a hole between {a} and {b}"
                    ));
                }
                if b.leader_id < a.leader_id {
                    self.fail(format!(
                        "log matching: n{member}'s log has {b} after {a}: leader ids go backwards"
                    ));
                }
            }
            for (log_id, payload) in log {
                match self.entries.get(log_id) {
                    None => {
                        self.entries.insert(*log_id, *payload);
                    }
                    Some(first) if first == payload => {}
                    Some(first) => self.fail(format!(
                        "log matching: n{member} holds {log_id} with payload {payload:x}, another log held it with {first:x}"
                    )),
                }
            }
        }
        let members: Vec<_> = logs.iter().collect();
        for (i, (a, log_a)) in members.iter().enumerate() {
            for (b, log_b) in &members[i + 1..] {
                if let Some(violation) = mismatch(log_a, log_b) {
                    self.fail(format!("log matching: n{a} and n{b}: {violation}"));
                }
            }
        }
    }

    /// Durability: a committed entry, once in a member's log, stays there until purged (a stale
    /// member may hold another entry at a committed index, until its leader replaces it).
    pub(crate) fn check_committed_kept(&mut self, member: NodeId, view: &LogView) {
        let held = self.held.entry(member).or_default();
        held.retain(|&index| index >= view.first);
        let mut lost = Vec::new();
        for &index in held.iter() {
            let committed = self.applied[&index].log_id;
            let now = view.at(index);
            if now != Some(committed) {
                lost.push(format!(
                    "durability: n{member}'s log lost committed entry {committed} (now {now:?})"
                ));
            }
        }
        for (log_id, _) in &view.entries {
            if self
                .applied
                .get(&log_id.index)
                .is_some_and(|applied| applied.log_id == *log_id)
            {
                held.insert(log_id.index);
            }
        }
        for violation in lost {
            self.fail(violation);
        }
    }
}

/// A member's log as the checks see it: its entries (from `first` on, the index after its purge
/// point), each with its payload's digest.
#[derive(Debug)]
pub(crate) struct LogView {
    pub(crate) first: u64,
    pub(crate) entries: Vec<(LogId, u64)>,
}

impl LogView {
    pub(crate) fn at(&self, index: u64) -> Option<LogId> {
        let offset = index.checked_sub(self.entries.first()?.0.index)?;
        self.entries.get(offset as usize).map(|(id, _)| *id)
    }
}

/// Whether `vote` is not at least `than` (lower, or not comparable).
pub(crate) fn below(vote: &Vote, than: &Vote) -> bool {
    !matches!(
        vote.partial_cmp(than),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

/// Where two contiguous logs break the log matching property: below the highest index at which
/// they hold the same log id, they must hold the same log ids wherever both have entries.
pub(crate) fn mismatch(a: &LogView, b: &LogView) -> Option<String> {
    let low = a.entries.first()?.0.index.max(b.entries.first()?.0.index);
    let high = a.entries.last()?.0.index.min(b.entries.last()?.0.index);
    let mut matched: Option<LogId> = None;
    for index in (low..=high).rev() {
        let (x, y) = (a.at(index), b.at(index));
        match (&matched, x == y) {
            (None, true) => matched = x,
            (Some(top), false) => {
                return Some(format!(
                    "both hold {top}, but differ at index {index}: {x:?} / {y:?}"
                ))
            }
            _ => {}
        }
    }
    None
}
