//! Lease chaos: a 3-member cluster under session traffic (short leases kept alive through another
//! member than the one written through, locks taken on leases, linearizable reads of every
//! session key), with the leader cut off, paused or killed for longer than the leases' TTLs.
//! Checked (`ballast_check::check_leases`): no key vanishes while its lease was renewed within
//! its TTL, and no two clients hold the lock at once while their leases live.
//!
//! The leader faults are the ones that matter: its countdowns run on while the majority elects
//! another leader and keeps the leases alive through it. Before the fixes, a deposed leader's
//! expiries reached the log through the new leader at heal, and while cut off it went on
//! answering keep-alives from its own clock; both lose live sessions' keys.
//!
//! `CHAOS_ROUNDS=N` runs each fault N times; `BALLAST_TEST_SERVER=etcd` runs them against etcd.

mod common;
#[path = "common/sessions.rs"]
mod sessions;

use std::time::{Duration, Instant};

use ballast_check::{check_leases, LeaseResult};
use common::cluster::Cluster;
use common::members::Members;
use common::netns::NetCluster;
use sessions::{SessionConfig, SessionTraffic};

/// Longer than every TTL the sessions use (2-3 s), so the cut-off leader's countdowns all run out.
const HOLD: Duration = Duration::from_secs(6);
/// Traffic before the fault and after recovering from it.
const PHASE: Duration = Duration::from_secs(3);
/// Taken off each lease's guaranteed life: the time between reading the clock and the request
/// leaving the client.
const ALLOWANCE_NS: u64 = 50_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What happens to the leader.
enum LeaderFault {
    Partition,
    Pause,
    Kill,
}

fn run(fault: LeaderFault) {
    let _serial = common::one_at_a_time();
    for round in 0..common::chaos_rounds() {
        let started = Instant::now();
        let mut c = if fault == LeaderFault::Partition {
            Members::Net(NetCluster::start(3, &[]))
        } else {
            Members::Plain(Cluster::start(3, &[]))
        };
        let endpoints = (0..c.size()).map(|i| c.endpoint(i)).collect();
        let config = SessionConfig::default();
        let name = format!("{fault:?}-{round}-seed{}", config.seed);
        let traffic = SessionTraffic::start(endpoints, config);
        std::thread::sleep(PHASE);
        let before = traffic.reads();
        assert!(before > 0, "{name}: no read answered before the fault");
        let leader = c.leader();
        eprintln!("fault: {fault:?} of the leader, member {leader}, for {HOLD:?}");
        match fault {
            LeaderFault::Partition => {
                c.isolate(leader);
                std::thread::sleep(HOLD);
                c.heal(leader);
            }
            LeaderFault::Pause => {
                c.signal(leader, "STOP");
                std::thread::sleep(HOLD);
                c.signal(leader, "CONT");
            }
            LeaderFault::Kill => {
                c.kill9(leader);
                std::thread::sleep(HOLD);
                c.restart(leader);
            }
        }
        std::thread::sleep(PHASE);
        let recording = traffic.stop();
        let result = check_leases(
            &recording.sessions,
            &recording.reads,
            &recording.holds,
            ALLOWANCE_NS,
        );
        let saved = save(&recording, &name);
        eprintln!(
            "{name} (saved to {saved}): {} sessions, {} renewals, {} leases lost, {} reads ({} after the fault began), {} lock holds; {result}; in {:?}",
            recording.sessions.len(),
            recording.renewals,
            recording.lost,
            recording.reads.len(),
            recording.reads.len() - before,
            recording.holds.len(),
            started.elapsed()
        );
        assert!(
            matches!(result, LeaseResult::Ok { .. }),
            "{name}: {result} (history saved to {saved})"
        );
        assert!(
            recording.reads.len() > before,
            "{name}: no read answered after the fault"
        );
        c.wait_converged();
    }
}

/// Writes the recording as JSON beside the test's temporary files; returns the path.
fn save(recording: &sessions::SessionRecording, name: &str) -> String {
    let json = serde_json::json!({
        "sessions": recording.sessions,
        "reads": recording.reads,
        "holds": recording.holds,
    });
    common::save_json("lease-chaos", name, &json)
}

#[test]
fn lease_chaos_partition_leader() {
    run(LeaderFault::Partition);
}

#[test]
fn lease_chaos_pause_leader() {
    run(LeaderFault::Pause);
}

#[test]
fn lease_chaos_kill_leader() {
    run(LeaderFault::Kill);
}
