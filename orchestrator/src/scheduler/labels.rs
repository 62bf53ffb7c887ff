//! Label selectors, node selectors and tolerations, evaluated like Kubernetes does.
//!
//! Copies: apimachinery `pkg/labels/selector.go` (`Requirement.Matches`),
//! apimachinery `pkg/apis/meta/v1/helpers.go` (`LabelSelectorAsSelector`),
//! component-helpers `scheduling/corev1/nodeaffinity/nodeaffinity.go`
//! (`LazyErrorNodeSelector`, `RequiredNodeAffinity`, `PreferredSchedulingTerms`) and
//! k8s.io/api `core/v1/toleration.go` (`Toleration.ToleratesTaint`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// Label map type used by k8s-openapi.
pub type Labels = BTreeMap<String, String>;

static EMPTY_LABELS: Labels = BTreeMap::new();

/// The labels of an object, or an empty map when it has none.
pub fn labels_of(meta: &ObjectMeta) -> &Labels {
    meta.labels.as_ref().unwrap_or(&EMPTY_LABELS)
}

/// Operator of one parsed requirement (apimachinery `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `In` / `=`: the label exists and its value is one of the values.
    In,
    /// `NotIn` / `!=`: the label is absent or its value is none of the values.
    NotIn,
    /// The label exists.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label exists and, as an integer, is greater than the value.
    Gt,
    /// The label exists and, as an integer, is less than the value.
    Lt,
}

/// One parsed requirement; `Requirement.Matches` semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values (exactly one, parsed into `int_value`, for Gt/Lt).
    pub values: Vec<String>,
    /// The integer operand of Gt/Lt.
    pub int_value: i64,
}

impl Requirement {
    /// Builds a requirement, validating the value count like `labels.NewRequirement`
    /// (In/NotIn need values, Exists/DoesNotExist none, Gt/Lt exactly one integer).
    pub fn new(key: &str, op: Op, values: &[String]) -> Option<Requirement> {
        let mut int_value = 0;
        match op {
            Op::In | Op::NotIn if values.is_empty() => return None,
            Op::Exists | Op::DoesNotExist if !values.is_empty() => return None,
            Op::Gt | Op::Lt => {
                if values.len() != 1 {
                    return None;
                }
                int_value = values[0].parse::<i64>().ok()?;
            }
            _ => {}
        }
        Some(Requirement {
            key: key.to_string(),
            op,
            values: values.to_vec(),
            int_value,
        })
    }

    /// Whether `labels` satisfies this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            Op::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt | Op::Lt => match v.and_then(|v| v.parse::<i64>().ok()) {
                Some(n) if self.op == Op::Gt => n > self.int_value,
                Some(n) => n < self.int_value,
                None => false,
            },
        }
    }
}

/// A parsed label selector: `Nothing` matches no object, an empty requirement list
/// matches every object (apimachinery `labels.Nothing()` / `labels.Everything()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    nothing: bool,
    reqs: Vec<Requirement>,
}

impl Selector {
    /// Matches every label set.
    pub fn everything() -> Selector {
        Selector {
            nothing: false,
            reqs: Vec::new(),
        }
    }

    /// Matches no label set.
    pub fn nothing() -> Selector {
        Selector {
            nothing: true,
            reqs: Vec::new(),
        }
    }

    /// `labels.SelectorFromSet`: every key must equal its value.
    pub fn from_set(set: &Labels) -> Selector {
        let reqs = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
                int_value: 0,
            })
            .collect();
        Selector {
            nothing: false,
            reqs,
        }
    }

    /// `metav1.LabelSelectorAsSelector`: `None` -> nothing, `{}` -> everything,
    /// matchLabels ANDed with matchExpressions (In/NotIn/Exists/DoesNotExist).
    /// An invalid selector (unknown operator, wrong value count), which Kubernetes
    /// reports as an error, matches nothing here.
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
                int_value: 0,
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => return Selector::nothing(),
            };
            let values = e.values.as_deref().unwrap_or(&[]);
            match Requirement::new(&e.key, op, values) {
                Some(r) => reqs.push(r),
                None => return Selector::nothing(),
            }
        }
        Selector {
            nothing: false,
            reqs,
        }
    }

    /// Adds a requirement (ANDed).
    pub fn add(&mut self, r: Requirement) {
        self.reqs.push(r);
    }

    /// True for a selector that matches everything (`Selector.Empty()`).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    /// True for a selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether the label set satisfies every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }
}

/// One parsed `NodeSelectorTerm`: label requirements ANDed with `metadata.name` field
/// requirements. A term that failed to parse never matches (LazyErrorNodeSelector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Option<Selector>,
    /// (key, equal?, value) for matchFields In / NotIn with exactly one value.
    fields: Option<Vec<(String, bool, String)>>,
    parse_error: bool,
}

fn parse_node_requirements(reqs: &[NodeSelectorRequirement]) -> Option<Selector> {
    let mut sel = Selector::everything();
    for r in reqs {
        let op = match r.operator.as_str() {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        sel.add(Requirement::new(
            &r.key,
            op,
            r.values.as_deref().unwrap_or(&[]),
        )?);
    }
    Some(sel)
}

fn parse_field_requirements(
    reqs: &[NodeSelectorRequirement],
) -> Option<Vec<(String, bool, String)>> {
    let mut out = Vec::new();
    for r in reqs {
        let values = r.values.as_deref().unwrap_or(&[]);
        let eq = match r.operator.as_str() {
            "In" => true,
            "NotIn" => false,
            _ => return None,
        };
        if values.len() != 1 {
            return None;
        }
        out.push((r.key.clone(), eq, values[0].clone()));
    }
    Some(out)
}

impl NodeTerm {
    /// Parses a term; returns `None` for an empty term (no expressions and no fields),
    /// which Kubernetes skips entirely.
    pub fn parse(term: &NodeSelectorTerm) -> Option<NodeTerm> {
        let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
        let fields = term.match_fields.as_deref().unwrap_or(&[]);
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let mut t = NodeTerm {
            labels: None,
            fields: None,
            parse_error: false,
        };
        if !exprs.is_empty() {
            match parse_node_requirements(exprs) {
                Some(s) => t.labels = Some(s),
                None => t.parse_error = true,
            }
        }
        if !fields.is_empty() {
            match parse_field_requirements(fields) {
                Some(f) => t.fields = Some(f),
                None => t.parse_error = true,
            }
        }
        Some(t)
    }

    /// Whether a node with these labels and name satisfies the term.
    pub fn matches(&self, labels: &Labels, node_name: &str) -> bool {
        if self.parse_error {
            return false;
        }
        if let Some(l) = &self.labels {
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(fields) = &self.fields {
            // Kubernetes only evaluates field requirements when the node has a name.
            if !node_name.is_empty() {
                for (key, eq, value) in fields {
                    let actual = if key == "metadata.name" {
                        node_name
                    } else {
                        ""
                    };
                    if (actual == value) != *eq {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// `nodeaffinity.RequiredNodeAffinity`: `spec.nodeSelector` ANDed with the ORed terms of
/// `requiredDuringSchedulingIgnoredDuringExecution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredNodeAffinity {
    node_selector: Option<Selector>,
    terms: Option<Vec<NodeTerm>>,
}

impl RequiredNodeAffinity {
    /// Builds it from a pod (`GetRequiredNodeAffinity`).
    pub fn of_pod(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let node_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .filter(|m| !m.is_empty())
            .map(Selector::from_set);
        let terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(parse_node_selector);
        RequiredNodeAffinity {
            node_selector,
            terms,
        }
    }

    /// True when the pod has neither a nodeSelector nor required node affinity.
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_none() && self.terms.is_none()
    }

    /// Whether the node satisfies both the nodeSelector and some required term.
    pub fn matches(&self, labels: &Labels, node_name: &str) -> bool {
        if let Some(s) = &self.node_selector {
            if !s.matches(labels) {
                return false;
            }
        }
        match &self.terms {
            Some(terms) => terms.iter().any(|t| t.matches(labels, node_name)),
            None => true,
        }
    }
}

/// Parses the terms of a `NodeSelector`, dropping empty terms.
pub fn parse_node_selector(ns: &NodeSelector) -> Vec<NodeTerm> {
    ns.node_selector_terms
        .iter()
        .filter_map(NodeTerm::parse)
        .collect()
}

/// Parsed `preferredDuringSchedulingIgnoredDuringExecution` node affinity terms
/// (`PreferredSchedulingTerms`): terms of weight 0, empty terms and (deviation: Kubernetes
/// fails the whole PreScore) unparsable terms are dropped.
pub fn parse_preferred_terms(terms: &[PreferredSchedulingTerm]) -> Vec<(NodeTerm, i64)> {
    terms
        .iter()
        .filter(|t| t.weight != 0)
        .filter_map(|t| NodeTerm::parse(&t.preference).map(|nt| (nt, i64::from(t.weight))))
        .filter(|(nt, _)| !nt.parse_error)
        .collect()
}

/// `Toleration.ToleratesTaint`: effect (empty = all), key (empty = all), then
/// operator Exists, or Equal/empty comparing values.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if k != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// `TolerationsTolerateTaint`: some toleration tolerates the taint.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The pod's tolerations, empty when unset.
pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

#[cfg(test)]
#[path = "labels_test.rs"]
mod tests;
