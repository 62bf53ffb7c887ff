//! The pure decision cores of the Endpoints and EndpointSlice controllers.
//!
//! Copies `syncService` of pkg/controller/endpoint/endpoints_controller.go
//! (`podToEndpointAddressForService`, `addEndpointSubset`,
//! `endpointPortFromServicePort`, `truncateEndpoints`), `RepackSubsets` of
//! pkg/api/v1/endpoints/util.go, `FindPort` of pkg/api/v1/pod/util.go and
//! `ShouldPodBeInEndpoints` / `ShouldSetHostname` of
//! staging/src/k8s.io/endpointslice/util (Kubernetes 1.32). The EndpointSlice
//! reconciler ([`endpoint_slices_for`]) is in the `slices` submodule.
//!
//! Differences: subsets, addresses and ports come out in a deterministic
//! order (addresses by IP then pod uid, ports by name/port/protocol, subsets
//! by their address sets) where upstream sorts by object hashes; the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation is never set
//! (upstream sets it from pod/service change times it tracks in memory); a
//! pod with `status.podIP` but empty `status.podIPs` is still used.
//!
//! The integrator watches Services, Pods (and Endpoints/EndpointSlices it
//! owns), recomputes a Service's desired objects on any change of it or of a
//! pod in its namespace, and writes: Endpoints named like the Service
//! (create when absent, else [`merge_into`] + update when [`needs_update`]);
//! EndpointSlices per [`SliceChanges`].

mod slices;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub use slices::{
    endpoint_slices_for, SliceChanges, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY,
    MAX_ENDPOINTS_PER_SLICE,
};

use crate::controllers::pods::is_ready;

/// `v1.IsHeadlessService`: label on the Endpoints / slices of a Service
/// without cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// `v1.EndpointsOverCapacity`: set to `truncated` past [`MAX_CAPACITY`].
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// `v1.EndpointsLastChangeTriggerTime` (never set here).
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// `maxCapacity`: most addresses an Endpoints object keeps.
pub const MAX_CAPACITY: usize = 1000;

/// The Service's selector, `None` when absent or empty (an empty map does
/// not survive JSON, so upstream sees nil): such Services get no endpoints
/// from these controllers.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// The pods of the Service's namespace its selector picks (every label of
/// the selector present with the same value). Empty without a selector or
/// for an ExternalName Service.
pub fn selected_pods<'a>(service: &Service, pods: &'a [Arc<Pod>]) -> Vec<&'a Pod> {
    let Some(sel) = selector(service) else {
        return Vec::new();
    };
    if service_type(service) == "ExternalName" {
        return Vec::new();
    }
    let ns = service.metadata.namespace.as_deref().unwrap_or("");
    pods.iter()
        .map(|p| p.as_ref())
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("") == ns)
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            sel.iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .collect()
}

pub(crate) fn service_type(service: &Service) -> &str {
    service
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

/// `helper.IsServiceIPSet`: clusterIP set and not `None`.
pub fn is_service_ip_set(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    ip.is_some_and(|ip| !ip.is_empty() && ip != "None")
}

fn is_headless_none(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub(crate) fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub(crate) fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

/// `ShouldPodBeInEndpoints`: not Succeeded/Failed, has an IP, and not being
/// deleted unless `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = crate::controllers::pods::phase(pod);
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// `ShouldSetHostname`: the pod has a hostname and its subdomain is the
/// Service's name (same namespace).
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref());
    !hostname.is_empty()
        && subdomain == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// The pod's IPs: `status.podIPs`, or `status.podIP` when that list is empty.
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(st) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<String> = st
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    st.pod_ip
        .iter()
        .filter(|ip| !ip.is_empty())
        .cloned()
        .collect()
}

/// Whether an IP string is IPv6 (`utilnet.IsIPv6String`, by its colon).
pub fn is_ipv6(ip: &str) -> bool {
    ip.contains(':')
}

fn protocol(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("TCP")
}

/// `podutil.FindPort`: a numeric targetPort as is (absent: the Service
/// port); a named one is the containerPort of that name and protocol in the
/// pod's containers, then its restartable (sidecar) init containers.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let name = match port.target_port.as_ref() {
        None => return Some(port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(s)) => s,
    };
    let spec = pod.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|cp| {
            cp.name.as_ref() == Some(name) && protocol(&cp.protocol) == protocol(&port.protocol)
        })
        .map(|cp| cp.container_port)
}

/// The Pod reference of an address / endpoint (kind, namespace, name, uid).
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The address family the Endpoints object uses
/// (`podToEndpointAddressForService`): the first of spec.ipFamilies, else
/// from the cluster IP, else (headless) from the pod's IP.
fn wants_ipv6(service: &Service, pod: &Pod) -> bool {
    let spec = service.spec.as_ref();
    if let Some(f) = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        return f == "IPv6";
    }
    if is_service_ip_set(service) {
        return spec
            .and_then(|s| s.cluster_ip.as_deref())
            .is_some_and(is_ipv6);
    }
    pod_ips(pod).first().is_some_and(|ip| is_ipv6(ip))
}

/// The Endpoints object kube-controller-manager wants for `service`, given
/// every pod in the cache (`syncService`). `None` for a Service without
/// selector (its Endpoints are managed out of band) or of type ExternalName.
pub fn endpoints_for(service: &Service, pods: &[Arc<Pod>]) -> Option<Endpoints> {
    selector(service)?;
    if service_type(service) == "ExternalName" {
        return None;
    }
    let tolerate_unready = publish_not_ready(service);
    let ports = service_ports(service);
    let mut subsets = Vec::new();
    for pod in selected_pods(service, pods) {
        if !should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let v6 = wants_ipv6(service, pod);
        let Some(ip) = pod_ips(pod).into_iter().find(|ip| is_ipv6(ip) == v6) else {
            continue;
        };
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let mut addr = EndpointAddress {
            ip,
            node_name: node.filter(|n| !n.is_empty()),
            target_ref: Some(pod_ref(pod)),
            hostname: None,
        };
        if should_set_hostname(pod, service) {
            addr.hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
        }
        let ready = tolerate_unready || is_ready(pod);
        let subset = |ports: Option<Vec<EndpointPort>>| EndpointSubset {
            addresses: ready.then(|| vec![addr.clone()]),
            not_ready_addresses: (!ready).then(|| vec![addr.clone()]),
            ports,
        };
        if ports.is_empty() {
            if is_headless_none(service) {
                subsets.push(subset(None));
            }
            continue;
        }
        for sp in ports {
            let Some(num) = find_port(pod, sp) else {
                continue;
            };
            subsets.push(subset(Some(vec![EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: num,
                protocol: Some(protocol(&sp.protocol).to_string()),
                app_protocol: sp.app_protocol.clone(),
            }])));
        }
    }
    let mut subsets = repack_subsets(&subsets);
    let truncated = truncate(&mut subsets);
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_service_ip_set(service) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    let annotations =
        truncated.then(|| BTreeMap::from([(OVER_CAPACITY.to_string(), "truncated".to_string())]));
    Some(Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations,
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

type AddrKey = (String, String);
type PortKey = (Option<String>, i32, Option<String>, Option<String>);

fn addr_key(a: &EndpointAddress) -> AddrKey {
    let uid = a.target_ref.as_ref().and_then(|r| r.uid.clone());
    (a.ip.clone(), uid.unwrap_or_default())
}

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone(),
        p.port,
        p.protocol.clone(),
        p.app_protocol.clone(),
    )
}

/// `RepackSubsets`: regroups addresses so that each subset holds the
/// addresses (ready and not ready) offering exactly the same ports. An
/// address not ready on some port is not ready there even if listed ready
/// elsewhere; addresses are identified by IP and target uid.
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut all: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, (EndpointPort, BTreeMap<AddrKey, bool>)> = BTreeMap::new();
    let sentinel = EndpointPort {
        port: -1,
        ..Default::default()
    };
    for s in subsets {
        let listed: Vec<&EndpointPort> = match s.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().collect(),
            _ => vec![&sentinel],
        };
        let addrs = s.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = s.not_ready_addresses.iter().flatten().map(|a| (a, false));
        for (addr, ready) in addrs.chain(not_ready) {
            let key = addr_key(addr);
            all.entry(key.clone()).or_insert_with(|| addr.clone());
            for p in &listed {
                let entry = ports
                    .entry(port_key(p))
                    .or_insert_with(|| ((*p).clone(), BTreeMap::new()));
                let was = entry.1.entry(key.clone()).or_insert(ready);
                *was = *was && ready;
            }
        }
    }
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in ports {
        let group = groups.entry(addrs.into_iter().collect()).or_default();
        if port.port > 0 {
            group.push(port);
        }
    }
    groups
        .into_iter()
        .map(|(addrs, ports)| {
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = addrs
                    .iter()
                    .filter(|(_, r)| *r == want)
                    .filter_map(|(k, _)| all.get(k).cloned())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// `truncateEndpoints`: past [`MAX_CAPACITY`] addresses, keeps ready
/// addresses first and cuts each subset in proportion (rounded up, the last
/// ones getting what is left). Returns whether anything was cut.
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let len = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (max, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut room = max;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            s.not_ready_addresses = None;
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = len(list);
        let share = (n * max).div_ceil(total.max(1)).min(room);
        if let Some(v) = list.as_mut() {
            v.truncate(share);
        }
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
        room -= len(list);
    }
    true
}

fn without_resource_versions(subsets: &Option<Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    let mut v = subsets.clone().unwrap_or_default();
    for s in &mut v {
        let lists = [&mut s.addresses, &mut s.not_ready_addresses];
        for a in lists.into_iter().flatten().flatten() {
            if let Some(r) = a.target_ref.as_mut() {
                r.resource_version = None;
            }
        }
    }
    v
}

/// Decides whether `current` must be rewritten to match `desired` (as
/// `syncService` compares): subsets (ignoring targetRef resourceVersions),
/// labels, and the over-capacity annotation. Other metadata is noise.
pub fn needs_update(current: &Endpoints, desired: &Endpoints) -> bool {
    let labels = |e: &Endpoints| e.metadata.labels.clone().unwrap_or_default();
    let over = |e: &Endpoints| {
        e.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OVER_CAPACITY).cloned())
    };
    without_resource_versions(&current.subsets) != without_resource_versions(&desired.subsets)
        || labels(current) != labels(desired)
        || over(current) != over(desired)
}

/// The object to PUT over `current`: its metadata (resourceVersion, other
/// annotations) kept, with `desired`'s subsets and labels and the
/// over-capacity annotation set or removed (the last-change-trigger-time
/// annotation is removed, as upstream does without a trigger time).
pub fn merge_into(current: &Endpoints, desired: &Endpoints) -> Endpoints {
    let mut out = current.clone();
    out.subsets = desired.subsets.clone();
    out.metadata.labels = desired.metadata.labels.clone();
    let mut ann = out.metadata.annotations.take().unwrap_or_default();
    ann.remove(LAST_CHANGE_TRIGGER_TIME);
    ann.remove(OVER_CAPACITY);
    if let Some(v) = desired
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OVER_CAPACITY))
    {
        ann.insert(OVER_CAPACITY.into(), v.clone());
    }
    out.metadata.annotations = (!ann.is_empty()).then_some(ann);
    out
}

#[cfg(test)]
#[path = "endpoints_test.rs"]
mod tests;
