//! The etcd v3 wire protocol: the messages and gRPC services of `etcdserverpb`, `mvccpb`, `authpb`,
//! `v3lockpb` and `v3electionpb`, generated at build time from this crate's own .proto files (etcd's names and field
//! numbers).

#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod authpb {
    tonic::include_proto!("authpb");
}

#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

pub use etcdserverpb as pb;

/// Ballast's own member-to-member service (not etcd's): see `proto/raft.proto`.
#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod raftpb {
    tonic::include_proto!("ballast.raft");
}

/// Conversion between the wire messages and the store's types (feature `store`).
#[cfg(feature = "store")]
pub mod convert;
