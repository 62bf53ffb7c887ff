//! `ballast bench-api`: a load generator for a Kubernetes API server (`ballast server`, or any
//! kube-apiserver reachable over plain HTTP): create, get, list of 1,000 and 10,000 objects, and
//! watch delivery to one watch and to many (`--watchers`, the fan-out), each with requests/s and
//! latency percentiles. `scripts/bench-apiserver.sh` runs it against a stacked server and servers
//! on `ballast kv` and on etcd, side by side.
//!
//! The HTTP/1.1 client is written here (keep-alive, Content-Length and chunked bodies): the
//! binary has no HTTP client otherwise, and this one adds nothing per request to what is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Args, Debug, Clone)]
pub struct BenchApiArgs {
    /// The API server, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:6443")]
    server: String,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// ConfigMaps created (and then read) by the create and get workloads.
    #[arg(long, default_value_t = 2000)]
    creates: usize,
    /// Gets in all.
    #[arg(long, default_value_t = 5000)]
    gets: usize,
    /// Lists of each size.
    #[arg(long, default_value_t = 20)]
    lists: usize,
    /// Events the watch workloads measure.
    #[arg(long, default_value_t = 500)]
    watch_events: usize,
    /// Watches of one resource in the fan-out workload.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// A prefix for the namespaces this run creates (runs on one server need different ones).
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Print one JSON object per workload instead of text.
    #[arg(long)]
    json: bool,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(server: &str) -> anyhow::Result<Conn> {
        let host = server
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let stream = TcpStream::connect(&host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            host,
        })
    }

    async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        Ok(())
    }

    /// The status line and headers: the status and whether the body is chunked (else its length).
    async fn head(&mut self) -> anyhow::Result<(u16, Option<usize>)> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let mut length = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("connection closed in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                return Ok((status, length));
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse()?);
                }
            }
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send(method, path, body).await?;
        let (status, length) = self.head().await?;
        let mut out = Vec::new();
        match length {
            Some(n) => {
                out.resize(n, 0);
                self.stream.read_exact(&mut out).await?;
            }
            None => {
                while let Some(chunk) = self.chunk().await? {
                    out.extend(chunk);
                }
            }
        }
        Ok((status, out))
    }

    /// The next chunk of a chunked body; None at its end.
    async fn chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let size = usize::from_str_radix(line.trim(), 16).context("bad chunk size")?;
        let mut chunk = vec![0; size + 2];
        self.stream.read_exact(&mut chunk).await?;
        chunk.truncate(size);
        Ok((size > 0).then_some(chunk))
    }
}

/// What one workload measured.
struct Measured {
    name: String,
    latencies: Vec<Duration>,
    took: Duration,
    errors: usize,
}

impl Measured {
    fn print(&mut self, json: bool) {
        self.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies.len() as f64 * p).ceil() as usize)
                .clamp(1, self.latencies.len())
                - 1;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        let rate = self.latencies.len() as f64 / self.took.as_secs_f64().max(1e-9);
        if json {
            println!(
                "{{\"workload\":\"{}\",\"requests\":{},\"errors\":{},\"per_second\":{rate:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
                self.name,
                self.latencies.len(),
                self.errors,
                pct(0.50),
                pct(0.99)
            );
        } else {
            println!(
                "{:<24} {:>8} req  {:>10.1} req/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {}",
                self.name,
                self.latencies.len(),
                rate,
                pct(0.50),
                pct(0.99),
                self.errors
            );
        }
    }
}

fn config_map(name: &str) -> Vec<u8> {
    format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"{name}\"}},\"data\":{{\"value\":\"{}\"}}}}",
        "x".repeat(256)
    )
    .into_bytes()
}

/// Runs `total` requests over `clients` connections; `request(i)` is the i-th (method, path, body).
async fn run_requests<F>(
    args: &BenchApiArgs,
    name: &str,
    total: usize,
    expect: u16,
    request: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> (&'static str, String, Vec<u8>) + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (request, next, server) = (request.clone(), next.clone(), args.server.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&server).await?;
            let (mut latencies, mut errors) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok((latencies, errors));
                }
                let (method, path, body) = request(i);
                let at = Instant::now();
                match conn.request(method, &path, &body).await {
                    Ok((status, _)) if status == expect => latencies.push(at.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(&server).await?;
                    }
                }
            }
        }));
    }
    let mut measured = Measured {
        name: name.to_string(),
        latencies: Vec::new(),
        took: Duration::ZERO,
        errors: 0,
    };
    for task in tasks {
        let (latencies, errors) = task.await??;
        measured.latencies.extend(latencies);
        measured.errors += errors;
    }
    measured.took = started.elapsed();
    Ok(measured)
}

async fn create_namespace(server: &str, name: &str) -> anyhow::Result<()> {
    let body = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"}}}}"
    );
    let (status, resp) = Conn::open(server)
        .await?
        .request("POST", "/api/v1/namespaces", body.as_bytes())
        .await?;
    if status != 201 {
        bail!(
            "creating namespace {name}: {status} {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(())
}

/// Fills namespace `ns` with `n` ConfigMaps (not measured).
async fn fill(args: &BenchApiArgs, ns: &str, n: usize) -> anyhow::Result<()> {
    create_namespace(&args.server, ns).await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let filled = run_requests(args, "fill", n, 201, move |i| {
        ("POST", path.clone(), config_map(&format!("f-{i}")))
    })
    .await?;
    if filled.errors > 0 {
        bail!("{} of {n} creates failed while filling {ns}", filled.errors);
    }
    Ok(())
}

/// Opens a watch on the ConfigMaps of `ns` and reads it until `events` of the `w-<i>` objects
/// have arrived: the time from each one's create (`sent[i]`) to its event.
async fn watch_reader(
    server: &str,
    ns: &str,
    events: usize,
    sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>> {
    let mut watch = Conn::open(server).await?;
    watch
        .send(
            "GET",
            &format!("/api/v1/namespaces/{ns}/configmaps?watch=1"),
            b"",
        )
        .await?;
    let (status, _) = watch.head().await?;
    if status != 200 {
        bail!("watch: {status}");
    }
    Ok(tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut pending = Vec::new();
        while latencies.len() < events {
            let Some(chunk) = watch.chunk().await? else {
                bail!("the watch ended")
            };
            pending.extend(chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let event: serde_json::Value = serde_json::from_slice(&line)?;
                let name = event["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default();
                if let Some(i) = name
                    .strip_prefix("w-")
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    if let Some(at) = sent.lock().unwrap()[i] {
                        latencies.push(at.elapsed());
                    }
                }
            }
        }
        anyhow::Ok(latencies)
    }))
}

/// Creates ConfigMaps one after another while `watchers` watches on their namespace read the
/// events: the time from each create's start to its ADDED event on each watch (so `per_second`
/// counts deliveries: events times watchers).
async fn watch_delivery(
    args: &BenchApiArgs,
    name: &str,
    ns: &str,
    watchers: usize,
) -> anyhow::Result<Measured> {
    create_namespace(&args.server, ns).await?;
    let events = args.watch_events;
    let sent: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; events]));
    let mut readers = Vec::new();
    for _ in 0..watchers {
        readers.push(watch_reader(&args.server, ns, events, sent.clone()).await?);
    }
    let started = Instant::now();
    let mut conn = Conn::open(&args.server).await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    for i in 0..events {
        sent.lock().unwrap()[i] = Some(Instant::now());
        conn.request("POST", &path, &config_map(&format!("w-{i}")))
            .await?;
    }
    let mut latencies = Vec::new();
    for reader in readers {
        let got = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .context("watch events within 60 s")???;
        latencies.extend(got);
    }
    Ok(Measured {
        name: name.into(),
        latencies,
        took: started.elapsed(),
        errors: 0,
    })
}

pub fn run(args: BenchApiArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ns = format!("{}-objects", args.namespace);
        create_namespace(&args.server, &ns).await?;
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        let creates = args.creates;
        let p = path.clone();
        run_requests(&args, "create", creates, 201, move |i| {
            ("POST", p.clone(), config_map(&format!("c-{i}")))
        })
        .await?
        .print(args.json);
        let p = path.clone();
        run_requests(&args, "get", args.gets, 200, move |i| {
            ("GET", format!("{p}/c-{}", i * 7919 % creates), Vec::new())
        })
        .await?
        .print(args.json);
        for size in [1000, 10_000] {
            let ns = format!("{}-list{size}", args.namespace);
            fill(&args, &ns, size).await?;
            let p = format!("/api/v1/namespaces/{ns}/configmaps");
            let one_client = BenchApiArgs {
                clients: 1,
                ..args.clone()
            };
            run_requests(
                &one_client,
                &format!("list {size}"),
                args.lists,
                200,
                move |_| ("GET", p.clone(), Vec::new()),
            )
            .await?
            .print(args.json);
        }
        let ns = format!("{}-watch", args.namespace);
        watch_delivery(&args, "watch delivery", &ns, 1)
            .await?
            .print(args.json);
        // Many watches of one resource: what the API server's fan-out serves.
        let ns = format!("{}-fanout", args.namespace);
        let name = format!("watch x{}", args.watchers);
        watch_delivery(&args, &name, &ns, args.watchers)
            .await?
            .print(args.json);
        Ok(())
    })
}
