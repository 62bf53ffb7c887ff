//! The bytes of what members write to their raft log and send each other, held fixed.
//!
//! postcard numbers an enum's variants by their order, so reordering or inserting a variant of
//! anything in a log entry or a peer message silently changes what old bytes mean (a reorder once
//! decoded every auth error as its successor). This test encodes one sample of every variant of
//! every such type and compares the bytes with `tests/golden/formats.txt`, which also names the
//! format versions (`codec::LOG_FORMAT`, `codec::WIRE_FORMAT`) the bytes belong to:
//!
//! - unchanged bytes: passes;
//! - changed bytes under the same versions: fails, naming each changed sample. A change on purpose
//!   bumps the version (a log of another format is refused at open, a peer of another wire format
//!   at the RPC) and rewrites the file with `BALLAST_BLESS=1`;
//! - new samples (a variant added last) are appended by `BALLAST_BLESS=1` without a bump: old
//!   bytes still mean what they meant.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ballast_raft::codec::{encode, LOG_FORMAT, WIRE_FORMAT};
use ballast_raft::types::{
    Command, CommittedLeaderId, Entry, LogId, MemberNode, Reply, SnapshotMeta, StoredMembership,
};
use ballast_raft::wire::{LeaderReply, LeaderRequest, ReplicaError};
use ballast_store::{
    AuthRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse,
    KeyValue, LeaseStatus, PermKind, Permission, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseOp, SortOrder, SortTarget, StoreError, TxnRequest,
    TxnResponse, WriteRequest, WriteResponse,
};
use openraft::entry::RaftEntry;
use openraft::{EntryPayload, Membership};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/formats.txt")
}

fn kv() -> KeyValue {
    KeyValue {
        key: "k".into(),
        create_revision: 2,
        mod_revision: 3,
        version: 2,
        value: "v".into(),
        lease: 7,
    }
}

fn range() -> RangeRequest {
    RangeRequest {
        key: "a".into(),
        range_end: "b".into(),
        limit: 10,
        revision: 4,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Mod,
        serializable: true,
        keys_only: true,
        count_only: false,
        min_mod_revision: 1,
        max_mod_revision: 9,
        min_create_revision: 1,
        max_create_revision: 8,
    }
}

fn put() -> PutRequest {
    PutRequest {
        key: "k".into(),
        value: "v".into(),
        lease: 7,
        prev_kv: true,
        ignore_value: false,
        ignore_lease: true,
    }
}

fn delete() -> DeleteRangeRequest {
    DeleteRangeRequest {
        prev_kv: true,
        ..DeleteRangeRequest::range("a", "b")
    }
}

fn txn() -> TxnRequest {
    let compares = [
        (CompareResult::Equal, CompareTarget::Version(1)),
        (CompareResult::Greater, CompareTarget::Create(2)),
        (CompareResult::Less, CompareTarget::Mod(3)),
        (CompareResult::NotEqual, CompareTarget::Value("v".into())),
        (CompareResult::Equal, CompareTarget::Lease(7)),
    ];
    TxnRequest {
        compare: compares
            .into_iter()
            .map(|(result, target)| Compare::new("k", result, target))
            .collect(),
        success: vec![
            RequestOp::Range(range()),
            RequestOp::Put(put()),
            RequestOp::DeleteRange(delete()),
        ],
        failure: vec![RequestOp::Txn(TxnRequest::default())],
    }
}

fn write_requests() -> Vec<(&'static str, WriteRequest)> {
    let perm = |kind| Permission {
        kind,
        key: "a".into(),
        range_end: "b".into(),
    };
    let auth = [
        ("enable", AuthRequest::Enable),
        ("disable", AuthRequest::Disable),
        (
            "user-add",
            AuthRequest::UserAdd {
                name: "u".into(),
                password_hash: "h".into(),
                no_password: true,
            },
        ),
        ("user-delete", AuthRequest::UserDelete { name: "u".into() }),
        (
            "user-change-password",
            AuthRequest::UserChangePassword {
                name: "u".into(),
                password_hash: "h".into(),
            },
        ),
        (
            "user-grant-role",
            AuthRequest::UserGrantRole {
                user: "u".into(),
                role: "r".into(),
            },
        ),
        (
            "user-revoke-role",
            AuthRequest::UserRevokeRole {
                name: "u".into(),
                role: "r".into(),
            },
        ),
        ("role-add", AuthRequest::RoleAdd { name: "r".into() }),
        ("role-delete", AuthRequest::RoleDelete { name: "r".into() }),
        (
            "role-grant-read",
            AuthRequest::RoleGrantPermission {
                name: "r".into(),
                perm: perm(PermKind::Read),
            },
        ),
        (
            "role-grant-write",
            AuthRequest::RoleGrantPermission {
                name: "r".into(),
                perm: perm(PermKind::Write),
            },
        ),
        (
            "role-grant-readwrite",
            AuthRequest::RoleGrantPermission {
                name: "r".into(),
                perm: perm(PermKind::ReadWrite),
            },
        ),
        (
            "role-revoke-permission",
            AuthRequest::RoleRevokePermission {
                name: "r".into(),
                key: "a".into(),
                range_end: "b".into(),
            },
        ),
        (
            "authenticate",
            AuthRequest::Authenticate {
                name: "u".into(),
                token: "t".into(),
            },
        ),
    ];
    let mut reqs = vec![
        ("put", WriteRequest::Put(put())),
        ("delete-range", WriteRequest::DeleteRange(delete())),
        ("txn", WriteRequest::Txn(txn())),
        ("compact", WriteRequest::Compact(5)),
        ("lease-grant", WriteRequest::LeaseGrant { id: 7, ttl: 10 }),
        ("lease-revoke", WriteRequest::LeaseRevoke(7)),
        (
            "checked",
            WriteRequest::Checked {
                auth_revision: 3,
                req: Box::new(WriteRequest::Put(put())),
            },
        ),
        (
            "alarm",
            WriteRequest::Alarm {
                activate: true,
                member: 0xabc,
                alarm: 1,
            },
        ),
    ];
    reqs.extend(
        auth.into_iter()
            .map(|(name, req)| (name, WriteRequest::Auth(req))),
    );
    reqs
}

fn write_responses() -> Vec<(&'static str, WriteResponse)> {
    let put = PutResponse {
        revision: 3,
        prev_kv: Some(kv()),
    };
    let deleted = DeleteRangeResponse {
        revision: 4,
        deleted: 1,
        prev_kvs: vec![kv()],
    };
    let ranged = RangeResponse {
        kvs: vec![kv()],
        more: true,
        count: 2,
        ..RangeResponse::default()
    };
    vec![
        ("put", WriteResponse::Put(put.clone())),
        ("delete-range", WriteResponse::DeleteRange(deleted.clone())),
        (
            "txn",
            WriteResponse::Txn(TxnResponse {
                revision: 5,
                succeeded: true,
                responses: vec![
                    ResponseOp::Range(ranged),
                    ResponseOp::Put(put),
                    ResponseOp::DeleteRange(deleted),
                    ResponseOp::Txn(TxnResponse::default()),
                ],
            }),
        ),
        ("compact", WriteResponse::Compact { revision: 5 }),
        (
            "lease-grant",
            WriteResponse::LeaseGrant {
                id: 7,
                ttl: 10,
                revision: 5,
            },
        ),
        ("lease-revoke", WriteResponse::LeaseRevoke { revision: 5 }),
        ("auth", WriteResponse::Auth { revision: 5 }),
        (
            "alarm",
            WriteResponse::Alarm {
                changed: true,
                revision: 5,
            },
        ),
    ]
}

/// Every store error that crosses the wire, in declaration order.
fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::Compacted,
        StoreError::FutureRev,
        StoreError::EmptyKey,
        StoreError::KeyNotFound,
        StoreError::ValueProvided,
        StoreError::LeaseProvided,
        StoreError::TooManyOps,
        StoreError::DuplicateKey,
        StoreError::LeaseNotFound,
        StoreError::LeaseExists,
        StoreError::LeaseTtlTooLarge,
        StoreError::WatcherNotFound,
        StoreError::DuplicateWatchId,
        StoreError::RootUserNotExist,
        StoreError::RootRoleNotExist,
        StoreError::UserAlreadyExist,
        StoreError::UserEmpty,
        StoreError::UserNotFound,
        StoreError::RoleAlreadyExist,
        StoreError::RoleNotFound,
        StoreError::RoleEmpty,
        StoreError::AuthFailed,
        StoreError::PermissionDenied,
        StoreError::RoleNotGranted,
        StoreError::PermissionNotGranted,
        StoreError::AuthNotEnabled,
        StoreError::InvalidAuthToken,
        StoreError::InvalidAuthMgmt,
        StoreError::AuthOldRevision,
    ]
}

fn replica_errors() -> Vec<ReplicaError> {
    vec![
        ReplicaError::NoLeader,
        ReplicaError::LeaderChanged,
        ReplicaError::Timeout,
        ReplicaError::Stopped,
        ReplicaError::MemberNotFound,
        ReplicaError::MemberExists,
        ReplicaError::PeerUrlExists,
        ReplicaError::NotLearner,
        ReplicaError::LearnerNotReady,
        ReplicaError::NotEnoughStarted,
        ReplicaError::Other("why".into()),
        ReplicaError::Unhealthy,
    ]
}

fn node(name: &str) -> MemberNode {
    MemberNode {
        name: name.into(),
        peer_urls: vec![format!("http://{name}:2380")],
        client_urls: vec![format!("http://{name}:2379")],
    }
}

fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId { term, node_id }, index)
}

/// What the log and the state machine write: entries of every command, the applied position,
/// the snapshot metadata.
fn log_samples() -> Vec<(String, Vec<u8>)> {
    let mut samples = Vec::new();
    for (name, req) in write_requests() {
        let entry = Entry::new_normal(log_id(2, 1, 9), Command::Store(req));
        samples.push((format!("log entry store {name}"), encode(&entry)));
    }
    let expire = Command::ExpireLease { term: 2, lease: 7 };
    samples.push((
        "log entry expire-lease".into(),
        encode(&Entry::new_normal(log_id(2, 1, 9), expire)),
    ));
    samples.push((
        "log entry blank".into(),
        encode(&Entry::new_blank(log_id(2, 1, 9))),
    ));
    // Voters 1 and 2, learner 3.
    let nodes = std::collections::BTreeMap::from([(1, node("a")), (2, node("b")), (3, node("c"))]);
    let membership =
        Membership::new(vec![[1, 2].into_iter().collect()], nodes).expect("a membership");
    let payload: EntryPayload<Command, u64, MemberNode> =
        EntryPayload::Membership(membership.clone());
    samples.push((
        "log entry membership".into(),
        encode(&Entry::new(log_id(2, 1, 9), payload)),
    ));
    let stored = StoredMembership::new(Some(log_id(2, 1, 8)), membership);
    samples.push((
        "applied position".into(),
        encode(&(&Some(log_id(2, 1, 9)), &stored)),
    ));
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(2, 1, 9)),
        last_membership: stored,
    };
    samples.push(("snapshot meta".into(), encode(&meta)));
    samples
}

/// What members send each other besides openraft's own messages: forwarded work and its answers.
fn wire_samples() -> Vec<(String, Vec<u8>)> {
    let mut samples = Vec::new();
    let write = |req: WriteRequest| Command::Store(req);
    let requests = [
        (
            "write",
            LeaderRequest::Write(write(WriteRequest::Compact(5))),
        ),
        ("read-index", LeaderRequest::ReadIndex),
        ("keep-alive", LeaderRequest::KeepAlive(7)),
        (
            "time-to-live",
            LeaderRequest::TimeToLive {
                lease: 7,
                keys: true,
            },
        ),
        (
            "add-member",
            LeaderRequest::AddMember {
                id: 3,
                node: node("c"),
                learner: true,
            },
        ),
        ("promote", LeaderRequest::Promote(3)),
        ("remove", LeaderRequest::Remove(3)),
        ("set-node", LeaderRequest::SetNode(3, node("c"))),
        ("transfer-leader", LeaderRequest::TransferLeader(3)),
        (
            "writes",
            LeaderRequest::Writes(vec![write(WriteRequest::LeaseRevoke(7))]),
        ),
    ];
    for (name, req) in requests {
        samples.push((format!("leader request {name}"), encode(&req)));
    }
    for (name, resp) in write_responses() {
        samples.push((
            format!("leader reply write {name}"),
            encode(&LeaderReply::Write(Ok(resp.clone()))),
        ));
        samples.push((
            format!("reply store {name}"),
            encode(&Reply::Store(Ok(resp))),
        ));
    }
    for err in store_errors() {
        samples.push((
            format!("reply store error {err:?}"),
            encode(&Reply::Store(Err(err))),
        ));
    }
    samples.push(("reply none".into(), encode(&Reply::None)));
    let replies = [
        ("read-index", LeaderReply::ReadIndex(9)),
        ("keep-alive", LeaderReply::KeepAlive(Ok(10))),
        (
            "time-to-live",
            LeaderReply::TimeToLive(LeaseStatus {
                id: 7,
                ttl: 5,
                granted_ttl: 10,
                keys: vec!["k".into()],
            }),
        ),
        ("done", LeaderReply::Done),
        (
            "writes",
            LeaderReply::Writes(vec![
                Ok(Ok(WriteResponse::Compact { revision: 5 })),
                Ok(Err(StoreError::Compacted)),
                Err(ReplicaError::NoLeader),
            ]),
        ),
    ];
    for (name, reply) in replies {
        samples.push((format!("leader reply {name}"), encode(&reply)));
    }
    for err in replica_errors() {
        samples.push((format!("replica error {err:?}"), encode(&err)));
    }
    samples
}

fn render(log: &[(String, Vec<u8>)], wire: &[(String, Vec<u8>)]) -> String {
    let mut text = format!(
        "# Written by raft/tests/formats.rs (BALLAST_BLESS=1); see there before editing.\n\
         log-format {LOG_FORMAT}\nwire-format {WIRE_FORMAT}\n"
    );
    for (name, bytes) in log.iter().chain(wire) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{name}: {hex}\n"));
    }
    text
}

/// The versions and the samples a golden file holds.
fn parse(text: &str) -> (u32, u32, BTreeMap<String, String>) {
    let mut versions = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, hex)) = line.rsplit_once(": ") {
            samples.insert(name.to_string(), hex.to_string());
        } else if let Some((key, version)) = line.split_once(' ') {
            versions.insert(key.to_string(), version.parse::<u32>().expect("a version"));
        }
    }
    (versions["log-format"], versions["wire-format"], samples)
}

#[test]
fn formats_hold_their_bytes() {
    let (log, wire) = (log_samples(), wire_samples());
    let path = golden_path();
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    let bless = std::env::var_os("BALLAST_BLESS").is_some();
    if golden.is_empty() {
        assert!(
            bless,
            "{} is missing: run with BALLAST_BLESS=1",
            path.display()
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, render(&log, &wire)).unwrap();
        return;
    }
    let (log_format, wire_format, held) = parse(&golden);
    let changed = |samples: &[(String, Vec<u8>)]| -> Vec<String> {
        samples
            .iter()
            .filter_map(|(name, bytes)| {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let old = held.get(name)?;
                (*old != hex).then(|| format!("{name}: was {old}, now {hex}"))
            })
            .collect()
    };
    let (log_changed, wire_changed) = (changed(&log), changed(&wire));
    let unbumped: Vec<&String> = (if log_format == LOG_FORMAT {
        log_changed.iter()
    } else {
        [].iter()
    })
    .chain(if wire_format == WIRE_FORMAT {
        wire_changed.iter()
    } else {
        [].iter()
    })
    .collect();
    assert!(
        unbumped.is_empty(),
        "encodings changed under the same format version (a reordered or inserted variant \
         would make old logs and peers decode as something else; add variants last, or bump \
         codec::LOG_FORMAT / WIRE_FORMAT and rerun with BALLAST_BLESS=1):\n{}",
        unbumped
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let all: Vec<&String> = log.iter().chain(&wire).map(|(name, _)| name).collect();
    let added = all.iter().filter(|name| !held.contains_key(**name)).count();
    let gone: Vec<&String> = held.keys().filter(|name| !all.contains(name)).collect();
    let stale = log_format != LOG_FORMAT || wire_format != WIRE_FORMAT;
    if added > 0 || !gone.is_empty() || stale {
        assert!(
            bless,
            "{} is out of date ({added} new samples, gone: {gone:?}, versions {log_format}/{wire_format} \
             now {LOG_FORMAT}/{WIRE_FORMAT}): rerun with BALLAST_BLESS=1",
            path.display()
        );
        std::fs::write(&path, render(&log, &wire)).unwrap();
    }
}

/// A follower learns a forwarded write's outcome from the leader's encoded reply: every error must
/// arrive as itself (serde numbers variants around the skipped `Backend` one differently when
/// encoding and decoding, which once turned each auth error into the next one).
#[test]
fn every_store_error_survives_the_wire() {
    for err in store_errors() {
        let text = err.to_string();
        let back: Reply = ballast_raft::codec::decode("reply", &encode(&Reply::Store(Err(err))))
            .expect("a reply decodes");
        match back {
            Reply::Store(Err(got)) => assert_eq!(got.to_string(), text),
            other => panic!("{text}: decoded as {other:?}"),
        }
    }
}
