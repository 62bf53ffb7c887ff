//! The stacked adapter: a Ballast member embedded in this process. Its requests go straight to the
//! member's etcd services (the same code `ballast kv` serves over gRPC, with its checks), with no
//! encoding or network between.

use std::time::Duration;

use ballast_proto::pb;
use ballast_proto::pb::kv_server::Kv as _;
use ballast_proto::pb::lease_server::Lease as _;
use ballast_server::kv::KvService;
use ballast_server::lease::LeaseService;
use ballast_server::watch::WatchService;
use ballast_server::Member;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataMap;
use tonic::Request;

use super::{open_watch_request, Storage, StorageError, StorageResult, WatchStream};

/// Progress notifications on watches with `progress_notify` come this often; the API server
/// turns them into BOOKMARK events (etcd's default is 10 minutes, too rare for bookmarks).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Stacked {
    kv: KvService,
    lease: LeaseService,
    watch: WatchService,
}

impl Stacked {
    pub fn new(member: Member) -> Self {
        Self {
            kv: KvService::new(member.clone()),
            lease: LeaseService::new(member.clone()),
            watch: WatchService::new(member, PROGRESS_INTERVAL),
        }
    }
}

fn status(status: tonic::Status) -> StorageError {
    StorageError::from_status(&status)
}

#[tonic::async_trait]
impl Storage for Stacked {
    async fn range(&self, req: pb::RangeRequest) -> StorageResult<pb::RangeResponse> {
        Ok(self
            .kv
            .range(Request::new(req))
            .await
            .map_err(status)?
            .into_inner())
    }

    async fn txn(&self, req: pb::TxnRequest) -> StorageResult<pb::TxnResponse> {
        Ok(self
            .kv
            .txn(Request::new(req))
            .await
            .map_err(status)?
            .into_inner())
    }

    async fn compact(&self, revision: i64) -> StorageResult<()> {
        let req = pb::CompactionRequest {
            revision,
            physical: false,
        };
        self.kv.compact(Request::new(req)).await.map_err(status)?;
        Ok(())
    }

    async fn grant_lease(&self, ttl: i64) -> StorageResult<i64> {
        let req = pb::LeaseGrantRequest { ttl, id: 0 };
        Ok(self
            .lease
            .lease_grant(Request::new(req))
            .await
            .map_err(status)?
            .into_inner()
            .id)
    }

    async fn watch(&self, create: pb::WatchCreateRequest) -> StorageResult<WatchStream> {
        let (tx, rx) = mpsc::channel(8);
        tx.send(open_watch_request(create))
            .await
            .map_err(|_| StorageError::Unavailable("watch stream closed".into()))?;
        let inbound = ReceiverStream::new(rx).map(Ok);
        let responses = self.watch.open(inbound, MetadataMap::new());
        Ok(WatchStream::new(tx, responses))
    }

    fn describe(&self) -> String {
        "embedded member".to_string()
    }
}
