//! InterPodAffinity: required pod affinity / anti-affinity as a filter, preferred terms
//! (and existing pods' terms) as a score.
//!
//! Copies kube-scheduler `pkg/scheduler/framework/plugins/interpodaffinity/filtering.go`
//! (PreFilter counts per topology pair, `satisfyPodAffinity`, `satisfyPodAntiAffinity`,
//! `satisfyExistingPodsAntiAffinity`) and `scoring.go` (`processExistingPod`, min-max
//! normalization). Topology keys are any node label (hostname, zone, ...).

use crate::scheduler::filter::FilterResult;
use crate::scheduler::labels::Labels;
use crate::scheduler::node_info::{
    AffinityTerm, FastMap, NodeInfo, PodFacts, WeightedAffinityTerm,
};

/// `ErrReasonAffinityRulesNotMatch`.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// `ErrReasonAntiAffinityRulesNotMatch`.
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// `InterPodAffinityArgs.HardPodAffinityWeight` default.
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts (or weights) per topology key, then per topology value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyCounts(FastMap<String, FastMap<String, i64>>);

impl TopologyCounts {
    /// Adds `delta` to the pair (key, node's value for key) when the node has the label;
    /// drops pairs that reach zero (`topologyToMatchedTermCount.update`).
    fn add(&mut self, node_labels: &Labels, key: &str, delta: i64) {
        let Some(value) = node_labels.get(key) else {
            return;
        };
        let m = self.0.entry(key.to_string()).or_default();
        let e = m.entry(value.clone()).or_insert(0);
        *e += delta;
        if *e == 0 {
            m.remove(value);
            if m.is_empty() {
                self.0.remove(key);
            }
        }
    }

    /// The count of one pair.
    pub fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    /// True when no pair has a count.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Cluster-wide counts computed once per scheduling cycle (`preFilterState`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreFilterState {
    /// Pairs where an existing pod's required anti-affinity term matches the pod.
    pub existing_anti_affinity: TopologyCounts,
    /// Pairs holding pods that match all of the pod's required affinity terms.
    pub affinity: TopologyCounts,
    /// Pairs holding pods that match one of the pod's required anti-affinity terms.
    pub anti_affinity: TopologyCounts,
}

fn matches_all(terms: &[AffinityTerm], ns: &str, labels: &Labels) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(ns, labels))
}

/// InterPodAffinity PreFilter. `None` means Skip: the pod has no required (anti-)affinity
/// and no existing pod's required anti-affinity matches it.
pub fn pre_filter(
    ns: &str,
    labels: &Labels,
    facts: &PodFacts,
    nodes: &[NodeInfo],
) -> Option<PreFilterState> {
    let mut s = PreFilterState::default();
    for n in nodes
        .iter()
        .filter(|n| n.pods_with_required_anti_affinity() > 0)
    {
        for p in n.pods() {
            for t in &p.facts.required_anti_affinity {
                if t.matches(ns, labels) {
                    s.existing_anti_affinity.add(n.labels(), &t.topology_key, 1);
                }
            }
        }
    }
    let aff = &facts.required_affinity;
    let anti = &facts.required_anti_affinity;
    if !aff.is_empty() || !anti.is_empty() {
        for n in nodes {
            for p in n.pods() {
                let (pns, plabels) = (p.namespace(), p.labels());
                if matches_all(aff, pns, plabels) {
                    for t in aff {
                        s.affinity.add(n.labels(), &t.topology_key, 1);
                    }
                }
                for t in anti {
                    if t.matches(pns, plabels) {
                        s.anti_affinity.add(n.labels(), &t.topology_key, 1);
                    }
                }
            }
        }
    }
    if s.existing_anti_affinity.is_empty() && aff.is_empty() && anti.is_empty() {
        return None;
    }
    Some(s)
}

/// InterPodAffinity Filter: affinity first (a node lacking a term's topology label
/// fails; a pod whose terms match itself may start a group when no pod matches
/// anywhere), then the pod's anti-affinity, then existing pods' anti-affinity.
pub fn filter(
    state: &PreFilterState,
    ns: &str,
    labels: &Labels,
    facts: &PodFacts,
    node: &NodeInfo,
) -> FilterResult {
    let node_labels = node.labels();
    let mut pods_exist = true;
    for t in &facts.required_affinity {
        match node_labels.get(&t.topology_key) {
            Some(v) => {
                if state.affinity.get(&t.topology_key, v) <= 0 {
                    pods_exist = false;
                }
            }
            None => return Err(vec![REASON_AFFINITY.to_string()]),
        }
    }
    // A pod whose terms match itself may start a group when no pod matches anywhere.
    let first_of_group =
        state.affinity.is_empty() && matches_all(&facts.required_affinity, ns, labels);
    if !(pods_exist || first_of_group) {
        return Err(vec![REASON_AFFINITY.to_string()]);
    }
    for t in &facts.required_anti_affinity {
        if let Some(v) = node_labels.get(&t.topology_key) {
            if state.anti_affinity.get(&t.topology_key, v) > 0 {
                return Err(vec![REASON_ANTI_AFFINITY.to_string()]);
            }
        }
    }
    if !state.existing_anti_affinity.is_empty()
        && node_labels
            .iter()
            .any(|(k, v)| state.existing_anti_affinity.get(k, v) > 0)
    {
        return Err(vec![REASON_EXISTING_ANTI_AFFINITY.to_string()]);
    }
    Ok(())
}

/// Weights per topology pair for scoring (`preScoreState.topologyScore`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreScoreState {
    /// Summed weights.
    pub topology_score: TopologyCounts,
}

fn process_terms(
    out: &mut TopologyCounts,
    terms: &[WeightedAffinityTerm],
    ns: &str,
    labels: &Labels,
    node_labels: &Labels,
    sign: i64,
) {
    for t in terms {
        if t.term.matches(ns, labels) {
            out.add(node_labels, &t.term.topology_key, t.weight * sign);
        }
    }
}

/// InterPodAffinity PreScore over all nodes (not only feasible ones). `None` = Skip
/// (nothing contributes). Without preferred terms on the incoming pod only pods that
/// have affinity themselves are visited.
pub fn pre_score(
    ns: &str,
    labels: &Labels,
    facts: &PodFacts,
    nodes: &[NodeInfo],
) -> Option<PreScoreState> {
    let has_constraints =
        !facts.preferred_affinity.is_empty() || !facts.preferred_anti_affinity.is_empty();
    let mut out = TopologyCounts::default();
    for n in nodes {
        if !has_constraints && n.pods_with_affinity() == 0 {
            continue;
        }
        let nl = n.labels();
        if nl.is_empty() {
            continue;
        }
        for p in n.pods() {
            let pf = &p.facts;
            if !has_constraints && !pf.has_affinity {
                continue;
            }
            let (pns, pl) = (p.namespace(), p.labels());
            process_terms(&mut out, &facts.preferred_affinity, pns, pl, nl, 1);
            process_terms(&mut out, &facts.preferred_anti_affinity, pns, pl, nl, -1);
            for t in &pf.required_affinity {
                if t.matches(ns, labels) {
                    out.add(nl, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            process_terms(&mut out, &pf.preferred_affinity, ns, labels, nl, 1);
            process_terms(&mut out, &pf.preferred_anti_affinity, ns, labels, nl, -1);
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(PreScoreState {
            topology_score: out,
        })
    }
}

/// InterPodAffinity Score: sum of the weights of the node's topology pairs.
pub fn score(state: &PreScoreState, node: &NodeInfo) -> i64 {
    state
        .topology_score
        .0
        .iter()
        .filter_map(|(k, vals)| node.labels().get(k).and_then(|v| vals.get(v)))
        .sum()
}

/// InterPodAffinity NormalizeScore: min-max scaling to 0..=100 (all 0 when equal).
pub fn normalize(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (100.0 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

#[cfg(test)]
#[path = "interpod_test.rs"]
mod tests;
