//! A multi-member cluster harness: N `ballast kv` processes (or, with `BALLAST_TEST_SERVER=etcd`,
//! Debian's `etcd` 3.4, which takes the same flags) that tests kill, restart, grow, shrink and, in
//! network namespaces, partition. This file holds the `Cluster` type, how one is configured and
//! started, and its members' addresses; its other methods are split by concern, like etcd's
//! tests/framework/e2e: `process` (member processes: start, wait, kill, stop, signal, logs), `ctl`
//! (etcdctl against members, what they report, convergence, the check that every acknowledged
//! write survived), `membership` (member list, add, promote, remove), `netns` (`NetCluster`:
//! members in network namespaces, partitions) and `writers` (background writers that record
//! which writes were acknowledged).
//!
//! Members are numbered from 0 (member `i` is named `n{i+1}`). Everything the harness creates
//! (processes, temporary directories, namespaces, veths, firewall rules) is removed on `Drop`, also
//! when the test panics; a panicking test also prints the tail of every member's log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::free_port;
use super::netns::Net;
use super::process::Server;
use super::proxy::{LinkFault, Proxy};

/// Lines of each member's log printed when a test fails.
const LOG_TAIL_LINES: usize = 40;

/// How a cluster is started. `Cluster::start` and its variants cover the usual cases; this the
/// rest (as etcd e2e's `EtcdProcessClusterConfig`): a server other than the environment's, some
/// members behind proxies, a member's data directory elsewhere, other timing, more environment.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    size: usize,
    pub(super) server: Server,
    pub(super) extra: Vec<String>,
    /// Flags for member `i` alone, after `extra`.
    pub(super) member_extra: Vec<Vec<String>>,
    /// Every member (also those added later) advertises a proxy in front of its peer port.
    proxy_all: bool,
    /// These members advertise a proxy in front of their peer port.
    proxy_members: Vec<usize>,
    /// Members whose data directory is not in the cluster's temporary directory.
    data_dirs: Vec<(usize, PathBuf)>,
    /// `--heartbeat-interval` and `--election-timeout` in ms; every member gets them, Ballast and
    /// etcd alike (by default etcd's defaults, spelled out so that both run with the same timing).
    timing: (u64, u64),
    pub(super) env: Vec<(String, String)>,
}

impl ClusterConfig {
    /// `size` members of the server `BALLAST_TEST_SERVER` selects, with no flags of their own.
    pub fn new(size: usize) -> ClusterConfig {
        ClusterConfig {
            size,
            server: Server::from_env(),
            extra: Vec::new(),
            member_extra: Vec::new(),
            proxy_all: false,
            proxy_members: Vec::new(),
            data_dirs: Vec::new(),
            timing: (100, 1000),
            env: Vec::new(),
        }
    }

    pub fn server(mut self, server: Server) -> ClusterConfig {
        self.server = server;
        self
    }

    /// Flags every member gets.
    pub fn extra(mut self, flags: &[&str]) -> ClusterConfig {
        self.extra = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `member_extra[i]` added to member `i`'s flags, after `extra`.
    pub fn member_extra(mut self, member_extra: &[&[&str]]) -> ClusterConfig {
        self.member_extra = member_extra
            .iter()
            .map(|flags| flags.iter().map(|s| s.to_string()).collect())
            .collect();
        self
    }

    /// Every member's peer traffic (also that of members added later) through a proxy.
    pub fn proxied(mut self) -> ClusterConfig {
        self.proxy_all = true;
        self
    }

    /// The peer traffic of `members` through a proxy.
    pub fn proxied_members(mut self, members: &[usize]) -> ClusterConfig {
        self.proxy_members = members.to_vec();
        self
    }

    /// Member `i`'s data in `dir` (which must not exist yet) rather than in the cluster's
    /// temporary directory.
    pub fn data_dir(mut self, i: usize, dir: PathBuf) -> ClusterConfig {
        self.data_dirs.push((i, dir));
        self
    }

    /// `--heartbeat-interval` and `--election-timeout`, in ms (default 100 and 1000).
    pub fn timing(mut self, heartbeat_ms: u64, election_timeout_ms: u64) -> ClusterConfig {
        self.timing = (heartbeat_ms, election_timeout_ms);
        self
    }

    /// An environment variable for every member process.
    pub fn env(mut self, key: &str, value: &str) -> ClusterConfig {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the members and waits until each is healthy.
    pub fn start(self) -> Cluster {
        Cluster::launch(self, None, None)
    }

    pub(super) fn timing_flags(&self) -> [String; 4] {
        [
            "--heartbeat-interval".into(),
            self.timing.0.to_string(),
            "--election-timeout".into(),
            self.timing.1.to_string(),
        ]
    }

    fn proxied_member(&self, i: usize) -> bool {
        self.proxy_all || self.proxy_members.contains(&i)
    }
}

pub(super) struct Slot {
    pub(super) name: String,
    host: String,
    client_port: u16,
    /// The peer port the member advertises (its proxy's, if proxied).
    peer_port: u16,
    /// The peer port the member listens on (`peer_port` unless proxied).
    listen_peer_port: u16,
    /// If proxied, the proxy in front of `listen_peer_port`.
    proxy: Option<Proxy>,
    pub(super) data_dir: PathBuf,
    pub(super) log: PathBuf,
    /// Bytes in `log` when the process was last started.
    pub(super) log_from: u64,
    /// The network namespace the member runs in (`NetCluster` only).
    pub(super) netns: Option<String>,
    /// `--initial-cluster` and `--initial-cluster-state` this member was (first) started with.
    pub(super) initial_cluster: String,
    pub(super) initial_state: &'static str,
    pub(super) child: Option<Child>,
    /// Removed from the cluster with `member remove`: no longer counted as live.
    pub(super) removed: bool,
}

impl Slot {
    pub(super) fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    pub(super) fn peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.peer_port)
    }

    pub(super) fn listen_peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.listen_peer_port)
    }
}

/// A cluster of member processes on 127.0.0.1 (or, for `NetCluster`, in namespaces).
pub struct Cluster {
    pub(super) config: ClusterConfig,
    pub(super) slots: Vec<Slot>,
    pub(super) token: String,
    // Field order is drop order: namespaces go after the members (killed in `Drop::drop`) and
    // before the directory.
    pub(super) net: Option<Net>,
    tmp: tempfile::TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.config.server)
            .field("members", &self.slots.len())
            .finish()
    }
}

static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// Starts `n` members on 127.0.0.1 with `extra` flags and waits until each is healthy.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        ClusterConfig::new(n).extra(extra).start()
    }

    /// Like `start`, with `member_extra[i]` added to member `i`'s flags (members that disagree
    /// on a flag, as after a partial rolling change of a limit).
    pub fn start_each(n: usize, extra: &[&str], member_extra: &[&[&str]]) -> Cluster {
        ClusterConfig::new(n)
            .extra(extra)
            .member_extra(member_extra)
            .start()
    }

    /// Like `start`, with every member's peer traffic through a proxy (see `link_fault`).
    pub fn start_proxied(n: usize, extra: &[&str]) -> Cluster {
        ClusterConfig::new(n).extra(extra).proxied().start()
    }

    /// Starts a NEW cluster of `n` members whose data directories are first created from the
    /// snapshot file `snapshot` (`etcdctl snapshot save`), each in its server's own way (see
    /// `restore_snapshot`); waits until each is healthy.
    pub fn start_from_snapshot(n: usize, extra: &[&str], snapshot: &Path) -> Cluster {
        Cluster::launch(ClusterConfig::new(n).extra(extra), None, Some(snapshot))
    }

    /// Creates and starts the members `config` describes (in `net`'s namespaces, if given; their
    /// data directories first restored from `snapshot`, if given); waits until each is healthy.
    pub(super) fn launch(
        config: ClusterConfig,
        net: Option<Net>,
        snapshot: Option<&Path>,
    ) -> Cluster {
        let seq = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let n = config.size;
        let mut cluster = Cluster {
            config,
            slots: Vec::new(),
            token: format!("ballast-test-{}-{seq}", std::process::id()),
            net,
            tmp: tempfile::tempdir().unwrap(),
        };
        for i in 0..n {
            cluster.new_slot(i);
        }
        let initial = cluster.initial_cluster();
        for slot in &mut cluster.slots {
            slot.initial_cluster = initial.clone();
            slot.initial_state = "new";
        }
        if let Some(file) = snapshot {
            for i in 0..n {
                cluster.restore_snapshot(i, file);
            }
        }
        // All members first, then the waits: none is healthy before a quorum runs.
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i);
        }
        cluster
    }

    /// Allocates addresses, a data directory and a log for member `i` (not started).
    pub(super) fn new_slot(&mut self, i: usize) {
        assert_eq!(i, self.slots.len());
        let (host, client_port, mut peer_port, netns) = match &mut self.net {
            Some(net) => (net.add_member(i), 2379, 2380, Some(net.member_ns(i))),
            // free_port never hands out a port twice.
            None => ("127.0.0.1".to_owned(), free_port(), free_port(), None),
        };
        let (proxy, listen_peer_port) = if self.config.proxied_member(i) {
            let proxy = Proxy::start(format!("{host}:{peer_port}").parse().unwrap());
            let advertised = proxy.port();
            (Some(proxy), std::mem::replace(&mut peer_port, advertised))
        } else {
            (None, peer_port)
        };
        let name = format!("n{}", i + 1);
        let data_dir = match self.config.data_dirs.iter().find(|(m, _)| *m == i) {
            Some((_, dir)) => dir.clone(),
            None => self.tmp.path().join(format!("{name}.data")),
        };
        self.slots.push(Slot {
            data_dir,
            log: self.tmp.path().join(format!("{name}.log")),
            log_from: 0,
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
    pub(super) fn initial_cluster(&self) -> String {
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
        let mut cmd = match self.config.server {
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

    pub fn server(&self) -> Server {
        self.config.server
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

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.slots[i].data_dir
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

    /// Sets the fault on the links into member `i` (every connection another member opens to it,
    /// both directions); member `i` must be proxied (`Cluster::start_proxied`).
    pub fn link_fault(&self, i: usize, fault: LinkFault) {
        self.slots[i]
            .proxy
            .as_ref()
            .expect("link faults need Cluster::start_proxied")
            .set(fault);
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
