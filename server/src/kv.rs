//! The `etcdserverpb.KV` service: Range, Put, DeleteRange, Txn, Compact.

use ballast_proto::pb;
use ballast_store::{WriteRequest, WriteResponse};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::node::Node;

#[derive(Debug, Clone)]
pub struct KvService {
    node: Node,
}

impl KvService {
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    /// etcd refuses a write whose encoding exceeds `--max-request-bytes` (the gRPC limit is looser).
    fn check_size(&self, msg: &impl Message) -> ApiResult<()> {
        if msg.encoded_len() > self.node.options().max_request_bytes {
            return Err(ApiError::RequestTooLarge);
        }
        Ok(())
    }

    async fn write(&self, caller: &Caller, req: WriteRequest) -> ApiResult<WriteResponse> {
        self.node.propose_as(caller, req).await
    }
}

/// Reads run on the calling worker thread but tell the runtime they block, so RocksDB I/O never
/// stalls other tasks queued on that worker.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let caller = self.node.caller(request.metadata())?;
        let req = convert::range_request(request.into_inner()).map_err(ApiError::from)?;
        // A linearizable read is checked against the auth state at its read point, as etcd's:
        // checked before, on a member that lagged, it would pass on a permission already revoked.
        if !req.serializable {
            self.node.linearize().await?;
        }
        self.node
            .permit(&caller, |auth, user| auth.check_range(user, &req))?;
        let store = self.node.store();
        // One key is a point lookup, usually in cached blocks: handing the worker over
        // (`blocking`) would cost more than the read. A range may read much.
        let resp = if req.range_end.is_empty() {
            store.range(&req)
        } else {
            blocking(|| store.range(&req))
        };
        let resp = resp.map_err(ApiError::from)?;
        let header = self.node.header(resp.revision);
        Ok(Response::new(convert::range_response(resp, header)))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let caller = self.node.caller(request.metadata())?;
        let req = request.into_inner();
        self.check_size(&req)?;
        match self
            .write(&caller, WriteRequest::Put(convert::put_request(req)))
            .await?
        {
            WriteResponse::Put(r) => {
                let header = self.node.header(r.revision);
                Ok(Response::new(convert::put_response(r, header)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let caller = self.node.caller(request.metadata())?;
        let req = request.into_inner();
        self.check_size(&req)?;
        match self
            .write(
                &caller,
                WriteRequest::DeleteRange(convert::delete_request(req)),
            )
            .await?
        {
            WriteResponse::DeleteRange(r) => {
                let header = self.node.header(r.revision);
                Ok(Response::new(convert::delete_response(r, header)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let caller = self.node.caller(request.metadata())?;
        let req = request.into_inner();
        self.check_size(&req)?;
        let txn = convert::txn_request(req).map_err(ApiError::from)?;
        // etcd's request checks (op limit, duplicate keys) run here, before proposing, against
        // this member's --max-txn-ops: at apply time nothing member-local may decide what an
        // entry does, or members with different flags would diverge.
        ballast_store::check_txn(&txn, self.node.options().max_txn_ops).map_err(ApiError::from)?;
        // A txn that cannot write needs no commit: it reads a consistent snapshot directly, as
        // etcd's read-only txn path does.
        let resp = if convert::txn_is_read_only(&txn) {
            if !txn_is_serializable(&txn) {
                self.node.linearize().await?;
            }
            self.node
                .permit(&caller, |auth, user| auth.check_txn(user, &txn))?;
            let store = self.node.store();
            blocking(|| store.txn(txn)).map_err(ApiError::from)?
        } else {
            match self.write(&caller, WriteRequest::Txn(txn)).await? {
                WriteResponse::Txn(r) => r,
                other => return Err(unexpected(other)),
            }
        };
        let header = self.node.header(resp.revision);
        Ok(Response::new(convert::txn_response(resp, header)))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let caller = self.node.caller(request.metadata())?;
        let req = request.into_inner();
        let revision = match self
            .write(&caller, WriteRequest::Compact(req.revision))
            .await?
        {
            WriteResponse::Compact { revision } => revision,
            other => return Err(unexpected(other)),
        };
        if req.physical {
            // "physical" asks to return only once the compacted versions are gone from disk.
            let store = self.node.store();
            tokio::task::spawn_blocking(move || store.wait_compacted(req.revision))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(pb::CompactionResponse {
            header: Some(self.node.header(revision)),
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

/// The store answered a request with another request's response: a bug, never a client's fault.
pub(crate) fn unexpected(resp: WriteResponse) -> Status {
    Status::internal(format!("ballast: unexpected store response {resp:?}"))
}
