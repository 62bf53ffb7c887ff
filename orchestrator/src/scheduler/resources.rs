//! Resource vectors: what a pod requests and what a node offers.
//!
//! Copies: component-helpers `resource/helpers.go` (`PodRequests`,
//! `AggregateContainerRequests`, sidecar formula of KEP-753), kube-scheduler
//! `pkg/scheduler/framework/types.go` (`Resource.Add`, `calculateResource`) and
//! `pkg/scheduler/util/pod_resources.go` (non-zero defaults 100m cpu / 200Mi memory).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::scheduler::quantity;

/// Default cpu request (millicores) assumed for scoring when a container sets none
/// (`schedutil.DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request (bytes) assumed for scoring when a container sets none
/// (`schedutil.DefaultMemoryRequest`, 200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource kube-scheduler tracks (`framework.Resource`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Pod count: 1 for a pod's requests, the `pods` allocatable for a node, the number
    /// of pods for a node's requested total.
    pub pods: i64,
    /// Extended, hugepages and other scalar resources (`nvidia.com/gpu`, `hugepages-2Mi`).
    pub scalar: BTreeMap<String, i64>,
}

/// `schedutil.IsScalarResourceName`: extended resources (a `/` outside the
/// `kubernetes.io/` namespace), hugepages, prefixed native and attachable-volume resources.
pub fn is_scalar_resource_name(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    if name.contains("kubernetes.io/") {
        return true;
    }
    match name.split_once('/') {
        Some((prefix, rest)) => {
            !name.starts_with("requests.") && !prefix.is_empty() && !rest.is_empty()
        }
        None => false,
    }
}

impl Resources {
    /// Adds one quantity by resource name (`Resource.Add` for one entry). Unparsable
    /// quantities count as 0 (the API server rejects them before they get here).
    pub fn add_quantity(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu += quantity::milli_value(q).unwrap_or(0),
            "memory" => self.memory += quantity::value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage += quantity::value(q).unwrap_or(0),
            "pods" => self.pods += quantity::value(q).unwrap_or(0),
            _ if is_scalar_resource_name(name) => {
                *self.scalar.entry(name.to_string()).or_insert(0) += quantity::value(q).unwrap_or(0)
            }
            _ => {}
        }
    }

    /// Adds another vector component-wise.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts another vector component-wise (used when a pod leaves a node).
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e -= v;
            if *e == 0 {
                self.scalar.remove(k);
            }
        }
    }

    /// Component-wise maximum (`maxResourceList`).
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// Reads a `ResourceList` (`Resource.Add`).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (k, q) in list.into_iter().flatten() {
            r.add_quantity(k, q);
        }
        r
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = Resources::from_list(list);
    r.pods = 0;
    if non_zero {
        // NonMissingContainerRequests: only a *missing* key gets the default; an
        // explicit "0" stays zero.
        let has = |k: &str| list.is_some_and(|l| l.contains_key(k));
        if !has("cpu") {
            r.milli_cpu += DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory += DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn aggregate(pod: &Pod, non_zero: bool) -> Resources {
    let mut reqs = Resources::default();
    let Some(spec) = pod.spec.as_ref() else {
        reqs.pods = 1;
        return reqs;
    };
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut restartable = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let cr = container_requests(c, non_zero);
        let effective = if c.restart_policy.as_deref() == Some("Always") {
            // Sidecar: runs for the pod's lifetime, so it adds to the regular sum and to
            // every later init container's footprint.
            reqs.add(&cr);
            restartable.add(&cr);
            restartable.clone()
        } else {
            let mut tmp = cr;
            tmp.add(&restartable);
            tmp
        };
        init_max.max_with(&effective);
    }
    reqs.max_with(&init_max);
    reqs.add(&Resources::from_list(spec.overhead.as_ref()));
    reqs.pods = 1;
    reqs
}

/// What the pod requests, as NodeResourcesFit and `NodeInfo.Requested` count it
/// (`resource.PodRequests`): sum of containers and sidecar (restartPolicy Always) init
/// containers, max'ed with each regular init container plus the sidecars started before
/// it, plus `spec.overhead`. `pods` is 1.
///
/// Deviation: each container's quantity is rounded (up) before summing; Kubernetes sums
/// exact quantities and rounds once, which differs only for sub-millicore/sub-byte values.
pub fn pod_requests(pod: &Pod) -> Resources {
    aggregate(pod, false)
}

/// The pod's requests with a container's *missing* cpu/memory request replaced by
/// 100m / 200Mi (`NonMissingContainerRequests`), as the LeastAllocated score and
/// `NodeInfo.NonZeroRequested` use them.
pub fn pod_requests_non_zero(pod: &Pod) -> Resources {
    aggregate(pod, true)
}

/// What the node offers (`NodeInfo.Allocatable`): `status.allocatable`, or
/// `status.capacity` when allocatable is unset (the API server's defaulting does that).
pub fn allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    Resources::from_list(list)
}

#[cfg(test)]
#[path = "resources_test.rs"]
mod tests;
