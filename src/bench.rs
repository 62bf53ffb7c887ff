//! `ballast bench`: a load generator for any etcd v3 endpoint (Ballast or etcd), in the shape of
//! etcd's own `benchmark` tool: C clients over N connections run a total of T requests; it prints
//! throughput and latency percentiles (or JSON). `watch` measures delivery instead: W watchers on
//! one key, and the time from each put's acknowledgement to each watcher's event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ballast_proto::pb;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use pb::kv_client::KvClient;
use pb::watch_client::WatchClient;
use tonic::transport::Channel;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated endpoints (host:port), used round-robin by the connections.
    #[arg(long, default_value = "127.0.0.1:2379")]
    endpoints: String,
    /// gRPC connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Concurrent clients, spread over the connections.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 10_000)]
    total: u64,
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    #[arg(long, default_value_t = 256)]
    val_size: usize,
    /// Distinct keys written or read (random unless --sequential-keys).
    #[arg(long, default_value_t = 100_000)]
    key_space: u64,
    #[arg(long)]
    sequential_keys: bool,
    /// At most this many requests (or watch puts) a second in all.
    #[arg(long, global = true)]
    rate: Option<u64>,
    /// Give up on a request after this many milliseconds (it counts as an error).
    #[arg(long, global = true)]
    timeout_ms: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum Workload {
    /// Put random (or sequential) keys.
    Put,
    /// Get single keys (write them first with `put`).
    Range {
        #[arg(long, value_enum, default_value_t = Consistency::L)]
        consistency: Consistency,
    },
    /// Compare-and-swap as etcd's STM does it: a txn that puts a key if it was not modified after
    /// the newest revision this client has seen (else it reads the key).
    Txn,
    /// Delete single keys.
    Delete,
    /// Watch latency: `--watchers` watchers of one key over `--streams` watch streams (spread over
    /// the connections); the clients put that key `--total` times (paced by `--rate`, if given),
    /// and each event's delay after its put's acknowledgement is measured.
    Watch {
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        #[arg(long, default_value_t = 10)]
        streams: usize,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    /// Linearizable.
    L,
    /// Serializable.
    S,
}

impl Workload {
    fn name(&self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range {
                consistency: Consistency::L,
            } => "range-linearizable",
            Workload::Range {
                consistency: Consistency::S,
            } => "range-serializable",
            Workload::Txn => "txn-cas",
            Workload::Delete => "delete",
            Workload::Watch { .. } => "watch",
        }
    }
}

fn key(args: &BenchArgs, n: u64) -> Bytes {
    let mut k = format!("{n:0width$}", width = args.key_size).into_bytes();
    k.truncate(args.key_size.max(1));
    Bytes::from(k)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(Arc::new(args)))
}

/// What a run measured: one latency per request (or per watch event), failures, failed
/// compares (txn only: not errors, the swap lost a race), and when each request succeeded
/// (request workloads only), for the longest time without a success.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    errors: u64,
    failed_compares: u64,
    succeeded_at: Vec<Instant>,
}

impl Measured {
    fn add(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.failed_compares += other.failed_compares;
        self.succeeded_at.extend(other.succeeded_at);
    }
}

/// The longest stretch of a run with no request succeeding (from its start to the first success,
/// between two, or from the last to its end): what a leader failure costs writers.
fn longest_stall(succeeded_at: &mut [Instant], started: Instant, ended: Instant) -> Duration {
    succeeded_at.sort_unstable();
    let mut previous = started;
    let mut longest = Duration::ZERO;
    for &at in succeeded_at.iter().chain([&ended]) {
        longest = longest.max(at.saturating_duration_since(previous));
        previous = at;
    }
    longest
}

async fn run_async(args: Arc<BenchArgs>) -> anyhow::Result<()> {
    let endpoints: Vec<String> = args
        .endpoints
        .split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    anyhow::ensure!(
        !endpoints.is_empty() && args.conns > 0 && args.clients > 0,
        "need endpoints, --conns and --clients"
    );
    let mut channels = Vec::new();
    for i in 0..args.conns {
        let url = format!("http://{}", endpoints[i % endpoints.len()]);
        let ch = Channel::from_shared(url.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        channels.push(ch);
    }
    let started = Instant::now();
    let mut measured = match args.workload {
        Workload::Watch { watchers, streams } => watch(&args, &channels, watchers, streams).await?,
        _ => requests(&args, &channels, started).await?,
    };
    let ended = Instant::now();
    let stall = longest_stall(&mut measured.succeeded_at, started, ended);
    report(&args, &mut measured, ended - started, stall)
}

/// The request workloads: `--clients` tasks take request numbers until `--total` are done. A
/// client whose request failed waits 10 ms before its next (a member that is down refuses at once).
async fn requests(
    args: &Arc<BenchArgs>,
    channels: &[Channel],
    started: Instant,
) -> anyhow::Result<Measured> {
    let value = Bytes::from(vec![b'v'; args.val_size]);
    let next = Arc::new(AtomicU64::new(0));
    let seed = Arc::new(AtomicI64::new(0x2545_f491_4f6c_dd1d));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let (args, next, value) = (args.clone(), next.clone(), value.clone());
        let mut rng = seed.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u64 | 1;
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::default();
            // txn: the newest revision this client has seen.
            let mut seen = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.total {
                    break;
                }
                pace(args.rate, started, n).await;
                let k = if args.sequential_keys {
                    n % args.key_space
                } else {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % args.key_space
                };
                let t = Instant::now();
                let call = async {
                    match args.workload {
                        Workload::Put => kv
                            .put(pb::PutRequest {
                                key: key(&args, k),
                                value: value.clone(),
                                ..Default::default()
                            })
                            .await
                            .is_ok(),
                        Workload::Range { consistency } => kv
                            .range(pb::RangeRequest {
                                key: key(&args, k),
                                serializable: consistency == Consistency::S,
                                ..Default::default()
                            })
                            .await
                            .is_ok(),
                        Workload::Delete => kv
                            .delete_range(pb::DeleteRangeRequest {
                                key: key(&args, k),
                                ..Default::default()
                            })
                            .await
                            .is_ok(),
                        Workload::Txn => {
                            match kv.txn(cas(key(&args, k), value.clone(), seen)).await {
                                Ok(resp) => {
                                    let resp = resp.into_inner();
                                    m.failed_compares += u64::from(!resp.succeeded);
                                    seen = seen.max(resp.header.map_or(0, |h| h.revision));
                                    true
                                }
                                Err(_) => false,
                            }
                        }
                        Workload::Watch { .. } => unreachable!("watch runs on its own"),
                    }
                };
                let ok = match args.timeout_ms {
                    Some(ms) => tokio::time::timeout(Duration::from_millis(ms), call)
                        .await
                        .unwrap_or(false),
                    None => call.await,
                };
                m.latencies.push(t.elapsed());
                if ok {
                    m.succeeded_at.push(Instant::now());
                } else {
                    m.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            m
        }));
    }
    let mut all = Measured::default();
    for t in tasks {
        all.add(t.await?);
    }
    Ok(all)
}

/// Waits until request `n` is due, at `rate` requests a second from `started` (no wait without).
async fn pace(rate: Option<u64>, started: Instant, n: u64) {
    if let Some(rate) = rate {
        tokio::time::sleep_until(
            (started + Duration::from_secs_f64(n as f64 / rate.max(1) as f64)).into(),
        )
        .await;
    }
}

/// If `key` was last modified at or before revision `seen`, put `value`; else read the key.
fn cas(key: Bytes, value: Bytes, seen: i64) -> pb::TxnRequest {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    use pb::request_op::Request;
    pb::TxnRequest {
        compare: vec![pb::Compare {
            result: CompareResult::Less as i32,
            target: CompareTarget::Mod as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::ModRevision(seen + 1)),
            ..Default::default()
        }],
        success: vec![pb::RequestOp {
            request: Some(Request::RequestPut(pb::PutRequest {
                key: key.clone(),
                value,
                ..Default::default()
            })),
        }],
        failure: vec![pb::RequestOp {
            request: Some(Request::RequestRange(pb::RangeRequest {
                key,
                ..Default::default()
            })),
        }],
    }
}

/// Watch latency: opens the watchers, then puts; every event's delay after its put's
/// acknowledgement (0 if it came first) is a latency; events that never came are errors.
async fn watch(
    args: &Arc<BenchArgs>,
    channels: &[Channel],
    watchers: usize,
    streams: usize,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        streams > 0 && watchers >= streams,
        "need --streams > 0 and --watchers >= --streams"
    );
    let watched = key(args, 0);
    let mut receivers = Vec::new();
    for s in 0..streams {
        let per_stream = watchers / streams + usize::from(s < watchers % streams);
        let (tx, rx) = tokio::sync::mpsc::channel(per_stream.max(1));
        let mut client = WatchClient::new(channels[s % channels.len()].clone())
            .max_decoding_message_size(usize::MAX);
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: watched.clone(),
                    ..Default::default()
                },
            )),
        };
        for _ in 0..per_stream {
            tx.send(create.clone()).await?;
        }
        let mut events = client
            .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .context("opening a watch stream")?
            .into_inner();
        let mut created = 0;
        while created < per_stream {
            let resp = events
                .message()
                .await?
                .context("the watch stream ended before its watchers were created")?;
            created += usize::from(resp.created);
        }
        // Keep the request side open: closing it would end the stream.
        receivers.push((tx, events, per_stream));
    }
    let expected_per_watcher = args.total;
    let collectors: Vec<_> = receivers
        .into_iter()
        .map(|(tx, mut events, per_stream)| {
            tokio::spawn(async move {
                let _open = tx;
                let want = per_stream as u64 * expected_per_watcher;
                let mut got = Vec::with_capacity(want as usize);
                while (got.len() as u64) < want {
                    match tokio::time::timeout(Duration::from_secs(30), events.message()).await {
                        Ok(Ok(Some(resp))) => {
                            let now = Instant::now();
                            got.extend(
                                resp.events
                                    .iter()
                                    .filter_map(|e| e.kv.as_ref())
                                    .map(|kv| (kv.mod_revision, now)),
                            );
                        }
                        _ => break,
                    }
                }
                (got, want)
            })
        })
        .collect();
    let acks: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let value = Bytes::from(vec![b'v'; args.val_size]);
    let started = Instant::now();
    let putters: Vec<_> = (0..args.clients)
        .map(|c| {
            let mut kv = KvClient::new(channels[c % channels.len()].clone());
            let (args, next, acks, value, watched) = (
                args.clone(),
                next.clone(),
                acks.clone(),
                value.clone(),
                watched.clone(),
            );
            tokio::spawn(async move {
                let mut errors = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= args.total {
                        return errors;
                    }
                    pace(args.rate, started, n).await;
                    match kv
                        .put(pb::PutRequest {
                            key: watched.clone(),
                            value: value.clone(),
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(resp) => {
                            let rev = resp.into_inner().header.map_or(0, |h| h.revision);
                            acks.lock().unwrap().insert(rev, Instant::now());
                        }
                        Err(_) => errors += 1,
                    }
                }
            })
        })
        .collect();
    let mut m = Measured::default();
    for p in putters {
        m.errors += p.await?;
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    for c in collectors {
        let (got, want) = c.await?;
        m.errors += want.saturating_sub(got.len() as u64);
        for (rev, at) in got {
            match acks.get(&rev) {
                Some(acked) => m.latencies.push(at.saturating_duration_since(*acked)),
                None => m.errors += 1,
            }
        }
    }
    Ok(m)
}

fn report(
    args: &BenchArgs,
    m: &mut Measured,
    elapsed: Duration,
    stall: Duration,
) -> anyhow::Result<()> {
    let all = &mut m.latencies;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let qps = all.len() as f64 / elapsed.as_secs_f64();
    let (errors, failed_compares) = (m.errors, m.failed_compares);
    let what = if matches!(args.workload, Workload::Watch { .. }) {
        "events"
    } else {
        "requests"
    };
    if args.json {
        println!(
            "{{\"workload\":\"{}\",\"clients\":{},\"conns\":{},\"{what}\":{},\"errors\":{errors},\"failed_compares\":{failed_compares},\"seconds\":{:.3},\"qps\":{qps:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"stall_ms\":{:.3}}}",
            args.workload.name(),
            args.clients,
            args.conns,
            all.len(),
            elapsed.as_secs_f64(),
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(all.last().copied().unwrap_or_default()),
            ms(stall)
        );
    } else {
        println!("{}: {} {what}, {} clients, {} conns, {errors} errors, {failed_compares} failed compares", args.workload.name(), all.len(), args.clients, args.conns);
        println!("  {qps:.0} {what}/s in {:.2} s", elapsed.as_secs_f64());
        println!(
            "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(all.last().copied().unwrap_or_default())
        );
        if !matches!(args.workload, Workload::Watch { .. }) {
            println!("  longest time without a success: {:.1} ms", ms(stall));
        }
    }
    anyhow::ensure!(errors == 0, "{errors} {what} failed or missing");
    Ok(())
}
