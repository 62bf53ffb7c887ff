//! The manage step of a DaemonSet sync, node by node.
//!
//! Copies `podsShouldBeOnNode` and `podByCreationTimestampAndPhase` of
//! pkg/controller/daemon/daemon_controller.go (Kubernetes 1.32).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;

use super::{min_ready_seconds, name, node_should_run, NodePods, REVISION_LABEL};
use crate::controllers::pods::{is_available, is_ready, phase};
use crate::controllers::statefulset::{Event, EVENT_NORMAL, EVENT_WARNING};

/// `podByCreationTimestampAndPhase`: scheduled pods first, then oldest, then
/// by name.
pub(super) fn sort_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let unscheduled = |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("")
                .is_empty()
        };
        let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        unscheduled(a)
            .cmp(&unscheduled(b))
            .then_with(|| created(a).cmp(&created(b)))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// `podsShouldBeOnNode`: (create here?, pods to delete here). Failed and
/// succeeded pods are deleted (with an event); without surge, all running
/// pods but the oldest are deleted; with surge, at most one old and one new
/// pod stay.
pub(super) fn pods_should_be_on_node(
    ds: &DaemonSet,
    node: &Node,
    by_node: &NodePods,
    hash: &str,
    allows_surge: bool,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> (bool, Vec<String>) {
    let (should_run, should_continue) = node_should_run(ds, node);
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let pods = by_node.get(&node_name);
    let mut delete = Vec::new();
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    match pods {
        None if should_run => return (true, delete),
        Some(pods) if should_continue => {
            let mut running: Vec<Arc<Pod>> = Vec::new();
            for pod in pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                match phase(pod) {
                    "Failed" => {
                        events.push(Event {
                            type_: EVENT_WARNING,
                            reason: "FailedDaemonPod".into(),
                            message: format!(
                                "Found failed daemon pod {ns}/{} on node {node_name}, will try to kill it",
                                name(pod)
                            ),
                        });
                        delete.push(name(pod));
                    }
                    "Succeeded" => {
                        events.push(Event {
                            type_: EVENT_NORMAL,
                            reason: "SucceededDaemonPod".into(),
                            message: format!(
                                "Found succeeded daemon pod {ns}/{} on node {node_name}, will try to delete it",
                                name(pod)
                            ),
                        });
                        delete.push(name(pod));
                    }
                    _ => running.push(Arc::clone(pod)),
                }
            }
            sort_pods(&mut running);
            if !allows_surge {
                delete.extend(running.iter().skip(1).map(|p| name(p)));
                return (false, delete);
            }
            if running.len() <= 1 {
                return (running.is_empty() && should_run, delete);
            }
            let (mut oldest_new, mut oldest_old): (Option<&Arc<Pod>>, Option<&Arc<Pod>>) =
                (None, None);
            for pod in &running {
                let is_new = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL))
                    .map(String::as_str)
                    == Some(hash);
                let slot = if is_new {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    delete.push(name(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                let mrs = min_ready_seconds(ds);
                if !is_ready(old) || is_available(new, mrs, now) {
                    delete.push(name(old));
                }
            }
        }
        Some(pods) if !should_continue => {
            delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| name(p)),
            );
        }
        _ => {}
    }
    (false, delete)
}
