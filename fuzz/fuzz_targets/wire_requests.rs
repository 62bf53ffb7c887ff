//! Every request message of etcd's gRPC services (KV, Watch, Lease, Cluster, Maintenance, Auth,
//! Lock, Election) decoded from arbitrary bytes: decoding never panics, and whatever decodes
//! re-encodes to bytes that decode to the same message.

#![no_main]

use ballast_proto::{pb, v3electionpb, v3lockpb};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(msg) = M::decode(data) {
        let again = M::decode(msg.encode_to_vec().as_slice()).expect("re-encoded message decodes");
        assert_eq!(msg, again);
    }
}

/// The first byte picks the message type (the first ten keep the numbers of the seed corpus).
macro_rules! by_kind {
    ($kind:expr, $body:expr, $($ty:ty),+ $(,)?) => {{
        let types: &[fn(&[u8])] = &[$(round_trip::<$ty>),+];
        types[usize::from($kind) % types.len()]($body)
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    by_kind!(
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
    )
});
