//! What the log replicates and how a member is named: openraft's type configuration.

use std::fmt;

use ballast_store::{StoreError, WriteRequest, WriteResponse};
use serde::{Deserialize, Serialize};

/// A member as the cluster knows it: etcd's `Member` fields. The raft node id is the etcd member id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

impl fmt::Display for MemberNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.peer_urls.join(","))
    }
}

/// One replicated command: what a log entry asks every member's state machine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Store(WriteRequest),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Store(req) => write!(f, "store: {}", request_kind(req)),
        }
    }
}

fn request_kind(req: &WriteRequest) -> &'static str {
    match req {
        WriteRequest::Put(_) => "put",
        WriteRequest::DeleteRange(_) => "delete-range",
        WriteRequest::Txn(_) => "txn",
        WriteRequest::Compact(_) => "compact",
        WriteRequest::LeaseGrant { .. } => "lease-grant",
        WriteRequest::LeaseRevoke(_) => "lease-revoke",
    }
}

/// What applying an entry gave: the store's answer for a command, nothing for raft's own entries.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Store(Result<WriteResponse, StoreError>),
    None,
}

openraft::declare_raft_types!(
    /// Ballast's openraft configuration.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = u64,
        Node = MemberNode,
);

pub type NodeId = u64;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, MemberNode>;
