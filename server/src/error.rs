//! The API layer's errors, and the one place any error becomes a `tonic::Status`: etcd's gRPC code
//! and etcd's exact text (Go clients map errors back by text, see etcd's `v3rpc/rpctypes`).

use ballast_raft::ReplicaError;
use ballast_store::{GrpcCode, StoreError};
use thiserror::Error;
use tonic::{Code, Status};

#[derive(Debug, Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// A request field holds an enum value etcd's protocol does not define.
    #[error(transparent)]
    UnknownEnum(#[from] crate::convert::UnknownEnum),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("etcdserver: snapshot failed: {0}")]
    Snapshot(std::io::Error),
    #[error("etcdserver: could not persist: {0}")]
    Persist(std::io::Error),
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    /// A bug or a failed helper task, never a client's fault.
    #[error("ballast: {0}")]
    Unexpected(String),
}

impl ApiError {
    pub fn code(&self) -> Code {
        match self {
            ApiError::Store(err) => match err.grpc_code() {
                GrpcCode::InvalidArgument => Code::InvalidArgument,
                GrpcCode::OutOfRange => Code::OutOfRange,
                GrpcCode::NotFound => Code::NotFound,
                GrpcCode::FailedPrecondition => Code::FailedPrecondition,
                GrpcCode::PermissionDenied => Code::PermissionDenied,
                GrpcCode::Unauthenticated => Code::Unauthenticated,
                GrpcCode::Internal => Code::Internal,
            },
            ApiError::RequestTooLarge | ApiError::UnknownEnum(_) | ApiError::PermissionNotGiven => {
                Code::InvalidArgument
            }
            ApiError::NoSpace => Code::ResourceExhausted,
            ApiError::Stopped => Code::Unavailable,
            ApiError::MemberNotFound => Code::NotFound,
            ApiError::BadLeaderTransferee => Code::FailedPrecondition,
            ApiError::Replica(err) => match err {
                ReplicaError::NoLeader
                | ReplicaError::LeaderChanged
                | ReplicaError::Timeout
                | ReplicaError::Stopped
                | ReplicaError::Unhealthy => Code::Unavailable,
                ReplicaError::MemberNotFound => Code::NotFound,
                ReplicaError::MemberExists
                | ReplicaError::PeerUrlExists
                | ReplicaError::NotLearner
                | ReplicaError::LearnerNotReady
                | ReplicaError::NotEnoughStarted => Code::FailedPrecondition,
                ReplicaError::Other(_) => Code::Internal,
            },
            ApiError::Snapshot(_) | ApiError::Persist(_) | ApiError::Unexpected(_) => {
                Code::Internal
            }
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        Status::new(err.code(), err.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Why a member could not start. The cause is in the message, not also a `source`, so a chain
/// printed with `{:#}` does not say it twice.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("data directory: {0}")]
    Io(std::io::Error),
    #[error("store: {0}")]
    Store(StoreError),
    #[error("bad flag: {0}")]
    Config(String),
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

impl From<StoreError> for OpenError {
    fn from(e: StoreError) -> Self {
        OpenError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant with etcd's code and text (the I/O ones are checked for their code below).
    #[test]
    fn every_error_has_etcds_code_and_text() {
        let cases: Vec<(ApiError, Code, &str)> = vec![
            (
                StoreError::Compacted.into(),
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            (
                StoreError::FutureRev.into(),
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            (
                StoreError::EmptyKey.into(),
                Code::InvalidArgument,
                "etcdserver: key is not provided",
            ),
            (
                StoreError::KeyNotFound.into(),
                Code::InvalidArgument,
                "etcdserver: key not found",
            ),
            (
                StoreError::ValueProvided.into(),
                Code::InvalidArgument,
                "etcdserver: value is provided",
            ),
            (
                StoreError::LeaseProvided.into(),
                Code::InvalidArgument,
                "etcdserver: lease is provided",
            ),
            (
                StoreError::TooManyOps.into(),
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            (
                StoreError::DuplicateKey.into(),
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            (
                StoreError::LeaseNotFound.into(),
                Code::NotFound,
                "etcdserver: requested lease not found",
            ),
            (
                StoreError::LeaseExists.into(),
                Code::FailedPrecondition,
                "etcdserver: lease already exists",
            ),
            (
                StoreError::LeaseTtlTooLarge.into(),
                Code::OutOfRange,
                "etcdserver: too large lease TTL",
            ),
            (
                StoreError::WatcherNotFound.into(),
                Code::NotFound,
                "etcdserver: mvcc: watcher not found",
            ),
            (
                StoreError::DuplicateWatchId.into(),
                Code::InvalidArgument,
                "etcdserver: mvcc: duplicate watch ID provided on the WatchStream",
            ),
            (
                StoreError::RootUserNotExist.into(),
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            (
                StoreError::RootRoleNotExist.into(),
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            (
                StoreError::UserAlreadyExist.into(),
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            (
                StoreError::UserEmpty.into(),
                Code::InvalidArgument,
                "etcdserver: user name is empty",
            ),
            (
                StoreError::UserNotFound.into(),
                Code::FailedPrecondition,
                "etcdserver: user name not found",
            ),
            (
                StoreError::RoleAlreadyExist.into(),
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            (
                StoreError::RoleNotFound.into(),
                Code::FailedPrecondition,
                "etcdserver: role name not found",
            ),
            (
                StoreError::RoleEmpty.into(),
                Code::InvalidArgument,
                "etcdserver: role name is empty",
            ),
            (
                StoreError::AuthFailed.into(),
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            (
                StoreError::PermissionDenied.into(),
                Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            (
                StoreError::RoleNotGranted.into(),
                Code::FailedPrecondition,
                "etcdserver: role is not granted to the user",
            ),
            (
                StoreError::PermissionNotGranted.into(),
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            (
                StoreError::AuthNotEnabled.into(),
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            (
                StoreError::InvalidAuthToken.into(),
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
            ),
            (
                StoreError::InvalidAuthMgmt.into(),
                Code::InvalidArgument,
                "etcdserver: invalid auth management",
            ),
            (
                StoreError::AuthOldRevision.into(),
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
            (
                ApiError::PermissionNotGiven,
                Code::InvalidArgument,
                "etcdserver: permission not given",
            ),
            (
                ApiError::RequestTooLarge,
                Code::InvalidArgument,
                "etcdserver: request is too large",
            ),
            (
                ApiError::NoSpace,
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            (
                ApiError::Stopped,
                Code::Unavailable,
                "etcdserver: server stopped",
            ),
            (
                ApiError::MemberNotFound,
                Code::NotFound,
                "etcdserver: member not found",
            ),
            (
                ApiError::BadLeaderTransferee,
                Code::FailedPrecondition,
                "etcdserver: bad leader transferee",
            ),
            (
                ApiError::UnknownEnum(crate::convert::UnknownEnum {
                    field: "sort_order",
                    value: 9,
                }),
                Code::InvalidArgument,
                "etcdserver: unknown sort_order value 9",
            ),
            (
                ReplicaError::NoLeader.into(),
                Code::Unavailable,
                "etcdserver: no leader",
            ),
            (
                ReplicaError::LeaderChanged.into(),
                Code::Unavailable,
                "etcdserver: leader changed",
            ),
            (
                ReplicaError::Timeout.into(),
                Code::Unavailable,
                "etcdserver: request timed out",
            ),
            (
                ReplicaError::Stopped.into(),
                Code::Unavailable,
                "etcdserver: server stopped",
            ),
            (
                ReplicaError::MemberNotFound.into(),
                Code::NotFound,
                "etcdserver: member not found",
            ),
            (
                ReplicaError::MemberExists.into(),
                Code::FailedPrecondition,
                "etcdserver: member ID already exist",
            ),
            (
                ReplicaError::PeerUrlExists.into(),
                Code::FailedPrecondition,
                "etcdserver: Peer URLs already exists",
            ),
            (
                ReplicaError::NotLearner.into(),
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member",
            ),
            (
                ReplicaError::LearnerNotReady.into(),
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ),
            (
                ReplicaError::NotEnoughStarted.into(),
                Code::FailedPrecondition,
                "etcdserver: re-configuration failed due to not enough started members",
            ),
            (
                ReplicaError::Unhealthy.into(),
                Code::Unavailable,
                "etcdserver: unhealthy cluster",
            ),
        ];
        for (err, code, text) in cases {
            let status = Status::from(err);
            assert_eq!((status.code(), status.message()), (code, text));
        }
        let backend = ApiError::from(StoreError::Backend(ballast_store::BackendError::Corrupt {
            space: "kv",
            what: "x",
        }));
        assert_eq!(Status::from(backend).code(), Code::Internal);
        for io in [
            ApiError::Snapshot(std::io::Error::other("x")),
            ApiError::Persist(std::io::Error::other("x")),
        ] {
            assert_eq!(Status::from(io).code(), Code::Internal);
        }
    }
}
