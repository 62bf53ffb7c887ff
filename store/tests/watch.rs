//! Watch behaviour, on both backends: keys, ranges and prefixes; replay from a start revision then
//! live events; prev_kv and filters; progress; cancel; compacted starts; one revision never split;
//! ten thousand watchers on one prefix; and a slow watcher whose buffer stays bounded while it
//! still gets every event, in order, exactly once.

mod common;

use std::time::{Duration, Instant};

use ballast_store::*;
use bytes::Bytes;
use common::Open;

fn put<B: backend::Backend>(s: &Store<B>, k: &str, v: &str) -> i64 {
    s.put(PutRequest::new(k.to_owned(), v.to_owned()))
        .unwrap()
        .revision
}

fn watch_req(key: &str, end: &str, start: i64) -> WatchRequest {
    WatchRequest {
        key: Bytes::from(key.to_owned()),
        range_end: Bytes::from(end.to_owned()),
        start_revision: start,
        ..Default::default()
    }
}

/// The next response, failing the test after a few seconds instead of hanging.
fn recv(w: &mut Watcher) -> Option<WatchResponse> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match w.try_recv() {
            Some(resp) => return Some(resp),
            None if w.is_closed() => return None,
            None if Instant::now() > deadline => panic!("no watch response within 10 s"),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Receives until `n` events arrived (or fails after a few seconds).
fn events(w: &mut Watcher, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n {
        match w.try_recv() {
            Some(resp) => {
                assert!(!resp.canceled, "unexpected cancel: {resp:?}");
                out.extend(resp.events);
            }
            None if Instant::now() > deadline => {
                panic!("timed out with {} of {n} events: {out:?}", out.len())
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    out
}

fn keys_revs(evs: &[Event]) -> Vec<(String, i64, EventType)> {
    evs.iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.kv.key).into_owned(),
                e.kv.mod_revision,
                e.kind,
            )
        })
        .collect()
}

fn assert_quiet(w: &mut Watcher) {
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(w.try_recv(), None);
}

fn key_range_and_prefix<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let mut key = s.watch(watch_req("a", "", 0)).unwrap();
    let mut range = s.watch(watch_req("a", "c", 0)).unwrap();
    let mut prefix = s
        .watch(WatchRequest {
            range_end: prefix_end(b"b"),
            ..watch_req("b", "", 0)
        })
        .unwrap();
    let mut from_key = s.watch(watch_req("b", "\0", 0)).unwrap();
    put(s, "a", "1"); // 2
    put(s, "b1", "1"); // 3
    put(s, "c", "1"); // 4
    s.delete_range(DeleteRangeRequest::key("a")).unwrap(); // 5
    use EventType::*;
    assert_eq!(
        keys_revs(&events(&mut key, 2)),
        vec![("a".into(), 2, Put), ("a".into(), 5, Delete)]
    );
    assert_eq!(
        keys_revs(&events(&mut range, 3)),
        vec![
            ("a".into(), 2, Put),
            ("b1".into(), 3, Put),
            ("a".into(), 5, Delete)
        ]
    );
    assert_eq!(
        keys_revs(&events(&mut prefix, 1)),
        vec![("b1".into(), 3, Put)]
    );
    assert_eq!(
        keys_revs(&events(&mut from_key, 2)),
        vec![("b1".into(), 3, Put), ("c".into(), 4, Put)]
    );
    for w in [&mut key, &mut range, &mut prefix, &mut from_key] {
        assert_quiet(w);
    }
}

fn history_then_live<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    for i in 0..10 {
        put(s, "k", &i.to_string()); // revisions 2..=11
    }
    let mut w = s.watch(watch_req("k", "", 4)).unwrap();
    let got = events(&mut w, 8);
    assert_eq!(
        got.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        (4..=11).collect::<Vec<_>>()
    );
    assert_eq!(got[0].kv.value, "2");
    assert_eq!(got[0].kv.version, 3);
    put(s, "k", "live"); // 12
    let live = events(&mut w, 1);
    assert_eq!(
        (live[0].kv.mod_revision, live[0].kv.value.clone()),
        (12, Bytes::from("live"))
    );
    // A start in the future waits for that revision.
    let mut future = s.watch(watch_req("k", "", 14)).unwrap();
    put(s, "k", "13");
    put(s, "k", "14");
    assert_eq!(events(&mut future, 1)[0].kv.mod_revision, 14);
    assert_quiet(&mut future);
    // The first revision a watch reports, which a watch moved to another store resumes from.
    assert_eq!((w.start_revision(), future.start_revision()), (4, 14));
    assert_eq!(
        s.watch(watch_req("k", "", 0)).unwrap().start_revision(),
        15,
        "from now: after revision 14"
    );
}

fn prev_kv_and_filters<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let mut with_prev = s
        .watch(WatchRequest {
            prev_kv: true,
            ..watch_req("k", "", 0)
        })
        .unwrap();
    let mut no_put = s
        .watch(WatchRequest {
            no_put: true,
            ..watch_req("k", "", 0)
        })
        .unwrap();
    let mut no_delete = s
        .watch(WatchRequest {
            no_delete: true,
            ..watch_req("k", "", 0)
        })
        .unwrap();
    put(s, "k", "1");
    put(s, "k", "2");
    s.delete_range(DeleteRangeRequest::key("k")).unwrap();
    let evs = events(&mut with_prev, 3);
    assert_eq!(evs[0].prev_kv, None);
    assert_eq!(evs[1].prev_kv.as_ref().unwrap().value, "1");
    assert_eq!(evs[2].prev_kv.as_ref().unwrap().value, "2");
    assert_eq!(
        evs[2].kv,
        KeyValue {
            key: Bytes::from("k"),
            mod_revision: 4,
            ..KeyValue::default()
        }
    );
    assert_eq!(
        keys_revs(&events(&mut no_put, 1)),
        vec![("k".into(), 4, EventType::Delete)]
    );
    let puts = events(&mut no_delete, 2);
    assert!(puts
        .iter()
        .all(|e| e.kind == EventType::Put && e.prev_kv.is_none()));
    assert_quiet(&mut no_put);
    assert_quiet(&mut no_delete);
    // prev_kv on replayed history too.
    let mut replay = s
        .watch(WatchRequest {
            prev_kv: true,
            ..watch_req("k", "", 3)
        })
        .unwrap();
    let evs = events(&mut replay, 2);
    assert_eq!(evs[0].prev_kv.as_ref().unwrap().value, "1");
    assert_eq!(evs[1].prev_kv.as_ref().unwrap().value, "2");
}

fn progress_and_cancel<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let mut w = s.watch(watch_req("k", "", 0)).unwrap();
    put(s, "other", "x"); // 2
    assert!(w.request_progress());
    let resp = recv(&mut w).unwrap();
    assert_eq!(
        (resp.revision, resp.events.len(), resp.canceled),
        (2, 0, false)
    );
    assert_eq!(s.watch_stats().watchers, 1);
    let id = w.id();
    drop(w);
    assert_eq!(
        s.watch_stats().watchers,
        0,
        "dropping the watcher cancels watch {id}"
    );
    // No watcher is left to receive this, and nothing breaks.
    put(s, "k", "after-cancel");
}

fn compacted_start_is_canceled<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    for i in 0..6 {
        put(s, "k", &i.to_string()); // 2..=7
    }
    s.compact(5).unwrap();
    let mut w = s.watch(watch_req("k", "", 3)).unwrap();
    let resp = recv(&mut w).unwrap();
    assert!(resp.canceled);
    assert_eq!(resp.compact_revision, 5);
    assert_eq!(recv(&mut w), None, "a canceled watch ends");
    // Starting exactly at the compaction revision still works.
    let mut ok = s.watch(watch_req("k", "", 5)).unwrap();
    assert_eq!(
        events(&mut ok, 3)
            .iter()
            .map(|e| e.kv.mod_revision)
            .collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
}

fn txn_revision_never_split<B: Open>() {
    let h = B::harness(|o| o.watch_capacity = 2);
    let s = &h.store;
    let w = s.watch(watch_req("k", "l", 0)).unwrap();
    let ops = (0..1500)
        .map(|i| RequestOp::Put(PutRequest::new(format!("k{i:04}"), "v")))
        .collect();
    let max_ops = TxnRequest {
        compare: vec![],
        success: ops,
        failure: vec![],
    };
    assert!(matches!(
        s.txn(max_ops.clone()),
        Err(StoreError::TooManyOps)
    ));
    let h2 = B::harness(|o| {
        o.watch_capacity = 2;
        o.max_txn_ops = 2000;
    });
    let s2 = &h2.store;
    let mut w2 = s2.watch(watch_req("k", "l", 0)).unwrap();
    let rev = s2.txn(max_ops.clone()).unwrap().revision;
    let resp = recv(&mut w2).unwrap();
    assert_eq!(resp.events.len(), 1500, "one revision arrives whole");
    assert!(resp.events.iter().all(|e| e.kv.mod_revision == rev));
    // And whole when replayed from disk, past the per-response grouping limit.
    let mut replay = s2.watch(watch_req("k", "l", rev)).unwrap();
    assert_eq!(recv(&mut replay).unwrap().events.len(), 1500);
    drop(w);
}

fn ten_thousand_watchers<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let mut watchers: Vec<Watcher> = (0..10_000)
        .map(|_| s.watch(watch_req("p/", "p0", 0)).unwrap())
        .collect();
    assert_eq!(s.watch_stats().watchers, 10_000);
    let revs: Vec<i64> = (0..10).map(|i| put(s, &format!("p/{i}"), "v")).collect();
    put(s, "q", "not watched");
    for w in &mut watchers {
        let got: Vec<i64> = events(w, 10).iter().map(|e| e.kv.mod_revision).collect();
        assert_eq!(got, revs);
        assert_eq!(w.try_recv(), None);
    }
    let stats = s.watch_stats();
    assert_eq!((stats.unsynced, stats.buffered), (0, 0));
}

/// A watcher that reads nothing while 5000 revisions are written holds at most `capacity`
/// responses, turns unsynced, and then gets every event in order from disk.
fn slow_watcher_is_bounded_and_complete<B: Open>() {
    let capacity = 8;
    let h = B::harness(|o| o.watch_capacity = capacity);
    let s = &h.store;
    let mut slow = s
        .watch(WatchRequest {
            prev_kv: true,
            ..watch_req("k", "l", 0)
        })
        .unwrap();
    let first = s.revision() + 1;
    let mut max_buffered = 0;
    for i in 0..5000 {
        put(s, &format!("k{}", i % 50), &i.to_string());
        if i % 100 == 0 {
            max_buffered = max_buffered.max(s.watch_stats().buffered);
        }
    }
    let stats = s.watch_stats();
    assert!(
        max_buffered <= capacity && stats.buffered <= capacity,
        "buffer grew: {max_buffered} {stats:?}"
    );
    assert_eq!(stats.unsynced, 1, "the slow watcher fell back to disk");
    let mut next = first;
    while next < first + 5000 {
        let resp = recv(&mut slow).unwrap();
        assert!(s.watch_stats().buffered <= capacity);
        for ev in resp.events {
            assert_eq!(ev.kv.mod_revision, next, "in order, no gap, no duplicate");
            let i = next - first;
            assert_eq!(ev.kv.value, i.to_string());
            if i >= 50 {
                assert_eq!(ev.prev_kv.unwrap().value, (i - 50).to_string());
            }
            next += 1;
        }
    }
    // Caught up: live again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.watch_stats().unsynced != 0 {
        assert!(Instant::now() < deadline, "never resynced");
        std::thread::sleep(Duration::from_millis(5));
    }
    let rev = put(s, "k", "live");
    assert_eq!(events(&mut slow, 1)[0].kv.mod_revision, rev);
}

/// Writers and a reader that stalls at random run together: the reader still sees every revision
/// once, in order.
fn concurrent_writers_ordered<B: Open>() {
    let h = B::harness(|o| o.watch_capacity = 4);
    let s = h.store.clone();
    let mut w = s.watch(watch_req("w", "x", 0)).unwrap();
    let start = s.revision();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    s.put(PutRequest::new(format!("w{t}-{}", i % 7), i.to_string()))
                        .unwrap();
                }
            })
        })
        .collect();
    let mut next = start + 1;
    let mut stall = 0u64;
    while next <= start + 2000 {
        let resp = recv(&mut w).unwrap();
        for ev in resp.events {
            assert_eq!(ev.kv.mod_revision, next);
            next += 1;
        }
        stall = (stall * 31 + 7) % 13;
        if stall < 3 {
            std::thread::sleep(Duration::from_millis(stall));
        }
    }
    writers.into_iter().for_each(|t| t.join().unwrap());
}

/// Compaction past a lagging watcher's position cancels it with the compaction revision.
fn compaction_cancels_lagging_watcher<B: Open>() {
    let h = B::harness(|o| o.watch_capacity = 1);
    let s = &h.store;
    let mut w = s.watch(watch_req("k", "", 0)).unwrap();
    let first = put(s, "k", "0");
    for i in 1..20 {
        put(s, "k", &i.to_string());
    }
    let rev = s.revision();
    s.compact(rev).unwrap();
    s.wait_compacted(rev);
    // The first buffered response is the one that fit; then the cancel.
    let resp = recv(&mut w).unwrap();
    assert_eq!(resp.events[0].kv.mod_revision, first);
    let resp = recv(&mut w).unwrap();
    assert!(resp.canceled && resp.compact_revision == rev, "{resp:?}");
}

/// Closing the store ends its watches (a snapshot install closes the replaced store, and the
/// server moves its watches to the new one when they end): what was sent arrives, then `None`.
fn close_ends_watchers<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let mut live = s.watch(watch_req("k", "", 0)).unwrap();
    let mut unsynced = s.watch(watch_req("k", "", 1)).unwrap();
    let rev = put(s, "k", "v");
    assert_eq!(events(&mut live, 1)[0].kv.mod_revision, rev);
    s.close();
    assert_eq!(recv(&mut live), None);
    // The unsynced one may or may not have had its history first; then it ends too.
    while let Some(resp) = recv(&mut unsynced) {
        assert!(!resp.canceled, "{resp:?}");
    }
}

both_backends!(
    close_ends_watchers,
    key_range_and_prefix,
    history_then_live,
    prev_kv_and_filters,
    progress_and_cancel,
    compacted_start_is_canceled,
    txn_revision_never_split,
    ten_thousand_watchers,
    slow_watcher_is_bounded_and_complete,
    concurrent_writers_ordered,
    compaction_cancels_lagging_watcher,
);
