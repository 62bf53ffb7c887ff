//! The gRPC API over real TCP with a tonic client: what etcdctl cannot send. Malformed and
//! oversized input, watch-stream details (ids, cancel, progress, fragments), the keep-alive stream,
//! and group commit.

use std::time::Duration;

use ballast_proto::pb;
use bytes::{Buf, BufMut, Bytes};
use pb::kv_client::KvClient;
use pb::watch_client::WatchClient;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

mod common;

use common::{start, Server};

impl Server {
    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel().await)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }
}

fn put(key: &str, value: &str) -> pb::PutRequest {
    pb::PutRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        ..Default::default()
    }
}

fn get(key: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: Bytes::copy_from_slice(key.as_bytes()),
        ..Default::default()
    }
}

async fn everything(kv: &mut KvClient<Channel>) -> pb::RangeResponse {
    kv.range(pb::RangeRequest {
        key: Bytes::from_static(b"\0"),
        range_end: Bytes::from_static(b"\0"),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

/// Sends raw bytes as a request body, to feed the server what no well-behaved client would.
#[derive(Debug, Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

async fn raw_call(channel: Channel, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_and_changes_nothing() {
    let s = start(|o| o.max_request_bytes = 64 * 1024).await;
    let mut kv = s.kv().await;
    kv.put(put("keep", "me")).await.unwrap();
    let before = everything(&mut kv).await;

    // Truncated and garbage protobuf: the server cannot decode them and says so.
    let whole = put("victim", "value").encode_to_vec();
    let cases: Vec<(&str, Bytes)> = vec![
        (
            "truncated",
            Bytes::copy_from_slice(&whole[..whole.len() - 3]),
        ),
        ("garbage", Bytes::from_static(&[0xff; 40])),
        (
            "bad varint",
            Bytes::from_static(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
        ),
        ("wrong wire type", Bytes::from_static(&[0x0d, 1, 2, 3, 4])),
    ];
    for (what, body) in cases {
        let err = raw_call(s.channel().await, "/etcdserverpb.KV/Put", body)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{what}: {err:?}");
        assert!(err.message().contains("decode"), "{what}: {err:?}");
    }

    // Well-formed but invalid requests get etcd's errors.
    let err = kv.put(put("", "v")).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );
    let err = kv.range(get("")).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );
    let err = kv
        .put(pb::PutRequest {
            lease: 777,
            ..put("k", "v")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );
    let err = kv
        .put(put("big", &"x".repeat(70 * 1024)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: request is too large")
    );
    let err = kv
        .range(pb::RangeRequest {
            sort_target: 42,
            ..get("k")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "etcdserver: unknown sort_target value 42"
        )
    );
    let txn = pb::TxnRequest {
        compare: vec![pb::Compare {
            key: "k".into(),
            target: 9,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(kv.txn(txn).await.unwrap_err().code(), Code::InvalidArgument);
    let too_many = pb::TxnRequest {
        success: (0..129)
            .map(|i| pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(put(
                    &format!("t{i}"),
                    "v",
                ))),
            })
            .collect(),
        ..Default::default()
    };
    let err = kv.txn(too_many).await.unwrap_err();
    assert_eq!(
        err.message(),
        "etcdserver: too many operations in txn request"
    );
    // Past the gRPC receive limit (request limit + 512 KiB) the transport refuses it unread, with
    // gRPC-Go's code and text (as etcd).
    let err = kv
        .put(put("huge", &"x".repeat(700 * 1024)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message()
            .starts_with("grpc: received message larger than max ("),
        "{err:?}"
    );

    // Inverted ranges read and delete nothing.
    let inverted = pb::RangeRequest {
        key: "z".into(),
        range_end: "a".into(),
        ..Default::default()
    };
    assert!(kv
        .range(inverted)
        .await
        .unwrap()
        .into_inner()
        .kvs
        .is_empty());
    let del = pb::DeleteRangeRequest {
        key: "z".into(),
        range_end: "a".into(),
        ..Default::default()
    };
    assert_eq!(kv.delete_range(del).await.unwrap().into_inner().deleted, 0);

    // Nothing changed, and the server still serves on the same and on new connections.
    let after = everything(&mut kv).await;
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(
        after.header.unwrap().revision,
        before.header.unwrap().revision
    );
    let mut fresh = s.kv().await;
    assert_eq!(
        fresh
            .put(put("still", "serving"))
            .await
            .unwrap()
            .into_inner()
            .header
            .unwrap()
            .revision,
        3
    );
}

fn create(key: &str, watch_id: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                watch_id,
                ..Default::default()
            },
        )),
    }
}

fn control(req: pb::watch_request::RequestUnion) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(req),
    }
}

struct WatchStream {
    tx: mpsc::Sender<pb::WatchRequest>,
    rx: tonic::Streaming<pb::WatchResponse>,
}

impl WatchStream {
    async fn open(s: &Server) -> Self {
        let (tx, rx) = mpsc::channel(16);
        let mut client = WatchClient::new(s.channel().await).max_decoding_message_size(usize::MAX);
        let rx = client
            .watch(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Self { tx, rx }
    }

    async fn send(&self, req: pb::WatchRequest) {
        self.tx.send(req).await.unwrap();
    }

    async fn next(&mut self) -> pb::WatchResponse {
        tokio::time::timeout(Duration::from_secs(10), self.rx.message())
            .await
            .expect("a watch response in time")
            .unwrap()
            .unwrap()
    }
}

/// A progress request while a watch is catching up from disk (its client read too slowly) is
/// answered once the watch has caught up, after every event up to the answer's revision (etcd
/// 3.5.8's deferred progress; the Kubernetes watch cache waits for it). It used to go unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_request_waits_for_a_watch_catching_up() {
    let s = start(|_| {}).await;
    let mut kv = s.kv().await;
    let mut w = WatchStream::open(&s).await;
    w.send(create("h", 0)).await;
    assert!(w.next().await.created);
    // Unread, these fill the connection's flow-control windows, then the stream's buffer and
    // the watcher's: it falls back to catching up from disk.
    let puts = 1000;
    let value = "x".repeat(16 << 10);
    for i in 0..puts {
        kv.put(put("h", &format!("{i}{value}"))).await.unwrap();
    }
    assert!(
        s.member.store().watch_stats().unsynced > 0,
        "the watch should be catching up: {:?}",
        s.member.store().watch_stats()
    );
    w.send(control(pb::watch_request::RequestUnion::ProgressRequest(
        pb::WatchProgressRequest {},
    )))
    .await;
    let mut last_event = 0;
    let mut events = 0;
    let answer = loop {
        let r = w.next().await;
        if r.watch_id == -1 {
            break r.header.unwrap().revision;
        }
        events += r.events.len();
        last_event = r
            .events
            .last()
            .map_or(last_event, |e| e.kv.as_ref().unwrap().mod_revision);
    };
    assert_eq!(events, puts, "the answer came before every event");
    assert!(
        answer <= last_event,
        "progress at {answer}, events only up to {last_event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ids_cancel_and_progress() {
    let s = start(|_| {}).await;
    let mut kv = s.kv().await;
    let mut w = WatchStream::open(&s).await;

    // Ids: automatic ones count from 0, a client's own is kept, a taken one is refused.
    w.send(create("a", 0)).await;
    let r = w.next().await;
    assert!(r.created && !r.canceled);
    assert_eq!(r.watch_id, 0);
    w.send(create("b", 7)).await;
    assert_eq!(w.next().await.watch_id, 7);
    w.send(create("b", 7)).await;
    let r = w.next().await;
    assert!(r.created && r.canceled, "{r:?}");
    assert_eq!(
        r.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    w.send(create("c", 0)).await;
    assert_eq!(w.next().await.watch_id, 1);

    // Events reach the right watch id.
    kv.put(put("b", "1")).await.unwrap();
    let r = w.next().await;
    assert_eq!((r.watch_id, r.events.len()), (7, 1));
    assert_eq!(r.events[0].kv.as_ref().unwrap().key, "b");
    assert_eq!(r.header.unwrap().revision, 2);

    // One progress request, one answer with watch id -1 at the current revision.
    w.send(control(pb::watch_request::RequestUnion::ProgressRequest(
        pb::WatchProgressRequest {},
    )))
    .await;
    let r = w.next().await;
    assert_eq!(
        (r.watch_id, r.events.len(), r.header.unwrap().revision),
        (-1, 0, 2),
        "{r:?}"
    );

    // Cancel: acknowledged, and no more events for it.
    w.send(control(pb::watch_request::RequestUnion::CancelRequest(
        pb::WatchCancelRequest { watch_id: 7 },
    )))
    .await;
    let r = w.next().await;
    assert!(r.canceled && r.watch_id == 7, "{r:?}");
    kv.put(put("b", "2")).await.unwrap();
    kv.put(put("a", "1")).await.unwrap();
    let r = w.next().await;
    assert_eq!(
        (r.watch_id, r.header.unwrap().revision),
        (0, 4),
        "the put to b went to no one: {r:?}"
    );

    // An inverted range is refused in-stream.
    let bad = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
            pb::WatchCreateRequest {
                key: "z".into(),
                range_end: "a".into(),
                ..Default::default()
            },
        )),
    };
    w.send(bad).await;
    let r = w.next().await;
    assert!(
        r.canceled && r.watch_id == -1 && r.cancel_reason == "mvcc: watcher range is empty",
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_splits_a_revision_over_the_limit() {
    let s = start(|o| o.max_request_bytes = 64 * 1024).await;
    let mut kv = s.kv().await;
    let value = "v".repeat(30_000);
    kv.put(put("f0", &value)).await.unwrap();
    kv.put(put("f1", &value)).await.unwrap();
    let mut w = WatchStream::open(&s).await;
    for (fragment, watch_id) in [(true, 1), (false, 2)] {
        let req = pb::WatchCreateRequest {
            key: "f".into(),
            range_end: "g".into(),
            prev_kv: true,
            fragment,
            watch_id,
            ..Default::default()
        };
        w.send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(req)),
        })
        .await;
        assert!(w.next().await.created);
    }
    // One txn (a 60 KB request, under the limit) overwrites both keys: with their previous values
    // the revision's events are ~120 KB, over it.
    let ops = (0..2)
        .map(|i| pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(put(
                &format!("f{i}"),
                &value,
            ))),
        })
        .collect();
    kv.txn(pb::TxnRequest {
        success: ops,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut fragmented = Vec::new();
    let mut whole = None;
    while whole.is_none()
        || fragmented
            .last()
            .is_none_or(|r: &pb::WatchResponse| r.fragment)
    {
        let r = w.next().await;
        if r.watch_id == 1 {
            fragmented.push(r);
        } else {
            whole = Some(r);
        }
    }
    assert_eq!(
        whole.unwrap().events.len(),
        2,
        "without fragment: one response"
    );
    assert_eq!(fragmented.len(), 2, "with fragment: split in two");
    assert!(fragmented[0].fragment && !fragmented[1].fragment);
    assert!(fragmented
        .iter()
        .all(|r| r.encoded_len() <= 64 * 1024 && r.header.unwrap().revision == 4));
    assert_eq!(fragmented.iter().map(|r| r.events.len()).sum::<usize>(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notify_watches_get_empty_responses() {
    let s = start(|_| {}).await;
    let mut kv = s.kv().await;
    kv.put(put("p", "1")).await.unwrap();
    let mut w = WatchStream::open(&s).await;
    let req = pb::WatchCreateRequest {
        key: "p".into(),
        progress_notify: true,
        watch_id: 3,
        ..Default::default()
    };
    w.send(pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(req)),
    })
    .await;
    w.send(create("q", 4)).await;
    assert!(w.next().await.created);
    assert!(w.next().await.created);
    // The interval is 200 ms in these tests (etcd: 10 minutes); only watch 3 asked.
    for _ in 0..3 {
        let r = w.next().await;
        assert_eq!(
            (r.watch_id, r.events.len(), r.header.unwrap().revision),
            (3, 0, 2),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_stream_answers_ttl_zero_for_unknown_leases() {
    let s = start(|_| {}).await;
    let mut lease = pb::lease_client::LeaseClient::new(s.channel().await);
    let granted = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 30, id: 0 })
        .await
        .unwrap()
        .into_inner();
    let (tx, rx) = mpsc::channel(4);
    let mut stream = lease
        .lease_keep_alive(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(pb::LeaseKeepAliveRequest { id: granted.id })
        .await
        .unwrap();
    let r = stream.message().await.unwrap().unwrap();
    assert_eq!((r.id, r.ttl), (granted.id, 30));
    tx.send(pb::LeaseKeepAliveRequest { id: 4242 })
        .await
        .unwrap();
    let r = stream.message().await.unwrap().unwrap();
    assert_eq!((r.id, r.ttl), (4242, 0));
    let ttl = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest {
            id: 4242,
            keys: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ttl.ttl, -1);
    let err = lease
        .lease_grant(pb::LeaseGrantRequest {
            ttl: 30,
            id: granted.id,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::FailedPrecondition, "etcdserver: lease already exists")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    let s = start(|_| {}).await;
    let channel = s.channel().await;
    let mut tasks = Vec::new();
    for i in 0..256 {
        let mut kv = KvClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            kv.put(put(&format!("c{i}"), "v"))
                .await
                .unwrap()
                .into_inner()
                .header
                .unwrap()
                .revision
        }));
    }
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(
        revisions,
        (2..258).collect::<Vec<i64>>(),
        "every put got its own revision"
    );
    let metrics = ballast_server::http::render(&s.member);
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_count ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    // Before the puts: the initial membership, the leader's blank entry and the member publishing
    // itself, each applied and synced on its own at most.
    let (syncs, commits) = (
        count("ballast_raft_appends_per_sync"),
        count("ballast_server_commit_batch_size"),
    );
    eprintln!("256 concurrent puts: {syncs} log syncs, {commits} store commits");
    assert!(
        syncs < 128,
        "256 concurrent puts took {syncs} log syncs: no group commit"
    );
    assert!(
        commits < 128,
        "256 concurrent puts took {commits} store commits: no group commit"
    );
    assert!(s.member.applied_index() >= 256);
}
