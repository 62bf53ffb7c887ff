//! The `v3electionpb.Election` service: etcd's server-side leader election, built like etcd's
//! `concurrency.Election`. Each candidate owns the key `name/<lease hex>` (a lease granted for it
//! if the request names none); the leader is the one created first, and its value is the
//! proclamation.

use std::pin::Pin;

use ballast_proto::{pb, v3electionpb};
use ballast_store::{
    Access, Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyValue, PutRequest,
    RangeRequest, RequestOp, SortOrder, SortTarget, TxnRequest, WatchRequest, WriteRequest,
    WriteResponse,
};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::convert;
use crate::error::ApiError;
use crate::lock::{create_once, session_lease, wait_for_turn, Abandon};
use crate::member::Member;

#[derive(Debug, Clone)]
pub struct ElectionService {
    member: Member,
}

impl ElectionService {
    pub fn new(member: Member) -> Self {
        Self { member }
    }

    fn prefix(name: &[u8]) -> Vec<u8> {
        [name, b"/"].concat()
    }

    /// The current leader's key, if any: the oldest key under the election's prefix.
    fn leader_kv(&self, name: &[u8]) -> Result<(Option<KeyValue>, i64), ApiError> {
        let req = RangeRequest {
            limit: 1,
            sort_order: SortOrder::Ascend,
            sort_target: SortTarget::Create,
            ..RangeRequest::prefix(Bytes::from(Self::prefix(name)))
        };
        let resp = self.member.store().range(&req)?;
        Ok((resp.kvs.into_iter().next(), resp.revision))
    }

    /// Runs `op(leader key)` only while the leader key is still the one created at its `rev`,
    /// if `caller` may read and write the election's keys.
    async fn if_still_leader(
        &self,
        caller: &Caller,
        leader: Option<v3electionpb::LeaderKey>,
        op: impl FnOnce(Bytes) -> RequestOp,
    ) -> Result<i64, Status> {
        let leader =
            leader.ok_or_else(|| Status::invalid_argument("\"leader\" field must be provided"))?;
        self.member.permit_prefix(
            caller,
            &Self::prefix(&leader.name),
            &[Access::Read, Access::Write],
        )?;
        let op = op(leader.key.clone());
        let txn = TxnRequest {
            compare: vec![Compare::new(
                leader.key,
                CompareResult::Equal,
                CompareTarget::Create(leader.rev),
            )],
            success: vec![op],
            failure: vec![],
        };
        match self
            .member
            .propose_as(caller, WriteRequest::Txn(txn))
            .await?
        {
            WriteResponse::Txn(t) if t.succeeded => Ok(t.revision),
            // etcd's ErrElectionNotLeader, which its server returns as is (code Unknown).
            WriteResponse::Txn(_) => Err(Status::unknown("election: not leader")),
            other => Err(crate::access::unexpected(other).into()),
        }
    }
}

type ObserveStream =
    Pin<Box<dyn Stream<Item = Result<v3electionpb::LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl v3electionpb::election_server::Election for ElectionService {
    type ObserveStream = ObserveStream;

    async fn campaign(
        &self,
        request: Request<v3electionpb::CampaignRequest>,
    ) -> Result<Response<v3electionpb::CampaignResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let prefix = Self::prefix(&req.name);
        self.member
            .permit_prefix(&caller, &prefix, &[Access::Read, Access::Write])?;
        let lease = session_lease(&self.member, &caller, req.lease).await?;
        let key = Bytes::from([prefix.clone(), format!("{lease:x}").into_bytes()].concat());
        let mine = create_once(&self.member, &caller, &key, lease, req.value.clone()).await?;
        let guard = Abandon::new(&self.member, &key);
        if mine.value != req.value {
            // Campaigning again with a new value proclaims it (etcd does the same).
            let put = PutRequest {
                ignore_lease: true,
                ..PutRequest::new(key.clone(), req.value.clone())
            };
            self.member
                .propose_as(&caller, WriteRequest::Put(put))
                .await?;
        }
        let revision = wait_for_turn(&self.member, &prefix, mine.create_revision).await?;
        guard.keep();
        let leader = v3electionpb::LeaderKey {
            name: req.name,
            key,
            rev: mine.create_revision,
            lease,
        };
        Ok(Response::new(v3electionpb::CampaignResponse {
            header: Some(self.member.header(revision)),
            leader: Some(leader),
        }))
    }

    async fn proclaim(
        &self,
        request: Request<v3electionpb::ProclaimRequest>,
    ) -> Result<Response<v3electionpb::ProclaimResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let value = req.value;
        let put = |key| {
            RequestOp::Put(PutRequest {
                ignore_lease: true,
                ..PutRequest::new(key, value)
            })
        };
        let revision = self.if_still_leader(&caller, req.leader, put).await?;
        Ok(Response::new(v3electionpb::ProclaimResponse {
            header: Some(self.member.header(revision)),
        }))
    }

    async fn leader(
        &self,
        request: Request<v3electionpb::LeaderRequest>,
    ) -> Result<Response<v3electionpb::LeaderResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let name = request.into_inner().name;
        let prefix = Self::prefix(&name);
        self.member.linearize().await?;
        self.member
            .permit_prefix(&caller, &prefix, &[Access::Read])?;
        let (kv, revision) = self.leader_kv(&name)?;
        // etcd's ErrElectionNoLeader, returned as is (code Unknown).
        let kv = kv.ok_or_else(|| Status::unknown("election: no leader"))?;
        Ok(Response::new(v3electionpb::LeaderResponse {
            header: Some(self.member.header(revision)),
            kv: Some(convert::key_value(kv)),
        }))
    }

    async fn observe(
        &self,
        request: Request<v3electionpb::LeaderRequest>,
    ) -> Result<Response<ObserveStream>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let name = request.into_inner().name;
        let prefix = Self::prefix(&name);
        self.member
            .permit_prefix(&caller, &prefix, &[Access::Read])?;
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move {
            // Every change of leader or of its proclamation, in order.
            let mut last: Option<(Bytes, i64)> = None;
            loop {
                let (kv, revision) = match this.leader_kv(&name) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                if let Some(kv) = kv {
                    let seen = (kv.key.clone(), kv.mod_revision);
                    if last.as_ref() != Some(&seen) {
                        last = Some(seen);
                        let resp = v3electionpb::LeaderResponse {
                            header: Some(this.member.header(revision)),
                            kv: Some(convert::key_value(kv)),
                        };
                        if tx.send(Ok(resp)).await.is_err() {
                            return;
                        }
                    }
                }
                let prefix = ElectionService::prefix(&name);
                let watch = WatchRequest {
                    range_end: ballast_store::prefix_end(&prefix),
                    key: Bytes::from(prefix),
                    start_revision: revision + 1,
                    ..Default::default()
                };
                let Ok(mut watcher) = this.member.store().watch(watch) else {
                    return;
                };
                tokio::select! {
                    _ = watcher.recv() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn resign(
        &self,
        request: Request<v3electionpb::ResignRequest>,
    ) -> Result<Response<v3electionpb::ResignResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let delete = |key| RequestOp::DeleteRange(DeleteRangeRequest::key(key));
        let revision = self.if_still_leader(&caller, req.leader, delete).await?;
        let header: pb::ResponseHeader = self.member.header(revision);
        Ok(Response::new(v3electionpb::ResignResponse {
            header: Some(header),
        }))
    }
}
