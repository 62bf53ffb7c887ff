//! Ballast's replication: a cluster of members, each with its own RocksDB, kept identical by raft
//! ([openraft](https://docs.rs/openraft), pinned exactly).
//!
//! - [`log_store`]: the raft log in RocksDB, with group commit.
//! - [`state_machine`]: the MVCC store as state machine; snapshots are RocksDB checkpoints.
//! - [`network`]: openraft's RPCs over gRPC between members.
//! - [`replica`]: [`Replica`], the API the rest of Ballast uses (openraft's types stay in this crate).

pub mod codec;
pub mod fsutil;
pub mod log_store;
pub mod network;
pub mod replica;
pub mod state_machine;
pub mod types;

pub use replica::{MemberInfo, RaftStatus, Replica, ReplicaError, ReplicaOptions};
pub use types::{MemberNode, NodeId};
pub mod metrics;
