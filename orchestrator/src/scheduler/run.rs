//! The scheduler's loop around its pure core: it watches nodes and pods, keeps each node's
//! pods (bound, and assumed while their bind is in flight) in a [`NodeInfo`], pops pods from
//! the [`SchedulingQueue`], places them with [`schedule`] and binds them through
//! `pods/<name>/binding`, as kube-scheduler's scheduleOne does.
//!
//! One task owns the cache and the queue; binds and status writes run beside it and report
//! back. A pod is assumed onto its node before its bind is sent, so that the next pods see the
//! node's resources as taken (the scheduler never overcommits a node while binds are in
//! flight); a failed bind forgets it and sends the pod back to the queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::events::EventSink;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use rand::SeedableRng;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use super::node_info::NodeInfo;
use super::queue::SchedulingQueue;
use super::{schedule, FitError};

/// kube-scheduler's name: pods with no `schedulerName` or this one are ours.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Binds (and status writes) in flight at once.
const IN_FLIGHT: usize = 64;

/// Pods placed before the loop looks at its watches again.
const BATCH: usize = 128;

/// What a bind task reports back.
#[derive(Debug)]
struct Bound {
    key: String,
    uid: String,
    node: String,
    result: Result<(), String>,
}

/// The scheduler's state: nodes with their pods, the pods waiting, the queue.
struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Every pod on a node, bound or assumed: uid -> (node, pod).
    placed: HashMap<String, (String, Arc<Pod>)>,
    /// Placed by us, bind not yet seen on the watch.
    assumed: HashSet<String>,
    /// Unbound pods of ours, by "namespace/name".
    waiting: HashMap<String, Arc<Pod>>,
    queue: SchedulingQueue<String>,
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn is_ours(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|n| n == SCHEDULER_NAME)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Cache {
    fn new() -> Self {
        Self {
            nodes: Vec::new(),
            index: HashMap::new(),
            placed: HashMap::new(),
            assumed: HashSet::new(),
            waiting: HashMap::new(),
            queue: SchedulingQueue::default(),
        }
    }

    fn node_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let i = *self.index.get(name)?;
        self.nodes.get_mut(i)
    }

    fn set_node(&mut self, node: Node, now: Timestamp) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut info = NodeInfo::new(node);
        for (on, pod) in self.placed.values() {
            if *on == name {
                info.add_pod(pod.clone());
            }
        }
        match self.index.get(&name) {
            Some(&i) => self.nodes[i] = info,
            None => {
                self.index.insert(name, self.nodes.len());
                self.nodes.push(info);
            }
        }
        // A new or changed node may fit pods that fitted nowhere.
        self.queue.move_all_to_active_or_backoff(now);
    }

    fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            let moved = moved.node().metadata.name.clone().unwrap_or_default();
            self.index.insert(moved, i);
        }
    }

    fn place(&mut self, node: &str, pod: Arc<Pod>) {
        let uid = uid_of(&pod);
        self.unplace(&uid);
        if let Some(info) = self.node_mut(node) {
            info.add_pod(pod.clone());
        }
        self.placed.insert(uid, (node.to_string(), pod));
    }

    fn unplace(&mut self, uid: &str) {
        if let Some((node, _)) = self.placed.remove(uid) {
            if let Some(info) = self.node_mut(&node) {
                info.remove_pod(uid);
            }
        }
    }

    fn apply_pod(&mut self, pod: Pod, now: Timestamp) {
        let key = key_of(&pod);
        let uid = uid_of(&pod);
        if is_terminal(&pod) {
            self.forget_pod(&key, &uid, now);
            return;
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        match node {
            Some(node) => {
                self.waiting.remove(&key);
                self.queue.delete(&key);
                self.assumed.remove(&uid);
                self.place(&node, Arc::new(pod));
            }
            None if self.assumed.contains(&uid) => {
                // Our bind has not reached the watch yet: the pod stays assumed.
            }
            None if is_ours(&pod) && pod.metadata.deletion_timestamp.is_none() => {
                let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
                let known = self.waiting.insert(key.clone(), Arc::new(pod)).is_some();
                if known {
                    self.queue.update(key, priority, now);
                } else {
                    self.queue.add(key, priority, now);
                }
            }
            None => {}
        }
    }

    fn forget_pod(&mut self, key: &str, uid: &str, now: Timestamp) {
        self.waiting.remove(key);
        self.queue.delete(&key.to_string());
        self.assumed.remove(uid);
        if self.placed.contains_key(uid) {
            self.unplace(uid);
            // Freed resources may fit pods that fitted nowhere.
            self.queue.move_all_to_active_or_backoff(now);
        }
    }
}

/// Runs the scheduler until its watches end (they retry by themselves, so: until aborted).
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: SCHEDULER_NAME.into(),
            instance: None,
        },
    );
    Loop {
        client,
        events: EventSink::new(recorder),
        cache: Cache::new(),
        limit: Arc::new(Semaphore::new(IN_FLIGHT)),
        rng: rand::rngs::StdRng::from_entropy(),
    }
    .run(nodes, pods)
    .await
}

type Watch<K> = futures_util::stream::BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

struct Loop {
    client: kube::Client,
    events: EventSink,
    cache: Cache,
    limit: Arc<Semaphore>,
    rng: rand::rngs::StdRng,
}

/// Where a watch is in its (re)list.
#[derive(Default)]
struct Listing<K> {
    synced: bool,
    /// Objects of a relist in progress, applied at its end.
    buffer: Option<Vec<K>>,
}

impl Loop {
    async fn run(mut self, mut nodes: Watch<Node>, mut pods: Watch<Pod>) -> anyhow::Result<()> {
        let (bound_tx, mut bound_rx) = mpsc::unbounded_channel::<Bound>();
        let mut node_list = Listing::<Node>::default();
        let mut pod_list = Listing::<Pod>::default();
        loop {
            let now = Timestamp::now();
            // Everything that has arrived, then a batch of placements.
            let mut took = 0;
            while took < 4096 {
                let mut any = false;
                if let Some(Some(ev)) = nodes.next().now_or_never() {
                    self.on_node(ev, &mut node_list, now);
                    any = true;
                }
                if let Some(Some(ev)) = pods.next().now_or_never() {
                    self.on_pod(ev, &mut pod_list, now);
                    any = true;
                }
                if let Ok(bound) = bound_rx.try_recv() {
                    self.on_bound(bound, now);
                    any = true;
                }
                if !any {
                    break;
                }
                took += 1;
            }
            if node_list.synced && pod_list.synced {
                let mut placed = 0;
                while placed < BATCH {
                    let Some(key) = self.cache.queue.pop(now) else {
                        break;
                    };
                    self.schedule_one(&key, &bound_tx, now).await;
                    placed += 1;
                }
                if placed == BATCH {
                    continue;
                }
            }
            let wake = self
                .cache
                .queue
                .next_wake(now)
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                ev = nodes.next() => match ev {
                    Some(ev) => self.on_node(ev, &mut node_list, Timestamp::now()),
                    None => anyhow::bail!("the node watch ended"),
                },
                ev = pods.next() => match ev {
                    Some(ev) => self.on_pod(ev, &mut pod_list, Timestamp::now()),
                    None => anyhow::bail!("the pod watch ended"),
                },
                Some(bound) = bound_rx.recv() => self.on_bound(bound, Timestamp::now()),
                () = tokio::time::sleep(wake) => {}
            }
        }
    }

    fn on_node(
        &mut self,
        ev: Result<watcher::Event<Node>, watcher::Error>,
        list: &mut Listing<Node>,
        now: Timestamp,
    ) {
        match ev {
            Ok(watcher::Event::Apply(node)) => self.cache.set_node(node, now),
            Ok(watcher::Event::Delete(node)) => self
                .cache
                .remove_node(node.metadata.name.as_deref().unwrap_or("")),
            Ok(watcher::Event::Init) => list.buffer = Some(Vec::new()),
            Ok(watcher::Event::InitApply(node)) => list.buffer.get_or_insert_default().push(node),
            Ok(watcher::Event::InitDone) => {
                let listed = list.buffer.take().unwrap_or_default();
                let names: HashSet<String> = listed
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                let gone: Vec<String> = self
                    .cache
                    .index
                    .keys()
                    .filter(|n| !names.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    self.cache.remove_node(&name);
                }
                for node in listed {
                    self.cache.set_node(node, now);
                }
                list.synced = true;
            }
            Err(e) => tracing::debug!(%e, "node watch"),
        }
    }

    fn on_pod(
        &mut self,
        ev: Result<watcher::Event<Pod>, watcher::Error>,
        list: &mut Listing<Pod>,
        now: Timestamp,
    ) {
        match ev {
            Ok(watcher::Event::Apply(pod)) => self.cache.apply_pod(pod, now),
            Ok(watcher::Event::Delete(pod)) => {
                self.cache.forget_pod(&key_of(&pod), &uid_of(&pod), now)
            }
            Ok(watcher::Event::Init) => list.buffer = Some(Vec::new()),
            Ok(watcher::Event::InitApply(pod)) => list.buffer.get_or_insert_default().push(pod),
            Ok(watcher::Event::InitDone) => {
                let listed = list.buffer.take().unwrap_or_default();
                let uids: HashSet<String> = listed.iter().map(uid_of).collect();
                let keys: HashSet<String> = listed.iter().map(key_of).collect();
                let gone: Vec<String> = self
                    .cache
                    .placed
                    .keys()
                    .filter(|u| !uids.contains(*u) && !self.cache.assumed.contains(*u))
                    .cloned()
                    .collect();
                for uid in gone {
                    self.cache.unplace(&uid);
                }
                let stale: Vec<String> = self
                    .cache
                    .waiting
                    .keys()
                    .filter(|k| !keys.contains(*k))
                    .cloned()
                    .collect();
                for key in stale {
                    self.cache.forget_pod(&key, "", now);
                }
                for pod in listed {
                    self.cache.apply_pod(pod, now);
                }
                list.synced = true;
            }
            Err(e) => tracing::debug!(%e, "pod watch"),
        }
    }

    fn on_bound(&mut self, bound: Bound, now: Timestamp) {
        let Err(e) = bound.result else {
            self.cache.queue.delete(&bound.key);
            return;
        };
        // The bind failed: the pod is no longer assumed, and goes back to the queue if it is
        // still waiting.
        tracing::debug!(pod = bound.key, node = bound.node, %e, "bind failed");
        if self.cache.assumed.remove(&bound.uid) {
            self.cache.unplace(&bound.uid);
        }
        let attempts = self.cache.queue.attempts(&bound.key);
        if !self
            .cache
            .queue
            .add_backoff(bound.key.clone(), attempts, now)
        {
            self.cache.queue.delete(&bound.key);
        }
    }

    async fn schedule_one(
        &mut self,
        key: &str,
        bound_tx: &mpsc::UnboundedSender<Bound>,
        now: Timestamp,
    ) {
        let Some(pod) = self.cache.waiting.get(key).cloned() else {
            self.cache.queue.delete(&key.to_string());
            return;
        };
        let attempts = self.cache.queue.attempts(&key.to_string());
        match schedule(&pod, &self.cache.nodes, &mut self.rng) {
            Ok(node) => {
                let uid = uid_of(&pod);
                self.cache.assumed.insert(uid.clone());
                self.cache.place(&node, pod.clone());
                let permit = self.limit.clone().acquire_owned().await;
                let client = self.client.clone();
                let events = self.events.clone();
                let tx = bound_tx.clone();
                let key = key.to_string();
                tokio::spawn(async move {
                    let result = bind(&client, &events, &pod, &node).await;
                    let _ = tx.send(Bound {
                        key,
                        uid,
                        node,
                        result,
                    });
                    drop(permit);
                });
            }
            Err(fit) => {
                self.cache
                    .queue
                    .add_unschedulable(key.to_string(), attempts, now);
                let permit = self.limit.clone().acquire_owned().await;
                let client = self.client.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    unschedulable(&client, &events, &pod, &fit).await;
                    drop(permit);
                });
            }
        }
    }
}

fn reference(pod: &Pod) -> ObjectReference {
    pod.object_ref(&())
}

/// `POST pods/<name>/binding`, then the Scheduled event kube-scheduler records.
async fn bind(
    client: &kube::Client,
    events: &EventSink,
    pod: &Pod,
    node: &str,
) -> Result<(), String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": { "name": name, "namespace": ns, "uid": pod.metadata.uid },
        "target": { "apiVersion": "v1", "kind": "Node", "name": node },
    });
    let body = serde_json::to_vec(&binding).map_err(|e| e.to_string())?;
    let request = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|e| e.to_string())?;
    let event = Event {
        type_: EventType::Normal,
        reason: "Scheduled".into(),
        note: Some(format!("Successfully assigned {ns}/{name} to {node}")),
        action: "Binding".into(),
        secondary: None,
    };
    events.record(event, reference(pod));
    Ok(())
}

/// The pod's PodScheduled=False condition and the FailedScheduling event, with
/// kube-scheduler's message ("0/3 nodes are available: 3 Insufficient cpu.").
async fn unschedulable(client: &kube::Client, events: &EventSink, pod: &Pod, fit: &FitError) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let message = fit.to_string();
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.message.as_deref() == Some(message.as_str())
            })
        });
    if !already {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let status = json!({ "status": { "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": Timestamp::now().to_string(),
        }]}});
        if let Err(e) = pods
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&status))
            .await
        {
            tracing::debug!(%e, pod = name, "PodScheduled condition not written");
        }
    }
    let event = Event {
        type_: EventType::Warning,
        reason: "FailedScheduling".into(),
        note: Some(message),
        action: "Scheduling".into(),
        secondary: None,
    };
    events.record(event, reference(pod));
}
