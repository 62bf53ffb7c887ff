//! The `etcdserverpb.Maintenance` service: Status, Alarm, Defragment, Hash, HashKV, Snapshot and
//! MoveLeader.

use std::pin::Pin;

use ballast_proto::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::access::blocking;
use crate::error::ApiError;
use crate::layout;
use crate::member::Member;
use crate::snapshot;

/// The etcd API version this server speaks, as `Status` reports it.
pub const API_VERSION: &str = "3.4.0";
/// Bytes per snapshot message (etcd sends 32 KiB).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct MaintenanceService {
    member: Member,
}

impl MaintenanceService {
    /// etcd 3.4's maintenance server checks admin rights itself and returns the auth package's own
    /// error, not the gRPC one: code Unknown, "auth: permission denied" (etcdctl prints it so).
    fn admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.member
            .permit_admin(request.metadata())
            .map(|_| ())
            .map_err(|err| match err {
                ApiError::Store(e) => {
                    Status::unknown(e.to_string().replace("etcdserver: ", "auth: "))
                }
                other => other.into(),
            })
    }

    pub fn new(member: Member) -> Self {
        Self { member }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

fn alarm_name(alarm: i32) -> &'static str {
    pb::AlarmType::try_from(alarm)
        .map(|a| a.as_str_name())
        .unwrap_or("UNKNOWN")
}

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for MaintenanceService {
    type SnapshotStream = SnapshotStream;

    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        let req = request.into_inner();
        let action = pb::alarm_request::AlarmAction::try_from(req.action).map_err(|_| {
            ApiError::UnknownEnum(crate::convert::UnknownEnum {
                field: "alarm action",
                value: req.action,
            })
        })?;
        let alarms = self
            .member
            .alarm(action, req.member_id, req.alarm)
            .await?
            .into_iter()
            .map(|(member_id, alarm)| pb::AlarmMember { member_id, alarm })
            .collect();
        Ok(Response::new(pb::AlarmResponse {
            header: Some(self.member.current_header()),
            alarms,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let member = &self.member;
        let size = member.db_size() as i64;
        let errors = member
            .alarms()
            .into_iter()
            .map(|(member, alarm)| format!("memberID:{member} alarm:{} ", alarm_name(alarm)))
            .collect();
        let raft = member.raft_status();
        Ok(Response::new(pb::StatusResponse {
            header: Some(member.current_header()),
            version: API_VERSION.to_owned(),
            db_size: size,
            leader: raft.leader.unwrap_or(0),
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: raft.applied_index,
            errors,
            db_size_in_use: size,
            is_learner: raft.is_learner,
        }))
    }

    async fn defragment(
        &self,
        request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.admin(&request)?;
        // Online: RocksDB compacts in the background of live reads and writes; nothing stops.
        let store = self.member.store();
        tokio::task::spawn_blocking(move || store.defragment())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::DefragmentResponse {
            header: Some(self.member.current_header()),
        }))
    }

    async fn hash(
        &self,
        request: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        self.admin(&request)?;
        let store = self.member.store();
        let (hash, _, rev) = blocking(|| store.hash_kv(0)).map_err(ApiError::from)?;
        Ok(Response::new(pb::HashResponse {
            header: Some(self.member.header(rev)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        self.admin(&request)?;
        let rev = request.into_inner().revision;
        let store = self.member.store();
        let (hash, compact_revision, _) =
            blocking(|| store.hash_kv(rev)).map_err(ApiError::from)?;
        Ok(Response::new(pb::HashKvResponse {
            header: Some(self.member.current_header()),
            hash,
            compact_revision,
        }))
    }

    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        self.admin(&request)?;
        let member = self.member.clone();
        let (tx, rx) = mpsc::channel::<Result<pb::SnapshotResponse, Status>>(4);
        tokio::task::spawn_blocking(move || {
            if let Err(err) = send_snapshot(&member, &tx) {
                let _ = tx.blocking_send(Err(ApiError::Snapshot(err).into()));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        // etcd: only the leader moves leadership, and only to a voting member.
        let status = self.member.raft_status();
        if status.leader != Some(self.member.identity().member_id) {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        if target == self.member.identity().member_id {
            return Ok(Response::new(pb::MoveLeaderResponse {
                header: Some(self.member.current_header()),
            }));
        }
        if !self
            .member
            .replica()
            .members()
            .iter()
            .any(|m| m.id == target && !m.is_learner)
        {
            return Err(ApiError::BadLeaderTransferee.into());
        }
        self.member
            .replica()
            .transfer_leader(target)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::MoveLeaderResponse {
            header: Some(self.member.current_header()),
        }))
    }
}

/// Checkpoints the store and streams the checkpoint in chunks; the checkpoint is removed after.
fn send_snapshot(
    member: &Member,
    tx: &mpsc::Sender<Result<pb::SnapshotResponse, Status>>,
) -> std::io::Result<()> {
    let tmp = tempdir_in(&member.options().data_dir)?;
    let dir = tmp.join("db");
    let result = (|| {
        member
            .store()
            .checkpoint(&dir)
            .map_err(std::io::Error::other)?;
        let header = member.current_header();
        let files = snapshot::list_files(&dir)?;
        let (_, total) = snapshot::sizes(&files);
        let mut sent = 0u64;
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK);
        let flush = |chunk: &mut Vec<u8>, sent: &mut u64| -> std::io::Result<()> {
            *sent += chunk.len() as u64;
            let msg = pb::SnapshotResponse {
                header: Some(header),
                remaining_bytes: total - *sent,
                blob: std::mem::take(chunk).into(),
            };
            tx.blocking_send(Ok(msg)).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away")
            })
        };
        snapshot::write_stream(&files, |mut bytes| {
            while !bytes.is_empty() {
                let take = bytes.len().min(SNAPSHOT_CHUNK - chunk.len());
                chunk.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if chunk.len() == SNAPSHOT_CHUNK {
                    flush(&mut chunk, &mut sent)?;
                    chunk.reserve(SNAPSHOT_CHUNK);
                }
            }
            Ok(())
        })?;
        if !chunk.is_empty() {
            flush(&mut chunk, &mut sent)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// A fresh directory under `parent` for a snapshot's checkpoint.
fn tempdir_in(parent: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = parent.join(format!(
        "{}{}-{n}",
        layout::SNAPSHOT_TMP_PREFIX,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
