//! The `ballast` binary: `ballast kv` runs a KV member serving the etcd v3 API (etcd's flags),
//! `ballast server` the control plane (API server, scheduler, controllers; k3s's flags),
//! `ballast agent` a node agent, `ballast snapshot restore` builds a data directory from a
//! snapshot file, and `ballast store` drives an embedded store directly from the command line.

mod bench;
mod bench_api;
mod bench_sched;

/// mimalloc instead of glibc's malloc: a member allocates and frees small buffers for every request
/// (gRPC frames, protobuf messages, RocksDB batches), and glibc's malloc and free took about a tenth
/// of a member's CPU under write load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{bail, Context};
use ballast_store::{
    prefix_end, DeleteRangeRequest, DiskStore, KeyValue, PutRequest, RangeRequest, StoreOptions,
    WatchRequest,
};
use bytes::Bytes;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ballast",
    version,
    about = "Ballast: a replicated, watchable MVCC key-value store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a KV member serving the etcd v3 API (takes etcd's flags).
    Kv(Box<ballast_server::KvArgs>),
    /// Run the control plane: a Kubernetes API server on an embedded member (stacked) or on an
    /// external etcd v3 cluster (`--datastore-endpoint`); takes k3s's flags.
    Server(Box<ballast_orchestrator::server::ServerArgs>),
    /// Run a node agent against an API server (today: hollow nodes for scale tests, `--hollow`).
    Agent(Box<ballast_orchestrator::agent::AgentArgs>),
    /// Load-test any etcd v3 endpoint (Ballast or etcd): throughput and latency percentiles.
    Bench(Box<bench::BenchArgs>),
    /// Load-test a Kubernetes API server: create, get, list (1k, 10k), watch delivery.
    BenchApi(Box<bench_api::BenchApiArgs>),
    /// Measure scheduling on a control plane with hollow nodes: pods/s, create-to-running.
    BenchScheduler(Box<bench_sched::BenchSchedArgs>),
    /// Snapshot files (as written by `etcdctl snapshot save` against Ballast).
    Snapshot {
        #[command(subcommand)]
        op: SnapshotOp,
    },
    /// Use an embedded store directly (no server): put, get, del, watch, compact, lease, status.
    Store {
        /// The store's directory (created if missing).
        #[arg(long, default_value = "default.ballast")]
        data_dir: PathBuf,
        #[command(subcommand)]
        op: StoreOp,
    },
}

#[derive(Subcommand, Debug)]
enum SnapshotOp {
    /// Build a new member's data directory from a snapshot file.
    Restore {
        file: PathBuf,
        /// The data directory to create (must not exist).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum StoreOp {
    /// Put a key (prints the new revision).
    Put {
        key: String,
        value: String,
        #[arg(long, default_value_t = 0)]
        lease: i64,
    },
    /// Get a key, a range [key, range_end) or a prefix, at the latest or a given revision.
    Get {
        key: String,
        range_end: Option<String>,
        #[arg(long)]
        prefix: bool,
        #[arg(long, default_value_t = 0)]
        rev: i64,
        #[arg(long, default_value_t = 0)]
        limit: i64,
    },
    /// Delete a key, a range or a prefix (prints how many).
    Del {
        key: String,
        range_end: Option<String>,
        #[arg(long)]
        prefix: bool,
    },
    /// Print events for a key or prefix from a revision until `--count` events arrived.
    Watch {
        key: String,
        #[arg(long)]
        prefix: bool,
        #[arg(long, default_value_t = 0)]
        rev: i64,
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Compact history below a revision and wait until it is physically gone.
    Compact { revision: i64 },
    /// Grant a lease of TTL seconds (prints its id).
    LeaseGrant { ttl: i64 },
    /// Print revision, compaction and size.
    Status,
}

fn range_end(key: &str, end: Option<String>, prefix: bool) -> Bytes {
    match (prefix, end) {
        (true, _) => prefix_end(key.as_bytes()),
        (false, Some(end)) => Bytes::from(end),
        (false, None) => Bytes::new(),
    }
}

fn print_kv(kv: &KeyValue) {
    println!("{}", String::from_utf8_lossy(&kv.key));
    println!("{}", String::from_utf8_lossy(&kv.value));
}

fn main() {
    // RUST_LOG overrides. By default: our own notable events, and openraft's errors only (it warns
    // on every failed heartbeat to a member that is down).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,ballast_raft=info,ballast_server=info,ballast_orchestrator=info,openraft=error",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(Cli::parse()) {
        // etcdctl's style: the error text alone, exit status 1.
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Kv(args) => run_kv(*args),
        Command::Server(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("ballast-rt")
                .build()?;
            runtime.block_on(ballast_orchestrator::server::run(*args, shutdown_signal()))
        }
        Command::Agent(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("ballast-agent")
                .build()?;
            runtime.block_on(ballast_orchestrator::agent::run(*args, shutdown_signal()))
        }
        Command::Bench(args) => bench::run(*args),
        Command::BenchApi(args) => bench_api::run(*args),
        Command::BenchScheduler(args) => bench_sched::run(*args),
        Command::Snapshot {
            op: SnapshotOp::Restore { file, data_dir },
        } => {
            if data_dir.exists() {
                bail!("data-dir {:?} exists", data_dir.display());
            }
            std::fs::create_dir_all(&data_dir)?;
            let store_dir = data_dir.join(ballast_server::layout::STORE_DIR);
            let restored = ballast_server::snapshot::unpack(&file, &store_dir).and_then(|()| {
                // The restored member starts a new cluster with a new log: forget the old position.
                let store = DiskStore::open(&store_dir, StoreOptions::default())
                    .map_err(std::io::Error::other)?;
                store.reset_applied().map_err(std::io::Error::other)
            });
            restored.inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&data_dir);
            })?;
            println!(
                "restored snapshot {} into {}",
                file.display(),
                data_dir.display()
            );
            Ok(())
        }
        Command::Store { data_dir, op } => run_store(data_dir, op),
    }
}

fn run_kv(args: ballast_server::KvArgs) -> anyhow::Result<()> {
    let member_opts = args.member_options()?;
    let serve_opts = args.serve_options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ballast-rt")
        .build()?;
    runtime.block_on(async move {
        let data_dir = member_opts.data_dir.clone();
        let member = ballast_server::Member::open(member_opts)
            .await
            .with_context(|| format!("opening member at {}", data_dir.display()))?;
        let (addrs, serving) =
            ballast_server::serve(member.clone(), serve_opts, shutdown_signal()).await?;
        // Listening already (peers need the peer port to elect a leader); "ready" once published.
        let serving = tokio::spawn(serving);
        member.wait_published().await;
        let id = member.identity();
        tracing::info!(
            member = format_args!("{:x}", id.member_id),
            cluster = format_args!("{:x}", id.cluster_id),
            "serving the etcd API"
        );
        eprintln!(
            "ballast: member {:x} of cluster {:x} ready, serving clients on {addrs:?}",
            id.member_id, id.cluster_id
        );
        serving.await??;
        eprintln!("ballast: stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn run_store(data_dir: PathBuf, op: StoreOp) -> anyhow::Result<()> {
    let store = DiskStore::open(&data_dir, StoreOptions::default())
        .with_context(|| format!("opening store at {}", data_dir.display()))?;
    match op {
        StoreOp::Put { key, value, lease } => {
            let resp = store.put(PutRequest {
                lease,
                ..PutRequest::new(key, value)
            })?;
            println!("OK revision={}", resp.revision);
        }
        StoreOp::Get {
            key,
            range_end: end,
            prefix,
            rev,
            limit,
        } => {
            let end = range_end(&key, end, prefix);
            let req = RangeRequest {
                revision: rev,
                limit,
                ..RangeRequest::range(key, end)
            };
            for kv in store.range(&req)?.kvs {
                print_kv(&kv);
            }
        }
        StoreOp::Del {
            key,
            range_end: end,
            prefix,
        } => {
            let end = range_end(&key, end, prefix);
            println!(
                "{}",
                store
                    .delete_range(DeleteRangeRequest::range(key, end))?
                    .deleted
            );
        }
        StoreOp::Watch {
            key,
            prefix,
            rev,
            count,
        } => {
            let end = range_end(&key, None, prefix);
            let req = WatchRequest {
                key: Bytes::from(key),
                range_end: end,
                start_revision: rev,
                ..Default::default()
            };
            let mut watcher = store.watch(req)?;
            let mut seen = 0;
            while seen < count {
                let Some(resp) = watcher.blocking_recv() else {
                    bail!("watch ended")
                };
                if resp.canceled {
                    bail!(
                        "watch canceled: revision {} has been compacted",
                        resp.compact_revision
                    );
                }
                for ev in resp.events {
                    println!(
                        "{}",
                        if ev.kind == ballast_store::EventType::Put {
                            "PUT"
                        } else {
                            "DELETE"
                        }
                    );
                    print_kv(&ev.kv);
                    seen += 1;
                }
            }
        }
        StoreOp::Compact { revision } => {
            store.compact(revision)?;
            store.wait_compacted(revision);
            println!("compacted revision {revision}");
        }
        StoreOp::LeaseGrant { ttl } => {
            let (id, ttl) = store.lease_grant(0, ttl)?;
            println!("lease {id:016x} granted with TTL({ttl}s)");
        }
        StoreOp::Status => {
            let st = store.status();
            println!(
                "revision={} compact_revision={} size_bytes={}",
                st.revision, st.compact_revision, st.size_bytes
            );
        }
    }
    Ok(())
}
