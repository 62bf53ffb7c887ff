//! Ballast's etcd v3 API: the gRPC services (KV, Watch, Lease, Cluster, Maintenance, Auth) of a KV member,
//! its HTTP endpoints (/health, /metrics), and `ballast kv`'s etcd-compatible flags.
//!
//! The services never touch RocksDB themselves: reads go to the store, writes through
//! [`node::Node::propose`], which commits them in groups.

pub mod auth;
pub mod authority;
pub mod cluster;
pub mod compaction;
pub mod config;
pub use ballast_proto::convert;
pub mod election;
pub mod error;
pub mod http;
pub mod identity;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod node;
pub mod serve;
pub mod snapshot;
pub mod watch;

pub use config::KvArgs;
pub use error::{ApiError, OpenError};
pub use node::{Node, NodeOptions};
pub use serve::{serve, ServeOptions};
