//! A deterministic simulation of a Ballast raft cluster (issue 6, item 5): 3 or 5 members run
//! openraft on simulated time while the simulation delays, loses and partitions their messages,
//! crashes and restarts them, and sends them writes, and after every step checks raft's safety
//! properties over every member's votes, log and state machine.
//!
//! What is real: openraft itself (the version Ballast pins, with Ballast's log entry, reply, node
//! and leader-id types), and Ballast's state machine (`state_machine.rs`: its batching, its
//! apply and commit, the lease-expiry term check, snapshot installation) over the MVCC store's
//! apply code on the in-memory backend, applying etcd puts, deletes, compare-and-swap
//! transactions and compactions. What is simulated: the raft log (a `BTreeMap` per member that
//! survives its crashes, in place of the RocksDB log of `log_store.rs`), the state machine's host
//! ([`SimHost`]: the store and its snapshot in memory, in place of the RocksDB checkpoints of
//! `checkpoints.rs`) and the network (an in-process router in place of the gRPC transport of
//! `network.rs`). Those three files are not exercised here.
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

use ballast_raft::codec::encode;
use ballast_raft::state_machine::{decode_applied, StateMachine, StoreCell, StoreHost};
use ballast_raft::types::{Command, MemberNode, Reply};
use ballast_store::backend::{Backend, Batch, Cursor, MemoryBackend, Space};
use ballast_store::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, LeaseId, MemStore, PutRequest,
    RangeRequest, RequestOp, Store, StoreOptions, TxnRequest, WriteRequest,
};
use openraft::alias::{
    AsyncRuntimeOf, EntryOf, EntryPayloadOf, LogIdOf, SnapshotMetaOf, SnapshotOf, VoteOf,
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
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{
    AsyncRuntime, Config, EntryPayload, LogState, OptionalSend, OptionalSync, Raft, RaftLogReader,
    RaftMetrics, RaftNetworkV2, ServerState, SnapshotPolicy,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

#[path = "sim/clients.rs"]
mod clients;
#[path = "sim/driver.rs"]
mod driver;
#[path = "sim/faults.rs"]
mod faults;
#[path = "sim/invariants.rs"]
mod invariants;
#[path = "sim/leases.rs"]
mod leases;
#[path = "sim/network.rs"]
mod network;
#[path = "sim/runtime.rs"]
mod runtime;
#[path = "sim/storage.rs"]
mod storage;
#[path = "sim/trace.rs"]
mod trace;

use clients::*;
use driver::*;
use invariants::*;
use leases::{Duties, LeaseClients, LeaseHistory, SimClock};
use network::*;
use runtime::*;
use storage::*;
use trace::*;

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

impl ballast_raft::types::BallastConfig for SimConfig {}

type NodeId = u64;
type LogId = LogIdOf<SimConfig>;
type Vote = VoteOf<SimConfig>;
type Entry = EntryOf<SimConfig>;
type Payload = EntryPayloadOf<SimConfig>;
type SnapshotMeta = SnapshotMetaOf<SimConfig>;
type Snapshot = SnapshotOf<SimConfig, Arc<Image>>;
type SimRaft = Raft<SimConfig, StateMachine<SimHost>>;

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

#[test]
fn catches_an_unconfirmed_keep_alive() {
    assert_caught(Bug::UnconfirmedKeepAlive, true, 16, 2000, "lease safety");
}

#[test]
fn catches_stale_countdowns() {
    assert_caught(Bug::StaleCountdowns, true, 16, 2000, "lease safety");
}
