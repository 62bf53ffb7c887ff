//! The `ballast` binary. Today it drives the embedded store from the command line
//! (`ballast store ...`); `ballast kv` (the etcd-API member) arrives with the etcd API issue.

use std::path::PathBuf;

use anyhow::{bail, Context};
use ballast_store::{
    prefix_end, DeleteRangeRequest, DiskStore, KeyValue, PutRequest, RangeRequest, StoreOptions, WatchRequest,
};
use bytes::Bytes;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "ballast", version, about = "Ballast: a replicated, watchable MVCC key-value store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    if let Err(err) = run(Cli::parse()) {
        // etcdctl's style: the error text alone, exit status 1.
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Store { data_dir, op } = cli.command;
    let store = DiskStore::open(&data_dir, StoreOptions::default())
        .with_context(|| format!("opening store at {}", data_dir.display()))?;
    match op {
        StoreOp::Put { key, value, lease } => {
            let resp = store.put(PutRequest { lease, ..PutRequest::new(key, value) })?;
            println!("OK revision={}", resp.revision);
        }
        StoreOp::Get { key, range_end: end, prefix, rev, limit } => {
            let end = range_end(&key, end, prefix);
            let req = RangeRequest { revision: rev, limit, ..RangeRequest::range(key, end) };
            for kv in store.range(&req)?.kvs {
                print_kv(&kv);
            }
        }
        StoreOp::Del { key, range_end: end, prefix } => {
            let end = range_end(&key, end, prefix);
            println!("{}", store.delete_range(DeleteRangeRequest::range(key, end))?.deleted);
        }
        StoreOp::Watch { key, prefix, rev, count } => {
            let end = range_end(&key, None, prefix);
            let req = WatchRequest { key: Bytes::from(key), range_end: end, start_revision: rev, ..Default::default() };
            let mut watcher = store.watch(req)?;
            let mut seen = 0;
            while seen < count {
                let Some(resp) = watcher.blocking_recv() else { bail!("watch ended") };
                if resp.canceled {
                    bail!("watch canceled: revision {} has been compacted", resp.compact_revision);
                }
                for ev in resp.events {
                    println!("{}", if ev.kind == ballast_store::EventType::Put { "PUT" } else { "DELETE" });
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
            println!("revision={} compact_revision={} size_bytes={}", st.revision, st.compact_revision, st.size_bytes);
        }
    }
    Ok(())
}
