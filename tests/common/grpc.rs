//! gRPC clients for tests that talk to members directly rather than through etcdctl (a process a
//! request is too slow for traffic that must race a fault): a channel to a member, the runtime the
//! clients run on, the current revision, and reading a whole key range back at one revision.

use std::collections::BTreeMap;
use std::time::Duration;

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use tonic::transport::Channel;

/// Rows per range request when reading a key range back.
const PAGE: i64 = 5000;

/// A lazily connected channel to a member (`host:port`) for recorded client traffic; `timeout`
/// bounds each request on it (none for long-lived streams such as keep-alives). Outside a task
/// of the runtime it is to run on, create it within `Runtime::enter`.
pub fn client_channel(endpoint: &str, timeout: Option<Duration>) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1));
    match timeout {
        Some(t) => endpoint.timeout(t),
        None => endpoint,
    }
    .connect_lazy()
}

/// The runtime the recorded client traffic runs on (chaos and lease chaos): two workers, beside
/// the members' processes on the same two cores.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The member's current revision (the header of a read), or `None` if it does not answer.
pub async fn current_revision(kv: &mut KvClient<Channel>) -> Option<i64> {
    let req = pb::RangeRequest {
        key: b"x".to_vec().into(),
        ..Default::default()
    };
    kv.range(req)
        .await
        .ok()?
        .into_inner()
        .header
        .map(|h| h.revision)
}

/// Every key in `[start, end)` (linearizable reads unless `serializable`, a page at a time, all at
/// one revision): key -> (value, mod_revision), and the revision.
pub async fn read_range(
    kv: &mut KvClient<Channel>,
    start: &str,
    end: &str,
    serializable: bool,
) -> Result<(BTreeMap<String, (String, i64)>, i64), String> {
    let mut found = BTreeMap::new();
    let mut from = start.as_bytes().to_vec();
    let mut at = 0;
    let mut revision = 0;
    loop {
        let req = pb::RangeRequest {
            key: from.clone().into(),
            range_end: end.as_bytes().to_vec().into(),
            limit: PAGE,
            revision: at,
            serializable,
            ..Default::default()
        };
        let resp = kv
            .range(req)
            .await
            .map_err(|s| format!("range: {s}"))?
            .into_inner();
        if at == 0 {
            revision = resp.header.map_or(0, |h| h.revision);
            at = revision;
        }
        for kv in &resp.kvs {
            found.insert(
                String::from_utf8_lossy(&kv.key).into_owned(),
                (
                    String::from_utf8_lossy(&kv.value).into_owned(),
                    kv.mod_revision,
                ),
            );
        }
        match resp.kvs.last() {
            Some(last) if resp.more => {
                from = last.key.to_vec();
                from.push(0);
            }
            _ => return Ok((found, revision)),
        }
    }
}
