//! Transaction rules that need no storage: etcd's request checks (`checkTxnRequest`, the
//! max-ops rule, empty keys, ignore_value/ignore_lease) and the duplicate-key rule
//! (`checkIntervals`), plus comparing one key against a `Compare`.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::range::KeyRange;
use crate::types::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};

pub fn check_range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

pub fn check_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

/// etcd's `checkTxnRequest` followed by its `checkIntervals` on both branches.
pub fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    check_txn_ops(req, max_ops)?;
    intervals(&req.success)?;
    intervals(&req.failure)?;
    Ok(())
}

fn check_txn_ops(req: &TxnRequest, max_ops: usize) -> Result<()> {
    let ops = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if ops > max_ops {
        return Err(StoreError::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) => check_range(r)?,
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) => check_delete(d)?,
            RequestOp::Txn(t) => check_txn_ops(t, max_ops)?,
        }
    }
    Ok(())
}

/// The deleted intervals of one branch level, as owned `(start, end)` pairs in etcd's notation.
#[derive(Debug, Default)]
struct Dels(Vec<(Bytes, Bytes)>);

impl Dels {
    /// etcd checks a put against `[start, end)` as a string interval, where a from-key delete
    /// (end `"\0"`) is an empty interval: it never conflicts, though it deletes the key when run
    /// after the put (the differential test against etcd 3.4 confirms both).
    fn hits(&self, key: &[u8]) -> bool {
        self.0
            .iter()
            .any(|(s, e)| e.as_ref() != b"\0" && KeyRange::new(s, e).contains(key))
    }
}

/// etcd's `checkIntervals`: no key may be put twice, or put and deleted, in what one execution of
/// the branch can run; the two branches of a nested txn may each put the same key.
fn intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Bytes>, Dels)> {
    let mut dels = Dels::default();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.0.push((d.key.clone(), d.range_end.clone()));
        }
    }
    let mut puts: BTreeSet<Bytes> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.hits(k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || dels.hits(k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || dels.hits(&p.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// Whether one key's current version (the zero `KeyValue` for a missing key) satisfies `c`.
pub fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value.as_ref().cmp(v.as_ref()),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// etcd's `applyCompare` over the keys the compare's range holds: every one must satisfy it; with no
/// key, a VALUE compare fails and the others compare the zero `KeyValue`.
pub fn compare_all(c: &Compare, kvs: &[KeyValue]) -> bool {
    if kvs.is_empty() {
        return !matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, &KeyValue::default());
    }
    kvs.iter().all(|kv| compare_kv(c, kv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CompareResult::*;

    fn put(k: &str) -> RequestOp {
        RequestOp::Put(PutRequest::new(k.to_owned(), "v"))
    }
    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest::range(k.to_owned(), end.to_owned()))
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp::Txn(TxnRequest {
            compare: vec![],
            success,
            failure,
        })
    }
    fn check(ops: Vec<RequestOp>) -> std::result::Result<(), String> {
        check_txn(
            &TxnRequest {
                compare: vec![],
                success: ops,
                failure: vec![],
            },
            128,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn duplicate_key_rules_match_etcd() {
        let dup = Err("etcdserver: duplicate key given in txn request".to_owned());
        assert_eq!(check(vec![put("a"), put("b")]), Ok(()));
        assert_eq!(check(vec![put("a"), put("a")]), dup);
        assert_eq!(check(vec![put("b"), del("a", "c")]), dup);
        assert_eq!(check(vec![put("c"), del("a", "c")]), Ok(()));
        assert_eq!(
            check(vec![put("z"), del("a", "\0")]),
            Ok(()),
            "etcd: a from-key delete is an empty interval"
        );
        assert_eq!(
            check(vec![txn(vec![put("z")], vec![]), del("a", "\0")]),
            Ok(())
        );
        assert_eq!(check(vec![del("a", "c"), del("b", "d")]), Ok(()));
        // Then/else of one nested txn may put the same key; two nested txns may not.
        assert_eq!(check(vec![txn(vec![put("a")], vec![put("a")])]), Ok(()));
        assert_eq!(
            check(vec![
                txn(vec![put("a")], vec![]),
                txn(vec![put("a")], vec![])
            ]),
            dup
        );
        assert_eq!(check(vec![put("a"), txn(vec![put("a")], vec![])]), dup);
        assert_eq!(check(vec![put("a"), txn(vec![del("a", "")], vec![])]), dup);
    }

    #[test]
    fn op_limits_and_empty_keys() {
        let many: Vec<_> = (0..129).map(|i| put(&format!("k{i}"))).collect();
        assert_eq!(
            check(many).unwrap_err(),
            "etcdserver: too many operations in txn request"
        );
        let nested_empty = vec![txn(vec![RequestOp::Range(RangeRequest::default())], vec![])];
        assert_eq!(
            check(nested_empty).unwrap_err(),
            "etcdserver: key is not provided"
        );
        let ignore = PutRequest {
            ignore_value: true,
            ..PutRequest::new("k", "v")
        };
        assert_eq!(
            check(vec![RequestOp::Put(ignore)]).unwrap_err(),
            "etcdserver: value is provided"
        );
    }

    #[test]
    fn compares_on_missing_keys() {
        let missing: Vec<KeyValue> = vec![];
        assert!(compare_all(
            &Compare::new("k", Equal, CompareTarget::Version(0)),
            &missing
        ));
        assert!(compare_all(
            &Compare::new("k", Equal, CompareTarget::Mod(0)),
            &missing
        ));
        assert!(!compare_all(
            &Compare::new("k", Equal, CompareTarget::Value(Bytes::new())),
            &missing
        ));
        assert!(!compare_all(
            &Compare::new("k", NotEqual, CompareTarget::Value(Bytes::from("x"))),
            &missing
        ));
        let kv = KeyValue {
            version: 2,
            value: Bytes::from("b"),
            ..KeyValue::default()
        };
        assert!(compare_all(
            &Compare::new("k", Greater, CompareTarget::Version(1)),
            std::slice::from_ref(&kv)
        ));
        assert!(compare_all(
            &Compare::new("k", Less, CompareTarget::Value(Bytes::from("c"))),
            std::slice::from_ref(&kv)
        ));
    }
}
