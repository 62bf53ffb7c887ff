//! The member-to-member transport: openraft's RPCs over gRPC (`ballast.raft.Peer`, see
//! `proto/raft.proto`), with openraft's messages encoded by [`crate::codec`].
//!
//! One HTTP/2 connection per peer URL, shared by every replication stream, heartbeat and snapshot
//! to that peer (a tonic `Channel` multiplexes); each RPC carries openraft's deadline.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballast_proto::raftpb::peer_client::PeerClient;
use ballast_proto::raftpb::{Blob, SnapshotChunk};
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::RaftNetworkV2;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

use crate::checkpoints::SnapshotFiles;
use crate::codec::{decode, encode, WIRE_FORMAT};
use crate::types::{MemberNode, NodeId, TypeConfig, Vote};

/// Snapshot files travel in pieces of this size.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The gRPC metadata key that names, in hex, the member a peer RPC is for. A member refuses an
/// RPC addressed to another (as etcd's rafthttp refuses a message whose `X-Raft-To` is not its
/// id): a peer URL may have come to serve another member, or another cluster, since the sender
/// learned it, and raft messages of one cluster must not reach another.
pub const TO_MEMBER: &str = "ballast-to-member";

/// The gRPC metadata key that names the sender's wire format ([`WIRE_FORMAT`]). A member refuses
/// an RPC in another (a peer without the key predates versioning and speaks format 1).
pub const WIRE_FORMAT_HEADER: &str = "ballast-wire-format";

/// `message` as a peer RPC addressed to member `to`.
pub fn addressed<T>(message: T, to: NodeId) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        TO_MEMBER,
        format!("{to:x}")
            .parse()
            .expect("hex digits are valid metadata"),
    );
    metadata.insert(WIRE_FORMAT_HEADER, WIRE_FORMAT.into());
    request
}

/// The connections to peers, by URL. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Network {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Network {
    /// The connection to a member (made lazily, and reused).
    pub fn channel(&self, node: &MemberNode) -> Result<Channel, String> {
        let url = node
            .peer_urls
            .first()
            .ok_or_else(|| format!("member {} has no peer URL", node.name))?;
        let mut channels = self.channels.lock();
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        let channel = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("bad peer URL {url}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .connect_lazy();
        channels.insert(url.clone(), channel.clone());
        Ok(channel)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &MemberNode) -> Peer {
        Peer {
            target,
            client: self
                .channel(node)
                .map(|c| PeerClient::new(c).max_decoding_message_size(usize::MAX)),
        }
    }
}

/// One peer, as openraft's replication and election see it.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    client: Result<PeerClient<Channel>, String>,
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Append,
    Vote,
    TransferLeader,
}

/// A transport failure as openraft's error.
fn rpc_error(status: &tonic::Status) -> RPCError<TypeConfig> {
    let err = std::io::Error::other(status.to_string());
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown => {
            RPCError::Unreachable(Unreachable::new(&err))
        }
        _ => RPCError::Network(NetworkError::new(&err)),
    }
}

fn unreachable(msg: &str) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(msg.to_owned())))
}

impl Peer {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        method: Method,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let client = self.client.as_mut().map_err(|e| unreachable(e))?;
        let mut request = addressed(
            Blob {
                data: encode(req).into(),
            },
            self.target,
        );
        request.set_timeout(timeout);
        let reply = match method {
            Method::Append => client.append(request).await,
            Method::Vote => client.vote(request).await,
            Method::TransferLeader => client.transfer_leader(request).await,
        }
        .map_err(|s| rpc_error(&s))?;
        decode_reply(self.target, "peer reply", &reply.into_inner().data)
    }
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotFiles;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Method::Append, &rpc, option.soft_ttl()).await
    }

    /// Pipelined replication over one gRPC stream (`Peer/AppendStream`): every append goes out as
    /// openraft produces it, without waiting for the answers to those before (openraft's default
    /// sends one and waits), so a follower's group commit covers several in one sync. An answer
    /// may take `soft_ttl` after its append was sent, as a single call may (the stream then ends
    /// with an error and openraft starts another); an idle stream waits as long as it likes.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: futures_util::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            let target = self.target;
            let ttl = option.soft_ttl();
            let client = self.client.as_mut().map_err(|e| unreachable(e))?;
            // When each append still unanswered went out, oldest first.
            let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
            let requests = {
                let sent = sent.clone();
                input.map(move |req| {
                    sent.lock().push_back(Instant::now());
                    Blob {
                        data: encode(&req).into(),
                    }
                })
            };
            let call = tokio::time::timeout(ttl, client.append_stream(addressed(requests, target)));
            let answers = call
                .await
                .map_err(|_| timed_out(target, ttl))?
                .map_err(|s| rpc_error(&s))?
                .into_inner();
            let answers = futures_util::stream::unfold(Some(answers), move |state| {
                let sent = sent.clone();
                async move {
                    let mut answers = state?;
                    loop {
                        let oldest = sent.lock().front().copied();
                        let deadline = oldest.unwrap_or_else(Instant::now) + ttl;
                        tokio::select! {
                            answer = answers.next() => {
                                sent.lock().pop_front();
                                let answer: Result<StreamAppendResult<TypeConfig>, _> =
                                    answer?.map_err(|s| rpc_error(&s)).and_then(|blob| decode_reply(target, "append answer", &blob.data));
                                let more = answer.as_ref().is_ok_and(|a| a.is_ok());
                                return Some((answer, more.then_some(answers)));
                            }
                            () = tokio::time::sleep_until(deadline.into()) => {
                                if oldest.is_some() {
                                    return Some((Err(timed_out(target, ttl)), None));
                                }
                            }
                        }
                    }
                }
            });
            Ok(Box::pin(answers) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Method::Vote, &rpc, option.soft_ttl()).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(Method::TransferLeader, &req, option.soft_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotFiles>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let client = self.client.as_mut().map_err(|e| {
            StreamingError::Unreachable(Unreachable::new(&std::io::Error::other(e.clone())))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let header = encode(&(&vote, &snapshot.meta));
        let files = snapshot.snapshot.clone();
        // Files are read on a blocking thread and sent piece by piece: never the whole snapshot in memory.
        let reader = tokio::task::spawn_blocking(move || send_files(&files, header, &tx));
        let call = client.snapshot(addressed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            self.target,
        ));
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = call => reply,
        };
        let read = reader
            .await
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        if let Err(err) = read {
            return Err(StreamingError::Network(NetworkError::new(&err)));
        }
        let reply = reply.map_err(|s| match rpc_error(&s) {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })?;
        let answer: Result<SnapshotResponse<TypeConfig>, String> =
            decode("snapshot reply", &reply.into_inner().data)
                .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| StreamingError::Unreachable(Unreachable::new(&std::io::Error::other(e))))
    }
}

/// A peer's reply (a call's, or one answer of an append stream) as openraft's result.
fn decode_reply<Resp: DeserializeOwned>(
    target: NodeId,
    what: &'static str,
    data: &[u8],
) -> Result<Resp, RPCError<TypeConfig>> {
    // The peer answers Err(text) when its raft has stopped.
    let answer: Result<Resp, String> =
        decode(what, data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    answer.map_err(|e| unreachable(&format!("member {target:x}: {e}")))
}

fn timed_out(target: NodeId, ttl: Duration) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
        "member {target:x}: no append answer in {ttl:?}"
    ))))
}

fn send_files(
    files: &SnapshotFiles,
    header: Vec<u8>,
    tx: &tokio::sync::mpsc::Sender<SnapshotChunk>,
) -> std::io::Result<()> {
    use std::io::Read;
    let closed = || std::io::Error::other("snapshot stream closed");
    tx.blocking_send(SnapshotChunk {
        header: header.into(),
        file: String::new(),
        data: Default::default(),
    })
    .map_err(|_| closed())?;
    for name in files.files()? {
        let mut file = std::fs::File::open(files.dir.join(&name))?;
        let mut sent_any = false;
        loop {
            let mut buf = vec![0; SNAPSHOT_CHUNK];
            let n = file.read(&mut buf)?;
            if n == 0 && sent_any {
                break;
            }
            buf.truncate(n);
            tx.blocking_send(SnapshotChunk {
                header: Default::default(),
                file: name.clone(),
                data: buf.into(),
            })
            .map_err(|_| closed())?;
            sent_any = true;
            if n == 0 {
                break;
            }
        }
    }
    Ok(())
}
