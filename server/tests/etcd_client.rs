//! The operations of the etcdctl suite, through the Rust `etcd-client` crate (the client most Rust
//! users of etcd have), against a Ballast member over TCP.

use std::time::Duration;

use etcd_client::{
    AlarmAction, AlarmType, Client, CompactionOptions, Compare, CompareOp, DeleteOptions,
    EventType, GetOptions, LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    WatchOptions,
};

mod common;

use common::{start, Server};

async fn client(s: &Server) -> Client {
    Client::connect([s.url()], None).await.unwrap()
}

fn keys(resp: &etcd_client::GetResponse) -> Vec<String> {
    resp.kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_and_txn() {
    let s = start(|_| {}).await;
    let mut c = client(&s).await;
    c.put("foo", "bar", None).await.unwrap();
    c.put("foo2", "baz", None).await.unwrap();
    let prev = c
        .put("foo", "bar2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(prev.prev_key().unwrap().value_str().unwrap(), "bar");
    assert_eq!(prev.header().unwrap().revision(), 4);

    let all = c
        .get("foo", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(&all), ["foo", "foo2"]);
    let kv = &all.kvs()[0];
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (2, 4, 2)
    );
    let limited = c
        .get("foo", Some(GetOptions::new().with_prefix().with_limit(1)))
        .await
        .unwrap();
    assert!(limited.more() && limited.count() == 2 && limited.kvs().len() == 1);
    let sorted = c
        .get(
            "foo",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&sorted), ["foo2", "foo"]);
    let old = c
        .get("foo", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value_str().unwrap(), "bar");
    let count = c
        .get(
            "foo",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((count.count(), count.kvs().len()), (2, 0));
    let ser = c
        .get(
            "foo2",
            Some(GetOptions::new().with_serializable().with_keys_only()),
        )
        .await
        .unwrap();
    assert_eq!(ser.kvs()[0].value(), b"");

    let txn = Txn::new()
        .when([Compare::value("foo", CompareOp::Equal, "bar2")])
        .and_then([TxnOp::put("t1", "yes", None), TxnOp::get("foo2", None)])
        .or_else([TxnOp::put("t1", "no", None)]);
    let resp = c.txn(txn).await.unwrap();
    assert!(resp.succeeded());
    assert_eq!(resp.op_responses().len(), 2);
    assert_eq!(
        c.get("t1", None).await.unwrap().kvs()[0]
            .value_str()
            .unwrap(),
        "yes"
    );
    let resp = c
        .txn(
            Txn::new()
                .when([Compare::version("foo", CompareOp::Greater, 5)])
                .or_else([TxnOp::delete("t1", None)]),
        )
        .await
        .unwrap();
    assert!(!resp.succeeded());

    let del = c
        .delete(
            "foo",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(del.deleted(), 2);
    assert_eq!(del.prev_kvs().len(), 2);

    let rev = c
        .put("x", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.compact(rev - 1, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    let err = c
        .get("x", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    let err = c.put("", "v", None).await.unwrap_err();
    assert!(
        err.to_string().contains("etcdserver: key is not provided"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_live_prev_kv_and_progress() {
    let s = start(|_| {}).await;
    let mut c = client(&s).await;
    c.put("w/a", "1", None).await.unwrap();
    c.put("w/a", "2", None).await.unwrap();
    let mut stream = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_prev_key()
                    .with_start_revision(2),
            ),
        )
        .await
        .unwrap();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created());
    let mut events = Vec::new();
    c.delete("w/a", None).await.unwrap();
    while events.len() < 3 {
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for ev in resp.events() {
            let kv = ev.kv().unwrap();
            let prev = ev.prev_kv().map(|p| p.value_str().unwrap().to_owned());
            events.push((
                ev.event_type(),
                kv.mod_revision(),
                kv.value_str().unwrap().to_owned(),
                prev,
            ));
        }
    }
    assert_eq!(
        events,
        [
            (EventType::Put, 2, "1".to_owned(), None),
            (EventType::Put, 3, "2".to_owned(), Some("1".to_owned())),
            (EventType::Delete, 4, String::new(), Some("2".to_owned())),
        ]
    );
    stream.request_progress().await.unwrap();
    let progress = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(progress.events().is_empty());
    assert_eq!(
        (progress.watch_id(), progress.header().unwrap().revision()),
        (-1, 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases() {
    let s = start(|_| {}).await;
    let mut c = client(&s).await;
    let lease = c.lease_grant(60, None).await.unwrap();
    assert_eq!(lease.ttl(), 60);
    c.put("l", "v", Some(PutOptions::new().with_lease(lease.id())))
        .await
        .unwrap();
    let ttl = c
        .lease_time_to_live(lease.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!((ttl.granted_ttl(), ttl.keys()), (60, &[b"l".to_vec()][..]));
    assert!(ttl.ttl() > 55);
    let (mut keeper, mut responses) = c.lease_keep_alive(lease.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let kept = responses.message().await.unwrap().unwrap();
    assert_eq!((kept.id(), kept.ttl()), (lease.id(), 60));
    assert_eq!(
        c.leases()
            .await
            .unwrap()
            .leases()
            .iter()
            .map(|l| l.id())
            .collect::<Vec<_>>(),
        [lease.id()]
    );
    c.lease_revoke(lease.id()).await.unwrap();
    assert!(c.get("l", None).await.unwrap().kvs().is_empty());
    let err = c.lease_revoke(lease.id()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("etcdserver: requested lease not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_maintenance() {
    let s = start(|_| {}).await;
    let mut c = client(&s).await;
    c.put("k", "v", None).await.unwrap();
    let members = c.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1);
    let me = &members.members()[0];
    assert_eq!(
        (me.name(), me.peer_urls(), me.is_learner()),
        ("default", &["http://localhost:2380".to_owned()][..], false)
    );
    let status = c.status().await.unwrap();
    assert_eq!(status.leader(), me.id());
    assert_eq!(status.header().unwrap().member_id(), me.id());
    assert_eq!(status.version(), "3.4.0");
    assert!(status.db_size() > 0 && status.raft_index() >= 1);

    let h1 = c.hash_kv(0).await.unwrap().hash();
    assert_eq!(c.hash_kv(0).await.unwrap().hash(), h1);
    c.put("k", "v2", None).await.unwrap();
    assert_ne!(c.hash_kv(0).await.unwrap().hash(), h1);
    assert_eq!(
        c.hash_kv(2).await.unwrap().hash(),
        h1,
        "hash at an old revision is stable"
    );

    c.defragment().await.unwrap();
    assert!(c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap()
        .alarms()
        .is_empty());
    c.move_leader(me.id()).await.unwrap();
    assert!(c.move_leader(me.id() + 1).await.is_err());

    let mut snap = c.snapshot().await.unwrap();
    let mut bytes = Vec::new();
    while let Some(part) = snap.message().await.unwrap() {
        bytes.extend_from_slice(part.blob());
        if part.remaining_bytes() == 0 {
            break;
        }
    }
    assert_eq!(bytes.len() % 512, 32);
    assert!(bytes.starts_with(ballast_server::snapshot::MAGIC));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_service_serializes_holders() {
    let s = start(|_| {}).await;
    let mut a = client(&s).await;
    let mut b = client(&s).await;
    let la = a.lease_grant(30, None).await.unwrap().id();
    let lb = b.lease_grant(30, None).await.unwrap().id();
    let held = a
        .lock("L", Some(etcd_client::LockOptions::new().with_lease(la)))
        .await
        .unwrap();
    assert_eq!(held.key(), format!("L/{la:x}").as_bytes());
    // The second locker waits until the first unlocks.
    let waiter = tokio::spawn(async move {
        b.lock("L", Some(etcd_client::LockOptions::new().with_lease(lb)))
            .await
            .unwrap()
            .key()
            .to_vec()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the lock is held");
    a.unlock(held.key()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter gets the lock")
        .unwrap();
    assert_eq!(got, format!("L/{lb:x}").as_bytes());
    let err = a
        .lock(
            "M",
            Some(etcd_client::LockOptions::new().with_lease(424242)),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("etcdserver: requested lease not found"),
        "{err}"
    );
}

/// Lock and Campaign naming no lease (0) each get a lease of their own, as etcd's servers do
/// through a `concurrency.Session` (TTL 60, not kept alive): a second locker or candidate waits.
/// With one shared key `name/0`, both callers were handed the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_campaign_without_a_lease_get_one_each() {
    let s = start(|_| {}).await;
    let mut a = client(&s).await;
    let b = client(&s).await;
    let held = a.lock("L0", None).await.unwrap();
    let hex = std::str::from_utf8(held.key())
        .unwrap()
        .strip_prefix("L0/")
        .unwrap();
    let lease = i64::from_str_radix(hex, 16).unwrap();
    assert_ne!(lease, 0, "the lock's key is on a lease granted for it");
    let ttl = a.lease_time_to_live(lease, None).await.unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
    assert!((55..=60).contains(&ttl.ttl()), "ttl {}", ttl.ttl());
    let mut b1 = b.clone();
    let waiter = tokio::spawn(async move { b1.lock("L0", None).await.unwrap().key().to_vec() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "a second lease-0 locker got the held lock"
    );
    a.unlock(held.key()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter gets the lock")
        .unwrap();
    assert_ne!(got, held.key());

    let won = a.campaign("E0", "a", 0).await.unwrap();
    let leader = won.leader().unwrap().clone();
    assert_ne!(leader.lease(), 0);
    let mut b2 = b.clone();
    let candidate = tokio::spawn(async move { b2.campaign("E0", "b", 0).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !candidate.is_finished(),
        "a second lease-0 candidate was elected too"
    );
    a.resign(Some(etcd_client::ResignOptions::new().with_leader(leader)))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), candidate)
        .await
        .expect("the second candidate is elected")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_service_campaign_proclaim_observe_resign() {
    let s = start(|_| {}).await;
    let mut a = client(&s).await;
    let mut b = client(&s).await;
    let err = a.leader("E").await.unwrap_err();
    assert!(err.to_string().contains("election: no leader"), "{err}");
    let la = a.lease_grant(30, None).await.unwrap().id();
    let lb = b.lease_grant(30, None).await.unwrap().id();
    let won = a.campaign("E", "a1", la).await.unwrap();
    let key_a = won.leader().unwrap().clone();
    assert_eq!(a.leader("E").await.unwrap().kv().unwrap().value(), b"a1");

    let mut observer = a.observe("E").await.unwrap();
    let first = observer.message().await.unwrap().unwrap();
    assert_eq!(first.kv().unwrap().value(), b"a1");

    // b waits behind a.
    let mut b2 = b.clone();
    let candidate = tokio::spawn(async move {
        b2.campaign("E", "b1", lb)
            .await
            .unwrap()
            .leader()
            .unwrap()
            .key()
            .to_vec()
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!candidate.is_finished());

    a.proclaim(
        "a2",
        Some(etcd_client::ProclaimOptions::new().with_leader(key_a.clone())),
    )
    .await
    .unwrap();
    assert_eq!(
        observer
            .message()
            .await
            .unwrap()
            .unwrap()
            .kv()
            .unwrap()
            .value(),
        b"a2"
    );

    a.resign(Some(
        etcd_client::ResignOptions::new().with_leader(key_a.clone()),
    ))
    .await
    .unwrap();
    let key_b = tokio::time::timeout(Duration::from_secs(10), candidate)
        .await
        .expect("b is elected")
        .unwrap();
    assert_eq!(key_b, format!("E/{lb:x}").as_bytes());
    assert_eq!(
        observer
            .message()
            .await
            .unwrap()
            .unwrap()
            .kv()
            .unwrap()
            .value(),
        b"b1"
    );
    // The old leader can no longer proclaim.
    let err = a
        .proclaim(
            "late",
            Some(etcd_client::ProclaimOptions::new().with_leader(key_a)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("election: not leader"), "{err}");
}

fn status_of(err: etcd_client::Error) -> (tonic::Code, String) {
    match err {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_users_roles_and_tokens() {
    use etcd_client::{ConnectOptions, Permission};
    let s = start(|_| {}).await;
    let mut c = client(&s).await;
    c.user_add("root", "rootpw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.user_add("bob", "bobpw", None).await.unwrap();
    c.role_add("app").await.unwrap();
    c.role_grant_permission("app", Permission::read_write("app/").with_prefix())
        .await
        .unwrap();
    c.user_grant_role("bob", "app").await.unwrap();
    c.auth_enable().await.unwrap();

    let denied = (
        tonic::Code::PermissionDenied,
        "etcdserver: permission denied".to_owned(),
    );
    assert_eq!(
        status_of(c.get("app/x", None).await.unwrap_err()),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: user name is empty".into()
        )
    );
    let as_user = |name: &str, pw: &str| ConnectOptions::new().with_user(name, pw);
    let Err(wrong) = Client::connect([s.url()], Some(as_user("bob", "nope"))).await else {
        panic!("a wrong password connected")
    };
    assert_eq!(
        status_of(wrong),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: authentication failed, invalid user ID or password".into()
        )
    );
    let mut bob = Client::connect([s.url()], Some(as_user("bob", "bobpw")))
        .await
        .unwrap();
    bob.put("app/x", "1", None).await.unwrap();
    assert_eq!(
        keys(
            &bob.get("app/", Some(GetOptions::new().with_prefix()))
                .await
                .unwrap()
        ),
        ["app/x"]
    );
    assert_eq!(
        status_of(bob.put("other", "1", None).await.unwrap_err()),
        denied
    );
    assert_eq!(
        status_of(
            bob.get("", Some(GetOptions::new().with_all_keys()))
                .await
                .unwrap_err()
        ),
        denied
    );
    assert_eq!(status_of(bob.user_list().await.unwrap_err()), denied);
    let txn = Txn::new()
        .when([Compare::value("app/x", CompareOp::Equal, "1")])
        .and_then([TxnOp::put("app/y", "2", None)])
        .or_else([TxnOp::delete("other", None)]);
    assert_eq!(
        status_of(bob.txn(txn).await.unwrap_err()),
        denied,
        "the branch not taken is checked too"
    );
    // Lock and election names need the rights on the keys under them: read and write to lock or
    // campaign, read to ask for the leader.
    let lock = bob.lock("app/l", None).await.unwrap();
    bob.unlock(lock.key().to_vec()).await.unwrap();
    assert_eq!(
        status_of(bob.lock("other", None).await.unwrap_err()),
        denied
    );
    assert_eq!(
        status_of(bob.campaign("other", "v", 0).await.unwrap_err()),
        denied
    );
    assert_eq!(status_of(bob.leader("other").await.unwrap_err()), denied);
    assert_eq!(
        status_of(bob.leader("app/e").await.unwrap_err()),
        (tonic::Code::Unknown, "election: no leader".into())
    );

    let mut root = Client::connect([s.url()], Some(as_user("root", "rootpw")))
        .await
        .unwrap();
    assert_eq!(root.user_list().await.unwrap().users(), ["bob", "root"]);
    let perms = root.role_get("app").await.unwrap().permissions();
    assert_eq!(
        (perms.len(), perms[0].key(), perms[0].range_end()),
        (1, &b"app/"[..], &b"app0"[..])
    );
    assert_eq!(root.user_get("bob").await.unwrap().roles(), ["app"]);
    // Revoking the role takes effect on bob's next request, with the token bob already holds.
    root.user_revoke_role("bob", "app").await.unwrap();
    assert_eq!(
        status_of(bob.put("app/x", "2", None).await.unwrap_err()),
        denied
    );
    // A changed password ends bob's token; the client authenticates again with what it was
    // given, which no longer works.
    root.user_change_password("bob", "newpw").await.unwrap();
    assert!(bob.get("app/x", None).await.is_err());
    root.auth_disable().await.unwrap();
    assert_eq!(
        c.get("app/x", None).await.unwrap().kvs()[0]
            .value_str()
            .unwrap(),
        "1"
    );
}
