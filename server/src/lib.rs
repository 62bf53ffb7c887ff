//! Ballast's etcd v3 API: the eight gRPC services of a KV member (KV, Watch, Lease, Cluster,
//! Maintenance, Auth, and the concurrency API's Lock and Election), its HTTP endpoints (/health,
//! /metrics), and `ballast kv`'s etcd-compatible flags.
//!
//! The services never touch RocksDB themselves: reads go to the store, writes through
//! [`member::Member::propose`], which commits them in groups.

pub mod access;
pub mod auth;
pub mod authority;
pub mod cluster;
pub mod compaction;
pub mod config;
pub use ballast_proto::convert;
/// Every name in a member's data directory.
pub use ballast_raft::layout;
pub mod election;
pub mod error;
pub mod http;
pub mod identity;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod member;
pub mod serve;
pub mod snapshot;
pub mod watch;

pub use config::KvArgs;
pub use error::{ApiError, OpenError};
pub use member::{Member, MemberOptions};
pub use serve::{serve, ServeOptions};
