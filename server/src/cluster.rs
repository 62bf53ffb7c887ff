//! The `etcdserverpb.Cluster` service: the raft membership, as etcd's members.
//!
//! A member's id is etcd's: a hash of its peer URLs and the cluster token, so that the member
//! started with `--initial-cluster-state existing` computes the id `member add` gave it.

use ballast_proto::pb;
use ballast_raft::{MemberInfo, MemberNode};
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::identity;
use crate::member::Member;

#[derive(Debug, Clone)]
pub struct ClusterService {
    member: Member,
}

impl ClusterService {
    pub fn new(member: Member) -> Self {
        Self { member }
    }

    fn members(&self) -> Vec<pb::Member> {
        self.member.replica().members().iter().map(to_pb).collect()
    }
}

fn to_pb(m: &MemberInfo) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.node.name.clone(),
        peer_ur_ls: m.node.peer_urls.clone(),
        client_ur_ls: m.node.client_urls.clone(),
        is_learner: m.is_learner,
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        self.member.permit_admin(request.metadata())?;
        let req = request.into_inner();
        if req.peer_ur_ls.is_empty() {
            return Err(Status::invalid_argument(
                "etcdserver: member peer URLs are not provided",
            ));
        }
        let id = identity::member_id(&req.peer_ur_ls, &self.member.options().cluster_token);
        let node = MemberNode {
            name: String::new(),
            peer_urls: req.peer_ur_ls.clone(),
            client_urls: Vec::new(),
        };
        self.member
            .replica()
            .add_member(id, node.clone(), req.is_learner)
            .await
            .map_err(ApiError::from)?;
        let member = to_pb(&MemberInfo {
            id,
            node,
            is_learner: req.is_learner,
        });
        Ok(Response::new(pb::MemberAddResponse {
            header: Some(self.member.current_header()),
            member: Some(member),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.member.permit_admin(request.metadata())?;
        let id = request.into_inner().id;
        self.member
            .replica()
            .remove_member(id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: Some(self.member.current_header()),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        self.member.permit_admin(request.metadata())?;
        let req = request.into_inner();
        self.member
            .replica()
            .update_member(req.id, req.peer_ur_ls)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::MemberUpdateResponse {
            header: Some(self.member.current_header()),
            members: self.members(),
        }))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse {
            header: Some(self.member.current_header()),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.member.permit_admin(request.metadata())?;
        let id = request.into_inner().id;
        self.member
            .replica()
            .promote_member(id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::MemberPromoteResponse {
            header: Some(self.member.current_header()),
            members: self.members(),
        }))
    }
}
