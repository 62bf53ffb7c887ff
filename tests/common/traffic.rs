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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_check::history::{EventKind, Input, Kv, Operation, Output, Watch, WatchEvent};
use ballast_proto::mvccpb;
use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use ballast_proto::pb::lease_client::LeaseClient;
use ballast_proto::pb::watch_client::WatchClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use tonic::{Code, Status};

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
        crate::common::client_channel(endpoint, Some(self.config.request_timeout))
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
        let runtime = crate::common::client_runtime();
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

/// One sequential client: picks an operation, sends it, records it; after an unknown outcome it
/// moves to the next member (as a client library fails over).
async fn client(shared: Arc<Shared>, c: usize, mut rng: StdRng) {
    let timeout = shared.config.request_timeout;
    let keys = shared.config.keys;
    let mut member = c;
    let mut kv = KvClient::new(shared.channel(member));
    let mut lease = LeaseClient::new(shared.channel(member));
    // The mod revision this client last saw per key (the "expected" of its next CAS there).
    let mut seen: HashMap<usize, i64> = HashMap::new();
    // This client's lease and the one key it attaches it to (the checker needs one key per lease).
    let mut held: Option<(i64, usize)> = None;
    let mut next_lease = 1i64;
    while !shared.stopped() {
        let k = rng.gen_range(0..keys);
        let call = shared.now();
        let roll = rng.gen_range(0..100);
        let (input, output) = if roll < 30 {
            let req = pb::RangeRequest {
                key: key(k).into(),
                serializable: shared.config.serializable_reads,
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                let kv = r.kvs.first().map(to_kv);
                if let Some(kv) = &kv {
                    seen.insert(k, kv.mod_revision);
                }
                Output::Get {
                    kv,
                    revision: revision(&r.header),
                }
            });
            (Input::Get { key: key(k) }, out)
        } else if roll < 38 {
            let req = pb::RangeRequest {
                key: PREFIX.into(),
                range_end: PREFIX_END.into(),
                serializable: shared.config.serializable_reads,
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                Output::Range {
                    kvs: r.kvs.iter().map(to_kv).collect(),
                    revision: revision(&r.header),
                }
            });
            (
                Input::Range {
                    start: PREFIX.into(),
                    end: PREFIX_END.into(),
                },
                out,
            )
        } else if roll < 63 {
            let value = shared.value(c);
            let req = pb::PutRequest {
                key: key(k).into(),
                value: value.clone().into(),
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.put(req)).await;
            let out = outcome(res, |r| Output::Put {
                revision: revision(&r.into_inner().header),
            });
            (
                Input::Put {
                    key: key(k),
                    value,
                    lease: 0,
                },
                out,
            )
        } else if roll < 71 {
            let req = pb::DeleteRangeRequest {
                key: key(k).into(),
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.delete_range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                Output::Delete {
                    deleted: r.deleted,
                    revision: revision(&r.header),
                }
            });
            (Input::Delete { key: key(k) }, out)
        } else if roll < 88 {
            let expected = if rng.gen_bool(0.8) {
                seen.get(&k).copied().unwrap_or(0)
            } else {
                rng.gen_range(0..3)
            };
            let value = shared.value(c);
            let req = pb::TxnRequest {
                compare: vec![pb::Compare {
                    result: pb::compare::CompareResult::Equal as i32,
                    target: pb::compare::CompareTarget::Mod as i32,
                    key: key(k).into(),
                    target_union: Some(pb::compare::TargetUnion::ModRevision(expected)),
                    ..Default::default()
                }],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key(k).into(),
                        value: value.clone().into(),
                        ..Default::default()
                    })),
                }],
                failure: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
                        key: key(k).into(),
                        ..Default::default()
                    })),
                }],
            };
            let res = tokio::time::timeout(timeout, kv.txn(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                let kv = r.responses.iter().find_map(|op| match &op.response {
                    Some(pb::response_op::Response::ResponseRange(range)) => {
                        range.kvs.first().map(to_kv)
                    }
                    _ => None,
                });
                match &kv {
                    Some(kv) => seen.insert(k, kv.mod_revision),
                    None if !r.succeeded => seen.insert(k, 0),
                    None => seen.insert(k, revision(&r.header)),
                };
                Output::Cas {
                    succeeded: r.succeeded,
                    kv,
                    revision: revision(&r.header),
                }
            });
            (
                Input::Cas {
                    key: key(k),
                    expected_mod_revision: expected,
                    value,
                },
                out,
            )
        } else {
            match held {
                None => {
                    let id = (c as i64 + 1) * 1_000_000 + next_lease;
                    next_lease += 1;
                    let req = pb::LeaseGrantRequest { id, ttl: LEASE_TTL };
                    let res = tokio::time::timeout(timeout, lease.lease_grant(req)).await;
                    let out = outcome(res, |r| Output::LeaseGrant {
                        revision: revision(&r.into_inner().header),
                    });
                    // Even an unknown grant is used: a put with it is rejected if it never happened.
                    held = Some((id, k));
                    (Input::LeaseGrant { lease: id }, out)
                }
                Some((id, lk)) if rng.gen_bool(0.6) => {
                    let value = shared.value(c);
                    let req = pb::PutRequest {
                        key: key(lk).into(),
                        value: value.clone().into(),
                        lease: id,
                        ..Default::default()
                    };
                    let res = tokio::time::timeout(timeout, kv.put(req)).await;
                    let out = outcome(res, |r| Output::Put {
                        revision: revision(&r.into_inner().header),
                    });
                    (
                        Input::Put {
                            key: key(lk),
                            value,
                            lease: id,
                        },
                        out,
                    )
                }
                Some((id, _)) => {
                    held = None;
                    let res = tokio::time::timeout(
                        timeout,
                        lease.lease_revoke(pb::LeaseRevokeRequest { id }),
                    )
                    .await;
                    let out = outcome(res, |r| Output::LeaseRevoke {
                        revision: revision(&r.into_inner().header),
                    });
                    (Input::LeaseRevoke { lease: id }, out)
                }
            }
        };
        let unknown = output == Output::Unknown;
        shared.record(c, input, output, call);
        if unknown {
            member += 1;
            kv = KvClient::new(shared.channel(member));
            lease = LeaseClient::new(shared.channel(member));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The last write of a run, recorded like any other; retried across members until answered.
/// Returns its revision (0 if it never was answered: then watches are not waited for).
async fn final_write(shared: &Shared) -> i64 {
    let client = shared.config.clients;
    let deadline = Instant::now() + Duration::from_secs(20);
    for member in 0.. {
        let value = shared.value(client);
        let req = pb::PutRequest {
            key: key(0).into(),
            value: value.clone().into(),
            ..Default::default()
        };
        let call = shared.now();
        let res = tokio::time::timeout(
            shared.config.request_timeout,
            KvClient::new(shared.channel(member)).put(req),
        )
        .await;
        let out = outcome(res, |r| Output::Put {
            revision: revision(&r.into_inner().header),
        });
        let rev = match out {
            Output::Put { revision } => revision,
            _ => 0,
        };
        shared.record(
            client,
            Input::Put {
                key: key(0),
                value,
                lease: 0,
            },
            out,
            call,
        );
        if rev > 0 || Instant::now() > deadline {
            return rev;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}

/// The current revision as some member reports it (None if none answers now).
async fn current_revision(shared: &Shared, member: usize) -> Option<i64> {
    let req = pb::RangeRequest {
        key: PREFIX.into(),
        range_end: PREFIX_END.into(),
        count_only: true,
        ..Default::default()
    };
    let resp = tokio::time::timeout(
        Duration::from_secs(1),
        KvClient::new(shared.channel(member)).range(req),
    )
    .await
    .ok()?
    .ok()?;
    Some(revision(&resp.into_inner().header))
}

/// Compacts to `revision - compact_lag` every `every`; returns how many compactions succeeded.
async fn compactor(shared: Arc<Shared>, every: Duration) -> usize {
    let (mut done, mut member, mut last) = (0, 0, 0);
    while !shared.stopped() {
        tokio::time::sleep(every).await;
        member += 1;
        let Some(rev) = current_revision(&shared, member).await else {
            continue;
        };
        let target = rev - shared.config.compact_lag;
        if target <= last {
            continue;
        }
        let req = pb::CompactionRequest {
            revision: target,
            physical: false,
        };
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_secs(2),
            KvClient::new(shared.channel(member)).compact(req),
        )
        .await
        {
            last = target;
            done += 1;
        }
    }
    done
}

/// Keeps one watch on the keyspace open: created from a random recent revision on some member;
/// when its stream breaks, resumed from the revision after its last event on the next member, so
/// a `Watch` record spans reconnects (the checker then finds any gap or duplicate a reconnect
/// caused). A watch cancelled because its start was compacted is recorded and replaced. Returns
/// once it has delivered `final_rx`'s revision (after `stop`).
async fn watcher(
    shared: Arc<Shared>,
    w: usize,
    mut rng: StdRng,
    final_rx: tokio::sync::watch::Receiver<i64>,
) -> Vec<Watch> {
    let mut done = Vec::new();
    let mut member = w;
    let mut current: Option<Watch> = None;
    loop {
        let final_rev = *final_rx.borrow();
        if final_rev > 0 {
            let last = current
                .as_ref()
                .and_then(|c| c.events.last())
                .map_or(0, |e| e.kv.mod_revision);
            if last >= final_rev {
                break;
            }
        }
        // Where to (re)start: after the last event, or a random recent revision for a new watch.
        let start = match &current {
            Some(c) => c
                .events
                .last()
                .map_or(c.start_revision, |e| e.kv.mod_revision + 1),
            None => match current_revision(&shared, member).await {
                Some(rev) if rng.gen_bool(0.8) => (rev - rng.gen_range(0..300)).max(1),
                Some(_) => 0,
                None => {
                    member += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let cur = current.get_or_insert_with(|| Watch {
            start: PREFIX.into(),
            end: PREFIX_END.into(),
            start_revision: start,
            events: Vec::new(),
            compacted: None,
        });
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: PREFIX.into(),
                    range_end: PREFIX_END.into(),
                    start_revision: start,
                    ..Default::default()
                },
            )),
        };
        // A watch stream outlives any request timeout: its own channel, without one.
        let endpoint = &shared.endpoints[member % shared.endpoints.len()];
        let channel = crate::common::client_channel(endpoint, None);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(create).await.unwrap();
        let stream = match WatchClient::new(channel)
            .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(s) => s.into_inner(),
            Err(_) => {
                member += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ended = follow(stream, cur, final_rx.clone()).await;
        drop(tx);
        match ended {
            Followed::Compacted(rev) => {
                let mut finished = current.take().unwrap();
                if finished.events.is_empty() {
                    finished.compacted = Some(rev);
                }
                done.push(finished);
            }
            Followed::Broken => {
                member += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Followed::Reached => break,
        }
    }
    done.extend(current);
    done
}

enum Followed {
    /// The server cancelled the watch: its start revision was compacted.
    Compacted(i64),
    /// The stream ended or failed (member down, connection lost).
    Broken,
    /// The watch delivered the final write.
    Reached,
}

/// Appends a watch stream's events to `watch` until it breaks, is cancelled, or delivers the
/// final revision.
async fn follow(
    mut stream: tonic::Streaming<pb::WatchResponse>,
    watch: &mut Watch,
    mut final_rx: tokio::sync::watch::Receiver<i64>,
) -> Followed {
    loop {
        let reached = |watch: &Watch, final_rev: i64| {
            final_rev > 0
                && watch
                    .events
                    .last()
                    .is_some_and(|e| e.kv.mod_revision >= final_rev)
        };
        if reached(watch, *final_rx.borrow()) {
            return Followed::Reached;
        }
        let msg = tokio::select! {
            msg = stream.message() => msg,
            _ = final_rx.changed() => continue,
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) | Err(_) => return Followed::Broken,
        };
        if resp.compact_revision > 0 {
            return Followed::Compacted(resp.compact_revision);
        }
        if resp.canceled {
            return Followed::Broken;
        }
        for e in &resp.events {
            let Some(kv) = &e.kv else { continue };
            let kind = if e.r#type == mvccpb::event::EventType::Delete as i32 {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            watch.events.push(WatchEvent {
                kind,
                kv: to_kv(kv),
            });
        }
    }
}
