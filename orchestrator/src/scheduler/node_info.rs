//! Per-node aggregate the filters and scores read: the node, its pods with their
//! precomputed requests, affinity terms and host ports.
//!
//! Copies kube-scheduler `pkg/scheduler/framework/types.go` (`NodeInfo`, `PodInfo`,
//! `AffinityTerm`, `HostPortInfo`) and `pkg/scheduler/util/utils.go` (`GetHostPorts`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::scheduler::labels::{labels_of, Labels, Selector};
use crate::scheduler::resources::{allocatable, pod_requests, pod_requests_non_zero, Resources};

/// FNV-1a hasher for the short string keys of the per-cycle maps: much cheaper than
/// SipHash, and the keys come from the cluster, not from an attacker-chosen stream.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// HashMap with the FNV hasher.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Host IP that binds every address (`DefaultBindAllHostIP`).
pub const BIND_ALL_HOST_IP: &str = "0.0.0.0";

/// A parsed pod (anti-)affinity term (`framework.AffinityTerm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityTerm {
    /// Namespaces whose pods the term selects: the term's own list, or the pod's
    /// namespace when neither namespaces nor namespaceSelector is set.
    pub namespaces: Vec<String>,
    /// True when `namespaceSelector` is `{}` (all namespaces). A non-empty
    /// namespaceSelector needs namespace labels, which this module does not see, so it
    /// selects no extra namespace (documented simplification).
    pub all_namespaces: bool,
    /// Pod label selector (`None` matches nothing).
    pub selector: Selector,
    /// Node label that defines the topology domain.
    pub topology_key: String,
}

impl AffinityTerm {
    /// Parses a term of `owner`'s spec (`newAffinityTerm`).
    pub fn new(owner_namespace: &str, term: &PodAffinityTerm) -> AffinityTerm {
        let namespaces = match (&term.namespaces, &term.namespace_selector) {
            (Some(ns), _) if !ns.is_empty() => ns.clone(),
            (_, None) => vec![owner_namespace.to_string()],
            _ => Vec::new(),
        };
        let all_namespaces = term
            .namespace_selector
            .as_ref()
            .is_some_and(|s| Selector::from_label_selector(Some(s)).is_everything());
        AffinityTerm {
            namespaces,
            all_namespaces,
            selector: Selector::from_label_selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// `AffinityTerm.Matches`: the pod is in a selected namespace and its labels match.
    pub fn matches(&self, namespace: &str, labels: &Labels) -> bool {
        (self.all_namespaces || self.namespaces.iter().any(|n| n == namespace))
            && self.selector.matches(labels)
    }
}

/// A weighted preferred affinity term (`framework.WeightedAffinityTerm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedAffinityTerm {
    /// The term.
    pub term: AffinityTerm,
    /// Its weight (1..=100).
    pub weight: i64,
}

/// One host port a pod binds, sanitized (empty IP -> 0.0.0.0, empty protocol -> TCP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// Host IP.
    pub ip: String,
    /// Protocol (TCP, UDP, SCTP).
    pub protocol: String,
    /// Port number (> 0).
    pub port: i32,
}

/// `schedutil.GetHostPorts`: host ports (> 0) of containers and of sidecar init containers.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    sidecars
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.unwrap_or(0);
            (port > 0).then(|| HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| BIND_ALL_HOST_IP.to_string()),
                protocol: p
                    .protocol
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

/// Host ports in use on a node (`framework.HostPortInfo`), keyed by IP then
/// (protocol, port). Entries are counted so two pods sharing a port (possible when pods
/// are bound by nodeName) release it only when both leave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortInfo {
    by_ip: BTreeMap<String, BTreeMap<(String, i32), u32>>,
}

impl HostPortInfo {
    /// Records a port.
    pub fn add(&mut self, hp: &HostPort) {
        *self
            .by_ip
            .entry(hp.ip.clone())
            .or_default()
            .entry((hp.protocol.clone(), hp.port))
            .or_insert(0) += 1;
    }

    /// Releases a port.
    pub fn remove(&mut self, hp: &HostPort) {
        if let Some(m) = self.by_ip.get_mut(&hp.ip) {
            let k = (hp.protocol.clone(), hp.port);
            if let Some(c) = m.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    m.remove(&k);
                }
            }
            if m.is_empty() {
                self.by_ip.remove(&hp.ip);
            }
        }
    }

    /// `HostPortInfo.CheckConflict`: a wanted 0.0.0.0 port conflicts with the same
    /// (protocol, port) on any IP; a specific IP conflicts with itself and with 0.0.0.0.
    pub fn conflicts(&self, hp: &HostPort) -> bool {
        let k = (hp.protocol.clone(), hp.port);
        if hp.ip == BIND_ALL_HOST_IP {
            return self.by_ip.values().any(|m| m.contains_key(&k));
        }
        [BIND_ALL_HOST_IP, hp.ip.as_str()]
            .iter()
            .any(|ip| self.by_ip.get(*ip).is_some_and(|m| m.contains_key(&k)))
    }

    /// True when no port is in use.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

/// Everything the scheduler derives from a pod's spec, computed once per pod
/// (the derived half of `framework.PodInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// `pod_requests`.
    pub requests: Resources,
    /// `pod_requests_non_zero` (cpu and memory only are used).
    pub non_zero: Resources,
    /// Required pod affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity terms.
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    /// Preferred pod anti-affinity terms.
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Host ports the pod binds.
    pub host_ports: Vec<HostPort>,
    /// UID of the controller owner reference, if any.
    pub controller_uid: Option<String>,
    /// True when `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// True when the pod has a pod affinity or anti-affinity section.
    pub has_affinity: bool,
}

fn required(owner_ns: &str, terms: Option<&Vec<PodAffinityTerm>>) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(owner_ns, t))
        .collect()
}

fn preferred(
    owner_ns: &str,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
) -> Vec<WeightedAffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| WeightedAffinityTerm {
            term: AffinityTerm::new(owner_ns, &t.pod_affinity_term),
            weight: i64::from(t.weight),
        })
        .collect()
}

impl PodFacts {
    /// Derives a pod's scheduling data.
    pub fn of(pod: &Pod) -> PodFacts {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let controller_uid = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        PodFacts {
            requests: pod_requests(pod),
            non_zero: pod_requests_non_zero(pod),
            required_affinity: required(
                ns,
                pa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            required_anti_affinity: required(
                ns,
                paa.and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            preferred_affinity: preferred(
                ns,
                pa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            preferred_anti_affinity: preferred(
                ns,
                paa.and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
            ),
            host_ports: pod_host_ports(pod),
            controller_uid,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            has_affinity: pa.is_some() || paa.is_some(),
        }
    }
}

/// A pod on a node with its derived facts (`framework.PodInfo`).
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// "namespace/name".
    pub key: String,
    /// Derived scheduling data.
    pub facts: PodFacts,
}

impl PodInfo {
    /// Precomputes a pod's scheduling data.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        PodInfo {
            key,
            facts: PodFacts::of(&pod),
            pod,
        }
    }

    /// The pod's namespace ("" when unset).
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    /// The pod's labels.
    pub fn labels(&self) -> &Labels {
        labels_of(&self.pod.metadata)
    }

    fn is(&self, uid_or_key: &str) -> bool {
        self.key == uid_or_key || self.pod.metadata.uid.as_deref() == Some(uid_or_key)
    }
}

/// A node with its pods and the aggregates the plugins read (`framework.NodeInfo`).
/// Build once per node and update incrementally with `add_pod` / `remove_pod` /
/// `set_node`; `schedule` never clones it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    node: Arc<Node>,
    pods: Vec<PodInfo>,
    requested: Resources,
    non_zero_requested: Resources,
    allocatable: Resources,
    used_ports: HostPortInfo,
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
    controller_counts: FastMap<String, usize>,
}

impl NodeInfo {
    /// A node without pods.
    pub fn new(node: impl Into<Arc<Node>>) -> NodeInfo {
        let node = node.into();
        NodeInfo {
            allocatable: allocatable(&node),
            node,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            used_ports: HostPortInfo::default(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            controller_counts: FastMap::default(),
        }
    }

    /// Replaces the node object (labels, taints, allocatable may change), keeping pods.
    pub fn set_node(&mut self, node: impl Into<Arc<Node>>) {
        self.node = node.into();
        self.allocatable = allocatable(&self.node);
    }

    /// Accounts a pod bound (or assumed) to this node (`NodeInfo.AddPod`).
    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        self.add_pod_info(PodInfo::new(pod));
    }

    /// Like `add_pod` with an already computed `PodInfo`.
    pub fn add_pod_info(&mut self, pi: PodInfo) {
        self.requested.add(&pi.facts.requests);
        self.non_zero_requested.milli_cpu += pi.facts.non_zero.milli_cpu;
        self.non_zero_requested.memory += pi.facts.non_zero.memory;
        for hp in &pi.facts.host_ports {
            self.used_ports.add(hp);
        }
        self.count(&pi, 1);
        self.pods.push(pi);
    }

    /// Removes the pod whose UID or "namespace/name" is `uid_or_key`
    /// (`NodeInfo.RemovePod`). Returns false when no such pod is on the node.
    pub fn remove_pod(&mut self, uid_or_key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.is(uid_or_key)) else {
            return false;
        };
        let pi = self.pods.swap_remove(i);
        self.requested.sub(&pi.facts.requests);
        self.non_zero_requested.milli_cpu -= pi.facts.non_zero.milli_cpu;
        self.non_zero_requested.memory -= pi.facts.non_zero.memory;
        for hp in &pi.facts.host_ports {
            self.used_ports.remove(hp);
        }
        self.count(&pi, -1);
        true
    }

    fn count(&mut self, pi: &PodInfo, delta: isize) {
        let apply = |n: &mut usize| *n = n.saturating_add_signed(delta);
        let f = &pi.facts;
        if f.has_affinity {
            apply(&mut self.pods_with_affinity);
        }
        if !f.required_anti_affinity.is_empty() {
            apply(&mut self.pods_with_required_anti_affinity);
        }
        if let (Some(uid), false) = (&f.controller_uid, f.terminating) {
            let e = self.controller_counts.entry(uid.clone()).or_insert(0);
            apply(e);
            if *e == 0 {
                self.controller_counts.remove(uid);
            }
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// The node's labels.
    pub fn labels(&self) -> &Labels {
        labels_of(&self.node.metadata)
    }

    /// Pods on the node.
    pub fn pods(&self) -> &[PodInfo] {
        &self.pods
    }

    /// Sum of the pods' requests (`NodeInfo.Requested`; `pods` = pod count).
    pub fn requested(&self) -> &Resources {
        &self.requested
    }

    /// Sum of the pods' non-zero cpu/memory requests (`NodeInfo.NonZeroRequested`).
    pub fn non_zero_requested(&self) -> &Resources {
        &self.non_zero_requested
    }

    /// What the node offers (`NodeInfo.Allocatable`).
    pub fn allocatable(&self) -> &Resources {
        &self.allocatable
    }

    /// Host ports in use.
    pub fn used_ports(&self) -> &HostPortInfo {
        &self.used_ports
    }

    /// Number of pods with pod affinity or anti-affinity.
    pub fn pods_with_affinity(&self) -> usize {
        self.pods_with_affinity
    }

    /// Number of pods with required anti-affinity terms.
    pub fn pods_with_required_anti_affinity(&self) -> usize {
        self.pods_with_required_anti_affinity
    }

    /// Non-terminating pods on the node owned by the controller with this UID.
    pub fn pods_of_controller(&self, uid: &str) -> usize {
        self.controller_counts.get(uid).copied().unwrap_or(0)
    }
}

#[cfg(test)]
#[path = "node_info_test.rs"]
mod tests;
