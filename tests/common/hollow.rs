//! `ballast agent --hollow` processes (kubemark's hollow nodes) for the control loops' tests,
//! and polling helpers that read the API server while something converges.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::apiserver::{request, ApiServer};
use super::process::Launch;

/// One `ballast agent --hollow --nodes N` process.
#[derive(Debug)]
pub struct HollowNodes {
    child: Child,
    pub log: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl HollowNodes {
    /// Registers `nodes` hollow nodes named `<prefix>-<i>` (or `<prefix>` for one) with the
    /// server at `url`, with `extra` flags (`--cpu`, `--zones`, ...).
    pub fn start(url: &str, prefix: &str, nodes: usize, extra: &[&str]) -> HollowNodes {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("agent.log");
        let child = Launch::ballast(&["agent", "--hollow"])
            .args([
                format!("--server={url}"),
                format!("--node-name={prefix}"),
                format!("--nodes={nodes}"),
            ])
            .args(extra)
            .spawn(&log);
        HollowNodes {
            child,
            log,
            _tmp: tmp,
        }
    }

    /// Kills the process (SIGKILL): its nodes stop renewing their Leases.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        super::process::tail(&text, 30)
    }
}

impl Drop for HollowNodes {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `path` (JSON) from the server; panics unless it answers 200.
pub fn get(server: &ApiServer, path: &str) -> Value {
    let (code, body) = request(server, "GET", path, "application/json", b"");
    assert_eq!(code, 200, "GET {path}: {body}");
    body
}

/// A list's items.
pub fn items(server: &ApiServer, path: &str) -> Vec<Value> {
    get(server, path)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `check` every 100 ms until it returns Some, or panics after `timeout` with `what` and
/// the last value `describe` gave.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last seen: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pod is bound and reported Running and Ready.
pub fn is_running_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Pods of `namespace` matching `selector` ("app=web") that are not terminating.
pub fn live_pods(server: &ApiServer, namespace: &str, selector: &str) -> Vec<Value> {
    items(
        server,
        &format!("/api/v1/namespaces/{namespace}/pods?labelSelector={selector}"),
    )
    .into_iter()
    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    .collect()
}
