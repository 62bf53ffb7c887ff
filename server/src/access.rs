//! What every service does with a request around the store: who sent it ([`Caller`], from its
//! `token` metadata), whether they may ([`Member::permit`] for reads, checked against this member's
//! auth state), proposing a write under the auth state it was permitted by
//! ([`Member::propose_checked`], the one retry loop), the typed answer a write gives ([`answer!`]),
//! and reads that may block ([`blocking`]).
//!
//! A write's permissions are checked here; the write then carries that state's revision
//! ([`WriteRequest::Checked`]) so that, if auth changed before it applies, it is refused and checked
//! again (etcd's `ErrAuthOldRevision` loop), never applied under rights that were revoked. The
//! rules are etcd 3.4's (`auth/store.go`, `etcdserver/apply_auth.go`); the state and the checks are
//! the store's ([`ballast_store::auth`]).

use std::future::Future;
use std::sync::Arc;

use ballast_store::{
    Access, AuthRequest, AuthState, DiskStore, StoreError, WriteRequest, WriteResponse,
};
use tonic::metadata::MetadataMap;

use crate::error::{ApiError, ApiResult};
use crate::member::Member;

/// How often a write is checked again after auth changed under it before the client is told.
const OLD_REVISION_RETRIES: usize = 16;

/// Who sent a request: the user its token was handed to, or nobody (no token, or auth is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    user: Option<String>,
    /// The token it was resolved from, resolved again at each attempt of a write.
    token: Option<String>,
}

impl Caller {
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl Member {
    /// The caller named by a request's `token` metadata. A token that is unknown or expired is
    /// "invalid auth token", which makes etcd's clients authenticate again; as in etcd, that holds
    /// with auth off too (disabling ends every token; clients then send none, since Authenticate
    /// answers "authentication is not enabled"). A linearizable read resolves it after its read
    /// point (the tokens as of then), as etcd does: see `KvService::range`.
    pub fn caller(&self, meta: &MetadataMap) -> ApiResult<Caller> {
        let Some(token) = meta.get("token") else {
            return Ok(Caller::default());
        };
        let token = token.to_str().map_err(|_| StoreError::InvalidAuthToken)?;
        self.resolve(token)
    }

    /// The caller a token names now, by this member's tokens.
    fn resolve(&self, token: &str) -> ApiResult<Caller> {
        match self.store().token_user(token) {
            Some(user) => Ok(Caller {
                user: Some(user),
                token: Some(token.to_owned()),
            }),
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
    /// through the auth revision (see the module comment). Each attempt resolves the caller's token
    /// again, as etcd's `raftRequest` loop does: a token that the change which beat the write ended
    /// (a password change, auth disabled) is "invalid auth token", not its old user's.
    pub async fn propose_as(&self, caller: &Caller, req: WriteRequest) -> ApiResult<WriteResponse> {
        let mut retry = false;
        let (resp, ()) = self
            .propose_checked(|store, auth| {
                // The first attempt checks the caller as the service resolved it, a moment ago.
                let again = match &caller.token {
                    Some(token) if retry => self.resolve(token).map(Some),
                    _ => Ok(None),
                };
                retry = true;
                let checked = again.and_then(|again| {
                    let user = again.as_ref().map_or(caller.user(), Caller::user);
                    if auth.enabled {
                        permit_write(&store, &auth, user, &req)?;
                    }
                    Ok(())
                });
                let req = req.clone();
                async move {
                    checked?;
                    Ok((req, ()))
                }
            })
            .await?;
        Ok(resp)
    }

    /// Proposes the write `check` makes of the store and auth state as they are now (with
    /// something of its own to hand back), as `WriteRequest::Checked` against that state's
    /// revision. If auth changed before it applied, this member catches up and `check` runs again.
    pub async fn propose_checked<T, F, Fut>(&self, mut check: F) -> ApiResult<(WriteResponse, T)>
    where
        F: FnMut(DiskStore, Arc<AuthState>) -> Fut,
        Fut: Future<Output = ApiResult<(WriteRequest, T)>>,
    {
        let mut attempt = 0;
        loop {
            let store = self.store();
            let auth = store.auth();
            let revision = auth.revision;
            let (req, kept) = check(store, auth).await?;
            let checked = WriteRequest::Checked {
                auth_revision: revision,
                req: Box::new(req),
            };
            match self.propose(checked).await {
                Err(ApiError::Store(StoreError::AuthOldRevision))
                    if attempt < OLD_REVISION_RETRIES =>
                {
                    attempt += 1;
                    // This member may lag the change that beat us: catch up before checking again.
                    self.linearize().await?;
                }
                other => return other.map(|resp| (resp, kept)),
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

/// The store answered a request with another request's response: a bug, never a client's fault.
pub(crate) fn unexpected(resp: WriteResponse) -> ApiError {
    ApiError::Unexpected(format!("unexpected store response {resp:?}"))
}

/// The answer a write of one kind gives, out of its `WriteResponse` (any other is
/// [`unexpected`]): `answer!(resp, WriteResponse::Put(r) => r)?`.
macro_rules! answer {
    ($resp:expr, $kind:pat => $out:expr) => {
        match $resp {
            $kind => Ok($out),
            other => Err($crate::access::unexpected(other)),
        }
    };
}
pub(crate) use answer;

/// Reads run on the calling worker thread but tell the runtime they block, so RocksDB I/O never
/// stalls other tasks queued on that worker.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
