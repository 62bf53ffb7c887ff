//! The `etcdserverpb.Auth` service (users, roles, permissions, enable/disable, Authenticate). Who
//! sent a request and whether it may is [`crate::access`]'s, for every service:
//!
//! Checked: KV reads and writes (txn compares and every branch operation), watches, lease revoke
//! and puts that attach a lease (the lease's keys must be writable), lock and election names. Admin
//! only (the root role): auth and user/role management, member changes, defragment, snapshot,
//! hash and hashKV. A lease's time to live: a user who may read every key attached to it (etcd
//! 3.4.26). Open to anyone, as in etcd 3.4: compaction, lease grant/keep-alive/list,
//! status, alarms, member list, move-leader.

use std::sync::atomic::{AtomicU64, Ordering};

use ballast_proto::pb;
use ballast_store::{AuthRequest, AuthState, StoreError, WriteRequest, WriteResponse};
use rand::distributions::{Alphanumeric, DistString};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::access::answer;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::member::Member;

/// etcd's `--bcrypt-cost` default.
const BCRYPT_COST: u32 = 10;

#[derive(Debug, Clone)]
pub struct AuthService {
    member: Member,
    tokens: std::sync::Arc<AtomicU64>,
}

impl AuthService {
    pub fn new(member: Member) -> Self {
        Self {
            member,
            tokens: std::sync::Arc::default(),
        }
    }

    /// Commits an auth change for an admin caller; answers the header.
    async fn change(&self, meta: &MetadataMap, req: AuthRequest) -> ApiResult<pb::ResponseHeader> {
        let caller = self.member.caller(meta)?;
        let resp = self
            .member
            .propose_as(&caller, WriteRequest::Auth(req))
            .await?;
        let revision = answer!(resp, WriteResponse::Auth { revision } => revision)?;
        Ok(self.member.header(revision))
    }

    /// The auth state for a read, after a linearizable read point (etcd answers these through raft).
    async fn read_state(&self) -> ApiResult<(std::sync::Arc<AuthState>, pb::ResponseHeader)> {
        self.member.linearize().await?;
        let store = self.member.store();
        Ok((store.auth(), self.member.header(store.revision())))
    }
}

/// bcrypt, off the async workers (it takes tens of milliseconds by design).
async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(|e| ApiError::Unexpected(e.to_string()))?
        .map_err(|e| ApiError::Unexpected(format!("bcrypt: {e}")))
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

type AuthResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::auth_server::Auth for AuthService {
    async fn auth_enable(
        &self,
        request: Request<pb::AuthEnableRequest>,
    ) -> AuthResult<pb::AuthEnableResponse> {
        let header = self.change(request.metadata(), AuthRequest::Enable).await?;
        Ok(Response::new(pb::AuthEnableResponse {
            header: Some(header),
        }))
    }

    async fn auth_disable(
        &self,
        request: Request<pb::AuthDisableRequest>,
    ) -> AuthResult<pb::AuthDisableResponse> {
        let header = self
            .change(request.metadata(), AuthRequest::Disable)
            .await?;
        Ok(Response::new(pb::AuthDisableResponse {
            header: Some(header),
        }))
    }

    async fn auth_status(
        &self,
        _request: Request<pb::AuthStatusRequest>,
    ) -> AuthResult<pb::AuthStatusResponse> {
        let (auth, header) = self.read_state().await?;
        Ok(Response::new(pb::AuthStatusResponse {
            header: Some(header),
            enabled: auth.enabled,
            auth_revision: auth.revision,
        }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> AuthResult<pb::AuthenticateResponse> {
        let req = request.into_inner();
        // Granted against the state the password was verified with: a password changed meanwhile
        // makes us verify again.
        let (resp, token) = self
            .member
            .propose_checked(|_, auth| {
                let req = req.clone();
                let n = self.tokens.fetch_add(1, Ordering::Relaxed);
                async move {
                    if !auth.enabled {
                        return Err(StoreError::AuthNotEnabled.into());
                    }
                    let user = auth
                        .users
                        .get(&req.name)
                        .filter(|u| !u.no_password)
                        .ok_or(ApiError::from(StoreError::AuthFailed))?;
                    if !verify_password(req.password, user.password_hash.clone()).await {
                        return Err(StoreError::AuthFailed.into());
                    }
                    // etcd's simple token: 16 random letters, then a number unique to this member.
                    let token = format!(
                        "{}.{n}",
                        Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
                    );
                    let grant = AuthRequest::Authenticate {
                        name: req.name,
                        token: token.clone(),
                    };
                    Ok((WriteRequest::Auth(grant), token))
                }
            })
            .await?;
        let revision = answer!(resp, WriteResponse::Auth { revision } => revision)?;
        Ok(Response::new(pb::AuthenticateResponse {
            header: Some(self.member.header(revision)),
            token,
        }))
    }

    async fn user_add(
        &self,
        request: Request<pb::AuthUserAddRequest>,
    ) -> AuthResult<pb::AuthUserAddResponse> {
        // Refuse a caller who may not before spending a bcrypt on its request.
        self.member.permit_admin(request.metadata())?;
        let (meta, req) = (request.metadata().clone(), request.into_inner());
        if req.name.is_empty() {
            return Err(ApiError::from(StoreError::UserEmpty).into());
        }
        let no_password = req.options.is_some_and(|o| o.no_password);
        let password_hash = if no_password {
            String::new()
        } else if !req.hashed_password.is_empty() {
            req.hashed_password
        } else {
            hash_password(req.password).await?
        };
        let header = self
            .change(
                &meta,
                AuthRequest::UserAdd {
                    name: req.name,
                    password_hash,
                    no_password,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthUserAddResponse {
            header: Some(header),
        }))
    }

    async fn user_get(
        &self,
        request: Request<pb::AuthUserGetRequest>,
    ) -> AuthResult<pb::AuthUserGetResponse> {
        let caller = self.member.caller(request.metadata())?;
        let name = request.into_inner().name;
        let (auth, header) = self.read_state().await?;
        // A user may look itself up without being an admin.
        if caller.user() != Some(name.as_str()) {
            self.member
                .permit(&caller, |auth, user| auth.check_admin(user))?;
        }
        let user = auth
            .users
            .get(&name)
            .ok_or(ApiError::from(StoreError::UserNotFound))?;
        Ok(Response::new(pb::AuthUserGetResponse {
            header: Some(header),
            roles: user.roles.iter().cloned().collect(),
        }))
    }

    async fn user_list(
        &self,
        request: Request<pb::AuthUserListRequest>,
    ) -> AuthResult<pb::AuthUserListResponse> {
        self.member.permit_admin(request.metadata())?;
        let (auth, header) = self.read_state().await?;
        Ok(Response::new(pb::AuthUserListResponse {
            header: Some(header),
            users: auth.users.keys().cloned().collect(),
        }))
    }

    async fn user_delete(
        &self,
        request: Request<pb::AuthUserDeleteRequest>,
    ) -> AuthResult<pb::AuthUserDeleteResponse> {
        let name = request.get_ref().name.clone();
        let header = self
            .change(request.metadata(), AuthRequest::UserDelete { name })
            .await?;
        Ok(Response::new(pb::AuthUserDeleteResponse {
            header: Some(header),
        }))
    }

    async fn user_change_password(
        &self,
        request: Request<pb::AuthUserChangePasswordRequest>,
    ) -> AuthResult<pb::AuthUserChangePasswordResponse> {
        self.member.permit_admin(request.metadata())?;
        let (meta, req) = (request.metadata().clone(), request.into_inner());
        let password_hash = if req.hashed_password.is_empty() {
            hash_password(req.password).await?
        } else {
            req.hashed_password
        };
        let header = self
            .change(
                &meta,
                AuthRequest::UserChangePassword {
                    name: req.name,
                    password_hash,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthUserChangePasswordResponse {
            header: Some(header),
        }))
    }

    async fn user_grant_role(
        &self,
        request: Request<pb::AuthUserGrantRoleRequest>,
    ) -> AuthResult<pb::AuthUserGrantRoleResponse> {
        let req = request.get_ref().clone();
        let header = self
            .change(
                request.metadata(),
                AuthRequest::UserGrantRole {
                    user: req.user,
                    role: req.role,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthUserGrantRoleResponse {
            header: Some(header),
        }))
    }

    async fn user_revoke_role(
        &self,
        request: Request<pb::AuthUserRevokeRoleRequest>,
    ) -> AuthResult<pb::AuthUserRevokeRoleResponse> {
        let req = request.get_ref().clone();
        let header = self
            .change(
                request.metadata(),
                AuthRequest::UserRevokeRole {
                    name: req.name,
                    role: req.role,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthUserRevokeRoleResponse {
            header: Some(header),
        }))
    }

    async fn role_add(
        &self,
        request: Request<pb::AuthRoleAddRequest>,
    ) -> AuthResult<pb::AuthRoleAddResponse> {
        let name = request.get_ref().name.clone();
        let header = self
            .change(request.metadata(), AuthRequest::RoleAdd { name })
            .await?;
        Ok(Response::new(pb::AuthRoleAddResponse {
            header: Some(header),
        }))
    }

    async fn role_get(
        &self,
        request: Request<pb::AuthRoleGetRequest>,
    ) -> AuthResult<pb::AuthRoleGetResponse> {
        let caller = self.member.caller(request.metadata())?;
        let role = request.into_inner().role;
        let (auth, header) = self.read_state().await?;
        // A user may look up the roles it holds without being an admin.
        if !auth.has_role(caller.user(), &role) {
            self.member
                .permit(&caller, |auth, user| auth.check_admin(user))?;
        }
        let found = auth
            .roles
            .get(&role)
            .ok_or(ApiError::from(StoreError::RoleNotFound))?;
        Ok(Response::new(pb::AuthRoleGetResponse {
            header: Some(header),
            perm: found.perms.iter().map(convert::permission_to_pb).collect(),
        }))
    }

    async fn role_list(
        &self,
        request: Request<pb::AuthRoleListRequest>,
    ) -> AuthResult<pb::AuthRoleListResponse> {
        self.member.permit_admin(request.metadata())?;
        let (auth, header) = self.read_state().await?;
        Ok(Response::new(pb::AuthRoleListResponse {
            header: Some(header),
            roles: auth.roles.keys().cloned().collect(),
        }))
    }

    async fn role_delete(
        &self,
        request: Request<pb::AuthRoleDeleteRequest>,
    ) -> AuthResult<pb::AuthRoleDeleteResponse> {
        let name = request.get_ref().role.clone();
        let header = self
            .change(request.metadata(), AuthRequest::RoleDelete { name })
            .await?;
        Ok(Response::new(pb::AuthRoleDeleteResponse {
            header: Some(header),
        }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> AuthResult<pb::AuthRoleGrantPermissionResponse> {
        let req = request.get_ref().clone();
        let perm = req.perm.ok_or(ApiError::PermissionNotGiven)?;
        let perm = convert::permission(perm).map_err(ApiError::from)?;
        let header = self
            .change(
                request.metadata(),
                AuthRequest::RoleGrantPermission {
                    name: req.name,
                    perm,
                },
            )
            .await?;
        Ok(Response::new(pb::AuthRoleGrantPermissionResponse {
            header: Some(header),
        }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> AuthResult<pb::AuthRoleRevokePermissionResponse> {
        let req = request.get_ref().clone();
        let revoke = AuthRequest::RoleRevokePermission {
            name: req.role,
            key: req.key,
            range_end: req.range_end,
        };
        let header = self.change(request.metadata(), revoke).await?;
        Ok(Response::new(pb::AuthRoleRevokePermissionResponse {
            header: Some(header),
        }))
    }
}
