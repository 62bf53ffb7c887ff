//! The node lifecycle controller's I/O: every few seconds each node's health is judged from its
//! Lease and status ([`crate::controllers::nodelifecycle::node_status`]): a node silent for the
//! grace period goes Ready=Unknown and gets the unreachable taints, its pods are marked not
//! ready, and pods that do not tolerate its NoExecute taints (or whose tolerationSeconds ran
//! out) are evicted, as kube's taint-eviction controller does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use super::{status_meta, Shared};
use crate::controllers::nodelifecycle::{
    evictions, mark_pod_not_ready, node_status, ObservedHealth,
};

/// kube-controller-manager's `--node-monitor-period` (kube's default is 5 s; 1 s here, so that
/// short grace periods in tests are judged promptly).
const MONITOR_PERIOD: Duration = Duration::from_secs(1);

/// Runs until aborted; `grace` is `--node-monitor-grace-period`.
pub async fn run(shared: Arc<Shared>, grace: Duration) {
    let mut observed: HashMap<String, ObservedHealth> = HashMap::new();
    loop {
        tokio::time::sleep(MONITOR_PERIOD).await;
        let now = Timestamp::now();
        let nodes = shared.nodes.state();
        observed.retain(|name, _| nodes.iter().any(|n| n.metadata.name.as_ref() == Some(name)));
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let lease = shared
                .leases
                .get(&ObjectRef::new(&name).within("kube-node-lease"));
            let health = observed.entry(name.clone()).or_default();
            let decision = node_status(&node, lease.as_deref(), health, grace, now);
            if let Err(e) = apply(&shared, &node, &name, &decision, now).await {
                tracing::debug!(%e, node = name, "node lifecycle: retrying later");
            }
        }
    }
}

async fn apply(
    shared: &Shared,
    node: &Node,
    name: &str,
    decision: &crate::controllers::nodelifecycle::NodeDecision,
    now: Timestamp,
) -> kube::Result<()> {
    let nodes: Api<Node> = Api::all(shared.client.clone());
    if let Some(status) = &decision.status {
        let object = Node {
            metadata: status_meta(&node.metadata),
            spec: None,
            status: Some(status.clone()),
        };
        nodes
            .replace_status(name, &PostParams::default(), &object)
            .await?;
    }
    if decision.taints_changed {
        let patch = json!({ "spec": { "taints": decision.taints } });
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let on_node: Vec<Arc<Pod>> = shared
        .pods
        .state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name));
    if decision.mark_pods_not_ready {
        for pod in &on_node {
            let Some(status) = mark_pod_not_ready(pod, now) else {
                continue;
            };
            let ns = pod.metadata.namespace.as_deref().unwrap_or("");
            let object = Pod {
                metadata: status_meta(&pod.metadata),
                spec: None,
                status: Some(status),
            };
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(shared.client.clone(), ns);
            let _ = pods
                .replace_status(&pod_name, &PostParams::default(), &object)
                .await;
        }
    }
    // The taints as they will be once written (the eviction reads them, with their timeAdded).
    let taints = if decision.taints_changed {
        decision.taints.clone()
    } else {
        node.spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
    };
    for (key, after) in evictions(&taints, &on_node, now) {
        if !after.is_zero() {
            continue;
        }
        let Some(pod) = on_node.iter().find(|p| {
            let ns = p.metadata.namespace.as_deref().unwrap_or("");
            format!("{ns}/{}", p.metadata.name.as_deref().unwrap_or("")) == key
        }) else {
            continue;
        };
        evict(shared, pod, &key).await;
    }
    Ok(())
}

/// Deletes a pod for its node's NoExecute taint, with the event kube records.
async fn evict(shared: &Shared, pod: &Pod, key: &str) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), ns);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(name, &params).await {
        Ok(_) => {
            shared
                .event(
                    pod,
                    false,
                    "TaintManagerEviction",
                    "Evict",
                    format!("Marking for deletion Pod {key}"),
                )
                .await;
        }
        Err(e) => tracing::debug!(%e, pod = key, "eviction failed; retrying"),
    }
}
