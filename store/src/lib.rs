//! Ballast's MVCC key-value store, with etcd's semantics: one store-wide revision, per-key
//! create/mod revision and version, ranges at any retained revision, transactions, compaction,
//! leases and watches with history replay. It runs on RocksDB ([`DiskStore`]) or in memory
//! ([`MemStore`]) behind one [`backend::Backend`] seam, and is usable embedded in one process:
//!
//! ```no_run
//! use ballast_store::{DiskStore, PutRequest, RangeRequest, StoreOptions};
//! let store = DiskStore::open("/tmp/ballast-example", StoreOptions::default())?;
//! store.put(PutRequest::new("greeting", "hello"))?;
//! let resp = store.range(&RangeRequest::key("greeting"))?;
//! assert_eq!(resp.kvs[0].value, "hello");
//! # Ok::<(), ballast_store::StoreError>(())
//! ```

pub mod auth;
pub mod backend;
mod compact;
pub mod encoding;
mod error;
mod hash;
mod latest;
mod lease;
mod range;
mod store;
mod txn;
mod types;
pub mod watch;
mod write;

pub use auth::{Access, AuthRequest, AuthState, PermKind, Permission, TOKEN_TTL};
pub use error::{BackendError, GrpcCode, Result, StoreError};
pub use lease::{Clock, ManualClock, MonotonicClock, MAX_LEASE_TTL};
pub use range::KeyRange;
#[cfg(feature = "rocks")]
pub use store::DiskStore;
pub use store::{MemStore, Status, Store, StoreOptions};
pub use txn::check_txn;
pub use types::*;
pub use watch::{ProgressRequester, WatchId, WatchRequest, WatchResponse, WatchStats, Watcher};
pub use write::{WriteRequest, WriteResponse};
