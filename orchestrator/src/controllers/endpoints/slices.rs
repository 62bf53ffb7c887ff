//! The pure decision core of the EndpointSlice controller.
//!
//! Copies `Reconciler.reconcile`, `reconcileByAddressType`,
//! `reconcileByPortMapping` and `finalize` of
//! staging/src/k8s.io/endpointslice/reconciler.go, and `podToEndpoint`,
//! `getEndpointPorts`, `newEndpointSlice`, `setEndpointSliceLabels`,
//! `getAddressTypesForService`, `getSliceToFill`, `ownedBy` of its utils.go
//! (Kubernetes 1.32): endpoints stay in the slice they are in, changed slices
//! are updated in place, new endpoints first fill slices being updated (the
//! fullest first), then the unchanged slice that ends closest to full, then
//! new slices; slices left empty are deleted, or recycled (renamed) into a
//! slice that would be created; a Service with no endpoint of an address
//! type keeps one empty placeholder slice of that type.
//!
//! Differences: endpoints are placed in a deterministic order (upstream pops
//! them from a hash set); zone and hints are not set (no Node lookup, no
//! topology hints), so pods on missing nodes are not skipped; the labels of a
//! slice are compared with the wanted ones in full (upstream only notices
//! labels that changed or disappeared); the last-change-trigger-time
//! annotation is not set.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{
    find_port, is_ipv6, is_service_ip_set, pod_ips, pod_ref, publish_not_ready, selected_pods,
    selector, service_ports, service_type, should_pod_be_in_endpoints, should_set_hostname,
    HEADLESS_LABEL,
};
use crate::controllers::pods::is_ready;

/// `discovery.LabelServiceName`.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `discovery.LabelManagedBy`.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The managed-by value of kube-controller-manager's EndpointSlice controller.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The writes that bring a Service's EndpointSlices to the wanted state.
#[derive(Debug, Clone, Default)]
pub struct SliceChanges {
    /// Slices to POST (generateName `<service>-`, no name).
    pub create: Vec<EndpointSlice>,
    /// Slices to PUT: existing ones with their metadata (resourceVersion)
    /// kept, or a recycled one carrying the name and resourceVersion of a
    /// slice that would otherwise be deleted.
    pub update: Vec<EndpointSlice>,
    /// Slices to DELETE (by name).
    pub delete: Vec<EndpointSlice>,
}

type PortKey = (String, i32, String, String);
type EpKey = (Vec<String>, String, String, String);
/// Wanted endpoints per set of ports: the ports and the endpoints by identity.
type Desired = BTreeMap<Vec<PortKey>, (Vec<EndpointPort>, BTreeMap<EpKey, Endpoint>)>;

fn ports_key(ports: &[EndpointPort]) -> Vec<PortKey> {
    let mut v: Vec<PortKey> = ports
        .iter()
        .map(|p| {
            let s = |o: &Option<String>| o.clone().unwrap_or_default();
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            (s(&p.name), p.port.unwrap_or(0), proto, s(&p.app_protocol))
        })
        .collect();
    v.sort();
    v
}

/// `hashEndpoint`: an endpoint's identity is its sorted addresses, hostname
/// and target namespace/name.
fn ep_key(e: &Endpoint) -> EpKey {
    let mut addrs = e.addresses.clone();
    addrs.sort();
    let r = e.target_ref.as_ref();
    let s = |o: Option<&Option<String>>| o.and_then(|x| x.clone()).unwrap_or_default();
    (
        addrs,
        e.hostname.clone().unwrap_or_default(),
        s(r.map(|r| &r.namespace)),
        s(r.map(|r| &r.name)),
    )
}

/// `EndpointsEqualBeyondHash`: conditions, node, zone, hints and target.
fn equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    a.conditions == b.conditions
        && a.node_name == b.node_name
        && a.zone == b.zone
        && a.hints == b.hints
        && a.target_ref == b.target_ref
}

/// `getAddressTypesForService`: spec.ipFamilies; else the family of the
/// cluster IP; else (headless without families) both.
fn address_types(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.as_ref();
    let fams = spec.and_then(|s| s.ip_families.as_ref());
    let mut out: Vec<&'static str> = fams
        .into_iter()
        .flatten()
        .map(|f| if f == "IPv6" { "IPv6" } else { "IPv4" })
        .collect();
    out.dedup();
    if !out.is_empty() {
        return out;
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return vec![if is_ipv6(ip) { "IPv6" } else { "IPv4" }];
    }
    vec!["IPv4", "IPv6"]
}

/// `getEndpointPorts`: one port per Service port the pod resolves (named
/// ports per pod); none for a headless Service without ports.
fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    service_ports(service)
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// `podToEndpoint`: the pod's IPs of `address_type`; serving = pod Ready;
/// terminating = being deleted; ready = serving and not terminating (always
/// true with publishNotReadyAddresses); nodeName, hostname, Pod target.
fn pod_to_endpoint(pod: &Pod, service: &Service, address_type: &str) -> Endpoint {
    let serving = is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = publish_not_ready(service) || (serving && !terminating);
    let spec = pod.spec.as_ref();
    Endpoint {
        addresses: pod_ips(pod)
            .into_iter()
            .filter(|ip| is_ipv6(ip) == (address_type == "IPv6"))
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        hostname: should_set_hostname(pod, service)
            .then(|| spec.and_then(|s| s.hostname.clone()))
            .flatten(),
        target_ref: Some(pod_ref(pod)),
        ..Default::default()
    }
}

/// `setEndpointSliceLabels`: the Service's labels minus the reserved keys,
/// the headless label when the Service has no cluster IP, the service-name
/// and managed-by labels.
fn wanted_labels(service: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| {
            ![LABEL_SERVICE_NAME, LABEL_MANAGED_BY, HEADLESS_LABEL].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !is_service_ip_set(service) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    let name = service.metadata.name.clone().unwrap_or_default();
    l.insert(LABEL_SERVICE_NAME.into(), name);
    l.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    l
}

/// `ownedBy`: an owner reference to this Service (uid, kind, apiVersion v1).
fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or("");
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// `newEndpointSlice`: generateName `<service>-`, namespace, a controller
/// reference to the Service, the wanted labels, `ports`, no endpoints.
fn new_slice(service: &Service, ports: &[EndpointPort], address_type: &str) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(wanted_labels(service)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports.to_vec()),
    }
}

/// The EndpointSlice changes for `service` given every pod in the cache and
/// the existing slices (any: only those managed by this controller for this
/// Service are considered). Nothing for a Service without selector or of
/// type ExternalName. At most [`MAX_ENDPOINTS_PER_SLICE`] endpoints a slice.
pub fn endpoint_slices_for(
    service: &Service,
    pods: &[Arc<Pod>],
    existing: &[EndpointSlice],
) -> SliceChanges {
    reconcile(service, pods, existing, MAX_ENDPOINTS_PER_SLICE)
}

pub(super) fn reconcile(
    service: &Service,
    pods: &[Arc<Pod>],
    existing: &[EndpointSlice],
    max: usize,
) -> SliceChanges {
    let mut out = SliceChanges::default();
    if selector(service).is_none() || service_type(service) == "ExternalName" {
        return out;
    }
    let label =
        |s: &EndpointSlice, k: &str| s.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
    let ours = existing.iter().filter(|s| {
        label(s, LABEL_MANAGED_BY).as_deref() == Some(MANAGED_BY)
            && label(s, LABEL_SERVICE_NAME) == service.metadata.name
            && s.metadata.namespace == service.metadata.namespace
    });
    let types = address_types(service);
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> =
        types.iter().map(|t| (*t, vec![])).collect();
    for s in ours {
        match by_type.get_mut(s.address_type.as_str()) {
            Some(v) if owned_by(s, service) => v.push(s),
            _ => out.delete.push(s.clone()),
        }
    }
    let candidates: Vec<&Pod> = selected_pods(service, pods)
        .into_iter()
        .filter(|p| should_pod_be_in_endpoints(p, true))
        .collect();
    for t in types {
        let slices = by_type.remove(t).unwrap_or_default();
        by_address_type(service, &candidates, &slices, t, max, &mut out);
    }
    // finalize: recycle slices to delete into slices to create.
    let mut i = 0;
    while i < out.delete.len() && !out.create.is_empty() {
        let d = &out.delete[i];
        if d.address_type == out.create[0].address_type && owned_by(d, service) {
            let d = out.delete.remove(i);
            let mut c = out.create.remove(0);
            c.metadata.name = d.metadata.name;
            c.metadata.generate_name = None;
            c.metadata.resource_version = d.metadata.resource_version;
            out.update.push(c);
        } else {
            i += 1;
        }
    }
    if service.metadata.deletion_timestamp.is_some() {
        out.create.clear();
    }
    out
}

/// `reconcileByAddressType`.
fn by_address_type(
    service: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    address_type: &str,
    max: usize,
    out: &mut SliceChanges,
) {
    let mut desired: Desired = BTreeMap::new();
    for pod in pods {
        let ports = endpoint_ports(service, pod);
        let entry = desired
            .entry(ports_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()));
        let ep = pod_to_endpoint(pod, service, address_type);
        if !ep.addresses.is_empty() {
            entry.1.insert(ep_key(&ep), ep);
        }
    }
    let mut existing_by_key: BTreeMap<Vec<PortKey>, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        let key = ports_key(s.ports.as_deref().unwrap_or(&[]));
        existing_by_key.entry(key).or_default().push(s);
    }
    let mut local = SliceChanges::default();
    for (key, (ports, set)) in desired.iter_mut() {
        let slices = existing_by_key.remove(key).unwrap_or_default();
        by_port_mapping(service, &slices, set, ports, address_type, max, &mut local);
    }
    for (_, slices) in existing_by_key {
        local.delete.extend(slices.into_iter().cloned());
    }
    if existing.len() == local.delete.len() && local.create.is_empty() {
        let placeholder = new_slice(service, &[], address_type);
        let same = |d: &EndpointSlice| {
            d.endpoints.is_empty()
                && d.ports.as_ref().is_none_or(Vec::is_empty)
                && d.address_type == placeholder.address_type
                && d.metadata.labels == placeholder.metadata.labels
        };
        if local.delete.len() == 1 && same(&local.delete[0]) {
            local.delete.clear();
        } else {
            local.create.push(placeholder);
        }
    }
    out.create.extend(local.create);
    out.update.extend(local.update);
    out.delete.extend(local.delete);
}

/// `reconcileByPortMapping` for the slices sharing one set of ports.
fn by_port_mapping(
    service: &Service,
    existing: &[&EndpointSlice],
    desired: &mut BTreeMap<EpKey, Endpoint>,
    ports: &[EndpointPort],
    address_type: &str,
    max: usize,
    out: &mut SliceChanges,
) {
    let labels = wanted_labels(service);
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<EndpointSlice> = Vec::new();
    // 1. Keep the endpoints still wanted where they are; note changes.
    for s in existing {
        let mut kept = Vec::new();
        let mut changed = false;
        for e in &s.endpoints {
            if let Some(want) = desired.remove(&ep_key(e)) {
                changed |= !equal_beyond_key(&want, e);
                kept.push(want);
            }
        }
        let labels_changed = s.metadata.labels.as_ref() != Some(&labels);
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                out.delete.push((*s).clone());
                continue;
            }
        } else if !labels_changed {
            unchanged.push((*s).clone());
            continue;
        }
        let mut copy = (*s).clone();
        copy.endpoints = kept;
        copy.metadata.labels = Some(labels.clone());
        to_update.push(copy);
    }
    let mut pending: Vec<Endpoint> = std::mem::take(desired).into_values().collect();
    pending.reverse(); // pop() takes them in key order
                       // 2. Fill the slices being updated, the fullest first.
    to_update.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for s in &mut to_update {
        while s.endpoints.len() < max {
            let Some(e) = pending.pop() else { break };
            s.endpoints.push(e);
        }
    }
    // 3. Then the unchanged slice ending closest to full, else new slices.
    while !pending.is_empty() {
        let fill = if pending.len() < max {
            slice_to_fill(&unchanged, pending.len(), max)
        } else {
            None
        };
        let mut slice = match fill {
            Some(i) => unchanged.remove(i),
            None => new_slice(service, ports, address_type),
        };
        while slice.endpoints.len() < max {
            let Some(e) = pending.pop() else { break };
            slice.endpoints.push(e);
        }
        if slice.metadata.name.is_some() {
            to_update.push(slice);
        } else {
            out.create.push(slice);
        }
    }
    out.update.extend(to_update);
}

/// `getSliceToFill`: the slice left closest to full (but not over `max`)
/// after adding `n` endpoints.
fn slice_to_fill(slices: &[EndpointSlice], n: usize, max: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in slices.iter().enumerate() {
        let total = n + s.endpoints.len();
        if total > max {
            continue;
        }
        let diff = max - total;
        if best.is_none_or(|(_, d)| diff < d) {
            best = Some((i, diff));
        }
    }
    best.map(|(i, _)| i)
}
