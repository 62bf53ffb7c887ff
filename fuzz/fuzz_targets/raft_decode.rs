//! What members write to disk and send each other (raft log entries, votes, the applied position,
//! snapshot metadata and headers, openraft's RPCs and their replies, forwarded requests and the
//! leader's replies): decoding arbitrary bytes gives a value or an error, never a panic or an
//! allocation the input cannot pay for, and whatever decodes re-encodes to bytes that decode to
//! the same encoding again.
//!
//! The first input byte picks the type; the rest is the encoded value.

#![no_main]

use ballast_raft::codec::{decode, encode};
use ballast_raft::types::{Entry, LogId, SnapshotMeta, StoredMembership, TypeConfig, Vote};
use ballast_raft::wire::{LeaderReply, LeaderRequest, ReplicaError};
use libfuzzer_sys::fuzz_target;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `bytes` as `T`; if that works, the value's encoding must be stable.
fn check<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    let Ok(value) = decode::<T>("fuzz input", bytes) else { return };
    let once = encode(&value);
    let again: T = decode("re-encoded value", &once).expect("a value's own encoding must decode");
    assert_eq!(encode(&again), once, "encoding is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else { return };
    match kind % 13 {
        0 => check::<Entry>(bytes),
        1 => check::<Vote>(bytes),
        2 => check::<(Option<LogId>, StoredMembership)>(bytes),
        3 => check::<SnapshotMeta>(bytes),
        4 => check::<(Vote, SnapshotMeta)>(bytes),
        5 => check::<AppendEntriesRequest<TypeConfig>>(bytes),
        6 => check::<Result<AppendEntriesResponse<TypeConfig>, String>>(bytes),
        7 => check::<VoteRequest<TypeConfig>>(bytes),
        8 => check::<Result<VoteResponse<TypeConfig>, String>>(bytes),
        9 => check::<TransferLeaderRequest<TypeConfig>>(bytes),
        10 => check::<Result<SnapshotResponse<TypeConfig>, String>>(bytes),
        11 => check::<LeaderRequest>(bytes),
        _ => check::<Result<LeaderReply, ReplicaError>>(bytes),
    }
});
