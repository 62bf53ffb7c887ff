//! Debian's real `etcdctl` 3.4 against a real 3-member cluster, checking what it prints: the
//! `--cluster` endpoint commands through one member, `member list`, `move-leader`, writes and
//! reads (and watches, and txns) through different members, leases across members and across a
//! leader failover, and a snapshot restored into a new 3-member cluster.
//!
//! `BALLAST_TEST_SERVER=etcd` runs the same tests against Debian's etcd 3.4, which proves them.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::ctl::base64_decode;
use common::netns::NetCluster;
use common::{collect_lines, json};
use serde_json::Value;

/// The two members other than `i`, in order.
fn others(i: usize) -> (usize, usize) {
    let o: Vec<usize> = (0..3).filter(|&m| m != i).collect();
    (o[0], o[1])
}

/// Decodes a base64 field of etcdctl's `-w json` output (absent = empty).
fn text(v: &Value) -> String {
    String::from_utf8(base64_decode(v.as_str().unwrap_or(""))).unwrap()
}

/// The data rows of an etcdctl `-w table` output, each as its trimmed cells, and the header.
fn table(out: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = out.lines().filter(|l| l.starts_with('|')).map(|l| {
        let cells: Vec<&str> = l.split('|').collect();
        cells[1..cells.len() - 1]
            .iter()
            .map(|c| c.trim().to_owned())
            .collect::<Vec<String>>()
    });
    let header = rows.next().unwrap_or_else(|| panic!("no table in:\n{out}"));
    (header, rows.collect())
}

/// The `revision` of a `put -w json` / `del -w json` / `get -w json` answer.
fn header_revision(out: &str) -> i64 {
    json(out)["header"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no header.revision in {out}"))
}

/// A long-running etcdctl, killed when dropped (also when the test panics first).
struct Spawned(Option<Child>);

impl Spawned {
    fn lines(mut self, want: usize, timeout: Duration) -> Vec<String> {
        collect_lines(self.0.take().unwrap(), want, timeout)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `Maintenance.MoveLeader` sent over gRPC to exactly this endpoint. etcdctl cannot do that to a
/// follower: `etcdctl move-leader` first asks each endpoint for its status and sends the request
/// only to the one that says it leads ("no leader endpoint given" when none does).
fn grpc_move_leader(endpoint: &str, target: u64) -> Result<(), tonic::Status> {
    use ballast_proto::pb::{maintenance_client::MaintenanceClient, MoveLeaderRequest};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = MaintenanceClient::connect(format!("http://{endpoint}"))
            .await
            .expect("gRPC connect");
        client
            .move_leader(MoveLeaderRequest { target_id: target })
            .await
            .map(|_| ())
    })
}

/// Each member's `(id, name, peer URLs, client URLs)` from `member list -w json` via member `via`.
fn member_list(c: &Cluster, via: usize) -> Vec<(u64, String, Vec<String>, Vec<String>)> {
    let urls = |m: &Value, field: &str| -> Vec<String> {
        m[field]
            .as_array()
            .map(|a| a.iter().map(|u| u.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    json(&c.ok(via, &["member", "list", "-w", "json"]))["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["ID"].as_u64().unwrap(),
                m["name"].as_str().unwrap_or("").to_owned(),
                urls(m, "peerURLs"),
                urls(m, "clientURLs"),
            )
        })
        .collect()
}

/// 1. The `--cluster` endpoint commands through ONE endpoint reach all three members (etcdctl
///    takes their client URLs from `member list`); exactly one leads, all in the same term; after
///    writes every member has the same hash; `member list -w table` shows three started members.
#[test]
fn endpoint_commands_with_cluster_flag_through_one_member() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let c = Cluster::start(3, &[]);
    let via = 1;
    let all_urls: BTreeSet<String> = (0..3).map(|i| c.client_url(i)).collect();
    let ids: Vec<u64> = (0..3).map(|i| c.member_id(i)).collect();

    // member list: JSON, then the table.
    let members = member_list(&c, via);
    assert_eq!(members.len(), 3, "{members:?}");
    for (i, &id) in ids.iter().enumerate() {
        let m = members
            .iter()
            .find(|m| m.0 == id)
            .unwrap_or_else(|| panic!("member {i} ({id:x}) not listed: {members:?}"));
        // etcd 3.4 serves no client request before it has published its name and client URLs
        // through raft, so once every member has answered `endpoint health` (what Cluster::start
        // waits for), `member list` shows every member's client URLs.
        assert_eq!(
            (m.1.as_str(), &m.2, &m.3),
            (c.name(i), &vec![c.peer_url(i)], &vec![c.client_url(i)]),
            "member {i} in `member list` right after every member answered `endpoint health` (a member must not serve \
             clients before its client URLs are published)"
        );
    }
    let (header, rows) = table(&c.ok(via, &["member", "list", "-w", "table"]));
    assert_eq!(
        header,
        [
            "ID",
            "STATUS",
            "NAME",
            "PEER ADDRS",
            "CLIENT ADDRS",
            "IS LEARNER"
        ]
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (i, &id) in ids.iter().enumerate() {
        let want = [
            format!("{id:x}"),
            "started".into(),
            c.name(i).into(),
            c.peer_url(i),
            c.client_url(i),
            "false".into(),
        ];
        assert!(
            rows.iter().any(|r| *r == want),
            "no row {want:?} in {rows:?}"
        );
    }

    // endpoint status --cluster -w json.
    let status = json(&c.ok(via, &["endpoint", "status", "--cluster", "-w", "json"]));
    let status = status.as_array().unwrap();
    assert_eq!(status.len(), 3, "{status:?}");
    let endpoints: BTreeSet<String> = status
        .iter()
        .map(|s| s["Endpoint"].as_str().unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = members.iter().flat_map(|m| m.3.clone()).collect();
    assert_eq!(
        endpoints, listed,
        "endpoint status --cluster must use member list's client URLs"
    );
    assert_eq!(endpoints, all_urls);
    let reported: BTreeSet<u64> = status
        .iter()
        .map(|s| s["Status"]["header"]["member_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        reported,
        ids.iter().copied().collect(),
        "every member answers for itself"
    );
    let leader = status[0]["Status"]["leader"].as_u64().unwrap();
    assert!(
        status
            .iter()
            .all(|s| s["Status"]["leader"].as_u64() == Some(leader)),
        "members disagree on the leader: {status:?}"
    );
    let leading: Vec<&Value> = status
        .iter()
        .filter(|s| s["Status"]["header"]["member_id"].as_u64() == Some(leader))
        .collect();
    assert_eq!(leading.len(), 1, "exactly one member must lead: {status:?}");
    let term = status[0]["Status"]["raftTerm"].as_u64().unwrap();
    assert!(
        term >= 1
            && status
                .iter()
                .all(|s| s["Status"]["raftTerm"].as_u64() == Some(term)),
        "one raft term: {status:?}"
    );
    assert!(
        status
            .iter()
            .all(|s| s["Status"]["isLearner"].as_bool() != Some(true)),
        "{status:?}"
    );
    let leader_url = leading[0]["Endpoint"].as_str().unwrap().to_owned();

    // endpoint status --cluster -w table: the IS LEADER column.
    let (header, rows) = table(&c.ok(via, &["endpoint", "status", "--cluster", "-w", "table"]));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (ep_col, id_col, leader_col, term_col) = (
        col("ENDPOINT"),
        col("ID"),
        col("IS LEADER"),
        col("RAFT TERM"),
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    let leader_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[leader_col] == "true").collect();
    assert_eq!(leader_rows.len(), 1, "exactly one IS LEADER: {rows:?}");
    assert_eq!(
        (&leader_rows[0][ep_col], &leader_rows[0][id_col]),
        (&leader_url, &format!("{leader:x}"))
    );
    assert!(
        rows.iter()
            .all(|r| r[leader_col] == "true" || r[leader_col] == "false"),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r[term_col] == term.to_string()),
        "one raft term {term}: {rows:?}"
    );
    assert_eq!(
        rows.iter()
            .map(|r| r[ep_col].clone())
            .collect::<BTreeSet<_>>(),
        all_urls
    );

    // endpoint health --cluster: one "is healthy" line per member (etcdctl prints them to stderr).
    let health = c.ctl(via, &["endpoint", "health", "--cluster"]);
    assert!(
        health.success,
        "endpoint health --cluster failed:\n{}{}",
        health.stdout, health.stderr
    );
    let healthy: BTreeSet<String> = health
        .stderr
        .lines()
        .chain(health.stdout.lines())
        .filter_map(|l| {
            l.split_once(" is healthy: successfully committed proposal: took = ")
                .map(|(url, _)| url.to_owned())
        })
        .collect();
    assert_eq!(healthy, all_urls, "{}{}", health.stdout, health.stderr);
    assert!(!health.stderr.contains("unhealthy"), "{}", health.stderr);

    // endpoint hashkv --cluster: the same hash everywhere after writes through every member.
    let hashes = |c: &Cluster| -> Vec<(String, String)> {
        let out = c.ok(via, &["endpoint", "hashkv", "--cluster"]);
        let lines: Vec<(String, String)> = out
            .lines()
            .map(|l| {
                l.split_once(", ")
                    .map(|(u, h)| (u.to_owned(), h.to_owned()))
                    .unwrap_or_else(|| panic!("{out}"))
            })
            .collect();
        assert_eq!(
            lines.iter().map(|l| l.0.clone()).collect::<BTreeSet<_>>(),
            all_urls,
            "{out}"
        );
        lines
    };
    let empty = hashes(&c);
    let mut last_rev = 0;
    for n in 0..30 {
        last_rev = header_revision(&c.ok(
            n % 3,
            &["put", &format!("h/{n:02}"), &format!("v{n}"), "-w", "json"],
        ));
    }
    c.ok(0, &["del", "h/07"]);
    last_rev += 1;
    // A linearizable read through each member first: it has applied every write above.
    for i in 0..3 {
        assert_eq!(
            c.ok(i, &["get", "h/29", "--print-value-only"]),
            "v29\n",
            "member {i}"
        );
    }
    let after = hashes(&c);
    assert!(
        after.iter().all(|h| h.1 == after[0].1),
        "hashes differ between members after the writes: {after:?}"
    );
    assert_ne!(
        after[0].1, empty[0].1,
        "the writes did not change the hash: {empty:?} -> {after:?}"
    );
    let hash_json = json(&c.ok(via, &["endpoint", "hashkv", "--cluster", "-w", "json"]));
    for h in hash_json.as_array().unwrap() {
        assert_eq!(
            h["HashKV"]["header"]["revision"].as_i64(),
            Some(last_rev),
            "{hash_json}"
        );
        assert_eq!(
            h["HashKV"]["hash"].as_u64().map(|x| x.to_string()),
            Some(after[0].1.clone()),
            "{hash_json}"
        );
    }
    eprintln!(
        "endpoint_commands_with_cluster_flag_through_one_member: {:?}",
        started.elapsed()
    );
}

/// 2. `move-leader`: to a follower through the leader moves leadership there; a member that does
///    not lead refuses with "etcdserver: not leader"; an unknown id is a bad transferee.
#[test]
fn move_leader() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let c = Cluster::start(3, &[]);
    let ids: Vec<u64> = (0..3).map(|i| c.member_id(i)).collect();
    let old = c.leader();
    let (target, other) = others(old);
    let term = c.status(old).unwrap().raft_term;

    // etcdctl sends MoveLeader only to an endpoint whose status says it leads.
    let out = c.ctl(target, &["move-leader", &format!("{:x}", ids[old])]);
    assert!(
        !out.success,
        "move-leader through a follower alone succeeded: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!(
            "Error: no leader endpoint given at [{}]",
            c.endpoint(target)
        )),
        "{}",
        out.stderr
    );
    // Sent to a follower all the same (over gRPC), it is refused as etcd refuses it.
    let err = grpc_move_leader(&c.endpoint(target), ids[other])
        .expect_err("a follower accepted MoveLeader");
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::FailedPrecondition, "etcdserver: not leader"),
        "{err:?}"
    );

    // An id that is no member's.
    let out = c.ctl(old, &["move-leader", "1234abcd"]);
    assert!(
        !out.success,
        "move-leader to an unknown id succeeded: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("Error: etcdserver: bad leader transferee"),
        "{}",
        out.stderr
    );
    assert_eq!(c.leader(), old, "a refused move-leader changed the leader");

    // Through the leader, to a follower.
    let moved_at = Instant::now();
    let out = c.ok(old, &["move-leader", &format!("{:x}", ids[target])]);
    assert_eq!(
        out,
        format!(
            "Leadership transferred from {:x} to {:x}\n",
            ids[old], ids[target]
        )
    );
    eprintln!("move-leader took {:?}", moved_at.elapsed());
    let now = c.status(target).expect("the new leader's status");
    assert_eq!(
        now.leader, ids[target],
        "once move-leader returned, the target must lead: {now:?}"
    );
    assert!(
        now.raft_term > term,
        "a transfer starts a new term: {term} -> {now:?}"
    );
    // Every member (asked through one endpoint, --cluster) follows it.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = c.ok(other, &["endpoint", "status", "--cluster", "-w", "json"]);
        let status = json(&out);
        let status = status.as_array().unwrap();
        let leaders: Vec<u64> = status
            .iter()
            .map(|s| s["Status"]["leader"].as_u64().unwrap_or(0))
            .collect();
        if status.len() == 3 && leaders.iter().all(|&l| l == ids[target]) {
            let lead = status
                .iter()
                .find(|s| s["Status"]["header"]["member_id"].as_u64() == Some(ids[target]))
                .unwrap();
            assert_eq!(
                lead["Endpoint"].as_str(),
                Some(c.client_url(target).as_str())
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members did not all follow {:x} within 3 s: {out}",
            ids[target]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (header, rows) = table(&c.ok(other, &["endpoint", "status", "--cluster", "-w", "table"]));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let leading: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r[col("IS LEADER")] == "true")
        .map(|r| (r[col("ENDPOINT")].as_str(), r[col("ID")].as_str()))
        .collect();
    assert_eq!(
        leading,
        [(
            c.client_url(target).as_str(),
            format!("{:x}", ids[target]).as_str()
        )],
        "IS LEADER after the move: {rows:?}"
    );
    // The old leader is a follower now and refuses too.
    let err = grpc_move_leader(&c.endpoint(old), ids[other])
        .expect_err("the old leader accepted MoveLeader");
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::FailedPrecondition, "etcdserver: not leader"),
        "{err:?}"
    );
    // And the cluster works under the new leader.
    assert_eq!(c.ok(old, &["put", "after", "move"]), "OK\n");
    assert_eq!(
        c.ok(other, &["get", "after", "--print-value-only"]),
        "move\n"
    );

    // With every endpoint given, etcdctl finds the (new) leader itself; move back.
    let out = etcdctl_all(&c, &["move-leader", &format!("{:x}", ids[old])]);
    assert_eq!(
        out,
        format!(
            "Leadership transferred from {:x} to {:x}\n",
            ids[target], ids[old]
        )
    );
    assert_eq!(c.status(old).expect("status").leader, ids[old]);
    eprintln!("move_leader: {:?}", started.elapsed());
}

fn etcdctl_all(c: &Cluster, args: &[&str]) -> String {
    let out = c.ctl_any(args);
    assert!(
        out.success,
        "etcdctl {args:?} on every endpoint failed:\n{}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// 3. Writes through one member are read at once (linearizably) through another; a watch on a
///    follower sees puts and deletes made through the other members, in order, with their
///    revisions; `txn -i` through a follower.
#[test]
fn writes_through_one_member_reads_watches_and_txns_through_another() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let c = Cluster::start(3, &[]);
    let leader = c.leader();
    let (f1, f2) = others(leader);

    // Every ordered pair: put via A, get via B at once.
    let mut n = 0;
    for a in 0..3 {
        for b in (0..3).filter(|&b| b != a) {
            let (key, value) = (format!("rw/{n}"), format!("put-via-{a}-read-via-{b}"));
            let rev = header_revision(&c.ok(a, &["put", &key, &value, "-w", "json"]));
            assert_eq!(
                c.ok(b, &["get", &key]),
                format!("{key}\n{value}\n"),
                "put via member {a}, read via member {b}"
            );
            let got = json(&c.ok(b, &["get", &key, "-w", "json"]));
            assert_eq!(got["kvs"][0]["mod_revision"].as_i64(), Some(rev), "{got}");
            assert!(got["header"]["revision"].as_i64() >= Some(rev), "{got}");
            n += 1;
        }
    }
    // One key overwritten through each member in turn: never a stale value.
    for round in 0..9 {
        let (a, b) = (round % 3, (round + 1) % 3);
        assert_eq!(
            c.ok(a, &["put", "rw/shared", &format!("round{round}")]),
            "OK\n"
        );
        assert_eq!(
            c.ok(b, &["get", "rw/shared", "--print-value-only"]),
            format!("round{round}\n"),
            "round {round}: via {a}, read via {b}"
        );
    }

    // A watch served by follower f1; the writes go through the leader and through f2.
    let from = header_revision(&c.ok(f1, &["get", "w/", "-w", "json"])) + 1;
    let watch = Spawned(Some(c.spawn_ctl(
        f1,
        &[
            "watch",
            "--prefix",
            "w/",
            "--rev",
            &from.to_string(),
            "-w",
            "json",
        ],
    )));
    std::thread::sleep(Duration::from_secs(1));
    let ops: [(usize, &[&str]); 5] = [
        (leader, &["put", "w/a", "1"]),
        (f2, &["put", "w/b", "2"]),
        (leader, &["put", "w/a", "3"]),
        (f2, &["del", "w/b"]),
        (f2, &["put", "w/c", "4"]),
    ];
    let mut want = Vec::new();
    for (via, op) in ops {
        let mut args = op.to_vec();
        args.extend(["-w", "json"]);
        let rev = header_revision(&c.ok(via, &args));
        want.push((
            op[0],
            op[1].to_owned(),
            op.get(2).map(|v| v.to_string()).unwrap_or_default(),
            rev,
        ));
    }
    let lines = watch.lines(want.len(), Duration::from_secs(10));
    let f1_id = c.member_id(f1);
    let mut seen = Vec::new();
    for line in &lines {
        let resp = json(line);
        assert_eq!(
            resp["Header"]["member_id"].as_u64(),
            Some(f1_id),
            "the watch must be served by the follower: {line}"
        );
        for ev in resp["Events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events: {line}"))
        {
            let kind = if ev["type"].as_i64() == Some(1) {
                "del"
            } else {
                "put"
            };
            let kv = &ev["kv"];
            seen.push((
                kind,
                text(&kv["key"]),
                text(&kv["value"]),
                kv["mod_revision"].as_i64().unwrap_or(0),
            ));
        }
        assert!(
            resp["Header"]["revision"].as_i64() >= seen.last().map(|s| s.3),
            "{line}"
        );
    }
    assert_eq!(
        seen, want,
        "watch on follower {f1} from revision {from}: events (kind, key, value, mod_revision)"
    );
    assert_eq!(
        want.windows(2).filter(|w| w[1].3 != w[0].3 + 1).count(),
        0,
        "one revision per write: {want:?}"
    );

    // txn -i through follower f1, on a key just written through the leader.
    assert_eq!(c.ok(leader, &["put", "t/flag", "on"]), "OK\n");
    let script = "value(\"t/flag\") = \"on\"\n\nput t/a 1\nput t/b 2\n\nput t/failed yes\n\n";
    let out = c.ctl_stdin(f1, &["txn", "-i"], script);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("SUCCESS\n\nOK\n\nOK\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        c.ok(f2, &["get", "t/", "--prefix"]),
        "t/a\n1\nt/b\n2\nt/flag\non\n"
    );
    let a = json(&c.ok(f2, &["get", "t/a", "-w", "json"]));
    let b = json(&c.ok(leader, &["get", "t/b", "-w", "json"]));
    assert_eq!(
        a["kvs"][0]["mod_revision"], b["kvs"][0]["mod_revision"],
        "one txn, one revision"
    );
    let script = "mod(\"t/flag\") > \"100000\"\n\nput t/x 1\n\nget t/a\nput t/failed yes\n\n";
    let out = c.ctl_stdin(f1, &["txn", "-i"], script);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("FAILURE\n\nt/a\n1\n\nOK\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        c.ok(leader, &["get", "t/failed", "--print-value-only"]),
        "yes\n"
    );
    assert_eq!(c.ok(f2, &["get", "t/x"]), "");
    eprintln!(
        "writes_through_one_member_reads_watches_and_txns_through_another: {:?}",
        started.elapsed()
    );
}

/// 3b. "Returns it at once" cannot tell a follower that waits for the leader's read index from one
///    that answers from its own copy (each etcdctl is a new process; the follower has applied the
///    write before the next one connects). A follower cut off from the others can: a linearizable
///    get through it must not answer with the value it holds once the others have moved on.
#[test]
fn linearizable_read_through_a_cut_off_follower_is_never_stale() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let c = NetCluster::start(3, &[]);
    let leader = c.leader();
    let (cut, other) = others(leader);
    assert_eq!(c.ok(other, &["put", "k", "v1"]), "OK\n");
    assert_eq!(c.ok(cut, &["get", "k", "--print-value-only"]), "v1\n");

    c.isolate(cut);
    assert_eq!(
        c.ok(other, &["put", "k", "v2"]),
        "OK\n",
        "the leader and the other follower are a quorum"
    );
    let local = c.ctl_timeout(
        cut,
        &["get", "k", "--consistency=s", "--print-value-only"],
        "3s",
    );
    assert_eq!(
        local.stdout, "v1\n",
        "the cut-off follower cannot hold v2 (serializable read): {}",
        local.stderr
    );
    let read = c.ctl_timeout(cut, &["get", "k", "--print-value-only"], "3s");
    assert!(
        !read.success && read.stdout.is_empty(),
        "a cut-off follower answered a linearizable read with {:?}",
        read.stdout
    );
    eprintln!(
        "linearizable get through the cut-off follower: {}",
        read.stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect::<Vec<_>>()
            .join(" | ")
    );

    c.heal(cut);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = c.ctl_timeout(cut, &["get", "k", "--print-value-only"], "2s");
        if read.success {
            assert_eq!(
                read.stdout, "v2\n",
                "after healing, a linearizable read through the follower must see v2"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the follower did not serve reads within 15 s of healing: {}",
            read.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "linearizable_read_through_a_cut_off_follower_is_never_stale: {:?}",
        started.elapsed()
    );
}

/// 4. A lease granted through a follower, used through another member and kept alive through the
///    third; when the leader is killed the new leader restarts the countdown (the lease outlives
///    its old deadline) and then, with no keep-alives, revokes it.
#[test]
fn leases_across_members_and_a_leader_failover() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let mut c = Cluster::start(3, &[]);
    let leader = c.leader();
    let (f1, f2) = others(leader);

    let granted = c.ok(f1, &["lease", "grant", "5"]);
    let id = granted
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(granted, format!("lease {id} granted with TTL(5s)\n"));
    assert_eq!(
        c.ok(f2, &["put", "l/k", "v", &format!("--lease={id}")]),
        "OK\n"
    );
    assert_eq!(
        c.ok(leader, &["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(5)\n")
    );
    let kept_alive = Instant::now();
    for i in [f1, f2, leader] {
        let ttl = c.ok(i, &["lease", "timetolive", "--keys", &id]);
        assert!(
            ttl.starts_with(&format!("lease {id} granted with TTL(5s), remaining(")),
            "member {i}: {ttl}"
        );
        assert!(
            ttl.ends_with("s), attached keys([l/k])\n"),
            "member {i}: {ttl}"
        );
    }
    let v = json(&c.ok(f1, &["get", "l/k", "-w", "json"]));
    assert_eq!(
        format!("{:016x}", v["kvs"][0]["lease"].as_i64().unwrap_or(0)),
        id
    );

    // Kill the leader 3 s into the lease's 5: by the time the others have elected a leader, the
    // old deadline has (nearly) passed.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(kept_alive.elapsed()));
    c.kill9(leader);
    let killed = Instant::now();
    let new = c.leader_of_within(&[f1, f2], Duration::from_secs(10));
    let elected = Instant::now();
    eprintln!(
        "leader {leader} killed {:?} after the keep-alive; {new} elected {:?} later",
        killed - kept_alive,
        elected - killed
    );
    std::thread::sleep(Duration::from_secs(2).saturating_sub(elected.elapsed()));
    let since_keepalive = kept_alive.elapsed();
    for i in [f1, f2] {
        let got = c.ctl(i, &["get", "l/k"]);
        assert_eq!(
            got.stdout, "l/k\nv\n",
            "member {i}: the key is gone {since_keepalive:?} after the last keep-alive, 2 s after the new leader was elected \
             (a new leader must restart the countdown): {}",
            got.stderr
        );
        let ttl = c.ok(i, &["lease", "timetolive", "--keys", &id]);
        let remaining: i64 = ttl
            .split_once("remaining(")
            .and_then(|(_, r)| r.split_once("s)"))
            .and_then(|(r, _)| r.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "member {i}: no remaining TTL {since_keepalive:?} after the keep-alive: {ttl}"
                )
            });
        assert!(remaining > 0, "member {i}: {ttl}");
        assert!(
            ttl.ends_with("s), attached keys([l/k])\n"),
            "member {i}: {ttl}"
        );
    }

    // No one keeps it alive: revoked within the TTL (plus a little) of the election.
    let deadline = elected + Duration::from_secs(5 + 4);
    loop {
        let got = c.ctl(new, &["get", "l/k"]);
        if got.success && got.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was not revoked {:?} after the election: {}{}",
            elected.elapsed(),
            got.stdout,
            got.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let revoked_after = elected.elapsed();
    eprintln!("lease revoked {revoked_after:?} after the election");
    for i in [f1, f2] {
        assert_eq!(c.ok(i, &["get", "l/k"]), "", "member {i}");
        assert_eq!(
            c.ok(i, &["lease", "timetolive", "--keys", &id]),
            format!("lease {id} already expired\n"),
            "member {i}"
        );
    }
    assert_eq!(c.ok(f2, &["lease", "list"]), "found 0 leases\n");
    eprintln!(
        "leases_across_members_and_a_leader_failover: {:?}",
        started.elapsed()
    );
}

/// Every key under the whole keyspace, as member `i` itself holds it (`--consistency=s` unless
/// `linearizable`): (key, value, create_revision, mod_revision, version, lease), and the revision.
#[allow(clippy::type_complexity)]
fn dump(
    c: &Cluster,
    i: usize,
    linearizable: bool,
) -> (Vec<(String, String, i64, i64, i64, i64)>, i64) {
    let mut args = vec!["get", "", "--prefix", "-w", "json"];
    if !linearizable {
        args.push("--consistency=s");
    }
    let v = json(&c.ok(i, &args));
    let kvs = v["kvs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let n = |f: &str| kv[f].as_i64().unwrap_or(0);
            (
                text(&kv["key"]),
                text(&kv["value"]),
                n("create_revision"),
                n("mod_revision"),
                n("version"),
                n("lease"),
            )
        })
        .collect();
    (kvs, v["header"]["revision"].as_i64().unwrap())
}

/// 5. `snapshot save` from one member, restored into three new data directories, started as a
///    NEW 3-member cluster: every member serves every key with its original revisions, and the
///    same hash as the original cluster at that revision.
#[test]
fn snapshot_restored_into_a_new_three_member_cluster() {
    let _serial = common::one_at_a_time();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.db");
    let file_s = file.to_str().unwrap();

    let (want, rev, hash) = {
        let c = Cluster::start(3, &[]);
        for n in 0..60 {
            c.ok(n % 3, &["put", &format!("s/{n:02}"), &format!("v{n}")]);
        }
        for n in (0..60).step_by(7) {
            c.ok(n % 3, &["put", &format!("s/{n:02}"), &format!("again{n}")]);
        }
        c.ok(1, &["del", "s/13"]);
        c.ok(2, &["del", "s/20", "s/25"]);
        let out = c.ctl_stdin(0, &["txn", "-i"], "\nput s/t1 x\nput s/t2 y\n\n\n");
        assert!(
            out.success && out.stdout.ends_with("SUCCESS\n\nOK\n\nOK\n"),
            "{}{}",
            out.stdout,
            out.stderr
        );
        let from = c.leader();
        let from = others(from).0;
        let (want, rev) = dump(&c, from, true);
        assert_eq!(want.len(), 60 - 1 - 5 + 2, "keys written");
        assert_eq!(
            c.ok(from, &["snapshot", "save", file_s]),
            format!("Snapshot saved at {file_s}\n")
        );
        let hash = c
            .hashkv_at(from, rev)
            .expect("hashkv of the original member");
        for i in 0..3 {
            assert_eq!(c.hashkv_at(i, rev), Some(hash), "original member {i}");
        }
        (want, rev, hash)
        // The original cluster stops here.
    };
    assert!(Path::new(&file).exists());

    let r = Cluster::start_from_snapshot(3, &[], &file);
    let members = member_list(&r, 0);
    assert_eq!(members.len(), 3, "{members:?}");
    for i in 0..3 {
        assert!(
            members.iter().any(|m| m.1 == r.name(i) && m.3 == [r.client_url(i)]),
            "member {i} with its client URL in `member list` right after every member answered `endpoint health` (a member \
             must not serve clients before its client URLs are published): {members:?}"
        );
    }
    let leader = r.leader();
    assert!((0..3).contains(&leader));
    for i in 0..3 {
        let (kvs, at) = dump(&r, i, true);
        assert_eq!(at, rev, "restored member {i}'s revision");
        assert_eq!(
            kvs, want,
            "restored member {i}: every key with its original revisions (linearizable read)"
        );
        let (kvs, _) = dump(&r, i, false);
        assert_eq!(kvs, want, "restored member {i}'s own copy");
        let v = json(&r.ok(i, &["get", "s/07", "-w", "json"]));
        let kv = &v["kvs"][0];
        assert_eq!(
            (text(&kv["value"]), kv["version"].as_i64()),
            ("again7".to_owned(), Some(2)),
            "{v}"
        );
        assert_eq!(
            r.hashkv_at(i, rev),
            Some(hash),
            "restored member {i}: hash at revision {rev}"
        );
    }
    let hashes: Vec<(u64, i64)> = (0..3).map(|i| r.hashkv(i)).collect();
    assert!(
        hashes.iter().all(|h| *h == hashes[0]),
        "restored members differ: {hashes:?}"
    );

    // The new cluster goes on from the snapshot's revision.
    let put = header_revision(&r.ok(0, &["put", "s/new", "write", "-w", "json"]));
    assert_eq!(put, rev + 1, "the first write after the restore");
    let v = json(&r.ok(2, &["get", "s/new", "-w", "json"]));
    assert_eq!(v["kvs"][0]["mod_revision"].as_i64(), Some(rev + 1), "{v}");
    eprintln!(
        "snapshot_restored_into_a_new_three_member_cluster: {:?}",
        started.elapsed()
    );
}

/// Alarms are replicated, as etcd's: the NOSPACE alarm one member raises is listed by every
/// member and refuses growth through every member, and a disarm through another member clears it
/// everywhere.
#[test]
fn alarms_are_the_same_on_every_member() {
    let _serial = common::one_at_a_time();
    let c = Cluster::start(3, &["--quota-backend-bytes", "300000"]);
    let big = "x".repeat(20_000);
    let mut refused = None;
    for i in 0..300 {
        let out = c.ctl(0, &["put", &format!("k{i}"), &big]);
        if !out.success {
            refused = Some(out.stderr);
            break;
        }
    }
    let refused = refused.expect("the quota was never hit");
    assert!(
        refused.contains("etcdserver: mvcc: database space exceeded"),
        "{refused}"
    );
    for i in 0..3 {
        let alarms = c.ok(i, &["alarm", "list"]);
        assert!(alarms.contains("alarm:NOSPACE"), "member {i}: {alarms}");
        let out = c.ctl(i, &["put", "small", "v"]);
        assert!(
            !out.success
                && out
                    .stderr
                    .contains("etcdserver: mvcc: database space exceeded"),
            "member {i}: {}",
            out.stderr
        );
    }
    assert!(c.ok(2, &["alarm", "disarm"]).contains("alarm:NOSPACE"));
    for i in 0..3 {
        assert_eq!(c.ok(i, &["alarm", "list"]), "", "member {i}");
    }
}
