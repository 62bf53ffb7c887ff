use super::*;
use crate::controllers::testutil::*;
use k8s_openapi::api::core::v1::{Container, ContainerStatus};

const NOW: i64 = 1_000_000;

/// Deletion order of two pods given in "keep-first" order: asserts the
/// second is preferred for deletion, whichever order they are given in.
fn assert_deleted_first(first: Pod, keep: Pod) {
    let now = t(NOW);
    assert!(prefer_for_deletion(&first, 0, &keep, 0, now));
    assert!(!prefer_for_deletion(&keep, 0, &first, 0, now));
    let sorted = sort_for_deletion(&arcs(vec![keep.clone(), first.clone()]), &[0, 0], now);
    assert_eq!(
        names(&sorted),
        vec![
            first.metadata.name.clone().unwrap_or_default(),
            keep.metadata.name.clone().unwrap_or_default()
        ]
    );
}

#[test]
fn unassigned_before_assigned() {
    assert_deleted_first(node(pod("u", &[]), None), node(pod("a", &[]), Some("n1")));
    // Two assigned pods on different nodes: no decision from this rule.
    let a = node(pod("a", &[]), Some("n1"));
    let b = node(pod("b", &[]), Some("n2"));
    assert!(!prefer_for_deletion(&a, 0, &b, 0, t(NOW)));
    assert!(!prefer_for_deletion(&b, 0, &a, 0, t(NOW)));
}

#[test]
fn pending_before_unknown_before_running() {
    assert_deleted_first(
        with_phase(pod("p", &[]), "Pending"),
        with_phase(pod("u", &[]), "Unknown"),
    );
    assert_deleted_first(
        with_phase(pod("u", &[]), "Unknown"),
        with_phase(pod("r", &[]), "Running"),
    );
    // Unassigned wins over phase.
    assert_deleted_first(
        node(with_phase(pod("r", &[]), "Running"), None),
        with_phase(pod("p", &[]), "Pending"),
    );
}

#[test]
fn not_ready_before_ready() {
    assert_deleted_first(pod("n", &[]), ready(pod("r", &[]), Some(t(0))));
}

#[test]
fn lower_deletion_cost_first_and_malformed_cost_is_zero() {
    assert_deleted_first(
        annotate(pod("cheap", &[]), POD_DELETION_COST, "-5"),
        annotate(pod("dear", &[]), POD_DELETION_COST, "10"),
    );
    assert_deleted_first(
        pod("zero", &[]),
        annotate(pod("dear", &[]), POD_DELETION_COST, "1"),
    );
    for bad in ["+3", "007", "abc", "", "99999999999"] {
        let p = annotate(pod("x", &[]), POD_DELETION_COST, bad);
        assert_eq!(deletion_cost(&p), 0, "{bad}");
    }
    assert_eq!(
        deletion_cost(&annotate(pod("x", &[]), POD_DELETION_COST, "0")),
        0
    );
    assert_eq!(
        deletion_cost(&annotate(pod("x", &[]), POD_DELETION_COST, "-2147483648")),
        i32::MIN
    );
    // Readiness wins over cost.
    assert_deleted_first(
        annotate(pod("n", &[]), POD_DELETION_COST, "100"),
        ready(pod("r", &[]), Some(t(0))),
    );
}

#[test]
fn more_co_located_pods_first() {
    let now = t(NOW);
    let a = pod("a", &[]);
    let b = pod("b", &[]);
    assert!(prefer_for_deletion(&a, 3, &b, 1, now));
    assert!(!prefer_for_deletion(&a, 1, &b, 3, now));
    // Cost wins over rank.
    let cheap = annotate(pod("c", &[]), POD_DELETION_COST, "-1");
    assert!(prefer_for_deletion(&cheap, 0, &b, 9, now));
}

#[test]
fn co_located_ranks_count_active_related_pods_per_node() {
    let pods = arcs(vec![
        node(pod("a", &[]), Some("n1")),
        node(pod("b", &[]), Some("n2")),
        node(pod("c", &[]), None),
    ]);
    let related = arcs(vec![
        node(pod("a", &[]), Some("n1")),
        node(pod("x", &[]), Some("n1")),
        node(with_phase(pod("dead", &[]), "Failed"), Some("n2")),
        node(pod("b", &[]), Some("n2")),
    ]);
    assert_eq!(co_located_ranks(&pods, &related), vec![2, 1, 0]);
}

#[test]
fn ready_for_less_time_first_on_log_scale() {
    // Ages 100s vs 10000s: different log2 buckets, the younger goes first.
    assert_deleted_first(
        ready(pod("young", &[]), Some(t(NOW - 100))),
        ready(pod("old", &[]), Some(t(NOW - 10_000))),
    );
    // Same bucket (ages 1000s and 1010s): tie broken by UID, not by time.
    let a = ready(pod("a", &[]), Some(t(NOW - 1010)));
    let b = ready(pod("b", &[]), Some(t(NOW - 1000)));
    assert!(prefer_for_deletion(&a, 0, &b, 0, t(NOW)));
    assert!(!prefer_for_deletion(&b, 0, &a, 0, t(NOW)));
    // A ready pod with no transition time counts as zero time: first.
    assert_deleted_first(
        ready(pod("zero", &[]), None),
        ready(pod("old", &[]), Some(t(NOW - 10))),
    );
}

#[test]
fn more_restarts_first_then_sidecar_restarts() {
    assert_deleted_first(restarts(pod("many", &[]), 5), restarts(pod("few", &[]), 1));
    // Same regular restarts: the sidecar restarts decide.
    let with_sidecar = |name: &str, n: i32| {
        let mut p = restarts(pod(name, &[]), 1);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![Container {
                name: "side".into(),
                restart_policy: Some("Always".into()),
                ..Default::default()
            }]);
        }
        if let Some(st) = p.status.as_mut() {
            st.init_container_statuses = Some(vec![ContainerStatus {
                name: "side".into(),
                restart_count: n,
                ..Default::default()
            }]);
        }
        p
    };
    assert_deleted_first(with_sidecar("s9", 9), with_sidecar("s2", 2));
    assert_eq!(max_container_restarts(&with_sidecar("s", 4)), (1, 4));
    // Plain init containers' restarts do not count.
    let mut plain = with_sidecar("p", 7);
    if let Some(ic) = plain.spec.as_mut().and_then(|s| s.init_containers.as_mut()) {
        ic[0].restart_policy = None;
    }
    assert_eq!(max_container_restarts(&plain), (1, 0));
    // Ready time wins over restarts.
    assert_deleted_first(
        ready(pod("young", &[]), Some(t(NOW - 100))),
        restarts(ready(pod("old", &[]), Some(t(NOW - 10_000))), 50),
    );
}

#[test]
fn newer_creation_first_zero_first_and_uid_tie_break() {
    assert_deleted_first(
        created(pod("new", &[]), Some(t(NOW - 60))),
        created(pod("old", &[]), Some(t(NOW - 86_400))),
    );
    assert_deleted_first(
        created(pod("zero", &[]), None),
        created(pod("old", &[]), Some(t(0))),
    );
    let a = created(pod("a", &[]), Some(t(NOW - 1010)));
    let b = created(pod("b", &[]), Some(t(NOW - 1000)));
    assert!(prefer_for_deletion(&a, 0, &b, 0, t(NOW)));
    // Identical pods: neither is preferred.
    let c = pod("c", &[]);
    assert!(!prefer_for_deletion(&c, 0, &c, 0, t(NOW)));
}

#[test]
fn pods_to_delete_takes_the_head_and_skips_sorting_when_all_go() {
    let now = t(NOW);
    let pods = arcs(vec![
        ready(pod("r1", &[]), Some(t(0))),
        with_phase(pod("p", &[]), "Pending"),
        node(pod("u", &[]), None),
        ready(pod("r2", &[]), Some(t(NOW - 5))),
    ]);
    assert_eq!(names(&pods_to_delete(&pods, &[], 2, now)), vec!["u", "p"]);
    assert_eq!(
        names(&pods_to_delete(&pods, &[], 3, now)),
        vec!["u", "p", "r2"]
    );
    assert_eq!(
        names(&pods_to_delete(&pods, &[], 4, now)),
        vec!["r1", "p", "u", "r2"]
    );
    assert!(pods_to_delete(&pods, &[], 0, now).is_empty());
}

#[test]
fn full_sort_applies_every_key_in_order() {
    let now = t(NOW);
    let pods = arcs(vec![
        created(ready(pod("old-ready", &[]), Some(t(0))), Some(t(0))),
        restarts(pod("crashy", &[]), 3),
        with_phase(pod("pending", &[]), "Pending"),
        annotate(pod("cheap", &[]), POD_DELETION_COST, "-1"),
        node(with_phase(pod("unassigned", &[]), "Pending"), None),
        ready(pod("new-ready", &[]), Some(t(NOW - 30))),
        with_phase(pod("unknown", &[]), "Unknown"),
        pod("plain", &[]),
    ]);
    let sorted = sort_for_deletion(&pods, &[0; 8], now);
    assert_eq!(
        names(&sorted),
        vec![
            "unassigned",
            "pending",
            "unknown",
            "cheap",
            "crashy",
            "plain",
            "new-ready",
            "old-ready"
        ]
    );
}
