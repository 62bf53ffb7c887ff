//! Replicas in one process, each with its own RocksDB directories, talking real gRPC over loopback
//! TCP: replication, forwarding from followers, failover, and catching up by snapshot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ballast_proto::raftpb::peer_client::PeerClient;
use ballast_proto::raftpb::Blob;
use ballast_raft::network::addressed;
use ballast_raft::{MemberNode, NodeId, Replica, ReplicaOptions};
use ballast_store::{PutRequest, RangeRequest, StoreError, WriteRequest, WriteResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;

struct Member {
    replica: Replica,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
}

/// Members are named 1..=n here; their raft ids are `base + n`, with a `base` of their own in
/// each cluster, as a real cluster's ids (hashes of peer URLs) are its own. The tests of this file
/// run side by side, and a port one cluster frees may be bound by another.
struct Cluster {
    dir: tempfile::TempDir,
    base: NodeId,
    members: BTreeMap<NodeId, MemberNode>,
    running: BTreeMap<u64, Member>,
    snapshot_count: u64,
}

static NEXT_BASE: AtomicU64 = AtomicU64::new(1);

impl Cluster {
    async fn start(n: u64, snapshot_count: u64) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let base = NEXT_BASE.fetch_add(1, Ordering::Relaxed) << 8;
        let mut listeners = Vec::new();
        let mut members = BTreeMap::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            members.insert(
                base + id,
                MemberNode {
                    name: format!("n{id}"),
                    peer_urls: vec![url],
                    client_urls: vec![],
                },
            );
            listeners.push((id, listener));
        }
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            base,
            members,
            running: BTreeMap::new(),
            snapshot_count,
        };
        for (id, listener) in listeners {
            cluster.run(id, listener, true).await;
        }
        cluster
    }

    async fn run(&mut self, id: u64, listener: TcpListener, initial: bool) {
        let mut opts = ReplicaOptions::new(self.base + id, self.dir.path().join(format!("n{id}")));
        if initial {
            opts.initial_members = self.members.clone();
        }
        opts.heartbeat = Duration::from_millis(50);
        opts.election_timeout = Duration::from_millis(500);
        opts.snapshot_count = self.snapshot_count;
        opts.catch_up_entries = self.snapshot_count / 2;
        let replica = Replica::open(opts).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = ballast_raft::peer_service::PeerService::server(replica.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                // As the member's own peer listener: without TCP_NODELAY a streamed answer can wait
                // out the peer's delayed ACK (40 ms).
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(listener)
                        .map(|conn| conn.and_then(|c| c.set_nodelay(true).map(|()| c))),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        self.running.insert(
            id,
            Member {
                replica,
                stop,
                server,
                addr,
            },
        );
    }

    async fn stop(&mut self, id: u64) -> SocketAddr {
        let member = self.running.remove(&id).unwrap();
        member.replica.shutdown().await;
        let _ = member.stop.send(());
        let _ = member.server.await;
        member.addr
    }

    async fn restart(&mut self, id: u64, addr: SocketAddr) {
        // The port may be taken again briefly after the old server closed.
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.run(id, listener, false).await;
    }

    fn replica(&self, id: u64) -> &Replica {
        &self.running[&id].replica
    }

    async fn leader(&self) -> u64 {
        for _ in 0..200 {
            let leaders: Vec<u64> = self
                .running
                .values()
                .filter_map(|m| m.replica.status().leader)
                .map(|l| l - self.base)
                .collect();
            if let Some(&first) = leaders.first() {
                if leaders.len() == self.running.len()
                    && leaders.iter().all(|&l| l == first)
                    && self.running.contains_key(&first)
                {
                    return first;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no agreed leader");
    }

    /// Waits until every running member has applied the same revision, and returns it.
    async fn converged(&self) -> i64 {
        for _ in 0..400 {
            let revs: Vec<i64> = self
                .running
                .values()
                .map(|m| m.replica.store().revision())
                .collect();
            let hashes: Vec<u32> = self
                .running
                .values()
                .map(|m| m.replica.store().hash_kv(revs[0]).map_or(0, |h| h.0))
                .collect();
            if revs.iter().all(|&r| r == revs[0]) && hashes.iter().all(|&h| h == hashes[0]) {
                return revs[0];
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("members did not converge");
    }
}

async fn put(replica: &Replica, key: &str, value: &str) -> i64 {
    match replica
        .write(WriteRequest::Put(PutRequest::new(
            key.to_owned(),
            value.to_owned(),
        )))
        .await
        .unwrap()
        .unwrap()
    {
        WriteResponse::Put(r) => r.revision,
        other => panic!("{other:?}"),
    }
}

fn get(replica: &Replica, key: &str) -> Option<String> {
    let resp = replica
        .store()
        .range(&RangeRequest::key(key.to_owned()))
        .unwrap();
    resp.kvs
        .first()
        .map(|kv| String::from_utf8(kv.value.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_from_any_member_reach_every_member() {
    let cluster = Cluster::start(3, 10_000).await;
    let leader = cluster.leader().await;
    let mut last = 0;
    for (i, id) in [1u64, 2, 3].iter().cycle().take(30).enumerate() {
        let rev = put(cluster.replica(*id), &format!("k{i}"), &format!("v{i}")).await;
        assert!(rev > last, "revisions grow: {rev} after {last}");
        last = rev;
    }
    let rev = cluster.converged().await;
    assert_eq!(rev, last);
    for id in 1..=3 {
        // A linearizable read point from a follower sees every acknowledged write.
        cluster.replica(id).linearize().await.unwrap();
        assert_eq!(
            get(cluster.replica(id), "k29").as_deref(),
            Some("v29"),
            "member {id}"
        );
    }
    assert!(cluster.replica(leader).is_leader());
}

/// A follower sends concurrent writes to the leader in batches; each write still gets its own
/// answer: its own revision, or its own error, not a neighbour's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_from_a_follower_are_batched_and_each_answered() {
    let cluster = Cluster::start(3, 10_000).await;
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let before = cluster.replica(leader).store().revision();
    const WRITES: usize = 200;
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let replica = cluster.replica(follower).clone();
            tokio::spawn(async move {
                let mut put = PutRequest::new(format!("b{i}"), format!("v{i}"));
                if i % 10 == 3 {
                    put.lease = 12345; // granted by no one
                }
                replica.write(WriteRequest::Put(put)).await.unwrap()
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let key = format!("b{i}");
        match task.await.unwrap() {
            Ok(WriteResponse::Put(resp)) => {
                assert_ne!(i % 10, 3, "{key}: written with a lease that does not exist");
                let stored = cluster
                    .replica(leader)
                    .store()
                    .range(&RangeRequest::key(key.clone()))
                    .unwrap();
                assert_eq!(
                    stored.kvs[0].mod_revision, resp.revision,
                    "{key}: answered with another write's revision"
                );
                revisions.push(resp.revision);
            }
            Err(StoreError::LeaseNotFound) => assert_eq!(i % 10, 3, "{key}: refused"),
            other => panic!("{key}: {other:?}"),
        }
    }
    revisions.sort_unstable();
    let expected: Vec<i64> = (before + 1..=before + revisions.len() as i64).collect();
    assert_eq!(revisions, expected, "one revision per accepted write");
    assert_eq!(revisions.len(), WRITES - WRITES / 10);
    let forwarded = &cluster.replica(follower).metrics().writes_per_forward;
    assert_eq!(forwarded.sum() as usize, WRITES);
    assert!(
        forwarded.count() < WRITES as u64 / 2,
        "{} RPCs for {WRITES} concurrent writes",
        forwarded.count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_takes_over_and_the_old_one_catches_up() {
    let mut cluster = Cluster::start(3, 10_000).await;
    let old = cluster.leader().await;
    put(cluster.replica(old), "before", "1").await;
    let addr = cluster.stop(old).await;
    let new = cluster.leader().await;
    assert_ne!(new, old);
    put(cluster.replica(new), "after", "2").await;
    cluster.restart(old, addr).await;
    cluster.converged().await;
    assert_eq!(get(cluster.replica(old), "after").as_deref(), Some("2"));
    assert_eq!(get(cluster.replica(old), "before").as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_behind_the_purged_log_is_restored_by_snapshot() {
    let mut cluster = Cluster::start(3, 50).await;
    let leader = cluster.leader().await;
    let lagging = (1..=3).find(|&id| id != leader).unwrap();
    put(cluster.replica(leader), "early", "x").await;
    cluster.converged().await;
    let addr = cluster.stop(lagging).await;
    for i in 0..300 {
        put(cluster.replica(leader), &format!("key{i:03}"), "v").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.restart(lagging, addr).await;
    let rev = cluster.converged().await;
    assert!(rev >= 302);
    let member = cluster.replica(lagging);
    assert_eq!(get(member, "key299").as_deref(), Some("v"));
    assert_eq!(get(member, "early").as_deref(), Some("x"));
    // It got there by a snapshot from the leader.
    assert_eq!(
        member.metrics().snapshots_installed.load(Ordering::Relaxed),
        1
    );
    let snapshots: Vec<_> = std::fs::read_dir(
        cluster
            .dir
            .path()
            .join(format!("n{lagging}"))
            .join("snapshots"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    // And it keeps serving writes after the store was swapped.
    put(member, "later", "y").await;
    cluster.converged().await;
}

/// A peer RPC addressed to another member (a URL now serving another member or another cluster)
/// is refused before it is read: it cannot move this member's term or log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_request_for_another_member_is_refused_unread() {
    let cluster = Cluster::start(1, 10_000).await;
    let member = &cluster.running[&1];
    cluster.leader().await;
    let term = member.replica.status().term;
    let client = PeerClient::connect(format!("http://{}", member.addr))
        .await
        .unwrap();
    let me = cluster.base + 1;
    let call = |to: Option<NodeId>| {
        let mut client = client.clone();
        async move {
            // Not a vote request at all: only a request that gets past the address is decoded.
            let body = Blob {
                data: vec![0xff; 3].into(),
            };
            let request = match to {
                Some(to) => addressed(body, to),
                None => tonic::Request::new(body),
            };
            client.vote(request).await.unwrap_err()
        }
    };
    for to in [Some(me + 1), Some(1), None] {
        let refused = call(to).await;
        assert_eq!(
            refused.code(),
            tonic::Code::FailedPrecondition,
            "to {to:?}: {refused}"
        );
    }
    assert!(
        call(Some(me + 1))
            .await
            .message()
            .contains(&format!("{:x}", me + 1)),
        "the refusal names the addressee"
    );
    let read = call(Some(me)).await;
    assert_eq!(read.code(), tonic::Code::InvalidArgument, "{read}");
    assert!(member.replica.is_leader());
    assert_eq!(member.replica.status().term, term);
}
