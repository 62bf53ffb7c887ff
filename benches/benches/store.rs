//! Criterion benchmarks of `ballast-store` on a real RocksDB store: puts (with and without fsync),
//! point and prefix ranges, compare-and-swap transactions, physical compaction and watch fan-out.
//! Every case reports a throughput (operations, versions removed or events delivered per second).
//!
//! Run with `cargo bench -p ballast-benches --bench store`. Sample sizes and times are kept small
//! so the whole run takes a few minutes on a 2-core machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ballast_store::{
    Compare, CompareResult, CompareTarget, DiskStore, PutRequest, RangeRequest, RequestOp,
    StoreOptions, TxnRequest, WatchRequest, WatchResponse, Watcher, WriteRequest,
};
use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use tempfile::TempDir;

/// Keys in the put key space and in the preloaded read store.
const KEY_SPACE: usize = 100_000;
/// The read store's keys are grouped under this many prefixes ...
const PREFIXES: usize = 1_000;
/// ... of this many keys each.
const KEYS_PER_PREFIX: usize = 100;
/// Keys the CAS transactions and the compaction benchmark work on.
const HOT_KEYS: usize = 1_000;
/// New versions per key before each compaction.
const VERSIONS_PER_KEY: usize = 10;
/// Requests per `apply_batch` call when preloading: far faster than one commit per key, and
/// preloading is setup, not what is measured.
const PRELOAD_CHUNK: usize = 1_000;
/// A watcher that has not seen an event this long after its put is taken to have lost it: the
/// benchmark fails loudly instead of hanging.
const WATCH_DEADLINE: Duration = Duration::from_secs(10);
/// Generous per-watcher buffering so that fan-out watchers stay synced (they are drained after
/// every put anyway); the benchmark measures the synced path, not disk catch-up.
const WATCH_CAPACITY: usize = 1024;

/// A store in its own temporary directory. Fields drop in order: the store closes before its
/// directory is removed.
struct TempStore {
    store: DiskStore,
    _dir: TempDir,
}

impl TempStore {
    /// Throughput benchmarks run without fsync (as a replicated member does: raft's log is the
    /// durable record) and without the lease-expiry thread, which would only add noise.
    fn open(sync: bool) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let opts = StoreOptions {
            sync,
            expire_leases: false,
            watch_capacity: WATCH_CAPACITY,
            ..Default::default()
        };
        let store = DiskStore::open(dir.path(), opts).expect("open the store");
        Self { store, _dir: dir }
    }

    /// Puts every `(key, value)` in commits of `PRELOAD_CHUNK` requests (one revision each).
    fn preload(&self, kvs: impl IntoIterator<Item = (Bytes, Bytes)>) {
        let mut reqs = Vec::with_capacity(PRELOAD_CHUNK);
        let flush = |reqs: &mut Vec<WriteRequest>| {
            for resp in self.store.apply_batch(reqs, None).expect("preload commit") {
                resp.expect("preload put");
            }
            reqs.clear();
        };
        for (key, value) in kvs {
            reqs.push(WriteRequest::Put(PutRequest::new(key, value)));
            if reqs.len() == PRELOAD_CHUNK {
                flush(&mut reqs);
            }
        }
        if !reqs.is_empty() {
            flush(&mut reqs);
        }
    }
}

fn value_256() -> Bytes {
    Bytes::from(vec![b'v'; 256])
}

/// Key `i` of the put key space; formatted up front so the timed loop measures the store, not
/// `format!`.
fn put_keys() -> Vec<Bytes> {
    (0..KEY_SPACE)
        .map(|i| Bytes::from(format!("key{i:08}")))
        .collect()
}

fn prefix(p: usize) -> Bytes {
    Bytes::from(format!("r{p:04}/"))
}

/// The read store's keys: `r0000/000` .. `r0999/099`, so each `r{p:04}/` prefix holds exactly
/// `KEYS_PER_PREFIX` keys and the whole store `KEY_SPACE` keys.
fn read_keys() -> Vec<Bytes> {
    (0..PREFIXES)
        .flat_map(|p| (0..KEYS_PER_PREFIX).map(move |k| Bytes::from(format!("r{p:04}/{k:03}"))))
        .collect()
}

/// Visits `0..n` in a scattered order (a stride coprime with `n`), so that reads and writes do not
/// walk the keyspace sequentially and ride on the block cache's locality.
struct Scatter {
    i: usize,
    n: usize,
}

impl Scatter {
    const STRIDE: usize = 7_919; // prime, and coprime with every power of 10 used here

    fn new(n: usize) -> Self {
        Self { i: 0, n }
    }

    fn next_index(&mut self) -> usize {
        self.i = (self.i + Self::STRIDE) % self.n;
        self.i
    }
}

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    let keys = put_keys();
    let value = value_256();
    for (name, sync) in [("put", false), ("put_sync", true)] {
        let ts = TempStore::open(sync);
        let mut at = Scatter::new(keys.len());
        group.bench_function(name, |b| {
            b.iter(|| {
                let key = keys[at.next_index()].clone();
                black_box(
                    ts.store
                        .put(PutRequest::new(key, value.clone()))
                        .expect("put"),
                )
            })
        });
    }
    group.finish();
}

fn bench_range(c: &mut Criterion) {
    let keys = read_keys();
    let ts = TempStore::open(false);
    let value = value_256();
    ts.preload(keys.iter().map(|k| (k.clone(), value.clone())));

    let mut group = c.benchmark_group("range_point");
    group.throughput(Throughput::Elements(1));
    let mut at = Scatter::new(keys.len());
    group.bench_function("get", |b| {
        b.iter(|| {
            let resp = ts
                .store
                .range(&RangeRequest::key(keys[at.next_index()].clone()))
                .expect("range");
            assert_eq!(resp.kvs.len(), 1, "a preloaded key is missing");
            black_box(resp)
        })
    });
    group.finish();

    // One element per range call; multiply by the keys returned for keys/s.
    let mut group = c.benchmark_group("range_prefix");
    group.throughput(Throughput::Elements(1));
    for limit in [0, 10] {
        let expected = if limit == 0 {
            KEYS_PER_PREFIX
        } else {
            limit as usize
        };
        let name = if limit == 0 {
            "prefix_100".to_owned()
        } else {
            format!("prefix_limit_{limit}")
        };
        let mut at = Scatter::new(PREFIXES);
        group.bench_function(name, |b| {
            b.iter(|| {
                let req = RangeRequest {
                    limit,
                    ..RangeRequest::prefix(prefix(at.next_index()))
                };
                let resp = ts.store.range(&req).expect("range");
                assert_eq!(
                    resp.kvs.len(),
                    expected,
                    "a prefix range returned the wrong number of keys"
                );
                black_box(resp)
            })
        });
    }
    group.finish();
}

fn bench_txn(c: &mut Criterion) {
    let ts = TempStore::open(false);
    let keys: Vec<Bytes> = (0..HOT_KEYS)
        .map(|i| Bytes::from(format!("cas{i:04}")))
        .collect();
    let value = value_256();
    ts.preload(keys.iter().map(|k| (k.clone(), value.clone())));
    // The caller of a CAS knows the mod revision it read; keep it here rather than timing a read.
    let mut mod_revs: Vec<i64> = keys
        .iter()
        .map(|k| {
            ts.store
                .range(&RangeRequest::key(k.clone()))
                .expect("range")
                .kvs[0]
                .mod_revision
        })
        .collect();

    let mut group = c.benchmark_group("txn");
    group.throughput(Throughput::Elements(1));
    let mut at = Scatter::new(keys.len());
    group.bench_function("cas", |b| {
        b.iter(|| {
            let i = at.next_index();
            let key = keys[i].clone();
            let req = TxnRequest {
                compare: vec![Compare::new(
                    key.clone(),
                    CompareResult::Equal,
                    CompareTarget::Mod(mod_revs[i]),
                )],
                success: vec![RequestOp::Put(PutRequest::new(key.clone(), value.clone()))],
                failure: vec![RequestOp::Range(RangeRequest::key(key))],
            };
            let resp = ts.store.txn(req).expect("txn");
            // Every compare holds by construction: a failure would mean a wrong mod revision.
            assert!(resp.succeeded, "CAS on an unchanged key failed");
            mod_revs[i] = resp.revision;
            black_box(resp)
        })
    });
    group.finish();
}

fn bench_compaction(c: &mut Criterion) {
    let keys: Vec<Bytes> = (0..HOT_KEYS)
        .map(|i| Bytes::from(format!("cmp{i:04}")))
        .collect();
    let value = value_256();

    let mut group = c.benchmark_group("compaction");
    // Each round takes tens of milliseconds plus a longer untimed setup: flat sampling keeps the
    // number of rounds (and so the untimed setup) bounded.
    group.sampling_mode(SamplingMode::Flat);
    // VERSIONS_PER_KEY rounds of puts leave VERSIONS_PER_KEY - 1 superseded versions per key;
    // one extra initial version makes it exactly VERSIONS_PER_KEY removed per key.
    group.throughput(Throughput::Elements((HOT_KEYS * VERSIONS_PER_KEY) as u64));
    // Writes VERSIONS_PER_KEY + 1 versions of every key (untimed), then times compacting them.
    let round = |ts: &TempStore| {
        for _ in 0..=VERSIONS_PER_KEY {
            ts.preload(keys.iter().map(|k| (k.clone(), value.clone())));
        }
        let rev = ts.store.revision();
        let start = Instant::now();
        ts.store.compact(rev).expect("compact");
        ts.store.wait_compacted(rev);
        let took = start.elapsed();
        assert!(
            ts.store.status().compacted_physically >= rev,
            "compaction never finished physically"
        );
        took
    };
    // A fresh store every round (opening it is not timed).
    group.bench_function("compact_10k_versions", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| round(&TempStore::open(false))).sum())
    });
    // The same work repeated on one store: each round rewrites every key and compacts again, so
    // the keys carry the deletions of all earlier rounds. This must not slow down round by round.
    let ts = TempStore::open(false);
    group.bench_function("compact_10k_versions_repeated", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| round(&ts)).sum())
    });
    group.finish();
}

/// The next response of `w`, or `None` if none arrives before `deadline`. Polls rather than
/// blocking so a lost event shows up as a failure instead of a hung benchmark.
fn recv_by(w: &mut Watcher, deadline: Instant) -> Option<WatchResponse> {
    loop {
        if let Some(resp) = w.try_recv() {
            return Some(resp);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::yield_now();
    }
}

fn bench_watch(c: &mut Criterion) {
    let mut group = c.benchmark_group("watch_fanout");
    let value = value_256();
    for watchers in [1usize, 100, 10_000] {
        let ts = TempStore::open(false);
        let req = WatchRequest {
            key: Bytes::from_static(b"w/"),
            range_end: Bytes::from_static(b"w0"),
            ..Default::default()
        };
        let mut ws: Vec<Watcher> = (0..watchers)
            .map(|_| ts.store.watch(req.clone()).expect("watch"))
            .collect();
        // Events delivered per second: one per watcher per put.
        group.throughput(Throughput::Elements(watchers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(watchers), &watchers, |b, _| {
            // The bench thread drains every watcher after each put: the time measured is from the
            // put until the last watcher holds its event (the writer hands events to synced
            // watchers during the commit, so they are already queued when `put` returns).
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let rev = ts.store.put(PutRequest::new("w/key", value.clone())).expect("put").revision;
                    let deadline = Instant::now() + WATCH_DEADLINE;
                    for (n, w) in ws.iter_mut().enumerate() {
                        let resp = recv_by(w, deadline).unwrap_or_else(|| {
                            panic!(
                                "watcher {n} of {watchers} got no event for revision {rev} within {WATCH_DEADLINE:?} ({:?})",
                                ts.store.watch_stats()
                            )
                        });
                        assert_eq!(resp.events.len(), 1, "one put, one event");
                        assert_eq!(resp.events[0].kv.mod_revision, rev, "watcher {n} got the wrong event");
                    }
                }
                let elapsed = start.elapsed();
                let stats = ts.store.watch_stats();
                assert_eq!(stats.unsynced, 0, "fan-out watchers fell behind: {stats:?}");
                elapsed
            })
        });
    }
    // A put no watcher is interested in, with 10k watchers on another prefix: the price every
    // write pays for the watchers that exist (one range check per distinct watched range).
    let ts = TempStore::open(false);
    let req = WatchRequest {
        key: Bytes::from_static(b"w/"),
        range_end: Bytes::from_static(b"w0"),
        ..Default::default()
    };
    let _ws: Vec<Watcher> = (0..10_000)
        .map(|_| ts.store.watch(req.clone()).expect("watch"))
        .collect();
    group.throughput(Throughput::Elements(1));
    group.bench_function("unwatched_put_with_10000", |b| {
        b.iter(|| {
            black_box(
                ts.store
                    .put(PutRequest::new("other", value.clone()))
                    .expect("put"),
            )
        })
    });
    group.finish();
}

/// Small samples and short measurements: the whole run should stay within a few minutes on 2
/// cores, and store-level differences of interest are far larger than the noise this allows.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_put, bench_range, bench_txn, bench_compaction, bench_watch
}
criterion_main!(benches);
