//! Lease sessions and locks for the lease chaos tests, recorded for `ballast_check::check_leases`.
//!
//! What clients of a coordination service do (Kubernetes' node leases and leader election, etcd's
//! `concurrency` package): grant a short lease (2-3 s here), attach a key to it, keep it alive
//! through a member other than the one they wrote through, and revoke it when done; readers read
//! every session key, linearizably, through any member; lockers take one lock on a lease of their
//! own, hold it briefly and release it. Every keep-alive answered with a TTL is recorded with the
//! time it was sent, every read with its call and return, every lock hold with its span.
//!
//! A client that loses its member moves on to the next one, as a client library fails over.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_check::{KeysRead, LeaseSession, LockHold, Nanos};
use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use ballast_proto::pb::lease_client::LeaseClient;
use ballast_proto::v3lockpb;
use ballast_proto::v3lockpb::lock_client::LockClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const PREFIX: &str = "session/";
const PREFIX_END: &str = "session0";
const LOCK: &str = "chaos-lock";

/// What the session traffic does.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub sessions: usize,
    /// Reader `r` reads through member `r`.
    pub readers: usize,
    pub lockers: usize,
    /// Each lease gets one of these TTLs (seconds).
    pub ttls: Vec<i64>,
    pub request_timeout: Duration,
    pub seed: u64,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            sessions: 6,
            readers: 3,
            lockers: 3,
            ttls: vec![2, 3],
            request_timeout: Duration::from_secs(1),
            seed: std::env::var("CHAOS_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(rand::random),
        }
    }
}

/// What a run recorded.
#[derive(Debug, Default)]
pub struct SessionRecording {
    pub sessions: Vec<LeaseSession>,
    pub reads: Vec<KeysRead>,
    pub holds: Vec<LockHold>,
    /// Keep-alives answered with a TTL, over every lease.
    pub renewals: usize,
    /// Leases a keep-alive found gone while the client still wanted them.
    pub lost: usize,
}

struct Shared {
    endpoints: Vec<String>,
    config: SessionConfig,
    epoch: Instant,
    stop: AtomicBool,
    next_lease: AtomicI64,
    recording: Mutex<SessionRecording>,
}

impl Shared {
    fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    fn channel(&self, member: usize) -> Channel {
        // No request timeout on the channel: keep-alive streams outlive any; requests are
        // bounded one by one (`timed`).
        crate::common::grpc::client_channel(&self.endpoints[member % self.endpoints.len()], None)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.config.request_timeout, f).await {
            Ok(Ok(resp)) => Some(resp.into_inner()),
            _ => None,
        }
    }
}

/// Session traffic running in the background.
pub struct SessionTraffic {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SessionTraffic {
    pub fn start(endpoints: Vec<String>, config: SessionConfig) -> SessionTraffic {
        eprintln!(
            "sessions: seed {} (CHAOS_SEED replays the client choices)",
            config.seed
        );
        let runtime = crate::common::grpc::client_runtime();
        let shared = Arc::new(Shared {
            endpoints,
            config: config.clone(),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            next_lease: AtomicI64::new(0x5e55_0000),
            recording: Mutex::default(),
        });
        let rng = |i: u64| StdRng::seed_from_u64(config.seed.wrapping_mul(7).wrapping_add(i));
        let mut tasks = Vec::new();
        for s in 0..config.sessions {
            tasks.push(runtime.spawn(session(shared.clone(), s, rng(s as u64))));
        }
        for r in 0..config.readers {
            tasks.push(runtime.spawn(reader(shared.clone(), r)));
        }
        for l in 0..config.lockers {
            tasks.push(runtime.spawn(locker(shared.clone(), l, rng(200 + l as u64))));
        }
        SessionTraffic {
            shared,
            runtime,
            tasks,
        }
    }

    /// Reads answered so far.
    pub fn reads(&self) -> usize {
        self.shared.recording.lock().unwrap().reads.len()
    }

    pub fn stop(self) -> SessionRecording {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.runtime.block_on(async {
            for t in self.tasks {
                t.await.unwrap();
            }
        });
        std::mem::take(&mut *self.shared.recording.lock().unwrap())
    }
}

/// A lease kept alive by a background task through one member at a time.
struct KeptAlive {
    renewed: Arc<Mutex<Vec<Nanos>>>,
    /// When a keep-alive answered TTL 0 (the lease is gone); 0 while none has.
    lost: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl KeptAlive {
    fn start(
        shared: &Arc<Shared>,
        lease: i64,
        ttl: i64,
        granted: Nanos,
        member: usize,
    ) -> KeptAlive {
        let renewed = Arc::new(Mutex::new(vec![granted]));
        let lost = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep_alive(
            shared.clone(),
            lease,
            ttl,
            member,
            renewed.clone(),
            lost.clone(),
            stop.clone(),
        ));
        KeptAlive {
            renewed,
            lost,
            stop,
            task,
        }
    }

    /// Whether a keep-alive found the lease gone.
    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed) != 0
    }

    /// Stops renewing; returns the send times of the grant and every renewal answered, and when
    /// a keep-alive answered that the lease was gone.
    async fn finish(self, shared: &Shared) -> (Vec<Nanos>, Option<Nanos>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let renewed = std::mem::take(&mut *self.renewed.lock().unwrap());
        let gone = Some(self.lost.load(Ordering::Relaxed)).filter(|&at| at != 0);
        let mut rec = shared.recording.lock().unwrap();
        rec.renewals += renewed.len() - 1;
        rec.lost += usize::from(gone.is_some());
        (renewed, gone)
    }
}

/// Sends a keep-alive every TTL/3 on one stream; a stream that fails or answers late is replaced
/// by one to the next member. Ends when stopped or when the lease is gone (TTL 0).
async fn keep_alive(
    shared: Arc<Shared>,
    lease: i64,
    ttl: i64,
    mut member: usize,
    renewed: Arc<Mutex<Vec<Nanos>>>,
    lost: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let every = Duration::from_millis(ttl as u64 * 1000 / 3);
    while !stop.load(Ordering::Relaxed) {
        // The first request goes out with the call: gRPC-Go (etcd) sends the response headers
        // only with the first answer, so the call returns only once a request was answered.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut sent = shared.now();
        let _ = tx.send(pb::LeaseKeepAliveRequest { id: lease }).await;
        let mut client = LeaseClient::new(shared.channel(member));
        let Some(mut answers) = shared
            .timed(client.lease_keep_alive(ReceiverStream::new(rx)))
            .await
        else {
            member += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            match tokio::time::timeout(shared.config.request_timeout, answers.message()).await {
                Ok(Ok(Some(resp))) if resp.ttl > 0 => renewed.lock().unwrap().push(sent),
                Ok(Ok(Some(_))) => {
                    lost.store(shared.now().max(1), Ordering::Relaxed);
                    return;
                }
                _ => break,
            }
            tokio::time::sleep(every).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            sent = shared.now();
            if tx
                .send(pb::LeaseKeepAliveRequest { id: lease })
                .await
                .is_err()
            {
                break;
            }
        }
        member += 1;
    }
}

/// A lease granted through `member`, and kept alive through another one.
struct Granted {
    member: usize,
    lease: i64,
    ttl: i64,
    kept: KeptAlive,
}

/// Grants a lease of a random TTL through a random member (trying again until one is granted)
/// and starts keeping it alive through another member; None once the traffic stops.
async fn grant(shared: &Arc<Shared>, rng: &mut StdRng) -> Option<Granted> {
    let n = shared.endpoints.len();
    while !shared.stopped() {
        let member = rng.gen_range(0..n);
        let ttl = shared.config.ttls[rng.gen_range(0..shared.config.ttls.len())];
        let lease = shared.next_lease.fetch_add(1, Ordering::Relaxed);
        let sent = shared.now();
        let mut client = LeaseClient::new(shared.channel(member));
        let req = pb::LeaseGrantRequest { id: lease, ttl };
        if shared.timed(client.lease_grant(req)).await.is_some() {
            let other = member + 1 + rng.gen_range(0..n - 1);
            let kept = KeptAlive::start(shared, lease, ttl, sent, other);
            return Some(Granted {
                member,
                lease,
                ttl,
                kept,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn revoke(shared: &Shared, member: usize, id: i64) {
    let mut client = LeaseClient::new(shared.channel(member));
    let _ = shared
        .timed(client.lease_revoke(pb::LeaseRevokeRequest { id }))
        .await;
}

/// One session after another: grant, attach a key, keep alive through another member for a few
/// seconds, revoke.
async fn session(shared: Arc<Shared>, s: usize, mut rng: StdRng) {
    while let Some(Granted {
        member,
        lease,
        ttl,
        kept,
    }) = grant(&shared, &mut rng).await
    {
        let key = format!("{PREFIX}{s}/{lease:x}");
        let put = pb::PutRequest {
            key: key.clone().into(),
            value: "alive".into(),
            lease,
            ..Default::default()
        };
        let mut kv = KvClient::new(shared.channel(member));
        // A put with no answer may or may not have attached the key: not a session to judge.
        if shared.timed(kv.put(put)).await.is_none() {
            kept.finish(&shared).await;
            revoke(&shared, member, lease).await;
            continue;
        }
        let attached = shared.now();
        let until = Instant::now() + Duration::from_millis(rng.gen_range(3000..8000));
        while Instant::now() < until && !shared.stopped() && !kept.is_lost() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (renewed, gone) = kept.finish(&shared).await;
        let revoke_called = shared.now();
        revoke(&shared, member, lease).await;
        shared
            .recording
            .lock()
            .unwrap()
            .sessions
            .push(LeaseSession {
                lease,
                ttl_secs: ttl,
                key: key.into_bytes(),
                attached,
                renewed,
                revoke_called: Some(revoke_called),
                gone,
            });
    }
}

/// Reads every session key, linearizably, through member `member` (mod the member count), again
/// and again: one reader per member keeps reads coming through the members that still serve
/// while one is cut off.
async fn reader(shared: Arc<Shared>, member: usize) {
    let mut kv = KvClient::new(shared.channel(member));
    while !shared.stopped() {
        let req = pb::RangeRequest {
            key: PREFIX.into(),
            range_end: PREFIX_END.into(),
            keys_only: true,
            ..Default::default()
        };
        let call = shared.now();
        if let Some(resp) = shared.timed(kv.range(req)).await {
            let ret = shared.now();
            let keys = resp.kvs.into_iter().map(|kv| kv.key.to_vec()).collect();
            shared
                .recording
                .lock()
                .unwrap()
                .reads
                .push(KeysRead { call, ret, keys });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes the one lock on a lease of its own, holds it briefly, releases it; again and again.
async fn locker(shared: Arc<Shared>, client: usize, mut rng: StdRng) {
    while let Some(Granted {
        member,
        lease,
        ttl,
        kept,
    }) = grant(&shared, &mut rng).await
    {
        let mut lock = LockClient::new(shared.channel(member));
        let req = v3lockpb::LockRequest {
            name: LOCK.into(),
            lease,
        };
        // Waiting for the lock may take a while: not bounded by the request timeout.
        let acquired = tokio::time::timeout(Duration::from_secs(10), lock.lock(req)).await;
        let Ok(Ok(resp)) = acquired else {
            // Perhaps acquired after all: revoking the lease releases it.
            kept.finish(&shared).await;
            revoke(&shared, member, lease).await;
            continue;
        };
        let acquired = shared.now();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..300))).await;
        let released = shared.now();
        let key = resp.into_inner().key;
        let _ = shared
            .timed(lock.unlock(v3lockpb::UnlockRequest { key }))
            .await;
        let (renewed, gone) = kept.finish(&shared).await;
        revoke(&shared, member, lease).await;
        let alive_until = renewed.iter().max().copied().unwrap_or(0) + ttl as u64 * 1_000_000_000;
        shared.recording.lock().unwrap().holds.push(LockHold {
            client,
            acquired,
            released,
            alive_until,
            lease,
            gone,
        });
    }
}
