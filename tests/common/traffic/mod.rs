//! Client traffic for the chaos tests, recorded for the checkers in `ballast-check`: like etcd's
//! robustness tests, several sequential clients send gets, ranges, puts, deletes, compare-and-swap
//! txns and lease grant/attach/revoke on a small keyspace; watches are opened from random
//! revisions and follow the keyspace across member failures; a compactor compacts behind them.
//!
//! Every request is recorded with its invocation and return time on one monotonic clock, and its
//! answer classified: an answer, a definite rejection (the request was not applied), or unknown
//! (no answer in time, a lost connection, any error after which the write may still have been
//! applied). Every value written is unique, which is what lets the checker tie an observed value
//! to the one write that produced it.
//!
//! The clients talk gRPC (the generated `etcdserverpb` clients), not etcdctl: a process per
//! request would leave a few requests per second, too few to race a fault.
//!
//! This file holds the configuration, what is shared by a run's tasks and the `Traffic` handle;
//! `clients` the clients and the final write, `watches` the watchers and the compactor.

mod clients;
mod watches;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_check::history::{Input, Kv, Operation, Output, Watch};
use ballast_proto::mvccpb;
use ballast_proto::pb;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tonic::transport::Channel;
use tonic::{Code, Status};

use clients::{client, final_write};
use watches::{compactor, watcher};

/// Every key the traffic touches starts with this; watches and ranges cover `[PREFIX, PREFIX_END)`.
const PREFIX: &str = "key/";
const PREFIX_END: &str = "key0";
/// Leases are granted long enough never to expire during a test: expiry deletes keys at a moment
/// no client observes, which the per-key model has no operation for.
const LEASE_TTL: i64 = 3600;

/// What the traffic does; `Default` is the chaos tests' mix.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sequential clients, spread over the members (client `c` starts on member `c % n`).
    pub clients: usize,
    /// Keys `key/0` .. `key/{keys-1}`.
    pub keys: usize,
    /// Watches open at any time (a compacted watch is replaced by a new one).
    pub watches: usize,
    /// How long a request may take before its outcome counts as unknown.
    pub request_timeout: Duration,
    /// Compact to `revision - compact_lag` this often (None: never).
    pub compact_every: Option<Duration>,
    pub compact_lag: i64,
    /// Reads ask for serializable (member-local) answers while being recorded as linearizable
    /// gets: the planted bug that the checker must catch under a partition.
    pub serializable_reads: bool,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            clients: 8,
            keys: 10,
            watches: 3,
            request_timeout: Duration::from_secs(2),
            compact_every: Some(Duration::from_secs(1)),
            compact_lag: 200,
            serializable_reads: false,
            seed: std::env::var("CHAOS_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(rand::random),
        }
    }
}

/// What a run recorded.
#[derive(Debug)]
pub struct Recording {
    pub ops: Vec<Operation>,
    pub watches: Vec<Watch>,
    /// Watches that did not deliver the final write within the time allowed (a liveness failure).
    pub stalled_watches: Vec<usize>,
    pub compactions: usize,
}

impl Recording {
    /// Operations answered (not unknown, not rejected).
    pub fn answered(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| !matches!(o.output, Output::Unknown | Output::Rejected))
            .count()
    }

    pub fn unknown(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.output == Output::Unknown)
            .count()
    }

    pub fn events(&self) -> usize {
        self.watches.iter().map(|w| w.events.len()).sum()
    }
}

/// Shared by the tasks of one run.
struct Shared {
    endpoints: Vec<String>,
    config: Config,
    epoch: Instant,
    stop: AtomicBool,
    ops: Mutex<Vec<Operation>>,
    answered: AtomicUsize,
    /// Unique values: a counter over the whole run.
    values: AtomicUsize,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn record(&self, client: usize, input: Input, output: Output, call: u64) {
        let ret = self.now();
        if !matches!(output, Output::Unknown | Output::Rejected) {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
        self.ops.lock().unwrap().push(Operation {
            client,
            input,
            output,
            call,
            ret,
        });
    }

    fn channel(&self, member: usize) -> Channel {
        let endpoint = &self.endpoints[member % self.endpoints.len()];
        crate::common::grpc::client_channel(endpoint, Some(self.config.request_timeout))
    }

    fn value(&self, client: usize) -> Vec<u8> {
        format!("v{}-c{client}", self.values.fetch_add(1, Ordering::Relaxed)).into_bytes()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Traffic running in the background against a cluster's client endpoints.
pub struct Traffic {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    clients: Vec<tokio::task::JoinHandle<()>>,
    watchers: Vec<tokio::task::JoinHandle<Vec<Watch>>>,
    compactor: Option<tokio::task::JoinHandle<usize>>,
    /// Raised once the final write is known, so watchers return when they have seen it.
    final_revision: Arc<tokio::sync::watch::Sender<i64>>,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic")
            .field("endpoints", &self.shared.endpoints)
            .field("seed", &self.shared.config.seed)
            .finish()
    }
}

impl Traffic {
    /// Starts the clients, watchers and compactor against `endpoints` (`host:port` each).
    pub fn start(endpoints: Vec<String>, config: Config) -> Traffic {
        eprintln!(
            "traffic: seed {} (CHAOS_SEED={} replays the client choices)",
            config.seed, config.seed
        );
        let runtime = crate::common::grpc::client_runtime();
        let shared = Arc::new(Shared {
            endpoints,
            config: config.clone(),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            ops: Mutex::new(Vec::new()),
            answered: AtomicUsize::new(0),
            values: AtomicUsize::new(0),
        });
        let (final_tx, final_rx) = tokio::sync::watch::channel(0i64);
        let clients = (0..config.clients)
            .map(|c| {
                runtime.spawn(client(
                    shared.clone(),
                    c,
                    StdRng::seed_from_u64(config.seed.wrapping_add(c as u64)),
                ))
            })
            .collect();
        let watchers = (0..config.watches)
            .map(|w| {
                let rng =
                    StdRng::seed_from_u64(config.seed.wrapping_mul(31).wrapping_add(w as u64));
                runtime.spawn(watcher(shared.clone(), w, rng, final_rx.clone()))
            })
            .collect();
        let compactor = config
            .compact_every
            .map(|every| runtime.spawn(compactor(shared.clone(), every)));
        Traffic {
            shared,
            runtime,
            clients,
            watchers,
            compactor,
            final_revision: Arc::new(final_tx),
        }
    }

    /// Requests answered so far (not unknown, not rejected).
    pub fn answered(&self) -> usize {
        self.shared.answered.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests beyond `from` were answered, or `timeout` passed; returns the
    /// count.
    pub fn wait_answered_beyond(&self, from: usize, more: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.answered() < from + more && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.answered()
    }

    /// Stops the clients, writes one last value (retrying across members for up to 20 s), waits
    /// up to `watch_grace` for every watch to deliver it, and returns everything recorded.
    pub fn stop(self, watch_grace: Duration) -> Recording {
        let Traffic {
            shared,
            runtime,
            clients,
            watchers,
            compactor,
            final_revision,
        } = self;
        shared.stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            for c in clients {
                c.await.unwrap();
            }
            let compactions = match compactor {
                Some(c) => c.await.unwrap(),
                None => 0,
            };
            let final_rev = final_write(&shared).await;
            final_revision.send_replace(final_rev);
            let mut watches = Vec::new();
            let mut stalled = Vec::new();
            for (i, w) in watchers.into_iter().enumerate() {
                match tokio::time::timeout(watch_grace, w).await {
                    Ok(done) => watches.extend(done.unwrap()),
                    Err(_) => stalled.push(i),
                }
            }
            let ops = std::mem::take(&mut *shared.ops.lock().unwrap());
            Recording {
                ops,
                watches,
                stalled_watches: stalled,
                compactions,
            }
        })
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("{PREFIX}{i}").into_bytes()
}

/// Whether an error means the request was certainly not applied. Everything else (timeouts, lost
/// connections, "leader changed", "request timed out") may have been applied.
fn rejected(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::NotFound | Code::InvalidArgument | Code::OutOfRange
    )
}

fn outcome<T>(
    result: Result<Result<T, Status>, tokio::time::error::Elapsed>,
    ok: impl FnOnce(T) -> Output,
) -> Output {
    match result {
        Ok(Ok(resp)) => ok(resp),
        Ok(Err(status)) if rejected(&status) => Output::Rejected,
        _ => Output::Unknown,
    }
}

fn revision(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |h| h.revision)
}

fn to_kv(kv: &mvccpb::KeyValue) -> Kv {
    Kv {
        key: kv.key.to_vec(),
        value: kv.value.to_vec(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}
