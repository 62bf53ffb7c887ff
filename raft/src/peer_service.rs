//! The server side of `ballast.raft.Peer`, beside its client ([`crate::network`]): refuses RPCs
//! addressed to another member or in another wire format, hands appends, votes, leader transfers
//! and snapshots to openraft, and runs forwarded leader requests ([`Replica::run_as_leader`]).

use std::io;
use std::path::Path;

use ballast_proto::raftpb::peer_server::{Peer as PeerRpc, PeerServer};
use ballast_proto::raftpb::{Blob, SnapshotChunk};
use ballast_store::{StoreError, WriteResponse};
use openraft::raft::AppendEntriesRequest;
use serde::Serialize;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::checkpoints::{self, SnapshotFiles};
use crate::codec::{decode, encode, WIRE_FORMAT};
use crate::layout;
use crate::network::{TO_MEMBER, WIRE_FORMAT_HEADER};
use crate::replica::Replica;
use crate::types::{SnapshotMeta, TypeConfig, Vote};
use crate::wire::{LeaderReply, LeaderRequest, ReplicaError};

/// The server side of `ballast.raft.Peer`.
#[derive(Debug)]
pub struct PeerService {
    replica: Replica,
}

impl PeerService {
    /// The gRPC service peers call, answered by `replica`.
    pub fn server(replica: Replica) -> PeerServer<PeerService> {
        PeerServer::new(PeerService { replica })
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// Refuses an RPC addressed to another member (see [`TO_MEMBER`]), unread.
    fn for_me<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let me = self.replica.inner.id;
        let format = match request.metadata().get(WIRE_FORMAT_HEADER) {
            None => Some(1),
            Some(value) => value.to_str().ok().and_then(|v| v.parse::<u32>().ok()),
        };
        if format != Some(WIRE_FORMAT) {
            return Err(Status::failed_precondition(format!(
                "a peer speaks wire format {format:?}; member {me:x} speaks format {WIRE_FORMAT}"
            )));
        }
        let to = request
            .metadata()
            .get(TO_MEMBER)
            .and_then(|to| to.to_str().ok())
            .and_then(|to| u64::from_str_radix(to, 16).ok());
        match to {
            Some(to) if to == me => Ok(()),
            Some(to) => Err(Status::failed_precondition(format!(
                "request for member {to:x} reached member {me:x}"
            ))),
            None => Err(Status::failed_precondition(format!(
                "request names no member in {TO_MEMBER:?} (this is member {me:x})"
            ))),
        }
    }
}

fn reply<T: Serialize>(value: &T) -> Result<Response<Blob>, Status> {
    Ok(Response::new(Blob {
        data: encode(value).into(),
    }))
}

fn bad_request(err: &crate::codec::DecodeError) -> Status {
    Status::invalid_argument(err.to_string())
}

#[tonic::async_trait]
impl PeerRpc for PeerService {
    async fn append(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.for_me(&request)?;
        let req =
            decode("append request", &request.into_inner().data).map_err(|e| bad_request(&e))?;
        let resp = self
            .replica
            .inner
            .raft
            .append_entries(req)
            .await
            .map_err(|e| e.to_string());
        reply(&resp)
    }

    type AppendStreamStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Blob, Status>> + Send + 'static>>;

    async fn append_stream(
        &self,
        request: Request<Streaming<Blob>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        self.for_me(&request)?;
        // The leader's appends in order; a broken stream or an append that does not decode ends
        // them (the leader then sees the answers stop and starts a new stream).
        let closing = self.replica.inner.closing.subscribe();
        if *closing.borrow() {
            return Err(Status::unavailable("member stopping"));
        }
        let closed = || {
            let mut closing = closing.clone();
            async move {
                let _ = closing.wait_for(|&c| c).await;
            }
        };
        // Both directions end when the member stops (openraft's reader task holds the input).
        let input =
            futures_util::StreamExt::take_until(request.into_inner(), closed()).map_while(|item| {
                match item.map(|blob| {
                    decode::<AppendEntriesRequest<TypeConfig>>("append request", &blob.data)
                }) {
                    Ok(Ok(req)) => Some(req),
                    Ok(Err(err)) => {
                        tracing::warn!(%err, "ending an append stream");
                        None
                    }
                    Err(_) => None,
                }
            });
        let output = futures_util::StreamExt::take_until(
            self.replica.inner.raft.stream_append(input),
            closed(),
        )
        .map(|answer| {
            Ok(Blob {
                data: encode(&answer.map_err(|fatal| fatal.to_string())).into(),
            })
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.for_me(&request)?;
        let req =
            decode("vote request", &request.into_inner().data).map_err(|e| bad_request(&e))?;
        let resp = self
            .replica
            .inner
            .raft
            .vote(req)
            .await
            .map_err(|e| e.to_string());
        reply(&resp)
    }

    async fn transfer_leader(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.for_me(&request)?;
        let req = decode("transfer-leader request", &request.into_inner().data)
            .map_err(|e| bad_request(&e))?;
        let resp = self
            .replica
            .inner
            .raft
            .handle_transfer_leader(req)
            .await
            .map_err(|e| e.to_string());
        reply(&resp)
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Blob>, Status> {
        self.for_me(&request)?;
        let mut stream = request.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let (vote, meta): (Vote, SnapshotMeta) =
            decode("snapshot header", &first.header).map_err(|e| bad_request(&e))?;
        let dir = checkpoints::snapshots_dir(&self.replica.inner.data_dir).join(format!(
            "{}{}",
            layout::RECEIVING_PREFIX,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let received = receive_files(&dir, &mut stream).await;
        if let Err(err) = received {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(err);
        }
        tracing::info!(last_log_id = ?meta.last_log_id, "received a snapshot");
        let snapshot = openraft::Snapshot {
            meta,
            snapshot: SnapshotFiles { dir },
        };
        let resp = self
            .replica
            .inner
            .raft
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| e.to_string());
        reply(&resp)
    }

    async fn forward(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.for_me(&request)?;
        let req: LeaderRequest =
            decode("forwarded request", &request.into_inner().data).map_err(|e| bad_request(&e))?;
        let result = match self.replica.run_as_leader(&req).await {
            Ok(LeaderReply::Write(result)) => wire_safe(Ok(result)).map(LeaderReply::Write),
            Ok(LeaderReply::Writes(results)) => Ok(LeaderReply::Writes(
                results.into_iter().map(wire_safe).collect(),
            )),
            other => other,
        };
        reply(&result)
    }
}

/// A storage failure cannot cross the wire as itself.
fn wire_safe(
    result: Result<Result<WriteResponse, StoreError>, ReplicaError>,
) -> Result<Result<WriteResponse, StoreError>, ReplicaError> {
    match result {
        Ok(Err(StoreError::Backend(err))) => Err(ReplicaError::Other(format!(
            "leader: store backend failure: {err}"
        ))),
        other => other,
    }
}

/// Writes the streamed files of a snapshot into `dir`, synced.
async fn receive_files(dir: &Path, stream: &mut Streaming<SnapshotChunk>) -> Result<(), Status> {
    use tokio::io::AsyncWriteExt;
    let io_err = |e: io::Error| Status::internal(format!("writing snapshot: {e}"));
    tokio::fs::create_dir_all(dir).await.map_err(io_err)?;
    let mut current: Option<(String, tokio::fs::File)> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let name = chunk.file;
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Status::invalid_argument(format!(
                "bad snapshot file name {name:?}"
            )));
        }
        if current.as_ref().is_none_or(|(open, _)| *open != name) {
            if let Some((_, file)) = current.take() {
                file.sync_all().await.map_err(io_err)?;
            }
            let file = tokio::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(dir.join(&name))
                .await
                .map_err(io_err)?;
            current = Some((name, file));
        }
        let (_, file) = current.as_mut().expect("opened above");
        file.write_all(&chunk.data).await.map_err(io_err)?;
    }
    if let Some((_, mut file)) = current.take() {
        file.flush().await.map_err(io_err)?;
        file.sync_all().await.map_err(io_err)?;
    }
    Ok(())
}
