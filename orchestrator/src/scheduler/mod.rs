//! Pure decision core of a Kubernetes scheduler with kube-scheduler 1.32 semantics for the
//! default plugins that need no volumes: filter (NodeUnschedulable, NodeName,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread,
//! InterPodAffinity, in that order), score (NodeResourcesFit LeastAllocated,
//! BalancedAllocation, NodeAffinity, TaintToleration, PodTopologySpread, InterPodAffinity
//! with the default weights), pick the best node with a random tie break, and the
//! scheduling queue. No I/O, no clock: callers pass nodes, pods and time.
//!
//! Copies `pkg/scheduler/schedule_one.go` (`schedulePod`, `findNodesThatFitPod`,
//! `prioritizeNodes`, `selectHost`) and `pkg/scheduler/framework/types.go` (`FitError`).

pub mod filter;
pub mod interpod;
pub mod labels;
pub mod node_info;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod run;
pub mod score;
pub mod spread;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Pod, Toleration};

use crate::scheduler::filter::{FilterResult, NodeNamesPreFilter};
use crate::scheduler::labels::{
    labels_of, parse_preferred_terms, pod_tolerations, RequiredNodeAffinity,
};
pub use crate::scheduler::node_info::{NodeInfo, PodFacts, PodInfo};
pub use crate::scheduler::queue::{QueueConfig, SchedulingQueue};

/// What kube-scheduler reports when the cluster has no node (`ErrNoNodesAvailable`).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why a pod fits no node (`framework.FitError`). `Display` is the FailedScheduling
/// event message, e.g. "0/3 nodes are available: 1 node(s) were unschedulable,
/// 2 Insufficient cpu." (entries "<count> <reason>" sorted as strings, as Go's
/// `sort.Strings`), or "no nodes available to schedule pods" for an empty cluster.
/// The preemption suffix kube appends ("preemption: ...") is not produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// Number of nodes considered.
    pub num_all_nodes: usize,
    /// Reason -> number of nodes that reported it.
    pub reasons: BTreeMap<String, usize>,
    /// Set when a PreFilter rejected the pod for every node; replaces the histogram.
    pub pre_filter_msg: Option<String>,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_all_nodes == 0 {
            return f.write_str(NO_NODES_AVAILABLE);
        }
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if let Some(msg) = &self.pre_filter_msg {
            return write!(f, " {msg}.");
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        parts.sort();
        if !parts.is_empty() {
            write!(f, " {}.", parts.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Everything computed once per scheduling attempt of one pod (PreFilter results).
#[derive(Debug)]
pub struct CycleState<'a> {
    pod: &'a Pod,
    facts: PodFacts,
    tolerations: &'a [Toleration],
    required: RequiredNodeAffinity,
    candidates: NodeNamesPreFilter,
    inter_pod: Option<interpod::PreFilterState>,
    spread: Option<spread::PreFilterState>,
}

/// Runs the PreFilter step for `pod` against the cluster `nodes`. Fails (for every node)
/// only when the required node affinity pins disjoint node names.
pub fn prepare<'a>(pod: &'a Pod, nodes: &[NodeInfo]) -> Result<CycleState<'a>, FitError> {
    let facts = PodFacts::of(pod);
    let candidates = filter::node_affinity_pre_filter(pod);
    if candidates == NodeNamesPreFilter::Conflict {
        return Err(FitError {
            num_all_nodes: nodes.len(),
            reasons: BTreeMap::new(),
            pre_filter_msg: Some(filter::REASON_NODE_AFFINITY_CONFLICT.to_string()),
        });
    }
    let required = RequiredNodeAffinity::of_pod(pod);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let spread = spread::pre_filter(pod, &facts, &required, nodes);
    let inter_pod = interpod::pre_filter(ns, labels_of(&pod.metadata), &facts, nodes);
    Ok(CycleState {
        pod,
        tolerations: pod_tolerations(pod),
        facts,
        required,
        candidates,
        inter_pod,
        spread,
    })
}

/// Runs the filter plugins on one node in kube-scheduler's order and returns the
/// reasons of the first plugin that rejects it (as the framework stops there).
pub fn filter_node(state: &CycleState<'_>, node: &NodeInfo) -> FilterResult {
    if let NodeNamesPreFilter::Only(names) = &state.candidates {
        if !names.contains(node.name()) {
            return Err(vec![filter::REASON_PREFILTER_NODE_AFFINITY.to_string()]);
        }
    }
    let pod = state.pod;
    let labels = labels_of(&pod.metadata);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    filter::node_unschedulable(state.tolerations, node)?;
    filter::node_name(pod, node)?;
    filter::taint_toleration(state.tolerations, node)?;
    filter::node_affinity(&state.required, node)?;
    filter::node_ports(&state.facts.host_ports, node)?;
    filter::node_resources_fit(&state.facts.requests, node)?;
    if let Some(s) = &state.spread {
        spread::filter(s, labels, &state.facts, node)?;
    }
    if let Some(s) = &state.inter_pod {
        interpod::filter(s, ns, labels, &state.facts, node)?;
    }
    Ok(())
}

/// Weighted scores of one feasible node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    /// Index into the `nodes` slice.
    pub index: usize,
    /// Sum of the weighted plugin scores.
    pub total: i64,
    /// (plugin name, weighted normalized score), in kube's plugin order.
    pub plugins: [(&'static str, i64); 6],
}

/// Scores the feasible nodes (`feasible` indexes `nodes`) with every score plugin,
/// normalizes each plugin over the feasible nodes and applies the default weights.
pub fn score_nodes(
    state: &CycleState<'_>,
    nodes: &[NodeInfo],
    feasible: &[usize],
) -> Vec<NodeScore> {
    let pod = state.pod;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let labels = labels_of(&pod.metadata);
    let n = feasible.len();
    let node = |fi: usize| &nodes[feasible[fi]];

    let taint_tol = score::prefer_no_schedule_tolerations(state.tolerations);
    let mut taint: Vec<i64> = (0..n)
        .map(|fi| score::taint_toleration(&taint_tol, node(fi)))
        .collect();
    score::default_normalize(&mut taint, true);

    let preferred = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .filter(|p| !p.is_empty())
        .map(parse_preferred_terms);
    let mut affinity = vec![0; n];
    if let Some(terms) = &preferred {
        affinity = (0..n)
            .map(|fi| score::node_affinity(terms, node(fi)))
            .collect();
        score::default_normalize(&mut affinity, false);
    }

    let mut spread_scores = vec![0; n];
    if let Some(s) = spread::pre_score(pod, &state.facts, &state.required, nodes, feasible) {
        spread_scores = (0..n)
            .map(|fi| spread::score(&s, fi, node(fi), ns))
            .collect();
        spread::normalize(&s, &mut spread_scores);
    }

    let mut inter = vec![0; n];
    if let Some(s) = interpod::pre_score(ns, labels, &state.facts, nodes) {
        inter = (0..n).map(|fi| interpod::score(&s, node(fi))).collect();
        interpod::normalize(&mut inter);
    }

    (0..n)
        .map(|fi| {
            let plugins = [
                (
                    "TaintToleration",
                    taint[fi] * score::WEIGHT_TAINT_TOLERATION,
                ),
                ("NodeAffinity", affinity[fi] * score::WEIGHT_NODE_AFFINITY),
                (
                    "NodeResourcesFit",
                    score::least_allocated(&state.facts.non_zero, node(fi))
                        * score::WEIGHT_NODE_RESOURCES_FIT,
                ),
                (
                    "PodTopologySpread",
                    spread_scores[fi] * score::WEIGHT_POD_TOPOLOGY_SPREAD,
                ),
                (
                    "InterPodAffinity",
                    inter[fi] * score::WEIGHT_INTER_POD_AFFINITY,
                ),
                (
                    "NodeResourcesBalancedAllocation",
                    score::balanced_allocation(&state.facts.requests, node(fi))
                        * score::WEIGHT_BALANCED_ALLOCATION,
                ),
            ];
            NodeScore {
                index: feasible[fi],
                total: plugins.iter().map(|(_, s)| s).sum(),
                plugins,
            }
        })
        .collect()
}

/// `selectHost`: the highest total; ties broken uniformly at random by reservoir
/// sampling. `None` for an empty list.
pub fn select_host<R: rand::Rng + ?Sized>(scores: &[NodeScore], rng: &mut R) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0u32;
    for s in scores {
        match best {
            Some((_, t)) if s.total < t => {}
            Some((_, t)) if s.total == t => {
                ties += 1;
                if rng.gen_range(0..ties) == 0 {
                    best = Some((s.index, t));
                }
            }
            _ => {
                best = Some((s.index, s.total));
                ties = 1;
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Schedules one pod: PreFilter, filter every node, score the feasible ones, pick the
/// best (random among equals). Returns the node name, or the `FitError` whose `Display`
/// is kube-scheduler's FailedScheduling message. All nodes are evaluated
/// (`percentageOfNodesToScore` is not applied).
pub fn schedule(
    pod: &Pod,
    nodes: &[NodeInfo],
    rng: &mut impl rand::Rng,
) -> Result<String, FitError> {
    if nodes.is_empty() {
        return Err(FitError {
            num_all_nodes: 0,
            reasons: BTreeMap::new(),
            pre_filter_msg: None,
        });
    }
    let state = prepare(pod, nodes)?;
    let mut feasible = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        match filter_node(&state, n) {
            Ok(()) => feasible.push(i),
            Err(rs) => {
                for r in rs {
                    *reasons.entry(r).or_insert(0) += 1;
                }
            }
        }
    }
    let chosen = match feasible.len() {
        0 => {
            return Err(FitError {
                num_all_nodes: nodes.len(),
                reasons,
                pre_filter_msg: None,
            })
        }
        1 => feasible[0],
        _ => {
            let scores = score_nodes(&state, nodes, &feasible);
            select_host(&scores, rng).unwrap_or(feasible[0])
        }
    };
    Ok(nodes[chosen].name().to_string())
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
#[path = "mod_test.rs"]
mod tests;
