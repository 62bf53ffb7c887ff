//! The `etcdserverpb.Cluster` service. A single member lists itself; membership changes come with
//! the replicated member.

use ballast_proto::pb;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::node::Node;

#[derive(Debug, Clone)]
pub struct ClusterService {
    node: Node,
}

impl ClusterService {
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    fn members(&self) -> Vec<pb::Member> {
        let m = self.node.member();
        vec![pb::Member {
            id: m.id,
            name: m.name.clone(),
            peer_ur_ls: m.peer_urls.clone(),
            client_ur_ls: m.client_urls.clone(),
            is_learner: m.is_learner,
        }]
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn member_add(&self, _request: Request<pb::MemberAddRequest>) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(ApiError::MembershipUnsupported.into())
    }

    async fn member_remove(&self, request: Request<pb::MemberRemoveRequest>) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        if request.get_ref().id != self.node.member().id {
            return Err(ApiError::MemberNotFound.into());
        }
        Err(ApiError::MembershipUnsupported.into())
    }

    async fn member_update(&self, request: Request<pb::MemberUpdateRequest>) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        if request.get_ref().id != self.node.member().id {
            return Err(ApiError::MemberNotFound.into());
        }
        Err(ApiError::MembershipUnsupported.into())
    }

    async fn member_list(&self, _request: Request<pb::MemberListRequest>) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse { header: Some(self.node.current_header()), members: self.members() }))
    }

    async fn member_promote(&self, request: Request<pb::MemberPromoteRequest>) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        if request.get_ref().id != self.node.member().id {
            return Err(ApiError::MemberNotFound.into());
        }
        // etcd's answer for promoting a voting member.
        Err(Status::failed_precondition("etcdserver: can only promote a learner member"))
    }
}
