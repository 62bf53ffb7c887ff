//! The controller manager's runtime: shared caches of the objects the controllers read (one
//! watch per resource, as kube-controller-manager's shared informers), and each controller as
//! a kube-runtime `Controller` around its pure reconcile function in [`crate::controllers`].

mod daemonset;
mod deployment;
mod endpoints;
mod gc;
mod nodelifecycle;
mod replicaset;
mod statefulset;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::expectations::ControllerExpectations;
use super::pods::{controller_ref, pod_key};
use crate::events::EventSink;

/// Events buffered per subscriber of a shared cache before its writer waits.
const SHARED_BUFFER: usize = 4096;

/// Retry delay after a failed reconcile (kube's workqueue starts at 5 ms and doubles; a fixed
/// pause is enough for the conflicts and transient errors seen here).
const RETRY: Duration = Duration::from_secs(1);

/// The errors a controller's sync can end with: the API's, or a plan that could not be carried
/// out (both retried).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Plan(String),
}

/// What every controller shares: the client, the caches, the expectations, the recorder.
pub struct Shared {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub statefulsets: Store<StatefulSet>,
    pub revisions: Store<ControllerRevision>,
    pub claims: Store<PersistentVolumeClaim>,
    pub daemonsets: Store<DaemonSet>,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
    pub jobs: Store<Job>,
    pub services: Store<Service>,
    pub endpoints: Store<Endpoints>,
    pub endpoint_slices: Store<EndpointSlice>,
    /// Pods created and deleted by ReplicaSets and not yet seen on the watch.
    pub expectations: Arc<Mutex<ControllerExpectations>>,
    pub events: EventSink,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Records an event on `object` as kube-controller-manager's controllers do (queued and
    /// spam-filtered: see [`crate::events`]).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        self.events.record(event, object.object_ref(&()));
    }

    /// The pods of `namespace` in the cache.
    pub fn pods_in(&self, namespace: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state_filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
    }
}

/// A shared cache of `K` fed by one watch: its reader, subscribers for the controllers it
/// triggers, its deletions (kube-runtime's shared streams pass on only objects still in the
/// store, so a controller that must act when an object goes listens here), and its feed, to be
/// driven.
struct SharedCache<K: Resource<DynamicType = ()> + Clone + 'static> {
    reader: Store<K>,
    subscribers: Vec<ReflectHandle<K>>,
    deleted: broadcast::Sender<Arc<K>>,
    feed: futures_util::stream::BoxStream<'static, ()>,
}

fn shared_cache<K>(
    client: &kube::Client,
    subscribers: usize,
    mut inspect: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> SharedCache<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store_shared::<K>(SHARED_BUFFER);
    let subscribers = (0..subscribers)
        .filter_map(|_| writer.subscribe())
        .collect();
    let (deleted, _) = broadcast::channel(SHARED_BUFFER);
    let tell = deleted.clone();
    let feed = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |ev| {
            inspect(ev);
            if let watcher::Event::Delete(object) = ev {
                let _ = tell.send(Arc::new(object.clone()));
            }
        })
        .reflect_shared(writer)
        .map(|_| ())
        .boxed();
    SharedCache {
        reader,
        subscribers,
        deleted,
        feed,
    }
}

/// The objects deleted from a cache from now on, mapped to what they trigger (a lagging
/// listener skips what it missed: deletions are hints, the next sync reads the cache).
fn deletions<K, T>(
    deleted: &broadcast::Sender<Arc<K>>,
    map: impl Fn(&K) -> Option<T> + Send + 'static,
) -> impl futures_util::Stream<Item = T> + Send + 'static
where
    K: Send + Sync + 'static,
    T: Send + 'static,
{
    futures_util::stream::unfold((deleted.subscribe(), map), |(mut rx, map)| async move {
        loop {
            match rx.recv().await {
                Ok(object) => {
                    if let Some(t) = map(&object) {
                        return Some((t, (rx, map)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Feeds the ReplicaSet expectations from the pod watch (kube's pod event handlers): a pod
/// seen for the first time was created by its controller; one that goes, or starts
/// terminating, was deleted.
fn observe_pods(
    expectations: Arc<Mutex<ControllerExpectations>>,
) -> impl FnMut(&watcher::Event<Pod>) + Send + 'static {
    let mut seen: HashSet<String> = HashSet::new();
    let mut listing: Option<HashSet<String>> = None;
    move |ev| {
        // The expectations' keys: a ReplicaSet's `namespace/name`, a DaemonSet's
        // `daemonset:namespace/name`.
        let owner_key = |pod: &Pod| {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("");
            controller_ref(&pod.metadata).and_then(|r| match r.kind.as_str() {
                "ReplicaSet" => Some(format!("{ns}/{}", r.name)),
                "DaemonSet" => Some(daemonset::key(ns, &r.name)),
                _ => None,
            })
        };
        let mut exp = expectations.lock();
        match ev {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(l) = listing.as_mut() {
                    l.insert(uid.clone());
                }
                let Some(owner) = owner_key(pod) else {
                    return;
                };
                if seen.insert(uid) {
                    exp.creation_observed(&owner);
                }
                if pod.metadata.deletion_timestamp.is_some() {
                    exp.deletion_observed(&owner, &pod_key(pod));
                }
            }
            watcher::Event::Delete(pod) => {
                seen.remove(pod.metadata.uid.as_deref().unwrap_or(""));
                if let Some(owner) = owner_key(pod) {
                    exp.deletion_observed(&owner, &pod_key(pod));
                }
            }
            watcher::Event::Init => listing = Some(HashSet::new()),
            watcher::Event::InitDone => {
                if let Some(listed) = listing.take() {
                    seen.retain(|uid| listed.contains(uid));
                }
            }
        }
    }
}

/// kube-controller-manager's flags that the controllers read.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// `--node-monitor-grace-period`: how long a node may be silent before it is Unknown.
    pub node_monitor_grace_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_monitor_grace_period: Duration::from_secs(40),
        }
    }
}

/// Runs the controllers until aborted.
pub async fn run(client: kube::Client, config: Config) -> anyhow::Result<()> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kube-controller-manager".into(),
            instance: None,
        },
    );
    let expectations = Arc::new(Mutex::new(ControllerExpectations::new()));
    let pods = shared_cache::<Pod>(&client, 5, observe_pods(expectations.clone()));
    let replicasets = shared_cache::<ReplicaSet>(&client, 2, |_| {});
    let deployments = shared_cache::<Deployment>(&client, 1, |_| {});
    let statefulsets = shared_cache::<StatefulSet>(&client, 1, |_| {});
    let revisions = shared_cache::<ControllerRevision>(&client, 1, |_| {});
    let claims = shared_cache::<PersistentVolumeClaim>(&client, 0, |_| {});
    let daemonsets = shared_cache::<DaemonSet>(&client, 1, |_| {});
    let nodes = shared_cache::<Node>(&client, 1, |_| {});
    let leases = shared_cache::<Lease>(&client, 0, |_| {});
    let jobs = shared_cache::<Job>(&client, 0, |_| {});
    let services = shared_cache::<Service>(&client, 1, |_| {});
    let endpoints = shared_cache::<Endpoints>(&client, 0, |_| {});
    let endpoint_slices = shared_cache::<EndpointSlice>(&client, 0, |_| {});
    let shared = Arc::new(Shared {
        client: client.clone(),
        pods: pods.reader.clone(),
        replicasets: replicasets.reader.clone(),
        deployments: deployments.reader.clone(),
        statefulsets: statefulsets.reader.clone(),
        revisions: revisions.reader.clone(),
        claims: claims.reader.clone(),
        daemonsets: daemonsets.reader.clone(),
        nodes: nodes.reader.clone(),
        leases: leases.reader.clone(),
        jobs: jobs.reader.clone(),
        services: services.reader.clone(),
        endpoints: endpoints.reader.clone(),
        endpoint_slices: endpoint_slices.reader.clone(),
        expectations,
        events: EventSink::new(recorder),
    });
    let (
        Ok([pods_for_rs, pods_for_d, pods_for_sts, pods_for_ds, pods_for_ep]),
        Ok([rs_for_rs, rs_for_d]),
        Ok([d_for_d]),
        Ok([sts]),
        Ok([revs]),
        Ok([ds]),
        Ok([nodes_for_ds]),
        Ok([services_for_ep]),
    ) = (
        <[_; 5]>::try_from(pods.subscribers),
        <[_; 2]>::try_from(replicasets.subscribers),
        <[_; 1]>::try_from(deployments.subscribers),
        <[_; 1]>::try_from(statefulsets.subscribers),
        <[_; 1]>::try_from(revisions.subscribers),
        <[_; 1]>::try_from(daemonsets.subscribers),
        <[_; 1]>::try_from(nodes.subscribers),
        <[_; 1]>::try_from(services.subscribers),
    )
    else {
        anyhow::bail!("shared caches refused a subscriber");
    };
    let rs_triggers = replicaset::Triggers {
        replicasets: rs_for_rs,
        pods: pods_for_rs,
        pods_deleted: deletions(&pods.deleted, replicaset::owner_of),
    };
    let lookup = shared.replicasets.clone();
    let d_triggers = deployment::Triggers {
        deployments: d_for_d,
        replicasets: rs_for_d,
        pods: pods_for_d,
        replicasets_deleted: deletions(&replicasets.deleted, deployment::owner_of),
        pods_deleted: deletions(&pods.deleted, move |pod: &Pod| {
            deployment::owner_of_pod(&lookup, pod)
        }),
    };
    let sts_triggers = statefulset::Triggers {
        sets: sts,
        pods: pods_for_sts,
        revisions: revs,
        pods_deleted: deletions(&pods.deleted, statefulset::owner_of),
    };
    let ds_triggers = daemonset::Triggers {
        daemonsets: ds,
        pods: pods_for_ds,
        nodes: nodes_for_ds,
        pods_deleted: deletions(&pods.deleted, daemonset::owner_of),
    };
    let lookup = shared.services.clone();
    let ep_triggers = endpoints::Triggers {
        services: services_for_ep,
        pods: pods_for_ep,
        pods_deleted: deletions(&pods.deleted, move |pod: &Pod| {
            Some(endpoints::services_of(&lookup, pod))
        }),
        services_deleted: deletions(&services.deleted, |s: &Service| Some(Arc::new(s.clone()))),
    };
    // No controller works before every cache has listed (kube's WaitForCacheSync): a
    // ReplicaSet synced against a pod cache still empty would create its pods again.
    let synced = shared.clone();
    let controllers = async move {
        let ready = tokio::try_join!(
            synced.pods.wait_until_ready(),
            synced.replicasets.wait_until_ready(),
            synced.deployments.wait_until_ready(),
            synced.statefulsets.wait_until_ready(),
            synced.revisions.wait_until_ready(),
            synced.claims.wait_until_ready(),
            synced.daemonsets.wait_until_ready(),
            synced.nodes.wait_until_ready(),
            synced.leases.wait_until_ready(),
            synced.jobs.wait_until_ready(),
            synced.services.wait_until_ready(),
            synced.endpoints.wait_until_ready(),
            synced.endpoint_slices.wait_until_ready(),
        );
        if ready.is_err() {
            return;
        }
        tokio::join!(
            replicaset::run(synced.clone(), rs_triggers),
            deployment::run(synced.clone(), d_triggers),
            statefulset::run(synced.clone(), sts_triggers),
            daemonset::run(synced.clone(), ds_triggers),
            endpoints::run(synced.clone(), ep_triggers),
            gc::run(synced.clone()),
            nodelifecycle::run(synced.clone(), config.node_monitor_grace_period),
        );
    };
    let feeds = futures_util::stream::select_all([
        pods.feed,
        replicasets.feed,
        deployments.feed,
        statefulsets.feed,
        revisions.feed,
        claims.feed,
        daemonsets.feed,
        nodes.feed,
        leases.feed,
        jobs.feed,
        services.feed,
        endpoints.feed,
        endpoint_slices.feed,
    ]);
    tokio::join!(feeds.for_each(|_| async {}), controllers);
    Ok(())
}

/// The metadata of a status write: name and namespace, no resourceVersion (an unconditional
/// write of the status subresource, which kube-apiserver allows for these resources; the
/// status is computed from the cache, and a stale one is corrected by the next sync).
fn status_meta(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        ..ObjectMeta::default()
    }
}

/// The error policy of every controller: try again after [`RETRY`].
fn retry<K>(_: Arc<K>, error: &SyncError, _: Arc<Shared>) -> kube::runtime::controller::Action {
    tracing::debug!(%error, "sync failed; retrying");
    kube::runtime::controller::Action::requeue(RETRY)
}

/// Drains a kube-runtime controller's results, logging failures.
async fn drain<S, T, E>(results: S)
where
    S: futures_util::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    results
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(%e, "reconcile");
            }
        })
        .await;
}
