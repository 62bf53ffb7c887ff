//! Pure decision core of kube-controller-manager's DaemonSet controller
//! (Kubernetes 1.32, pkg/controller/daemon).
//!
//! [`reconcile`] plans what one `syncDaemonSet` does (daemon_controller.go:
//! `getDaemonPods`, `getNodesToDaemonPods`, `manage`, `podsShouldBeOnNode`,
//! `NodeShouldRunDaemonPod`, `syncNodes`, `updateDaemonSetStatus`,
//! `storeDaemonSetStatus`; update.go: `rollingUpdate`,
//! `findUpdatedPodsOnNode`, `updatedDesiredNodeCounts`; daemon/util:
//! `CreatePodTemplate`, `IsPodUpdated`, `SurgeCount`, `UnavailableCount`,
//! `AllowsSurge`), without I/O or clock reads.
//!
//! Integration, in upstream's order: if the controller's expectations
//! (`expectations.rs`, key `namespace/name`) are not satisfied, write only
//! [`status`]`(.., false, now)`. Otherwise call [`reconcile`]; patch
//! `adopt`/`release` (NotFound ignored, other errors end the sync); set
//! expectations to (`create.len()`, `delete.len()`); create [`new_pod`] for
//! each node of `create` in [`slow_start_batches`], stopping after a batch
//! with a failure and lowering expectations for the pods never attempted
//! (and observing one creation per failed create); delete every pod of
//! `delete` (observing one deletion per failed delete; NotFound is no
//! error); then write `status` if any; record `events`; requeue after
//! `requeue_after`. Daemon pods are placed through the default scheduler:
//! [`new_pod`] pins them with node affinity, it does not set `nodeName`.
//!
//! Deliberately left out: ControllerRevision history (`constructHistory`,
//! `cleanupHistory`, `dedupCurHistories`; the hash is computed from the
//! template, see [`compute_hash`]) and the failed-pod deletion backoff
//! (`failedPodsBackoff`): failed pods are deleted on every sync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::nodeaffinity::{
    add_daemon_tolerations, pin_to_node, required_affinity_matches, target_node_name,
    untolerated_taint, NO_EXECUTE, NO_SCHEDULE,
};
use super::pods::{controller_ref, is_available, is_ready, phase, pod_from_template};
use super::selector::parse;
use super::statefulset::{Event, EVENT_WARNING};

/// `BurstReplicas` of the DaemonSet controller: at most this many creates
/// and deletes per sync.
pub const BURST_REPLICAS: usize = 250;
/// apiVersion written into controller references.
pub const API_VERSION: &str = "apps/v1";
/// Kind written into controller references.
pub const KIND: &str = "DaemonSet";
/// `apps.DefaultDaemonSetUniqueLabelKey`.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// `extensions.DaemonSetTemplateGenerationKey`.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// `apps.DeprecatedTemplateGeneration`, set by the API server.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

#[path = "daemonset_manage.rs"]
mod manage;
#[path = "daemonset_update.rs"]
mod update;

/// What one sync of a DaemonSet should do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Orphan pods to adopt (strategic-merge patch [`adopt_patch`]).
    pub adopt: Vec<String>,
    /// Owned pods that stopped matching, to release ([`release_patch`]).
    pub release: Vec<String>,
    /// Nodes that get a new daemon pod ([`new_pod`]), at most
    /// [`BURST_REPLICAS`].
    pub create: Vec<String>,
    /// Pods to delete, by name, at most [`BURST_REPLICAS`].
    pub delete: Vec<String>,
    /// New status, when it differs from the current one.
    pub status: Option<DaemonSetStatus>,
    /// Events to record (failed/succeeded daemon pods, selector problems).
    pub events: Vec<Event>,
    /// The `controller-revision-hash` of the current template.
    pub hash: String,
    /// Sync again after this long (minReadySeconds and ready pods not yet
    /// available).
    pub requeue_after: Option<Duration>,
    /// The sync error, if any (e.g. an invalid selector or maxSurge).
    pub error: Option<String>,
}

/// `NodeShouldRunDaemonPod`: `(shouldRun, shouldContinueRunning)`. The
/// daemon pod (template + automatic tolerations) must fit the node's name,
/// its nodeSelector / required node affinity and tolerate its NoSchedule
/// and NoExecute taints to run; a pod already there may continue while it
/// tolerates the NoExecute taints.
pub fn node_should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !required_affinity_matches(&spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let blocking = untolerated_taint(taints, tolerations, |t| {
        t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE
    });
    if blocking.is_some() {
        let evicting = untolerated_taint(taints, tolerations, |t| t.effect == NO_EXECUTE);
        return (false, evicting.is_none());
    }
    (true, true)
}

/// `controller.ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)` (the
/// `controller-revision-hash` of daemon pods).
pub use super::hash::{compute_hash, fnv32a};

/// The template generation (`GetTemplateGeneration`): the
/// `deprecated.daemonset.template.generation` annotation when it parses,
/// else `metadata.generation` (a fallback for API servers that do not set
/// the annotation; pods are also recognised by hash, so it is harmless).
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    match ds
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
    {
        Some(v) => v.parse().ok(),
        None => ds.metadata.generation,
    }
}

/// `IsPodUpdated`: the pod carries the current hash or template generation.
pub fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let template_matches = generation
        .is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(g.to_string().as_str()));
    let hash_matches = !hash.is_empty() && label(REVISION_LABEL) == Some(hash);
    hash_matches || template_matches
}

/// The daemon pod to POST for `node` (`CreatePodTemplate` +
/// `ReplaceDaemonSetPodNodeNameNodeAffinity` + `GetPodFromTemplate`):
/// generateName `<ds>-`, the template's labels plus `pod-template-generation`
/// and `controller-revision-hash = hash`, the automatic tolerations, required
/// node affinity `metadata.name In [node]`, a controller reference to the
/// DaemonSet. `None` without a spec.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Option<Pod> {
    let mut template = ds.spec.as_ref()?.template.clone();
    let spec = template.spec.get_or_insert_with(Default::default);
    add_daemon_tolerations(spec);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_LABEL.into(), hash.into());
    }
    Some(pod_from_template(
        &template,
        &ds.metadata,
        API_VERSION,
        KIND,
    ))
}

/// The adoption patch (`ownerRefControllerPatch`), pod uid as precondition.
pub fn adopt_patch(ds: &DaemonSet, pod: &Pod) -> serde_json::Value {
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or("");
    super::pods::adopt_patch(&ds.metadata, API_VERSION, KIND, pod_uid)
}

/// The release patch (`GenerateDeleteOwnerRefStrategicMergeBytes`).
pub fn release_patch(ds: &DaemonSet, pod: &Pod) -> serde_json::Value {
    let uid = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.uid.clone().unwrap_or_default()
    };
    super::pods::release_patch(&uid(&ds.metadata), &uid(&pod.metadata))
}

/// `slowStartBatch` sizes for creates: 1, 2, 4, ... summing to `n` (the ReplicaSet's).
pub use super::replicaset::slow_start_batches;

/// Claimed pods grouped by target node (`getNodesToDaemonPods`).
pub(crate) type NodePods = BTreeMap<String, Vec<Arc<Pod>>>;

/// The outcome of [`claim`].
#[derive(Debug, Default)]
struct Claimed {
    by_node: NodePods,
    adopt: Vec<String>,
    release: Vec<String>,
}

/// `getDaemonPods` (`ClaimPods`) + `getNodesToDaemonPods`: the owned pods by
/// target node (terminal pods already being deleted left out), plus the
/// orphans to adopt and the owned non-matching pods to release. `Err` for
/// an invalid selector.
fn claim(ds: &DaemonSet, pods: &[Arc<Pod>]) -> Result<Claimed, String> {
    let spec = ds.spec.as_ref().ok_or("DaemonSet has no spec")?;
    let selector = parse(&spec.selector).map_err(|e| e.to_string())?;
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    let uid = ds.metadata.uid.as_deref().unwrap_or("");
    let deleting = ds.metadata.deletion_timestamp.is_some();
    let mut c = Claimed::default();
    for pod in pods {
        if pod.metadata.namespace.as_deref().unwrap_or("") != ns {
            continue;
        }
        let matched = selector.matches(&pod.metadata.labels.clone().unwrap_or_default());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let owned = match controller_ref(&pod.metadata) {
            Some(r) if r.uid != uid => false,
            Some(_) if matched => true,
            Some(_) => {
                if !deleting {
                    c.release.push(name);
                }
                false
            }
            None if matched && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                c.adopt.push(name);
                true
            }
            None => false,
        };
        let terminal = matches!(phase(pod), "Failed" | "Succeeded");
        if !owned || (terminal && pod.metadata.deletion_timestamp.is_some()) {
            continue;
        }
        if let Some(node) = target_node_name(pod) {
            c.by_node.entry(node).or_default().push(Arc::clone(pod));
        }
    }
    Ok(c)
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `GetScaledValueFromIntOrPercent(.., roundUp = true)`.
pub(crate) fn scaled(v: &IntOrString, total: usize) -> Result<usize, String> {
    match v {
        IntOrString::Int(i) => Ok(usize::try_from(*i).unwrap_or(0)),
        IntOrString::String(s) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<usize>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"))?;
            Ok((pct.saturating_mul(total)).div_ceil(100))
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `desired` nodes, with the API server's
/// defaults (RollingUpdate, maxUnavailable 1, maxSurge 0); `None` for OnDelete.
pub(crate) fn budgets(ds: &DaemonSet, desired: usize) -> Option<Result<(usize, usize), String>> {
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.as_ref())
        .map(|v| scaled(v, desired))
        .unwrap_or(Ok(0));
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .map(|v| scaled(v, desired))
        .unwrap_or(Ok(1));
    Some(surge.and_then(|s| unavailable.map(|u| (s, u))))
}

/// One sync of `ds` over every node and every pod of its namespace.
/// Claims pods, plans creations and deletions per node (`manage`), then,
/// when `manage` has nothing to do (upstream's expectations would not be
/// satisfied otherwise), the RollingUpdate step; then the status, assuming
/// the writes succeed as far as the cache shows (as upstream, which counts
/// from its cache right after issuing them).
pub fn reconcile(ds: &DaemonSet, nodes: &[Arc<Node>], pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let Some(spec) = ds.spec.as_ref() else {
        plan.error = Some("DaemonSet has no spec".into());
        return plan;
    };
    let sel = &spec.selector;
    if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    {
        plan.events.push(Event {
            type_: EVENT_WARNING,
            reason: "SelectingAll".into(),
            message: "This daemon set is selecting all pods. A non-empty selector is required."
                .into(),
        });
        return plan;
    }
    if ds.metadata.deletion_timestamp.is_some() {
        return plan;
    }
    plan.hash = compute_hash(
        &spec.template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    let Claimed {
        by_node,
        adopt,
        release,
    } = match claim(ds, pods) {
        Ok(c) => c,
        Err(e) => {
            plan.error = Some(e);
            return plan;
        }
    };
    plan.adopt = adopt;
    plan.release = release;
    let hash = plan.hash.clone();
    let allows_surge = matches!(budgets(ds, 1), Some(Ok((s, _))) if s > 0);

    // manage
    let mut create = Vec::new();
    let mut delete = Vec::new();
    for node in nodes {
        let (c, d) = manage::pods_should_be_on_node(
            ds,
            node,
            &by_node,
            &hash,
            allows_surge,
            now,
            &mut plan.events,
        );
        if c {
            create.push(node.metadata.name.clone().unwrap_or_default());
        }
        delete.extend(d);
    }
    let known: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    for (node, pods) in &by_node {
        if known.contains(node.as_str()) {
            continue;
        }
        let unscheduled = |p: &&Arc<Pod>| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("")
                .is_empty()
        };
        delete.extend(pods.iter().filter(unscheduled).map(|p| name(p)));
    }

    if create.is_empty() && delete.is_empty() {
        match update::rolling_update(ds, nodes, &by_node, &hash, now) {
            Some(Ok((c, d))) => {
                create = c;
                delete = d;
            }
            Some(Err(e)) => plan.error = Some(e),
            None => {}
        }
    }
    create.truncate(BURST_REPLICAS);
    delete.truncate(BURST_REPLICAS);
    plan.create = create;
    plan.delete = delete;
    let (status, requeue) = compute_status(ds, nodes, &by_node, &hash, true, now);
    plan.status = status;
    plan.requeue_after = requeue;
    plan
}

/// `updateDaemonSetStatus` alone, for syncs whose expectations are not
/// satisfied (`update_observed_generation` false) — `None` when unchanged.
pub fn status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    update_observed_generation: bool,
    now: Timestamp,
) -> Option<DaemonSetStatus> {
    let spec = ds.spec.as_ref()?;
    let hash = compute_hash(
        &spec.template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    let claimed = claim(ds, pods).ok()?;
    compute_status(
        ds,
        nodes,
        &claimed.by_node,
        &hash,
        update_observed_generation,
        now,
    )
    .0
}

/// Counts per node (the oldest pod of a node stands for it) and the
/// `storeDaemonSetStatus` skip test; plus the minReadySeconds requeue.
fn compute_status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    by_node: &NodePods,
    hash: &str,
    update_observed_generation: bool,
    now: Timestamp,
) -> (Option<DaemonSetStatus>, Option<Duration>) {
    let (mut desired, mut current, mut mis, mut ready, mut updated, mut available) =
        (0, 0, 0, 0, 0, 0);
    let mrs = min_ready_seconds(ds);
    let generation = template_generation(ds);
    for node in nodes {
        let (should_run, _) = node_should_run(ds, node);
        let pods = by_node.get(node.metadata.name.as_deref().unwrap_or(""));
        let scheduled = pods.is_some_and(|p| !p.is_empty());
        if !should_run {
            if scheduled {
                mis += 1;
            }
            continue;
        }
        desired += 1;
        let Some(pods) = pods.filter(|p| !p.is_empty()) else {
            continue;
        };
        current += 1;
        let mut sorted = pods.clone();
        manage::sort_pods(&mut sorted);
        let Some(pod) = sorted.first() else {
            continue;
        };
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, mrs, now) {
                available += 1;
            }
        }
        if is_pod_updated(pod, hash, generation) {
            updated += 1;
        }
    }
    let requeue = (mrs > 0 && ready != available)
        .then(|| Duration::from_secs(u64::try_from(mrs).unwrap_or(0)));
    let old = ds.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let gen = ds.metadata.generation.unwrap_or(0);
    let unavailable = desired - available;
    if old.desired_number_scheduled == desired
        && old.current_number_scheduled == current
        && old.number_misscheduled == mis
        && old.number_ready == ready
        && n(old.updated_number_scheduled) == updated
        && n(old.number_available) == available
        && n(old.number_unavailable) == unavailable
        && old.observed_generation.unwrap_or(0) >= gen
    {
        return (None, requeue);
    }
    let mut new = old;
    if update_observed_generation {
        new.observed_generation = Some(gen);
    }
    new.desired_number_scheduled = desired;
    new.current_number_scheduled = current;
    new.number_misscheduled = mis;
    new.number_ready = ready;
    new.updated_number_scheduled = Some(updated);
    new.number_available = Some(available);
    new.number_unavailable = Some(unavailable);
    (Some(new), requeue)
}

#[cfg(test)]
#[path = "daemonset_test.rs"]
mod tests;
