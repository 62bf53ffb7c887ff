//! `ballast bench`: a load generator for any etcd v3 endpoint (Ballast or etcd), in the shape of
//! etcd's own `benchmark` tool: C clients over N connections run a total of T requests; it prints
//! throughput and latency percentiles (or JSON).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ballast_proto::pb;
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use pb::kv_client::KvClient;
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
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    /// Linearizable.
    L,
    /// Serializable.
    S,
}

fn key(args: &BenchArgs, n: u64) -> Bytes {
    let mut k = format!("{n:0width$}", width = args.key_size).into_bytes();
    k.truncate(args.key_size.max(1));
    Bytes::from(k)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(Arc::new(args)))
}

async fn run_async(args: Arc<BenchArgs>) -> anyhow::Result<()> {
    let endpoints: Vec<String> = args.endpoints.split(',').map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).collect();
    anyhow::ensure!(!endpoints.is_empty() && args.conns > 0 && args.clients > 0, "need endpoints, --conns and --clients");
    let mut channels = Vec::new();
    for i in 0..args.conns {
        let url = format!("http://{}", endpoints[i % endpoints.len()]);
        let ch = Channel::from_shared(url.clone())?.tcp_nodelay(true).connect().await.with_context(|| format!("connecting to {url}"))?;
        channels.push(ch);
    }
    let value = Bytes::from(vec![b'v'; args.val_size]);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let seed = Arc::new(AtomicI64::new(0x2545_f491_4f6c_dd1d));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let (args, next, errors, value) = (args.clone(), next.clone(), errors.clone(), value.clone());
        let mut rng = seed.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u64 | 1;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.total {
                    break;
                }
                let k = if args.sequential_keys {
                    n % args.key_space
                } else {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % args.key_space
                };
                let t = Instant::now();
                let ok = match args.workload {
                    Workload::Put => kv.put(pb::PutRequest { key: key(&args, k), value: value.clone(), ..Default::default() }).await.is_ok(),
                    Workload::Range { consistency } => kv
                        .range(pb::RangeRequest { key: key(&args, k), serializable: consistency == Consistency::S, ..Default::default() })
                        .await
                        .is_ok(),
                };
                latencies.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::with_capacity(args.total as usize);
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let qps = all.len() as f64 / elapsed.as_secs_f64();
    let errors = errors.load(Ordering::Relaxed);
    if args.json {
        println!(
            "{{\"workload\":\"{:?}\",\"clients\":{},\"conns\":{},\"requests\":{},\"errors\":{errors},\"seconds\":{:.3},\"qps\":{qps:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
            args.workload,
            args.clients,
            args.conns,
            all.len(),
            elapsed.as_secs_f64(),
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(all.last().copied().unwrap_or_default())
        );
    } else {
        println!("{:?}: {} requests, {} clients, {} conns, {errors} errors", args.workload, all.len(), args.clients, args.conns);
        println!("  {qps:.0} requests/s in {:.2} s", elapsed.as_secs_f64());
        println!(
            "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            ms(pct(0.5)),
            ms(pct(0.9)),
            ms(pct(0.99)),
            ms(all.last().copied().unwrap_or_default())
        );
    }
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}
