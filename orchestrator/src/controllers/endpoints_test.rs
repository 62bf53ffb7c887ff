use super::*;
use crate::controllers::testutil::{deleting, labels, pod, ready, t, with_phase, NS};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodIP, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;

fn svc(ports: Vec<ServicePort>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some(NS.into()),
            uid: Some("svc-uid".into()),
            labels: Some(labels(&[("tier", "fe")])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(&[("app", "web")])),
            cluster_ip: Some("10.0.0.10".into()),
            ip_families: Some(vec!["IPv4".into()]),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    }
}

fn sport(name: &str, port: i32, target: IntOrString) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(target),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn http() -> Vec<ServicePort> {
    vec![sport("http", 80, IntOrString::Int(8080))]
}

/// A pod selected by `svc`, with an IP and a container port named `http`.
fn wpod(name: &str, ip: &str, http_port: i32, is_ready: bool) -> Arc<Pod> {
    let mut p = pod(name, &[("app", "web")]);
    if let Some(st) = p.status.as_mut() {
        st.pod_ip = Some(ip.into());
        st.pod_ips = Some(vec![PodIP { ip: ip.into() }]);
    }
    if let Some(spec) = p.spec.as_mut() {
        spec.containers = vec![Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: http_port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }];
    }
    Arc::new(if is_ready { ready(p, Some(t(0))) } else { p })
}

fn subsets(e: &Endpoints) -> Vec<EndpointSubset> {
    e.subsets.clone().unwrap_or_default()
}

fn ips(a: &Option<Vec<EndpointAddress>>) -> Vec<String> {
    a.iter().flatten().map(|a| a.ip.clone()).collect()
}

#[test]
fn no_endpoints_without_selector_or_for_external_name() {
    let mut s = svc(http());
    let pods = [wpod("a", "10.1.0.1", 8080, true)];
    if let Some(spec) = s.spec.as_mut() {
        spec.selector = Some(BTreeMap::new());
    }
    assert!(endpoints_for(&s, &pods).is_none());
    assert!(endpoint_slices_for(&s, &pods, &[]).create.is_empty());
    let mut s = svc(http());
    if let Some(spec) = s.spec.as_mut() {
        spec.type_ = Some("ExternalName".into());
    }
    assert!(endpoints_for(&s, &pods).is_none());
}

#[test]
fn ready_pod_is_an_address_with_node_and_target() {
    let e = endpoints_for(&svc(http()), &[wpod("a", "10.1.0.1", 8080, true)]).expect("eps");
    assert_eq!(e.metadata.name.as_deref(), Some("web"));
    let s = subsets(&e);
    assert_eq!(s.len(), 1);
    let a = &s[0].addresses.as_ref().expect("addresses")[0];
    assert_eq!(a.ip, "10.1.0.1");
    assert_eq!(a.node_name.as_deref(), Some("node-a"));
    let r = a.target_ref.as_ref().expect("ref");
    assert_eq!(
        (
            r.kind.as_deref(),
            r.namespace.as_deref(),
            r.name.as_deref(),
            r.uid.as_deref()
        ),
        (Some("Pod"), Some(NS), Some("a"), Some("uid-a"))
    );
    let p = &s[0].ports.as_ref().expect("ports")[0];
    assert_eq!(
        (p.name.as_deref(), p.port, p.protocol.as_deref()),
        (Some("http"), 8080, Some("TCP"))
    );
    assert!(s[0].not_ready_addresses.is_none());
}

#[test]
fn not_ready_terminating_and_ipless_pods() {
    let pods = [
        wpod("ready", "10.1.0.1", 8080, true),
        wpod("unready", "10.1.0.2", 8080, false),
        Arc::new(deleting(
            (*wpod("leaving", "10.1.0.3", 8080, false)).clone(),
        )),
        Arc::new(with_phase(
            (*wpod("done", "10.1.0.4", 8080, true)).clone(),
            "Succeeded",
        )),
        pod("noip", &[("app", "web")]).into(),
    ];
    let s = subsets(&endpoints_for(&svc(http()), &pods).expect("eps"));
    assert_eq!(s.len(), 1);
    assert_eq!(ips(&s[0].addresses), vec!["10.1.0.1"]);
    assert_eq!(ips(&s[0].not_ready_addresses), vec!["10.1.0.2"]);
    // publishNotReadyAddresses: every live pod ready, terminating included.
    let mut publish = svc(http());
    if let Some(spec) = publish.spec.as_mut() {
        spec.publish_not_ready_addresses = Some(true);
    }
    let s = subsets(&endpoints_for(&publish, &pods).expect("eps"));
    assert_eq!(
        ips(&s[0].addresses),
        vec!["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    );
    assert!(s[0].not_ready_addresses.is_none());
}

#[test]
fn named_target_port_resolves_per_pod() {
    let s = svc(vec![sport("web", 80, IntOrString::String("http".into()))]);
    let mut udp = (*wpod("udp", "10.1.0.3", 9000, true)).clone();
    if let Some(c) = udp
        .spec
        .as_mut()
        .and_then(|s| s.containers[0].ports.as_mut())
    {
        c[0].protocol = Some("UDP".into());
    }
    let pods = [
        wpod("a", "10.1.0.1", 8080, true),
        wpod("b", "10.1.0.2", 9090, true),
        Arc::new(udp),
    ];
    let subs = subsets(&endpoints_for(&s, &pods).expect("eps"));
    assert_eq!(subs.len(), 2);
    let by_port: BTreeMap<i32, Vec<String>> = subs
        .iter()
        .map(|x| (x.ports.as_ref().expect("ports")[0].port, ips(&x.addresses)))
        .collect();
    assert_eq!(by_port.get(&8080), Some(&vec!["10.1.0.1".to_string()]));
    assert_eq!(by_port.get(&9090), Some(&vec!["10.1.0.2".to_string()]));
    // Slices group endpoints by their resolved ports too; a pod resolving
    // none lands in a slice without ports, as upstream.
    let changes = endpoint_slices_for(&s, &pods, &[]);
    assert_eq!(changes.create.len(), 3);
    let portless = changes
        .create
        .iter()
        .find(|x| x.ports == Some(vec![]))
        .expect("portless");
    assert_eq!(portless.endpoints[0].addresses, vec!["10.1.0.3"]);
}

#[test]
fn repack_merges_ports_and_not_ready_wins() {
    let a = |ip: &str| EndpointAddress {
        ip: ip.into(),
        ..Default::default()
    };
    let p = |n: i32| EndpointPort {
        port: n,
        ..Default::default()
    };
    let input = vec![
        EndpointSubset {
            addresses: Some(vec![a("1")]),
            ports: Some(vec![p(80)]),
            ..Default::default()
        },
        EndpointSubset {
            addresses: Some(vec![a("1")]),
            ports: Some(vec![p(443)]),
            ..Default::default()
        },
        EndpointSubset {
            addresses: Some(vec![a("2")]),
            ports: Some(vec![p(80)]),
            ..Default::default()
        },
        EndpointSubset {
            not_ready_addresses: Some(vec![a("2")]),
            ports: Some(vec![p(80)]),
            ..Default::default()
        },
    ];
    let out = repack_subsets(&input);
    assert_eq!(out.len(), 2);
    let port = |s: &EndpointSubset| s.ports.as_ref().map(|p| p[0].port);
    let p80 = out.iter().find(|s| port(s) == Some(80)).expect("80");
    assert_eq!(ips(&p80.addresses), vec!["1"]);
    assert_eq!(ips(&p80.not_ready_addresses), vec!["2"], "not ready wins");
    let p443 = out.iter().find(|s| port(s) == Some(443)).expect("443");
    assert_eq!(ips(&p443.addresses), vec!["1"]);
    // Addresses offering the same ports share one subset.
    let same = vec![
        EndpointSubset {
            addresses: Some(vec![a("1")]),
            ports: Some(vec![p(80)]),
            ..Default::default()
        },
        EndpointSubset {
            addresses: Some(vec![a("2")]),
            ports: Some(vec![p(80)]),
            ..Default::default()
        },
        EndpointSubset {
            addresses: Some(vec![a("1"), a("2")]),
            ports: Some(vec![p(443)]),
            ..Default::default()
        },
    ];
    let out = repack_subsets(&same);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ports.as_ref().map(Vec::len), Some(2));
    assert_eq!(ips(&out[0].addresses), vec!["1", "2"]);
}

#[test]
fn hostname_labels_and_headless_service_without_ports() {
    let mut s = svc(vec![]);
    if let Some(spec) = s.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
    }
    let mut p = (*wpod("a", "10.1.0.1", 8080, true)).clone();
    if let Some(spec) = p.spec.as_mut() {
        spec.hostname = Some("a-0".into());
        spec.subdomain = Some("web".into());
    }
    let e = endpoints_for(&s, &[Arc::new(p)]).expect("eps");
    let l = e.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get("tier").map(String::as_str), Some("fe"));
    assert_eq!(l.get(HEADLESS_LABEL).map(String::as_str), Some(""));
    let sub = subsets(&e);
    assert!(sub[0].ports.is_none());
    assert_eq!(
        sub[0].addresses.as_ref().expect("a")[0].hostname.as_deref(),
        Some("a-0")
    );
    // A ClusterIP service without ports gets no subsets.
    let e = endpoints_for(&svc(vec![]), &[wpod("a", "10.1.0.1", 8080, true)]).expect("eps");
    assert!(e.subsets.is_none());
    assert!(!e
        .metadata
        .labels
        .unwrap_or_default()
        .contains_key(HEADLESS_LABEL));
}

#[test]
fn over_capacity_is_truncated_and_annotated() {
    let pods: Vec<Arc<Pod>> = (0..1005)
        .map(|i| {
            wpod(
                &format!("p{i}"),
                &format!("10.2.{}.{}", i / 250, i % 250),
                8080,
                i % 2 == 0,
            )
        })
        .collect();
    let e = endpoints_for(&svc(http()), &pods).expect("eps");
    let n: usize = subsets(&e)
        .iter()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(n, MAX_CAPACITY);
    let ready: usize = subsets(&e)
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert_eq!(ready, 503, "ready addresses are all kept");
    assert_eq!(
        e.metadata
            .annotations
            .and_then(|a| a.get(OVER_CAPACITY).cloned())
            .as_deref(),
        Some("truncated")
    );
}

#[test]
fn needs_update_ignores_noise_and_merge_keeps_metadata() {
    let s = svc(http());
    let desired = endpoints_for(&s, &[wpod("a", "10.1.0.1", 8080, true)]).expect("eps");
    let mut current = desired.clone();
    current.metadata.resource_version = Some("7".into());
    current.metadata.annotations = Some(labels(&[("note", "x"), (LAST_CHANGE_TRIGGER_TIME, "t")]));
    if let Some(r) = current
        .subsets
        .as_mut()
        .and_then(|s| s[0].addresses.as_mut())
        .and_then(|a| a[0].target_ref.as_mut())
    {
        r.resource_version = Some("99".into());
    }
    assert!(!needs_update(&current, &desired));
    let mut relabeled = current.clone();
    relabeled.metadata.labels = None;
    assert!(needs_update(&relabeled, &desired));
    let other = endpoints_for(&s, &[wpod("a", "10.1.0.9", 8080, true)]).expect("eps");
    assert!(needs_update(&current, &other));
    let merged = merge_into(&current, &other);
    assert_eq!(merged.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(merged.metadata.annotations, Some(labels(&[("note", "x")])));
    assert!(!needs_update(&merged, &other));
}

// ---- EndpointSlices ----

fn name_all(mut v: Vec<EndpointSlice>, prefix: &str) -> Vec<EndpointSlice> {
    for (i, s) in v.iter_mut().enumerate() {
        s.metadata.name = Some(format!("{prefix}{i}"));
        s.metadata.generate_name = None;
        s.metadata.resource_version = Some("1".into());
    }
    v
}

fn total(v: &[EndpointSlice]) -> usize {
    v.iter().map(|s| s.endpoints.len()).sum()
}

#[test]
fn new_slice_has_labels_owner_ports_and_conditions() {
    let pods = [
        wpod("a", "10.1.0.1", 8080, true),
        wpod("b", "10.1.0.2", 8080, false),
    ];
    let c = endpoint_slices_for(&svc(http()), &pods, &[]);
    assert_eq!((c.create.len(), c.update.len(), c.delete.len()), (1, 0, 0));
    let s = &c.create[0];
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(s.address_type, "IPv4");
    let l = s.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get(LABEL_SERVICE_NAME).map(String::as_str), Some("web"));
    assert_eq!(
        l.get(LABEL_MANAGED_BY).map(String::as_str),
        Some(MANAGED_BY)
    );
    assert_eq!(l.get("tier").map(String::as_str), Some("fe"));
    let o = &s.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (o.kind.as_str(), o.uid.as_str(), o.controller),
        ("Service", "svc-uid", Some(true))
    );
    let p = &s.ports.as_ref().expect("ports")[0];
    assert_eq!((p.name.as_deref(), p.port), (Some("http"), Some(8080)));
    let b = s
        .endpoints
        .iter()
        .find(|e| e.addresses == ["10.1.0.2"])
        .expect("b");
    let cond = b.conditions.clone().expect("conditions");
    assert_eq!(
        (cond.ready, cond.serving, cond.terminating),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(b.node_name.as_deref(), Some("node-a"));
    assert_eq!(
        b.target_ref.as_ref().and_then(|r| r.name.as_deref()),
        Some("b")
    );
}

#[test]
fn at_most_100_endpoints_per_slice_and_stable_when_applied() {
    let pods: Vec<Arc<Pod>> = (0..250)
        .map(|i| wpod(&format!("p{i}"), &format!("10.3.0.{i}"), 8080, true))
        .collect();
    let s = svc(http());
    let c = endpoint_slices_for(&s, &pods, &[]);
    assert_eq!(c.create.len(), 3);
    assert!(c
        .create
        .iter()
        .all(|s| s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE));
    assert_eq!(total(&c.create), 250);
    let applied = name_all(c.create, "web-");
    let again = endpoint_slices_for(&s, &pods, &applied);
    assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
}

#[test]
fn changes_update_slices_in_place() {
    let s = svc(http());
    let pods = vec![
        wpod("a", "10.1.0.1", 8080, true),
        wpod("b", "10.1.0.2", 8080, true),
    ];
    let applied = name_all(endpoint_slices_for(&s, &pods, &[]).create, "web-");
    // b turns unready, c replaces a.
    let pods2 = vec![
        wpod("b", "10.1.0.2", 8080, false),
        wpod("c", "10.1.0.3", 8080, true),
    ];
    let c = endpoint_slices_for(&s, &pods2, &applied);
    assert!(c.create.is_empty() && c.delete.is_empty());
    assert_eq!(c.update.len(), 1);
    assert_eq!(c.update[0].metadata.name.as_deref(), Some("web-0"));
    assert_eq!(c.update[0].metadata.resource_version.as_deref(), Some("1"));
    let addrs: Vec<&str> = c.update[0]
        .endpoints
        .iter()
        .map(|e| e.addresses[0].as_str())
        .collect();
    assert_eq!(addrs, vec!["10.1.0.2", "10.1.0.3"]);
}

#[test]
fn terminating_pods_stay_with_terminating_condition() {
    let leaving = Arc::new(deleting((*wpod("a", "10.1.0.1", 8080, true)).clone()));
    let c = endpoint_slices_for(&svc(http()), &[leaving], &[]);
    let cond = c.create[0].endpoints[0]
        .conditions
        .clone()
        .expect("conditions");
    assert_eq!(
        (cond.ready, cond.serving, cond.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn empty_service_keeps_one_placeholder() {
    let s = svc(http());
    let c = endpoint_slices_for(&s, &[], &[]);
    assert_eq!(c.create.len(), 1);
    assert!(c.create[0].endpoints.is_empty());
    assert_eq!(c.create[0].ports, Some(vec![]));
    let applied = name_all(c.create, "web-");
    let again = endpoint_slices_for(&s, &[], &applied);
    assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
    // Pods arrive: the placeholder (other ports) is recycled, not churned.
    let c = endpoint_slices_for(&s, &[wpod("a", "10.1.0.1", 8080, true)], &applied);
    assert!(c.create.is_empty() && c.delete.is_empty());
    assert_eq!(c.update.len(), 1);
    assert_eq!(c.update[0].metadata.name.as_deref(), Some("web-0"));
    assert_eq!(c.update[0].endpoints.len(), 1);
}

#[test]
fn foreign_and_stale_slices() {
    let s = svc(http());
    let pods = [wpod("a", "10.1.0.1", 8080, true)];
    let mine = name_all(endpoint_slices_for(&s, &pods, &[]).create, "web-");
    // Another controller's slice for the Service is ignored.
    let mut foreign = mine[0].clone();
    foreign.metadata.name = Some("custom".into());
    if let Some(l) = foreign.metadata.labels.as_mut() {
        l.insert(LABEL_MANAGED_BY.into(), "someone-else".into());
    }
    // A slice of an earlier Service with the same name (other uid) goes.
    let mut stale = mine[0].clone();
    stale.metadata.name = Some("stale".into());
    if let Some(o) = stale.metadata.owner_references.as_mut() {
        o[0].uid = "old-uid".into();
    }
    let all = vec![mine[0].clone(), foreign, stale];
    let c = endpoint_slices_for(&s, &pods, &all);
    assert!(c.create.is_empty() && c.update.is_empty());
    let gone: Vec<_> = c
        .delete
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(gone, vec!["stale".to_string()]);
}

#[test]
fn dual_stack_addresses_follow_the_families() {
    let mut s = svc(http());
    if let Some(spec) = s.spec.as_mut() {
        spec.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        spec.cluster_ip = Some("fd00::10".into());
    }
    let mut p = (*wpod("a", "10.1.0.1", 8080, true)).clone();
    if let Some(st) = p.status.as_mut() {
        st.pod_ips = Some(vec![
            PodIP {
                ip: "10.1.0.1".into(),
            },
            PodIP {
                ip: "fd00::1".into(),
            },
        ]);
    }
    let pods = [Arc::new(p)];
    // Endpoints use the primary (first) family only.
    let e = endpoints_for(&s, &pods).expect("eps");
    assert_eq!(ips(&subsets(&e)[0].addresses), vec!["fd00::1"]);
    // Slices: one per family.
    let c = endpoint_slices_for(&s, &pods, &[]);
    let mut got: Vec<(String, Vec<String>)> = c
        .create
        .iter()
        .map(|x| (x.address_type.clone(), x.endpoints[0].addresses.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("IPv4".to_string(), vec!["10.1.0.1".to_string()]),
            ("IPv6".to_string(), vec!["fd00::1".to_string()])
        ]
    );
}
