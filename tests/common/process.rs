//! Member processes: which server runs (`Server`), how one process is started (`Launch`: flags, a
//! wrapper such as `eatmydata` or `ip netns exec`, environment, a log file), waiting until it logs
//! that it serves, and the lifecycle of a `Cluster`'s members: start, wait, kill, stop, restart,
//! signal, and their logs.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::Cluster;

/// How long a member may take to serve (to log that it does, or to answer `endpoint health`)
/// after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server the members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `ballast kv` (the default).
    Ballast,
    /// Debian's `etcd` 3.4: proves the tests themselves right.
    Etcd,
}

impl Server {
    /// `BALLAST_TEST_SERVER=etcd` selects etcd; anything else (or nothing) selects Ballast.
    pub fn from_env() -> Server {
        match std::env::var("BALLAST_TEST_SERVER").as_deref() {
            Ok("etcd") => Server::Etcd,
            Ok("ballast") | Ok("") | Err(_) => Server::Ballast,
            Ok(other) => panic!("BALLAST_TEST_SERVER={other:?}: expected \"etcd\" or \"ballast\""),
        }
    }

    fn program(self) -> &'static str {
        match self {
            Server::Ballast => env!("CARGO_BIN_EXE_ballast"),
            Server::Etcd => "etcd",
        }
    }

    /// What the server logs once it serves clients.
    fn ready_line(self) -> &'static str {
        match self {
            Server::Ballast => "ready, serving clients",
            Server::Etcd => "ready to serve client requests",
        }
    }
}

/// The flags that put a member's data in `data_dir`, serve clients on `client_url` (advertised as
/// is) and peers on `listen_peer_url`, which it tells the others to reach at `peer_url`.
pub fn member_flags(
    data_dir: &Path,
    client_url: &str,
    listen_peer_url: &str,
    peer_url: &str,
) -> Vec<OsString> {
    let mut flags: Vec<OsString> = vec!["--data-dir".into(), data_dir.into()];
    flags.extend(
        [
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            listen_peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
        ]
        .map(Into::into),
    );
    flags
}

/// How to start one member process: the server (`ballast kv`, or `etcd`), the command it runs
/// under, if any, its flags and its environment.
#[derive(Debug, Clone)]
pub struct Launch {
    server: Server,
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Launch {
    pub fn new(server: Server) -> Launch {
        let args = match server {
            Server::Ballast => vec!["kv".into()],
            Server::Etcd => Vec::new(),
        };
        Launch {
            server,
            wrapper: Vec::new(),
            args,
            env: Vec::new(),
        }
    }

    /// The `ballast` binary with another subcommand (`server`, `agent`).
    pub fn ballast(subcommand: &[&str]) -> Launch {
        Launch {
            args: subcommand.iter().map(Into::into).collect(),
            ..Launch::new(Server::Ballast)
        }
    }

    /// Runs the server under `command` (`["eatmydata"]`, `["ip", "netns", "exec", NS]`).
    pub fn wrapper(mut self, command: &[&str]) -> Launch {
        self.wrapper = command.iter().map(Into::into).collect();
        self
    }

    /// Adds flags (after those added before).
    pub fn args<I>(mut self, args: I) -> Launch
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the process with stdin closed and its stdout and stderr appended to `log` (created
    /// if missing); does not wait.
    pub fn spawn(&self, log: &Path) -> Child {
        let program = self.server.program();
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {cmd:?} (for etcd: apt-get install -y etcd-server etcd-client): {e}"
            )
        })
    }
}

/// Why a member did not come up: it exited, or did not log that it serves in time.
#[derive(Debug)]
pub struct NotReady {
    pub why: String,
    /// Its log since it was started.
    pub log: String,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:\n{}", self.why, self.log)
    }
}

/// Waits until `child` (running `server`) has logged in `log`, after its first `from` bytes, that
/// it serves clients: no quorum needed, unlike `endpoint health`.
pub fn wait_logged_ready(
    child: &mut Child,
    server: Server,
    log: &Path,
    from: u64,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let text = read_since(log, from);
        if text.contains(server.ready_line()) {
            return Ok(());
        }
        let why = match child.try_wait().unwrap() {
            Some(status) => format!("exited with {status}"),
            None if Instant::now() > deadline => format!("not ready after {READY_TIMEOUT:?}"),
            None => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        return Err(NotReady { why, log: text });
    }
}

/// A file's text from byte `offset` on (empty if it cannot be read).
fn read_since(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    /// Starts member `i`'s process (appending to its log); does not wait.
    pub fn spawn(&mut self, i: usize) {
        let config = &self.config;
        let slot = &mut self.slots[i];
        assert!(slot.child.is_none(), "member {i} is already running");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&slot.log)
            .unwrap();
        writeln!(
            log,
            "===== harness: starting {} (--initial-cluster-state {}) =====",
            slot.name, slot.initial_state
        )
        .unwrap();
        slot.log_from = log.metadata().unwrap().len();
        let client_url = format!("http://{}", slot.endpoint());
        let mut launch = Launch::new(config.server)
            .args(member_flags(
                &slot.data_dir,
                &client_url,
                &slot.listen_peer_url(),
                &slot.peer_url(),
            ))
            .args([
                "--name",
                slot.name.as_str(),
                "--initial-cluster",
                slot.initial_cluster.as_str(),
                "--initial-cluster-state",
                slot.initial_state,
                "--initial-cluster-token",
                self.token.as_str(),
            ])
            .args(config.timing_flags())
            .args(&config.extra)
            .args(config.member_extra.get(i).into_iter().flatten());
        if let Some(ns) = &slot.netns {
            launch = launch.wrapper(&["ip", "netns", "exec", ns]);
        }
        for (key, value) in &config.env {
            launch = launch.env(key, value);
        }
        slot.child = Some(launch.spawn(&slot.log));
    }

    /// Waits until member `i`, started last by `spawn`, logs that it serves clients (which needs
    /// no quorum, unlike `wait_healthy`).
    pub fn wait_ready(&mut self, i: usize) -> Result<(), NotReady> {
        let server = self.config.server;
        let slot = &mut self.slots[i];
        let child = slot
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        wait_logged_ready(child, server, &slot.log, slot.log_from)
    }

    /// Waits until member `i` answers `etcdctl endpoint health` (which needs a quorum).
    pub fn wait_healthy(&mut self, i: usize) {
        self.wait_until_answers(i, &["endpoint", "health"]);
    }

    /// Waits until member `i` answers `etcdctl endpoint status` (a learner fails `health`).
    pub fn wait_status(&mut self, i: usize) {
        self.wait_until_answers(i, &["endpoint", "status"]);
    }

    fn wait_until_answers(&mut self, i: usize, args: &[&str]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = self.ctl_timeout(i, args, "2s");
            if out.success {
                return;
            }
            let exited = self.slots[i].child.as_mut().unwrap().try_wait().unwrap();
            if let Some(status) = exited {
                panic!(
                    "member {i} ({}) exited with {status} before it answered `{}`; its log:\n{}",
                    self.name(i),
                    args.join(" "),
                    self.log_tail(i, 200)
                );
            }
            assert!(
                Instant::now() < deadline,
                "member {i} ({}) did not answer `etcdctl {}` within {READY_TIMEOUT:?} (last: {}); its log:\n{}",
                self.name(i),
                args.join(" "),
                out.stderr.trim(),
                self.log_tail(i, 200)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs member `i` (its data stays).
    pub fn kill9(&mut self, i: usize) {
        let mut child = self.slots[i]
            .child
            .take()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops member `i` with SIGTERM (SIGKILL after 10 s); fine if it already exited.
    pub fn stop(&mut self, i: usize) {
        let Some(mut child) = self.slots[i].child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.wait();
    }

    /// Starts member `i` again on the same data directory and ports; waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_healthy(i);
    }

    /// SIGKILLs every running member, then starts them all again and waits until each is healthy
    /// (none can be before a quorum runs).
    pub fn restart_all(&mut self) {
        let members = self.live();
        for &i in &members {
            self.kill9(i);
        }
        for &i in &members {
            self.spawn(i);
        }
        for &i in &members {
            self.wait_healthy(i);
        }
    }

    /// Sends `signal` ("STOP", "CONT", ...) to member `i`'s process.
    pub fn signal(&self, i: usize, signal: &str) {
        let child = self.slots[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} of member {i} failed");
    }

    /// Bytes in member `i`'s log so far (to look only at what it logs after some point).
    pub fn log_len(&self, i: usize) -> u64 {
        std::fs::metadata(&self.slots[i].log)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Member `i`'s log from byte `offset` on.
    pub fn log_since(&self, i: usize, offset: u64) -> String {
        read_since(&self.slots[i].log, offset)
    }

    /// The last `lines` lines of member `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail(&self.log_since(i, 0), lines)
    }
}
