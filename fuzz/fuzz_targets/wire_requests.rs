//! Every etcd request type decoded from arbitrary bytes: decoding never panics, and whatever
//! decodes re-encodes to bytes that decode to the same message.

#![no_main]

use ballast_proto::pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(msg) = M::decode(data) {
        let again = M::decode(msg.encode_to_vec().as_slice()).expect("re-encoded message decodes");
        assert_eq!(msg, again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 10 {
        0 => round_trip::<pb::RangeRequest>(body),
        1 => round_trip::<pb::PutRequest>(body),
        2 => round_trip::<pb::DeleteRangeRequest>(body),
        3 => round_trip::<pb::TxnRequest>(body),
        4 => round_trip::<pb::CompactionRequest>(body),
        5 => round_trip::<pb::WatchRequest>(body),
        6 => round_trip::<pb::LeaseGrantRequest>(body),
        7 => round_trip::<pb::LeaseKeepAliveRequest>(body),
        8 => round_trip::<pb::AlarmRequest>(body),
        _ => round_trip::<pb::MemberAddRequest>(body),
    }
});
