use super::*;
use crate::controllers::testutil::{labels, owner, t, NS};
use k8s_openapi::api::apps::v1::{DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, NodeSpec, PodCondition, PodSpec, PodStatus, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::SignedDuration;

const DS_UID: &str = "ds-uid";

fn ds() -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta {
            name: Some("agent".into()),
            namespace: Some(NS.into()),
            uid: Some(DS_UID.into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "agent")])),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", "agent")])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("agent:1".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn with_strategy(mut d: DaemonSet, unavailable: IntOrString, surge: IntOrString) -> DaemonSet {
    if let Some(spec) = d.spec.as_mut() {
        spec.update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_unavailable: Some(unavailable),
                max_surge: Some(surge),
            }),
        });
    }
    d
}

fn set_image(d: &mut DaemonSet, image: &str) {
    if let Some(c) = d
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        c.image = Some(image.into());
    }
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
}

fn node(name: &str, lbls: &[(&str, &str)], taints: &[(&str, &str)]) -> Arc<Node> {
    Arc::new(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(lbls)),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then(|| {
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        value: None,
                        time_added: None,
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        status: None,
    })
}

fn nodes(n: usize) -> Vec<Arc<Node>> {
    (1..=n).map(|i| node(&format!("n{i}"), &[], &[])).collect()
}

/// A running, ready daemon pod of `d` bound to `node`, created at `at`.
fn dpod(d: &DaemonSet, name: &str, node: &str, at: i64) -> Pod {
    let hash = compute_hash(
        &d.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default(),
        None,
    );
    let mut p = new_pod(d, node, &hash).unwrap_or_default();
    p.metadata.name = Some(name.into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.creation_timestamp = Some(Time(t(at)));
    p.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(t(at))),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

fn arcs(v: Vec<Pod>) -> Vec<Arc<Pod>> {
    v.into_iter().map(Arc::new).collect()
}

#[test]
fn creates_one_pinned_pod_per_eligible_node() {
    let d = ds();
    let plan = reconcile(&d, &nodes(3), &[], t(100));
    assert_eq!(plan.create, vec!["n1", "n2", "n3"]);
    assert!(plan.delete.is_empty());
    let pod = new_pod(&d, "n2", &plan.hash).expect("pod");
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
    let spec = pod.spec.clone().unwrap_or_default();
    assert!(spec.node_name.is_none(), "placed by the scheduler");
    assert_eq!(target_node_name(&pod).as_deref(), Some("n2"));
    let l = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get(REVISION_LABEL), Some(&plan.hash));
    assert_eq!(
        l.get(TEMPLATE_GENERATION_LABEL).map(String::as_str),
        Some("1")
    );
    assert_eq!(l.get("app").map(String::as_str), Some("agent"));
    assert_eq!(spec.tolerations.map(|t| t.len()), Some(6));
    let cref = controller_ref(&pod.metadata).cloned().unwrap_or_default();
    assert_eq!(
        (cref.kind.as_str(), cref.uid.as_str()),
        ("DaemonSet", DS_UID)
    );
    let st = plan.status.expect("status");
    assert_eq!(st.desired_number_scheduled, 3);
    assert_eq!(st.current_number_scheduled, 0);
    assert_eq!(st.number_unavailable, Some(3));
    assert_eq!(st.observed_generation, Some(1));
}

#[test]
fn node_selector_and_required_affinity_restrict_nodes() {
    let mut d = ds();
    if let Some(ps) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.node_selector = Some(labels(&[("role", "edge")]));
    }
    let ns = vec![node("a", &[("role", "edge")], &[]), node("b", &[], &[])];
    assert_eq!(reconcile(&d, &ns, &[], t(0)).create, vec!["a"]);
    let mut d = ds();
    if let Some(ps) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.affinity = Some(crate::controllers::nodeaffinity::pin_to_node(None, "b"));
    }
    assert_eq!(reconcile(&d, &ns, &[], t(0)).create, vec!["b"]);
    // spec.nodeName in the template pins the set to one node.
    let mut d = ds();
    if let Some(ps) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.node_name = Some("a".into());
    }
    assert_eq!(reconcile(&d, &ns, &[], t(0)).create, vec!["a"]);
}

#[test]
fn taints_need_tolerations_except_the_automatic_ones() {
    let ns = vec![
        node("plain", &[], &[]),
        node("gpu", &[], &[("gpu", "NoSchedule")]),
        node(
            "notready",
            &[],
            &[("node.kubernetes.io/not-ready", "NoExecute")],
        ),
        node(
            "cordoned",
            &[],
            &[("node.kubernetes.io/unschedulable", "NoSchedule")],
        ),
        node(
            "unreach",
            &[],
            &[("node.kubernetes.io/unreachable", "NoExecute")],
        ),
        node(
            "pressure",
            &[],
            &[("node.kubernetes.io/disk-pressure", "NoSchedule")],
        ),
        node(
            "net",
            &[],
            &[("node.kubernetes.io/network-unavailable", "NoSchedule")],
        ),
        node("soft", &[], &[("x", "PreferNoSchedule")]),
    ];
    let plan = reconcile(&ds(), &ns, &[], t(0));
    assert_eq!(
        plan.create,
        vec!["plain", "notready", "cordoned", "unreach", "pressure", "soft"]
    );
    let mut d = ds();
    if let Some(ps) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.host_network = Some(true);
        ps.tolerations = Some(vec![Toleration {
            key: Some("gpu".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
    }
    let plan = reconcile(&d, &ns, &[], t(0));
    assert_eq!(plan.create.len(), 8);
}

#[test]
fn untolerated_no_execute_evicts_but_no_schedule_keeps_running_pod() {
    let d = ds();
    let ns = vec![
        node("evict", &[], &[("dedicated", "NoExecute")]),
        node("keep", &[], &[("dedicated", "NoSchedule")]),
    ];
    let pods = arcs(vec![dpod(&d, "p1", "evict", 0), dpod(&d, "p2", "keep", 0)]);
    assert_eq!(node_should_run(&d, &ns[0]), (false, false));
    assert_eq!(node_should_run(&d, &ns[1]), (false, true));
    let plan = reconcile(&d, &ns, &pods, t(100));
    assert!(plan.create.is_empty());
    assert_eq!(plan.delete, vec!["p1"]);
    let st = plan.status.expect("status");
    assert_eq!(st.desired_number_scheduled, 0);
    assert_eq!(st.number_misscheduled, 2);
}

#[test]
fn extra_pods_on_a_node_keep_the_oldest_scheduled_one() {
    let d = ds();
    let mut unscheduled = dpod(&d, "p0", "n1", 0);
    unscheduled
        .spec
        .get_or_insert_with(Default::default)
        .node_name = None;
    let pods = arcs(vec![
        dpod(&d, "p3", "n1", 30),
        dpod(&d, "p1", "n1", 10),
        unscheduled,
        dpod(&d, "p2", "n1", 20),
    ]);
    let plan = reconcile(&d, &nodes(1), &pods, t(100));
    // p0 is the oldest but unscheduled: scheduled pods sort first.
    assert_eq!(plan.delete, vec!["p2", "p3", "p0"]);
    assert!(plan.create.is_empty());
}

#[test]
fn failed_and_succeeded_pods_are_deleted_with_events() {
    let d = ds();
    let mut failed = dpod(&d, "p1", "n1", 0);
    failed.status.get_or_insert_with(Default::default).phase = Some("Failed".into());
    let mut done = dpod(&d, "p2", "n2", 0);
    done.status.get_or_insert_with(Default::default).phase = Some("Succeeded".into());
    let plan = reconcile(&d, &nodes(2), &arcs(vec![failed, done]), t(100));
    assert_eq!(plan.delete, vec!["p1", "p2"]);
    assert!(plan.create.is_empty(), "replacement comes on the next sync");
    assert_eq!(plan.events.len(), 2);
    assert_eq!(plan.events[0].reason, "FailedDaemonPod");
    assert_eq!(
        plan.events[0].message,
        "Found failed daemon pod default/p1 on node n1, will try to kill it"
    );
    assert_eq!(plan.events[1].reason, "SucceededDaemonPod");
    // A failed pod already being deleted is ignored: the node gets a new pod.
    let mut gone = dpod(&d, "p1", "n1", 0);
    gone.status.get_or_insert_with(Default::default).phase = Some("Failed".into());
    gone.metadata.deletion_timestamp = Some(Time(t(1)));
    assert_eq!(
        reconcile(&d, &nodes(1), &arcs(vec![gone]), t(100)).create,
        vec!["n1"]
    );
}

#[test]
fn unscheduled_pods_for_missing_nodes_are_deleted() {
    let d = ds();
    let mut orphaned = dpod(&d, "ghost", "gone", 0);
    orphaned.spec.get_or_insert_with(Default::default).node_name = None;
    let bound = dpod(&d, "bound", "gone2", 0);
    let plan = reconcile(&d, &nodes(1), &arcs(vec![orphaned, bound]), t(100));
    assert_eq!(plan.create, vec!["n1"]);
    assert_eq!(plan.delete, vec!["ghost"]);
}

#[test]
fn adopts_orphans_and_releases_mismatched_pods() {
    let d = ds();
    let mut orphan = dpod(&d, "o", "n1", 0);
    orphan.metadata.owner_references = None;
    let mut stray = dpod(&d, "s", "n2", 0);
    stray.metadata.labels = Some(labels(&[("app", "other")]));
    let mut foreign = dpod(&d, "f", "n2", 0);
    foreign.metadata.owner_references = Some(vec![owner("x", "ReplicaSet")]);
    let plan = reconcile(
        &d,
        &nodes(2),
        &arcs(vec![orphan.clone(), stray, foreign]),
        t(100),
    );
    assert_eq!(plan.adopt, vec!["o"]);
    assert_eq!(plan.release, vec!["s"]);
    assert_eq!(plan.create, vec!["n2"]);
    let patch = adopt_patch(&d, &orphan);
    assert_eq!(patch["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert_eq!(patch["metadata"]["uid"], "uid-o");
}

#[test]
fn status_counts_and_requeue_for_min_ready_seconds() {
    let mut d = ds();
    if let Some(s) = d.spec.as_mut() {
        s.min_ready_seconds = Some(30);
    }
    let mut pending = dpod(&d, "p2", "n2", 0);
    pending.status = Some(PodStatus {
        phase: Some("Pending".into()),
        ..Default::default()
    });
    let mut stale = dpod(&d, "p3", "n3", 0);
    stale.metadata.labels = Some(labels(&[("app", "agent"), (REVISION_LABEL, "old")]));
    let pods = arcs(vec![dpod(&d, "p1", "n1", 90), pending, stale]);
    let plan = reconcile(&d, &nodes(4), &pods, t(100));
    let st = plan.status.clone().expect("status");
    assert_eq!(st.desired_number_scheduled, 4);
    assert_eq!(st.current_number_scheduled, 3);
    assert_eq!(st.number_ready, 2);
    // p1 ready since 90: not available for 30s yet; p3 ready since 0 is.
    assert_eq!(st.number_available, Some(1));
    assert_eq!(st.number_unavailable, Some(3));
    assert_eq!(st.updated_number_scheduled, Some(2));
    assert_eq!(st.number_misscheduled, 0);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    // Writing the status back makes the next computation a no-op.
    d.status = Some(st);
    assert!(status(&d, &nodes(4), &pods, true, t(100)).is_none());
    // Not raising observedGeneration: a generation bump alone does not
    // reset it.
    d.metadata.generation = Some(5);
    let s = status(&d, &nodes(4), &pods, false, t(100)).expect("status");
    assert_eq!(s.observed_generation, Some(1));
}

#[test]
fn updated_by_hash_or_template_generation() {
    let d = ds();
    let mut p = dpod(&d, "p", "n1", 0);
    p.metadata.labels = Some(labels(&[(TEMPLATE_GENERATION_LABEL, "1")]));
    assert!(is_pod_updated(&p, "h", Some(1)));
    assert!(!is_pod_updated(&p, "h", Some(2)));
    p.metadata.labels = Some(labels(&[(REVISION_LABEL, "h")]));
    assert!(is_pod_updated(&p, "h", Some(2)));
    assert!(!is_pod_updated(&p, "", None));
    let mut annotated = ds();
    annotated.metadata.annotations = Some(labels(&[(TEMPLATE_GENERATION_ANNOTATION, "7")]));
    assert_eq!(template_generation(&annotated), Some(7));
    assert_eq!(template_generation(&d), Some(1));
}

/// Fake cluster: applies plans; created pods start Running+Ready at `now`.
fn apply(d: &DaemonSet, pods: &mut Vec<Pod>, plan: &Plan, now: i64, seq: &mut u32) {
    pods.retain(|p| !plan.delete.contains(&name(p)));
    for n in &plan.create {
        *seq += 1;
        let mut p = dpod(d, &format!("agent-{seq}"), n, now);
        p.metadata.labels = new_pod(d, n, &plan.hash).and_then(|p| p.metadata.labels);
        pods.push(p);
    }
}

fn images(pods: &[Pod]) -> Vec<String> {
    let mut v: Vec<String> = pods
        .iter()
        .map(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL).cloned())
                .unwrap_or_default()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn rolling_update_replaces_within_max_unavailable() {
    let mut d = ds();
    let mut pods: Vec<Pod> = (1..=4)
        .map(|i| dpod(&d, &format!("old{i}"), &format!("n{i}"), 0))
        .collect();
    set_image(&mut d, "agent:2");
    let ns = nodes(4);
    // Default budget: one node at a time.
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(100));
    assert!(plan.create.is_empty());
    assert_eq!(plan.delete, vec!["old1"]);
    let mut seq = 0;
    apply(&d, &mut pods, &plan, 100, &mut seq);
    // The manage step recreates the pod on n1 at the new hash.
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(101));
    assert_eq!(plan.create, vec!["n1"]);
    assert!(plan.delete.is_empty());
    apply(&d, &mut pods, &plan, 101, &mut seq);
    // Next old pod only once the new one is available (minReadySeconds 0:
    // ready is enough).
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(102));
    assert_eq!(plan.delete, vec!["old2"]);
    let mut rounds = 0;
    let mut plan = plan;
    while !(plan.create.is_empty() && plan.delete.is_empty()) {
        apply(&d, &mut pods, &plan, 103 + rounds, &mut seq);
        plan = reconcile(&d, &ns, &arcs(pods.clone()), t(104 + rounds));
        rounds += 1;
        assert!(rounds < 20);
    }
    let hash = plan.hash.clone();
    assert!(images(&pods).iter().all(|h| *h == hash));
    assert_eq!(
        plan.status.and_then(|s| s.updated_number_scheduled),
        Some(4)
    );
}

#[test]
fn rolling_update_budget_counts_unavailable_new_pods() {
    let mut d = with_strategy(ds(), IntOrString::String("50%".into()), IntOrString::Int(0));
    let pods: Vec<Pod> = (1..=4)
        .map(|i| dpod(&d, &format!("old{i}"), &format!("n{i}"), 0))
        .collect();
    set_image(&mut d, "agent:2");
    let ns = nodes(4);
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(100));
    assert_eq!(plan.delete, vec!["old1", "old2"]);
    // One new pod not ready yet (n1), one new pod ready (n2): one slot of
    // the budget is taken, so only one more old pod goes.
    let mk_new = |name: &str, node: &str, ready: bool| {
        let mut p = dpod(&d, name, node, 100);
        p.metadata.labels = new_pod(&d, node, &plan.hash).and_then(|p| p.metadata.labels);
        if !ready {
            p.status = Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            });
        }
        p
    };
    let mut current = pods[2..].to_vec();
    current.push(mk_new("new1", "n1", false));
    current.push(mk_new("new2", "n2", true));
    let plan2 = reconcile(&d, &ns, &arcs(current.clone()), t(101));
    assert!(plan2.create.is_empty());
    assert_eq!(plan2.delete, vec!["old3"]);
    // Both new pods unavailable: the budget is used up.
    current.pop();
    current.push(mk_new("new2", "n2", false));
    let plan2 = reconcile(&d, &ns, &arcs(current), t(101));
    assert!(plan2.create.is_empty() && plan2.delete.is_empty());
    // An unavailable old pod is replaced even beyond the budget.
    let mut sick = pods.clone();
    sick[3].status = Some(PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    let d1 = with_strategy(d.clone(), IntOrString::Int(1), IntOrString::Int(0));
    let plan3 = reconcile(&d1, &ns, &arcs(sick), t(100));
    assert_eq!(plan3.delete, vec!["old4"]);
}

#[test]
fn max_surge_creates_new_pod_before_removing_old() {
    let mut d = with_strategy(ds(), IntOrString::Int(0), IntOrString::Int(1));
    let mut pods: Vec<Pod> = (1..=2)
        .map(|i| dpod(&d, &format!("old{i}"), &format!("n{i}"), 0))
        .collect();
    set_image(&mut d, "agent:2");
    let ns = nodes(2);
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(100));
    assert_eq!(plan.create, vec!["n1"]);
    assert!(plan.delete.is_empty());
    let mut seq = 0;
    apply(&d, &mut pods, &plan, 100, &mut seq);
    // Both pods on n1 are kept while the new one is not available.
    if let Some(p) = pods.iter_mut().find(|p| name(p) == "agent-1") {
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        });
    }
    let plan = reconcile(&d, &ns, &arcs(pods.clone()), t(101));
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    // Once available, the manage step deletes the old pod.
    let pods2: Vec<Pod> = pods
        .iter()
        .map(|p| {
            if name(p) == "agent-1" {
                let mut q = dpod(&d, "agent-1", "n1", 101);
                q.metadata.labels = p.metadata.labels.clone();
                q
            } else {
                p.clone()
            }
        })
        .collect();
    let plan = reconcile(&d, &ns, &arcs(pods2), t(102));
    assert_eq!(plan.delete, vec!["old1"]);
}

#[test]
fn on_delete_never_replaces_old_pods() {
    let mut d = ds();
    if let Some(s) = d.spec.as_mut() {
        s.update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: None,
        });
    }
    let pods = arcs(vec![dpod(&d, "old1", "n1", 0)]);
    set_image(&mut d, "agent:2");
    let plan = reconcile(&d, &nodes(1), &pods, t(100));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(
        plan.status.and_then(|s| s.updated_number_scheduled),
        Some(0)
    );
}

#[test]
fn empty_selector_and_deletion_do_nothing() {
    let mut d = ds();
    if let Some(s) = d.spec.as_mut() {
        s.selector = LabelSelector::default();
    }
    let plan = reconcile(&d, &nodes(2), &[], t(0));
    assert!(plan.create.is_empty() && plan.status.is_none());
    assert_eq!(plan.events[0].reason, "SelectingAll");
    let mut d = ds();
    d.metadata.deletion_timestamp = Some(Time(t(0)));
    let plan = reconcile(&d, &nodes(2), &[], t(0));
    assert!(plan.create.is_empty() && plan.status.is_none() && plan.events.is_empty());
}

#[test]
fn creates_are_capped_at_burst_replicas_and_batched() {
    let plan = reconcile(&ds(), &nodes(300), &[], t(0));
    assert_eq!(plan.create.len(), BURST_REPLICAS);
    let batches: Vec<usize> = slow_start_batches(10).collect();
    assert_eq!(batches, vec![1, 2, 4, 3]);
}

#[test]
fn hash_is_stable_and_depends_on_template_and_collisions() {
    let d = ds();
    let tpl = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    assert_eq!(compute_hash(&tpl, None), compute_hash(&tpl.clone(), None));
    assert_ne!(compute_hash(&tpl, None), compute_hash(&tpl, Some(0)));
    let mut d2 = d.clone();
    set_image(&mut d2, "agent:9");
    let tpl2 = d2
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    assert_ne!(compute_hash(&tpl, None), compute_hash(&tpl2, None));
    assert_eq!(fnv32a(b"a"), 0xe40c_292c);
    let _ = SignedDuration::ZERO;
}

#[test]
fn invalid_budget_is_an_error() {
    let mut d = with_strategy(ds(), IntOrString::String("x".into()), IntOrString::Int(0));
    let pods = arcs(vec![dpod(&d, "old1", "n1", 0)]);
    set_image(&mut d, "agent:2");
    let plan = reconcile(&d, &nodes(1), &pods, t(100));
    assert!(plan.error.is_some());
    assert!(plan.delete.is_empty());
}
