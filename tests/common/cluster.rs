//! A multi-member cluster harness: N `ballast kv` processes (or, with `BALLAST_TEST_SERVER=etcd`,
//! Debian's `etcd` 3.4, which takes the same flags) that tests kill, restart, grow, shrink and, in
//! network namespaces, partition; a background writer that records which writes were acknowledged;
//! and the checks that every acknowledged write survived and every member holds the same data.
//!
//! Members are numbered from 0 (member `i` is named `n{i+1}`). Everything the harness creates
//! (processes, temporary directories, namespaces, veths, firewall rules) is removed on `Drop`, also
//! when the test panics; a panicking test also prints the tail of every member's log.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::proxy::{LinkFault, Proxy};
use super::{etcdctl, free_port, json, Ctl};

/// How long a member may take to answer `endpoint health` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the live members may take to agree on one leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the live members may take to reach the same revision and the same data.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of each member's log printed when a test fails.
const LOG_TAIL_LINES: usize = 40;
/// Flags every member gets, Ballast and etcd alike (these are etcd's defaults, spelled out so
/// that both servers run with the same timing).
const TIMING_FLAGS: [&str; 4] = ["--heartbeat-interval", "100", "--election-timeout", "1000"];

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
}

/// What one member reports in `etcdctl endpoint status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub member_id: u64,
    pub leader: u64,
    pub revision: i64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub is_learner: bool,
}

/// One entry of `etcdctl member list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub id: u64,
    /// Empty until the member has started and published its name ("unstarted" in the table).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
}

struct Slot {
    name: String,
    host: String,
    client_port: u16,
    /// The peer port the member advertises (its proxy's, in a proxied cluster).
    peer_port: u16,
    /// The peer port the member listens on (`peer_port` unless proxied).
    listen_peer_port: u16,
    /// In a proxied cluster, the proxy in front of `listen_peer_port`.
    proxy: Option<Proxy>,
    data_dir: PathBuf,
    log: PathBuf,
    /// The network namespace the member runs in (`NetCluster` only).
    netns: Option<String>,
    /// `--initial-cluster` and `--initial-cluster-state` this member was (first) started with.
    initial_cluster: String,
    initial_state: &'static str,
    child: Option<Child>,
    /// Removed from the cluster with `member remove`: no longer counted as live.
    removed: bool,
}

impl Slot {
    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.peer_port)
    }

    fn listen_peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.listen_peer_port)
    }
}

/// A cluster of member processes on 127.0.0.1 (or, for `NetCluster`, in namespaces).
pub struct Cluster {
    server: Server,
    slots: Vec<Slot>,
    extra: Vec<String>,
    /// Flags for member `i` alone, after `extra` (`start_each`).
    member_extra: Vec<Vec<String>>,
    token: String,
    /// Members advertise a proxy in front of their peer port (`start_proxied`).
    proxied: bool,
    // Field order is drop order: namespaces go after the members (killed in `Drop::drop`) and
    // before the directory.
    net: Option<Net>,
    tmp: tempfile::TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("members", &self.slots.len())
            .finish()
    }
}

static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// Starts `n` members on 127.0.0.1 with `extra` flags and waits until each is healthy.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, None, None)
    }

    /// Like `start`, with `member_extra[i]` added to member `i`'s flags (members that disagree
    /// on a flag, as after a partial rolling change of a limit).
    pub fn start_each(n: usize, extra: &[&str], member_extra: &[&[&str]]) -> Cluster {
        let mut cluster = Cluster::new(extra, None);
        cluster.member_extra = member_extra
            .iter()
            .map(|flags| flags.iter().map(|s| s.to_string()).collect())
            .collect();
        cluster.launch(n, None);
        cluster
    }

    /// Like `start`, with every member's peer traffic through a proxy (see `link_fault`).
    pub fn start_proxied(n: usize, extra: &[&str]) -> Cluster {
        let mut cluster = Cluster::new(extra, None);
        cluster.proxied = true;
        cluster.launch(n, None);
        cluster
    }

    /// Starts a NEW cluster of `n` members whose data directories are first created from the
    /// snapshot file `snapshot` (`etcdctl snapshot save`), each in its server's own way (see
    /// `restore_snapshot`); waits until each is healthy.
    pub fn start_from_snapshot(n: usize, extra: &[&str], snapshot: &Path) -> Cluster {
        Cluster::start_with(n, extra, None, Some(snapshot))
    }

    fn start_with(n: usize, extra: &[&str], net: Option<Net>, snapshot: Option<&Path>) -> Cluster {
        let mut cluster = Cluster::new(extra, net);
        cluster.launch(n, snapshot);
        cluster
    }

    fn new(extra: &[&str], net: Option<Net>) -> Cluster {
        let seq = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        Cluster {
            server: Server::from_env(),
            slots: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            member_extra: Vec::new(),
            token: format!("ballast-test-{}-{seq}", std::process::id()),
            proxied: false,
            net,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// Creates and starts `n` members (their data directories first restored from `snapshot`,
    /// if given); waits until each is healthy.
    fn launch(&mut self, n: usize, snapshot: Option<&Path>) {
        for i in 0..n {
            self.new_slot(i);
        }
        let initial = self.initial_cluster();
        for slot in &mut self.slots {
            slot.initial_cluster = initial.clone();
            slot.initial_state = "new";
        }
        if let Some(file) = snapshot {
            for i in 0..n {
                self.restore_snapshot(i, file);
            }
        }
        // All members first, then the waits: none is healthy before a quorum runs.
        for i in 0..n {
            self.spawn(i);
        }
        for i in 0..n {
            self.wait_healthy(i);
        }
    }

    /// Allocates addresses, a data directory and a log for member `i` (not started).
    fn new_slot(&mut self, i: usize) {
        assert_eq!(i, self.slots.len());
        let (host, client_port, mut peer_port, netns) = match &mut self.net {
            Some(net) => (net.add_member(i), 2379, 2380, Some(net.member_ns(i))),
            // free_port never hands out a port twice.
            None => ("127.0.0.1".to_owned(), free_port(), free_port(), None),
        };
        let (proxy, listen_peer_port) = if self.proxied {
            let proxy = Proxy::start(format!("{host}:{peer_port}").parse().unwrap());
            let advertised = proxy.port();
            (Some(proxy), std::mem::replace(&mut peer_port, advertised))
        } else {
            (None, peer_port)
        };
        let name = format!("n{}", i + 1);
        self.slots.push(Slot {
            data_dir: self.tmp.path().join(format!("{name}.data")),
            log: self.tmp.path().join(format!("{name}.log")),
            name,
            host,
            client_port,
            peer_port,
            listen_peer_port,
            proxy,
            netns,
            initial_cluster: String::new(),
            initial_state: "new",
            child: None,
            removed: false,
        });
    }

    /// `n1=http://..,n2=http://..` over every member not removed.
    fn initial_cluster(&self) -> String {
        self.slots
            .iter()
            .filter(|s| !s.removed)
            .map(|s| format!("{}={}", s.name, s.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Creates member `i`'s (not yet existing) data directory from a snapshot file. Ballast:
    /// `ballast snapshot restore FILE --data-dir DIR` (the member takes its identity and the
    /// cluster from its flags when it starts). etcd 3.4: `etcdctl snapshot restore`, which writes
    /// the member's identity and the new cluster's membership into the directory, so it is given
    /// the same name, peer URL, `--initial-cluster` and token the member is then started with.
    fn restore_snapshot(&self, i: usize, file: &Path) {
        let slot = &self.slots[i];
        assert!(
            !slot.data_dir.exists(),
            "member {i}'s data directory already exists"
        );
        let mut cmd = match self.server {
            Server::Ballast => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_ballast"));
                c.args(["snapshot", "restore"])
                    .arg(file)
                    .arg("--data-dir")
                    .arg(&slot.data_dir);
                c
            }
            Server::Etcd => {
                let mut c = Command::new(super::etcdctl_path());
                c.env("ETCDCTL_API", "3")
                    .args(["snapshot", "restore"])
                    .arg(file);
                c.args([
                    "--name",
                    &slot.name,
                    "--initial-cluster",
                    &slot.initial_cluster,
                ]);
                c.args([
                    "--initial-cluster-token",
                    &self.token,
                    "--initial-advertise-peer-urls",
                    &slot.peer_url(),
                ]);
                c.arg("--data-dir").arg(&slot.data_dir);
                c
            }
        };
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run the snapshot restore for member {i}: {e}"));
        assert!(
            out.status.success(),
            "snapshot restore into member {i}'s data directory failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts member `i`'s process (appending to its log); does not wait.
    fn spawn(&mut self, i: usize) {
        let server = self.server;
        let mut extra = self.extra.clone();
        extra.extend(self.member_extra.get(i).into_iter().flatten().cloned());
        let token = self.token.clone();
        let slot = &mut self.slots[i];
        assert!(slot.child.is_none(), "member {i} is already running");
        let client_url = format!("http://{}", slot.endpoint());
        let peer_url = slot.peer_url();
        let listen_peer_url = slot.listen_peer_url();
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
        let (program, mut args): (&str, Vec<String>) = match server {
            Server::Ballast => (env!("CARGO_BIN_EXE_ballast"), vec!["kv".into()]),
            Server::Etcd => ("etcd", vec![]),
        };
        args.extend(
            [
                "--name",
                slot.name.as_str(),
                "--data-dir",
                slot.data_dir.to_str().unwrap(),
                "--listen-client-urls",
                client_url.as_str(),
                "--advertise-client-urls",
                client_url.as_str(),
                "--listen-peer-urls",
                listen_peer_url.as_str(),
                "--initial-advertise-peer-urls",
                peer_url.as_str(),
                "--initial-cluster",
                slot.initial_cluster.as_str(),
                "--initial-cluster-state",
                slot.initial_state,
                "--initial-cluster-token",
                token.as_str(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.extend(TIMING_FLAGS.iter().map(|s| s.to_string()));
        args.extend(extra);
        let mut cmd = match &slot.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        let child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (for etcd: apt-get install -y etcd-server etcd-client): {e}"));
        slot.child = Some(child);
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

    pub fn server(&self) -> Server {
        self.server
    }

    /// Number of slots ever created (including stopped and removed members).
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.slots[i].name
    }

    /// `host:port` of member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        self.slots[i].endpoint()
    }

    pub fn peer_url(&self, i: usize) -> String {
        self.slots[i].peer_url()
    }

    /// Members whose process runs and that were not removed from the cluster.
    pub fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].child.is_some() && !self.slots[i].removed)
            .collect()
    }

    /// The live members' endpoints, comma-separated (for `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.endpoints_of(&self.live())
    }

    pub fn endpoints_of(&self, members: &[usize]) -> String {
        members
            .iter()
            .map(|&i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `http://host:port`: member `i`'s advertised client URL (what `member list` and `--cluster`
    /// commands show).
    pub fn client_url(&self, i: usize) -> String {
        format!("http://{}", self.endpoint(i))
    }

    /// Runs etcdctl against member `i` alone (5 s command timeout).
    pub fn ctl(&self, i: usize, args: &[&str]) -> Ctl {
        self.ctl_timeout(i, args, "5s")
    }

    pub fn ctl_timeout(&self, i: usize, args: &[&str], timeout: &str) -> Ctl {
        ctl_on(&self.endpoint(i), args, timeout)
    }

    /// Runs etcdctl against member `i` and asserts it succeeded; returns stdout.
    pub fn ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.ctl(i, args);
        assert!(
            out.success,
            "etcdctl {args:?} on member {i} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs etcdctl against member `i` with `stdin` as its input (`txn -i`).
    pub fn ctl_stdin(&self, i: usize, args: &[&str], stdin: &str) -> Ctl {
        let mut all = vec!["--dial-timeout=2s", "--command-timeout=5s"];
        all.extend_from_slice(args);
        etcdctl(&self.endpoint(i), &all, Some(stdin))
    }

    /// Spawns a long-running etcdctl (`watch`) against member `i` with piped stdout; the caller
    /// must kill it (`collect_lines` does).
    pub fn spawn_ctl(&self, i: usize, args: &[&str]) -> Child {
        Command::new(super::etcdctl_path())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint(i)))
            .arg("--dial-timeout=2s")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs etcdctl against every live member's endpoint (the client picks one).
    pub fn ctl_any(&self, args: &[&str]) -> Ctl {
        ctl_on(&self.endpoints(), args, "5s")
    }

    /// Member `i`'s `endpoint status`, or `None` if it does not answer within 2 s.
    pub fn status(&self, i: usize) -> Option<Status> {
        let out = self.ctl_timeout(i, &["endpoint", "status", "-w", "json"], "2s");
        if !out.success {
            return None;
        }
        let v = json(&out.stdout);
        let s = &v[0]["Status"];
        Some(Status {
            member_id: s["header"]["member_id"].as_u64()?,
            leader: s["leader"].as_u64().unwrap_or(0),
            revision: s["header"]["revision"].as_i64().unwrap_or(0),
            raft_index: s["raftIndex"].as_u64().unwrap_or(0),
            raft_term: s["raftTerm"].as_u64().unwrap_or(0),
            is_learner: s["isLearner"].as_bool().unwrap_or(false),
        })
    }

    /// Member `i`'s raft id.
    pub fn member_id(&self, i: usize) -> u64 {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(s) = self.status(i) {
                return s.member_id;
            }
            assert!(
                Instant::now() < deadline,
                "member {i} does not answer endpoint status"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The leader every live member agrees on (retried until they agree, 15 s deadline).
    pub fn leader(&self) -> usize {
        self.leader_of(&self.live())
    }

    /// The leader that all of `members` agree on and that is one of them.
    pub fn leader_of(&self, members: &[usize]) -> usize {
        self.leader_of_within(members, LEADER_TIMEOUT)
    }

    pub fn leader_of_within(&self, members: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses: Vec<Option<Status>> = members.iter().map(|&i| self.status(i)).collect();
            if statuses.iter().all(Option::is_some) {
                let statuses: Vec<Status> = statuses.into_iter().flatten().collect();
                let leader = statuses[0].leader;
                if leader != 0 && statuses.iter().all(|s| s.leader == leader) {
                    if let Some(pos) = statuses.iter().position(|s| s.member_id == leader) {
                        return members[pos];
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "members {members:?} did not agree on a leader among themselves within {timeout:?}; last statuses: {:?}",
                members.iter().map(|&i| (i, self.status(i))).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Member `i`'s `endpoint hashkv` at its current revision: (hash, revision).
    pub fn hashkv(&self, i: usize) -> (u64, i64) {
        let out = self.ok(i, &["endpoint", "hashkv", "-w", "json"]);
        let v = json(&out);
        let h = &v[0]["HashKV"];
        (
            h["hash"].as_u64().unwrap_or(0),
            h["header"]["revision"].as_i64().unwrap_or(0),
        )
    }

    /// Member `i`'s hash of the keyspace at `rev`, or `None` if it does not answer.
    pub fn hashkv_at(&self, i: usize, rev: i64) -> Option<u64> {
        let out = self.ctl_timeout(
            i,
            &[
                "endpoint",
                "hashkv",
                "--rev",
                &rev.to_string(),
                "-w",
                "json",
            ],
            "3s",
        );
        if !out.success {
            return None;
        }
        Some(json(&out.stdout)[0]["HashKV"]["hash"].as_u64().unwrap_or(0))
    }

    /// Waits until every live member reports the same revision R and the same `hashkv --rev R`;
    /// returns (R, hash).
    pub fn wait_converged(&self) -> (i64, u64) {
        self.wait_converged_of(&self.live())
    }

    pub fn wait_converged_of(&self, members: &[usize]) -> (i64, u64) {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let revs: Vec<Option<i64>> = members
                .iter()
                .map(|&i| self.status(i).map(|s| s.revision))
                .collect();
            let mut last = format!("revisions {revs:?}");
            if let Some(Some(rev)) = revs.first().copied() {
                if revs.iter().all(|r| *r == Some(rev)) {
                    let hashes: Vec<Option<u64>> =
                        members.iter().map(|&i| self.hashkv_at(i, rev)).collect();
                    if let Some(Some(hash)) = hashes.first().copied() {
                        if hashes.iter().all(|h| *h == Some(hash)) {
                            return (rev, hash);
                        }
                    }
                    last = format!("revision {rev} everywhere but hashes {hashes:?}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "members {members:?} did not converge within {CONVERGE_TIMEOUT:?}: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
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

    /// Sets the fault on the links into member `i` (every connection another member opens to it,
    /// both directions); a `start_proxied` cluster only.
    pub fn link_fault(&self, i: usize, fault: LinkFault) {
        self.slots[i]
            .proxy
            .as_ref()
            .expect("link faults need Cluster::start_proxied")
            .set(fault);
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
        let bytes = std::fs::read(&self.slots[i].log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
    }

    /// The last `lines` lines of member `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let log = self.log_since(i, 0);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `etcdctl member list`, asked of the live members.
    pub fn member_list(&self) -> Vec<ListedMember> {
        let out = self.ctl_any(&["member", "list", "-w", "json"]);
        assert!(out.success, "member list failed: {}", out.stderr);
        let v = json(&out.stdout);
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ListedMember {
                id: m["ID"].as_u64().unwrap(),
                name: m["name"].as_str().unwrap_or("").to_owned(),
                peer_urls: m["peerURLs"]
                    .as_array()
                    .map(|a| a.iter().map(|u| u.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
                is_learner: m["isLearner"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    /// `member add` a new member (as a learner if asked), then starts it with the full
    /// `--initial-cluster` and `--initial-cluster-state existing`; waits until it answers
    /// `endpoint status`. Returns (its index, its id).
    pub fn add_member(&mut self, learner: bool) -> (usize, u64) {
        let i = self.slots.len();
        self.new_slot(i);
        let peer = self.peer_url(i);
        let name = self.slots[i].name.clone();
        let members: Vec<usize> = self.live().into_iter().filter(|&m| m != i).collect();
        let id = self.member_add(&members, &name, &peer, learner);
        self.slots[i].initial_cluster = self.initial_cluster();
        self.slots[i].initial_state = "existing";
        self.spawn(i);
        self.wait_status(i);
        (i, id)
    }

    /// `member add NAME --peer-urls PEER` through `members`; returns the new id. Starts nothing.
    pub fn member_add(&self, members: &[usize], name: &str, peer: &str, learner: bool) -> u64 {
        let mut args = vec!["member", "add", name, "--peer-urls", peer, "-w", "json"];
        if learner {
            args.push("--learner");
        }
        // etcd refuses reconfiguration until every member has been connected for 5 s
        // ("not healthy for reconfigure"), so a fresh cluster needs a few tries. (A retry after an
        // attempt that timed out but took effect fails with "peerURL exists": the assertion
        // then shows that, rather than the test silently adding two members.)
        let deadline = Instant::now() + Duration::from_secs(20);
        let out = loop {
            let out = ctl_on(&self.endpoints_of(members), &args, "5s");
            if out.success {
                break out;
            }
            assert!(
                Instant::now() < deadline,
                "member add kept failing:\n{}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        json(&out.stdout)["member"]["ID"]
            .as_u64()
            .unwrap_or_else(|| panic!("no member.ID in {}", out.stdout))
    }

    /// `member promote` (retried while the server says the learner is not caught up yet).
    pub fn member_promote(&self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.ctl_any(&["member", "promote", &format!("{id:x}")]);
            if out.success {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "member promote {id:x} kept failing: {}",
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `member remove` member `i` (asked of the other live members), then stops its process.
    pub fn member_remove(&mut self, i: usize) {
        let id = self.member_id(i);
        let others: Vec<usize> = self.live().into_iter().filter(|&m| m != i).collect();
        let hex = format!("{id:x}");
        // Like `member add`, refused while a member joined less than 5 s ago ("unhealthy
        // cluster"). A retry after an attempt that timed out but took effect finds no member.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut attempts = 0;
        loop {
            let out = ctl_on(
                &self.endpoints_of(&others),
                &["member", "remove", &hex],
                "5s",
            );
            attempts += 1;
            if out.success || (attempts > 1 && out.stderr.contains("member not found")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member remove {hex} kept failing:\n{}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        self.slots[i].removed = true;
        self.stop(i);
    }

    /// Asserts that member `i` holds every acknowledged `key -> value`, reading its own copy
    /// (`--consistency=s`) of every key under `key-`.
    pub fn assert_all_present(&self, i: usize, acked: &BTreeMap<String, String>) {
        let out = self.ctl_timeout(
            i,
            &["get", "--prefix", "key-", "--consistency=s", "-w", "json"],
            "20s",
        );
        assert!(
            out.success,
            "reading member {i}'s keys failed: {}",
            out.stderr
        );
        let v = json(&out.stdout);
        let mut held = BTreeMap::new();
        for kv in v["kvs"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let key = base64_decode(kv["key"].as_str().unwrap());
            let value = base64_decode(kv["value"].as_str().unwrap_or(""));
            held.insert(
                String::from_utf8(key).unwrap(),
                String::from_utf8(value).unwrap(),
            );
        }
        let wrong: Vec<String> = acked
            .iter()
            .filter(|(k, v)| held.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: acknowledged {v:?}, member has {:?}", held.get(k)))
            .collect();
        assert!(
            wrong.is_empty(),
            "member {i} ({}) lost {} of {} acknowledged writes (it holds {} keys), first: {:#?}",
            self.name(i),
            wrong.len(),
            acked.len(),
            held.len(),
            &wrong[..wrong.len().min(10)]
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for (i, slot) in self.slots.iter().enumerate() {
                eprintln!(
                    "===== tail of {} ({}) log =====\n{}",
                    slot.name,
                    slot.log.display(),
                    self.log_tail(i, LOG_TAIL_LINES)
                );
            }
        }
    }
}

/// etcdctl against `endpoints` with short dial and command timeouts (`--command-timeout` in `args`
/// overrides `timeout`: the last one wins).
fn ctl_on(endpoints: &str, args: &[&str], timeout: &str) -> Ctl {
    let command_timeout = format!("--command-timeout={timeout}");
    let mut all = vec!["--dial-timeout=2s", command_timeout.as_str()];
    all.extend_from_slice(args);
    etcdctl(endpoints, &all, None)
}

/// Background writers: `threads` threads, each putting `key-<thread>-<seq>` = `<seq>` with its
/// own `etcdctl put` over all the given endpoints, recording every write that was acknowledged.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    count: Arc<AtomicUsize>,
    endpoints: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("acked", &self.acked_count())
            .finish()
    }
}

impl Writer {
    /// Starts writing to the cluster's live endpoints.
    pub fn start(cluster: &Cluster, threads: usize) -> Writer {
        let mut w = Writer {
            stop: Arc::new(AtomicBool::new(false)),
            acked: Arc::new(Mutex::new(BTreeMap::new())),
            count: Arc::new(AtomicUsize::new(0)),
            endpoints: Arc::new(Mutex::new(cluster.endpoints())),
            threads: Vec::new(),
        };
        for t in 0..threads {
            let (stop, acked, count, endpoints) = (
                w.stop.clone(),
                w.acked.clone(),
                w.count.clone(),
                w.endpoints.clone(),
            );
            w.threads.push(std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (key, value) = (format!("key-{t}-{seq:06}"), seq.to_string());
                    let eps = endpoints.lock().unwrap().clone();
                    if ctl_on(&eps, &["put", &key, &value], "3s").success {
                        acked.lock().unwrap().insert(key, value);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    seq += 1;
                }
            }));
        }
        w
    }

    /// Writes acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Points the writers at other endpoints (from their next write on).
    pub fn set_endpoints(&self, endpoints: String) {
        *self.endpoints.lock().unwrap() = endpoints;
    }

    /// Waits until `more` writes beyond `from` are acknowledged; returns the count, or panics.
    pub fn wait_acked_beyond(&self, from: usize, more: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.acked_count();
            if now >= from + more {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged in {timeout:?} after {from} (wanted {more} more)",
                now - from
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the writers and returns every acknowledged `key -> value`.
    pub fn stop(mut self) -> BTreeMap<String, String> {
        self.join();
        std::mem::take(&mut *self.acked.lock().unwrap())
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.join();
    }
}

/// Standard base64 (etcdctl's `-w json` encodes keys and values so).
pub fn base64_decode(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    }
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (k, &c)| acc | (sextet(c) << (18 - 6 * k)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A cluster whose members each run in their own network namespace, so that a test can cut one
/// member off from the others while the test process can still reach it.
///
/// Layout: a hub namespace holds a bridge; each member namespace has `eth0` (10.77.S.{i+1}) on a
/// veth into the bridge, and the root namespace has a veth into the bridge at 10.77.S.254, which
/// is where the test process (and etcdctl) talks from. The bridge lives in its own namespace
/// rather than the root one because with `br_netfilter` loaded bridged frames go through the root
/// namespace's FORWARD chain, which Docker hosts set to DROP; the hub's own chains are empty.
#[derive(Debug)]
pub struct NetCluster {
    cluster: Cluster,
}

impl NetCluster {
    /// Starts `n` members, each in its own namespace. Panics with a clear message when network
    /// namespaces, veths or iptables are not usable (root and iproute2/iptables are required).
    pub fn start(n: usize, extra: &[&str]) -> NetCluster {
        let net = Net::create();
        NetCluster {
            cluster: Cluster::start_with(n, extra, Some(net), None),
        }
    }

    /// Drops member `i`'s packets to and from every other member (not the test process).
    pub fn isolate(&self, i: usize) {
        let net = self.cluster.net.as_ref().unwrap();
        for j in 0..self.cluster.size() {
            if j != i {
                let ip = net.ip(j);
                net.iptables(i, &["-A", "INPUT", "-s", &ip, "-j", "DROP"]);
                net.iptables(i, &["-A", "OUTPUT", "-d", &ip, "-j", "DROP"]);
            }
        }
    }

    /// Removes the rules `isolate(i)` added.
    pub fn heal(&self, i: usize) {
        let net = self.cluster.net.as_ref().unwrap();
        net.iptables(i, &["-F", "INPUT"]);
        net.iptables(i, &["-F", "OUTPUT"]);
    }
}

impl std::ops::Deref for NetCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for NetCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// The namespaces, bridge and veths of a `NetCluster`; all deleted on drop.
#[derive(Debug)]
struct Net {
    hub: String,
    /// Prefix of the subnet, e.g. "10.77.12" (a /24).
    subnet: String,
    root_if: String,
    members: Vec<String>,
}

static NETS: AtomicUsize = AtomicUsize::new(0);

impl Net {
    fn create() -> Net {
        let (pid, seq) = (std::process::id(), NETS.fetch_add(1, Ordering::Relaxed));
        let routes = Command::new("ip")
            .args(["-4", "route", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut octet = (pid as usize * 7 + seq * 13) % 250;
        while routes.contains(&format!("10.77.{octet}.")) {
            octet = (octet + 1) % 250;
        }
        let net = Net {
            hub: format!("ballast-hub-{pid}-{seq}"),
            subnet: format!("10.77.{octet}"),
            root_if: format!("blr{pid}x{seq}"),
            members: Vec::new(),
        };
        let hub = net.hub.clone();
        let root_if = net.root_if.clone();
        let gateway = format!("{}.254/24", net.subnet);
        if let Err(e) = try_run(&["ip", "netns", "add", &hub]) {
            panic!(
                "the partition tests need network namespaces (run as root, with iproute2 and iptables installed); \
                 `ip netns add` failed: {e}"
            );
        }
        // If anything below fails, the panic drops `net`, which deletes what was made so far.
        net.run(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        net.run(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        net.run(&[
            "ip", "link", "add", &root_if, "type", "veth", "peer", "name", "up0", "netns", &hub,
        ]);
        net.run(&["ip", "-n", &hub, "link", "set", "up0", "master", "br0"]);
        net.run(&["ip", "-n", &hub, "link", "set", "up0", "up"]);
        net.run(&["ip", "addr", "add", &gateway, "dev", &root_if]);
        net.run(&["ip", "link", "set", &root_if, "up"]);
        // The firewall must be usable inside a namespace, or isolate() could not work.
        net.run(&["ip", "netns", "exec", &hub, "iptables", "-w", "-S"]);
        net
    }

    fn member_ns(&self, i: usize) -> String {
        self.members[i].clone()
    }

    fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// Creates member `i`'s namespace wired to the bridge; returns its address.
    fn add_member(&mut self, i: usize) -> String {
        assert_eq!(i, self.members.len());
        let ns = format!("{}-m{i}", self.hub);
        self.run(&["ip", "netns", "add", &ns]);
        self.members.push(ns.clone());
        let (hub, veth, ip) = (self.hub.clone(), format!("m{i}"), self.ip(i));
        self.run(&[
            "ip", "-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        self.run(&["ip", "-n", &hub, "link", "set", &veth, "master", "br0"]);
        self.run(&["ip", "-n", &hub, "link", "set", &veth, "up"]);
        self.run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        self.run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        self.run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ip
    }

    fn iptables(&self, i: usize, rule: &[&str]) {
        let mut cmd = vec!["ip", "netns", "exec", &self.members[i], "iptables", "-w"];
        cmd.extend_from_slice(rule);
        self.run(&cmd);
    }

    fn run(&self, cmd: &[&str]) {
        if let Err(e) = try_run(cmd) {
            panic!("network setup for the partition test failed (root, iproute2 and iptables are required): {e}");
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth, which deletes the other end too.
        for ns in self.members.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_if])
            .stderr(Stdio::null())
            .status();
    }
}

fn try_run(cmd: &[&str]) -> Result<(), String> {
    match Command::new(cmd[0]).args(&cmd[1..]).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{}` exited with {}: {}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("`{}` could not run: {e}", cmd.join(" "))),
    }
}
