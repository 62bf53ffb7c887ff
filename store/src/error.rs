//! The store's errors. Request errors carry etcd's exact texts (Go clients map errors back by text);
//! backend failures are fatal and kept apart.

use thiserror::Error;

/// A failure of the storage backend: the store cannot go on safely after one.
#[derive(Debug, Error)]
pub enum BackendError {
    #[cfg(feature = "rocks")]
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record in {space}: {what}")]
    Corrupt {
        space: &'static str,
        what: &'static str,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a store request failed. `Display` is etcd's message; `grpc_code` names etcd's gRPC code.
#[derive(Debug, Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StoreError {
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: mvcc: watcher not found")]
    WatcherNotFound,
    #[error("etcdserver: mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateWatchId,
    // Auth (etcd's `auth` errors).
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// The auth state changed between a request's permission check and its apply; the API layer
    /// checks again and retries (clients never see it unless that keeps happening).
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// Never crosses the wire (skipped by serde). Last, because serde numbers variants without the
    /// skipped one when decoding but with it when encoding: any variant after it would arrive as
    /// its successor.
    #[error("store backend failure: {0}")]
    #[cfg_attr(feature = "serde", serde(skip))]
    Backend(#[from] BackendError),
}

/// The gRPC status codes the store's errors map to (a subset of `tonic::Code`, named the same way), so
/// that the API layer's single mapping module needs no judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument,
    OutOfRange,
    NotFound,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    Internal,
}

impl StoreError {
    pub fn grpc_code(&self) -> GrpcCode {
        match self {
            StoreError::Compacted | StoreError::FutureRev | StoreError::LeaseTtlTooLarge => {
                GrpcCode::OutOfRange
            }
            StoreError::EmptyKey
            | StoreError::KeyNotFound
            | StoreError::ValueProvided
            | StoreError::LeaseProvided
            | StoreError::TooManyOps
            | StoreError::DuplicateKey
            | StoreError::DuplicateWatchId
            | StoreError::UserEmpty
            | StoreError::RoleEmpty
            | StoreError::AuthFailed
            | StoreError::InvalidAuthMgmt
            | StoreError::AuthOldRevision => GrpcCode::InvalidArgument,
            StoreError::LeaseNotFound | StoreError::WatcherNotFound => GrpcCode::NotFound,
            StoreError::LeaseExists
            | StoreError::RootUserNotExist
            | StoreError::RootRoleNotExist
            | StoreError::UserAlreadyExist
            | StoreError::UserNotFound
            | StoreError::RoleAlreadyExist
            | StoreError::RoleNotFound
            | StoreError::RoleNotGranted
            | StoreError::PermissionNotGranted
            | StoreError::AuthNotEnabled => GrpcCode::FailedPrecondition,
            StoreError::PermissionDenied => GrpcCode::PermissionDenied,
            StoreError::InvalidAuthToken => GrpcCode::Unauthenticated,
            StoreError::Backend(_) => GrpcCode::Internal,
        }
    }

    /// True for errors after which the store must stop serving (the disk failed or lied).
    pub fn is_fatal(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
