//! Membership changes of a `Cluster` through etcdctl: `member list`, and adding (as a voter or a
//! learner), promoting and removing members, retried while the server refuses reconfiguration.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::ctl::ctl_on;
use super::json;

/// One entry of `etcdctl member list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub id: u64,
    /// Empty until the member has started and published its name ("unstarted" in the table).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
}

impl Cluster {
    /// `etcdctl member list`, asked of the live members.
    pub fn member_list(&self) -> Vec<ListedMember> {
        let out = self.ctl_any(&["member", "list", "-w", "json"]);
        assert!(out.success, "member list failed: {}", out.stderr);
        let v = json(&out.stdout);
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ListedMember {
                id: m["ID"].as_u64().unwrap(),
                name: m["name"].as_str().unwrap_or("").to_owned(),
                peer_urls: m["peerURLs"]
                    .as_array()
                    .map(|a| a.iter().map(|u| u.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
                is_learner: m["isLearner"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    /// `member add` a new member (as a learner if asked), then starts it with the full
    /// `--initial-cluster` and `--initial-cluster-state existing`; waits until it answers
    /// `endpoint status`. Returns (its index, its id).
    pub fn add_member(&mut self, learner: bool) -> (usize, u64) {
        let i = self.slots.len();
        self.new_slot(i);
        let peer = self.peer_url(i);
        let name = self.slots[i].name.clone();
        let members: Vec<usize> = self.live().into_iter().filter(|&m| m != i).collect();
        let id = self.member_add(&members, &name, &peer, learner);
        self.slots[i].initial_cluster = self.initial_cluster();
        self.slots[i].initial_state = "existing";
        self.spawn(i);
        self.wait_status(i);
        (i, id)
    }

    /// `member add NAME --peer-urls PEER` through `members`; returns the new id. Starts nothing.
    pub fn member_add(&self, members: &[usize], name: &str, peer: &str, learner: bool) -> u64 {
        let mut args = vec!["member", "add", name, "--peer-urls", peer, "-w", "json"];
        if learner {
            args.push("--learner");
        }
        // etcd refuses reconfiguration until every member has been connected for 5 s
        // ("not healthy for reconfigure"), so a fresh cluster needs a few tries. (A retry after an
        // attempt that timed out but took effect fails with "peerURL exists": the assertion
        // then shows that, rather than the test silently adding two members.)
        let deadline = Instant::now() + Duration::from_secs(20);
        let out = loop {
            let out = ctl_on(&self.endpoints_of(members), &args, "5s");
            if out.success {
                break out;
            }
            assert!(
                Instant::now() < deadline,
                "member add kept failing:\n{}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        json(&out.stdout)["member"]["ID"]
            .as_u64()
            .unwrap_or_else(|| panic!("no member.ID in {}", out.stdout))
    }

    /// `member promote` (retried while the server says the learner is not caught up yet).
    pub fn member_promote(&self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.ctl_any(&["member", "promote", &format!("{id:x}")]);
            if out.success {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "member promote {id:x} kept failing: {}",
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Member `i`'s id: from the member itself, or, when it is down, from `member list` (by the
    /// name it published when it started).
    pub fn listed_id(&self, i: usize) -> u64 {
        if self.slots[i].child.is_some() {
            return self.member_id(i);
        }
        let name = self.name(i);
        let listed = self.member_list().into_iter().find(|m| m.name == name);
        listed
            .unwrap_or_else(|| panic!("{name} is not in member list"))
            .id
    }

    /// `member remove` member `i` (asked of the other live members; `i` may be down), then stops
    /// its process.
    pub fn member_remove(&mut self, i: usize) {
        let id = self.listed_id(i);
        let others: Vec<usize> = self.live().into_iter().filter(|&m| m != i).collect();
        let hex = format!("{id:x}");
        // Like `member add`, refused while a member joined less than 5 s ago ("unhealthy
        // cluster"). A retry after an attempt that timed out but took effect finds no member.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut attempts = 0;
        loop {
            let out = ctl_on(
                &self.endpoints_of(&others),
                &["member", "remove", &hex],
                "5s",
            );
            attempts += 1;
            if out.success || (attempts > 1 && out.stderr.contains("member not found")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member remove {hex} kept failing:\n{}{}",
                out.stdout,
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        self.slots[i].removed = true;
        self.stop(i);
    }
}
