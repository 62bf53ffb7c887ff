//! Chaos tests: a 3-member cluster of real processes under recorded client traffic (gets, ranges,
//! puts, deletes, compare-and-swap txns, leases, watches from random revisions, compaction), ONE
//! fault per run, then the recorded history is checked for linearizability and the watches for
//! order, gaps, duplicates and agreement with the history (`ballast-check`), and the members for
//! identical data.
//!
//! Each test runs once per `cargo test` (`CHAOS_ROUNDS=N` runs each fault N times with different
//! seeds; `CHAOS_SEED=S` replays one seed's client choices). `BALLAST_TEST_SERVER=etcd` runs
//! them against etcd 3.4, which shows the traffic and the checkers accept a correct server.
//! `serializable_reads_are_caught` is the control: reads served member-locally but recorded as
//! linearizable must be rejected, which shows the checker can fail.

mod common;
#[path = "common/traffic/mod.rs"]
mod traffic;

use std::time::{Duration, Instant};

use ballast_check::{check_linearizable, check_watches, LinResult, WatchResult};
use common::cluster::Cluster;
use common::members::Members;
use common::netns::NetCluster;
use common::proxy::LinkFault;
use traffic::{Config, Recording, Traffic};

/// Traffic before the fault and after recovering from it.
const PHASE: Duration = Duration::from_secs(2);

/// How long the checker may search one history.
const CHECK_BUDGET: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    PartitionLeader,
    PartitionFollower,
    /// Every peer link delayed by 75 ms +/- 50 ms per chunk.
    DelayLinks,
    /// Every peer link losing 10% of its chunks (each loss resets that connection).
    DropLinks,
    /// Everything sent to a follower over its peer links is lost.
    BlackholeFollower,
    /// A follower is removed from the cluster and a new, empty member added in its place.
    ReplaceFollower,
    /// With a follower down, removing the other follower is refused (strict reconfiguration:
    /// "etcdserver: unhealthy cluster"); the down member is removed instead and a new, empty
    /// member added in its place.
    ReconfigureWithMemberDown,
    RestartAll,
}

impl Fault {
    fn needs_network(self) -> bool {
        matches!(self, Fault::PartitionLeader | Fault::PartitionFollower)
    }

    fn needs_proxy(self) -> bool {
        matches!(
            self,
            Fault::DelayLinks | Fault::DropLinks | Fault::BlackholeFollower
        )
    }
}

/// A plain cluster, or one in network namespaces for the partition faults, or one whose peer
/// links pass through proxies for the link faults.
fn start_members(fault: Fault, size: usize) -> Members {
    if fault.needs_network() {
        Members::Net(NetCluster::start(size, &[]))
    } else if fault.needs_proxy() {
        Members::Plain(Cluster::start_proxied(size, &[]))
    } else {
        Members::Plain(Cluster::start(size, &[]))
    }
}

/// Injects `fault` for `hold`, then recovers from it (restart, resume, heal).
fn inject(c: &mut Members, fault: Fault, hold: Duration) {
    let target = match fault {
        Fault::KillLeader | Fault::PauseLeader | Fault::PartitionLeader => c.leader(),
        Fault::KillFollower
        | Fault::PauseFollower
        | Fault::PartitionFollower
        | Fault::BlackholeFollower => c.follower(),
        Fault::ReplaceFollower => {
            let old = c.follower();
            eprintln!("fault: {fault:?}: member {old} removed");
            c.member_remove(old);
            let (new, id) = c.add_member(false);
            c.wait_healthy(new);
            eprintln!("fault: {fault:?}: member {new} ({id:x}) added");
            return;
        }
        Fault::ReconfigureWithMemberDown => {
            let leader = c.leader();
            let down = c.follower();
            let healthy = c.live().into_iter().find(|&i| i != leader && i != down);
            let healthy_id = c.member_id(healthy.expect("a third member"));
            c.kill9(down);
            eprintln!("fault: {fault:?}: member {down} killed");
            // The leader counts a member as connected for 5 s after it last heard from it (etcd's
            // HealthInterval).
            std::thread::sleep(Duration::from_secs(6));
            let remove = ["member", "remove", &format!("{healthy_id:x}")];
            c.ctl(leader, &remove)
                .expect_error(&remove, "etcdserver: unhealthy cluster");
            c.member_remove(down);
            let (new, id) = c.add_member(false);
            c.wait_healthy(new);
            eprintln!("fault: {fault:?}: removing {healthy_id:x} refused; member {down} removed, {new} ({id:x}) added");
            return;
        }
        Fault::DelayLinks | Fault::DropLinks => {
            let link = if fault == Fault::DelayLinks {
                LinkFault::Delay {
                    base: Duration::from_millis(75),
                    jitter: Duration::from_millis(50),
                }
            } else {
                LinkFault::Drop { probability: 0.1 }
            };
            eprintln!("fault: {link:?} on every peer link for {hold:?}");
            let members = c.live();
            for &i in &members {
                c.link_fault(i, link);
            }
            std::thread::sleep(hold);
            for &i in &members {
                c.link_fault(i, LinkFault::Healthy);
            }
            return;
        }
        Fault::RestartAll => {
            c.restart_all();
            return;
        }
    };
    eprintln!("fault: {fault:?} on member {target} for {hold:?}");
    match fault {
        Fault::KillLeader | Fault::KillFollower => {
            c.kill9(target);
            std::thread::sleep(hold);
            c.restart(target);
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            c.signal(target, "STOP");
            std::thread::sleep(hold);
            c.signal(target, "CONT");
        }
        Fault::PartitionLeader | Fault::PartitionFollower => {
            c.isolate(target);
            std::thread::sleep(hold);
            c.heal(target);
        }
        Fault::BlackholeFollower => {
            c.link_fault(target, LinkFault::Blackhole);
            std::thread::sleep(hold);
            c.link_fault(target, LinkFault::Healthy);
        }
        Fault::ReplaceFollower
        | Fault::ReconfigureWithMemberDown
        | Fault::DelayLinks
        | Fault::DropLinks
        | Fault::RestartAll => {
            unreachable!()
        }
    }
}

/// Starts a cluster, runs traffic with `fault` in the middle, and returns what was recorded
/// after the members converged on identical data.
fn run(fault: Fault, size: usize, config: Config) -> Recording {
    let started = Instant::now();
    let mut c = start_members(fault, size);
    let endpoints = (0..c.size()).map(|i| c.endpoint(i)).collect();
    let traffic = Traffic::start(endpoints, config);
    std::thread::sleep(PHASE);
    let before = traffic.wait_answered_beyond(0, 200, Duration::from_secs(10));
    assert!(
        before >= 200,
        "only {before} requests answered before the fault"
    );
    inject(&mut c, fault, Duration::from_secs(3));
    std::thread::sleep(PHASE);
    let after = traffic.wait_answered_beyond(traffic.answered(), 200, Duration::from_secs(15));
    let recording = traffic.stop(Duration::from_secs(20));
    assert!(
        after >= before + 200,
        "only {} requests answered after recovering from {fault:?}",
        after - before
    );
    let (rev, _) = c.wait_converged();
    eprintln!(
        "{fault:?}: {} ops ({} answered, {} unknown), {} watches with {} events, {} compactions; converged at revision {rev} in {:?}",
        recording.ops.len(),
        recording.answered(),
        recording.unknown(),
        recording.watches.len(),
        recording.events(),
        recording.compactions,
        started.elapsed()
    );
    recording
}

/// Writes the recording as JSON next to the test's temporary files and returns the path.
fn save(recording: &Recording, name: &str) -> String {
    let json = serde_json::json!({ "ops": recording.ops, "watches": recording.watches });
    common::save_json("chaos", name, &json)
}

/// Checks one recording: linearizable, watches valid and live.
fn check(recording: &Recording, name: &str) {
    let started = Instant::now();
    let lin = check_linearizable(&recording.ops, CHECK_BUDGET);
    if !matches!(lin, LinResult::Ok { .. }) {
        panic!(
            "{name}: {lin}\n(history saved to {})",
            save(recording, name)
        );
    }
    let watches = check_watches(&recording.ops, &recording.watches);
    if !matches!(watches, WatchResult::Ok { .. }) {
        panic!(
            "{name}: {watches}\n(history saved to {})",
            save(recording, name)
        );
    }
    assert!(
        recording.stalled_watches.is_empty(),
        "{name}: watches {:?} did not deliver the final write (history saved to {})",
        recording.stalled_watches,
        save(recording, name)
    );
    eprintln!(
        "{name}: {lin}; {watches}; checked in {:?}",
        started.elapsed()
    );
}

fn chaos(fault: Fault) {
    chaos_of(fault, 3);
}

fn chaos_of(fault: Fault, size: usize) {
    let _serial = common::one_at_a_time();
    for round in 0..common::chaos_rounds() {
        let config = Config::default();
        let name = format!("{fault:?}-{size}m-{round}-seed{}", config.seed);
        let recording = run(fault, size, config);
        check(&recording, &name);
    }
}

#[test]
fn chaos_kill_leader() {
    chaos(Fault::KillLeader);
}

#[test]
fn chaos_kill_follower() {
    chaos(Fault::KillFollower);
}

#[test]
fn chaos_pause_leader() {
    chaos(Fault::PauseLeader);
}

#[test]
fn chaos_pause_follower() {
    chaos(Fault::PauseFollower);
}

#[test]
fn chaos_partition_leader() {
    chaos(Fault::PartitionLeader);
}

#[test]
fn chaos_partition_follower() {
    chaos(Fault::PartitionFollower);
}

#[test]
fn chaos_delay_links() {
    chaos(Fault::DelayLinks);
}

#[test]
fn chaos_drop_links() {
    chaos(Fault::DropLinks);
}

#[test]
fn chaos_blackhole_follower() {
    chaos(Fault::BlackholeFollower);
}

#[test]
fn chaos_replace_follower() {
    chaos(Fault::ReplaceFollower);
}

#[test]
fn chaos_reconfigure_with_a_member_down() {
    chaos(Fault::ReconfigureWithMemberDown);
}

#[test]
fn chaos_restart_all() {
    chaos(Fault::RestartAll);
}

#[test]
fn chaos_five_members_kill_leader() {
    chaos_of(Fault::KillLeader, 5);
}

#[test]
fn chaos_five_members_partition_leader() {
    chaos_of(Fault::PartitionLeader, 5);
}

/// The control: clients ask for serializable reads (answered from the member's own state) but
/// the history records them as linearizable gets; with the leader cut off (it keeps answering
/// from its old state), the checker must find a stale read.
#[test]
fn serializable_reads_are_caught() {
    let _serial = common::one_at_a_time();
    let config = Config {
        serializable_reads: true,
        ..Config::default()
    };
    let recording = run(Fault::PartitionLeader, 3, config);
    let lin = check_linearizable(&recording.ops, CHECK_BUDGET);
    eprintln!("control: {lin}");
    assert!(
        matches!(lin, LinResult::Violation { .. }),
        "serializable reads recorded as linearizable under a partition were not rejected: {lin}"
    );
}
