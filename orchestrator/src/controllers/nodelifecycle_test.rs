use super::*;
use crate::controllers::testutil::{deleting, pod, t};
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use std::sync::Arc;

const GRACE: Duration = NODE_MONITOR_GRACE_PERIOD;

fn cond(type_: &str, status: &str, heartbeat: i64) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        last_heartbeat_time: Some(Time(t(heartbeat))),
        last_transition_time: Some(Time(t(-1000))),
        reason: Some("KubeletReady".into()),
        message: None,
    }
}

/// A node whose kubelet posted Ready=`ready` with heartbeat `hb` (node clock).
fn node(ready: &str, hb: i64) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            creation_timestamp: Some(Time(t(-2000))),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            conditions: Some(vec![
                cond("Ready", ready, hb),
                cond("MemoryPressure", "False", hb),
                cond("DiskPressure", "False", hb),
                cond("PIDPressure", "False", hb),
                cond("NetworkUnavailable", "False", hb),
            ]),
            ..Default::default()
        }),
    }
}

fn lease(renew: i64) -> Lease {
    Lease {
        metadata: ObjectMeta::default(),
        spec: Some(LeaseSpec {
            renew_time: Some(MicroTime(t(renew))),
            ..Default::default()
        }),
    }
}

fn keys(ts: &[Taint]) -> Vec<(String, String)> {
    let mut v: Vec<_> = ts
        .iter()
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect();
    v.sort();
    v
}

fn with_taints(mut n: Node, ts: Vec<Taint>) -> Node {
    n.spec.get_or_insert_with(Default::default).taints = Some(ts);
    n
}

fn status_of<'a>(d: &'a NodeDecision, type_: &str) -> Option<&'a NodeCondition> {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

#[test]
fn fresh_heartbeats_keep_the_node_ready() {
    let mut obs = ObservedHealth::default();
    let d = node_status(&node("True", 0), None, &mut obs, GRACE, t(0));
    assert!(!d.set_ready_unknown && !d.mark_pods_not_ready && !d.taints_changed);
    assert_eq!(d.recheck_after, Some(GRACE));
    let d = node_status(&node("True", 30), None, &mut obs, GRACE, t(30));
    assert!(!d.set_ready_unknown);
    let d = node_status(&node("True", 60), None, &mut obs, GRACE, t(60));
    assert!(!d.set_ready_unknown);
    assert_eq!(obs.probe_timestamp, Some(t(60)));
}

#[test]
fn silence_past_grace_marks_unknown_taints_and_pods() {
    let mut obs = ObservedHealth::default();
    node_status(&node("True", 0), None, &mut obs, GRACE, t(0));
    // Exactly at the grace period: not yet (strictly after).
    let d = node_status(&node("True", 0), None, &mut obs, GRACE, t(40));
    assert!(!d.set_ready_unknown);
    let d = node_status(&node("True", 0), None, &mut obs, GRACE, t(41));
    assert!(d.set_ready_unknown && d.mark_pods_not_ready);
    for c in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let got = status_of(&d, c).expect(c);
        assert_eq!(got.status, "Unknown", "{c}");
        assert_eq!(got.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            got.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(got.last_transition_time, Some(Time(t(41))));
        assert_eq!(got.last_heartbeat_time, Some(Time(t(0))), "heartbeat kept");
    }
    assert_eq!(
        status_of(&d, "NetworkUnavailable").map(|c| c.status.as_str()),
        Some("False")
    );
    assert_eq!(
        keys(&d.taints),
        vec![
            (TAINT_UNREACHABLE.to_string(), "NoExecute".to_string()),
            (TAINT_UNREACHABLE.to_string(), "NoSchedule".to_string())
        ]
    );
    assert!(d.taints.iter().all(|x| x.time_added == Some(Time(t(41)))));
    assert!(d.taints_changed);
}

#[test]
fn written_unknown_status_is_stable() {
    let mut obs = ObservedHealth::default();
    node_status(&node("True", 0), None, &mut obs, GRACE, t(0));
    let d = node_status(&node("True", 0), None, &mut obs, GRACE, t(50));
    // The integrator wrote status and taints; next pass sees them.
    let mut n = with_taints(node("True", 0), d.taints.clone());
    n.status = d.status.clone();
    let d2 = node_status(&n, None, &mut obs, GRACE, t(55));
    assert!(!d2.set_ready_unknown && !d2.mark_pods_not_ready && !d2.taints_changed);
}

#[test]
fn lease_renewals_count_as_heartbeats() {
    let mut obs = ObservedHealth::default();
    let n = node("True", 0);
    node_status(&n, Some(&lease(0)), &mut obs, GRACE, t(0));
    for s in [30, 60, 90, 120] {
        let d = node_status(&n, Some(&lease(s)), &mut obs, GRACE, t(s));
        assert!(!d.set_ready_unknown, "at {s}");
    }
    // Lease stops too: unknown after the grace period.
    let d = node_status(&n, Some(&lease(120)), &mut obs, GRACE, t(161));
    assert!(d.set_ready_unknown);
}

#[test]
fn skewed_node_clock_is_judged_by_change_not_value() {
    // Node clock an hour behind, then an hour ahead: heartbeats still change.
    let mut obs = ObservedHealth::default();
    for (i, s) in [0, 30, 60, 90].iter().enumerate() {
        let skew = if i % 2 == 0 { -3600 } else { 3600 };
        let d = node_status(
            &node("True", s + skew),
            Some(&lease(s + skew)),
            &mut obs,
            GRACE,
            t(*s),
        );
        assert!(!d.set_ready_unknown, "at {s}");
    }
    // A frozen heartbeat stamped in the future still expires by our clock.
    let mut obs = ObservedHealth::default();
    node_status(&node("True", 10_000), None, &mut obs, GRACE, t(0));
    assert!(node_status(&node("True", 10_000), None, &mut obs, GRACE, t(41)).set_ready_unknown);
}

#[test]
fn node_that_never_posted_gets_startup_grace() {
    let mut n = node("True", 0);
    n.status = Some(NodeStatus::default());
    let mut obs = ObservedHealth::default();
    // Created at -2000: long past the 60 s startup grace.
    n.metadata.creation_timestamp = Some(Time(t(0)));
    assert!(!node_status(&n, None, &mut obs, GRACE, t(60)).set_ready_unknown);
    let d = node_status(&n, None, &mut obs, GRACE, t(61));
    assert!(d.set_ready_unknown);
    assert!(!d.mark_pods_not_ready, "it was never Ready");
    let r = status_of(&d, "Ready").expect("Ready");
    assert_eq!(r.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    assert_eq!(
        r.message.as_deref(),
        Some("Kubelet never posted node status.")
    );
    assert_eq!(r.last_heartbeat_time, Some(Time(t(0))));
    assert!(keys(&d.taints).contains(&(TAINT_UNREACHABLE.into(), "NoExecute".into())));
}

#[test]
fn kubelet_not_ready_gets_not_ready_taints_only() {
    let mut obs = ObservedHealth::default();
    let stale = with_taints(
        node("False", 0),
        vec![Taint {
            key: TAINT_UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: Some(Time(t(-5))),
        }],
    );
    let d = node_status(&stale, None, &mut obs, GRACE, t(0));
    assert!(!d.set_ready_unknown && !d.mark_pods_not_ready);
    assert_eq!(
        keys(&d.taints),
        vec![
            (TAINT_NOT_READY.to_string(), "NoExecute".to_string()),
            (TAINT_NOT_READY.to_string(), "NoSchedule".to_string())
        ]
    );
}

#[test]
fn recovery_removes_controller_taints_and_keeps_others() {
    let foreign = Taint {
        key: "example.com/gpu".into(),
        effect: "NoSchedule".into(),
        value: Some("a100".into()),
        time_added: None,
    };
    let mine = |k: &str, e: &str| Taint {
        key: k.into(),
        effect: e.into(),
        value: None,
        time_added: Some(Time(t(1))),
    };
    let n = with_taints(
        node("True", 5),
        vec![
            foreign.clone(),
            mine(TAINT_UNREACHABLE, "NoExecute"),
            mine(TAINT_UNREACHABLE, "NoSchedule"),
        ],
    );
    let d = node_status(&n, None, &mut ObservedHealth::default(), GRACE, t(5));
    assert_eq!(d.taints, vec![foreign]);
    assert!(d.taints_changed);
    // Unschedulable and memory pressure give NoSchedule taints; kept ones keep timeAdded.
    let mut n = with_taints(
        node("True", 5),
        vec![mine(TAINT_UNSCHEDULABLE, "NoSchedule")],
    );
    n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    if let Some(c) = n.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        c[1].status = "True".into();
    }
    let d = node_status(&n, None, &mut ObservedHealth::default(), GRACE, t(9));
    assert_eq!(
        keys(&d.taints),
        vec![
            (
                "node.kubernetes.io/memory-pressure".to_string(),
                "NoSchedule".to_string()
            ),
            (TAINT_UNSCHEDULABLE.to_string(), "NoSchedule".to_string())
        ]
    );
    let kept = d
        .taints
        .iter()
        .find(|t| t.key == TAINT_UNSCHEDULABLE)
        .expect("kept");
    assert_eq!(kept.time_added, Some(Time(t(1))));
}

#[test]
fn marking_a_pod_not_ready() {
    let mut p = pod("a", &[]);
    p.status.get_or_insert_with(Default::default).conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: "True".into(),
        ..Default::default()
    }]);
    let st = mark_pod_not_ready(&p, t(7)).expect("status");
    let c = &st.conditions.expect("conditions")[0];
    assert_eq!(
        (c.status.as_str(), c.last_transition_time.clone()),
        ("False", Some(Time(t(7))))
    );
    assert!(mark_pod_not_ready(&pod("b", &[]), t(7)).is_none());
}

fn tol(key: Option<&str>, op: &str, effect: Option<&str>, secs: Option<i64>) -> Toleration {
    Toleration {
        key: key.map(Into::into),
        operator: Some(op.into()),
        effect: effect.map(Into::into),
        toleration_seconds: secs,
        value: None,
    }
}

fn tolerating(name: &str, tols: Vec<Toleration>) -> Arc<Pod> {
    let mut p = pod(name, &[]);
    p.spec = Some(PodSpec {
        tolerations: Some(tols),
        ..Default::default()
    });
    Arc::new(p)
}

fn noexec(key: &str, added: i64) -> Taint {
    Taint {
        key: key.into(),
        effect: "NoExecute".into(),
        value: None,
        time_added: Some(Time(t(added))),
    }
}

#[test]
fn eviction_times_follow_toleration_seconds() {
    let taints = [noexec(TAINT_UNREACHABLE, 100)];
    let pods = vec![
        tolerating("none", vec![]),
        tolerating(
            "300",
            vec![tol(
                Some(TAINT_UNREACHABLE),
                "Exists",
                Some("NoExecute"),
                Some(300),
            )],
        ),
        tolerating(
            "forever",
            vec![tol(Some(TAINT_UNREACHABLE), "Exists", None, None)],
        ),
        tolerating("zero", vec![tol(None, "Exists", None, Some(0))]),
        Arc::new(deleting((*tolerating("leaving", vec![])).clone())),
    ];
    let got = evictions(&taints, &pods, t(160));
    assert_eq!(
        got,
        vec![
            ("default/none".to_string(), Duration::ZERO),
            ("default/300".to_string(), Duration::from_secs(240)),
            ("default/zero".to_string(), Duration::ZERO),
        ]
    );
    // Past the deadline: at once. No NoExecute taint: nothing.
    let late = evictions(&taints, &pods[1..2], t(1000));
    assert_eq!(late, vec![("default/300".to_string(), Duration::ZERO)]);
    let soft = [Taint {
        effect: "NoSchedule".into(),
        ..noexec(TAINT_UNREACHABLE, 0)
    }];
    assert!(evictions(&soft, &pods, t(0)).is_empty());
}

#[test]
fn every_taint_must_be_tolerated_and_the_earliest_wins() {
    let taints = [
        noexec(TAINT_UNREACHABLE, 0),
        noexec("example.com/maint", 50),
    ];
    let one = tolerating(
        "one",
        vec![tol(Some(TAINT_UNREACHABLE), "Exists", None, Some(300))],
    );
    assert_eq!(
        evictions(&taints, &[one], t(10)),
        vec![("default/one".to_string(), Duration::ZERO)]
    );
    let both = tolerating(
        "both",
        vec![
            tol(Some(TAINT_UNREACHABLE), "Exists", None, Some(300)),
            tol(Some("example.com/maint"), "Exists", None, Some(60)),
        ],
    );
    assert_eq!(
        evictions(&taints, &[both], t(10)),
        vec![("default/both".to_string(), Duration::from_secs(100))]
    );
}

#[test]
fn toleration_matching_rules() {
    let mut taint = noexec("k", 0);
    taint.value = Some("v".into());
    let eq = |v: &str| Toleration {
        value: Some(v.into()),
        ..tol(Some("k"), "Equal", None, None)
    };
    assert!(tolerates(&eq("v"), &taint));
    assert!(!tolerates(&eq("w"), &taint));
    assert!(tolerates(&tol(None, "Exists", None, None), &taint));
    assert!(!tolerates(
        &tol(Some("k"), "Exists", Some("NoSchedule"), None),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("other"), "Exists", None, None),
        &taint
    ));
    assert!(!tolerates(&tol(Some("k"), "Bogus", None, None), &taint));
}

#[test]
fn ready_transitions_are_stamped_with_our_clock() {
    let mut obs = ObservedHealth::default();
    node_status(&node("True", 0), None, &mut obs, GRACE, t(0));
    assert_eq!(obs.ready_transition_timestamp, Some(t(0)));
    // Same state, new heartbeat: probe moves, transition stays.
    let d = node_status(&node("True", 10), None, &mut obs, GRACE, t(12));
    assert_eq!(
        (obs.probe_timestamp, obs.ready_transition_timestamp),
        (Some(t(12)), Some(t(0)))
    );
    assert_eq!(d.recheck_after, Some(GRACE));
    // The kubelet reports a transition (new lastTransitionTime).
    let mut n = node("False", 20);
    if let Some(c) = n.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        c[0].last_transition_time = Some(Time(t(19)));
    }
    let d = node_status(&n, None, &mut obs, GRACE, t(21));
    assert_eq!(obs.ready_transition_timestamp, Some(t(21)));
    assert_eq!(d.recheck_after, Some(GRACE));
}

#[test]
fn taint_without_time_added_counts_from_now() {
    let mut taint = noexec(TAINT_NOT_READY, 0);
    taint.time_added = None;
    let p = tolerating(
        "p",
        vec![tol(Some(TAINT_NOT_READY), "Exists", None, Some(30))],
    );
    assert_eq!(
        evictions(&[taint], &[p], t(500)),
        vec![("default/p".to_string(), Duration::from_secs(30))]
    );
}
