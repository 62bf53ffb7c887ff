//! `ballast server` processes for the orchestrator's tests, and the real `kubectl` 1.32 pointed
//! at them with the kubeconfig the server wrote.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::process::{tail, Launch};

/// How long a server may take to say it serves.
const READY_TIMEOUT: Duration = Duration::from_secs(40);

/// What a kubectl run printed.
#[derive(Debug)]
pub struct Kubectl {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn ok(self, args: &[&str]) -> String {
        assert!(
            self.success,
            "kubectl {args:?} failed:\n{}{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts that it failed with `line` in its error output.
    pub fn fails_with(self, args: &[&str], line: &str) {
        assert!(
            !self.success,
            "kubectl {args:?} should fail, printed:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains(line),
            "kubectl {args:?}: expected {line:?} in:\n{}",
            self.stderr
        );
    }
}

/// Flags for a server that is only an API server (no scheduler, no controllers writing
/// objects): the suites of the API's own semantics, where a controller's write would change
/// what they check (a resourceVersion, a status column).
pub const API_ONLY: &[&str] = &["--disable-scheduler", "--disable-controller-manager"];

/// One `ballast server` process.
#[derive(Debug)]
pub struct ApiServer {
    child: Child,
    pub port: u16,
    /// The embedded member's client URL (stacked only).
    pub etcd_url: Option<String>,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
    /// kubectl's discovery cache, per server.
    cache: PathBuf,
    _tmp: tempfile::TempDir,
}

impl ApiServer {
    /// A stacked server: its store is a member in the process.
    pub fn stacked(extra: &[&str]) -> ApiServer {
        let etcd = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args = vec![
            format!("--listen-client-urls={etcd}"),
            format!("--listen-peer-urls={peer}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        ApiServer::start(args, Some(etcd))
    }

    /// `n` stacked servers whose embedded members form one cluster (`ballast kv`'s peer flags),
    /// each with `extra` flags.
    pub fn stacked_cluster_with(n: usize, extra: &[&str]) -> Vec<ApiServer> {
        let members: Vec<(String, String, String)> = (0..n)
            .map(|i| {
                let etcd = format!("http://127.0.0.1:{}", free_port());
                let peer = format!("http://127.0.0.1:{}", free_port());
                (format!("s{i}"), etcd, peer)
            })
            .collect();
        let cluster = members
            .iter()
            .map(|(name, _, peer)| format!("{name}={peer}"))
            .collect::<Vec<_>>()
            .join(",");
        // Every member must be up for the first election: start them all, then wait.
        let mut starting: Vec<ApiServer> = members
            .iter()
            .map(|(name, etcd, peer)| {
                let mut args = vec![
                    format!("--name={name}"),
                    format!("--listen-client-urls={etcd}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-cluster={cluster}"),
                ];
                args.extend(extra.iter().map(|s| s.to_string()));
                ApiServer::spawn(args, Some(etcd.clone()))
            })
            .collect();
        for server in &mut starting {
            server.wait_ready();
        }
        starting
    }

    /// A server on an external store at `endpoints` ("h:p,h:p").
    pub fn external(endpoints: &str, extra: &[&str]) -> ApiServer {
        let mut args = vec![format!("--datastore-endpoint={endpoints}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        ApiServer::start(args, None)
    }

    fn start(args: Vec<String>, etcd_url: Option<String>) -> ApiServer {
        let mut server = ApiServer::spawn(args, etcd_url);
        server.wait_ready();
        server
    }

    fn spawn(args: Vec<String>, etcd_url: Option<String>) -> ApiServer {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("server");
        let port = free_port();
        let kubeconfig = tmp.path().join("kubeconfig.yaml");
        let log = tmp.path().join("server.log");
        let child = Launch::ballast(&["server"])
            .args([
                format!("--data-dir={}", data_dir.display()),
                format!("--https-listen-port={port}"),
                "--bind-address=127.0.0.1".to_string(),
                format!("--write-kubeconfig={}", kubeconfig.display()),
            ])
            .args(&args)
            .spawn(&log);
        ApiServer {
            child,
            port,
            etcd_url,
            data_dir,
            kubeconfig,
            log,
            cache: tmp.path().join("kube-cache"),
            _tmp: tmp,
        }
    }

    /// Kills the process (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.log_text().contains("API server ready") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ballast server exited ({status}):\n{}",
                    tail(&self.log_text(), 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "ballast server not ready in {READY_TIMEOUT:?}:\n{}",
                tail(&self.log_text(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs the real kubectl with this server's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Kubectl {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Kubectl {
        kubectl(&self.kubeconfig, &self.cache, args, stdin)
    }

    /// kubectl `args`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.kubectl(args).ok(args)
    }

    /// `kubectl apply -f -` of `manifest`; its stdout.
    pub fn apply(&self, manifest: &str) -> String {
        self.kubectl_stdin(&["apply", "-f", "-"], Some(manifest))
            .ok(&["apply", "-f", "-"])
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_text(), lines)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubectl the suites run: 1.32 itself. `/usr/bin/kubectl` on these machines is gcloud's
/// dispatcher, which runs the kubectl of the server's minor version (1.33 for ours); the 1.32
/// binary beside it is called directly. `BALLAST_KUBECTL` overrides.
pub fn kubectl_program() -> String {
    if let Ok(program) = std::env::var("BALLAST_KUBECTL") {
        return program;
    }
    let pinned = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    if Path::new(pinned).exists() {
        pinned.to_string()
    } else {
        "kubectl".to_string()
    }
}

pub fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Kubectl {
    let mut child = Command::new(kubectl_program())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl 1.32 is installed on these machines");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    Kubectl {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// One plain HTTP/1.1 request to the API server: its status code and body (JSON when it is).
pub fn request(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    // A refused huge body may be answered before it is all sent.
    let _ = conn.write_all(body);
    let mut resp = Vec::new();
    let _ = conn.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body = dechunk(body);
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// A chunked body's content (the whole text if it is not chunked).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || after.len() < n {
            return out;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
}
