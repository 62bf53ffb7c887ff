//! Authentication on the API: who sent a request (its `token` metadata), whether it may, and the
//! `etcdserverpb.Auth` service (users, roles, permissions, enable/disable, Authenticate).
//!
//! The rules are etcd 3.4's (`auth/store.go`, `etcdserver/apply_auth.go`); the state and the
//! permission checks are the store's ([`ballast_store::auth`]). A request's permissions are checked
//! here against this member's auth state; a write then carries that state's revision
//! ([`WriteRequest::Checked`]) so that, if auth changed before it applies, it is refused and checked
//! again (etcd's `ErrAuthOldRevision` loop), never applied under rights that were revoked.
//!
//! Checked: KV reads and writes (txn compares and every branch operation), watches, lease revoke
//! and puts that attach a lease (the lease's keys must be writable), lock and election names. Admin
//! only (the root role): auth and user/role management, member changes, defragment, snapshot,
//! hash and hashKV. A lease's time to live: a user who may read every key attached to it (etcd
//! 3.4.26). Open to anyone, as in etcd 3.4: compaction, lease grant/keep-alive/list,
//! status, alarms, member list, move-leader.

use std::sync::atomic::{AtomicU64, Ordering};

use ballast_proto::pb;
use ballast_store::{
    Access, AuthRequest, AuthState, DiskStore, StoreError, WriteRequest, WriteResponse,
};
use rand::distributions::{Alphanumeric, DistString};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::kv::unexpected;
use crate::node::Node;

/// etcd's `--bcrypt-cost` default.
const BCRYPT_COST: u32 = 10;

/// How often a write is checked again after auth changed under it before the client is told.
const OLD_REVISION_RETRIES: usize = 16;

/// Who sent a request: the user its token was handed to, or nobody (no token, or auth is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    user: Option<String>,
}

impl Caller {
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl Node {
    /// The caller named by a request's `token` metadata. A token that is unknown or expired is
    /// "invalid auth token", which makes etcd's clients authenticate again; as in etcd, that holds
    /// with auth off too (disabling ends every token; clients then send none, since Authenticate
    /// answers "authentication is not enabled").
    pub fn caller(&self, meta: &MetadataMap) -> ApiResult<Caller> {
        let Some(token) = meta.get("token") else {
            return Ok(Caller::default());
        };
        let token = token.to_str().map_err(|_| StoreError::InvalidAuthToken)?;
        match self.store().token_user(token) {
            Some(user) => Ok(Caller { user: Some(user) }),
            None => Err(StoreError::InvalidAuthToken.into()),
        }
    }

    /// Checks a permission against this member's auth state (for reads and other requests that do
    /// not go through the log).
    pub fn permit(
        &self,
        caller: &Caller,
        check: impl FnOnce(&AuthState, Option<&str>) -> Result<(), StoreError>,
    ) -> ApiResult<()> {
        let auth = self.store().auth();
        if auth.enabled {
            check(&auth, caller.user())?;
        }
        Ok(())
    }

    /// Checks `caller` has each of `access` on every key under `prefix` (when auth is on): the
    /// lock and election services' keys.
    pub fn permit_prefix(
        &self,
        caller: &Caller,
        prefix: &[u8],
        access: &[Access],
    ) -> ApiResult<()> {
        self.permit(caller, |auth, user| {
            let end = ballast_store::prefix_end(prefix);
            access
                .iter()
                .try_for_each(|&a| auth.check(user, prefix, &end, a))
        })
    }

    /// Resolves the caller of `meta` and checks it holds the root role (when auth is on).
    pub fn permit_admin(&self, meta: &MetadataMap) -> ApiResult<Caller> {
        let caller = self.caller(meta)?;
        self.permit(&caller, |auth, user| auth.check_admin(user))?;
        Ok(caller)
    }

    /// Commits a client's write if `caller` may make it: checked here, and again at apply time
    /// through the auth revision (see the module comment).
    pub async fn propose_as(&self, caller: &Caller, req: WriteRequest) -> ApiResult<WriteResponse> {
        let mut attempt = 0;
        loop {
            let store = self.store();
            let auth = store.auth();
            if auth.enabled {
                permit_write(&store, &auth, caller.user(), &req)?;
            }
            let checked = WriteRequest::Checked {
                auth_revision: auth.revision,
                req: Box::new(req.clone()),
            };
            match self.propose(checked).await {
                Err(ApiError::Store(StoreError::AuthOldRevision))
                    if attempt < OLD_REVISION_RETRIES =>
                {
                    attempt += 1;
                    // This member may lag the change that beat us: catch up before checking again.
                    self.linearize().await?;
                }
                other => return other,
            }
        }
    }
}

/// What a write needs, by kind (etcd's `authApplierV3`).
fn permit_write(
    store: &DiskStore,
    auth: &AuthState,
    user: Option<&str>,
    req: &WriteRequest,
) -> Result<(), StoreError> {
    let lease_keys = |id| store.lease_time_to_live(id, true).keys;
    match req {
        WriteRequest::Put(p) => {
            auth.check_put(user, p)?;
            // A lease whose keys the user may not write is one it could not revoke: no attaching.
            if p.lease != 0 {
                auth.check_keys_writable(user, &lease_keys(p.lease))?;
            }
            Ok(())
        }
        WriteRequest::DeleteRange(d) => auth.check_delete(user, d),
        WriteRequest::Txn(t) => auth.check_txn(user, t),
        WriteRequest::LeaseRevoke(id) => auth.check_keys_writable(user, &lease_keys(*id)),
        WriteRequest::Compact(_)
        | WriteRequest::LeaseGrant { .. }
        | WriteRequest::Alarm { .. }
        | WriteRequest::Auth(AuthRequest::Authenticate { .. }) => Ok(()),
        WriteRequest::Auth(_) => auth.check_admin(user),
        WriteRequest::Checked { req, .. } => permit_write(store, auth, user, req),
    }
}

#[derive(Debug, Clone)]
pub struct AuthService {
    node: Node,
    tokens: std::sync::Arc<AtomicU64>,
}

impl AuthService {
    pub fn new(node: Node) -> Self {
        Self {
            node,
            tokens: std::sync::Arc::default(),
        }
    }

    /// Commits an auth change for an admin caller; answers the header.
    async fn change(&self, meta: &MetadataMap, req: AuthRequest) -> ApiResult<pb::ResponseHeader> {
        let caller = self.node.caller(meta)?;
        match self
            .node
            .propose_as(&caller, WriteRequest::Auth(req))
            .await?
        {
            WriteResponse::Auth { revision } => Ok(self.node.header(revision)),
            other => Err(ApiError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The auth state for a read, after a linearizable read point (etcd answers these through raft).
    async fn read_state(&self) -> ApiResult<(std::sync::Arc<AuthState>, pb::ResponseHeader)> {
        self.node.linearize().await?;
        let store = self.node.store();
        Ok((store.auth(), self.node.header(store.revision())))
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
        let mut attempt = 0;
        loop {
            let auth = self.node.store().auth();
            if !auth.enabled {
                return Err(ApiError::from(StoreError::AuthNotEnabled).into());
            }
            let user = auth
                .users
                .get(&req.name)
                .filter(|u| !u.no_password)
                .ok_or(ApiError::from(StoreError::AuthFailed))?;
            if !verify_password(req.password.clone(), user.password_hash.clone()).await {
                return Err(ApiError::from(StoreError::AuthFailed).into());
            }
            // etcd's simple token: 16 random letters, then a number unique to this member.
            let n = self.tokens.fetch_add(1, Ordering::Relaxed);
            let token = format!(
                "{}.{n}",
                Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
            );
            let grant = AuthRequest::Authenticate {
                name: req.name.clone(),
                token: token.clone(),
            };
            // Checked against the state the password was verified with: a password changed
            // meanwhile makes us verify again.
            let checked = WriteRequest::Checked {
                auth_revision: auth.revision,
                req: Box::new(WriteRequest::Auth(grant)),
            };
            match self.node.propose(checked).await {
                Ok(WriteResponse::Auth { revision }) => {
                    return Ok(Response::new(pb::AuthenticateResponse {
                        header: Some(self.node.header(revision)),
                        token,
                    }))
                }
                Ok(other) => return Err(unexpected(other)),
                Err(ApiError::Store(StoreError::AuthOldRevision))
                    if attempt < OLD_REVISION_RETRIES =>
                {
                    attempt += 1;
                    self.node.linearize().await?;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    async fn user_add(
        &self,
        request: Request<pb::AuthUserAddRequest>,
    ) -> AuthResult<pb::AuthUserAddResponse> {
        // Refuse a caller who may not before spending a bcrypt on its request.
        self.node.permit_admin(request.metadata())?;
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
        let caller = self.node.caller(request.metadata())?;
        let name = request.into_inner().name;
        let (auth, header) = self.read_state().await?;
        // A user may look itself up without being an admin.
        if caller.user() != Some(name.as_str()) {
            self.node
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
        self.node.permit_admin(request.metadata())?;
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
        self.node.permit_admin(request.metadata())?;
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
        let caller = self.node.caller(request.metadata())?;
        let role = request.into_inner().role;
        let (auth, header) = self.read_state().await?;
        // A user may look up the roles it holds without being an admin.
        if !auth.has_role(caller.user(), &role) {
            self.node
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
        self.node.permit_admin(request.metadata())?;
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
