//! Helpers for writing histories by hand: one short constructor per request and response, and
//! a `History` builder that keeps a clock, so that a test case reads like the history it is.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod sim;

use std::time::Duration;

use ballast_check::{
    check_linearizable, check_watches, EventKind, Input, Kv, LinResult, Operation, Output, Watch,
    WatchEvent, WatchResult,
};

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64) -> Kv {
    kv_lease(key, value, create, modified, version, 0)
}

pub fn kv_lease(
    key: &str,
    value: &str,
    create: i64,
    modified: i64,
    version: i64,
    lease: i64,
) -> Kv {
    Kv {
        key: b(key),
        value: b(value),
        create_revision: create,
        mod_revision: modified,
        version,
        lease,
    }
}

// Requests.
pub fn get(key: &str) -> Input {
    Input::Get { key: b(key) }
}
pub fn range(start: &str, end: &str) -> Input {
    Input::Range {
        start: b(start),
        end: b(end),
    }
}
pub fn put(key: &str, value: &str) -> Input {
    put_lease(key, value, 0)
}
pub fn put_lease(key: &str, value: &str, lease: i64) -> Input {
    Input::Put {
        key: b(key),
        value: b(value),
        lease,
    }
}
pub fn delete(key: &str) -> Input {
    Input::Delete { key: b(key) }
}
pub fn cas(key: &str, expected: i64, value: &str) -> Input {
    Input::Cas {
        key: b(key),
        expected_mod_revision: expected,
        value: b(value),
    }
}
pub fn grant(lease: i64) -> Input {
    Input::LeaseGrant { lease }
}
pub fn revoke(lease: i64) -> Input {
    Input::LeaseRevoke { lease }
}

// Responses.
pub fn got(kv: Option<Kv>, revision: i64) -> Output {
    Output::Get { kv, revision }
}
pub fn ranged(kvs: Vec<Kv>, revision: i64) -> Output {
    Output::Range { kvs, revision }
}
pub fn put_at(revision: i64) -> Output {
    Output::Put { revision }
}
pub fn deleted(deleted: i64, revision: i64) -> Output {
    Output::Delete { deleted, revision }
}
pub fn cas_ok(revision: i64) -> Output {
    Output::Cas {
        succeeded: true,
        kv: None,
        revision,
    }
}
pub fn cas_failed(kv: Option<Kv>, revision: i64) -> Output {
    Output::Cas {
        succeeded: false,
        kv,
        revision,
    }
}
pub fn granted(revision: i64) -> Output {
    Output::LeaseGrant { revision }
}
pub fn revoked(revision: i64) -> Output {
    Output::LeaseRevoke { revision }
}
pub const UNKNOWN: Output = Output::Unknown;
pub const REJECTED: Output = Output::Rejected;

/// A history under construction, with a clock in nanoseconds.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Vec<Operation>,
    clock: u64,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// An op called after every op so far returned.
    pub fn then(&mut self, client: usize, input: Input, output: Output) -> &mut Self {
        let call = self.clock + 10;
        self.at(client, call, call + 10, input, output)
    }

    /// An op at explicit times (for overlapping ops).
    pub fn at(
        &mut self,
        client: usize,
        call: u64,
        ret: u64,
        input: Input,
        output: Output,
    ) -> &mut Self {
        self.clock = self.clock.max(ret).max(call);
        self.ops.push(Operation {
            client,
            input,
            output,
            call,
            ret,
        });
        self
    }
}

pub const BUDGET: Duration = Duration::from_secs(10);

/// Asserts the history is linearizable.
pub fn assert_linearizable(ops: &[Operation]) {
    let result = check_linearizable(ops, BUDGET);
    assert!(result.is_ok(), "expected linearizable, got:\n{result}");
}

/// Asserts the history is not linearizable and returns the report.
pub fn assert_violation(ops: &[Operation]) -> String {
    let result = check_linearizable(ops, BUDGET);
    assert!(
        matches!(result, LinResult::Violation { .. }),
        "expected a violation, got:\n{result}"
    );
    result.to_string()
}

pub fn put_event(kv: Kv) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Put,
        kv,
    }
}

pub fn delete_event(key: &str, revision: i64) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        kv: Kv {
            key: b(key),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: revision,
            version: 0,
            lease: 0,
        },
    }
}

pub fn watch(start: &str, end: &str, start_revision: i64, events: Vec<WatchEvent>) -> Watch {
    Watch {
        start: b(start),
        end: b(end),
        start_revision,
        events,
        compacted: None,
    }
}

pub fn assert_watches_ok(ops: &[Operation], watches: &[Watch]) {
    let result = check_watches(ops, watches);
    assert!(result.is_ok(), "expected valid watches, got: {result}");
}

/// Asserts that watch `index` is reported invalid; returns the report.
pub fn assert_watch_violation(ops: &[Operation], watches: &[Watch], index: usize) -> String {
    let result = check_watches(ops, watches);
    assert!(
        matches!(result, WatchResult::Violation { watch_index, .. } if watch_index == index),
        "expected watch #{index} to be invalid, got: {result}"
    );
    result.to_string()
}
