//! Every request message of etcd's gRPC services (KV, Watch, Lease, Cluster, Maintenance, Auth,
//! Lock, Election) decoded from arbitrary bytes: decoding never panics, and whatever decodes
//! re-encodes to bytes that decode to the same message. The KV requests (Range, Put, DeleteRange,
//! Txn) then go the server's way: converted to the store's types (an unknown enum value is etcd's
//! error) and run against a fresh in-memory store, which either answers or refuses with one of
//! etcd's errors, never panics.

#![no_main]

use ballast_proto::{convert, pb, v3electionpb, v3lockpb};
use ballast_store::{MemStore, StoreOptions};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(msg) = M::decode(data) {
        let again = M::decode(msg.encode_to_vec().as_slice()).expect("re-encoded message decodes");
        assert_eq!(msg, again);
    }
}

/// The first byte picks the message type (the first ten keep the numbers of the seed corpus);
/// returns the type's index.
macro_rules! by_kind {
    ($kind:expr, $body:expr, $($ty:ty),+ $(,)?) => {{
        let types: &[fn(&[u8])] = &[$(round_trip::<$ty>),+];
        let index = usize::from($kind) % types.len();
        types[index]($body);
        index
    }};
}

/// An error the server would send: etcd's text.
fn etcd_error(err: impl std::fmt::Display) {
    let text = err.to_string();
    assert!(text.starts_with("etcdserver: ") || text.starts_with("mvcc: "), "not one of etcd's errors: {text}");
}

/// The server's path for the KV requests (types 0-3): conversion, then the store's checks and
/// evaluation.
fn serve(index: usize, body: &[u8]) {
    let store = || MemStore::in_memory(StoreOptions { sync: false, ..StoreOptions::default() }).unwrap();
    match index {
        0 => {
            let Ok(req) = pb::RangeRequest::decode(body) else { return };
            match convert::range_request(req) {
                Ok(req) => store().range(&req).map(drop).unwrap_or_else(etcd_error),
                Err(err) => etcd_error(err),
            }
        }
        1 => {
            let Ok(req) = pb::PutRequest::decode(body) else { return };
            store().put(convert::put_request(req)).map(drop).unwrap_or_else(etcd_error);
        }
        2 => {
            let Ok(req) = pb::DeleteRangeRequest::decode(body) else { return };
            store().delete_range(convert::delete_request(req)).map(drop).unwrap_or_else(etcd_error);
        }
        3 => {
            let Ok(req) = pb::TxnRequest::decode(body) else { return };
            match convert::txn_request(req) {
                Ok(txn) => store().txn(txn).map(drop).unwrap_or_else(etcd_error),
                Err(err) => etcd_error(err),
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let index = by_kind!(
        kind,
        body,
        pb::RangeRequest,
        pb::PutRequest,
        pb::DeleteRangeRequest,
        pb::TxnRequest,
        pb::CompactionRequest,
        pb::WatchRequest,
        pb::LeaseGrantRequest,
        pb::LeaseKeepAliveRequest,
        pb::AlarmRequest,
        pb::MemberAddRequest,
        pb::HashRequest,
        pb::HashKvRequest,
        pb::SnapshotRequest,
        pb::LeaseRevokeRequest,
        pb::LeaseTimeToLiveRequest,
        pb::LeaseLeasesRequest,
        pb::MemberRemoveRequest,
        pb::MemberUpdateRequest,
        pb::MemberListRequest,
        pb::MemberPromoteRequest,
        pb::DefragmentRequest,
        pb::MoveLeaderRequest,
        pb::StatusRequest,
        pb::AuthEnableRequest,
        pb::AuthDisableRequest,
        pb::AuthStatusRequest,
        pb::AuthenticateRequest,
        pb::AuthUserAddRequest,
        pb::AuthUserGetRequest,
        pb::AuthUserDeleteRequest,
        pb::AuthUserChangePasswordRequest,
        pb::AuthUserGrantRoleRequest,
        pb::AuthUserRevokeRoleRequest,
        pb::AuthRoleAddRequest,
        pb::AuthRoleGetRequest,
        pb::AuthUserListRequest,
        pb::AuthRoleListRequest,
        pb::AuthRoleDeleteRequest,
        pb::AuthRoleGrantPermissionRequest,
        pb::AuthRoleRevokePermissionRequest,
        v3lockpb::LockRequest,
        v3lockpb::UnlockRequest,
        v3electionpb::CampaignRequest,
        v3electionpb::LeaderRequest,
        v3electionpb::ResignRequest,
        v3electionpb::ProclaimRequest,
    );
    serve(index, body);
});
