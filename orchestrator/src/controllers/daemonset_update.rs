//! The RollingUpdate step of a DaemonSet sync.
//!
//! Copies pkg/controller/daemon/update.go of Kubernetes 1.32
//! (`rollingUpdate`, `findUpdatedPodsOnNode`, `updatedDesiredNodeCounts`).
//! Upstream walks a Go map (random order); here nodes are visited in the
//! order of the node list, then the remaining node names in sorted order.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;

use super::{
    budgets, is_pod_updated, min_ready_seconds, name, node_should_run, template_generation,
    NodePods,
};
use crate::controllers::pods::is_available;

/// The (new, old) pod of a node.
type NewOld<'a> = (Option<&'a Arc<Pod>>, Option<&'a Arc<Pod>>);

/// Nodes to create a pod on, pods to delete.
pub(super) type Writes = (Vec<String>, Vec<String>);

/// `findUpdatedPodsOnNode`: the node's non-deleted (new, old) pod, or `None`
/// when it has more than one of either (the manage step prunes first).
fn updated_pods_on_node<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<NewOld<'a>> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_pod_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

/// `rollingUpdate`: `(nodes to create on, pods to delete)` within the
/// maxUnavailable / maxSurge budget; `None` for OnDelete, `Err` for an
/// invalid budget.
///
/// Without surge, old pods are deleted (the manage step recreates them)
/// while the unavailable count stays within maxUnavailable; unavailable old
/// pods are always replaced. With surge, new pods are created next to old
/// ones (up to maxSurge, unavailable old pods always), and an old pod is
/// deleted once the new one on its node is available.
pub(super) fn rolling_update(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    by_node: &NodePods,
    hash: &str,
    now: Timestamp,
) -> Option<Result<Writes, String>> {
    // updatedDesiredNodeCounts: every node that should run a pod is visited,
    // with or without pods.
    let mut order: Vec<(String, Option<&Arc<Node>>)> = Vec::new();
    let mut desired = 0usize;
    for node in nodes {
        let n = node.metadata.name.clone().unwrap_or_default();
        let (want, _) = node_should_run(ds, node);
        if want {
            desired += 1;
        }
        if want || by_node.contains_key(&n) {
            order.push((n, Some(node)));
        }
    }
    for n in by_node.keys() {
        if !order.iter().any(|(o, _)| o == n) {
            order.push((n.clone(), None));
        }
    }
    let (max_surge, mut max_unavailable) = match budgets(ds, desired)? {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    if desired > 0 && max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let mrs = min_ready_seconds(ds);
    let generation = template_generation(ds);
    let available = |p: &Pod| is_available(p, mrs, now);
    let empty: Vec<Arc<Pod>> = Vec::new();

    if max_surge == 0 {
        let mut num_unavailable = 0usize;
        let mut replacements: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for (node, _) in &order {
            let pods = by_node.get(node).unwrap_or(&empty);
            let Some((new, old)) = updated_pods_on_node(pods, hash, generation) else {
                num_unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => num_unavailable += 1,
                (Some(new), None) => {
                    if !available(new) {
                        num_unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        replacements.push(name(old));
                        num_unavailable += 1;
                    } else if num_unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let remaining = max_unavailable
            .saturating_sub(num_unavailable)
            .min(candidates.len());
        replacements.extend(candidates.into_iter().take(remaining));
        return Some(Ok((Vec::new(), replacements)));
    }

    let mut delete: Vec<String> = Vec::new();
    let mut should_not_run: Vec<String> = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    let mut allowed: Vec<String> = Vec::new();
    let (mut num_surge, mut num_available) = (0usize, 0usize);
    for (node, node_obj) in &order {
        let pods = by_node.get(node).unwrap_or(&empty);
        let Some((new, old)) = updated_pods_on_node(pods, hash, generation) else {
            num_surge += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            if available(p) {
                num_available += 1;
            }
        }
        let should_run = node_obj.is_some_and(|n| node_should_run(ds, n).0);
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if should_run {
                        allowed.push(node.clone());
                    } else {
                        delete.push(name(old));
                    }
                } else if !should_run {
                    should_not_run.push(name(old));
                } else if num_surge < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    delete.push(name(old));
                } else {
                    num_surge += 1;
                }
            }
        }
    }
    // Old pods on nodes the DaemonSet left go only while enough others are
    // available.
    let deletable = num_available
        .saturating_sub(desired)
        .min(should_not_run.len());
    delete.extend(should_not_run.into_iter().take(deletable));
    let remaining = max_surge.saturating_sub(num_surge).min(candidates.len());
    allowed.extend(candidates.into_iter().take(remaining));
    Some(Ok((allowed, delete)))
}
