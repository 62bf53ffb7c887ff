//! PodTopologySpread: the pod's own `topologySpreadConstraints` (DoNotSchedule as a
//! filter, ScheduleAnyway as a score) and, when it has none, the system default
//! constraints (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway).
//!
//! Copies kube-scheduler `pkg/scheduler/framework/plugins/podtopologyspread/`
//! (`common.go` filterTopologySpreadConstraints / countPodsMatchSelector,
//! `filtering.go` calPreFilterState / Filter, `scoring.go` initPreScoreState / PreScore /
//! Score / NormalizeScore, `plugin.go` systemDefaultConstraints).
//!
//! Documented simplification: for the default constraints Kubernetes selects "pods of the
//! same Service/ReplicaSet/StatefulSet/ReplicationController" through those objects'
//! selectors, which this module cannot see; it counts pods that share the incoming
//! pod's controller ownerReference UID instead, and a pod without a controller gets no
//! default constraint (as a pod matched by no such object).

use k8s_openapi::api::core::v1::{Pod, Taint};

use crate::scheduler::filter::FilterResult;
use crate::scheduler::labels::{
    pod_tolerations, tolerations_tolerate, Labels, RequiredNodeAffinity, Requirement, Selector,
};
use crate::scheduler::node_info::{FastMap, NodeInfo, PodFacts};

/// `ErrReasonConstraintsNotMatch`.
pub const REASON_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// `ErrReasonNodeLabelNotMatch`.
pub const REASON_SPREAD_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// Well-known hostname label (per-node domain).
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// Well-known zone label.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// Which pods a constraint counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadSelector {
    /// Non-terminating pods of the controller with this UID (default constraints).
    Controller(String),
    /// Non-terminating pods in the pod's namespace matching the label selector.
    Labels(Selector),
}

/// One effective constraint (`topologySpreadConstraint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// Maximum permitted skew.
    pub max_skew: i64,
    /// Node label defining the domains.
    pub topology_key: String,
    /// Pods counted.
    pub selector: SpreadSelector,
    /// Minimum number of domains (default 1).
    pub min_domains: i64,
    /// nodeAffinityPolicy Honor (default): nodes not matching the pod's required node
    /// affinity are not counted.
    pub honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore): nodes with untolerated taints are not counted.
    pub honor_taints: bool,
}

impl Constraint {
    fn count_on(&self, node: &NodeInfo, ns: &str) -> i64 {
        match &self.selector {
            SpreadSelector::Controller(uid) => node.pods_of_controller(uid) as i64,
            SpreadSelector::Labels(sel) => {
                // countPodsMatchSelector: an empty selector counts nothing.
                if sel.is_everything() {
                    return 0;
                }
                node.pods()
                    .iter()
                    .filter(|p| !p.facts.terminating && p.namespace() == ns)
                    .filter(|p| sel.matches(p.labels()))
                    .count() as i64
            }
        }
    }

    fn matches_self(&self, labels: &Labels, facts: &PodFacts) -> bool {
        match &self.selector {
            SpreadSelector::Controller(uid) => facts.controller_uid.as_deref() == Some(uid),
            SpreadSelector::Labels(sel) => sel.matches(labels),
        }
    }

    fn includes_node(&self, pod: &Pod, required: &RequiredNodeAffinity, node: &NodeInfo) -> bool {
        if self.honor_node_affinity && !required.matches(node.labels(), node.name()) {
            return false;
        }
        if self.honor_taints {
            let taints: &[Taint] = node
                .node()
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]);
            let tol = pod_tolerations(pod);
            let untolerated = taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .any(|t| !tolerations_tolerate(tol, t));
            if untolerated {
                return false;
            }
        }
        true
    }
}

/// The pod's constraints for `action` ("DoNotSchedule" or "ScheduleAnyway") and whether
/// they are the pod's own (true) or system defaults (false). Defaults apply only when
/// the pod declares no constraint at all, and only for ScheduleAnyway.
pub fn constraints(pod: &Pod, facts: &PodFacts, action: &str) -> (Vec<Constraint>, bool) {
    let own = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    if !own.is_empty() {
        let labels = crate::scheduler::labels::labels_of(&pod.metadata);
        let cs = own
            .iter()
            .filter(|c| c.when_unsatisfiable == action)
            .map(|c| {
                let mut sel = Selector::from_label_selector(c.label_selector.as_ref());
                // matchLabelKeys: AND in key=value for the pod's own values.
                let mut extra: Vec<Requirement> = Vec::new();
                for k in c.match_label_keys.iter().flatten() {
                    if let Some(v) = labels.get(k) {
                        extra.extend(Requirement::new(
                            k,
                            crate::scheduler::labels::Op::In,
                            std::slice::from_ref(v),
                        ));
                    }
                }
                if !extra.is_empty() && sel.is_nothing() {
                    sel = Selector::everything();
                }
                for r in extra {
                    sel.add(r);
                }
                Constraint {
                    max_skew: i64::from(c.max_skew),
                    topology_key: c.topology_key.clone(),
                    selector: SpreadSelector::Labels(sel),
                    min_domains: i64::from(c.min_domains.unwrap_or(1)),
                    honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect();
        return (cs, true);
    }
    if action != "ScheduleAnyway" {
        return (Vec::new(), false);
    }
    let Some(uid) = facts.controller_uid.clone() else {
        return (Vec::new(), false);
    };
    let mk = |key: &str, skew: i64| Constraint {
        max_skew: skew,
        topology_key: key.to_string(),
        selector: SpreadSelector::Controller(uid.clone()),
        min_domains: 1,
        honor_node_affinity: true,
        honor_taints: false,
    };
    (vec![mk(LABEL_HOSTNAME, 3), mk(LABEL_ZONE, 5)], false)
}

fn has_all_keys(labels: &Labels, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| labels.contains_key(&c.topology_key))
}

/// Per-domain matching pod counts for the DoNotSchedule constraints (`preFilterState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value -> matching pods (one entry per domain).
    counts: Vec<FastMap<String, i64>>,
}

/// PodTopologySpread PreFilter. `None` = Skip (no DoNotSchedule constraint).
pub fn pre_filter(
    pod: &Pod,
    facts: &PodFacts,
    required: &RequiredNodeAffinity,
    nodes: &[NodeInfo],
) -> Option<PreFilterState> {
    let (cs, _) = constraints(pod, facts, "DoNotSchedule");
    if cs.is_empty() {
        return None;
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let mut counts: Vec<FastMap<String, i64>> = vec![FastMap::default(); cs.len()];
    for n in nodes {
        if !has_all_keys(n.labels(), &cs) {
            continue;
        }
        for (c, m) in cs.iter().zip(counts.iter_mut()) {
            if !c.includes_node(pod, required, n) {
                continue;
            }
            let v = n
                .labels()
                .get(&c.topology_key)
                .map(String::as_str)
                .unwrap_or("");
            let cnt = c.count_on(n, ns);
            match m.get_mut(v) {
                Some(e) => *e += cnt,
                None => {
                    m.insert(v.to_string(), cnt);
                }
            }
        }
    }
    Some(PreFilterState {
        constraints: cs,
        counts,
    })
}

/// PodTopologySpread Filter: for each constraint, a node without the topology label fails
/// ("missing required label"); otherwise `matching in domain + self - global minimum`
/// must not exceed maxSkew (the minimum counts as 0 with fewer domains than minDomains).
pub fn filter(
    state: &PreFilterState,
    labels: &Labels,
    facts: &PodFacts,
    node: &NodeInfo,
) -> FilterResult {
    for (c, domains) in state.constraints.iter().zip(&state.counts) {
        let Some(value) = node.labels().get(&c.topology_key) else {
            return Err(vec![REASON_SPREAD_MISSING_LABEL.to_string()]);
        };
        let mut min = domains
            .values()
            .min()
            .copied()
            .unwrap_or(i64::from(i32::MAX));
        if (domains.len() as i64) < c.min_domains {
            min = 0;
        }
        let self_match = i64::from(c.matches_self(labels, facts));
        let here = domains.get(value.as_str()).copied().unwrap_or(0);
        if here + self_match - min > c.max_skew {
            return Err(vec![REASON_SPREAD.to_string()]);
        }
    }
    Ok(())
}

/// Scoring state for the ScheduleAnyway constraints (`preScoreState`); borrows the
/// nodes' label values.
#[derive(Debug, Clone, PartialEq)]
pub struct PreScoreState<'n> {
    constraints: Vec<Constraint>,
    ignored: Vec<bool>,
    /// Per constraint (empty for hostname): topology value -> matching pods.
    counts: Vec<FastMap<&'n str, i64>>,
    weights: Vec<f64>,
}

/// PodTopologySpread PreScore. `feasible` indexes `nodes`; counts come from all nodes.
/// `None` = Skip (no ScheduleAnyway constraint and no default).
pub fn pre_score<'n>(
    pod: &Pod,
    facts: &PodFacts,
    required: &RequiredNodeAffinity,
    nodes: &'n [NodeInfo],
    feasible: &[usize],
) -> Option<PreScoreState<'n>> {
    let (cs, own) = constraints(pod, facts, "ScheduleAnyway");
    if cs.is_empty() || feasible.is_empty() {
        return None;
    }
    // Pods' own constraints need every topology key on a node; defaults do not.
    let require_all = own;
    let mut ignored = vec![false; feasible.len()];
    let mut counts: Vec<FastMap<&'n str, i64>> = vec![FastMap::default(); cs.len()];
    for (fi, &i) in feasible.iter().enumerate() {
        let labels = nodes[i].labels();
        if require_all && !has_all_keys(labels, &cs) {
            ignored[fi] = true;
            continue;
        }
        for (c, m) in cs.iter().zip(counts.iter_mut()) {
            if c.topology_key != LABEL_HOSTNAME {
                let v = labels
                    .get(&c.topology_key)
                    .map(String::as_str)
                    .unwrap_or("");
                m.entry(v).or_insert(0);
            }
        }
    }
    let n_ignored = ignored.iter().filter(|b| **b).count();
    let weights = cs
        .iter()
        .zip(&counts)
        .map(|(c, m)| {
            let size = if c.topology_key == LABEL_HOSTNAME {
                feasible.len() - n_ignored
            } else {
                m.len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    for n in nodes {
        if require_all && !has_all_keys(n.labels(), &cs) {
            continue;
        }
        for (c, m) in cs.iter().zip(counts.iter_mut()) {
            // Per-node (hostname) counts are taken in `score`.
            if c.topology_key == LABEL_HOSTNAME || !c.includes_node(pod, required, n) {
                continue;
            }
            let v = n
                .labels()
                .get(&c.topology_key)
                .map(String::as_str)
                .unwrap_or("");
            if let Some(cnt) = m.get_mut(v) {
                *cnt += c.count_on(n, ns);
            }
        }
    }
    Some(PreScoreState {
        constraints: cs,
        ignored,
        counts,
        weights,
    })
}

/// PodTopologySpread Score for the `fi`-th feasible node: for each constraint whose key
/// the node has, `count * ln(domains + 2) + maxSkew - 1`, summed and rounded.
pub fn score(state: &PreScoreState<'_>, fi: usize, node: &NodeInfo, ns: &str) -> i64 {
    if state.ignored[fi] {
        return 0;
    }
    let mut score = 0.0;
    for (ci, c) in state.constraints.iter().enumerate() {
        let Some(v) = node.labels().get(&c.topology_key) else {
            continue;
        };
        let cnt = if c.topology_key == LABEL_HOSTNAME {
            c.count_on(node, ns)
        } else {
            state.counts[ci].get(v.as_str()).copied().unwrap_or(0)
        };
        score += cnt as f64 * state.weights[ci] + (c.max_skew - 1) as f64;
    }
    score.round() as i64
}

/// PodTopologySpread NormalizeScore: fewer matching pods score higher,
/// `100 * (max + min - s) / max`; all 100 when max is 0; ignored nodes 0.
pub fn normalize(state: &PreScoreState<'_>, scores: &mut [i64]) {
    let valid = || scores.iter().zip(&state.ignored).filter(|(_, ig)| !**ig);
    let min = valid().map(|(s, _)| *s).min().unwrap_or(i64::MAX);
    let max = valid().map(|(s, _)| *s).max().unwrap_or(0).max(0);
    for (s, ig) in scores.iter_mut().zip(&state.ignored) {
        *s = if *ig {
            0
        } else if max == 0 {
            100
        } else {
            100 * (max + min - *s) / max
        };
    }
}

#[cfg(test)]
#[path = "spread_test.rs"]
mod tests;
