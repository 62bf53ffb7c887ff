//! The etcd v3 wire protocol: the messages and gRPC services of `etcdserverpb`, `mvccpb`, `authpb`,
//! `v3lockpb` and `v3electionpb`, generated at build time from this crate's own .proto files (etcd's names and field
//! numbers).

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod authpb {
    tonic::include_proto!("authpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

pub use etcdserverpb as pb;

/// Ballast's own member-to-member service (not etcd's): see `proto/raft.proto`.
pub mod raftpb {
    tonic::include_proto!("ballast.raft");
}
