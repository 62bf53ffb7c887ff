//! etcdctl against a `Cluster`'s members: running commands on one member or on all, what the
//! members report (`endpoint status`, the leader they agree on, `hashkv`), waiting until they
//! converge, and the check that a member holds every acknowledged write.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::process::READY_TIMEOUT;
use super::{etcdctl, json, Ctl};

/// How long the live members may take to agree on one leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the live members may take to reach the same revision and the same data.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// etcdctl against `endpoints` with short dial and command timeouts (`--command-timeout` in `args`
/// overrides `timeout`: the last one wins).
pub(super) fn ctl_on(endpoints: &str, args: &[&str], timeout: &str) -> Ctl {
    let command_timeout = format!("--command-timeout={timeout}");
    let mut all = vec!["--dial-timeout=2s", command_timeout.as_str()];
    all.extend_from_slice(args);
    etcdctl(endpoints, &all, None)
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

impl Cluster {
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
