//! Field-by-field conversion between the wire messages (`ballast_proto`) and the store's types.
//! Keys and values are `Bytes` on both sides, so nothing here copies them.

use ballast_store as store;

use crate::{authpb, mvccpb, pb};

/// A request field holds an enum value etcd's protocol does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEnum {
    pub field: &'static str,
    pub value: i32,
}

impl std::fmt::Display for UnknownEnum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "etcdserver: unknown {} value {}", self.field, self.value)
    }
}

impl std::error::Error for UnknownEnum {}

pub type ConvertResult<T> = Result<T, UnknownEnum>;

fn enum_value<T: TryFrom<i32>>(field: &'static str, value: i32) -> ConvertResult<T> {
    T::try_from(value).map_err(|_| UnknownEnum { field, value })
}

pub fn permission(p: authpb::Permission) -> ConvertResult<store::Permission> {
    use authpb::permission::Type;
    let kind = match enum_value("permType", p.perm_type)? {
        Type::Read => store::PermKind::Read,
        Type::Write => store::PermKind::Write,
        Type::Readwrite => store::PermKind::ReadWrite,
    };
    Ok(store::Permission {
        kind,
        key: p.key,
        range_end: p.range_end,
    })
}

pub fn permission_to_pb(p: &store::Permission) -> authpb::Permission {
    use authpb::permission::Type;
    let kind = match p.kind {
        store::PermKind::Read => Type::Read,
        store::PermKind::Write => Type::Write,
        store::PermKind::ReadWrite => Type::Readwrite,
    };
    authpb::Permission {
        perm_type: kind as i32,
        key: p.key.clone(),
        range_end: p.range_end.clone(),
    }
}

pub fn range_request(r: pb::RangeRequest) -> ConvertResult<store::RangeRequest> {
    use pb::range_request::{SortOrder, SortTarget};
    Ok(store::RangeRequest {
        key: r.key,
        range_end: r.range_end,
        limit: r.limit,
        revision: r.revision,
        sort_order: match enum_value("sort_order", r.sort_order)? {
            SortOrder::None => store::SortOrder::None,
            SortOrder::Ascend => store::SortOrder::Ascend,
            SortOrder::Descend => store::SortOrder::Descend,
        },
        sort_target: match enum_value("sort_target", r.sort_target)? {
            SortTarget::Key => store::SortTarget::Key,
            SortTarget::Version => store::SortTarget::Version,
            SortTarget::Create => store::SortTarget::Create,
            SortTarget::Mod => store::SortTarget::Mod,
            SortTarget::Value => store::SortTarget::Value,
        },
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

pub fn put_request(r: pb::PutRequest) -> store::PutRequest {
    store::PutRequest {
        key: r.key,
        value: r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub fn delete_request(r: pb::DeleteRangeRequest) -> store::DeleteRangeRequest {
    store::DeleteRangeRequest {
        key: r.key,
        range_end: r.range_end,
        prev_kv: r.prev_kv,
    }
}

fn compare(c: pb::Compare) -> ConvertResult<store::Compare> {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let result = match enum_value("compare result", c.result)? {
        CompareResult::Equal => store::CompareResult::Equal,
        CompareResult::Greater => store::CompareResult::Greater,
        CompareResult::Less => store::CompareResult::Less,
        CompareResult::NotEqual => store::CompareResult::NotEqual,
    };
    // As etcd: the `target` field says what is compared; the union's getter for that target gives
    // the value, or the zero value when the union holds something else.
    let union = c.target_union;
    let int = |pick: fn(&TargetUnion) -> Option<i64>| union.as_ref().and_then(pick).unwrap_or(0);
    let target = match enum_value("compare target", c.target)? {
        CompareTarget::Version => store::CompareTarget::Version(int(|u| match u {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Create => store::CompareTarget::Create(int(|u| match u {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Mod => store::CompareTarget::Mod(int(|u| match u {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Lease => store::CompareTarget::Lease(int(|u| match u {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Value => store::CompareTarget::Value(match union {
            Some(TargetUnion::Value(v)) => v,
            _ => bytes::Bytes::new(),
        }),
    };
    Ok(store::Compare {
        key: c.key,
        range_end: c.range_end,
        result,
        target,
    })
}

fn request_op(op: pb::RequestOp) -> ConvertResult<Option<store::RequestOp>> {
    use pb::request_op::Request;
    Ok(match op.request {
        Some(Request::RequestRange(r)) => Some(store::RequestOp::Range(range_request(r)?)),
        Some(Request::RequestPut(r)) => Some(store::RequestOp::Put(put_request(r))),
        Some(Request::RequestDeleteRange(r)) => {
            Some(store::RequestOp::DeleteRange(delete_request(r)))
        }
        Some(Request::RequestTxn(r)) => Some(store::RequestOp::Txn(txn_request(r)?)),
        // etcd skips an empty RequestOp and answers it with an empty ResponseOp.
        None => None,
    })
}

fn ops(ops: Vec<pb::RequestOp>) -> ConvertResult<Vec<store::RequestOp>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        if let Some(op) = request_op(op)? {
            out.push(op);
        }
    }
    Ok(out)
}

pub fn txn_request(t: pb::TxnRequest) -> ConvertResult<store::TxnRequest> {
    Ok(store::TxnRequest {
        compare: t
            .compare
            .into_iter()
            .map(compare)
            .collect::<ConvertResult<_>>()?,
        success: ops(t.success)?,
        failure: ops(t.failure)?,
    })
}

/// True when no branch of the txn (nested ones included) can change anything.
pub fn txn_is_read_only(t: &store::TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).all(|op| match op {
        store::RequestOp::Range(_) => true,
        store::RequestOp::Txn(t) => txn_is_read_only(t),
        store::RequestOp::Put(_) | store::RequestOp::DeleteRange(_) => false,
    })
}

pub fn key_value(kv: store::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub fn event(ev: store::Event) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match ev.kind {
            store::EventType::Put => mvccpb::event::EventType::Put as i32,
            store::EventType::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(key_value(ev.kv)),
        prev_kv: ev.prev_kv.map(key_value),
    }
}

/// The store answers at a revision; the caller supplies the header for it.
pub fn range_response(r: store::RangeResponse, header: pb::ResponseHeader) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(header),
        kvs: r.kvs.into_iter().map(key_value).collect(),
        more: r.more,
        count: r.count,
    }
}

pub fn put_response(r: store::PutResponse, header: pb::ResponseHeader) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(header),
        prev_kv: r.prev_kv.map(key_value),
    }
}

pub fn delete_response(
    r: store::DeleteRangeResponse,
    header: pb::ResponseHeader,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(header),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(key_value).collect(),
    }
}

/// A txn response. As etcd's applier builds them, only the outer header is complete: a nested
/// range/put/delete response's header carries just the revision, and a nested txn's is empty.
pub fn txn_response(r: store::TxnResponse, header: pb::ResponseHeader) -> pb::TxnResponse {
    let mut resp = nested_txn_response(r);
    resp.header = Some(header);
    resp
}

/// Each nested operation reports the txn's revision as of that operation, as etcd's does: the
/// old revision until the txn first changes something, the new one after.
fn nested_txn_response(r: store::TxnResponse) -> pb::TxnResponse {
    use pb::response_op::Response;
    let inner = |revision| pb::ResponseHeader {
        revision,
        ..Default::default()
    };
    let responses = r
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                store::ResponseOp::Range(r) => {
                    let header = inner(r.revision);
                    Response::ResponseRange(range_response(r, header))
                }
                store::ResponseOp::Put(r) => {
                    let header = inner(r.revision);
                    Response::ResponsePut(put_response(r, header))
                }
                store::ResponseOp::DeleteRange(r) => {
                    let header = inner(r.revision);
                    Response::ResponseDeleteRange(delete_response(r, header))
                }
                store::ResponseOp::Txn(r) => Response::ResponseTxn(nested_txn_response(r)),
            }),
        })
        .collect();
    pb::TxnResponse {
        header: Some(pb::ResponseHeader::default()),
        succeeded: r.succeeded,
        responses,
    }
}

pub fn watch_request(c: &pb::WatchCreateRequest) -> ConvertResult<store::WatchRequest> {
    use pb::watch_create_request::FilterType;
    let mut req = store::WatchRequest {
        key: c.key.clone(),
        range_end: c.range_end.clone(),
        start_revision: c.start_revision,
        prev_kv: c.prev_kv,
        no_put: false,
        no_delete: false,
    };
    for &f in &c.filters {
        match enum_value("watch filter", f)? {
            FilterType::Noput => req.no_put = true,
            FilterType::Nodelete => req.no_delete = true,
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};

    #[test]
    fn compare_takes_the_value_named_by_target() {
        let c = pb::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: "k".into(),
            target_union: Some(TargetUnion::Version(7)),
            range_end: Default::default(),
        };
        // etcd reads the union through GetModRevision(): another variant reads as 0.
        assert_eq!(compare(c).unwrap().target, store::CompareTarget::Mod(0));
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let r = pb::RangeRequest {
            key: "a".into(),
            sort_order: 9,
            ..Default::default()
        };
        let err = range_request(r).unwrap_err();
        assert_eq!(err.to_string(), "etcdserver: unknown sort_order value 9");
    }

    #[test]
    fn read_only_txns_are_recognised_through_nesting() {
        let range = store::RequestOp::Range(store::RangeRequest::key("a"));
        let put = store::RequestOp::Put(store::PutRequest::new("a", "b"));
        let nested = |op| {
            store::RequestOp::Txn(store::TxnRequest {
                success: vec![op],
                ..Default::default()
            })
        };
        let txn = |ops| store::TxnRequest {
            failure: ops,
            ..Default::default()
        };
        assert!(txn_is_read_only(&txn(vec![
            range.clone(),
            nested(range.clone())
        ])));
        assert!(!txn_is_read_only(&txn(vec![range, nested(put)])));
    }
}
