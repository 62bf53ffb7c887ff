//! The storage seam: the etcd v3 operations the orchestrator needs, behind one trait with two
//! adapters, [`stacked::Stacked`] (a member embedded in this process, called directly) and
//! [`external::External`] (any etcd v3 cluster over gRPC: `ballast kv` or etcd itself).
//!
//! The trait speaks the etcd API's own messages: that API is the contract both adapters keep, and
//! Kubernetes' storage conventions ([`crate::registry`]) are written once above it. Every adapter
//! passes the same conformance suite (`tests/storage_conformance.rs` in the workspace root).

pub mod external;
pub mod stacked;

use std::pin::Pin;

use ballast_proto::pb;
use tokio::sync::mpsc;
use tokio_stream::Stream;

/// What the store can answer instead of a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The revision asked for is below the compacted one (etcd's `ErrCompacted`; a watch says
    /// which revision it was compacted at, a range does not: then 0).
    #[error("required revision has been compacted (compacted at {compact_revision})")]
    Compacted { compact_revision: i64 },
    /// The revision asked for has not happened yet (etcd's `ErrFutureRev`).
    #[error("required revision is a future revision")]
    FutureRevision,
    /// No endpoint answered, or the cluster has no leader: worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request (too large, too many operations, permission, ...).
    #[error("store refused the request: {0}")]
    Refused(String),
}

impl StorageError {
    /// The etcd API's status as this error: its codes and texts are the same from an embedded
    /// member as from a remote one, so both adapters map them here.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code;
        let message = status.message();
        match status.code() {
            Code::OutOfRange if message.contains("compacted") => Self::Compacted {
                compact_revision: 0,
            },
            Code::OutOfRange if message.contains("future revision") => Self::FutureRevision,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                Self::Unavailable(message.to_string())
            }
            _ => Self::Refused(format!("{:?}: {message}", status.code())),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The responses of one watch. Dropping it cancels the watch.
pub struct WatchStream {
    /// Requests on the watch's stream (progress requests), if it still runs.
    requests: mpsc::Sender<pb::WatchRequest>,
    responses: Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, tonic::Status>> + Send>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

impl WatchStream {
    pub(crate) fn new(
        requests: mpsc::Sender<pb::WatchRequest>,
        responses: Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, tonic::Status>> + Send>>,
    ) -> Self {
        Self {
            requests,
            responses,
        }
    }

    /// The next batch of events, a progress notification (no events) or the watch's end. The
    /// creation response is consumed here, never returned. A watch that the store cancels
    /// because its start was compacted ends with [`StorageError::Compacted`].
    pub async fn next(&mut self) -> Option<StorageResult<pb::WatchResponse>> {
        use tokio_stream::StreamExt;
        loop {
            let resp = match self.responses.next().await? {
                Ok(resp) => resp,
                Err(status) => return Some(Err(StorageError::from_status(&status))),
            };
            if resp.canceled {
                return Some(Err(if resp.compact_revision > 0 {
                    StorageError::Compacted {
                        compact_revision: resp.compact_revision,
                    }
                } else {
                    StorageError::Refused(format!("watch canceled: {}", resp.cancel_reason))
                }));
            }
            if resp.created && resp.events.is_empty() {
                continue;
            }
            return Some(Ok(resp));
        }
    }

    /// Asks the store for a progress notification (etcd 3.4's `WatchProgressRequest`): it answers
    /// with an empty response carrying the revision every event up to which has been delivered.
    pub fn request_progress(&self) {
        let req = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
                pb::WatchProgressRequest {},
            )),
        };
        // A closed stream shows as the end of `next`; a full queue has a request in it already.
        let _ = self.requests.try_send(req);
    }
}

/// A watch's opening request: the channel it starts and the stream to answer on.
pub(crate) fn open_watch_request(create: pb::WatchCreateRequest) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
    }
}

/// The etcd v3 operations the orchestrator uses. Both adapters pass the same requests to a
/// store that keeps etcd's semantics, so they answer alike.
#[tonic::async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    async fn range(&self, req: pb::RangeRequest) -> StorageResult<pb::RangeResponse>;
    async fn txn(&self, req: pb::TxnRequest) -> StorageResult<pb::TxnResponse>;
    /// Compacts the store's history below `revision`.
    async fn compact(&self, revision: i64) -> StorageResult<()>;
    /// A new lease of `ttl` seconds; its id.
    async fn grant_lease(&self, ttl: i64) -> StorageResult<i64>;
    async fn watch(&self, create: pb::WatchCreateRequest) -> StorageResult<WatchStream>;
    /// Where the store is, for errors and logs ("embedded member", the endpoints).
    fn describe(&self) -> String;
}
