//! The per-node filter plugins that need no cluster-wide state, with kube-scheduler's
//! exact reason strings (Kubernetes 1.32, `pkg/scheduler/framework/plugins/*`).
//! InterPodAffinity and PodTopologySpread live in `interpod.rs` and `spread.rs`.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, Pod, Taint, Toleration};

use crate::scheduler::labels::{tolerations_tolerate, RequiredNodeAffinity};
use crate::scheduler::node_info::{HostPort, NodeInfo};
use crate::scheduler::resources::Resources;

/// `nodeunschedulable.ErrReasonUnschedulable`.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// `nodename.ErrReason`.
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// `nodeaffinity.ErrReasonPod`.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeAffinity PreFilter status when the matchFields metadata.name terms of all
/// required terms have an empty union (`errReasonConflict`).
pub const REASON_NODE_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";
/// Status of nodes left out by a PreFilter node-name restriction
/// (`schedule_one.go` findNodesThatFitPod, `SetAbsentNodesStatus`).
pub const REASON_PREFILTER_NODE_AFFINITY: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
/// `nodeports.ErrReason`.
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// `noderesources` "Too many pods".
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// Outcome of one filter plugin for one node: `Err` carries every reason it reports.
pub type FilterResult = Result<(), Vec<String>>;

fn fail(reason: &str) -> FilterResult {
    Err(vec![reason.to_string()])
}

/// TaintToleration's reason for the first untolerated NoSchedule/NoExecute taint
/// (`fmt.Sprintf("node(s) had untolerated taint {%s: %s}", key, value)`).
pub fn untolerated_taint_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

/// NodeUnschedulable (`nodeunschedulable.Filter`): a cordoned node (`spec.unschedulable`)
/// rejects the pod unless it tolerates `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn node_unschedulable(tolerations: &[Toleration], node: &NodeInfo) -> FilterResult {
    let cordoned = node
        .node()
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !cordoned {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".to_string(),
        effect: "NoSchedule".to_string(),
        ..Taint::default()
    };
    if tolerations_tolerate(tolerations, &taint) {
        Ok(())
    } else {
        fail(REASON_UNSCHEDULABLE)
    }
}

/// NodeName (`nodename.Fits`): a pod with `spec.nodeName` fits only that node.
pub fn node_name(pod: &Pod, node: &NodeInfo) -> FilterResult {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) if !n.is_empty() && n != node.name() => fail(REASON_NODE_NAME),
        _ => Ok(()),
    }
}

/// TaintToleration (`tainttoleration.Filter`): the first NoSchedule/NoExecute taint (in
/// node order) that no toleration tolerates rejects the node.
pub fn taint_toleration(tolerations: &[Toleration], node: &NodeInfo) -> FilterResult {
    let taints = node.node().spec.as_ref().and_then(|s| s.taints.as_deref());
    for taint in taints.unwrap_or(&[]) {
        if taint.effect != "NoSchedule" && taint.effect != "NoExecute" {
            continue;
        }
        if !tolerations_tolerate(tolerations, taint) {
            return Err(vec![untolerated_taint_reason(taint)]);
        }
    }
    Ok(())
}

/// NodeAffinity (`nodeaffinity.Filter`): nodeSelector and required node affinity.
pub fn node_affinity(required: &RequiredNodeAffinity, node: &NodeInfo) -> FilterResult {
    if required.matches(node.labels(), node.name()) {
        Ok(())
    } else {
        fail(REASON_NODE_AFFINITY)
    }
}

/// Outcome of NodeAffinity's PreFilter (`nodeaffinity.PreFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeNamesPreFilter {
    /// Every node is a candidate.
    AllNodes,
    /// Only these node names are candidates (every required term pins
    /// `metadata.name In [...]`).
    Only(HashSet<String>),
    /// The terms pin disjoint node names: nothing can match.
    Conflict,
}

/// NodeAffinity PreFilter: when every required term has `matchFields metadata.name In`,
/// restrict the candidates to the union over terms of the intersection within a term.
pub fn node_affinity_pre_filter(pod: &Pod) -> NodeNamesPreFilter {
    let terms: &[NodeSelectorTerm] = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|ns| ns.node_selector_terms.as_slice())
        .unwrap_or(&[]);
    if terms.is_empty() {
        return NodeNamesPreFilter::AllNodes;
    }
    let mut union: HashSet<String> = HashSet::new();
    for t in terms {
        let mut term_names: Option<HashSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let s: HashSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            None => return NodeNamesPreFilter::AllNodes,
            Some(s) => union.extend(s),
        }
    }
    if union.is_empty() {
        NodeNamesPreFilter::Conflict
    } else {
        NodeNamesPreFilter::Only(union)
    }
}

/// NodePorts (`nodeports.Filter`): any wanted host port conflicting with one in use.
pub fn node_ports(wanted: &[HostPort], node: &NodeInfo) -> FilterResult {
    if wanted.iter().any(|hp| node.used_ports().conflicts(hp)) {
        fail(REASON_NODE_PORTS)
    } else {
        Ok(())
    }
}

/// NodeResourcesFit (`noderesources.fitsRequest`): "Too many pods" when the pod count
/// would exceed allocatable pods, then "Insufficient cpu", "Insufficient memory",
/// "Insufficient ephemeral-storage" and "Insufficient <scalar>" for every resource the
/// pod requests (> 0) beyond `allocatable - requested`. All reasons are returned.
pub fn node_resources_fit(req: &Resources, node: &NodeInfo) -> FilterResult {
    let alloc = node.allocatable();
    let used = node.requested();
    let mut reasons = Vec::new();
    if node.pods().len() as i64 + 1 > alloc.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let all_zero = req.milli_cpu == 0
        && req.memory == 0
        && req.ephemeral_storage == 0
        && req.scalar.values().all(|v| *v == 0);
    if !all_zero {
        let checks = [
            ("cpu", req.milli_cpu, alloc.milli_cpu - used.milli_cpu),
            ("memory", req.memory, alloc.memory - used.memory),
            (
                "ephemeral-storage",
                req.ephemeral_storage,
                alloc.ephemeral_storage - used.ephemeral_storage,
            ),
        ];
        for (name, want, free) in checks {
            if want > 0 && want > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
        for (name, want) in &req.scalar {
            if *want == 0 {
                continue;
            }
            let free = alloc.scalar.get(name).copied().unwrap_or(0)
                - used.scalar.get(name).copied().unwrap_or(0);
            if *want > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
#[path = "filter_test.rs"]
mod tests;
