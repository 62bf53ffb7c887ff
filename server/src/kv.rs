//! The `etcdserverpb.KV` service: Range, Put, DeleteRange, Txn, Compact.

use ballast_proto::pb;
use ballast_store::{WriteRequest, WriteResponse};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::access::{answer, blocking, Caller};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::member::Member;

#[derive(Debug, Clone)]
pub struct KvService {
    member: Member,
}

impl KvService {
    pub fn new(member: Member) -> Self {
        Self { member }
    }

    /// etcd refuses a write whose encoding exceeds `--max-request-bytes` (the gRPC limit is looser).
    fn check_size(&self, msg: &impl Message) -> ApiResult<()> {
        if msg.encoded_len() > self.member.options().max_request_bytes {
            return Err(ApiError::RequestTooLarge);
        }
        Ok(())
    }

    async fn write(&self, caller: &Caller, req: WriteRequest) -> ApiResult<WriteResponse> {
        self.member.propose_as(caller, req).await
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let (meta, _, req) = request.into_parts();
        let req = convert::range_request(req).map_err(ApiError::from)?;
        // A linearizable read resolves its token and checks its permission at its read point, as
        // etcd's (linearizableReadNotify, then AuthInfoFromCtx): before it, a member that lagged
        // would judge by its stale copy, accept a token a password change or auth disable had
        // ended, pass a permission already revoked, or refuse a token it has not applied yet.
        if !req.serializable {
            self.member.linearize().await?;
        }
        let caller = self.member.caller(&meta)?;
        self.member
            .permit(&caller, |auth, user| auth.check_range(user, &req))?;
        let store = self.member.store();
        // One key is a point lookup, usually in cached blocks: handing the worker over
        // (`blocking`) would cost more than the read. A range may read much.
        let resp = if req.range_end.is_empty() {
            store.range(&req)
        } else {
            blocking(|| store.range(&req))
        };
        let resp = resp.map_err(ApiError::from)?;
        let header = self.member.header(resp.revision);
        Ok(Response::new(convert::range_response(resp, header)))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        self.check_size(&req)?;
        let resp = self
            .write(&caller, WriteRequest::Put(convert::put_request(req)))
            .await?;
        let r = answer!(resp, WriteResponse::Put(r) => r)?;
        let header = self.member.header(r.revision);
        Ok(Response::new(convert::put_response(r, header)))
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        self.check_size(&req)?;
        let resp = self
            .write(
                &caller,
                WriteRequest::DeleteRange(convert::delete_request(req)),
            )
            .await?;
        let r = answer!(resp, WriteResponse::DeleteRange(r) => r)?;
        let header = self.member.header(r.revision);
        Ok(Response::new(convert::delete_response(r, header)))
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let (meta, _, req) = request.into_parts();
        self.check_size(&req)?;
        let txn = convert::txn_request(req).map_err(ApiError::from)?;
        // etcd's request checks (op limit, duplicate keys) run here, before proposing, against
        // this member's --max-txn-ops: at apply time nothing member-local may decide what an
        // entry does, or members with different flags would diverge.
        ballast_store::check_txn(&txn, self.member.options().max_txn_ops)
            .map_err(ApiError::from)?;
        // A txn that cannot write needs no commit: it reads a consistent snapshot directly, as
        // etcd's read-only txn path does.
        let resp = if convert::txn_is_read_only(&txn) {
            // Its token resolved and its permissions checked at its read point, as Range's.
            if !txn_is_serializable(&txn) {
                self.member.linearize().await?;
            }
            let caller = self.member.caller(&meta)?;
            self.member
                .permit(&caller, |auth, user| auth.check_txn(user, &txn))?;
            let store = self.member.store();
            blocking(|| store.txn(txn)).map_err(ApiError::from)?
        } else {
            let caller = self.member.caller(&meta)?;
            let resp = self.write(&caller, WriteRequest::Txn(txn)).await?;
            answer!(resp, WriteResponse::Txn(r) => r)?
        };
        let header = self.member.header(resp.revision);
        Ok(Response::new(convert::txn_response(resp, header)))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let resp = self
            .write(&caller, WriteRequest::Compact(req.revision))
            .await?;
        let revision = answer!(resp, WriteResponse::Compact { revision } => revision)?;
        if req.physical {
            // "physical" asks to return only once the compacted versions are gone from disk.
            let store = self.member.store();
            tokio::task::spawn_blocking(move || store.wait_compacted(req.revision))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(pb::CompactionResponse {
            header: Some(self.member.header(revision)),
        }))
    }
}

/// A read-only txn whose every range is serializable may read the local store as it is (etcd's
/// `isTxnSerializable`); any other needs a linearizable read point first.
fn txn_is_serializable(txn: &ballast_store::TxnRequest) -> bool {
    use ballast_store::RequestOp;
    txn.success.iter().chain(&txn.failure).all(|op| match op {
        RequestOp::Range(r) => r.serializable,
        RequestOp::Txn(t) => txn_is_serializable(t),
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
    })
}
