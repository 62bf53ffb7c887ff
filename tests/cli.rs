//! `ballast kv` refuses bad flags with a clear message and exit status 1, before touching anything.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn kv(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .arg("kv")
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_are_refused_clearly() {
    let cases: &[(&[&str], &str)] = &[
        (&["--listen-client-urls", "https://127.0.0.1:1"], "only http:// URLs are supported"),
        (&["--listen-client-urls", "http://127.0.0.1"], "expected http://host:port"),
        (&["--initial-cluster", "other=http://127.0.0.1:2380"], "--initial-cluster has no member named \"default\""),
        (
            &["--initial-cluster", "default=http://a:1,b=http://b:1"],
            "--initial-cluster has default=http://a:1 but missing from --initial-advertise-peer-urls=http://localhost:2380",
        ),
        (&["--initial-cluster", "default"], "--initial-cluster entry \"default\" is not name=peer-url"),
        (&["--heartbeat-interval", "100", "--election-timeout", "300"], "--election-timeout[300ms] should be at least 5 times as --heartbeat-interval[100ms]"),
        (&["--initial-cluster-state", "maybe"], "--initial-cluster-state must be new or existing"),
        (&["--auto-compaction-mode", "weekly", "--auto-compaction-retention", "1"], "--auto-compaction-mode must be periodic or revision"),
        (&["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"], "must be a positive revision count"),
    ];
    for (args, want) in cases {
        let (ok, stderr) = kv(args);
        assert!(!ok, "{args:?} should fail");
        assert!(
            stderr.contains("Error: ") && stderr.contains(want),
            "{args:?}: expected {want:?} in {stderr}"
        );
    }
}

#[test]
fn a_taken_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", taken.local_addr().unwrap());
    let (ok, stderr) = kv(&["--listen-client-urls", &url]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot listen on {url}")),
        "{stderr}"
    );
}

/// SIGTERM stops a member in a few seconds even while a client holds a watch stream open (a
/// kube-apiserver holds its watches for hours): the graceful shutdown waits 2 s for open streams,
/// as etcd's, then closes them. Before that deadline existed the member never exited.
#[test]
fn sigterm_stops_a_member_with_a_watch_open() {
    let mut m = common::Member::start(&[]);
    let mut watch = m.spawn_ctl(&["watch", "held"]);
    // The watch is open once it delivered a write; its stdout is then read on, so it stays open.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && Instant::now() < deadline {
        m.ok(&["put", "held", "1"]);
        seen.extend(rx.recv_timeout(Duration::from_millis(500)));
    }
    assert_eq!(
        seen.get(..3),
        Some(&["PUT", "held", "1"].map(String::from)[..]),
        "the watch was not open"
    );
    let status = Command::new("kill")
        .args(["-TERM", &m.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = m.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the member still runs 15 s after SIGTERM with a watch open:\n{}",
            std::fs::read_to_string(&m.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "the member exited with {exit}");
    let _ = watch.kill();
    let _ = watch.wait();
}
