//! `ballast bench-scheduler`: scheduler_perf's measurement on a running control plane with
//! hollow nodes: one Deployment of `--replicas` pods is created, and a watch of its pods times
//! each one from first seen to bound to Running. Printed: pods scheduled per second, the time
//! from the Deployment's creation to all pods Running, p50/p99 of each pod's create-to-running,
//! and the CPU and RSS of the processes named by `--pid`, beside Kubernetes' figures.
//! `scripts/bench-scheduler.sh` starts the control plane and 1,000 hollow nodes and runs it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct BenchSchedArgs {
    /// The API server, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:6443")]
    server: String,
    /// Pods of the Deployment.
    #[arg(long, default_value_t = 10_000)]
    replicas: usize,
    /// Ready nodes to wait for before starting.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Processes to report CPU and RSS of, `label=pid,...`.
    #[arg(long, default_value = "")]
    pid: String,
    /// The namespace this run creates.
    #[arg(long, default_value = "bench-scheduler")]
    namespace: String,
    /// How long to wait for every pod to run.
    #[arg(long, default_value = "600")]
    timeout_seconds: u64,
}

/// What the watch saw of one pod, by this process's clock.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    created: Option<Instant>,
    bound: Option<Instant>,
    running: Option<Instant>,
}

/// A process's CPU time (user + system) and RSS, from /proc.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    rss_kib: u64,
    peak_kib: u64,
}

fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(Usage {
        cpu: Duration::from_millis(ticks * 10),
        rss_kib: kib("VmRSS:"),
        peak_kib: kib("VmHWM:"),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run(args: BenchSchedArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: BenchSchedArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_from(kube::Config::new(args.server.parse()?))?;
    let pids: Vec<(String, u32)> = args
        .pid
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (label, pid) = s.split_once('=').context("--pid wants label=pid")?;
            Ok((label.to_string(), pid.parse()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready = nodes
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready >= args.nodes {
            break;
        }
        if Instant::now() > deadline {
            bail!("{ready} of {} nodes Ready after 5 minutes", args.nodes);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before: Vec<(String, Option<Usage>)> =
        pids.iter().map(|(l, p)| (l.clone(), usage(*p))).collect();
    let run_start = Instant::now();
    println!(
        "bench-scheduler: {} pods on {} hollow nodes (reference: scheduler_perf's floor, 680-810 pods/s at 5,000 nodes; pod startup SLO p99 <= 5 s)",
        args.replicas, args.nodes
    );
    // scheduler_perf's way: pods created directly, as fast as 32 clients can.
    let pods_ns = format!("{}-pods", args.namespace);
    create_namespace(&client, &pods_ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &pods_ns);
    let watch = watch_pods(pods.clone(), args.replicas, args.timeout_seconds).await;
    let start = Instant::now();
    let creators = 32;
    let template = pod_template();
    let mut tasks = Vec::new();
    for c in 0..creators {
        let pods = pods.clone();
        let template = template.clone();
        let n = args.replicas;
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(creators) {
                let mut pod = template.clone();
                pod.metadata.name = Some(format!("bench-{i}"));
                pods.create(&PostParams::default(), &pod).await?;
            }
            anyhow::Ok(())
        }));
    }
    let created = futures_util::future::try_join_all(tasks).await?;
    for r in created {
        r?;
    }
    let created_in = start.elapsed();
    let seen = watch.await??;
    report("pods created directly", &seen, start, Some(created_in));
    // The controllers' way: one Deployment.
    create_namespace(&client, &args.namespace).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let watch = watch_pods(pods, args.replicas, args.timeout_seconds).await;
    let mut deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "bench" },
        "spec": {
            "replicas": args.replicas,
            "selector": { "matchLabels": { "app": "bench" } },
        },
    }))?;
    if let Some(spec) = deployment.spec.as_mut() {
        spec.template = template_of(template.clone());
    }
    let start = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), &args.namespace)
        .create(&PostParams::default(), &deployment)
        .await?;
    let seen = watch.await??;
    report("one Deployment", &seen, start, None);
    let total = run_start.elapsed();
    let after: Vec<Option<Usage>> = pids.iter().map(|(_, p)| usage(*p)).collect();
    for ((label, before), after) in before.iter().zip(&after) {
        if let (Some(b), Some(a)) = (before, after) {
            let cores = (a.cpu.saturating_sub(b.cpu)).as_secs_f64() / total.as_secs_f64();
            println!(
                "  {label:20} CPU {cores:5.2} cores over both runs, RSS {} MiB (peak {} MiB)",
                a.rss_kib / 1024,
                a.peak_kib / 1024
            );
        }
    }
    println!("  (reference: a k3s server with a workload: ~6% of a core idle, ~1.6 GB RSS)");
    Ok(())
}

/// The pods both workloads make: busybox with small requests (10m CPU, 10Mi).
fn pod_template() -> Pod {
    serde_json::from_value(json!({
        "metadata": { "labels": { "app": "bench" } },
        "spec": { "containers": [{
            "name": "c", "image": "busybox",
            "resources": { "requests": { "cpu": "10m", "memory": "10Mi" } },
        }]},
    }))
    .expect("a valid pod")
}

fn template_of(pod: Pod) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    k8s_openapi::api::core::v1::PodTemplateSpec {
        metadata: Some(pod.metadata),
        spec: pod.spec,
    }
}

async fn create_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

/// Starts watching one namespace's pods, timing each from first seen to bound to Running,
/// until `n` run; returns once the watch is open.
async fn watch_pods(
    pods: Api<Pod>,
    n: usize,
    timeout_seconds: u64,
) -> tokio::task::JoinHandle<anyhow::Result<HashMap<String, Seen>>> {
    let mut stream = watcher(pods, watcher::Config::default())
        .applied_objects()
        .boxed();
    let task = tokio::spawn(async move {
        let mut seen: HashMap<String, Seen> = HashMap::new();
        let mut running = 0;
        let limit = Instant::now() + Duration::from_secs(timeout_seconds);
        while running < n {
            let next = tokio::time::timeout_at(limit.into(), stream.next())
                .await
                .with_context(|| format!("{running} of {n} pods Running in time"))?;
            let Some(pod) = next.transpose()? else {
                bail!("the watch ended");
            };
            let now = Instant::now();
            let entry = seen
                .entry(pod.metadata.uid.clone().unwrap_or_default())
                .or_default();
            entry.created.get_or_insert(now);
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
            {
                entry.bound.get_or_insert(now);
            }
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && entry.running.is_none()
            {
                entry.running = Some(now);
                running += 1;
            }
        }
        Ok(seen)
    });
    // The watch lists, then watches: nothing is created before it is open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    task
}

/// Prints one workload's figures.
fn report(what: &str, seen: &HashMap<String, Seen>, start: Instant, created_in: Option<Duration>) {
    let bound: Vec<Instant> = seen.values().filter_map(|s| s.bound).collect();
    let first = bound.iter().min().copied().unwrap_or(start);
    let last = bound.iter().max().copied().unwrap_or(start);
    let scheduling = last.duration_since(first).max(Duration::from_millis(1));
    let all_running = seen
        .values()
        .filter_map(|s| s.running)
        .max()
        .map_or(Duration::ZERO, |t| t.duration_since(start));
    let sorted = |f: fn(&Seen) -> Option<Duration>| {
        let mut v: Vec<Duration> = seen.values().filter_map(f).collect();
        v.sort();
        v
    };
    let to_bound = sorted(|s| Some(s.bound?.duration_since(s.created?)));
    let to_running = sorted(|s| Some(s.running?.duration_since(s.created?)));
    println!("  {what}:");
    if let Some(took) = created_in {
        println!(
            "    created:              {:9.0} pods/s ({} in {:.2} s)",
            seen.len() as f64 / took.as_secs_f64(),
            seen.len(),
            took.as_secs_f64()
        );
    }
    println!(
        "    scheduled:            {:9.0} pods/s ({} bound in {:.2} s, first to last bind)",
        bound.len() as f64 / scheduling.as_secs_f64(),
        bound.len(),
        scheduling.as_secs_f64()
    );
    println!(
        "    start -> all running: {:9.2} s ({:.0} pods/s end to end)",
        all_running.as_secs_f64(),
        seen.len() as f64 / all_running.as_secs_f64().max(0.001)
    );
    println!(
        "    pod create -> bound:   p50 {:.3} s, p99 {:.3} s",
        percentile(&to_bound, 0.5).as_secs_f64(),
        percentile(&to_bound, 0.99).as_secs_f64()
    );
    println!(
        "    pod create -> running: p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        percentile(&to_running, 0.5).as_secs_f64(),
        percentile(&to_running, 0.99).as_secs_f64(),
        to_running.last().copied().unwrap_or_default().as_secs_f64()
    );
}
