//! Members in network namespaces (`NetCluster`), so that a test can partition a member from the
//! others with the firewall, and the namespaces, bridge and veths behind it (`Net`).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cluster::{Cluster, ClusterConfig};

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
            cluster: Cluster::launch(ClusterConfig::new(n).extra(extra), Some(net), None),
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
pub(super) struct Net {
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

    pub(super) fn member_ns(&self, i: usize) -> String {
        self.members[i].clone()
    }

    fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// Creates member `i`'s namespace wired to the bridge; returns its address.
    pub(super) fn add_member(&mut self, i: usize) -> String {
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
