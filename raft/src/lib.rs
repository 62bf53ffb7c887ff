//! Ballast's replication: a cluster of members, each with its own RocksDB, kept identical by raft
//! ([openraft](https://docs.rs/openraft), pinned exactly).
//!
//! - [`log_store`]: the raft log in RocksDB, with group commit; [`wal_tail`] spots a torn record at
//!   the end of its WAL.
//! - [`state_machine`]: the MVCC store as state machine, apart from where it lives: a member's
//!   store and snapshots (RocksDB checkpoints) are [`checkpoints`]', the simulation's are in memory.
//! - [`leadership`]: what a leader does for leases (countdowns, expiry, confirming it leads).
//! - [`layout`]: every name in a member's data directory.
//! - [`network`]: openraft's RPCs over gRPC between members (the client); [`peer_service`] answers
//!   them.
//! - [`reconfig`]: the leader's membership rules (etcd's strict reconfiguration), pure functions.
//! - [`replica`]: [`Replica`], the API the rest of Ballast uses (openraft's types stay in this crate).
//! - [`types`], [`wire`], [`codec`]: what members write to disk and send each other, and its one
//!   encoding. These build without RocksDB (`--no-default-features`), for the fuzz target that
//!   decodes them.

#[cfg(feature = "rocks")]
pub mod checkpoints;
pub mod codec;
#[cfg(feature = "rocks")]
mod forward;
pub mod fsutil;
pub mod layout;
pub mod leadership;
#[cfg(feature = "rocks")]
pub mod log_store;
pub mod metrics;
#[cfg(feature = "rocks")]
pub mod network;
#[cfg(feature = "rocks")]
pub mod peer_service;
pub mod reconfig;
#[cfg(feature = "rocks")]
pub mod replica;
pub mod state_machine;
pub mod types;
pub mod wal_tail;
pub mod wire;

#[cfg(feature = "rocks")]
pub use replica::{MemberInfo, RaftStatus, Replica, ReplicaOptions};
pub use types::{MemberNode, NodeId};
pub use wire::ReplicaError;
