//! The watch fan-out ([`Fanout`]) on each store: many API watches of a resource share one store
//! watch, and none misses an event, whether it starts inside the shared window, behind it, or
//! falls behind the live feed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ballast_orchestrator::fanout::{Fanout, Subscription};
use ballast_orchestrator::registry::{object_key, Registry, Swap};
use ballast_orchestrator::storage::{Storage, StorageError, StorageResult, WatchStream};
use ballast_proto::pb;

type Case = fn(Arc<dyn Storage>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

pub const ALL: &[(&str, Case)] = &[
    ("watches_share_one_store_watch", |s| {
        Box::pin(watches_share_one_store_watch(s))
    }),
    ("watches_behind_the_window_or_the_feed_miss_nothing", |s| {
        Box::pin(watches_behind_the_window_or_the_feed_miss_nothing(s))
    }),
    ("a_compacted_start_is_refused", |s| {
        Box::pin(a_compacted_start_is_refused(s))
    }),
];

/// The store, counting the watches opened on it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Storage>,
    watches: AtomicUsize,
}

#[tonic::async_trait]
impl Storage for Counting {
    async fn range(&self, req: pb::RangeRequest) -> StorageResult<pb::RangeResponse> {
        self.inner.range(req).await
    }
    async fn txn(&self, req: pb::TxnRequest) -> StorageResult<pb::TxnResponse> {
        self.inner.txn(req).await
    }
    async fn compact(&self, revision: i64) -> StorageResult<()> {
        self.inner.compact(revision).await
    }
    async fn grant_lease(&self, ttl: i64) -> StorageResult<i64> {
        self.inner.grant_lease(ttl).await
    }
    async fn watch(&self, create: pb::WatchCreateRequest) -> StorageResult<WatchStream> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        self.inner.watch(create).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn counting(s: Arc<dyn Storage>) -> (Arc<Counting>, Registry) {
    let counting = Arc::new(Counting {
        inner: s,
        watches: AtomicUsize::new(0),
    });
    (counting.clone(), Registry::new(counting))
}

/// Creates `name` in `ns` (or updates it if it exists) and returns the revision.
async fn put(r: &Registry, resource: &str, ns: &str, name: &str, value: &str) -> i64 {
    let key = object_key(resource, Some(ns), name);
    let current = r.get(&key).await.unwrap().0.map_or(0, |s| s.mod_revision);
    match r.swap(&key, current, value.as_bytes().to_vec(), 0).await {
        Ok(Swap::Done { revision }) => revision,
        other => panic!("put {key}: {other:?}"),
    }
}

/// The next `n` events of a watch as (key, value, revision), progress skipped.
async fn take(sub: &mut Subscription, n: usize) -> Vec<(String, String, i64)> {
    let mut seen = Vec::new();
    // One deadline for all: progress notifications (every 10 s) are batches too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < n {
        let batch = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} events within 20 s", seen.len()))
            .expect("the watch goes on");
        for e in batch.events {
            let kv = e.kv.clone().unwrap();
            seen.push((
                String::from_utf8(kv.key.to_vec()).unwrap(),
                String::from_utf8(kv.value.to_vec()).unwrap(),
                kv.mod_revision,
            ));
        }
    }
    assert_eq!(seen.len(), n, "no more events than were written");
    seen
}

async fn watches_share_one_store_watch(s: Arc<dyn Storage>) {
    let (store, r) = counting(s);
    let fanout = Fanout::default();
    let resource = "fanout-shared";
    let start = r.current_revision().await.unwrap();
    let mut everything = Vec::new();
    let mut in_a = Vec::new();
    for _ in 0..10 {
        everything.push(fanout.subscribe(&r, resource, None, start).await.unwrap());
        in_a.push(
            fanout
                .subscribe(&r, resource, Some("a"), start)
                .await
                .unwrap(),
        );
    }
    let mut written = Vec::new();
    for i in 0..30 {
        let ns = if i % 3 == 0 { "a" } else { "b" };
        let value = format!("v{i}");
        let revision = put(&r, resource, ns, &format!("o{}", i % 7), &value).await;
        written.push((
            object_key(resource, Some(ns), &format!("o{}", i % 7)),
            value,
            revision,
        ));
    }
    // One that starts late, from the same revision: served from the window.
    everything.push(fanout.subscribe(&r, resource, None, start).await.unwrap());
    let only_a: Vec<_> = written
        .iter()
        .filter(|(k, _, _)| k.contains("/a/"))
        .cloned()
        .collect();
    for sub in &mut everything {
        assert_eq!(take(sub, written.len()).await, written);
    }
    for sub in &mut in_a {
        assert_eq!(take(sub, only_a.len()).await, only_a);
    }
    assert_eq!(
        store.watches.load(Ordering::SeqCst),
        1,
        "21 watches of one resource share one store watch"
    );
}

async fn watches_behind_the_window_or_the_feed_miss_nothing(s: Arc<dyn Storage>) {
    let (store, r) = counting(s);
    // A window of 64 events and a feed of 16 batches, so that 200 writes overrun both.
    let fanout = Fanout::new(64, 16);
    let resource = "fanout-behind";
    let start = r.current_revision().await.unwrap();
    // Joins the shared feed, then reads nothing while more is written than the feed and the
    // window hold.
    let mut slow = fanout.subscribe(&r, resource, None, start).await.unwrap();
    let mut written = Vec::new();
    for i in 0..200 {
        let value = format!("v{i}");
        let revision = put(&r, resource, "ns", &format!("o{}", i % 50), &value).await;
        written.push((
            object_key(resource, Some("ns"), &format!("o{}", i % 50)),
            value,
            revision,
        ));
    }
    // Starts behind the window: reads from a store watch of its own.
    let mut late = fanout.subscribe(&r, resource, None, start).await.unwrap();
    assert_eq!(take(&mut late, written.len()).await, written);
    assert_eq!(take(&mut slow, written.len()).await, written);
    assert_eq!(
        store.watches.load(Ordering::SeqCst),
        3,
        "the shared watch, and one each for the late and the slow"
    );
}

async fn a_compacted_start_is_refused(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let fanout = Fanout::default();
    let resource = "fanout-compacted";
    let key = object_key(resource, Some("ns"), "a");
    let first = put(&r, resource, "ns", "a", "1").await;
    // A watch from `first` starts the shared watch; its window holds what follows.
    let mut early = fanout.subscribe(&r, resource, None, first).await.unwrap();
    let second = put(&r, resource, "ns", "a", "2").await;
    assert_eq!(
        take(&mut early, 1).await,
        [(key.clone(), "2".into(), second)]
    );
    r.compact(second).await.unwrap();
    // From before the compaction, a watch is refused as the store refuses it, though the
    // window still holds its events (so that its client lists again).
    match fanout.subscribe(&r, resource, None, first).await {
        Err(StorageError::Compacted { .. }) => {}
        other => panic!("a watch from compacted history: {other:?}"),
    }
    // From the compaction on, it is served.
    let mut sub = fanout.subscribe(&r, resource, None, second).await.unwrap();
    let third = put(&r, resource, "ns", "a", "3").await;
    assert_eq!(take(&mut sub, 1).await, [(key, "3".to_string(), third)]);
}
