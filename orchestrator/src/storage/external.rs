//! The external adapter: any etcd v3 API cluster (`ballast kv`, etcd 3.4 or later) over gRPC,
//! failing over between its endpoints as etcd's own clients do.
//!
//! A request that fails with "unavailable" (the endpoint is down or has no leader) is tried on
//! the next endpoint, round the list twice with a short pause between rounds. Writes are retried
//! too: a compare-and-swap whose first attempt did commit fails its compare the second time, and
//! the caller sees a conflict rather than a lost write (kube-apiserver's etcd client does the same).

use std::time::Duration;

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use ballast_proto::pb::lease_client::LeaseClient;
use ballast_proto::pb::watch_client::WatchClient;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::{open_watch_request, Storage, StorageError, StorageResult, WatchStream};

/// How long one attempt may take before the next endpoint is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before another round of the endpoints.
const ROUND_PAUSE: Duration = Duration::from_millis(300);
/// Responses are as large as the store sends (etcd's clients allow 2 GiB): tonic's default of
/// 4 MiB refused a list of 10,000 objects (found by `scripts/bench-apiserver.sh`).
const MAX_RESPONSE: usize = usize::MAX;
/// Rounds of the endpoint list before a request fails.
const ROUNDS: usize = 3;

#[derive(Debug)]
pub struct External {
    urls: Vec<String>,
    channels: Vec<Channel>,
    /// The endpoint that last answered: requests start there.
    current: Mutex<usize>,
}

impl External {
    /// Channels to every endpoint of `urls` ("http://h1:2379,http://h2:2379"); nothing is
    /// dialled until the first request.
    pub fn new(urls: &str) -> StorageResult<Self> {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.contains("://") {
                    u.to_string()
                } else {
                    format!("http://{u}")
                }
            })
            .collect();
        if urls.is_empty() {
            return Err(StorageError::Refused("no datastore endpoint given".into()));
        }
        let channels = urls
            .iter()
            .map(|url| {
                if url.starts_with("https://") {
                    return Err(StorageError::Refused(format!(
                        "datastore endpoint {url}: https is not supported yet"
                    )));
                }
                Endpoint::from_shared(url.clone())
                    .map(|e| {
                        e.connect_timeout(Duration::from_secs(2))
                            .tcp_nodelay(true)
                            .http2_keep_alive_interval(Duration::from_secs(30))
                            .connect_lazy()
                    })
                    .map_err(|e| StorageError::Refused(format!("datastore endpoint {url}: {e}")))
            })
            .collect::<StorageResult<Vec<_>>>()?;
        Ok(Self {
            urls,
            channels,
            current: Mutex::new(0),
        })
    }

    /// Runs `call` on each endpoint in turn, from the one that last answered, until one answers
    /// with something other than "unavailable".
    async fn attempt<T, F, Fut>(&self, mut call: F) -> StorageResult<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.channels.len();
        let start = *self.current.lock();
        let mut last = None;
        for round in 0..ROUNDS {
            if round > 0 {
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            for step in 0..n {
                let i = (start + step) % n;
                let outcome = tokio::time::timeout(REQUEST_TIMEOUT, call(self.channels[i].clone()))
                    .await
                    .unwrap_or_else(|_| Err(tonic::Status::unavailable("request timed out")));
                match outcome {
                    Ok(value) => {
                        *self.current.lock() = i;
                        return Ok(value);
                    }
                    Err(status) => match StorageError::from_status(&status) {
                        StorageError::Unavailable(why) => {
                            tracing::debug!(endpoint = %self.urls[i], %why, "trying the next endpoint");
                            last = Some(why);
                        }
                        other => return Err(other),
                    },
                }
            }
        }
        Err(StorageError::Unavailable(format!(
            "no endpoint of {} answered: {}",
            self.urls.join(","),
            last.unwrap_or_default()
        )))
    }
}

#[tonic::async_trait]
impl Storage for External {
    async fn range(&self, req: pb::RangeRequest) -> StorageResult<pb::RangeResponse> {
        self.attempt(|ch| {
            let req = req.clone();
            async move {
                Ok(KvClient::new(ch)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .range(req)
                    .await?
                    .into_inner())
            }
        })
        .await
    }

    async fn txn(&self, req: pb::TxnRequest) -> StorageResult<pb::TxnResponse> {
        self.attempt(|ch| {
            let req = req.clone();
            async move {
                Ok(KvClient::new(ch)
                    .max_decoding_message_size(MAX_RESPONSE)
                    .txn(req)
                    .await?
                    .into_inner())
            }
        })
        .await
    }

    async fn compact(&self, revision: i64) -> StorageResult<()> {
        self.attempt(|ch| async move {
            let req = pb::CompactionRequest {
                revision,
                physical: false,
            };
            KvClient::new(ch).compact(req).await?;
            Ok(())
        })
        .await
    }

    async fn grant_lease(&self, ttl: i64) -> StorageResult<i64> {
        self.attempt(|ch| async move {
            let req = pb::LeaseGrantRequest { ttl, id: 0 };
            Ok(LeaseClient::new(ch).lease_grant(req).await?.into_inner().id)
        })
        .await
    }

    async fn watch(&self, create: pb::WatchCreateRequest) -> StorageResult<WatchStream> {
        // The stream is opened on one endpoint; if that endpoint goes away the stream ends and
        // the watcher above resumes from its last revision (on whichever endpoint answers).
        let (tx, responses) = self
            .attempt(|ch| {
                let create = create.clone();
                async move {
                    let (tx, rx) = mpsc::channel(8);
                    tx.send(open_watch_request(create))
                        .await
                        .map_err(|_| tonic::Status::unavailable("watch stream closed"))?;
                    let responses = WatchClient::new(ch)
                        .max_decoding_message_size(MAX_RESPONSE)
                        .watch(ReceiverStream::new(rx))
                        .await?
                        .into_inner();
                    Ok((tx, responses))
                }
            })
            .await?;
        Ok(WatchStream::new(tx, Box::pin(responses)))
    }

    fn describe(&self) -> String {
        self.urls.join(",")
    }
}
