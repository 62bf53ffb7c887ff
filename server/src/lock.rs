//! The `v3lockpb.Lock` service: etcd's server-side distributed lock, built like etcd's (and
//! etcdctl's) `concurrency.Mutex` from a key per waiter under `name/`, attached to the caller's
//! lease. The holder is the waiter with the lowest create revision; the others wait for the
//! deletion of the waiter just ahead of them.

use ballast_proto::{pb, v3lockpb};
use ballast_store::{
    Access, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, PutRequest,
    RangeRequest, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, WatchRequest,
    WriteRequest, WriteResponse,
};
use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::access::{answer, Caller};
use crate::error::ApiError;
use crate::member::Member;

#[derive(Debug, Clone)]
pub struct LockService {
    member: Member,
}

impl LockService {
    pub fn new(member: Member) -> Self {
        Self { member }
    }
}

/// The TTL of the lease granted for a lock or campaign that names none (etcd's
/// `concurrency` default session TTL).
pub(crate) const SESSION_TTL: i64 = 60;

/// The lease a lock or candidacy lives on. etcd's servers take the request's lease through a
/// `concurrency.Session`; with none (0), the session grants a lease of its own, which nobody
/// keeps alive (the server orphans the session): two such callers get two keys, so the second
/// waits, and an abandoned lock ends when its lease expires. Sharing a key `name/0` instead
/// gave both callers the lock.
pub(crate) async fn session_lease(
    member: &Member,
    caller: &Caller,
    lease: i64,
) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let grant = WriteRequest::LeaseGrant {
        id: 0,
        ttl: SESSION_TTL,
    };
    let resp = member.propose_as(caller, grant).await?;
    Ok(answer!(resp, WriteResponse::LeaseGrant { id, .. } => id)?)
}

/// Creates `key` on `lease` (with `value`) unless it exists; returns the key's version: its
/// create revision, mod revision and value. etcd's `Mutex.Lock` and `Election.Campaign` start so.
/// Proposed as `caller`, so that a permission revoked meanwhile refuses it at apply time.
pub(crate) async fn create_once(
    member: &Member,
    caller: &Caller,
    key: &Bytes,
    lease: i64,
    value: Bytes,
) -> Result<ballast_store::KeyValue, Status> {
    let txn = TxnRequest {
        compare: vec![Compare::new(
            key.clone(),
            CompareResult::Equal,
            CompareTarget::Create(0),
        )],
        success: vec![RequestOp::Put(PutRequest {
            lease,
            ..PutRequest::new(key.clone(), value.clone())
        })],
        failure: vec![RequestOp::Range(RangeRequest::key(key.clone()))],
    };
    // Answered from the txn itself: this member's store may not have applied it yet.
    let resp = member.propose_as(caller, WriteRequest::Txn(txn)).await?;
    let resp = answer!(resp, WriteResponse::Txn(resp) => resp)?;
    if resp.succeeded {
        let rev = resp.revision;
        return Ok(ballast_store::KeyValue {
            key: key.clone(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value,
            lease,
        });
    }
    match resp.responses.into_iter().next() {
        Some(ResponseOp::Range(range)) => range.kvs.into_iter().next(),
        _ => None,
    }
    .ok_or_else(|| ApiError::Store(ballast_store::StoreError::KeyNotFound).into())
}

/// Waits until no key under `prefix` was created before `rev` (etcd's `waitDeletes`): watches the
/// newest such key for its deletion, again and again. Returns the revision it saw the turn at.
pub(crate) async fn wait_for_turn(
    member: &Member,
    prefix: &[u8],
    rev: i64,
) -> Result<i64, ApiError> {
    // This member must have applied `rev` (and everything before it) before it reads.
    member.linearize().await?;
    let store = member.store();
    loop {
        let ahead = RangeRequest {
            limit: 1,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Create,
            max_create_revision: rev - 1,
            ..RangeRequest::prefix(Bytes::copy_from_slice(prefix))
        };
        let resp = store.range(&ahead)?;
        let Some(prev) = resp.kvs.into_iter().next() else {
            return Ok(resp.revision);
        };
        let watch = WatchRequest {
            key: prev.key.clone(),
            start_revision: resp.revision + 1,
            no_put: true,
            ..Default::default()
        };
        let mut watcher = store.watch(watch)?;
        while let Some(w) = watcher.recv().await {
            if w.canceled || w.events.iter().any(|e| e.kind == EventType::Delete) {
                break;
            }
        }
    }
}

/// Deletes a key if the wait for it is abandoned (the client went away), as etcd's clients do.
pub(crate) struct Abandon {
    member: Member,
    key: Option<Bytes>,
}

impl Abandon {
    pub(crate) fn new(member: &Member, key: &Bytes) -> Self {
        Self {
            member: member.clone(),
            key: Some(key.clone()),
        }
    }

    /// The wait ended: keep the key.
    pub(crate) fn keep(mut self) {
        self.key = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let (Some(key), Ok(runtime)) = (self.key.take(), tokio::runtime::Handle::try_current()) {
            let member = self.member.clone();
            runtime.spawn(async move {
                let _ = member
                    .propose(WriteRequest::DeleteRange(DeleteRangeRequest::key(key)))
                    .await;
            });
        }
    }
}

impl LockService {
    async fn acquire(
        &self,
        caller: &Caller,
        name: Bytes,
        lease: i64,
    ) -> Result<(Bytes, i64), Status> {
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        let lease = session_lease(&self.member, caller, lease).await?;
        let key = Bytes::from([prefix.clone(), format!("{lease:x}").into_bytes()].concat());
        let mine = create_once(&self.member, caller, &key, lease, Bytes::new()).await?;
        let guard = Abandon::new(&self.member, &key);
        let revision = wait_for_turn(&self.member, &prefix, mine.create_revision).await?;
        guard.keep();
        Ok((key, revision))
    }
}

#[tonic::async_trait]
impl v3lockpb::lock_server::Lock for LockService {
    async fn lock(
        &self,
        request: Request<v3lockpb::LockRequest>,
    ) -> Result<Response<v3lockpb::LockResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(ApiError::Store(ballast_store::StoreError::EmptyKey).into());
        }
        let prefix = [req.name.as_ref(), b"/"].concat();
        self.member
            .permit_prefix(&caller, &prefix, &[Access::Read, Access::Write])?;
        let (key, revision) = self.acquire(&caller, req.name, req.lease).await?;
        Ok(Response::new(v3lockpb::LockResponse {
            header: Some(self.member.header(revision)),
            key,
        }))
    }

    async fn unlock(
        &self,
        request: Request<v3lockpb::UnlockRequest>,
    ) -> Result<Response<v3lockpb::UnlockResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let key = request.into_inner().key;
        let resp = self
            .member
            .propose_as(
                &caller,
                WriteRequest::DeleteRange(DeleteRangeRequest::key(key)),
            )
            .await?;
        let revision = answer!(resp, ballast_store::WriteResponse::DeleteRange(d) => d.revision)?;
        let header: pb::ResponseHeader = self.member.header(revision);
        Ok(Response::new(v3lockpb::UnlockResponse {
            header: Some(header),
        }))
    }
}
