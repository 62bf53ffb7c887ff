//! Node-level scheduling predicates used by the DaemonSet controller:
//! required node affinity (`spec.nodeSelector` plus
//! `requiredDuringSchedulingIgnoredDuringExecution`), taints and
//! tolerations, and the daemon pods' automatic tolerations and node pinning.
//!
//! Copies component-helpers/scheduling/corev1/nodeaffinity
//! (`GetRequiredNodeAffinity`, `RequiredNodeAffinity.Match`,
//! `LazyErrorNodeSelector`, `nodeSelectorRequirementsAsSelector` /
//! `AsFieldSelector`), api/core/v1 `Toleration.ToleratesTaint` /
//! `MatchToleration`, pkg/apis/core/v1/helper `FindMatchingUntoleratedTaint`
//! / `AddOrUpdateTolerationInPodSpec`, and pkg/controller/daemon/util
//! (`AddOrUpdateDaemonPodTolerations`,
//! `ReplaceDaemonSetPodNodeNameNodeAffinity`, `GetTargetNodeName`) of
//! Kubernetes 1.32.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

/// `metav1.ObjectNameField`, the only node field a selector term can use.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";
/// `v1.TaintNodeNotReady`.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `v1.TaintNodeUnreachable`.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `v1.TaintNodeDiskPressure`.
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// `v1.TaintNodeMemoryPressure`.
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// `v1.TaintNodePIDPressure`.
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// `v1.TaintNodeUnschedulable`.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// `v1.TaintNodeNetworkUnavailable`.
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// `v1.TaintEffectNoSchedule`.
pub const NO_SCHEDULE: &str = "NoSchedule";
/// `v1.TaintEffectNoExecute`.
pub const NO_EXECUTE: &str = "NoExecute";

/// One node-selector requirement against a key/value map: `None` when the
/// requirement does not parse (it then makes its whole term match nothing,
/// as a `LazyErrorNodeSelector` term with parse errors).
fn requirement_matches(
    r: &NodeSelectorRequirement,
    values: &BTreeMap<String, String>,
) -> Option<bool> {
    let vals = r.values.as_deref().unwrap_or(&[]);
    let got = values.get(&r.key);
    let int = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" if !vals.is_empty() => Some(got.is_some_and(|g| vals.contains(g))),
        "NotIn" if !vals.is_empty() => Some(got.is_none_or(|g| !vals.contains(g))),
        "Exists" if vals.is_empty() => Some(got.is_some()),
        "DoesNotExist" if vals.is_empty() => Some(got.is_none()),
        "Gt" | "Lt" if vals.len() == 1 => {
            let bound = int(&vals[0])?;
            let have = got.and_then(|g| int(g));
            Some(have.is_some_and(|h| {
                if r.operator == "Gt" {
                    h > bound
                } else {
                    h < bound
                }
            }))
        }
        _ => None,
    }
}

/// A field requirement (only `In` / `NotIn` with exactly one value parse).
fn field_requirement_matches(
    r: &NodeSelectorRequirement,
    fields: &BTreeMap<String, String>,
) -> Option<bool> {
    let vals = r.values.as_deref().unwrap_or(&[]);
    if vals.len() != 1 {
        return None;
    }
    let got = fields.get(&r.key).map(String::as_str).unwrap_or("");
    match r.operator.as_str() {
        "In" => Some(got == vals[0]),
        "NotIn" => Some(got != vals[0]),
        _ => None,
    }
}

/// Decides whether `node` satisfies one `NodeSelectorTerm`: all its
/// matchExpressions over the node labels and all its matchFields over
/// `metadata.name`. An empty term or one that does not parse matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let node_fields = BTreeMap::from([(
        OBJECT_NAME_FIELD.to_string(),
        node.metadata.name.clone().unwrap_or_default(),
    )]);
    let all = |reqs: &[NodeSelectorRequirement],
               f: &dyn Fn(&NodeSelectorRequirement) -> Option<bool>| {
        reqs.iter().try_fold(true, |acc, r| f(r).map(|m| acc && m))
    };
    let labels_ok = all(exprs, &|r| requirement_matches(r, &labels));
    let fields_ok = all(fields, &|r| field_requirement_matches(r, &node_fields));
    matches!((labels_ok, fields_ok), (Some(true), Some(true)))
}

/// `NodeSelector.Match`: any of its terms matches.
pub fn node_selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

/// `GetRequiredNodeAffinity(pod).Match(node)`: every `spec.nodeSelector`
/// label is on the node, and the required node affinity (if any) matches.
pub fn required_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    match spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
        Some(sel) => node_selector_matches(sel, node),
        None => true,
    }
}

/// `Toleration.ToleratesTaint`: same effect (or any), same key (or any), and
/// `Exists` or equal values.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// `FindMatchingUntoleratedTaint`: the first taint accepted by `filter` that
/// no toleration tolerates.
pub fn untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// `AddOrUpdateTolerationInPodSpec`: replaces a toleration with the same
/// key, operator, value and effect (tolerationSeconds aside), else appends.
pub fn add_or_update_toleration(spec: &mut PodSpec, toleration: Toleration) {
    let same = |a: &Toleration, b: &Toleration| {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        s(&a.key) == s(&b.key)
            && s(&a.effect) == s(&b.effect)
            && s(&a.operator) == s(&b.operator)
            && s(&a.value) == s(&b.value)
    };
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|t| same(t, &toleration)) {
        Some(existing) => *existing = toleration,
        None => list.push(toleration),
    }
}

/// `AddOrUpdateDaemonPodTolerations`: daemon pods tolerate (Exists, no
/// tolerationSeconds) not-ready and unreachable NoExecute, and disk-, memory-
/// and pid-pressure and unschedulable NoSchedule; host-network pods also
/// tolerate network-unavailable NoSchedule.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut keys = vec![
        (TAINT_NOT_READY, NO_EXECUTE),
        (TAINT_UNREACHABLE, NO_EXECUTE),
        (TAINT_DISK_PRESSURE, NO_SCHEDULE),
        (TAINT_MEMORY_PRESSURE, NO_SCHEDULE),
        (TAINT_PID_PRESSURE, NO_SCHEDULE),
        (TAINT_UNSCHEDULABLE, NO_SCHEDULE),
    ];
    if spec.host_network == Some(true) {
        keys.push((TAINT_NETWORK_UNAVAILABLE, NO_SCHEDULE));
    }
    for (key, effect) in keys {
        add_or_update_toleration(
            spec,
            Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Toleration::default()
            },
        );
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity
/// becomes the single term `matchFields metadata.name In [node]` (other
/// affinity kept), so the default scheduler binds the pod to that node.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// `GetTargetNodeName`: `spec.nodeName`, or for an unscheduled pod the
/// single value of the first `metadata.name In` field requirement of its
/// required node affinity.
pub fn target_node_name(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let req = terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In")?;
    match req.values.as_deref() {
        Some([one]) => Some(one.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[path = "nodeaffinity_test.rs"]
mod tests;
