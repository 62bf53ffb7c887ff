//! Auth chaos: an admin changes auth again and again (grants and revokes a user's read permission
//! on one key, disables and enables auth, changes the user's password) while that user reads the
//! key linearizably through every member and one member (a follower, or the leader) is cut off
//! and healed. Each reader holds a token, and authenticates again when it is refused; a prober
//! per member reads with the tokens the readers were refused, through any member. Checked
//! (`ballast_check::check_permissions`): each read was allowed or refused by the auth state at its
//! linearization point (allowed when auth is off or the permission granted), and a token ended by
//! a password change or an auth disable that returned before the read was sent was refused as
//! invalid, a token nothing could have ended accepted: a member that lagged a change must not
//! judge a read, or its token, by its stale copy.
//!
//! `CHAOS_ROUNDS=N` runs each fault N times; `BALLAST_TEST_SERVER=etcd` runs them against etcd.

#[path = "chaos_auth/clients.rs"]
mod clients;
mod common;

use std::time::Duration;

use ballast_check::{check_permissions, AuthState, ChangeKind, PermissionResult, ReadOutcome};
use clients::{Recorded, Shared, ALICE, KEY, PASSWORDS, ROLE, ROOT_PASSWORD};
use common::netns::NetCluster;

const HOLD: Duration = Duration::from_secs(4);
const PHASE: Duration = Duration::from_secs(3);

/// "1 Grant, 2 Revoke, ..." for the summary line.
fn changes_by_kind(r: &Recorded) -> String {
    use ChangeKind::*;
    [Grant, Revoke, Disable, Enable, Password]
        .iter()
        .map(|&k| {
            let n = r.changes.iter().filter(|c| c.kind == k).count();
            format!("{n} {k:?}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(r: &Recorded, outcome: ReadOutcome) -> usize {
    r.reads.iter().filter(|x| x.outcome == outcome).count()
}

fn run(cut_off_leader: bool) {
    let _serial = common::one_at_a_time();
    for round in 0..common::chaos_rounds() {
        let c = NetCluster::start(3, &[]);
        let root = format!("root:{ROOT_PASSWORD}");
        let alice = format!("{ALICE}:{}", PASSWORDS[0]);
        for args in [
            &["user", "add", &root][..],
            &["user", "add", &alice],
            &["role", "add", ROLE],
            &["role", "grant-permission", ROLE, "read", KEY],
            &["user", "grant-role", ALICE, ROLE],
            &["put", KEY, "v"],
            &["auth", "enable"],
        ] {
            c.ok(0, args);
        }
        let seed: u64 = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        let name = format!(
            "{}-{round}-seed{seed}",
            if cut_off_leader {
                "PartitionLeader"
            } else {
                "PartitionFollower"
            }
        );
        let endpoints: Vec<String> = (0..c.size()).map(|i| c.endpoint(i)).collect();
        let runtime = common::grpc::client_runtime();
        let shared = Shared::default();
        let mut tasks =
            vec![runtime.spawn(clients::admin(endpoints.clone(), shared.clone(), seed))];
        for (i, e) in endpoints.iter().enumerate() {
            tasks.push(runtime.spawn(clients::reader(e.clone(), shared.clone())));
            let probe_seed = seed ^ (i as u64 + 1);
            tasks.push(runtime.spawn(clients::prober(e.clone(), shared.clone(), probe_seed)));
        }
        std::thread::sleep(PHASE);
        let leader = c.leader();
        let target = if cut_off_leader {
            leader
        } else {
            (leader + 1) % c.size()
        };
        eprintln!("fault: member {target} cut off for {HOLD:?} (leader: {leader})");
        c.isolate(target);
        std::thread::sleep(HOLD);
        c.heal(target);
        std::thread::sleep(PHASE);
        shared.stop();
        runtime.block_on(async {
            for t in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
            }
        });
        let recorded = shared.take();
        let initially = AuthState {
            enabled: true,
            granted: true,
        };
        let result = check_permissions(initially, &recorded.changes, &recorded.reads);
        let (allowed, denied) = (
            count(&recorded, ReadOutcome::Allowed),
            count(&recorded, ReadOutcome::Denied),
        );
        eprintln!(
            "{name}: changes {}; {} reads ({allowed} allowed, {denied} permission denied, {} \
             without user, {} invalid token); {result}",
            changes_by_kind(&recorded),
            recorded.reads.len(),
            count(&recorded, ReadOutcome::NoUser),
            count(&recorded, ReadOutcome::InvalidToken),
        );
        let failure = match result {
            PermissionResult::Violation { .. } => Some(result.to_string()),
            _ if allowed == 0 || denied == 0 => Some("the reads never saw both states".into()),
            PermissionResult::Ok {
                ended_tokens: 0, ..
            } => Some("no read used a token after a change ended it".into()),
            PermissionResult::Ok { .. } => None,
        };
        if let Some(failure) = failure {
            let json = serde_json::json!({
                "changes": recorded.changes,
                "reads": recorded.reads,
            });
            let path = common::save_json("auth", &name, &json);
            panic!("{name}: {failure} (history: {path})");
        }
    }
}

#[test]
fn auth_chaos_partition_follower() {
    run(false);
}

#[test]
fn auth_chaos_partition_leader() {
    run(true);
}
