//! Members on lazyfs for the durability tests: the mount (`Lazy`), and one member run through
//! kill-and-crash cycles (`Run`): where each cycle kills it, what its writers were told, and the
//! checks after each restart, which report a broken guarantee as a `Violation`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use lazyfs::{Mount, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::runtime::Runtime;
use tonic::transport::Channel;

use super::{PREFIX, PREFIX_END, REQUEST_TIMEOUT, SNAPSHOT_COUNT, WRITERS};
use crate::common::cluster::ClusterConfig;
use crate::common::grpc::{client_channel, client_runtime, current_revision, read_range};
use crate::common::process::{tail, Launch, Server};
use crate::common::writers::{AckedPut, GrpcWriter};
use crate::common::Member;

/// Lines of a member's log that a violation quotes.
const LOG_LINES: usize = 30;
/// Every member's environment: a panic's message, not its backtrace, belongs in a failure report.
const MEMBER_ENV: [(&str, &str); 2] = [("RUST_BACKTRACE", "0"), ("NO_COLOR", "1")];

/// A lazy channel to a member for requests made from this thread (its connection task runs on
/// `rt`); `REQUEST_TIMEOUT` bounds each request.
pub fn channel(rt: &Runtime, endpoint: &str) -> Channel {
    let _entered = rt.enter();
    client_channel(endpoint, Some(REQUEST_TIMEOUT))
}

/// A lazyfs mount in a temporary directory, and a directory for logs beside it (not on it).
pub struct Lazy {
    // Field order is drop order: the mount goes before the directory it lives in.
    pub mount: Mount,
    /// The mount point: what is written below it and not synced is lost at a crash.
    dir: PathBuf,
    logs: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Lazy {
    /// Mounts lazyfs; `None`, after saying so, where it cannot be (no /dev/fuse).
    pub fn mount() -> Option<Lazy> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: /dev/fuse is absent, lazyfs cannot be mounted here");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (backing, dir, logs) = (
            tmp.path().join("backing"),
            tmp.path().join("mnt"),
            tmp.path().join("logs"),
        );
        for d in [&backing, &dir, &logs] {
            std::fs::create_dir(d).unwrap();
        }
        let mount = Mount::new(&backing, &dir, &Options::default())
            .expect("mount lazyfs (needs root and /dev/fuse)");
        Some(Lazy {
            mount,
            dir,
            logs,
            _tmp: tmp,
        })
    }

    /// A 3-member `ballast kv` cluster on 127.0.0.1 whose third member's data directory is on this
    /// mount (the others' on the ordinary disk).
    pub fn cluster(&self) -> ClusterConfig {
        let mut config = ClusterConfig::new(3)
            .server(Server::Ballast)
            .extra(&["--snapshot-count", SNAPSHOT_COUNT])
            .data_dir(2, self.dir.join("n3"));
        for (key, value) in MEMBER_ENV {
            config = config.env(key, value);
        }
        config
    }
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
pub enum Violation {
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
pub struct Totals {
    pub cycles: usize,
    pub acked: usize,
    pub checked: usize,
    pub kills: BTreeMap<&'static str, usize>,
    pub snapshots_caught: usize,
    pub files_reverted: usize,
    pub bytes_dropped: u64,
    pub last_revision: i64,
}

/// One member on lazyfs and what its clients were told.
pub struct Run {
    rt: Runtime,
    rng: StdRng,
    /// How the member is started: under a wrapper (`eatmydata`) or not.
    launch: Launch,
    pub lazy: Lazy,
    pub data_dir: PathBuf,
    starts: usize,
    /// key -> (value, revision) of every acknowledged put.
    acked: BTreeMap<String, (String, i64)>,
    /// The highest revision acknowledged or read so far.
    pub high: i64,
    totals: Totals,
}

impl Run {
    pub fn new(wrapper: Option<&'static str>, seed: u64) -> Option<Run> {
        let lazy = Lazy::mount()?;
        let mut launch = Launch::new(Server::Ballast);
        if let Some(wrapper) = wrapper {
            launch = launch.wrapper(&[wrapper]);
        }
        for (key, value) in MEMBER_ENV {
            launch = launch.env(key, value);
        }
        Some(Run {
            rt: client_runtime(),
            rng: StdRng::seed_from_u64(seed),
            launch,
            data_dir: lazy.dir.join("data"),
            lazy,
            starts: 0,
            acked: BTreeMap::new(),
            high: 0,
            totals: Totals::default(),
        })
    }

    /// A member on the data directory, on fresh ports, ready to serve.
    pub fn start(&mut self) -> Result<Member, Violation> {
        self.starts += 1;
        let log = self.lazy.logs.join(format!("member-{}.log", self.starts));
        let extra = ["--snapshot-count", SNAPSHOT_COUNT];
        Member::try_start_in(&self.data_dir, Some(&log), self.launch.clone(), &extra)
            .map_err(|e| Violation::DidNotStart(format!("{}:\n{}", e.why, tail(&e.log, LOG_LINES))))
    }

    /// Starts the member on what the last crash left, checks it, runs writers until the kill
    /// point, kills it and crashes the filesystem.
    fn cycle(&mut self, cycle: usize) -> Result<(), Violation> {
        let server = self.start()?;
        self.check(&server)?;
        let point = match self.rng.gen_range(0..3) {
            0 => KillPoint::Writes,
            1 => KillPoint::AfterCompaction,
            _ => KillPoint::Snapshot,
        };
        let writers = self.spawn_writers(&server, &cycle.to_string());
        let caught_snapshot = self.wait_for_kill_point(point, &server);
        server.stop();
        let acked = self.finish(writers);
        let report = self.lazy.mount.crash().expect("crash lazyfs");
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

    pub fn spawn_writers(&self, server: &Member, tag: &str) -> GrpcWriter {
        let prefix = format!("{PREFIX}{tag}/");
        GrpcWriter::start(
            &self.rt,
            &server.endpoint(),
            REQUEST_TIMEOUT,
            &prefix,
            WRITERS,
        )
    }

    /// Stops the writers, waits for their last answers and records what was acknowledged.
    pub fn finish(&mut self, writers: GrpcWriter) -> Vec<AckedPut> {
        let acked = writers.stop(&self.rt);
        for (key, value, rev) in &acked {
            self.high = self.high.max(*rev);
            self.acked.insert(key.clone(), (value.clone(), *rev));
        }
        acked
    }

    /// Sleeps until the kill point; true if a snapshot was caught in progress.
    fn wait_for_kill_point(&mut self, point: KillPoint, server: &Member) -> bool {
        match point {
            KillPoint::Writes => {
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(300..1500)));
                false
            }
            KillPoint::AfterCompaction => {
                std::thread::sleep(Duration::from_millis(self.rng.gen_range(200..800)));
                let mut kv = KvClient::new(channel(&self.rt, &server.endpoint()));
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
    pub fn check(&mut self, server: &Member) -> Result<(), Violation> {
        let mut kv = KvClient::new(channel(&self.rt, &server.endpoint()));
        let (found, revision) = self
            .rt
            .block_on(read_range(&mut kv, PREFIX, PREFIX_END, false))
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

/// How a run ended: Err((crashes survived, the violation that ended it)), its totals, and the run
/// (for its logs).
pub struct Outcome {
    pub result: Result<(), (usize, Violation)>,
    pub totals: Totals,
    pub run: Run,
}

/// Runs `cycles` kill-and-crash cycles and a final restart; the first violation ends the run.
pub fn run_cycles(wrapper: Option<&'static str>, cycles: usize, seed: u64) -> Option<Outcome> {
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
pub fn last_log(run: &Run) -> String {
    std::fs::read_to_string(run.lazy.logs.join(format!("member-{}.log", run.starts)))
        .unwrap_or_default()
}

pub fn print_last_log(run: &Run) {
    eprintln!(
        "--- member-{}.log ---\n{}",
        run.starts,
        tail(&last_log(run), LOG_LINES)
    );
}
