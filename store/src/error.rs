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
    Corrupt { space: &'static str, what: &'static str },
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
    Internal,
}

impl StoreError {
    pub fn grpc_code(&self) -> GrpcCode {
        match self {
            StoreError::Compacted | StoreError::FutureRev | StoreError::LeaseTtlTooLarge => GrpcCode::OutOfRange,
            StoreError::EmptyKey
            | StoreError::KeyNotFound
            | StoreError::ValueProvided
            | StoreError::LeaseProvided
            | StoreError::TooManyOps
            | StoreError::DuplicateKey
            | StoreError::DuplicateWatchId => GrpcCode::InvalidArgument,
            StoreError::LeaseNotFound | StoreError::WatcherNotFound => GrpcCode::NotFound,
            StoreError::LeaseExists => GrpcCode::FailedPrecondition,
            StoreError::Backend(_) => GrpcCode::Internal,
        }
    }

    /// True for errors after which the store must stop serving (the disk failed or lied).
    pub fn is_fatal(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
