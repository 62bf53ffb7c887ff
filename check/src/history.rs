//! A recorded history: every request a test's clients sent, with when it was invoked and when
//! (if ever) it returned, and what it returned.

use serde::{Deserialize, Serialize};

/// Nanoseconds since the start of the recording, on one monotonic clock shared by all clients.
pub type Nanos = u64;

/// A key and the fields of its `mvccpb.KeyValue` that the checks compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    /// 0 when no lease is attached.
    pub lease: i64,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A linearizable single-key Range.
    Get { key: Vec<u8> },
    /// A linearizable Range over `[start, end)` (etcd's range_end; all keys of a prefix, say).
    Range { start: Vec<u8>, end: Vec<u8> },
    /// Put; every value written in one history is unique. `lease` 0 means none.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
    /// DeleteRange of one key.
    Delete { key: Vec<u8> },
    /// Txn: if mod_revision(key) == expected_mod_revision (0: the key does not exist) then
    /// put(key, value) else get(key).
    Cas {
        key: Vec<u8>,
        expected_mod_revision: i64,
        value: Vec<u8>,
    },
    /// LeaseGrant with a client-chosen id.
    LeaseGrant { lease: i64 },
    /// LeaseRevoke: deletes every key attached to the lease, in one revision.
    LeaseRevoke { lease: i64 },
}

/// What the server answered. `revision` is always the response header's revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    Get {
        kv: Option<Kv>,
        revision: i64,
    },
    Range {
        kvs: Vec<Kv>,
        revision: i64,
    },
    Put {
        revision: i64,
    },
    Delete {
        deleted: i64,
        revision: i64,
    },
    /// `kv` is the else branch's get result (None when it succeeded or the key is absent).
    Cas {
        succeeded: bool,
        kv: Option<Kv>,
        revision: i64,
    },
    LeaseGrant {
        revision: i64,
    },
    LeaseRevoke {
        revision: i64,
    },
    /// The server answered with an error that means the request was NOT applied (e.g. a
    /// validation error, or "lease not found"): the op is dropped from the history.
    Rejected,
    /// No answer, or an error after which the request may or may not have been applied
    /// (timeout, connection lost, leader changed): the op stays open to the end of the history.
    Unknown,
}

/// One request of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client (one sequential caller) that made it.
    pub client: usize,
    pub input: Input,
    pub output: Output,
    pub call: Nanos,
    /// When the answer arrived; ignored for `Output::Unknown` (treated as never).
    pub ret: Nanos,
}

/// One event a watch delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For a delete, the key with `mod_revision` = the deletion's revision and an empty value.
    pub kv: Kv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One watch: what it asked for and every event it delivered, in order of delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub start: Vec<u8>,
    /// Empty: the single key `start`.
    pub end: Vec<u8>,
    /// The revision the watch was created at (0: from the current revision).
    pub start_revision: i64,
    pub events: Vec<WatchEvent>,
    /// The watch was cancelled because `start_revision` was compacted (then `events` is empty),
    /// with the compact revision the server reported.
    pub compacted: Option<i64>,
}

impl Input {
    /// The one key a single-key request reads or writes; `None` for ranges and lease requests.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Input::Get { key }
            | Input::Put { key, .. }
            | Input::Delete { key }
            | Input::Cas { key, .. } => Some(key),
            Input::Range { .. } | Input::LeaseGrant { .. } | Input::LeaseRevoke { .. } => None,
        }
    }

    /// The value a Put or a Cas writes if it takes effect.
    pub fn written_value(&self) -> Option<&[u8]> {
        match self {
            Input::Put { value, .. } | Input::Cas { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The lease a write attaches to its key (0: none; a Cas's put never carries one).
    pub fn written_lease(&self) -> i64 {
        match self {
            Input::Put { lease, .. } => *lease,
            _ => 0,
        }
    }
}

impl Output {
    /// The response header's revision, for an answered request.
    pub fn revision(&self) -> Option<i64> {
        match self {
            Output::Get { revision, .. }
            | Output::Range { revision, .. }
            | Output::Put { revision }
            | Output::Delete { revision, .. }
            | Output::Cas { revision, .. }
            | Output::LeaseGrant { revision }
            | Output::LeaseRevoke { revision } => Some(*revision),
            Output::Rejected | Output::Unknown => None,
        }
    }

    /// Every key-value pair the response shows (what the server claims was stored).
    pub fn observed(&self) -> &[Kv] {
        match self {
            Output::Get { kv: Some(kv), .. }
            | Output::Cas {
                succeeded: false,
                kv: Some(kv),
                ..
            } => std::slice::from_ref(kv),
            Output::Range { kvs, .. } => kvs,
            _ => &[],
        }
    }

    /// Whether this output can answer `input` (the variants pair up one to one).
    pub fn answers(&self, input: &Input) -> bool {
        matches!(
            (input, self),
            (_, Output::Rejected | Output::Unknown)
                | (Input::Get { .. }, Output::Get { .. })
                | (Input::Range { .. }, Output::Range { .. })
                | (Input::Put { .. }, Output::Put { .. })
                | (Input::Delete { .. }, Output::Delete { .. })
                | (Input::Cas { .. }, Output::Cas { .. })
                | (Input::LeaseGrant { .. }, Output::LeaseGrant { .. })
                | (Input::LeaseRevoke { .. }, Output::LeaseRevoke { .. })
        )
    }
}
