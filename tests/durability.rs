//! Durability: an acknowledged write survives power loss. One `ballast kv` member runs with its data
//! directory on lazyfs (tools/lazyfs: a FUSE filesystem that forgets whatever was not fsynced when
//! told to crash), under concurrent writers that record every acknowledged put (a unique key and
//! value) and its revision. Each cycle ends at a random point, during writes, right after a
//! compaction request, or while a raft snapshot (a RocksDB checkpoint, `--snapshot-count` is tiny so
//! they come often and the log is purged) is being taken: the member is killed with SIGKILL and the
//! filesystem crashed (unsynced data reverted, as a power loss would). The member restarts on the
//! same directory and must hold every acknowledged write at its revision with its value, report a
//! revision no lower than any acknowledged or observed before (no regression), and accept writes.
//!
//! `DURABILITY_CYCLES=N` sets the cycles (default 20); `DURABILITY_SEED=S` replays one seed's choices.
//!
//! `fsync_disabled_control_is_caught` is the control: the same cycles with the member under
//! Debian's `eatmydata` (fsync and fdatasync made no-ops) must find a violation, which shows this
//! test can fail (with nothing ever synced, the first crash leaves even the member's identity file
//! empty, so it does not come back). `raft_wal_tail_damage` damages the tail of the raft log's
//! RocksDB WAL after a kill and a crash (as a disk that lied about a flush would) and checks that
//! the member refuses to start (a checksum mismatch), or keeps every acknowledged write, or warns of
//! the torn record it dropped (a cut tail, as a crash mid-append leaves).
//! `kill_during_snapshot_install` kills and crashes a lazyfs follower of a 3-member cluster while
//! it installs a snapshot, and checks it catches up to every acknowledged write.
//! `restarted_leader_reads_its_acknowledged_write` crashes a lazyfs leader right after a write and
//! restarts it while its followers' answers are slow: its first linearizable read must see the write.
//! `a_second_member_on_the_same_directory_is_refused` shows RocksDB's lock file works on lazyfs.
//!
//! The members are started by the shared harness (tests/common: `Member`, `Cluster`) and written to
//! by its `GrpcWriter`; what is particular to power loss (the lazyfs mount, the kill points, the
//! checks, the WAL damage) is here.

mod common;
#[path = "durability/power_loss.rs"]
mod power_loss;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use common::grpc::{client_runtime, read_range};
use common::proxy::LinkFault;
use common::writers::GrpcWriter;
use power_loss::{channel, last_log, print_last_log, run_cycles, Lazy, Outcome, Run, Violation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Keys the writers put: `d/<cycle>/<writer>/<seq>`, each once.
const PREFIX: &str = "d/";
const PREFIX_END: &str = "d0";
const WRITERS: usize = 8;
/// A snapshot every this many log entries: several per cycle, and the log is purged behind them
/// (5000 entries behind the last snapshot) within a few cycles.
const SNAPSHOT_COUNT: &str = "100";
/// About 0.6 s a cycle in a debug build; 20 cycles write past 5000 log entries, so the log is
/// purged behind a snapshot at least once.
const DEFAULT_CYCLES: usize = 20;
/// The control stops at its first violation; it must find one within this many cycles.
const CONTROL_MAX_CYCLES: usize = 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn seed() -> u64 {
    match std::env::var("DURABILITY_SEED") {
        Ok(s) => s.parse().expect("DURABILITY_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[test]
fn acknowledged_writes_survive_power_loss() {
    let _one = common::one_at_a_time();
    let cycles = std::env::var("DURABILITY_CYCLES").map_or(DEFAULT_CYCLES, |s| {
        s.parse().expect("DURABILITY_CYCLES must be a number")
    });
    let seed = seed();
    eprintln!("durability: {cycles} cycles, DURABILITY_SEED={seed}");
    let started = Instant::now();
    let Some(Outcome {
        result,
        totals,
        run,
    }) = run_cycles(None, cycles, seed)
    else {
        return;
    };
    if let Err((cycle, violation)) = &result {
        print_last_log(&run);
        panic!("after {cycle} crash(es) (DURABILITY_SEED={seed}): {violation}");
    }
    eprintln!(
        "durability: {} crash points ({:?}, {} snapshots caught in progress), {} puts acknowledged, {} acknowledged-write checks, 0 lost, 0 revision regressions; \
         {} files reverted, {} unsynced bytes dropped; final revision {}; {:.1} s",
        totals.cycles,
        totals.kills,
        totals.snapshots_caught,
        totals.acked,
        totals.checked,
        totals.files_reverted,
        totals.bytes_dropped,
        totals.last_revision,
        started.elapsed().as_secs_f64()
    );
    assert!(
        totals.acked > 0,
        "no write was acknowledged: the test tested nothing"
    );
}

#[test]
fn fsync_disabled_control_is_caught() {
    let _one = common::one_at_a_time();
    assert!(
        Command::new("eatmydata")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success()),
        "eatmydata (Debian's eatmydata) must be installed: scripts/setup.sh installs it"
    );
    let seed = seed();
    let started = Instant::now();
    let Some(Outcome { result, totals, .. }) =
        run_cycles(Some("eatmydata"), CONTROL_MAX_CYCLES, seed)
    else {
        return;
    };
    match result {
        Err((cycle, violation)) => eprintln!(
            "control: with fsync disabled, caught after {cycle} crash(es) ({} puts acknowledged, {:.1} s): {violation}",
            totals.acked,
            started.elapsed().as_secs_f64()
        ),
        Ok(()) => panic!(
            "with fsync disabled (eatmydata), {CONTROL_MAX_CYCLES} crashes lost nothing (DURABILITY_SEED={seed}): the durability test cannot fail"
        ),
    }
}

/// RocksDB's fcntl lock on its LOCK file holds across processes on lazyfs (FUSE leaves POSIX locks
/// to the kernel), so a second member on the same directory is refused while the first runs.
#[test]
fn a_second_member_on_the_same_directory_is_refused() {
    let _one = common::one_at_a_time();
    let Some(mut run) = Run::new(None, seed()) else {
        return;
    };
    let first = run.start().unwrap_or_else(|v| panic!("{v}"));
    match run.start() {
        Ok(_) => panic!("a second member started on the data directory of a running one"),
        Err(v) => assert!(
            v.to_string().to_lowercase().contains("lock"),
            "refused, but not for the lock: {v}"
        ),
    }
    run.check(&first).unwrap_or_else(|v| panic!("{v}"));
}

/// Damage to the raft log's WAL after a kill and a crash (so the store has lost its unsynced
/// applies and only the log holds the latest acknowledged writes).
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The last bytes cut off: a disk that acknowledged a flush it had not done.
    CutTail(u64),
    /// One byte flipped this far from the end: a bad sector under a synced record.
    FlipByte(u64),
}

/// The newest non-empty WAL file of the raft log's RocksDB.
fn newest_wal(raft_dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(raft_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "log")
                && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
        })
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no WAL file in {}", raft_dir.display()))
}

/// Ok(what happened) if the member refused to start or kept every acknowledged write; Err(what
/// happened) if it started without some.
fn after_wal_damage(damage: Damage, seed: u64) -> Option<Result<String, String>> {
    let mut run = Run::new(None, seed)?;
    let server = run.start().unwrap_or_else(|v| panic!("{v}"));
    let writers = run.spawn_writers(&server, "wal");
    std::thread::sleep(Duration::from_secs(1));
    let acked = run.finish(writers).len();
    drop(server);
    let report = run.lazy.mount.crash().expect("crash lazyfs");
    let wal = newest_wal(&run.data_dir.join("raft"));
    let len = std::fs::metadata(&wal).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&wal)
        .unwrap();
    match damage {
        Damage::CutTail(n) => {
            // A cut exactly between two records leaves a shorter log that no WAL format can tell
            // from a whole one (etcd's cannot either): cut into a record instead, a byte or more
            // further if need be.
            let bytes = std::fs::read(&wal).unwrap();
            let mut cut = bytes.len().saturating_sub(n as usize);
            while cut > 0 && ballast_raft::wal_tail::torn_tail(&bytes[..cut]).is_none() {
                cut -= 1;
            }
            file.set_len(cut as u64).unwrap()
        }
        Damage::FlipByte(from_end) => {
            use std::os::unix::fs::FileExt;
            let at = len.saturating_sub(from_end);
            let mut byte = [0];
            file.read_exact_at(&mut byte, at).unwrap();
            file.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
        }
    }
    file.sync_all().unwrap();
    let what = format!(
        "{damage:?} on {} ({len} bytes) after {acked} acknowledged puts (highest revision {}) and a crash that reverted {} files",
        wal.file_name().unwrap().to_string_lossy(),
        run.high,
        report.files
    );
    Some(match run.start() {
        Err(Violation::DidNotStart(log)) => Ok(format!("{what}: refused to start:\n{log}")),
        Err(v) => Err(format!("{what}: {v}")),
        Ok(server) => match (run.check(&server), damage) {
            (Ok(()), _) => Ok(format!("{what}: started with every acknowledged write")),
            (Err(v), Damage::CutTail(_)) if last_log(&run).contains("torn record") => Ok(format!(
                "{what}: started with a warning of the torn record, and {v}"
            )),
            (Err(v), _) => {
                print_last_log(&run);
                let mut files: Vec<String> = std::fs::read_dir(run.data_dir.join("raft"))
                    .unwrap()
                    .flatten()
                    .map(|e| {
                        format!(
                            "{} ({} bytes)",
                            e.file_name().to_string_lossy(),
                            e.metadata().map_or(0, |m| m.len())
                        )
                    })
                    .collect();
                files.sort();
                Err(format!(
                    "{what}: started, and {v}; the raft log's files now: {}",
                    files.join(", ")
                ))
            }
        },
    })
}

/// A byte flipped 40 bytes before the end of the raft WAL (a checksum mismatch in a complete,
/// synced record) must stop the member from starting, as etcd refuses with "wal: crc mismatch".
/// A cut tail (300 bytes: inside the last record; 20 kB: many records; moved back into a record if
/// it falls between two, which leaves nothing to detect) is what a crash in an unsynced append also
/// leaves, so the member starts without the cut records (etcd "repairs" its
/// torn WAL the same way), but it must say so: the member's log must warn of a torn record.
/// Before the fix, RocksDB's default point-in-time recovery stopped at the bad record and the
/// member served without the last 1-90 acknowledged puts, silently.
#[test]
fn raft_wal_tail_damage() {
    let _one = common::one_at_a_time();
    let seed = seed();
    let mut bad = Vec::new();
    for damage in [
        Damage::FlipByte(40),
        Damage::CutTail(300),
        Damage::CutTail(20_000),
    ] {
        let Some(outcome) = after_wal_damage(damage, seed) else {
            return;
        };
        match outcome {
            Ok(what) => eprintln!("wal damage: {what}"),
            Err(what) => {
                eprintln!("wal damage: VIOLATION: {what}");
                bad.push(what);
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the member served without acknowledged writes after WAL damage:\n{}",
        bad.join("\n")
    );
}

/// Entries written while the lazyfs member is down: more than the 5000 the leader keeps behind its
/// last snapshot, so it must send that member a snapshot.
const BEHIND: usize = 5600;

/// A 3-member cluster whose third member runs on lazyfs. Each cycle kills that member, writes past
/// what the leader's log keeps, restarts it, and kills it again as soon as a snapshot install shows
/// on its disk (a received snapshot or a new store directory), crashes lazyfs, and restarts it: it
/// must come back and catch up to every acknowledged write (read locally, serializable).
/// `DURABILITY_INSTALL_CYCLES=N` (default 2).
#[test]
fn kill_during_snapshot_install() {
    let _one = common::one_at_a_time();
    let Some(lazy) = Lazy::mount() else {
        return;
    };
    let cycles = std::env::var("DURABILITY_INSTALL_CYCLES").map_or(2, |s| {
        s.parse()
            .expect("DURABILITY_INSTALL_CYCLES must be a number")
    });
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    eprintln!("snapshot install: {cycles} cycles, DURABILITY_SEED={seed}");
    let mut cluster = lazy.cluster().start();
    let rt = client_runtime();
    let mut acked: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut caught = 0;
    for cycle in 0..cycles {
        cluster.kill9(2);
        // Writers through n1 (a follower forwards to the leader) until the leader has purged past n3.
        let prefix = format!("{PREFIX}i{cycle}/");
        let writers =
            GrpcWriter::start(&rt, &cluster.endpoint(0), REQUEST_TIMEOUT, &prefix, WRITERS);
        let deadline = Instant::now() + Duration::from_secs(120);
        while writers.acked_count() < BEHIND {
            assert!(
                Instant::now() < deadline,
                "only {} writes in 120 s",
                writers.acked_count()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for (key, value, rev) in writers.stop(&rt) {
            acked.insert(key, (value, rev));
        }
        // openraft defers purging its log while a send to the down member is in flight; those
        // fail and are retried every 200 ms (tests/cluster.rs waits the same way).
        std::thread::sleep(Duration::from_secs(2));
        // Restart n3 and kill it as soon as an install shows on its disk.
        let listing = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            for sub in ["snapshots"] {
                if let Ok(d) = std::fs::read_dir(dir.join(sub)) {
                    names.extend(
                        d.flatten()
                            .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())),
                    );
                }
            }
            names
        };
        let before = listing(cluster.data_dir(2));
        cluster.spawn(2);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = None;
        while seen.is_none() && Instant::now() < deadline {
            seen = listing(cluster.data_dir(2)).into_iter().find(|n| {
                !before.contains(n) && (n.starts_with("kv-") || n.starts_with("snapshots/recv-"))
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        // Somewhere in receiving, copying, opening or committing the install (or just after).
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        cluster.kill9(2);
        let report = lazy.mount.crash().expect("crash lazyfs");
        caught += usize::from(seen.is_some());
        eprintln!(
            "cycle {cycle}: n3 killed {} ({} acknowledged so far); crash reverted {} files",
            seen.as_deref()
                .map_or("with no install seen".into(), |n| format!(
                    "when {n} appeared"
                )),
            acked.len(),
            report.files
        );
        // n3 comes back and catches up.
        cluster.spawn(2);
        cluster
            .wait_ready(2)
            .unwrap_or_else(|e| panic!("n3 did not restart after a crash mid-install: {e}"));
        let high = acked.values().map(|(_, r)| *r).max().unwrap_or(0);
        let mut kv = KvClient::new(channel(&rt, &cluster.endpoint(2)));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (found, revision) = rt
                .block_on(read_range(&mut kv, PREFIX, PREFIX_END, true))
                .unwrap_or_default();
            let missing: Vec<&String> = acked
                .iter()
                .filter(|(k, (v, r))| found.get(*k) != Some(&(v.clone(), *r)))
                .map(|(k, _)| k)
                .collect();
            if missing.is_empty() && revision >= high {
                break;
            }
            assert!(Instant::now() < deadline, "n3 has not caught up in 60 s: revision {revision} < {high} or {} acknowledged writes missing (e.g. {:?})", missing.len(), missing.first());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // n3's log, over all its starts.
    let installs = cluster
        .log_since(2, 0)
        .matches("installed snapshot")
        .count();
    eprintln!("snapshot install: {cycles} cycles, {caught} kills mid-install, {installs} installs completed by n3, {} acknowledged writes on n3 after each, 0 lost", acked.len());
    assert_eq!(
        caught, cycles,
        "an install was not seen on n3's disk in time"
    );
}

/// A leader that comes back from power loss before its followers miss it must not answer a
/// linearizable read from a state older than a write it acknowledged. It lost its unsynced
/// commit index and store writes (the log itself is synced), so only a quorum can tell it how far
/// it had committed. openraft would restore such a leader without an election
/// (`enable_leader_restore`) and take its stale local commit index as the read point; Ballast turns
/// that off, so the restarted member is a follower until a new election, whose leader commits a
/// new entry before it serves reads (etcd's behaviour).
///
/// 3 members; n3, on lazyfs, is made the leader (move-leader). After `k = v2` is
/// acknowledged, the links into n1 and n2 are slowed to 250 ms each way, so that a quorum's answer
/// takes longer than n3 takes to restart and to be asked: n3 is killed, lazyfs crashed, n3
/// restarted, and the first linearizable read of `k` from n3 must say v2 (errors, while there is
/// no leader, are retried).
#[test]
fn restarted_leader_reads_its_acknowledged_write() {
    use pb::maintenance_client::MaintenanceClient;

    let _one = common::one_at_a_time();
    let Some(lazy) = Lazy::mount() else {
        return;
    };
    // Every connection into n1 and n2 passes their proxy (n3 reaches them only so).
    // openraft times a peer call out at the heartbeat interval: it must exceed the slowed round trip.
    let mut cluster = lazy
        .cluster()
        .proxied_members(&[0, 1])
        .timing(1000, 5000)
        .start();
    let rt = client_runtime();
    // (member id, the leader it knows)
    let status = |i: usize| {
        let mut maintenance = MaintenanceClient::new(channel(&rt, &cluster.endpoint(i)));
        let resp = rt
            .block_on(maintenance.status(pb::StatusRequest {}))
            .expect("status")
            .into_inner();
        (resp.header.map_or(0, |h| h.member_id), resp.leader)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (n3, leader) = status(2);
        if leader == n3 {
            break;
        }
        assert!(Instant::now() < deadline, "n3 did not become the leader");
        if let Some(m) = (0..3).find(|&m| status(m).0 == leader) {
            let _ = rt.block_on(
                MaintenanceClient::new(channel(&rt, &cluster.endpoint(m)))
                    .move_leader(pb::MoveLeaderRequest { target_id: n3 }),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let key = format!("{PREFIX}restore");
    let mut kv = KvClient::new(channel(&rt, &cluster.endpoint(2)));
    let mut revision = 0;
    for value in ["v1", "v2"] {
        let put = pb::PutRequest {
            key: key.clone().into_bytes().into(),
            value: value.as_bytes().to_vec().into(),
            ..Default::default()
        };
        revision = rt
            .block_on(kv.put(put))
            .expect("put through n3")
            .into_inner()
            .header
            .map_or(0, |h| h.revision);
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..2 {
        cluster.link_fault(
            i,
            LinkFault::Delay {
                base: Duration::from_millis(250),
                jitter: Duration::ZERO,
            },
        );
    }
    cluster.kill9(2);
    let report = lazy.mount.crash().expect("crash lazyfs");
    let restarted = Instant::now();
    cluster.spawn(2);
    cluster
        .wait_ready(2)
        .unwrap_or_else(|e| panic!("n3 did not restart: {e}"));
    let ready_after = restarted.elapsed();
    let mut kv = KvClient::new(channel(&rt, &cluster.endpoint(2)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut errors = 0;
    let read = loop {
        let req = pb::RangeRequest {
            key: key.clone().into_bytes().into(),
            ..Default::default()
        };
        match rt.block_on(kv.range(req)) {
            Ok(resp) => break resp.into_inner(),
            Err(status) => {
                assert!(
                    Instant::now() < deadline,
                    "n3 answered no linearizable read in 60 s: {status}"
                );
                errors += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    for i in 0..2 {
        cluster.link_fault(i, LinkFault::Healthy);
    }
    let found = read.kvs.first().map(|kv| {
        (
            String::from_utf8_lossy(&kv.value).into_owned(),
            kv.mod_revision,
        )
    });
    eprintln!(
        "crash reverted {} files; n3 ready {ready_after:?} after its restart; first read after {errors} errors, {:?} after the restart: {found:?} (acknowledged: v2 at {revision})",
        report.files,
        restarted.elapsed()
    );
    assert_eq!(
        found,
        Some(("v2".to_owned(), revision)),
        "the restarted leader served a linearizable read older than its acknowledged write"
    );
}
