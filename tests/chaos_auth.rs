//! Auth chaos: an admin grants and revokes a user's read permission on one key, again and again,
//! while that user reads the key linearizably through every member and one member (a follower,
//! or the leader) is cut off and healed. Checked (`ballast_check::check_permissions`): each read
//! was allowed or refused by the permission's state at its linearization point; a member that
//! lagged a change must not judge a read by its stale copy.
//!
//! `CHAOS_ROUNDS=N` runs each fault N times; `BALLAST_TEST_SERVER=etcd` runs them against etcd.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_check::{check_permissions, GuardedRead, PermissionChange, PermissionResult};
use common::cluster::NetCluster;
use etcd_client::{Client, ConnectOptions, Permission};
use rand::{Rng, SeedableRng};

const KEY: &str = "guarded";
const HOLD: Duration = Duration::from_secs(4);
const PHASE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Recorded {
    changes: Vec<PermissionChange>,
    reads: Vec<GuardedRead>,
}

async fn connect(endpoints: Vec<String>, user: &str, password: &str) -> Client {
    let opts = ConnectOptions::new()
        .with_user(user, password)
        .with_timeout(Duration::from_secs(5));
    loop {
        if let Ok(client) = Client::connect(endpoints.clone(), Some(opts.clone())).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Revokes and grants alice's read permission, in turn, at random intervals; a change whose
/// outcome is unknown is sent again until answered (granting twice is harmless; revoking a
/// revoked permission is refused, which says the first attempt took effect).
async fn admin(
    endpoints: Vec<String>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    seed: u64,
    out: Arc<Mutex<Recorded>>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut root = connect(endpoints, "root", "rootpw").await;
    let mut granted = true;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        let call = epoch.elapsed().as_nanos() as u64;
        loop {
            let done = if granted {
                match root.role_revoke_permission("reader", KEY, None).await {
                    Ok(_) => true,
                    Err(e) => e.to_string().contains("permission is not granted"),
                }
            } else {
                root.role_grant_permission("reader", Permission::read(KEY))
                    .await
                    .is_ok()
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        granted = !granted;
        let ret = epoch.elapsed().as_nanos() as u64;
        out.lock()
            .unwrap()
            .changes
            .push(PermissionChange { call, ret, granted });
    }
}

/// Alice reads the key through one member, again and again.
async fn reader(
    endpoint: String,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Recorded>>,
) {
    let mut alice = connect(vec![endpoint], "alice", "alicepw").await;
    while !stop.load(Ordering::Relaxed) {
        let call = epoch.elapsed().as_nanos() as u64;
        let allowed = match alice.get(KEY, None).await {
            Ok(_) => Some(true),
            Err(e) if e.to_string().contains("permission denied") => Some(false),
            Err(_) => None,
        };
        let ret = epoch.elapsed().as_nanos() as u64;
        if let Some(allowed) = allowed {
            out.lock()
                .unwrap()
                .reads
                .push(GuardedRead { call, ret, allowed });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn run(cut_off_leader: bool) {
    let _serial = common::one_at_a_time();
    for round in 0..common::chaos_rounds() {
        let c = NetCluster::start(3, &[]);
        for args in [
            &["user", "add", "root:rootpw"][..],
            &["user", "add", "alice:alicepw"],
            &["role", "add", "reader"],
            &["role", "grant-permission", "reader", "read", KEY],
            &["user", "grant-role", "alice", "reader"],
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
        let endpoints: Vec<String> = (0..c.size())
            .map(|i| format!("http://{}", c.endpoint(i)))
            .collect();
        let runtime = common::client_runtime();
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Recorded::default()));
        let mut tasks = vec![runtime.spawn(admin(
            endpoints.clone(),
            epoch,
            stop.clone(),
            seed,
            out.clone(),
        ))];
        for e in &endpoints {
            tasks.push(runtime.spawn(reader(e.clone(), epoch, stop.clone(), out.clone())));
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
        stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            for t in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
            }
        });
        let recorded = std::mem::take(&mut *out.lock().unwrap());
        let result = check_permissions(true, &recorded.changes, &recorded.reads);
        let refused = recorded.reads.iter().filter(|r| !r.allowed).count();
        eprintln!(
            "{name}: {} changes, {} reads ({refused} refused); {result}",
            recorded.changes.len(),
            recorded.reads.len()
        );
        assert!(
            matches!(result, PermissionResult::Ok { .. }),
            "{name}: {result}"
        );
        assert!(
            refused > 0 && refused < recorded.reads.len(),
            "{name}: the reads never saw both states"
        );
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
