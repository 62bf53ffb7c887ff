//! The messages members exchange besides openraft's own (which `network` carries): work a
//! follower forwards to the leader (`Peer.Forward`, see `forward`) and the leader's answer. Kept
//! apart from `replica` so that they build without RocksDB, for the fuzz target that decodes them.

use ballast_store::{LeaseId, LeaseStatus, StoreError, WriteResponse};
use serde::{Deserialize, Serialize};

use crate::types::{Command, MemberNode, NodeId};

/// Why a replicated operation failed, as etcd says it.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum ReplicaError {
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    #[error("{0}")]
    Other(String),
    // Encoded by variant order (postcard): new variants go last.
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
}

/// Work a follower hands to the leader. Encoded by variant order and field order (postcard):
/// new variants go last (`raft/tests/formats.rs` holds the bytes).
#[derive(Debug, Serialize, Deserialize)]
pub enum LeaderRequest {
    Write(Command),
    ReadIndex,
    KeepAlive(LeaseId),
    TimeToLive {
        lease: LeaseId,
        keys: bool,
    },
    AddMember {
        id: NodeId,
        node: MemberNode,
        learner: bool,
    },
    Promote(NodeId),
    Remove(NodeId),
    SetNode(NodeId, MemberNode),
    TransferLeader(NodeId),
    /// Writes batched by a follower (see `forward`); answered in order.
    Writes(Vec<Command>),
}

impl LeaderRequest {
    /// Whether running it twice does no harm (reads and lease queries), so that it may be sent
    /// again when it is unknown whether the first attempt reached the leader.
    pub fn may_repeat(&self) -> bool {
        matches!(
            self,
            LeaderRequest::ReadIndex
                | LeaderRequest::KeepAlive(_)
                | LeaderRequest::TimeToLive { .. }
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum LeaderReply {
    Write(Result<WriteResponse, StoreError>),
    ReadIndex(u64),
    KeepAlive(Result<i64, StoreError>),
    TimeToLive(LeaseStatus),
    Done,
    Writes(Vec<Result<Result<WriteResponse, StoreError>, ReplicaError>>),
}
