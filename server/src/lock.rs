//! The `v3lockpb.Lock` service: etcd's server-side distributed lock, built like etcd's (and
//! etcdctl's) `concurrency.Mutex` from a key per waiter under `name/`, attached to the caller's
//! lease. The holder is the waiter with the lowest create revision; the others wait for the
//! deletion of the waiter just ahead of them.

use ballast_proto::{pb, v3lockpb};
use ballast_store::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, PutRequest, RangeRequest, RequestOp, SortOrder,
    SortTarget, TxnRequest, WatchRequest, WriteRequest,
};
use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::node::Node;

#[derive(Debug, Clone)]
pub struct LockService {
    node: Node,
}

impl LockService {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

/// Deletes a waiter's key if the wait is abandoned (the client went away), as etcd's mutex does.
struct Abandon {
    node: Node,
    key: Option<Bytes>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let (Some(key), Ok(runtime)) = (self.key.take(), tokio::runtime::Handle::try_current()) {
            let node = self.node.clone();
            runtime.spawn(async move {
                let _ = node.propose(WriteRequest::DeleteRange(DeleteRangeRequest::key(key))).await;
            });
        }
    }
}

impl LockService {
    async fn acquire(&self, name: Bytes, lease: i64) -> Result<(Bytes, i64), ApiError> {
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        let key = Bytes::from([prefix.clone(), format!("{lease:x}").into_bytes()].concat());
        // Create the waiter's key unless this lease already waits (or holds) here.
        let txn = TxnRequest {
            compare: vec![Compare::new(key.clone(), CompareResult::Equal, CompareTarget::Create(0))],
            success: vec![RequestOp::Put(PutRequest { lease, ..PutRequest::new(key.clone(), Bytes::new()) })],
            failure: vec![],
        };
        self.node.propose(WriteRequest::Txn(txn)).await?;
        let mut guard = Abandon { node: self.node.clone(), key: Some(key.clone()) };
        let store = self.node.store();
        let mine = store.range(&RangeRequest::key(key.clone()))?;
        let my_rev = mine.kvs.first().map(|kv| kv.create_revision).ok_or(ApiError::Store(ballast_store::StoreError::KeyNotFound))?;
        loop {
            // The waiter just ahead: the newest key under the prefix created before this one.
            let ahead = RangeRequest {
                limit: 1,
                sort_order: SortOrder::Descend,
                sort_target: SortTarget::Create,
                max_create_revision: my_rev - 1,
                ..RangeRequest::prefix(Bytes::from(prefix.clone()))
            };
            let resp = store.range(&ahead)?;
            let Some(prev) = resp.kvs.into_iter().next() else {
                guard.key = None;
                return Ok((key, resp.revision));
            };
            let watch = WatchRequest { key: prev.key.clone(), start_revision: resp.revision + 1, no_put: true, ..Default::default() };
            let mut watcher = store.watch(watch)?;
            'wait: while let Some(w) = watcher.recv().await {
                if w.canceled || w.events.iter().any(|e| e.kind == EventType::Delete) {
                    break 'wait;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl v3lockpb::lock_server::Lock for LockService {
    async fn lock(&self, request: Request<v3lockpb::LockRequest>) -> Result<Response<v3lockpb::LockResponse>, Status> {
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(ApiError::Store(ballast_store::StoreError::EmptyKey).into());
        }
        let (key, revision) = self.acquire(req.name, req.lease).await?;
        Ok(Response::new(v3lockpb::LockResponse { header: Some(self.node.header(revision)), key }))
    }

    async fn unlock(&self, request: Request<v3lockpb::UnlockRequest>) -> Result<Response<v3lockpb::UnlockResponse>, Status> {
        let key = request.into_inner().key;
        let resp = self.node.propose(WriteRequest::DeleteRange(DeleteRangeRequest::key(key))).await?;
        let revision = match resp {
            ballast_store::WriteResponse::DeleteRange(d) => d.revision,
            other => return Err(crate::kv::unexpected(other)),
        };
        let header: pb::ResponseHeader = self.node.header(revision);
        Ok(Response::new(v3lockpb::UnlockResponse { header: Some(header) }))
    }
}
