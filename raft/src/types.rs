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
///
/// Logged with postcard, which numbers variants by their order: new variants go at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Store(WriteRequest),
    /// The leader of `term` found `lease` expired by its countdown. Applied (as a revocation)
    /// only if the entry was proposed in `term`, i.e. by that leader itself: only the leader's
    /// countdowns are authoritative, so an expiry must never reach the log through another
    /// member (a deposed leader's countdowns ran on while the majority kept the lease alive).
    ExpireLease {
        term: u64,
        lease: i64,
    },
}

impl Command {
    /// What the store applies for this command in an entry of `entry_term`, if anything.
    pub fn store_request(self, entry_term: u64) -> Option<WriteRequest> {
        match self {
            Command::Store(req) => Some(req),
            Command::ExpireLease { term, lease } if term == entry_term => {
                Some(WriteRequest::LeaseRevoke(lease))
            }
            Command::ExpireLease { .. } => None,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Store(req) => write!(f, "store: {}", request_kind(req)),
            Command::ExpireLease { term, lease } => {
                write!(f, "expire lease {lease:x} (leader of term {term})")
            }
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
        WriteRequest::Auth(_) => "auth",
        WriteRequest::Alarm { .. } => "alarm",
        WriteRequest::Checked { req, .. } => request_kind(req),
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

/// Ballast's data types on any async runtime: openraft's types built from them (log ids, entries,
/// snapshot metadata) are the same for every such configuration. The state machine is written for
/// all of them, so that the simulation (`raft/tests/sim.rs`) runs it on its deterministic runtime.
/// A configuration opts in with an empty `impl`; the bounds are checked there.
pub trait BallastConfig:
    openraft::RaftTypeConfig<
    D = Command,
    R = Reply,
    NodeId = NodeId,
    Node = MemberNode,
    LeaderId = openraft::alias::LeaderIdOf<TypeConfig>,
    Entry = Entry,
>
{
}

impl BallastConfig for TypeConfig {}

pub type NodeId = u64;
pub type CommittedLeaderId = openraft::alias::CommittedLeaderIdOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, MemberNode>;
