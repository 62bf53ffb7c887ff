//! Background writers that record which writes were acknowledged, for the checks that every
//! acknowledged write survived a fault: `Writer` puts through etcdctl against a `Cluster`'s live
//! members; `GrpcWriter` puts over gRPC (many more puts a second) and records each put's revision.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use tokio::runtime::Runtime;

use super::cluster::Cluster;
use super::ctl::ctl_on;
use super::grpc::client_channel;

/// Background writers: `threads` threads, each putting `key-<thread>-<seq>` = `<seq>` with its
/// own `etcdctl put` over all the given endpoints, recording every write that was acknowledged.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    count: Arc<AtomicUsize>,
    endpoints: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("acked", &self.acked_count())
            .finish()
    }
}

impl Writer {
    /// Starts writing to the cluster's live endpoints.
    pub fn start(cluster: &Cluster, threads: usize) -> Writer {
        let mut w = Writer {
            stop: Arc::new(AtomicBool::new(false)),
            acked: Arc::new(Mutex::new(BTreeMap::new())),
            count: Arc::new(AtomicUsize::new(0)),
            endpoints: Arc::new(Mutex::new(cluster.endpoints())),
            threads: Vec::new(),
        };
        for t in 0..threads {
            let (stop, acked, count, endpoints) = (
                w.stop.clone(),
                w.acked.clone(),
                w.count.clone(),
                w.endpoints.clone(),
            );
            w.threads.push(std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (key, value) = (format!("key-{t}-{seq:06}"), seq.to_string());
                    let eps = endpoints.lock().unwrap().clone();
                    if ctl_on(&eps, &["put", &key, &value], "3s").success {
                        acked.lock().unwrap().insert(key, value);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    seq += 1;
                }
            }));
        }
        w
    }

    /// Writes acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Points the writers at other endpoints (from their next write on).
    pub fn set_endpoints(&self, endpoints: String) {
        *self.endpoints.lock().unwrap() = endpoints;
    }

    /// Waits until `more` writes beyond `from` are acknowledged; returns the count, or panics.
    pub fn wait_acked_beyond(&self, from: usize, more: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.acked_count();
            if now >= from + more {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged in {timeout:?} after {from} (wanted {more} more)",
                now - from
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the writers and returns every acknowledged `key -> value`.
    pub fn stop(mut self) -> BTreeMap<String, String> {
        self.join();
        std::mem::take(&mut *self.acked.lock().unwrap())
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.join();
    }
}

/// An acknowledged put: key, value, and the revision it was acknowledged at.
pub type AckedPut = (String, String, i64);

/// Background writers over gRPC: `writers` tasks on a runtime, each with its own connection to
/// one member, task `w` putting `{prefix}{w}/{seq}` = `v-{key}` (`seq` from 1: each key once) and
/// recording every put that was acknowledged, with its revision. A put without an answer (the
/// member was killed, or is not up yet) has an unknown outcome and is not recorded.
#[derive(Debug)]
pub struct GrpcWriter {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<AckedPut>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl GrpcWriter {
    /// Starts writing on `rt` to the member at `endpoint`; `timeout` bounds each put.
    pub fn start(
        rt: &Runtime,
        endpoint: &str,
        timeout: Duration,
        prefix: &str,
        writers: usize,
    ) -> GrpcWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        // A lazy channel spawns its connection task on the current runtime.
        let _entered = rt.enter();
        let tasks = (0..writers)
            .map(|w| {
                rt.spawn(put_unique(
                    KvClient::new(client_channel(endpoint, Some(timeout))),
                    format!("{prefix}{w}/"),
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        GrpcWriter { stop, acked, tasks }
    }

    /// Puts acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the writers, waits for their last answers and returns every acknowledged put.
    pub fn stop(mut self, rt: &Runtime) -> Vec<AckedPut> {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            rt.block_on(task).unwrap();
        }
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

impl Drop for GrpcWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Puts unique keys until stopped; records each acknowledged one with its revision.
async fn put_unique(
    mut kv: KvClient<tonic::transport::Channel>,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<AckedPut>>>,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let key = format!("{prefix}{seq}");
        let value = format!("v-{key}");
        let req = pb::PutRequest {
            key: key.clone().into_bytes().into(),
            value: value.clone().into_bytes().into(),
            ..Default::default()
        };
        match kv.put(req).await {
            Ok(resp) => {
                let rev = resp.into_inner().header.map_or(0, |h| h.revision);
                acked.lock().unwrap().push((key, value, rev));
            }
            // Killed (or not up yet): the outcome is unknown, and it is not recorded.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
