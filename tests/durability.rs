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

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use lazyfs::{Mount, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::{Channel, Endpoint};

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
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per range request when reading everything back.
const PAGE: i64 = 5000;

/// A member's ports on 127.0.0.1: client, peer, and the peer port it advertises (the same, or a
/// proxy's in front of it).
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    peer: u16,
    advertised_peer: u16,
}

impl Ports {
    fn fresh() -> Ports {
        let peer = common::free_port();
        Ports {
            client: common::free_port(),
            peer,
            advertised_peer: peer,
        }
    }
}

/// A `ballast kv` process, optionally under a wrapper command (`eatmydata`); killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// A single member on fresh ports, ready to serve.
    fn start(data_dir: &Path, log: PathBuf, wrapper: Option<&str>) -> Result<Server, String> {
        let mut server = Server::spawn(data_dir, log, wrapper, Ports::fresh(), &[]);
        server.wait_ready()?;
        Ok(server)
    }

    /// Starts `ballast kv` on `ports` without waiting for it.
    fn spawn(
        data_dir: &Path,
        log: PathBuf,
        wrapper: Option<&str>,
        ports: Ports,
        extra: &[String],
    ) -> Server {
        let port = ports.client;
        let url = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{}", ports.peer);
        let advertised = format!("http://127.0.0.1:{}", ports.advertised_peer);
        let bin = env!("CARGO_BIN_EXE_ballast");
        let mut cmd = match wrapper {
            Some(wrapper) => {
                let mut cmd = Command::new(wrapper);
                cmd.arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.args(common::kv_args(data_dir, &url, &peer, &advertised))
            .args(["--snapshot-count", SNAPSHOT_COUNT])
            .args(extra)
            // A panic's message, not its backtrace, belongs in a failure report.
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Server { child, port, log }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("ready, serving clients") {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}:\n{}", tail(&text)));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready after {READY_TIMEOUT:?}:\n{}",
                    tail(&text)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn channel(&self, rt: &tokio::runtime::Runtime) -> Channel {
        // A lazy channel spawns its connection task on the current runtime.
        let _entered = rt.enter();
        Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .timeout(REQUEST_TIMEOUT)
            .connect_lazy()
    }

    /// SIGKILL, and wait until the process is gone (so that none of its writes is still on the
    /// way to the filesystem).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Where a cycle kills the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// At a random moment under write load.
    Writes,
    /// Within a few milliseconds of a compaction being acknowledged.
    AfterCompaction,
    /// As soon as a snapshot directory (`snapshots/*.tmp`) appears: mid-checkpoint.
    Snapshot,
}

/// A broken guarantee.
#[derive(Debug)]
enum Violation {
    /// The member does not come back: every acknowledged write is unavailable.
    DidNotStart(String),
    /// Acknowledged writes missing or changed after the restart.
    Lost {
        missing: usize,
        changed: usize,
        acked: usize,
        example: String,
    },
    /// The revision went back below one acknowledged or observed before the crash.
    Regressed { revision: i64, before: i64 },
    /// The restarted member does not accept or read writes.
    NotServing(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::DidNotStart(log) => write!(f, "the member did not restart: {log}"),
            Violation::Lost {
                missing,
                changed,
                acked,
                example,
            } => {
                write!(f, "{missing} acknowledged writes missing and {changed} changed, of {acked} (e.g. {example})")
            }
            Violation::Regressed { revision, before } => {
                write!(f, "revision {revision} after the restart, {before} before")
            }
            Violation::NotServing(why) => write!(f, "the restarted member does not serve: {why}"),
        }
    }
}

/// Totals over a run, for the report line.
#[derive(Debug, Default)]
struct Totals {
    cycles: usize,
    acked: usize,
    checked: usize,
    kills: BTreeMap<&'static str, usize>,
    snapshots_caught: usize,
    files_reverted: usize,
    bytes_dropped: u64,
    last_revision: i64,
}

/// One member on lazyfs and what its clients were told.
struct Run {
    rt: tokio::runtime::Runtime,
    rng: StdRng,
    wrapper: Option<&'static str>,
    // Field order is drop order: the mount goes before the directory it lives in.
    mount: Mount,
    data_dir: PathBuf,
    logs: PathBuf,
    starts: usize,
    /// key -> (value, revision) of every acknowledged put.
    acked: BTreeMap<String, (String, i64)>,
    /// The highest revision acknowledged or read so far.
    high: i64,
    totals: Totals,
    _tmp: tempfile::TempDir,
}

impl Run {
    fn new(wrapper: Option<&'static str>, seed: u64) -> Option<Run> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: /dev/fuse is absent, lazyfs cannot be mounted here");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (backing, mnt, logs) = (
            tmp.path().join("backing"),
            tmp.path().join("mnt"),
            tmp.path().join("logs"),
        );
        for dir in [&backing, &mnt, &logs] {
            std::fs::create_dir(dir).unwrap();
        }
        let mount = Mount::new(&backing, &mnt, &Options::default())
            .expect("mount lazyfs (needs root and /dev/fuse)");
        Some(Run {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            rng: StdRng::seed_from_u64(seed),
            wrapper,
            data_dir: mnt.join("data"),
            mount,
            logs,
            starts: 0,
            acked: BTreeMap::new(),
            high: 0,
            totals: Totals::default(),
            _tmp: tmp,
        })
    }

    fn start(&mut self) -> Result<Server, Violation> {
        self.starts += 1;
        let log = self.logs.join(format!("member-{}.log", self.starts));
        Server::start(&self.data_dir, log, self.wrapper).map_err(Violation::DidNotStart)
    }

    /// Starts the member on what the last crash left, checks it, runs writers until the kill
    /// point, kills it and crashes the filesystem.
    fn cycle(&mut self, cycle: usize) -> Result<(), Violation> {
        let mut server = self.start()?;
        self.check(&server)?;
        let point = match self.rng.gen_range(0..3) {
            0 => KillPoint::Writes,
            1 => KillPoint::AfterCompaction,
            _ => KillPoint::Snapshot,
        };
        let writers = self.spawn_writers(&server, &cycle.to_string());
        let caught_snapshot = self.wait_for_kill_point(point, &server);
        server.kill();
        let acked = self.finish(writers);
        let report = self.mount.crash().expect("crash lazyfs");
        let label = match point {
            KillPoint::Writes => "writes",
            KillPoint::AfterCompaction => "after-compaction",
            KillPoint::Snapshot => "snapshot",
        };
        *self.totals.kills.entry(label).or_default() += 1;
        self.totals.snapshots_caught += usize::from(caught_snapshot);
        self.totals.acked += acked.len();
        self.totals.files_reverted += report.files;
        self.totals.bytes_dropped += report.bytes_truncated + report.bytes_restored;
        self.totals.cycles += 1;
        eprintln!(
            "cycle {cycle}: killed at {label}{}, {} puts acknowledged (highest revision {}), crash reverted {} files ({} bytes cut, {} restored)",
            if point == KillPoint::Snapshot && !caught_snapshot { " (no snapshot seen in time)" } else { "" },
            acked.len(),
            self.high,
            report.files,
            report.bytes_truncated,
            report.bytes_restored
        );
        Ok(())
    }

    fn spawn_writers(&self, server: &Server, tag: &str) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..WRITERS)
            .map(|w| {
                self.rt.spawn(writer(
                    KvClient::new(server.channel(&self.rt)),
                    format!("{PREFIX}{tag}/{w}/"),
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        Writers { stop, acked, tasks }
    }

    /// Stops the writers, waits for their last answers and records what was acknowledged.
    fn finish(&mut self, writers: Writers) -> Vec<(String, String, i64)> {
        writers.stop.store(true, Ordering::Relaxed);
        for task in writers.tasks {
            self.rt.block_on(task).unwrap();
        }
        let acked = std::mem::take(&mut *writers.acked.lock().unwrap());
        for (key, value, rev) in &acked {
            self.high = self.high.max(*rev);
            self.acked.insert(key.clone(), (value.clone(), *rev));
        }
        acked
    }

    /// Sleeps until the kill point; true if a snapshot was caught in progress.
    fn wait_for_kill_point(&mut self, point: KillPoint, server: &Server) -> bool {
        match point {
            KillPoint::Writes => {
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(300..1500)));
                false
            }
            KillPoint::AfterCompaction => {
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(200..800)));
                let mut kv = KvClient::new(server.channel(&self.rt));
                let rev = self.rt.block_on(current_revision(&mut kv)).unwrap_or(0);
                if rev > 20 {
                    let req = pb::CompactionRequest {
                        revision: rev - 10,
                        physical: self.rng.gen_bool(0.5),
                    };
                    let _ = self.rt.block_on(kv.compact(req));
                }
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(0..20)));
                false
            }
            KillPoint::Snapshot => {
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(100..400)));
                let dir = self.data_dir.join("snapshots");
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    let taking = std::fs::read_dir(&dir)
                        .map(|entries| {
                            entries
                                .flatten()
                                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                        })
                        .unwrap_or(false);
                    if taking {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                false
            }
        }
    }

    /// Every acknowledged write is there at its revision with its value; the revision did not go
    /// back; the member takes a write.
    fn check(&mut self, server: &Server) -> Result<(), Violation> {
        let mut kv = KvClient::new(server.channel(&self.rt));
        let (found, revision) = self
            .rt
            .block_on(read_all(&mut kv, false))
            .map_err(Violation::NotServing)?;
        let (mut missing, mut changed, mut example) = (0, 0, String::new());
        for (key, (value, rev)) in &self.acked {
            match found.get(key) {
                None => missing += 1,
                Some((v, r)) if v != value || r != rev => changed += 1,
                Some(_) => continue,
            }
            if example.is_empty() {
                example = format!(
                    "{key} = {value} at revision {rev}, read {:?}",
                    found.get(key)
                );
            }
        }
        self.totals.checked += self.acked.len();
        if missing + changed > 0 {
            return Err(Violation::Lost {
                missing,
                changed,
                acked: self.acked.len(),
                example,
            });
        }
        if revision < self.high {
            return Err(Violation::Regressed {
                revision,
                before: self.high,
            });
        }
        let key = format!("{PREFIX}check/{}", self.starts);
        let put = pb::PutRequest {
            key: key.clone().into_bytes().into(),
            value: b"after restart".to_vec().into(),
            ..Default::default()
        };
        let resp = self
            .rt
            .block_on(kv.put(put))
            .map_err(|s| Violation::NotServing(format!("put: {s}")))?
            .into_inner();
        let rev = resp.header.map_or(0, |h| h.revision);
        if rev <= revision {
            return Err(Violation::Regressed {
                revision: rev,
                before: revision,
            });
        }
        self.acked.insert(key, ("after restart".into(), rev));
        self.high = rev;
        self.totals.last_revision = rev;
        Ok(())
    }
}

/// Running writer tasks.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String, i64)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Puts unique keys until stopped; records each acknowledged one with its revision.
async fn writer(
    mut kv: KvClient<Channel>,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String, i64)>>>,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let key = format!("{prefix}{seq}");
        let value = format!("v-{key}");
        let req = pb::PutRequest {
            key: key.clone().into_bytes().into(),
            value: value.clone().into_bytes().into(),
            ..Default::default()
        };
        match kv.put(req).await {
            Ok(resp) => {
                let rev = resp.into_inner().header.map_or(0, |h| h.revision);
                acked.lock().unwrap().push((key, value, rev));
            }
            // Killed (or not up yet): the outcome is unknown, and it is not recorded.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn current_revision(kv: &mut KvClient<Channel>) -> Option<i64> {
    let req = pb::RangeRequest {
        key: b"x".to_vec().into(),
        ..Default::default()
    };
    kv.range(req)
        .await
        .ok()?
        .into_inner()
        .header
        .map(|h| h.revision)
}

/// Every key under the prefix (linearizable reads unless `serializable`, a page at a time, all at one revision):
/// key -> (value, mod_revision), and the revision.
async fn read_all(
    kv: &mut KvClient<Channel>,
    serializable: bool,
) -> Result<(BTreeMap<String, (String, i64)>, i64), String> {
    let mut found = BTreeMap::new();
    let mut from = PREFIX.as_bytes().to_vec();
    let mut at = 0;
    let mut revision = 0;
    loop {
        let req = pb::RangeRequest {
            key: from.clone().into(),
            range_end: PREFIX_END.as_bytes().to_vec().into(),
            limit: PAGE,
            revision: at,
            serializable,
            ..Default::default()
        };
        let resp = kv
            .range(req)
            .await
            .map_err(|s| format!("range: {s}"))?
            .into_inner();
        if at == 0 {
            revision = resp.header.map_or(0, |h| h.revision);
            at = revision;
        }
        for kv in &resp.kvs {
            found.insert(
                String::from_utf8_lossy(&kv.key).into_owned(),
                (
                    String::from_utf8_lossy(&kv.value).into_owned(),
                    kv.mod_revision,
                ),
            );
        }
        match resp.kvs.last() {
            Some(last) if resp.more => {
                from = last.key.to_vec();
                from.push(0);
            }
            _ => return Ok((found, revision)),
        }
    }
}

fn seed() -> u64 {
    match std::env::var("DURABILITY_SEED") {
        Ok(s) => s.parse().expect("DURABILITY_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// How a run ended: Err((crashes survived, the violation that ended it)), its totals, and the run
/// (for its logs).
struct Outcome {
    result: Result<(), (usize, Violation)>,
    totals: Totals,
    run: Run,
}

/// Runs `cycles` kill-and-crash cycles and a final restart; the first violation ends the run.
fn run_cycles(wrapper: Option<&'static str>, cycles: usize, seed: u64) -> Option<Outcome> {
    let mut run = Run::new(wrapper, seed)?;
    let mut result = Ok(());
    for cycle in 0..cycles {
        if let Err(v) = run.cycle(cycle) {
            result = Err((cycle, v));
            break;
        }
    }
    if result.is_ok() {
        result = run
            .start()
            .and_then(|server| run.check(&server))
            .map_err(|v| (cycles, v));
    }
    let totals = std::mem::take(&mut run.totals);
    Some(Outcome {
        result,
        totals,
        run,
    })
}

/// The log of the member started last.
fn last_log(run: &Run) -> String {
    std::fs::read_to_string(run.logs.join(format!("member-{}.log", run.starts))).unwrap_or_default()
}

fn print_last_log(run: &Run) {
    eprintln!(
        "--- member-{}.log ---\n{}",
        run.starts,
        tail(&last_log(run))
    );
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
    let report = run.mount.crash().expect("crash lazyfs");
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

/// A 3-member cluster on 127.0.0.1 whose third member's data directory is on lazyfs (the others
/// on the ordinary disk), each member started with `extra` flags.
struct LazyCluster {
    ports: Vec<Ports>,
    initial: String,
    extra: Vec<String>,
    dirs: [PathBuf; 3],
    logs: PathBuf,
    /// Processes started so far (numbers the log files).
    starts: usize,
    // Field order is drop order: unmount before the directory goes.
    mount: Mount,
    _tmp: tempfile::TempDir,
}

impl LazyCluster {
    fn new(ports: Vec<Ports>, extra: &[&str]) -> LazyCluster {
        let tmp = tempfile::tempdir().unwrap();
        let (backing, mnt, logs) = (
            tmp.path().join("backing"),
            tmp.path().join("mnt"),
            tmp.path().join("logs"),
        );
        for dir in [&backing, &mnt, &logs] {
            std::fs::create_dir(dir).unwrap();
        }
        let mount = Mount::new(&backing, &mnt, &Options::default()).expect("mount lazyfs");
        let initial = (0..3)
            .map(|i| format!("n{}=http://127.0.0.1:{}", i + 1, ports[i].advertised_peer))
            .collect::<Vec<_>>()
            .join(",");
        let dirs = [tmp.path().join("n1"), tmp.path().join("n2"), mnt.join("n3")];
        LazyCluster {
            ports,
            initial,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dirs,
            logs,
            starts: 0,
            mount,
            _tmp: tmp,
        }
    }

    /// Starts member `i` (0-based) without waiting for it.
    fn spawn(&mut self, i: usize) -> Server {
        self.starts += 1;
        let mut args: Vec<String> = [
            "--name",
            &format!("n{}", i + 1),
            "--initial-cluster",
            &self.initial,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.extra.iter().cloned());
        Server::spawn(
            &self.dirs[i],
            self.logs.join(format!("n{}-{}.log", i + 1, self.starts)),
            None,
            self.ports[i],
            &args,
        )
    }

    /// Starts every member and waits until each is ready.
    fn start_all(&mut self) -> Vec<Server> {
        let mut members: Vec<Server> = (0..3).map(|i| self.spawn(i)).collect();
        for m in &mut members {
            m.wait_ready().unwrap_or_else(|e| panic!("{e}"));
        }
        members
    }
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
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: /dev/fuse is absent, lazyfs cannot be mounted here");
        return;
    }
    let cycles = std::env::var("DURABILITY_INSTALL_CYCLES").map_or(2, |s| {
        s.parse()
            .expect("DURABILITY_INSTALL_CYCLES must be a number")
    });
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    eprintln!("snapshot install: {cycles} cycles, DURABILITY_SEED={seed}");
    let mut cluster = LazyCluster::new(
        (0..3).map(|_| Ports::fresh()).collect(),
        &["--initial-cluster-token", "durability"],
    );
    let mut members = cluster.start_all();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let (mut caught, mut installs) = (0, 0);
    for cycle in 0..cycles {
        members[2].kill();
        // Writers through n1 (a follower forwards to the leader) until the leader has purged past n3.
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                rt.spawn(writer(
                    KvClient::new(members[0].channel(&rt)),
                    format!("{PREFIX}i{cycle}/{w}/"),
                    stop.clone(),
                    got.clone(),
                ))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while got.lock().unwrap().len() < BEHIND {
            assert!(
                Instant::now() < deadline,
                "only {} writes in 120 s",
                got.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            rt.block_on(task).unwrap();
        }
        for (key, value, rev) in std::mem::take(&mut *got.lock().unwrap()) {
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
        let before = listing(&cluster.dirs[2]);
        members[2] = cluster.spawn(2);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = None;
        while seen.is_none() && Instant::now() < deadline {
            seen = listing(&cluster.dirs[2]).into_iter().find(|n| {
                !before.contains(n) && (n.starts_with("kv-") || n.starts_with("snapshots/recv-"))
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        // Somewhere in receiving, copying, opening or committing the install (or just after).
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        members[2].kill();
        let report = cluster.mount.crash().expect("crash lazyfs");
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
        members[2] = cluster.spawn(2);
        members[2]
            .wait_ready()
            .unwrap_or_else(|e| panic!("n3 did not restart after a crash mid-install: {e}"));
        let high = acked.values().map(|(_, r)| *r).max().unwrap_or(0);
        let mut kv = KvClient::new(members[2].channel(&rt));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (found, revision) = rt.block_on(read_all(&mut kv, true)).unwrap_or_default();
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
    for i in 0..cluster.starts {
        let log = std::fs::read_to_string(cluster.logs.join(format!("n3-{}.log", i + 1)))
            .unwrap_or_default();
        installs += log.matches("installed snapshot").count();
    }
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
    use common::proxy::{LinkFault, Proxy};
    use pb::maintenance_client::MaintenanceClient;

    let _one = common::one_at_a_time();
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: /dev/fuse is absent, lazyfs cannot be mounted here");
        return;
    }
    // Every connection into n1 and n2 passes their proxy (n3 reaches them only so).
    let mut ports: Vec<Ports> = (0..3).map(|_| Ports::fresh()).collect();
    let proxies: Vec<Proxy> = (0..2)
        .map(|i| Proxy::start(format!("127.0.0.1:{}", ports[i].peer).parse().unwrap()))
        .collect();
    for (i, proxy) in proxies.iter().enumerate() {
        ports[i].advertised_peer = proxy.port();
    }
    // openraft times a peer call out at the heartbeat interval: it must exceed the slowed round trip.
    let mut cluster = LazyCluster::new(
        ports,
        &[
            "--initial-cluster-token",
            "restore",
            "--heartbeat-interval",
            "1000",
            "--election-timeout",
            "5000",
        ],
    );
    let mut members = cluster.start_all();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // (member id, the leader it knows)
    let status = |server: &Server| {
        let resp = rt
            .block_on(MaintenanceClient::new(server.channel(&rt)).status(pb::StatusRequest {}))
            .expect("status")
            .into_inner();
        (resp.header.map_or(0, |h| h.member_id), resp.leader)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (n3, leader) = status(&members[2]);
        if leader == n3 {
            break;
        }
        assert!(Instant::now() < deadline, "n3 did not become the leader");
        if let Some(m) = members.iter().find(|m| status(m).0 == leader) {
            let _ = rt.block_on(
                MaintenanceClient::new(m.channel(&rt))
                    .move_leader(pb::MoveLeaderRequest { target_id: n3 }),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let key = format!("{PREFIX}restore");
    let mut kv = KvClient::new(members[2].channel(&rt));
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
    for proxy in &proxies {
        proxy.set(LinkFault::Delay {
            base: Duration::from_millis(250),
            jitter: Duration::ZERO,
        });
    }
    members[2].kill();
    let report = cluster.mount.crash().expect("crash lazyfs");
    let restarted = Instant::now();
    members[2] = cluster.spawn(2);
    members[2]
        .wait_ready()
        .unwrap_or_else(|e| panic!("n3 did not restart: {e}"));
    let ready_after = restarted.elapsed();
    let mut kv = KvClient::new(members[2].channel(&rt));
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
    for proxy in &proxies {
        proxy.set(LinkFault::Healthy);
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
