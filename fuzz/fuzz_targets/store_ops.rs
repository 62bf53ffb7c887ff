//! The store (in memory) driven by arbitrary operation sequences: no panic, errors only etcd's,
//! the revision never goes back, and a put is readable at its revision.

#![no_main]

use ballast_store::{
    CompareResult, CompareTarget, Compare, DeleteRangeRequest, MemStore, PutRequest, RangeRequest, RequestOp, StoreOptions,
    TxnRequest,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fn key(b: u8) -> Bytes {
    // A small keyspace with the awkward bytes (0x00, 0xff) in it.
    Bytes::from(vec![b'k', [0u8, 1, b'a', 0xff][usize::from(b % 4)], b % 7])
}

fuzz_target!(|ops: Vec<(u8, u8, u8, u8)>| {
    let store = MemStore::in_memory(StoreOptions { sync: false, ..StoreOptions::default() }).unwrap();
    let mut last_rev = store.revision();
    for (op, a, b, c) in ops.into_iter().take(200) {
        let result: Result<(), ballast_store::StoreError> = match op % 6 {
            0 => store.put(PutRequest::new(key(a), vec![b; usize::from(c % 8)])).map(|r| {
                let got = store.range(&RangeRequest { revision: r.revision, ..RangeRequest::key(key(a)) }).unwrap();
                assert_eq!(got.kvs[0].mod_revision, r.revision);
            }),
            1 => store.delete_range(DeleteRangeRequest::range(key(a), if b % 3 == 0 { Bytes::from_static(b"\0") } else { key(b) })).map(drop),
            2 => store
                .range(&RangeRequest { limit: i64::from(c % 4), revision: i64::from(b % 16), ..RangeRequest::range(key(a), key(b)) })
                .map(drop),
            3 => {
                let put = |k| RequestOp::Put(PutRequest::new(key(k), "t"));
                let del = |k: u8, e: u8| RequestOp::DeleteRange(DeleteRangeRequest::range(key(k), key(e)));
                let nested = RequestOp::Txn(TxnRequest { success: vec![put(c)], failure: vec![del(c, a)], ..Default::default() });
                let txn = TxnRequest {
                    compare: vec![Compare::new(key(a), CompareResult::Greater, CompareTarget::Version(i64::from(b % 3)))],
                    success: vec![put(b), nested],
                    failure: vec![del(a, b), put(c)],
                };
                store.txn(txn).map(drop)
            }
            4 => store.compact(i64::from(a % 32)).map(drop),
            _ => store.lease_grant(0, i64::from(a)).map(drop),
        };
        if let Err(err) = result {
            assert!(!err.is_fatal(), "{err}");
            assert!(err.to_string().starts_with("etcdserver: "), "{err}");
        }
        assert!(store.revision() >= last_rev);
        last_rev = store.revision();
    }
});
