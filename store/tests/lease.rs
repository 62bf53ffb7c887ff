//! Lease behaviour on both backends: the minimum TTL, attach and detach, TimeToLive with keys,
//! revoke deleting every key in one revision, and expiry driven by the store's clock.

mod common;

use std::time::{Duration, Instant};

use ballast_store::*;
use bytes::Bytes;
use common::Open;

fn grant_attach_revoke<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let (id, ttl) = s.lease_grant(0, 1).unwrap();
    assert_eq!(ttl, 2, "raised to the minimum TTL");
    assert!(matches!(
        s.lease_grant(id, 10),
        Err(StoreError::LeaseExists)
    ));
    assert!(matches!(
        s.put(PutRequest {
            lease: 424242,
            ..PutRequest::new("x", "1")
        }),
        Err(StoreError::LeaseNotFound)
    ));
    for k in ["a", "b", "c"] {
        s.put(PutRequest {
            lease: id,
            ..PutRequest::new(k, "v")
        })
        .unwrap();
    }
    // Moving a key to no lease detaches it; ignore_lease keeps the attachment.
    s.put(PutRequest::new("c", "v2")).unwrap();
    s.put(PutRequest {
        ignore_lease: true,
        ..PutRequest::new("b", "v2")
    })
    .unwrap();
    let status = s.lease_time_to_live(id, true);
    assert_eq!(status.keys, vec![Bytes::from("a"), Bytes::from("b")]);
    assert_eq!((status.granted_ttl, status.ttl), (2, 2));
    h.clock.advance(1500);
    assert_eq!(s.lease_time_to_live(id, false).ttl, 0);
    assert!(s.expired_leases().is_empty());
    let mut w = s
        .watch(WatchRequest {
            key: Bytes::from("a"),
            range_end: Bytes::from("z"),
            ..Default::default()
        })
        .unwrap();
    let before = s.revision();
    let rev = s.lease_revoke(id).unwrap();
    assert_eq!(rev, before + 1, "one revision for all the lease's keys");
    let resp = w.try_recv().unwrap();
    let deleted: Vec<_> = resp
        .events
        .iter()
        .map(|e| (e.kv.key.clone(), e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(
        deleted,
        vec![
            (Bytes::from("a"), EventType::Delete, rev),
            (Bytes::from("b"), EventType::Delete, rev)
        ]
    );
    assert_eq!(
        s.range(&RangeRequest::range("a", "z"))
            .unwrap()
            .kvs
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>(),
        vec![Bytes::from("c")]
    );
    assert_eq!(s.lease_time_to_live(id, true).ttl, -1);
    assert!(matches!(s.lease_revoke(id), Err(StoreError::LeaseNotFound)));
    assert!(matches!(
        s.lease_keep_alive(id),
        Err(StoreError::LeaseNotFound)
    ));
    assert!(matches!(
        s.lease_grant(0, MAX_LEASE_TTL + 1),
        Err(StoreError::LeaseTtlTooLarge)
    ));
    // A lease with no keys revokes without a new revision.
    let (empty, _) = s.lease_grant(0, 60).unwrap();
    let rev = s.revision();
    assert_eq!(s.lease_revoke(empty).unwrap(), rev);
}

/// With `expire_leases`, the store's own thread revokes a lease once its clock passes the deadline.
fn expiry_thread_revokes<B: Open>() {
    let h = B::harness(|o| o.expire_leases = true);
    let s = &h.store;
    let (id, _) = s.lease_grant(0, 10).unwrap();
    s.put(PutRequest {
        lease: id,
        ..PutRequest::new("session", "alive")
    })
    .unwrap();
    h.clock.advance(9_000);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.lease_leases(), vec![id], "not expired before its TTL");
    assert_eq!(s.lease_keep_alive(id).unwrap(), 10);
    h.clock.advance(9_999);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        s.lease_leases(),
        vec![id],
        "keep-alive restarted the countdown"
    );
    h.clock.advance(2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.lease_leases().is_empty() {
        assert!(Instant::now() < deadline, "lease never expired");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(s
        .range(&RangeRequest::key("session"))
        .unwrap()
        .kvs
        .is_empty());
}

/// A keep-alive that comes after the deadline finds no lease, though nobody revoked it yet: the
/// revocation is on its way (etcd's `Renew` waits for it, then answers "lease not found"). Renewed,
/// it answered a TTL for a lease that the leader's revocation then deleted.
fn no_keep_alive_after_expiry<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let leases: Vec<i64> = (0..300).map(|_| s.lease_grant(0, 2).unwrap().0).collect();
    h.clock.advance(1_999);
    assert_eq!(
        s.lease_keep_alive(leases[0]).unwrap(),
        2,
        "alive before its deadline"
    );
    h.clock.advance(1);
    assert_eq!(s.expired_leases().len(), 299);
    for &id in &leases[1..] {
        assert!(
            matches!(s.lease_keep_alive(id), Err(StoreError::LeaseNotFound)),
            "lease {id} renewed after its deadline"
        );
    }
    assert_eq!(s.expired_leases().len(), 299, "still to be revoked");
    assert_eq!(s.lease_keep_alive(leases[0]).unwrap(), 2);
}

both_backends!(
    grant_attach_revoke,
    expiry_thread_revokes,
    no_keep_alive_after_expiry
);
