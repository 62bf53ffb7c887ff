//! Ballast's replication: a cluster of members, each with its own RocksDB, kept identical by raft
//! ([openraft](https://docs.rs/openraft), pinned exactly).
//!
//! - [`log_store`]: the raft log in RocksDB, with group commit; [`wal_tail`] spots a torn record at
//!   the end of its WAL.
//! - [`state_machine`]: the MVCC store as state machine; snapshots are RocksDB checkpoints.
//! - [`network`]: openraft's RPCs over gRPC between members.
//! - [`replica`]: [`Replica`], the API the rest of Ballast uses (openraft's types stay in this crate).
//! - [`types`], [`wire`], [`codec`]: what members write to disk and send each other, and its one
//!   encoding. These build without RocksDB (`--no-default-features`), for the fuzz target that
//!   decodes them.

pub mod codec;
#[cfg(feature = "rocks")]
mod forward;
pub mod fsutil;
#[cfg(feature = "rocks")]
pub mod log_store;
pub mod metrics;
#[cfg(feature = "rocks")]
pub mod network;
pub mod reconfig;
#[cfg(feature = "rocks")]
pub mod replica;
#[cfg(feature = "rocks")]
pub mod state_machine;
pub mod types;
pub mod wal_tail;
pub mod wire;

#[cfg(feature = "rocks")]
pub use replica::{MemberInfo, RaftStatus, Replica, ReplicaOptions};
pub use types::{MemberNode, NodeId};
pub use wire::ReplicaError;
