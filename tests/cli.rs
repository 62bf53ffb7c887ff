//! `ballast kv` refuses bad flags with a clear message and exit status 1, before touching anything.

use std::process::Command;

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
