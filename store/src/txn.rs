//! Transaction rules that need no storage: etcd's request checks (`checkTxnRequest`, the
//! max-ops rule, empty keys, ignore_value/ignore_lease) and the duplicate-key rule
//! (`checkIntervals`), plus comparing one key against a `Compare`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::Bytes;

use crate::error::{Result, StoreError};
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

/// etcd's `checkTxnRequest`: a nested txn gets what its parent left of the budget
/// (`max_ops` minus the parent's own count), so one request cannot multiply it by nesting.
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
            RequestOp::Txn(t) => check_txn_ops(t, max_ops - ops)?,
        }
    }
    Ok(())
}

/// The deleted intervals of one branch level and what it nests, merged into disjoint half-open
/// `[start, end)` byte intervals keyed by start (etcd keeps an interval tree). A put is checked
/// with one ordered lookup, so a txn with many deletes and puts costs `n log n`, not `n * m`.
#[derive(Debug, Default)]
struct Dels(BTreeMap<Bytes, Bytes>);

impl Dels {
    /// Adds a delete's range in etcd's notation: an empty `end` is the key alone; an `end` at or
    /// below `start` is empty, and so is a from-key delete (end `"\0"`), which etcd checks as a
    /// string interval: it never conflicts, though it deletes the key when run after the put (the
    /// differential test against etcd 3.4 confirms both).
    fn insert(&mut self, start: &Bytes, end: &Bytes) {
        let end = if end.is_empty() {
            let mut next = start.to_vec();
            next.push(0);
            Bytes::from(next)
        } else {
            end.clone()
        };
        if end <= *start {
            return;
        }
        self.merge(start.clone(), end);
    }

    fn merge(&mut self, mut start: Bytes, mut end: Bytes) {
        if let Some((s, e)) = self.0.range(..=start.clone()).next_back() {
            if *e >= start {
                start = s.clone();
                end = end.max(e.clone());
            }
        }
        let covered: Vec<Bytes> = self
            .0
            .range(start.clone()..=end.clone())
            .map(|(s, _)| s.clone())
            .collect();
        for s in covered {
            if let Some(e) = self.0.remove(&s) {
                end = end.max(e);
            }
        }
        self.0.insert(start, end);
    }

    fn extend(&mut self, other: Dels) {
        for (s, e) in other.0 {
            self.merge(s, e);
        }
    }

    fn hits(&self, key: &[u8]) -> bool {
        self.0
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .is_some_and(|(_, e)| key < e.as_ref())
    }
}

/// etcd's `checkIntervals`: no key may be put twice, or put and deleted, in what one execution of
/// the branch can run; the two branches of a nested txn may each put the same key.
fn intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Bytes>, Dels)> {
    let mut dels = Dels::default();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.insert(&d.key, &d.range_end);
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
        dels.extend(dels_then);
        dels.extend(dels_else);
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
    fn a_nested_txn_gets_what_its_parent_left_of_the_op_budget() {
        let puts = |prefix: &str, n: usize| -> Vec<RequestOp> {
            (0..n).map(|i| put(&format!("{prefix}{i}"))).collect()
        };
        // etcd's checkTxnRequest: 100 ops at the top leave 28 for a nested txn.
        let with_nested = |n: usize| {
            let mut ops = puts("top", 99);
            ops.push(txn(puts("inner", n), vec![]));
            check(ops)
        };
        assert_eq!(with_nested(28), Ok(()));
        assert_eq!(
            with_nested(29).unwrap_err(),
            "etcdserver: too many operations in txn request"
        );
        // Two levels: 64 + 63 leave 1 for the innermost.
        let deep = |n: usize| {
            let mut mid = puts("mid", 62);
            mid.push(txn(puts("deep", n), vec![]));
            let mut top = puts("top", 63);
            top.push(txn(mid, vec![]));
            check(top)
        };
        assert_eq!(deep(1), Ok(()));
        assert!(deep(2).is_err());
    }

    /// The interval set answers as the plain definition (every delete's range, from-key and
    /// inverted ones empty) over random ranges on a small alphabet, merges and containment included.
    #[test]
    fn deleted_intervals_match_their_definition() {
        let alphabet: [&[u8]; 8] = [b"a", b"ab", b"b", b"b\0", b"ba", b"c", b"\0", b""];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..2000 {
            let mut dels = Dels::default();
            let mut plain: Vec<(Bytes, Bytes)> = Vec::new();
            for _ in 0..next(6) {
                let start = Bytes::from_static(alphabet[next(6)]);
                let end = Bytes::from_static(alphabet[next(8)]);
                dels.insert(&start, &end);
                plain.push((start, end));
            }
            for key in &alphabet[..6] {
                let want = plain.iter().any(|(s, e)| {
                    let (s, e) = (s.as_ref(), e.as_ref());
                    if e.is_empty() {
                        key == &s
                    } else {
                        e != b"\0" && *key >= s && *key < e
                    }
                });
                assert_eq!(dels.hits(key), want, "{plain:?} {key:?}");
            }
        }
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
