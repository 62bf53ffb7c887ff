//! The `etcdserverpb.Lease` service: grant, revoke, the keep-alive stream, time-to-live and list.

use std::pin::Pin;

use ballast_proto::pb;
use ballast_store::{StoreError, WriteRequest, WriteResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::access::answer;
use crate::error::ApiError;
use crate::member::Member;

#[derive(Debug, Clone)]
pub struct LeaseService {
    member: Member,
}

impl LeaseService {
    pub fn new(member: Member) -> Self {
        Self { member }
    }
}

type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::lease_server::Lease for LeaseService {
    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let grant = WriteRequest::LeaseGrant {
            id: req.id,
            ttl: req.ttl,
        };
        let resp = self.member.propose_as(&caller, grant).await?;
        let (id, ttl, revision) = answer!(
            resp,
            WriteResponse::LeaseGrant { id, ttl, revision } => (id, ttl, revision)
        )?;
        Ok(Response::new(pb::LeaseGrantResponse {
            header: Some(self.member.header(revision)),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        let resp = self
            .member
            .propose_as(&caller, WriteRequest::LeaseRevoke(req.id))
            .await?;
        let revision = answer!(resp, WriteResponse::LeaseRevoke { revision } => revision)?;
        Ok(Response::new(pb::LeaseRevokeResponse {
            header: Some(self.member.header(revision)),
        }))
    }

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let member = self.member.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = inbound.next().await {
                // etcd answers TTL 0 for a lease that does not exist (or expired meanwhile).
                // Only the leader's countdown counts: a follower asks the leader.
                let resp = match member.replica().lease_keep_alive(req.id).await {
                    Ok(Ok(ttl)) => Ok(pb::LeaseKeepAliveResponse {
                        header: Some(member.current_header()),
                        id: req.id,
                        ttl,
                    }),
                    Ok(Err(StoreError::LeaseNotFound)) => Ok(pb::LeaseKeepAliveResponse {
                        header: Some(member.current_header()),
                        id: req.id,
                        ttl: 0,
                    }),
                    Ok(Err(err)) => Err(Status::from(ApiError::from(err))),
                    Err(err) => Err(Status::from(ApiError::from(err))),
                };
                let failed = resp.is_err();
                if tx.send(resp).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let caller = self.member.caller(request.metadata())?;
        let req = request.into_inner();
        // The keys are always fetched, from the lease's authority (the leader), because they are
        // what the caller must be allowed to read, whether or not it asked for them.
        let status = self
            .member
            .replica()
            .lease_time_to_live(req.id, true)
            .await
            .map_err(ApiError::from)?;
        self.member.permit(&caller, |auth, user| {
            auth.check_lease_readable(user, &status.keys)
        })?;
        Ok(Response::new(pb::LeaseTimeToLiveResponse {
            header: Some(self.member.current_header()),
            id: req.id,
            ttl: status.ttl,
            granted_ttl: status.granted_ttl,
            keys: if req.keys { status.keys } else { Vec::new() },
        }))
    }

    async fn lease_leases(
        &self,
        _request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let leases = self
            .member
            .store()
            .lease_leases()
            .into_iter()
            .map(|id| pb::LeaseStatus { id })
            .collect();
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: Some(self.member.current_header()),
            leases,
        }))
    }
}
