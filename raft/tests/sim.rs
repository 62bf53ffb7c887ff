//! A deterministic simulation of a Ballast raft cluster (issue 6, item 5): 3 or 5 members run
//! openraft on simulated time while the simulation delays, loses and partitions their messages,
//! crashes and restarts them, and sends them writes, and after every step checks raft's safety
//! properties over every member's votes, log and state machine.
//!
//! What is real: openraft itself (the version Ballast pins, with Ballast's log entry, reply, node
//! and leader-id types), and the MVCC store's apply code (`Store::apply_batch`, on the in-memory
//! backend) as the state machine, applying etcd puts, deletes, compare-and-swap transactions and
//! compactions. What is simulated: the raft log (a `BTreeMap` per member that survives its crashes,
//! in place of the RocksDB log of `log_store.rs`), snapshots (a copy of the store's memory backend,
//! in place of the RocksDB checkpoints of `state_machine.rs`) and the network (an in-process router
//! in place of the gRPC transport of `network.rs`). Those three files are not exercised here.
//!
//! Determinism: everything runs on one current-thread tokio runtime with paused time, so which task
//! runs when depends only on the simulated timers and on the order tasks are woken in. openraft
//! draws its randomness (election timeouts, tick jitter) only from `AsyncRuntime::thread_rng`,
//! which `DeterministicRng` seeds from the run's seed, and its internal selects are biased, not
//! random. One thing is random in tokio itself: which receivers of a `watch` channel a change wakes
//! first, so the simulation's runtime ([`SimRuntime`]) gives openraft a watch channel of its own
//! that wakes them in order. The simulation's own choices come from a `StdRng` with the run's seed.
//! A seed therefore replays exactly, in any process: the trace (every event, message and member's
//! state after each step) hashes the same, which `same_seed_replays_identically` checks.
//!
//! Invariants, checked after every step (see [`Checker`]):
//! 1. Election safety. Ballast uses openraft's default leader ids, `(term, node)` and totally
//!    ordered, under which a term may legitimately have several leaders (each granted by a quorum
//!    whose shared voter granted them in increasing order). What makes elections safe is that a
//!    member's vote never goes backwards, across restarts too: checked on every vote it persists
//!    and every state it reports. Terms with more than one leader are counted, not failed.
//! 2. Log matching. A log id names one entry, ever, on every member; two logs that hold the same
//!    log id hold the same entries before it; every log is contiguous and its leader ids never
//!    decrease.
//! 3. State-machine safety. No two members apply different entries (or get different replies) at
//!    an index, across restarts; the stores' `hash_kv` after applying up to an index agree; no
//!    member is asked to install a snapshot older than what it has applied.
//! 4. Durability. An applied (so committed) entry is never replaced in any log; every write a client
//!    got an answer for was applied with exactly that answer; at the end of a seed, with every fault
//!    healed, all members converge to the same store holding every acknowledged write.
//! 5. Health. A member's raft stops only when the simulation crashes it (openraft stops a member
//!    whose storage fails, and its own assertions panic in debug builds).
//!
//! Run with `cargo test -p ballast-raft --test sim -- --nocapture`. `SIM_SEEDS=N` runs N seeds
//! (default [`DEFAULT_SEEDS`]) from `SIM_FIRST_SEED` (default 0), `SIM_STEPS=N` sets the steps per
//! seed (default [`DEFAULT_STEPS`]), `SIM_SEED=S` replays seed `S` alone and prints the last events
//! of its trace if it fails, `SIM_TRACE=S` prints all of seed `S`'s trace as it runs. A debug build
//! and a release build run a seed alike until a debug assertion fires. The planted-bug tests
//! (`catches_*`) show that the checks fail when the storage or the state machine is wrong.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::io;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ballast_raft::codec::{decode, encode};
use ballast_raft::types::{Command, MemberNode, Reply};
use ballast_store::backend::{Backend, Batch, Cursor, MemoryBackend, Space};
use ballast_store::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, MemStore, PutRequest, RangeRequest,
    RequestOp, Store, StoreOptions, TxnRequest, WriteRequest,
};
use futures_util::{Stream, StreamExt};
use openraft::alias::{
    AsyncRuntimeOf, EntryOf, EntryPayloadOf, LogIdOf, SnapshotMetaOf, SnapshotOf,
    StoredMembershipOf, VoteOf,
};
use openraft::async_runtime::watch::{RecvError as WatchRecvError, SendError as WatchSendError};
use openraft::async_runtime::{Watch, WatchReceiver, WatchSender};
use openraft::entry::RaftEntry;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::rt::deterministic_rng::DeterministicRng;
use openraft::storage::{
    EntryResponder, IOFlushed, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine,
};
use openraft::{
    AsyncRuntime, Config, EntryPayload, LogState, OptionalSend, OptionalSync, Raft, RaftLogReader,
    RaftMetrics, RaftNetworkV2, ServerState, SnapshotPolicy,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// Seeds run by default: sized to take well under a minute in a debug build on two cores.
const DEFAULT_SEEDS: u64 = 16;
/// Steps per seed by default (a step is 1-10 ms of simulated time).
const DEFAULT_STEPS: u64 = 2000;
/// Trace lines kept for printing when a check fails.
const TRACE_TAIL: usize = 80;
/// The keys clients write: few, so that writes, deletes and compare-and-swaps collide.
const KEYS: u64 = 5;
/// Client writes in flight at once, at most.
const MAX_IN_FLIGHT: usize = 8;

/// openraft's tokio runtime (the one Ballast's own configuration uses), with its RNG seeded.
type Seeded = DeterministicRng<AsyncRuntimeOf<ballast_raft::types::TypeConfig>>;

openraft::declare_raft_types!(
    /// Ballast's type configuration (`ballast_raft::types::TypeConfig`) on the seeded runtime.
    SimConfig:
        D = Command,
        R = Reply,
        NodeId = u64,
        Node = MemberNode,
        AsyncRuntime = SimRuntime,
);

type NodeId = u64;
type LogId = LogIdOf<SimConfig>;
type Vote = VoteOf<SimConfig>;
type Entry = EntryOf<SimConfig>;
type Payload = EntryPayloadOf<SimConfig>;
type StoredMembership = StoredMembershipOf<SimConfig>;
type SnapshotMeta = SnapshotMetaOf<SimConfig>;
type Snapshot = SnapshotOf<SimConfig, Arc<Image>>;
type SimRaft = Raft<SimConfig, SimStateMachine>;

// ---------------------------------------------------------------------------------------------
// The deterministic runtime.

/// [`Seeded`] with its watch channels replaced by [`FifoWatch`]. tokio's `watch` spreads waiting
/// receivers over eight lists picked by tokio's own RNG, which stable Rust cannot seed (that needs
/// `--cfg tokio_unstable`), so the tasks one change wakes would run in an order that differs from
/// process to process, and so would everything after.
#[derive(Debug)]
struct SimRuntime(Seeded);

impl AsyncRuntime for SimRuntime {
    type JoinError = <Seeded as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Seeded as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Seeded as AsyncRuntime>::Sleep;
    type Instant = <Seeded as AsyncRuntime>::Instant;
    type TimeoutError = <Seeded as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Seeded as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <Seeded as AsyncRuntime>::ThreadLocalRng;
    type Mpsc = <Seeded as AsyncRuntime>::Mpsc;
    type Watch = FifoWatch;
    type Oneshot = <Seeded as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Seeded as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Seeded::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Seeded::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Seeded::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Seeded::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Seeded::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Seeded::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        Seeded::thread_rng()
    }

    fn new(threads: usize) -> Self {
        Self(Seeded::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Seeded::spawn_blocking(f)
    }
}

/// A watch channel (one value, a version, receivers waiting for a newer version) that wakes its
/// waiting receivers in the order they started waiting.
struct FifoWatch;

struct WatchShared<T> {
    value: parking_lot::RwLock<T>,
    state: Mutex<WatchState>,
}

struct WatchState {
    version: u64,
    senders: usize,
    receivers: usize,
    waiting: Vec<std::task::Waker>,
}

impl<T> WatchShared<T> {
    /// Publishes a change: a new version, and every waiting receiver woken, oldest first.
    fn changed(&self) {
        let waiting = {
            let mut state = self.state.lock();
            state.version += 1;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(std::task::Waker::wake);
    }
}

struct FifoSender<T>(Arc<WatchShared<T>>);

struct FifoReceiver<T> {
    shared: Arc<WatchShared<T>>,
    seen: u64,
}

impl<T> Clone for FifoSender<T> {
    fn clone(&self) -> Self {
        self.0.state.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl<T> Drop for FifoSender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.state.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            std::mem::take(&mut state.waiting)
        };
        // The last sender is gone: waiting receivers learn the channel is closed.
        waiting.into_iter().for_each(std::task::Waker::wake);
    }
}

impl<T> Clone for FifoReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().receivers += 1;
        Self {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for FifoReceiver<T> {
    fn drop(&mut self) {
        self.shared.state.lock().receivers -= 1;
    }
}

impl Watch for FifoWatch {
    type Sender<T: OptionalSend + OptionalSync> = FifoSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = FifoReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = parking_lot::RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let state = WatchState {
            version: 0,
            senders: 1,
            receivers: 1,
            waiting: Vec::new(),
        };
        let shared = Arc::new(WatchShared {
            value: parking_lot::RwLock::new(init),
            state: Mutex::new(state),
        });
        (FifoSender(shared.clone()), FifoReceiver { shared, seen: 0 })
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<FifoWatch, T> for FifoSender<T> {
    fn send(&self, value: T) -> Result<(), WatchSendError<T>> {
        // As tokio's: refused, and the value left as it was, once every receiver is gone.
        if self.0.state.lock().receivers == 0 {
            return Err(WatchSendError(value));
        }
        *self.0.value.write() = value;
        self.0.changed();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = modify(&mut self.0.value.write());
        if modified {
            self.0.changed();
        }
        modified
    }

    fn borrow_watched(&self) -> parking_lot::RwLockReadGuard<'_, T> {
        self.0.value.read()
    }

    fn subscribe(&self) -> FifoReceiver<T> {
        let seen = {
            let mut state = self.0.state.lock();
            state.receivers += 1;
            state.version
        };
        FifoReceiver {
            shared: self.0.clone(),
            seen,
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<FifoWatch, T> for FifoReceiver<T> {
    async fn changed(&mut self) -> Result<(), WatchRecvError> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.state.lock();
            if state.version != self.seen {
                self.seen = state.version;
                return std::task::Poll::Ready(Ok(()));
            }
            if state.senders == 0 {
                return std::task::Poll::Ready(Err(WatchRecvError(())));
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await
    }

    fn borrow_watched(&self) -> parking_lot::RwLockReadGuard<'_, T> {
        self.shared.value.read()
    }

    fn borrow_and_update(&mut self) -> parking_lot::RwLockReadGuard<'_, T> {
        let value = self.shared.value.read();
        self.seen = self.shared.state.lock().version;
        value
    }
}

/// Spawns a task on the seeded runtime, so that the task's own randomness is seeded too.
fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    drop(SimRuntime::spawn(task));
}

/// FNV-1a, continuing from `hash`: stable across runs and builds, unlike `DefaultHasher`.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A value's fingerprint: the hash of its encoding (the one members write and send).
fn digest<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    fnv(FNV_START, &encode(value))
}

/// A bug planted in the simulated storage or state machine, to show the checks catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// The log store loses the vote at every crash (a vote written without being synced).
    ForgetVote,
    /// Member 1's state machine applies some puts with another value.
    CorruptApply,
    /// Member 1's log store changes some puts' values as it appends them.
    AlterLogEntry,
}

impl Bug {
    /// Whether `bug` is the one planted and hits this member's entry at `index` (a third of member
    /// 1's entries).
    fn hits(self, bug: Bug, member: NodeId, index: u64) -> bool {
        self == bug && member == 1 && index % 3 == 1
    }
}

/// Gives a put a value its client never sent (for the planted bugs).
fn corrupt(req: &mut WriteRequest) {
    if let WriteRequest::Put(put) = req {
        put.value = format!("corrupted {}", String::from_utf8_lossy(&put.value)).into();
    }
}

// ---------------------------------------------------------------------------------------------
// The trace and the statistics.

/// What happened in a run, as text: a hash of every line (to compare replays), the last events
/// (to print when a check fails), and with `SIM_TRACE=<seed>` every line of that seed's run on
/// stderr as it happens. Times
/// are simulated.
#[derive(Debug)]
struct Trace {
    start: Instant,
    hash: u64,
    tail: VecDeque<String>,
    print: bool,
}

impl Trace {
    fn new(seed: u64) -> Self {
        let print = env_u64("SIM_TRACE") == Some(seed);
        Self {
            start: Instant::now(),
            hash: FNV_START,
            tail: VecDeque::new(),
            print,
        }
    }

    /// Records a line in the hash (and prints it with `SIM_TRACE`).
    fn detail(&mut self, line: impl Display) -> String {
        let line = format!("{:>8.3}s {line}", self.start.elapsed().as_secs_f64());
        self.hash = fnv(self.hash, line.as_bytes());
        if self.print {
            eprintln!("{line}");
        }
        line
    }

    /// Records a line, and keeps it among the last events.
    fn event(&mut self, line: impl Display) {
        let line = self.detail(line);
        if self.tail.len() == TRACE_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// Counts for the per-seed report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Stats {
    steps: u64,
    sim_millis: u64,
    leaderships: u64,
    multi_leader_terms: u64,
    writes: u64,
    acked: u64,
    snapshots_built: u64,
    snapshots_sent: u64,
    crashes: u64,
    partitions: u64,
    messages: u64,
    lost: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
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
    }
}

impl Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} steps, {:.1} s simulated, {} leaderships ({} terms with two leaders), {}/{} writes acknowledged, \
             {} snapshots built, {} installed from a leader, {} crashes, {} partitions, {} messages ({} lost)",
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
        )
    }
}

/// What the storage, the network, the client tasks and the driver share: the checker, the trace
/// and the counts.
#[derive(Debug)]
struct World {
    checker: Mutex<Checker>,
    trace: Mutex<Trace>,
    stats: Mutex<Stats>,
}

impl World {
    fn event(&self, line: impl Display) {
        self.trace.lock().event(line);
    }
}

// ---------------------------------------------------------------------------------------------
// The invariants.

/// The first application of an index, which every later one (on any member) must repeat.
#[derive(Debug)]
struct Applied {
    log_id: LogId,
    payload: u64,
    reply: u64,
    by: NodeId,
}

/// The safety properties, fed by the storage (votes, applies), the members' metrics, the clients'
/// answers and the driver (logs, after every step). Violations are collected; the driver stops at
/// the first.
#[derive(Debug)]
struct Checker {
    violations: Vec<String>,
    /// Whether to check vote monotonicity (off to see what a lost vote leads to).
    check_votes: bool,
    /// The last vote each member persisted.
    votes: BTreeMap<NodeId, Vote>,
    /// The vote each member had persisted when it last crashed: it must start again from there.
    floors: BTreeMap<NodeId, Vote>,
    /// The vote each member currently leads with.
    leading: BTreeMap<NodeId, Vote>,
    /// The members that led in each term.
    leaders: BTreeMap<u64, BTreeSet<NodeId>>,
    /// Every log id ever held by any member's log, with its payload's digest.
    entries: BTreeMap<LogId, u64>,
    /// Per index, the entry applied there (so committed) and the reply it gave.
    applied: BTreeMap<u64, Applied>,
    /// Per index, the store's `hash_kv` (hash, compact revision, revision) after applying up to it.
    hashes: BTreeMap<u64, ((u32, i64, i64), NodeId)>,
    /// Every write a client got an answer for.
    acked: Vec<LogId>,
    /// Per member, the indexes at which its log holds the committed entry.
    held: BTreeMap<NodeId, BTreeSet<u64>>,
}

impl Checker {
    fn new(check_votes: bool) -> Self {
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
        }
    }

    fn fail(&mut self, violation: String) {
        self.violations.push(violation);
    }

    /// Election safety, the member's part: each vote it persists is at least its last one.
    fn saved_vote(&mut self, member: NodeId, vote: &Vote) {
        if let Some(last) = self.votes.get(&member) {
            if self.check_votes && below(vote, last) {
                self.fail(format!(
                    "election safety: n{member} persisted vote {vote} after vote {last}"
                ));
            }
        }
        self.votes.insert(member, *vote);
    }

    fn crashed(&mut self, member: NodeId) {
        if let Some(vote) = self.votes.get(&member) {
            self.floors.insert(member, *vote);
        }
        self.leading.remove(&member);
    }

    /// Election safety, as the member acts: after a restart it never votes below what it had
    /// persisted. Returns whether this is a new leadership, to count and trace.
    fn saw_metrics(
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
    fn applied(&mut self, member: NodeId, log_id: &LogId, payload: u64, reply: u64) {
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
    fn store_hash(&mut self, member: NodeId, index: u64, hash: (u32, i64, i64)) {
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
    fn acked(&mut self, member: NodeId, log_id: &LogId, payload: u64, reply: u64) {
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
    fn check_logs(&mut self, logs: &BTreeMap<NodeId, LogView>) {
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
    fn check_committed_kept(&mut self, member: NodeId, view: &LogView) {
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
struct LogView {
    first: u64,
    entries: Vec<(LogId, u64)>,
}

impl LogView {
    fn at(&self, index: u64) -> Option<LogId> {
        let offset = index.checked_sub(self.entries.first()?.0.index)?;
        self.entries.get(offset as usize).map(|(id, _)| *id)
    }
}

/// Whether `vote` is not at least `than` (lower, or not comparable).
fn below(vote: &Vote, than: &Vote) -> bool {
    !matches!(
        vote.partial_cmp(than),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

/// Where two contiguous logs break the log matching property: below the highest index at which
/// they hold the same log id, they must hold the same log ids wherever both have entries.
fn mismatch(a: &LogView, b: &LogView) -> Option<String> {
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

// ---------------------------------------------------------------------------------------------
// The log store.

/// A member's raft log on its simulated disk, which survives the member's crashes.
#[derive(Debug, Default)]
struct LogDisk {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    /// Entries by index, each with its payload's digest.
    entries: BTreeMap<u64, (Entry, u64)>,
}

impl LogDisk {
    fn view(&self) -> LogView {
        LogView {
            first: self.purged.map_or(0, |id| id.index + 1),
            entries: self
                .entries
                .values()
                .map(|(entry, payload)| (entry.log_id(), *payload))
                .collect(),
        }
    }
}

/// openraft's log storage over a [`LogDisk`], for one incarnation of a member: once the member has
/// crashed it writes nothing more (a dead process cannot).
#[derive(Debug, Clone)]
struct SimLog {
    id: NodeId,
    disk: Arc<Mutex<LogDisk>>,
    alive: Arc<AtomicBool>,
    world: Arc<World>,
    bug: Bug,
    /// Draws how long each append's flush takes.
    flush_rng: Arc<Mutex<StdRng>>,
}

fn crashed_error() -> io::Error {
    io::Error::other("the member has crashed")
}

impl SimLog {
    fn check_alive(&self) -> io::Result<()> {
        if self.alive.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(crashed_error())
        }
    }
}

impl RaftLogReader<SimConfig> for SimLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self
            .disk
            .lock()
            .entries
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.disk.lock().vote)
    }
}

impl RaftLogStorage<SimConfig> for SimLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<SimConfig>, io::Error> {
        let disk = self.disk.lock();
        let last = disk
            .entries
            .last_key_value()
            .map(|(_, (entry, _))| entry.log_id());
        Ok(LogState {
            last_purged_log_id: disk.purged,
            last_log_id: last.or(disk.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.check_alive()?;
        self.disk.lock().vote = Some(*vote);
        self.world.checker.lock().saved_vote(self.id, vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.check_alive()?;
        self.disk.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.disk.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<SimConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.check_alive()?;
        {
            let mut disk = self.disk.lock();
            for mut entry in entries {
                if let EntryPayload::Normal(Command::Store(req)) = &mut entry.payload {
                    if self
                        .bug
                        .hits(Bug::AlterLogEntry, self.id, entry.log_id.index)
                    {
                        corrupt(req);
                    }
                }
                let payload = digest(&entry.payload);
                disk.entries.insert(entry.index(), (entry, payload));
            }
        }
        // The entries are readable at once (openraft requires it); the flush takes 0-2 ms.
        let flush = Duration::from_millis(self.flush_rng.lock().gen_range(0..=2));
        if flush.is_zero() {
            callback.io_completed(Ok(()));
        } else {
            spawn(async move {
                tokio::time::sleep(flush).await;
                callback.io_completed(Ok(()));
            });
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.check_alive()?;
        let from = last_log_id.map_or(0, |id| id.index + 1);
        self.disk.lock().entries.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.check_alive()?;
        let mut disk = self.disk.lock();
        disk.entries = disk.entries.split_off(&(log_id.index + 1));
        disk.purged = Some(log_id);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine.

/// A snapshot's data: every entry of every keyspace of a member's store, which is what a RocksDB
/// checkpoint holds. Taken between two applies, so it is exactly the state at its log id.
struct Image {
    spaces: Vec<Keyspace>,
}

/// One keyspace's entries, in key order.
type Keyspace = (Space, Vec<(Vec<u8>, Vec<u8>)>);

impl Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: usize = self.spaces.iter().map(|(_, kvs)| kvs.len()).sum();
        write!(f, "Image({entries} entries)")
    }
}

impl Image {
    fn of(store: &MemStore) -> Self {
        // The memory backend's cursors do not read one point in time (RocksDB's checkpoint does):
        // copied while the store's thread removes compacted versions, the image could hold the
        // versions it removes and the progress record that says they are gone, which a later
        // compaction trusts. So the copy waits until the store's thread is done.
        store.wait_compacted(store.compact_revision());
        let spaces = Space::ALL
            .into_iter()
            .map(|space| {
                let mut cursor = store.backend().cursor(space);
                let mut kvs = Vec::new();
                cursor.seek(b"");
                while cursor.valid() {
                    kvs.push((cursor.key().to_vec(), cursor.value().to_vec()));
                    cursor.next();
                }
                (space, kvs)
            })
            .collect();
        Self { spaces }
    }

    /// A store opened on a copy of the image (the store recovers its revision and applied
    /// position from it, as it does when opening a RocksDB checkpoint).
    fn restore(&self) -> io::Result<MemStore> {
        let backend = MemoryBackend::new();
        let mut batch = Batch::default();
        for (space, kvs) in &self.spaces {
            for (key, value) in kvs {
                batch.put(*space, key.clone(), value.clone());
            }
        }
        backend.write(batch, true).map_err(io::Error::other)?;
        Store::with_backend(backend, store_options()).map_err(io::Error::other)
    }
}

fn store_options() -> StoreOptions {
    // As a replica opens its store: the log is the durable record, and only the leader expires leases.
    StoreOptions {
        sync: false,
        expire_leases: false,
        ..StoreOptions::default()
    }
}

fn empty_store() -> MemStore {
    MemStore::in_memory(store_options()).expect("a memory store opens")
}

/// What a member keeps besides its log: its store (which a crash may lose, as the store is not
/// synced) and its last snapshot (which survives).
#[derive(Debug)]
struct SmDisk {
    store: MemStore,
    snapshot: Option<Snapshot>,
}

/// The MVCC store as state machine, as `state_machine.rs` does it: each batch of entries is one
/// `apply_batch`, which also records the applied log id and membership with the data.
#[derive(Debug)]
struct SimStateMachine {
    id: NodeId,
    disk: Arc<Mutex<SmDisk>>,
    alive: Arc<AtomicBool>,
    world: Arc<World>,
    bug: Bug,
    applied: Option<LogId>,
    membership: StoredMembership,
}

fn decode_applied(store: &MemStore) -> io::Result<(Option<LogId>, StoredMembership)> {
    match store.applied() {
        None => Ok((None, StoredMembership::default())),
        Some(bytes) => Ok(decode("applied position", &bytes)?),
    }
}

impl SimStateMachine {
    fn open(
        id: NodeId,
        disk: Arc<Mutex<SmDisk>>,
        alive: Arc<AtomicBool>,
        world: Arc<World>,
        bug: Bug,
    ) -> io::Result<Self> {
        let (applied, membership) = decode_applied(&disk.lock().store)?;
        Ok(Self {
            id,
            disk,
            alive,
            world,
            bug,
            applied,
            membership,
        })
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.alive.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(crashed_error())
        }
    }
}

/// Hands over a snapshot taken when it was asked for.
#[derive(Debug)]
struct SimSnapshotBuilder {
    snapshot: Option<Snapshot>,
}

impl RaftSnapshotBuilder<SimConfig> for SimSnapshotBuilder {
    type SnapshotData = Arc<Image>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        self.snapshot
            .take()
            .ok_or_else(|| io::Error::other("snapshot already built"))
    }
}

impl RaftStateMachine<SimConfig> for SimStateMachine {
    type SnapshotData = Arc<Image>;
    type SnapshotBuilder = SimSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<SimConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        // Checked after the last await: the member may have crashed while entries were coming.
        self.check_alive()?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        self.applied = Some(last.log_id());
        let mut reqs = Vec::new();
        let mut slots = Vec::new();
        for (entry, _) in &batch {
            slots.push(match &entry.payload {
                EntryPayload::Normal(command) => {
                    let Some(mut req) = command.clone().store_request(entry.log_id.leader_id.term)
                    else {
                        slots.push(None);
                        continue;
                    };
                    if self
                        .bug
                        .hits(Bug::CorruptApply, self.id, entry.log_id.index)
                    {
                        corrupt(&mut req);
                    }
                    reqs.push(req);
                    Some(reqs.len() - 1)
                }
                EntryPayload::Membership(membership) => {
                    self.membership =
                        StoredMembership::new(Some(entry.log_id()), membership.clone());
                    None
                }
                EntryPayload::Blank => None,
            });
        }
        let store = self.disk.lock().store.clone();
        let position = encode(&(&self.applied, &self.membership));
        let results = store
            .apply_batch(&reqs, Some(&position))
            .map_err(io::Error::other)?;
        let hash = store.hash_kv(0).map_err(io::Error::other)?;
        let mut results: Vec<Option<_>> = results.into_iter().map(Some).collect();
        let mut replies = Vec::new();
        {
            let mut checker = self.world.checker.lock();
            for ((entry, responder), slot) in batch.into_iter().zip(slots) {
                let reply = match slot {
                    Some(i) => Reply::Store(results[i].take().expect("one result per request")),
                    None => Reply::None,
                };
                checker.applied(
                    self.id,
                    &entry.log_id,
                    digest(&entry.payload),
                    digest(&reply),
                );
                replies.push((responder, reply));
            }
            checker.store_hash(
                self.id,
                self.applied.as_ref().map_or(0, |id| id.index),
                hash,
            );
        }
        for (responder, reply) in replies {
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        self.check_alive().ok()?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
        };
        let mut disk = self.disk.lock();
        let snapshot = Snapshot {
            meta,
            snapshot: Arc::new(Image::of(&disk.store)),
        };
        disk.snapshot = Some(snapshot.clone());
        self.world.stats.lock().snapshots_built += 1;
        Some(SimSnapshotBuilder {
            snapshot: Some(snapshot),
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        match self.try_create_snapshot_builder(true).await {
            Some(builder) => builder,
            None => SimSnapshotBuilder { snapshot: None },
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        image: Arc<Image>,
    ) -> Result<(), io::Error> {
        self.check_alive()?;
        if meta.last_log_id < self.applied {
            // openraft asked to take the store back: what readers saw would be undone.
            self.world.checker.lock().fail(format!(
                "state-machine safety: n{} was asked to install a snapshot up to {} over its applied {}",
                self.id,
                meta.last_log_id.map_or(0, |id| id.index),
                self.applied.map_or(0, |id| id.index),
            ));
        }
        let store = image.restore()?;
        let (applied, membership) = decode_applied(&store)?;
        if applied != meta.last_log_id {
            return Err(io::Error::other(format!(
                "snapshot holds {applied:?}, its metadata says {:?}",
                meta.last_log_id
            )));
        }
        let hash = store.hash_kv(0).map_err(io::Error::other)?;
        {
            let mut disk = self.disk.lock();
            disk.store = store;
            disk.snapshot = Some(Snapshot {
                meta: meta.clone(),
                snapshot: image,
            });
        }
        self.applied = applied;
        self.membership = membership;
        let index = self.applied.as_ref().map_or(0, |id| id.index);
        self.world.checker.lock().store_hash(self.id, index, hash);
        self.world
            .event(format!("n{} installs a snapshot up to {index}", self.id));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.disk.lock().snapshot.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// The network.

/// Who is up, who can reach whom, and how long and how reliably messages travel.
#[derive(Debug)]
struct Router {
    state: Mutex<RouterState>,
    world: Arc<World>,
}

#[derive(Debug)]
struct RouterState {
    /// The running members.
    up: BTreeMap<NodeId, SimRaft>,
    /// Each member's side of the partition (0 when there is none); sides cannot talk.
    side: BTreeMap<NodeId, u8>,
    /// The probability that a message is lost.
    loss: f64,
    rng: StdRng,
}

/// Why a message got no answer.
#[derive(Debug)]
enum Failure {
    Unreachable(String),
    Timeout,
}

impl Router {
    /// One message's delay (0.1-8 ms), and whether it is lost.
    fn send(&self) -> (Duration, bool) {
        let mut state = self.state.lock();
        let delay = Duration::from_micros(state.rng.gen_range(100..=8000));
        let loss = state.loss;
        let lost = loss > 0.0 && state.rng.gen_bool(loss);
        let mut stats = self.world.stats.lock();
        stats.messages += 1;
        stats.lost += u64::from(lost);
        (delay, lost)
    }

    /// The member `to` as `from` can reach it now, if it can.
    fn connect(&self, from: NodeId, to: NodeId) -> Option<SimRaft> {
        let state = self.state.lock();
        let side = |id| state.side.get(&id).copied().unwrap_or(0);
        if !state.up.contains_key(&from) || side(from) != side(to) {
            return None;
        }
        state.up.get(&to).cloned()
    }
}

/// The network as one incarnation of a member sees it.
#[derive(Debug, Clone)]
struct SimNetwork {
    from: NodeId,
    alive: Arc<AtomicBool>,
    router: Arc<Router>,
}

impl RaftNetworkFactory<SimConfig> for SimNetwork {
    type Network = SimPeer;

    async fn new_client(&mut self, target: NodeId, _node: &MemberNode) -> SimPeer {
        SimPeer {
            net: self.clone(),
            target,
        }
    }
}

/// One peer, as openraft's replication and election see it.
#[derive(Debug)]
struct SimPeer {
    net: SimNetwork,
    target: NodeId,
}

impl SimPeer {
    /// Delivers a request after its delay, runs it on the target, and delivers the answer after
    /// its own delay. A lost message is noticed after the RPC's timeout (at most a second).
    async fn call<Resp, Err, Fut>(
        &self,
        what: &str,
        ttl: Duration,
        rpc: impl FnOnce(SimRaft) -> Fut,
    ) -> Result<Resp, Failure>
    where
        Fut: Future<Output = Result<Resp, Err>>,
        Err: Display,
    {
        let timeout = ttl.min(Duration::from_secs(1));
        let router = &self.net.router;
        let (delay, lost) = router.send();
        let line = format!(
            "n{} -> n{}: {what} in {delay:?}{}",
            self.net.from,
            self.target,
            if lost { ", lost" } else { "" }
        );
        router.world.trace.lock().detail(line);
        tokio::time::sleep(delay).await;
        if lost {
            tokio::time::sleep(timeout).await;
            return Err(Failure::Timeout);
        }
        let reachable = if self.net.alive.load(Ordering::SeqCst) {
            router.connect(self.net.from, self.target)
        } else {
            None
        };
        let Some(raft) = reachable else {
            return Err(Failure::Unreachable(format!(
                "n{} cannot reach n{}",
                self.net.from, self.target
            )));
        };
        let resp = rpc(raft)
            .await
            .map_err(|e| Failure::Unreachable(format!("n{}: {e}", self.target)))?;
        let (delay, lost) = router.send();
        tokio::time::sleep(delay).await;
        if lost || router.connect(self.target, self.net.from).is_none() {
            tokio::time::sleep(timeout).await;
            return Err(Failure::Timeout);
        }
        Ok(resp)
    }
}

fn rpc_error(failure: Failure) -> RPCError<SimConfig> {
    match failure {
        Failure::Unreachable(why) => {
            RPCError::Unreachable(Unreachable::new(&io::Error::other(why)))
        }
        Failure::Timeout => RPCError::Network(NetworkError::new(&io::Error::other("timed out"))),
    }
}

impl RaftNetworkV2<SimConfig> for SimPeer {
    type SnapshotData = Arc<Image>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("append", option.soft_ttl(), |raft| async move {
            raft.append_entries(rpc).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("vote", option.soft_ttl(), |raft| async move {
            raft.vote(rpc).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("transfer leader", option.soft_ttl(), |raft| async move {
            raft.handle_transfer_leader(req).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<SimConfig>, StreamingError<SimConfig>> {
        let index = snapshot.meta.last_log_id.as_ref().map_or(0, |id| id.index);
        let resp = self
            .call("snapshot", option.soft_ttl(), |raft| async move {
                raft.install_full_snapshot(vote, snapshot).await
            })
            .await
            .map_err(|failure| match rpc_error(failure) {
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                other => StreamingError::Network(NetworkError::new(&other)),
            })?;
        self.net.router.world.stats.lock().snapshots_sent += 1;
        self.net.router.world.event(format!(
            "n{} sent n{} a snapshot up to {index}",
            self.net.from, self.target
        ));
        Ok(resp)
    }
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// What a run does: how many steps, with which planted bug, and whether votes are checked.
#[derive(Debug, Clone, Copy)]
struct Params {
    steps: u64,
    bug: Bug,
    check_votes: bool,
}

impl Params {
    fn new(steps: u64) -> Self {
        Self {
            steps,
            bug: Bug::None,
            check_votes: true,
        }
    }
}

/// A member's disks, and the member itself while it runs.
#[derive(Debug)]
struct Member {
    log: Arc<Mutex<LogDisk>>,
    sm: Arc<Mutex<SmDisk>>,
    flush_rng: Arc<Mutex<StdRng>>,
    running: Option<Running>,
    restart_at: Option<Instant>,
}

#[derive(Debug)]
struct Running {
    raft: SimRaft,
    alive: Arc<AtomicBool>,
}

/// How a seed ended.
#[derive(Debug)]
struct Outcome {
    seed: u64,
    stats: Stats,
    trace_hash: u64,
    trace_tail: VecDeque<String>,
    violation: Option<String>,
}

/// One seed's run: the members and their disks, the network, the checks and the seeded choices.
struct Sim {
    params: Params,
    rng: StdRng,
    config: Arc<Config>,
    world: Arc<World>,
    router: Arc<Router>,
    nodes: BTreeMap<NodeId, MemberNode>,
    members: BTreeMap<NodeId, Member>,
    in_flight: Arc<AtomicUsize>,
    /// When the current burst of message loss ends.
    loss_until: Option<Instant>,
    next_value: u64,
}

fn raft_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "ballast-sim".into(),
        // Ballast's ratios (`--election-timeout` t of 10 heartbeats: min t/4, max 3t/4), scaled down.
        heartbeat_interval: 50,
        election_timeout_min: 125,
        election_timeout_max: 375,
        // Small, so that snapshots are taken, sent to lagging members and logs purged.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(30),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        max_payload_entries: 16,
        install_snapshot_timeout: 1000,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

impl Sim {
    fn new(seed: u64, params: Params) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let size = if rng.gen_bool(0.7) { 3 } else { 5 };
        let world = Arc::new(World {
            checker: Mutex::new(Checker::new(params.check_votes)),
            trace: Mutex::new(Trace::new(seed)),
            stats: Mutex::new(Stats::default()),
        });
        let router_rng = StdRng::seed_from_u64(rng.gen());
        let router = Arc::new(Router {
            state: Mutex::new(RouterState {
                up: BTreeMap::new(),
                side: BTreeMap::new(),
                loss: 0.0,
                rng: router_rng,
            }),
            world: world.clone(),
        });
        let nodes: BTreeMap<NodeId, MemberNode> = (1..=size)
            .map(|id| {
                (
                    id,
                    MemberNode {
                        name: format!("n{id}"),
                        peer_urls: vec![format!("sim://n{id}")],
                        client_urls: vec![],
                    },
                )
            })
            .collect();
        let members = nodes
            .keys()
            .map(|&id| {
                let member = Member {
                    log: Arc::default(),
                    sm: Arc::new(Mutex::new(SmDisk {
                        store: empty_store(),
                        snapshot: None,
                    })),
                    flush_rng: Arc::new(Mutex::new(StdRng::seed_from_u64(rng.gen()))),
                    running: None,
                    restart_at: None,
                };
                (id, member)
            })
            .collect();
        world.event(format!("seed {seed}: {size} members, bug {:?}", params.bug));
        Self {
            params,
            rng,
            config: raft_config(),
            world,
            router,
            nodes,
            members,
            in_flight: Arc::new(AtomicUsize::new(0)),
            loss_until: None,
            next_value: 0,
        }
    }

    async fn run(mut self, seed: u64) -> Outcome {
        let violation = self.drive().await.err();
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            if self.members[&id].running.is_some() {
                self.stop(id).await;
            }
        }
        let mut stats = self.world.stats.lock().clone();
        stats.sim_millis = self.world.trace.lock().start.elapsed().as_millis() as u64;
        let trace = self.world.trace.lock();
        Outcome {
            seed,
            stats,
            trace_hash: trace.hash,
            trace_tail: trace.tail.clone(),
            violation,
        }
    }

    async fn drive(&mut self) -> Result<(), String> {
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.start(id).await?;
        }
        for member in self.members.values() {
            let raft = &member.running.as_ref().expect("just started").raft;
            // Every initial member initializes, as `Replica::open` does; all but one are refused.
            let _ = raft.initialize(self.nodes.clone()).await;
        }
        for step in 0..self.params.steps {
            let pause = Duration::from_millis(self.rng.gen_range(1..=10));
            tokio::time::sleep(pause).await;
            self.world.stats.lock().steps += 1;
            self.fault().await;
            self.restart_due().await?;
            if self.rng.gen_bool(0.25) {
                self.submit_write();
            }
            self.check().map_err(|v| format!("step {step}: {v}"))?;
            self.trace_states(step);
        }
        self.converge().await
    }

    /// Puts every running member's state in the trace, so that replays are compared step by step.
    fn trace_states(&self, step: u64) {
        let states: Vec<String> = self
            .members
            .iter()
            .filter_map(|(id, member)| {
                let m = member
                    .running
                    .as_ref()?
                    .raft
                    .metrics()
                    .borrow_watched()
                    .clone();
                let applied = m.last_applied.map_or(0, |id| id.index);
                Some(format!(
                    "n{id} {:?} {} log {:?} applied {applied}",
                    m.state, m.vote, m.last_log_index
                ))
            })
            .collect();
        self.world
            .trace
            .lock()
            .detail(format!("step {step}: {}", states.join(", ")));
    }

    /// Runs the checks over the logs as they are now, and reports the first violation found.
    fn check(&self) -> Result<(), String> {
        let logs: BTreeMap<NodeId, LogView> = self
            .members
            .iter()
            .map(|(&id, member)| (id, member.log.lock().view()))
            .collect();
        let mut checker = self.world.checker.lock();
        checker.check_logs(&logs);
        match checker.violations.first() {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        }
    }

    async fn start(&mut self, id: NodeId) -> Result<(), String> {
        let member = self.members.get_mut(&id).expect("a member");
        let alive = Arc::new(AtomicBool::new(true));
        let log = SimLog {
            id,
            disk: member.log.clone(),
            alive: alive.clone(),
            world: self.world.clone(),
            bug: self.params.bug,
            flush_rng: member.flush_rng.clone(),
        };
        let sm = SimStateMachine::open(
            id,
            member.sm.clone(),
            alive.clone(),
            self.world.clone(),
            self.params.bug,
        )
        .map_err(|e| format!("n{id} cannot open its store: {e}"))?;
        let network = SimNetwork {
            from: id,
            alive: alive.clone(),
            router: self.router.clone(),
        };
        let raft = Raft::new(id, self.config.clone(), network, log, sm)
            .await
            .map_err(|e| format!("n{id} cannot start: {e}"))?;
        self.router.state.lock().up.insert(id, raft.clone());
        watch_metrics(id, &raft, alive.clone(), self.world.clone());
        member.running = Some(Running { raft, alive });
        member.restart_at = None;
        Ok(())
    }

    /// Stops a member as a crash would: at once, writing nothing more.
    async fn stop(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        let Some(running) = member.running.take() else {
            return;
        };
        running.alive.store(false, Ordering::SeqCst);
        self.router.state.lock().up.remove(&id);
        self.world.checker.lock().crashed(id);
        let _ = running.raft.shutdown().await;
    }

    async fn crash(&mut self, id: NodeId) {
        self.stop(id).await;
        // A process crash keeps the store (RocksDB's WAL survives it); losing the machine loses
        // what was not synced, and the store is not: it restarts from its last snapshot.
        let lose_store = self.rng.gen_bool(0.3);
        let down = if self.rng.gen_bool(0.3) {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.gen_range(50..2000))
        };
        let member = self.members.get_mut(&id).expect("a member");
        if lose_store {
            member.sm.lock().store = empty_store();
        }
        if self.params.bug == Bug::ForgetVote {
            member.log.lock().vote = None;
        }
        member.restart_at = Some(Instant::now() + down);
        self.world.stats.lock().crashes += 1;
        let what = if lose_store {
            "losing its store"
        } else {
            "keeping its store"
        };
        self.world.event(format!(
            "n{id} crashes, {what}, down for {} ms",
            down.as_millis()
        ));
    }

    async fn restart_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let due: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| m.restart_at.is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.world.event(format!("n{id} restarts"));
            self.start(id).await?;
        }
        Ok(())
    }

    fn running(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, m)| m.running.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    /// The running members that believe they lead.
    fn leaders(&self) -> Vec<NodeId> {
        let leads = |m: &Member| {
            m.running
                .as_ref()
                .is_some_and(|r| r.raft.metrics().borrow_watched().state == ServerState::Leader)
        };
        self.members
            .iter()
            .filter(|(_, m)| leads(m))
            .map(|(&id, _)| id)
            .collect()
    }

    fn pick(&mut self, ids: &[NodeId]) -> Option<NodeId> {
        (!ids.is_empty()).then(|| ids[self.rng.gen_range(0..ids.len())])
    }

    fn set_sides(&mut self, side: BTreeMap<NodeId, u8>, what: String) {
        self.router.state.lock().side = side;
        self.world.stats.lock().partitions += 1;
        self.world.event(what);
    }

    /// At most one fault per step, drawn by the seeded RNG.
    async fn fault(&mut self) {
        if self.loss_until.is_some_and(|until| until <= Instant::now()) {
            self.loss_until = None;
            self.router.state.lock().loss = 0.0;
            self.world.event("message loss ends");
        }
        let roll = self.rng.gen_range(0..10_000);
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        match roll {
            0..=39 => {
                let id = self.pick(&ids).expect("members");
                self.set_sides(
                    BTreeMap::from([(id, 1)]),
                    format!("partition: n{id} isolated"),
                );
            }
            40..=79 => {
                if let Some(id) = self.pick(&self.leaders()) {
                    self.set_sides(
                        BTreeMap::from([(id, 1)]),
                        format!("partition: leader n{id} isolated"),
                    );
                }
            }
            80..=99 => {
                let side: BTreeMap<NodeId, u8> = ids
                    .iter()
                    .map(|&id| (id, self.rng.gen_range(0..2)))
                    .collect();
                let what = format!("partition: sides {side:?}");
                self.set_sides(side, what);
            }
            100..=199 if !self.router.state.lock().side.is_empty() => {
                self.router.state.lock().side.clear();
                self.world.event("partition healed");
            }
            200..=229 => {
                let loss = self.rng.gen_range(0.1..0.5);
                let until = Instant::now() + Duration::from_millis(self.rng.gen_range(200..2000));
                self.router.state.lock().loss = loss;
                self.loss_until = Some(until);
                self.world
                    .event(format!("message loss {:.0}%", loss * 100.0));
            }
            230..=259 => {
                if let Some(id) = self.pick(&self.running()) {
                    self.crash(id).await;
                }
            }
            260..=279 => {
                // A follower's election timer fires early (openraft's `trigger().elect()`).
                let followers: Vec<NodeId> = self
                    .running()
                    .into_iter()
                    .filter(|id| !self.leaders().contains(id))
                    .collect();
                if let Some(id) = self.pick(&followers) {
                    let raft = self.members[&id]
                        .running
                        .as_ref()
                        .expect("running")
                        .raft
                        .clone();
                    self.world.event(format!("n{id} campaigns"));
                    let _ = raft.trigger().elect(false).await;
                }
            }
            _ => {}
        }
    }

    fn command(&mut self) -> WriteRequest {
        let key = format!("k{}", self.rng.gen_range(0..KEYS));
        self.next_value += 1;
        let value = format!("v{}", self.next_value);
        match self.rng.gen_range(0..100) {
            0..=54 => WriteRequest::Put(PutRequest {
                prev_kv: self.rng.gen_bool(0.3),
                ..PutRequest::new(key, value)
            }),
            55..=69 => WriteRequest::DeleteRange(DeleteRangeRequest {
                prev_kv: true,
                ..DeleteRangeRequest::key(key)
            }),
            70..=96 => {
                let version = self.rng.gen_range(0..4);
                WriteRequest::Txn(TxnRequest {
                    compare: vec![Compare::new(
                        key.clone(),
                        CompareResult::Equal,
                        CompareTarget::Version(version),
                    )],
                    success: vec![RequestOp::Put(PutRequest::new(key.clone(), value))],
                    failure: vec![RequestOp::Range(RangeRequest::key(key))],
                })
            }
            _ => {
                // Compact below some member's current revision (or past it: refused, deterministically).
                let id = self.rng.gen_range(1..=self.nodes.len() as NodeId);
                let rev = self.members[&id].sm.lock().store.revision();
                WriteRequest::Compact((rev - self.rng.gen_range(0..20)).max(1))
            }
        }
    }

    /// Sends a write to a member that believes it leads (or any member, which refuses it).
    fn submit_write(&mut self) {
        if self.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            return;
        }
        let leaders = self.leaders();
        let target = match self.pick(&leaders) {
            Some(id) => id,
            None => match self.pick(&self.running()) {
                Some(id) => id,
                None => return,
            },
        };
        let command = Command::Store(self.command());
        let raft = self.members[&target]
            .running
            .as_ref()
            .expect("running")
            .raft
            .clone();
        self.world.stats.lock().writes += 1;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let (world, in_flight) = (self.world.clone(), self.in_flight.clone());
        spawn(async move {
            client_write(target, &raft, command, &world).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Heals everything, restarts every member, and waits until they all hold the same store,
    /// which must hold every acknowledged write.
    async fn converge(&mut self) -> Result<(), String> {
        self.world
            .event("converging: faults healed, every member restarted");
        {
            let mut router = self.router.state.lock();
            router.side.clear();
            router.loss = 0.0;
        }
        self.loss_until = None;
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            if self.members[&id].running.is_none() {
                self.start(id).await?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let poll = Duration::from_millis(100);
        // Writes still in flight end (or time out) first, so that the final write is the last entry.
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(poll).await;
            self.check()?;
        }
        let last = loop {
            if Instant::now() > deadline {
                return Err("no leader accepted the final write within 60 s of healing".into());
            }
            tokio::time::sleep(poll).await;
            self.check()?;
            let Some(&leader) = self.leaders().first() else {
                continue;
            };
            let raft = self.members[&leader]
                .running
                .as_ref()
                .expect("running")
                .raft
                .clone();
            let command = Command::Store(WriteRequest::Put(PutRequest::new("final", "write")));
            if let Some(log_id) = client_write(leader, &raft, command, &self.world).await {
                break log_id;
            }
        };
        loop {
            tokio::time::sleep(poll).await;
            self.check()?;
            let states = self.final_states()?;
            let first = *states.values().next().expect("members");
            let converged = states.values().all(|s| *s == first);
            if converged && first.0.as_ref().is_some_and(|id| id.index >= last.index) {
                return self.check_acked(first.0.as_ref().map_or(0, |id| id.index));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "members did not converge within 60 s of healing: {states:?}"
                ));
            }
        }
    }

    /// Each member's store: its applied log id and its `hash_kv`.
    #[allow(clippy::type_complexity)]
    fn final_states(&self) -> Result<BTreeMap<NodeId, (Option<LogId>, (u32, i64, i64))>, String> {
        let mut states = BTreeMap::new();
        for (&id, member) in &self.members {
            let store = member.sm.lock().store.clone();
            let (applied, _) = decode_applied(&store).map_err(|e| e.to_string())?;
            states.insert(id, (applied, store.hash_kv(0).map_err(|e| e.to_string())?));
        }
        Ok(states)
    }

    /// Durability, at the end: every acknowledged write is below every member's applied index
    /// (all equal, their stores identical) and is the entry applied at its index.
    fn check_acked(&self, applied: u64) -> Result<(), String> {
        let checker = self.world.checker.lock();
        for log_id in &checker.acked {
            let agreed = checker.applied.get(&log_id.index).map(|a| &a.log_id);
            if log_id.index > applied || agreed != Some(log_id) {
                return Err(format!("durability: acknowledged {log_id} is not in the final state (applied {applied}, {agreed:?})"));
            }
        }
        self.world.event(format!(
            "converged at index {applied} with {} acknowledged writes",
            checker.acked.len()
        ));
        Ok(())
    }
}

/// One client write; the log id it was committed at, if the member answered.
async fn client_write(
    member: NodeId,
    raft: &SimRaft,
    command: Command,
    world: &World,
) -> Option<LogId> {
    let payload = digest(&Payload::Normal(command.clone()));
    let answer = tokio::time::timeout(Duration::from_secs(5), raft.client_write(command)).await;
    let Ok(Ok(resp)) = answer else { return None };
    world
        .checker
        .lock()
        .acked(member, &resp.log_id, payload, digest(&resp.data));
    world.stats.lock().acked += 1;
    world.event(format!("n{member} acknowledged a write at {}", resp.log_id));
    Some(resp.log_id)
}

/// Follows one incarnation of a member: its leaderships, its vote, and whether its raft keeps
/// running (openraft stops a member whose storage fails or whose own assertions fail, and a panic
/// in its task would otherwise go unnoticed).
fn watch_metrics(id: NodeId, raft: &SimRaft, alive: Arc<AtomicBool>, world: Arc<World>) {
    let mut metrics = raft.metrics();
    spawn(async move {
        loop {
            if !alive.load(Ordering::SeqCst) {
                return;
            }
            let m = metrics.borrow_watched().clone();
            let elected = world
                .checker
                .lock()
                .saw_metrics(id, &m, &mut world.stats.lock());
            if elected {
                world.event(format!(
                    "n{id} leads with vote {} (last log {:?})",
                    m.vote, m.last_log_index
                ));
            }
            if let Err(fatal) = &m.running_state {
                world
                    .checker
                    .lock()
                    .fail(format!("health: n{id}'s raft stopped: {fatal}"));
                return;
            }
            if metrics.changed().await.is_err() {
                if alive.load(Ordering::SeqCst) {
                    world.checker.lock().fail(format!(
                        "health: n{id}'s raft stopped by itself (its task panicked)"
                    ));
                }
                return;
            }
        }
    });
}

/// Runs one seed on its own runtime, with paused time and openraft's RNG seeded.
fn run_seed(seed: u64, params: Params) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    runtime.block_on(Seeded::scope(seed, async move {
        Sim::new(seed, params).run(seed).await
    }))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn report(outcome: &Outcome, wall: Duration) {
    let verdict = match &outcome.violation {
        None => "ok".to_string(),
        Some(v) => format!("VIOLATION: {v}"),
    };
    eprintln!(
        "seed {}: {}; {:.1} s wall; trace {:016x}; {verdict}",
        outcome.seed,
        outcome.stats,
        wall.as_secs_f64(),
        outcome.trace_hash
    );
}

fn print_tail(outcome: &Outcome) {
    eprintln!(
        "--- last {} trace lines of seed {} ---",
        outcome.trace_tail.len(),
        outcome.seed
    );
    for line in &outcome.trace_tail {
        eprintln!("{line}");
    }
}

#[test]
fn simulation_keeps_raft_safe() {
    let steps = env_u64("SIM_STEPS").unwrap_or(DEFAULT_STEPS);
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
            (first..first + env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for &seed in &seeds {
        let wall = std::time::Instant::now();
        let outcome = run_seed(seed, Params::new(steps));
        report(&outcome, wall.elapsed());
        if let Some(violation) = &outcome.violation {
            print_tail(&outcome);
            panic!("seed {seed}: {violation}\nreplay with SIM_SEED={seed} SIM_STEPS={steps}");
        }
        total.add(&outcome.stats);
    }
    eprintln!(
        "total: {} seeds, {total}; {:.1} s wall; no violations",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn same_seed_replays_identically() {
    let runs: Vec<Outcome> = [5, 5, 6]
        .into_iter()
        .map(|seed| run_seed(seed, Params::new(600)))
        .collect();
    for outcome in &runs {
        assert_eq!(outcome.violation, None, "seed {}", outcome.seed);
    }
    assert_eq!(
        runs[0].trace_hash, runs[1].trace_hash,
        "seed 5 ran twice with different traces"
    );
    assert_eq!(runs[0].trace_tail, runs[1].trace_tail);
    assert_eq!(runs[0].stats, runs[1].stats);
    assert_ne!(
        runs[0].trace_hash, runs[2].trace_hash,
        "seeds 5 and 6 ran the same"
    );
}

/// Runs seeds with a planted bug until a check catches it; fails if none does within the budget.
fn assert_caught(bug: Bug, check_votes: bool, seeds: u64, steps: u64, expected: &str) {
    for seed in 0..seeds {
        let outcome = run_seed(
            seed,
            Params {
                steps,
                bug,
                check_votes,
            },
        );
        if let Some(violation) = &outcome.violation {
            eprintln!(
                "{bug:?} caught by seed {seed} after {} steps: {violation}",
                outcome.stats.steps
            );
            assert!(
                violation.starts_with(expected) || violation.contains(&format!(": {expected}")),
                "{violation}"
            );
            return;
        }
    }
    panic!("{bug:?} went unnoticed over {seeds} seeds of {steps} steps");
}

#[test]
fn catches_a_forgotten_vote() {
    assert_caught(Bug::ForgetVote, true, 8, 2000, "election safety");
}

/// Without the vote checks, a forgotten vote still shows: members elected with a vote below their
/// own log's leader ids trip openraft's assertions and stop.
#[test]
fn catches_a_forgotten_vote_by_its_consequences() {
    assert_caught(Bug::ForgetVote, false, 12, 2000, "health");
}

#[test]
fn catches_a_corrupt_apply() {
    assert_caught(Bug::CorruptApply, true, 4, 1000, "state-machine safety");
}

#[test]
fn catches_an_altered_log_entry() {
    assert_caught(Bug::AlterLogEntry, true, 4, 1000, "log matching");
}
