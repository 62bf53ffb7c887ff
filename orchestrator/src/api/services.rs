//! A Service's cluster IP and node ports, allocated by the API server as kube-apiserver's
//! Service registry does: from `--service-cidr` (k3s's flag and default, 10.43.0.0/16) and
//! `--service-node-port-range` (30000-32767).
//!
//! Each allocation is a key of its own, made by a create-only compare-and-swap, so that two API
//! servers on one store never hand out one address twice: an IP is an
//! `/registry/ipaddresses/<ip>` networking.k8s.io/v1 IPAddress naming its Service (kube 1.33's
//! allocator keeps the same objects there); a node port is `/registry/servicenodeports/<port>`
//! (kube keeps one bitmap for all ports; a key per port needs no read-modify-write). What a
//! deleted Service held is released with it; what a crash between the two steps leaves behind
//! is released by [`Api::repair_service_allocations`] (kube's repair controllers' job).
//!
//! The decisions are the pure functions here; the store work is in the `Api` methods below.

use std::net::Ipv4Addr;
use std::str::FromStr;

use k8s_openapi::jiff::Timestamp;
use rand::Rng;
use serde_json::{json, Value};

use super::error::{ApiError, FieldError, FieldErrorKind};
use super::objects::meta_str;
use super::Api;
use crate::clock::rfc3339;
use crate::registry::{list_prefix, object_key, Swap};

/// How many random free addresses are tried before the range counts as full.
const ATTEMPTS: usize = 64;

/// An allocation no Service holds is released only this long after it was made (a create may
/// be between its reservation and its Service's write).
const ORPHAN_GRACE_SECONDS: i64 = 30;

/// The ranges Services are given addresses from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRanges {
    /// The service CIDR's network address and prefix length.
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> Self {
        Self {
            network: Ipv4Addr::new(10, 43, 0, 0),
            prefix: 16,
            node_ports: (30000, 32767),
        }
    }
}

impl ServiceRanges {
    /// Parses `--service-cidr` and `--service-node-port-range`.
    pub fn parse(cidr: &str, node_ports: &str) -> Result<Self, String> {
        let (ip, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {cidr}"))?;
        let ip = Ipv4Addr::from_str(ip).map_err(|_| format!("invalid CIDR address: {cidr}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("invalid service CIDR {cidr}: the prefix must be /8 to /30"))?;
        let mask = u32::MAX << (32 - prefix);
        let (low, high) = node_ports
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b)
            .ok_or_else(|| format!("invalid port range: {node_ports}"))?;
        Ok(Self {
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
            node_ports: (low, high),
        })
    }

    fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & (u32::MAX << (32 - self.prefix)) == u32::from(self.network)
    }

    /// The range's first address, kept for the `kubernetes` Service (as kube-apiserver).
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// A random address for a new Service: not the network's, not the broadcast, not the first.
    fn any_ip(&self, rng: &mut impl Rng) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + rng.gen_range(2..self.size() - 1))
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }
}

/// What a Service needs allocated, read off its (defaulted) spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needs {
    /// Some(None): any address; Some(Some(ip)): that one; None: no cluster IP (headless,
    /// ExternalName).
    pub cluster_ip: Option<Option<String>>,
    /// For each port that needs a node port, (index, the port asked for if any).
    pub node_ports: Vec<(usize, Option<u16>)>,
}

/// What `service` needs allocated.
pub fn needs(service: &Value) -> Needs {
    let spec = &service["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    let ip = spec["clusterIP"]
        .as_str()
        .or_else(|| spec["clusterIPs"][0].as_str())
        .unwrap_or("");
    let cluster_ip = match (ty, ip) {
        ("ExternalName", _) | (_, "None") => None,
        (_, "") => Some(None),
        (_, ip) => Some(Some(ip.to_string())),
    };
    let wants_ports = ty == "NodePort"
        || (ty == "LoadBalancer" && spec["allocateLoadBalancerNodePorts"] != json!(false));
    let node_ports = if wants_ports {
        spec["ports"]
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i, p["nodePort"].as_u64().map(|n| n as u16)))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Needs {
        cluster_ip,
        node_ports,
    }
}

/// On update, what the client left out is what the Service has (`kubectl replace` of a manifest
/// without a clusterIP keeps it), and a cluster IP, once set, may not change.
pub fn carry_over(old: &Value, new: &mut Value) -> Result<(), FieldError> {
    let old_spec = &old["spec"];
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let old_ip = old_spec["clusterIP"].as_str().unwrap_or("");
    let new_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if new_ip.is_empty() && !old_ip.is_empty() && ty != "ExternalName" {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if let Some(v) = old_spec.get(field) {
                spec.insert(field.into(), v.clone());
            }
        }
    } else if !old_ip.is_empty() && new_ip != old_ip && ty != "ExternalName" {
        return Err(FieldError {
            kind: FieldErrorKind::Invalid,
            field: "spec.clusterIPs[0]".into(),
            value: Some(format!("{new_ip:?}")),
            detail: "may not change once set".into(),
        });
    }
    let old_ports = old_spec["ports"].as_array().cloned().unwrap_or_default();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
            let same = old_ports.iter().find(|o| {
                o["port"] == port["port"]
                    && o["protocol"] == port["protocol"]
                    && o.get("nodePort").is_some()
            });
            if let Some(same) = same {
                port["nodePort"] = same["nodePort"].clone();
            }
        }
    }
    Ok(())
}

/// The keys a Service's allocations are kept under.
fn ip_key(ip: &str) -> String {
    object_key("ipaddresses", None, ip)
}

fn port_key(port: u16) -> String {
    object_key("servicenodeports", None, &port.to_string())
}

/// The allocations `service` holds, as keys.
pub fn held(service: &Value) -> Vec<String> {
    let spec = &service["spec"];
    let mut keys = Vec::new();
    if let Some(ip) = spec["clusterIP"]
        .as_str()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        keys.push(ip_key(ip));
    }
    for port in spec["ports"].as_array().into_iter().flatten() {
        if let Some(n) = port["nodePort"].as_u64() {
            keys.push(port_key(n as u16));
        }
    }
    keys
}

fn invalid(field: String, value: String, detail: String) -> FieldError {
    FieldError {
        kind: FieldErrorKind::Invalid,
        field,
        value: Some(value),
        detail,
    }
}

impl Api {
    /// Allocates what a new (or updated) Service needs and writes it into the object. Returns
    /// the keys reserved, for [`Api::release`] if the Service is not written after all.
    pub async fn allocate(&self, service: &mut Value) -> Result<Vec<String>, ApiError> {
        let name = meta_str(service, "name").unwrap_or_default().to_string();
        let namespace = meta_str(service, "namespace")
            .unwrap_or_default()
            .to_string();
        let owner =
            json!({"group": "", "resource": "services", "namespace": namespace, "name": name});
        let mut reserved = Vec::new();
        let causes = self.allocate_each(service, &owner, &mut reserved).await;
        match causes {
            Ok(causes) if causes.is_empty() => Ok(reserved),
            outcome => {
                self.release(&reserved).await;
                Err(match outcome {
                    Ok(causes) => ApiError::Invalid {
                        kind: "Service".into(),
                        name,
                        causes,
                    },
                    Err(e) => e,
                })
            }
        }
    }

    /// Reserves each allocation `service` needs, pushing its key to `reserved`; the causes of
    /// the ones that cannot be had.
    async fn allocate_each(
        &self,
        service: &mut Value,
        owner: &Value,
        reserved: &mut Vec<String>,
    ) -> Result<Vec<FieldError>, ApiError> {
        let ranges = &self.services;
        let needs = needs(service);
        let mut causes = Vec::new();
        let record = record(owner, self);
        match &needs.cluster_ip {
            None => {}
            // Already this Service's (an update).
            Some(Some(ip)) if self.holds(&ip_key(ip), owner).await => {}
            Some(Some(ip)) => {
                let cause = |detail: String| {
                    invalid(
                        "spec.clusterIPs".into(),
                        format!("[]string{{{ip:?}}}"),
                        format!("failed to allocate IP {ip}: {detail}"),
                    )
                };
                if !Ipv4Addr::from_str(ip).is_ok_and(|a| ranges.contains(a)) {
                    causes.push(cause(format!(
                        "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                        ranges.cidr()
                    )));
                } else if self.reserve(&ip_key(ip), ip_address(ip, &record)).await? {
                    reserved.push(ip_key(ip));
                    set_ip(service, ip);
                } else {
                    causes.push(cause("provided IP is already allocated".into()));
                }
            }
            Some(None) => {
                let mut found = None;
                for _ in 0..ATTEMPTS {
                    let ip = ranges.any_ip(&mut rand::thread_rng()).to_string();
                    if self.reserve(&ip_key(&ip), ip_address(&ip, &record)).await? {
                        found = Some(ip);
                        break;
                    }
                }
                let ip = found.ok_or_else(|| {
                    ApiError::Internal("failed to allocate a serviceIP: range is full".into())
                })?;
                reserved.push(ip_key(&ip));
                set_ip(service, &ip);
            }
        }
        let (low, high) = ranges.node_ports;
        for (i, wanted) in &needs.node_ports {
            let port = match wanted {
                Some(p) if self.holds(&port_key(*p), owner).await => continue,
                Some(p) => {
                    let field = format!("spec.ports[{i}].nodePort");
                    if !(low..=high).contains(p) {
                        causes.push(invalid(field, p.to_string(), format!(
                            "provided port is not in the valid range. The range of valid ports is {low}-{high}"
                        )));
                        continue;
                    }
                    if !self.reserve(&port_key(*p), record.clone()).await? {
                        let detail = "provided port is already allocated".to_string();
                        causes.push(invalid(field, p.to_string(), detail));
                        continue;
                    }
                    *p
                }
                None => {
                    let mut found = None;
                    for _ in 0..ATTEMPTS {
                        let p = rand::thread_rng().gen_range(low..=high);
                        if self.reserve(&port_key(p), record.clone()).await? {
                            found = Some(p);
                            break;
                        }
                    }
                    found.ok_or_else(|| {
                        ApiError::Internal("failed to allocate a nodePort: range is full".into())
                    })?
                }
            };
            reserved.push(port_key(port));
            service["spec"]["ports"][*i]["nodePort"] = json!(port);
        }
        Ok(causes)
    }

    /// Whether the allocation at `key` is `owner`'s.
    async fn holds(&self, key: &str, owner: &Value) -> bool {
        match self.registry.get(key).await {
            Ok((Some(stored), _)) => serde_json::from_slice::<Value>(&stored.value)
                .is_ok_and(|v| v.pointer("/spec/parentRef") == Some(owner)),
            _ => false,
        }
    }

    /// Creates `key` if nobody has: false if somebody has.
    async fn reserve(&self, key: &str, value: Value) -> Result<bool, ApiError> {
        let bytes = serde_json::to_vec(&value).expect("a JSON value encodes");
        Ok(matches!(
            self.registry.swap(key, 0, bytes, 0).await?,
            Swap::Done { .. }
        ))
    }

    /// Releases allocations (best effort: what is left, the repair releases).
    pub async fn release(&self, keys: &[String]) {
        for key in keys {
            if let Ok((Some(stored), _)) = self.registry.get(key).await {
                let _ = self.registry.delete(key, stored.mod_revision).await;
            }
        }
    }

    /// Releases the allocations no Service holds any more (kube's repair controllers for
    /// cluster IPs and node ports): those made more than a grace period ago whose Service is
    /// gone or holds another.
    pub async fn repair_service_allocations(&self) -> Result<(), ApiError> {
        // Seconds since the epoch (jiff's SystemTime conversion needs its `std` feature, which
        // only dev-dependencies turn on).
        let now = self
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for resource in ["ipaddresses", "servicenodeports"] {
            let page = self
                .registry
                .list(&list_prefix(resource, None), None, 0, 0)
                .await?;
            for stored in page.items {
                let Ok(value) = serde_json::from_slice::<Value>(&stored.value) else {
                    continue;
                };
                let made = value["metadata"]["creationTimestamp"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok());
                if made.is_some_and(|t| now - t.as_second() < ORPHAN_GRACE_SECONDS) {
                    continue;
                }
                let owner = &value["spec"]["parentRef"];
                let service_key = object_key(
                    "services",
                    owner["namespace"].as_str(),
                    owner["name"].as_str().unwrap_or_default(),
                );
                let key = String::from_utf8_lossy(&stored.key).into_owned();
                let still_held = match self.registry.get(&service_key).await? {
                    (Some(service), _) => serde_json::from_slice::<Value>(&service.value)
                        .is_ok_and(|s| held(&s).contains(&key)),
                    (None, _) => false,
                };
                if !still_held {
                    let _ = self.registry.delete(&key, stored.mod_revision).await;
                }
            }
        }
        Ok(())
    }
}

fn set_ip(service: &mut Value, ip: &str) {
    let spec = &mut service["spec"];
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    spec["ipFamilies"] = json!(["IPv4"]);
}

/// An allocation's record: its owner, and when it was made (for the repair's grace).
fn record(owner: &Value, api: &Api) -> Value {
    json!({
        "metadata": {"creationTimestamp": rfc3339(api.clock.now())},
        "spec": {"parentRef": owner},
    })
}

/// An IP's record, as kube 1.33's allocator keeps it: a networking.k8s.io/v1 IPAddress.
fn ip_address(ip: &str, record: &Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip,
            "creationTimestamp": record["metadata"]["creationTimestamp"],
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": record["spec"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_kube_apiserver_reads_them() {
        let r = ServiceRanges::parse("10.96.5.7/12", "30000-30010").unwrap();
        assert_eq!((r.network, r.prefix), (Ipv4Addr::new(10, 96, 0, 0), 12));
        assert_eq!(r.first(), Ipv4Addr::new(10, 96, 0, 1));
        assert!(r.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!r.contains(Ipv4Addr::new(10, 112, 0, 1)));
        assert_eq!(r.node_ports, (30000, 30010));
        for _ in 0..200 {
            let ip = r.any_ip(&mut rand::thread_rng());
            assert!(r.contains(ip) && ip != r.first() && ip != r.network, "{ip}");
        }
        assert!(ServiceRanges::parse("10.43.0.0", "30000-32767").is_err());
        assert!(ServiceRanges::parse("10.43.0.0/31", "30000-32767").is_err());
        assert!(ServiceRanges::parse("10.43.0.0/16", "32767-30000").is_err());
        assert_eq!(
            ServiceRanges::parse("10.43.0.0/16", "30000-32767").unwrap(),
            ServiceRanges::default()
        );
    }

    #[test]
    fn what_a_service_needs() {
        let svc = |spec: Value| json!({"spec": spec});
        let ports = json!([{"port": 80}, {"port": 443, "nodePort": 30443}]);
        assert_eq!(
            needs(&svc(json!({"type": "ClusterIP", "ports": ports}))),
            Needs {
                cluster_ip: Some(None),
                node_ports: vec![]
            }
        );
        assert_eq!(
            needs(&svc(
                json!({"type": "NodePort", "clusterIP": "10.43.0.9", "ports": ports})
            )),
            Needs {
                cluster_ip: Some(Some("10.43.0.9".into())),
                node_ports: vec![(0, None), (1, Some(30443))]
            }
        );
        let headless = needs(&svc(json!({"type": "ClusterIP", "clusterIP": "None"})));
        assert_eq!(headless, Needs::default());
        assert_eq!(
            needs(&svc(json!({"type": "ExternalName"}))),
            Needs::default()
        );
        let lb =
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": ports});
        assert!(needs(&svc(lb)).node_ports.is_empty());
    }

    #[test]
    fn an_update_keeps_the_address_and_may_not_change_it() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.43.0.9",
            "clusterIPs": ["10.43.0.9"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"type": "NodePort",
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]}});
        carry_over(&old, &mut new).unwrap();
        assert_eq!(new["spec"]["clusterIP"], "10.43.0.9");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.9"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
        assert_eq!(
            held(&new),
            [
                "/registry/ipaddresses/10.43.0.9",
                "/registry/servicenodeports/30080"
            ]
        );
        let mut moved = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.43.0.10"}});
        let err = carry_over(&old, &mut moved).unwrap_err();
        assert_eq!(err.field, "spec.clusterIPs[0]");
        assert_eq!(err.detail, "may not change once set");
    }
}
