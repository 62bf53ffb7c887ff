//! The traffic's clients: sequential clients that send gets, ranges, puts, deletes,
//! compare-and-swap txns and lease grant/attach/revoke, recording each request with its outcome,
//! and the last write of a run, which the watches must deliver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballast_check::history::{Input, Output};
use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use ballast_proto::pb::lease_client::LeaseClient;
use rand::rngs::StdRng;
use rand::Rng;

use super::{key, outcome, revision, to_kv, Shared, LEASE_TTL, PREFIX, PREFIX_END};

/// One sequential client: picks an operation, sends it, records it; after an unknown outcome it
/// moves to the next member (as a client library fails over).
pub(super) async fn client(shared: Arc<Shared>, c: usize, mut rng: StdRng) {
    let timeout = shared.config.request_timeout;
    let keys = shared.config.keys;
    let mut member = c;
    let mut kv = KvClient::new(shared.channel(member));
    let mut lease = LeaseClient::new(shared.channel(member));
    // The mod revision this client last saw per key (the "expected" of its next CAS there).
    let mut seen: HashMap<usize, i64> = HashMap::new();
    // This client's lease and the one key it attaches it to (the checker needs one key per lease).
    let mut held: Option<(i64, usize)> = None;
    let mut next_lease = 1i64;
    while !shared.stopped() {
        let k = rng.gen_range(0..keys);
        let call = shared.now();
        let roll = rng.gen_range(0..100);
        let (input, output) = if roll < 30 {
            let req = pb::RangeRequest {
                key: key(k).into(),
                serializable: shared.config.serializable_reads,
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                let kv = r.kvs.first().map(to_kv);
                if let Some(kv) = &kv {
                    seen.insert(k, kv.mod_revision);
                }
                Output::Get {
                    kv,
                    revision: revision(&r.header),
                }
            });
            (Input::Get { key: key(k) }, out)
        } else if roll < 38 {
            let req = pb::RangeRequest {
                key: PREFIX.into(),
                range_end: PREFIX_END.into(),
                serializable: shared.config.serializable_reads,
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                Output::Range {
                    kvs: r.kvs.iter().map(to_kv).collect(),
                    revision: revision(&r.header),
                }
            });
            (
                Input::Range {
                    start: PREFIX.into(),
                    end: PREFIX_END.into(),
                },
                out,
            )
        } else if roll < 63 {
            let value = shared.value(c);
            let req = pb::PutRequest {
                key: key(k).into(),
                value: value.clone().into(),
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.put(req)).await;
            let out = outcome(res, |r| Output::Put {
                revision: revision(&r.into_inner().header),
            });
            (
                Input::Put {
                    key: key(k),
                    value,
                    lease: 0,
                },
                out,
            )
        } else if roll < 71 {
            let req = pb::DeleteRangeRequest {
                key: key(k).into(),
                ..Default::default()
            };
            let res = tokio::time::timeout(timeout, kv.delete_range(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                Output::Delete {
                    deleted: r.deleted,
                    revision: revision(&r.header),
                }
            });
            (Input::Delete { key: key(k) }, out)
        } else if roll < 88 {
            let expected = if rng.gen_bool(0.8) {
                seen.get(&k).copied().unwrap_or(0)
            } else {
                rng.gen_range(0..3)
            };
            let value = shared.value(c);
            let req = pb::TxnRequest {
                compare: vec![pb::Compare {
                    result: pb::compare::CompareResult::Equal as i32,
                    target: pb::compare::CompareTarget::Mod as i32,
                    key: key(k).into(),
                    target_union: Some(pb::compare::TargetUnion::ModRevision(expected)),
                    ..Default::default()
                }],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key(k).into(),
                        value: value.clone().into(),
                        ..Default::default()
                    })),
                }],
                failure: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
                        key: key(k).into(),
                        ..Default::default()
                    })),
                }],
            };
            let res = tokio::time::timeout(timeout, kv.txn(req)).await;
            let out = outcome(res, |r| {
                let r = r.into_inner();
                let kv = r.responses.iter().find_map(|op| match &op.response {
                    Some(pb::response_op::Response::ResponseRange(range)) => {
                        range.kvs.first().map(to_kv)
                    }
                    _ => None,
                });
                match &kv {
                    Some(kv) => seen.insert(k, kv.mod_revision),
                    None if !r.succeeded => seen.insert(k, 0),
                    None => seen.insert(k, revision(&r.header)),
                };
                Output::Cas {
                    succeeded: r.succeeded,
                    kv,
                    revision: revision(&r.header),
                }
            });
            (
                Input::Cas {
                    key: key(k),
                    expected_mod_revision: expected,
                    value,
                },
                out,
            )
        } else {
            match held {
                None => {
                    let id = (c as i64 + 1) * 1_000_000 + next_lease;
                    next_lease += 1;
                    let req = pb::LeaseGrantRequest { id, ttl: LEASE_TTL };
                    let res = tokio::time::timeout(timeout, lease.lease_grant(req)).await;
                    let out = outcome(res, |r| Output::LeaseGrant {
                        revision: revision(&r.into_inner().header),
                    });
                    // Even an unknown grant is used: a put with it is rejected if it never happened.
                    held = Some((id, k));
                    (Input::LeaseGrant { lease: id }, out)
                }
                Some((id, lk)) if rng.gen_bool(0.6) => {
                    let value = shared.value(c);
                    let req = pb::PutRequest {
                        key: key(lk).into(),
                        value: value.clone().into(),
                        lease: id,
                        ..Default::default()
                    };
                    let res = tokio::time::timeout(timeout, kv.put(req)).await;
                    let out = outcome(res, |r| Output::Put {
                        revision: revision(&r.into_inner().header),
                    });
                    (
                        Input::Put {
                            key: key(lk),
                            value,
                            lease: id,
                        },
                        out,
                    )
                }
                Some((id, _)) => {
                    held = None;
                    let res = tokio::time::timeout(
                        timeout,
                        lease.lease_revoke(pb::LeaseRevokeRequest { id }),
                    )
                    .await;
                    let out = outcome(res, |r| Output::LeaseRevoke {
                        revision: revision(&r.into_inner().header),
                    });
                    (Input::LeaseRevoke { lease: id }, out)
                }
            }
        };
        let unknown = output == Output::Unknown;
        shared.record(c, input, output, call);
        if unknown {
            member += 1;
            kv = KvClient::new(shared.channel(member));
            lease = LeaseClient::new(shared.channel(member));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The last write of a run, recorded like any other; retried across members until answered.
/// Returns its revision (0 if it never was answered: then watches are not waited for).
pub(super) async fn final_write(shared: &Shared) -> i64 {
    let client = shared.config.clients;
    let deadline = Instant::now() + Duration::from_secs(20);
    for member in 0.. {
        let value = shared.value(client);
        let req = pb::PutRequest {
            key: key(0).into(),
            value: value.clone().into(),
            ..Default::default()
        };
        let call = shared.now();
        let res = tokio::time::timeout(
            shared.config.request_timeout,
            KvClient::new(shared.channel(member)).put(req),
        )
        .await;
        let out = outcome(res, |r| Output::Put {
            revision: revision(&r.into_inner().header),
        });
        let rev = match out {
            Output::Put { revision } => revision,
            _ => 0,
        };
        shared.record(
            client,
            Input::Put {
                key: key(0),
                value,
                lease: 0,
            },
            out,
            call,
        );
        if rev > 0 || Instant::now() > deadline {
            return rev;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}
