//! The cases of the storage conformance suite, one async fn each, on any [`Storage`]. Each uses
//! keys of its own so that they can share one store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ballast_orchestrator::registry::{Registry, Swap};
use ballast_orchestrator::storage::{Storage, StorageError, WatchStream};
use ballast_proto::mvccpb as pb;

use crate::common::cluster::Cluster;

type Case = fn(Arc<dyn Storage>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

pub const ALL: &[(&str, Case)] = &[
    ("create_is_compare_and_swap", |s| {
        Box::pin(create_is_compare_and_swap(s))
    }),
    ("update_and_delete_compare_mod_revision", |s| {
        Box::pin(update_and_delete_compare_mod_revision(s))
    }),
    ("list_pages_at_one_revision", |s| {
        Box::pin(list_pages_at_one_revision(s))
    }),
    ("watch_from_a_revision", |s| {
        Box::pin(watch_from_a_revision(s))
    }),
    ("progress_is_answered", |s| {
        Box::pin(progress_is_answered(s))
    }),
    ("compacted_history_is_refused", |s| {
        Box::pin(compacted_history_is_refused(s))
    }),
    ("future_revision_is_refused", |s| {
        Box::pin(future_revision_is_refused(s))
    }),
    ("leased_keys_expire", |s| Box::pin(leased_keys_expire(s))),
];

fn key(case: &str, name: &str) -> String {
    format!("/registry/conformance-{case}/{name}")
}

async fn create_is_compare_and_swap(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let k = key("create", "a");
    let first = r.swap(&k, 0, b"one".to_vec(), 0).await.unwrap();
    let Swap::Done { revision } = first else {
        panic!("first create lost: {first:?}")
    };
    // A second create finds the first, with its revisions, and changes nothing.
    match r.swap(&k, 0, b"two".to_vec(), 0).await.unwrap() {
        Swap::Lost { current: Some(cur) } => {
            assert_eq!(cur.value, b"one");
            assert_eq!(
                (cur.mod_revision, cur.create_revision),
                (revision, revision)
            );
        }
        other => panic!("second create: {other:?}"),
    }
    let (got, read_at) = r.get(&k).await.unwrap();
    assert_eq!(got.unwrap().value, b"one");
    assert!(read_at >= revision);
}

async fn update_and_delete_compare_mod_revision(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let k = key("update", "a");
    let Swap::Done { revision: v1 } = r.swap(&k, 0, b"v1".to_vec(), 0).await.unwrap() else {
        panic!("create lost")
    };
    let Swap::Done { revision: v2 } = r.swap(&k, v1, b"v2".to_vec(), 0).await.unwrap() else {
        panic!("update at the current revision lost")
    };
    assert!(v2 > v1);
    // A stale revision loses, and is told the current state.
    match r.swap(&k, v1, b"stale".to_vec(), 0).await.unwrap() {
        Swap::Lost { current: Some(cur) } => {
            assert_eq!((cur.value, cur.mod_revision), (b"v2".to_vec(), v2))
        }
        other => panic!("stale update: {other:?}"),
    }
    match r.delete(&k, v1).await.unwrap() {
        Swap::Lost { current: Some(cur) } => assert_eq!(cur.mod_revision, v2),
        other => panic!("stale delete: {other:?}"),
    }
    assert!(matches!(r.delete(&k, v2).await.unwrap(), Swap::Done { .. }));
    assert_eq!(r.get(&k).await.unwrap().0, None);
    // Deleting what is gone loses with nothing current.
    assert_eq!(
        r.delete(&k, v2).await.unwrap(),
        Swap::Lost { current: None }
    );
}

async fn list_pages_at_one_revision(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let prefix = key("list", "");
    for name in ["a", "b", "c", "d", "e"] {
        r.swap(&format!("{prefix}{name}"), 0, name.as_bytes().to_vec(), 0)
            .await
            .unwrap();
    }
    // A key that shares the resource's name as a prefix is not in its list.
    r.swap(
        &format!("{}x/z", prefix.trim_end_matches('/')),
        0,
        b"other".to_vec(),
        0,
    )
    .await
    .unwrap();
    let first = r.list(&prefix, None, 0, 2).await.unwrap();
    let names = |p: &ballast_orchestrator::registry::Page| -> Vec<String> {
        p.items
            .iter()
            .map(|i| String::from_utf8(i.value.clone()).unwrap())
            .collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first.remaining, Some(3));
    // A write after the first page is not seen by the pages that follow it.
    r.swap(&format!("{prefix}bb"), 0, b"bb".to_vec(), 0)
        .await
        .unwrap();
    let mut rest = Vec::new();
    let mut next = first.next.clone();
    while let Some(from) = next {
        let page = r
            .list(&prefix, Some(&from), first.revision, 2)
            .await
            .unwrap();
        assert_eq!(
            page.revision, first.revision,
            "pages are read at the first's revision"
        );
        rest.extend(names(&page));
        next = page.next;
    }
    assert_eq!(rest, ["c", "d", "e"]);
    let all = r.list(&prefix, None, 0, 0).await.unwrap();
    assert_eq!(names(&all), ["a", "b", "bb", "c", "d", "e"]);
    assert_eq!((all.next, all.remaining), (None, None));
}

/// The next response with events (progress notifications skipped), within a few seconds.
async fn events(w: &mut WatchStream) -> Vec<pb::Event> {
    loop {
        let resp = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("a watch response within 10 s")
            .expect("the watch goes on")
            .expect("no watch error");
        if !resp.events.is_empty() {
            return resp.events;
        }
    }
}

async fn watch_from_a_revision(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let prefix = key("watch", "");
    let Swap::Done { revision: rv } = r
        .swap(&format!("{prefix}a"), 0, b"a1".to_vec(), 0)
        .await
        .unwrap()
    else {
        panic!()
    };
    let Swap::Done { revision: rv2 } = r
        .swap(&format!("{prefix}a"), rv, b"a2".to_vec(), 0)
        .await
        .unwrap()
    else {
        panic!()
    };
    // From after the create: the update, then what comes, with each deletion's last state.
    let mut w = r.watch(&prefix, rv).await.unwrap();
    r.delete(&format!("{prefix}a"), rv2).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(events(&mut w).await);
    }
    let update = &seen[0];
    assert_eq!(update.r#type, pb::event::EventType::Put as i32);
    assert_eq!(&update.kv.as_ref().unwrap().value[..], b"a2");
    let delete = &seen[1];
    assert_eq!(delete.r#type, pb::event::EventType::Delete as i32);
    assert_eq!(
        &delete.prev_kv.as_ref().unwrap().value[..],
        b"a2",
        "a deletion carries the last state"
    );
}

async fn progress_is_answered(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let prefix = key("progress", "");
    let mut w = r.watch(&prefix, 0).await.unwrap();
    // A write elsewhere moves the store on; a progress request reports a revision at least that.
    let Swap::Done { revision } = r
        .swap(&key("progress-elsewhere", "x"), 0, b"x".to_vec(), 0)
        .await
        .unwrap()
    else {
        panic!()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.request_progress();
    let resp = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a progress answer within 10 s")
        .unwrap()
        .unwrap();
    assert!(resp.events.is_empty());
    assert!(resp.header.unwrap().revision >= revision);
}

async fn compacted_history_is_refused(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let k = key("compact", "a");
    let Swap::Done { revision: old } = r.swap(&k, 0, b"1".to_vec(), 0).await.unwrap() else {
        panic!()
    };
    let Swap::Done { revision: new } = r.swap(&k, old, b"2".to_vec(), 0).await.unwrap() else {
        panic!()
    };
    r.compact(new).await.unwrap();
    // Compacting again at or below is no error (another API server may have).
    r.compact(new).await.unwrap();
    let err = r.list(&key("compact", ""), None, old, 0).await.unwrap_err();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
    let mut w = r.watch(&key("compact", ""), old - 1).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
    {
        Some(Err(StorageError::Compacted { compact_revision })) => {
            assert_eq!(compact_revision, new)
        }
        other => panic!("a watch from compacted history: {other:?}"),
    }
}

async fn future_revision_is_refused(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let now = r.current_revision().await.unwrap();
    let err = r
        .list(&key("future", ""), None, now + 1000, 0)
        .await
        .unwrap_err();
    assert_eq!(err, StorageError::FutureRevision);
}

async fn leased_keys_expire(s: Arc<dyn Storage>) {
    let r = Registry::new(s);
    let k = key("lease", "event");
    let lease = r.lease(2).await.unwrap();
    r.swap(&k, 0, b"e".to_vec(), lease).await.unwrap();
    assert!(r.get(&k).await.unwrap().0.is_some());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while r.get(&k).await.unwrap().0.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a 2 s lease's key still there after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// External only: the member the adapter talks to dies; requests go on through the others.
pub async fn survives_losing_its_endpoint(s: Arc<dyn Storage>, cluster: &mut Cluster) {
    let r = Registry::new(s);
    let k = key("failover", "a");
    r.swap(&k, 0, b"1".to_vec(), 0).await.unwrap();
    // The adapter starts at the first endpoint: kill it.
    cluster.kill9(0);
    let (got, _) = tokio::time::timeout(Duration::from_secs(30), r.get(&k))
        .await
        .expect("a read within 30 s of losing an endpoint")
        .unwrap();
    let cur = got.unwrap();
    assert!(matches!(
        r.swap(&k, cur.mod_revision, b"2".to_vec(), 0)
            .await
            .unwrap(),
        Swap::Done { .. }
    ));
}
