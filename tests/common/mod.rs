//! A harness for tests against real `ballast kv` processes and Debian's real `etcdctl` 3.4.
//!
//! This file holds what every test binary needs (one member, `Member`; running etcdctl; free
//! ports); the rest is split by concern: `process` (starting a member process, waiting until it
//! serves), `cluster` (a multi-member `Cluster`) with `ctl`, `membership`, `netns` (`NetCluster`)
//! and `members`, `proxy` (link faults), `writers` (background writers that record acknowledged
//! writes) and `grpc` (gRPC clients for traffic that races faults). The recorded traffic of the
//! chaos tests (`traffic/`, `sessions.rs`) is included only by the binaries that use it.

#![allow(dead_code)]

pub mod apiserver;
pub mod cluster;
pub mod ctl;
pub mod grpc;
pub mod hollow;
pub mod members;
pub mod membership;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod writers;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use process::{member_flags, wait_logged_ready, Launch, NotReady, Server};

/// One cluster (or fault test) at a time within a test binary, also under a plain `cargo test`,
/// which runs a binary's tests in parallel: failover, fault and kill timings assume the machine is
/// not running other clusters too.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many times each chaos test runs, each time with a new seed: `CHAOS_ROUNDS`, default 1.
pub fn chaos_rounds() -> u64 {
    std::env::var("CHAOS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Writes a recorded history as JSON beside the tests' temporary files
/// (`ballast-<what>-<name>-<pid>.json`); returns the path, for a failure message to name.
pub fn save_json(what: &str, name: &str, json: &serde_json::Value) -> String {
    let path =
        std::env::temp_dir().join(format!("ballast-{what}-{name}-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(json).unwrap()).unwrap();
    path.display().to_string()
}

/// A port on 127.0.0.1 that nothing listens on, for a process the test starts to bind.
///
/// Not one from `bind(0)`: that is a port of the kernel's ephemeral range (32768-60999), and
/// between our probe and the process's bind the kernel may give it to any outgoing connection as
/// its source port (the tests' clients open many), which fails the start with "Address already in
/// use". These come from below that range, each handed out once per test process, from a start
/// that depends on the process id (test binaries run one after another, but a port may still be
/// held by a process a test left behind, which the probe skips).
pub fn free_port() -> u16 {
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A `ballast kv` process; killed when dropped.
pub struct Member {
    pub child: Child,
    pub port: u16,
    /// The member's peer URL (its own port: etcd's default, 2380, would be shared between tests).
    pub peer: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Member {
    /// A fresh member in a temporary data directory.
    pub fn start(extra: &[&str]) -> Member {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut m = Member::start_in(&data_dir, extra);
        m._tmp = Some(tmp);
        m
    }

    /// A member on `data_dir` (existing or not), on a new port.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Member {
        Member::try_start_in(data_dir, None, Launch::new(Server::Ballast), extra)
            .unwrap_or_else(|e| panic!("ballast kv {e}"))
    }

    /// A member on `data_dir` (existing or not) on new ports, started as `launch` says (a
    /// wrapper, environment) with `extra` flags, logging to `log` (by default beside `data_dir`,
    /// named by its port); waits until it serves, or says why it did not.
    pub fn try_start_in(
        data_dir: &Path,
        log: Option<&Path>,
        launch: Launch,
        extra: &[&str],
    ) -> Result<Member, NotReady> {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        // Each member its own peer port too (etcd's default, 2380, would be shared).
        let peer = format!("http://127.0.0.1:{}", free_port());
        let log = log.map_or_else(
            || data_dir.with_extension(format!("{port}.log")),
            Path::to_owned,
        );
        let child = launch
            .args(member_flags(data_dir, &url, &peer, &peer))
            .args(extra)
            .spawn(&log);
        let mut m = Member {
            child,
            port,
            peer,
            data_dir: data_dir.to_owned(),
            log,
            _tmp: None,
        };
        wait_logged_ready(&mut m.child, Server::Ballast, &m.log, 0)?;
        Ok(m)
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs etcdctl against this member.
    pub fn ctl(&self, args: &[&str]) -> Ctl {
        etcdctl(&self.endpoint(), args, None)
    }

    /// Runs etcdctl with `stdin` as its input.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Ctl {
        etcdctl(&self.endpoint(), args, Some(stdin))
    }

    /// Runs etcdctl and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ctl(args).expect_ok(args)
    }

    /// Runs etcdctl and asserts it failed with `error` on stderr.
    pub fn fails(&self, args: &[&str], error: &str) {
        self.ctl(args).expect_error(args, error);
    }

    /// Spawns a long-running etcdctl (watch, elect) with piped stdout.
    pub fn spawn_ctl(&self, args: &[&str]) -> Child {
        Command::new(etcdctl_path())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Kills the member (SIGKILL) and hands over its temporary directory, so that its data
    /// outlives it.
    pub fn stop_keeping_data(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self._tmp.take()
    }

    /// Kills the member (SIGKILL) and waits until its process is gone.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Ctl {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ctl {
    /// Asserts that etcdctl `args` (the command that printed this) succeeded; returns stdout.
    pub fn expect_ok(self, args: &[&str]) -> String {
        assert!(self.success, "etcdctl {args:?} failed:\n{}", self.stderr);
        self.stdout
    }

    /// Asserts that etcdctl `args` failed with `error` on stderr.
    pub fn expect_error(self, args: &[&str], error: &str) {
        assert!(
            !self.success,
            "etcdctl {args:?} should fail, printed:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains(&format!("Error: {error}")),
            "etcdctl {args:?}: expected {error:?} in:\n{}",
            self.stderr
        );
    }
}

pub fn etcdctl_path() -> &'static str {
    // Installed by scripts/setup.sh (Debian's etcd-client 3.4).
    "etcdctl"
}

pub fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Ctl {
    let mut child = Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl (Debian's etcd-client) must be installed: scripts/setup.sh installs it");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Ctl {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into(),
        stderr: String::from_utf8_lossy(&stderr).into(),
    }
}

/// Reads a child's stdout until `want` lines arrived or the deadline passes; then kills it.
pub fn collect_lines(child: Child, want: usize, timeout: Duration) -> Vec<String> {
    collect_lines_until(child, timeout, |lines| lines.len() >= want)
}

/// Reads a child's stdout until the lines read so far are `done` or the deadline passes; then
/// kills it.
pub fn collect_lines_until(
    mut child: Child,
    timeout: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// etcdctl's `-w json` output, parsed.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A plain HTTP/1.1 GET on the client port: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
