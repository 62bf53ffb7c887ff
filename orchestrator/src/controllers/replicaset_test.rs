use super::*;
use crate::controllers::testutil::*;
use k8s_openapi::api::apps::v1::ReplicaSetStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};

const SEL: &[(&str, &str)] = &[("app", "web")];

fn web(name: &str) -> Pod {
    pod(name, SEL)
}

fn plan_of(rs: &ReplicaSet, pods: Vec<Pod>) -> Plan {
    reconcile(rs, &arcs(pods), true, t(1000))
}

fn with_status(mut r: ReplicaSet, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
    r.status = Some(ReplicaSetStatus {
        replicas,
        fully_labeled_replicas: Some(replicas),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: r.metadata.generation,
        ..Default::default()
    });
    r
}

#[test]
fn scale_up_creates_the_missing_pods() {
    let p = plan_of(&rs(3, SEL), vec![web("a")]);
    assert_eq!(p.create, 2);
    assert!(p.delete.is_empty());
    assert_eq!(p.status.as_ref().map(|s| s.replicas), Some(1));
}

#[test]
fn scale_up_is_capped_at_burst_replicas() {
    let p = plan_of(&rs(1200, SEL), vec![]);
    assert_eq!(p.create, BURST_REPLICAS);
}

#[test]
fn scale_down_deletes_the_most_expendable_pods() {
    let pods = vec![
        ready(web("old"), Some(t(0))),
        with_phase(web("pending"), "Pending"),
        ready(web("young"), Some(t(990))),
    ];
    let p = plan_of(&rs(1, SEL), pods);
    assert_eq!(p.create, 0);
    assert_eq!(p.delete, vec!["pending", "young"]);
    assert_eq!(p.delete_keys(NS), vec!["default/pending", "default/young"]);
}

#[test]
fn scale_down_is_capped_at_burst_replicas() {
    let pods: Vec<Pod> = (0..600).map(|i| web(&format!("p{i}"))).collect();
    let p = plan_of(&rs(0, SEL), pods);
    assert_eq!(p.delete.len(), BURST_REPLICAS);
}

#[test]
fn scale_to_zero_deletes_all_in_input_order() {
    let p = plan_of(&rs(0, SEL), vec![ready(web("a"), Some(t(0))), web("b")]);
    assert_eq!(p.delete, vec!["a", "b"]);
}

#[test]
fn steady_state_is_a_no_op() {
    let r = with_status(rs(2, SEL), 2, 0, 0);
    let p = plan_of(&r, vec![web("a"), web("b")]);
    assert_eq!(p.create, 0);
    assert!(p.delete.is_empty() && p.adopt.is_empty() && p.release.is_empty());
    assert!(p.status.is_none());
    assert_eq!(names(&p.claimed), vec!["a", "b"]);
}

#[test]
fn unset_replicas_default_to_one() {
    let mut r = rs(0, SEL);
    if let Some(s) = r.spec.as_mut() {
        s.replicas = None;
    }
    assert_eq!(plan_of(&r, vec![]).create, 1);
}

#[test]
fn stale_cache_neither_creates_nor_deletes_but_reports_status() {
    let r = rs(3, SEL);
    let p = reconcile(&r, &arcs(vec![web("a"), orphan(web("o"))]), false, t(1000));
    assert_eq!(p.create, 0);
    assert!(p.delete.is_empty());
    // Claiming still happens upstream before the expectations check.
    assert_eq!(p.adopt, vec!["o"]);
    assert_eq!(p.status.as_ref().map(|s| s.replicas), Some(2));
    let over = reconcile(&rs(0, SEL), &arcs(vec![web("a")]), false, t(1000));
    assert!(over.delete.is_empty());
}

#[test]
fn matching_orphans_are_adopted_and_count() {
    let p = plan_of(&rs(2, SEL), vec![web("a"), orphan(web("o"))]);
    assert_eq!(p.adopt, vec!["o"]);
    assert_eq!(p.create, 0);
    assert_eq!(names(&p.claimed), vec!["a", "o"]);
}

#[test]
fn non_matching_orphans_are_ignored() {
    let p = plan_of(&rs(1, SEL), vec![orphan(pod("o", &[("app", "db")]))]);
    assert!(p.adopt.is_empty());
    assert_eq!(p.create, 1);
}

#[test]
fn pods_of_another_controller_are_ignored() {
    let p = plan_of(&rs(1, SEL), vec![owned_by(web("f"), "other-uid")]);
    assert!(p.adopt.is_empty() && p.release.is_empty());
    assert_eq!(p.create, 1);
    assert!(p.claimed.is_empty());
}

#[test]
fn owned_pods_that_stop_matching_are_released() {
    let p = plan_of(&rs(1, SEL), vec![pod("moved", &[("app", "db")]), web("a")]);
    assert_eq!(p.release, vec!["moved"]);
    assert_eq!(names(&p.claimed), vec!["a"]);
    assert_eq!(p.create, 0);
}

#[test]
fn a_replicaset_being_deleted_adopts_releases_and_scales_nothing() {
    let mut r = rs(5, SEL);
    r.metadata.deletion_timestamp = Some(Time(t(0)));
    let pods = vec![web("a"), orphan(web("o")), pod("moved", &[("app", "db")])];
    let p = plan_of(&r, pods);
    assert!(p.adopt.is_empty());
    assert!(p.release.is_empty());
    assert_eq!(p.create, 0);
    // Pods it still owns and selects are still counted.
    assert_eq!(p.status.as_ref().map(|s| s.replicas), Some(1));
}

#[test]
fn inactive_and_foreign_namespace_pods_are_ignored() {
    let mut elsewhere = orphan(web("x"));
    elsewhere.metadata.namespace = Some("other".into());
    let pods = vec![
        with_phase(web("done"), "Succeeded"),
        with_phase(web("failed"), "Failed"),
        deleting(web("terminating")),
        with_phase(orphan(web("orphan-done")), "Succeeded"),
        elsewhere,
    ];
    let p = plan_of(&rs(1, SEL), pods);
    assert!(p.adopt.is_empty() && p.release.is_empty() && p.claimed.is_empty());
    assert_eq!(p.create, 1);
}

#[test]
fn status_counts_fully_labeled_ready_and_available() {
    let mut r = rs(4, SEL);
    if let Some(s) = r.spec.as_mut() {
        s.min_ready_seconds = Some(30);
        if let Some(m) = s.template.as_mut().and_then(|t| t.metadata.as_mut()) {
            m.labels = Some(labels(&[("app", "web"), ("tier", "fe")]));
        }
    }
    let full = &[("app", "web"), ("tier", "fe"), ("extra", "1")];
    let pods = vec![
        ready(pod("avail", full), Some(t(900))),   // ready 100s > 30s
        ready(pod("warming", full), Some(t(980))), // ready 20s < 30s
        ready(web("partial"), Some(t(0))),         // lacks tier=fe
        web("notready"),
    ];
    let s = plan_of(&r, pods).status.expect("status changed");
    assert_eq!(s.replicas, 4);
    assert_eq!(s.fully_labeled_replicas, Some(2));
    assert_eq!(s.ready_replicas, Some(3));
    assert_eq!(s.available_replicas, Some(2));
    assert_eq!(s.observed_generation, Some(1));
}

#[test]
fn status_is_written_when_generation_is_not_observed() {
    let mut r = with_status(rs(1, SEL), 1, 0, 0);
    assert!(plan_of(&r, vec![web("a")]).status.is_none());
    r.metadata.generation = Some(2);
    let s = plan_of(&r, vec![web("a")]).status.expect("new generation");
    assert_eq!(s.observed_generation, Some(2));
}

#[test]
fn failure_condition_is_added_once_and_cleared_on_success() {
    let r = rs(3, SEL);
    let plan = plan_of(&r, vec![web("a")]);
    let s = plan
        .status_after_error(&r, "pods \"web-x\" is forbidden: exceeded quota", t(1000))
        .expect("changed");
    let c = s.conditions.clone().unwrap_or_default();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].type_, REPLICA_FAILURE);
    assert_eq!(c[0].status, "True");
    assert_eq!(c[0].reason.as_deref(), Some(FAILED_CREATE));
    assert_eq!(
        c[0].message.as_deref(),
        Some("pods \"web-x\" is forbidden: exceeded quota")
    );
    assert_eq!(c[0].last_transition_time, Some(Time(t(1000))));
    // A later failure keeps the existing condition untouched.
    let mut failed = r.clone();
    failed.status = Some(s);
    let again = plan_of(&failed, vec![web("a")]);
    let s2 = again.status_after_error(&failed, "other error", t(2000));
    assert!(s2.is_none(), "unchanged status is not rewritten");
    // A successful sync removes it.
    let cleared = again.status.expect("condition removed");
    assert!(cleared.conditions.is_none());
}

#[test]
fn failed_delete_reason_when_over_replicas() {
    let r = rs(0, SEL);
    let plan = plan_of(&r, vec![web("a")]);
    let s = plan
        .status_after_error(&r, "boom", t(1000))
        .expect("changed");
    let c = s.conditions.unwrap_or_default();
    assert_eq!(c[0].reason.as_deref(), Some(FAILED_DELETE));
}

#[test]
fn slow_start_batch_sizes() {
    let b = |n| slow_start_batches(n).collect::<Vec<_>>();
    assert_eq!(b(0), Vec::<usize>::new());
    assert_eq!(b(1), vec![1]);
    assert_eq!(b(2), vec![1, 1]);
    assert_eq!(b(5), vec![1, 2, 2]);
    assert_eq!(b(10), vec![1, 2, 4, 3]);
    assert_eq!(b(500), vec![1, 2, 4, 8, 16, 32, 64, 128, 245]);
    assert_eq!(b(500).iter().sum::<usize>(), 500);
}

#[test]
fn requeue_when_a_ready_pod_is_not_yet_available() {
    let mut r = rs(2, SEL);
    let pods = arcs(vec![
        ready(web("a"), Some(t(997))),
        ready(web("b"), Some(t(995))),
    ]);
    assert_eq!(requeue_after(&r, &pods, t(1000)), None, "minReadySeconds 0");
    if let Some(s) = r.spec.as_mut() {
        s.min_ready_seconds = Some(10);
    }
    // b becomes available after 1005: look again one second later.
    assert_eq!(
        requeue_after(&r, &pods, t(1000)),
        Some(Duration::from_secs(6))
    );
    // All available: nothing to wait for.
    assert_eq!(requeue_after(&r, &pods, t(2000)), None);
    // Ready without transition time: fall back to minReadySeconds.
    let z = arcs(vec![ready(web("z"), None), web("notready")]);
    assert_eq!(
        requeue_after(&r, &z, t(1000)),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn invalid_selector_does_nothing() {
    let mut r = rs(3, SEL);
    if let Some(s) = r.spec.as_mut() {
        s.selector.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "In".into(),
            values: None,
        }]);
    }
    let p = plan_of(&r, vec![orphan(web("o"))]);
    assert!(p.selector_error.is_some());
    assert!(p.adopt.is_empty() && p.create == 0 && p.status.is_none());
}

#[test]
fn co_location_rank_uses_sibling_replicasets_of_the_same_owner() {
    let dep = owner("dep-uid", "Deployment");
    let mut r = rs(1, SEL);
    r.metadata.owner_references = Some(vec![dep.clone()]);
    let mut old = rs(1, &[("app", "web-old")]);
    old.metadata.name = Some("web-old".into());
    old.metadata.uid = Some("old-uid".into());
    old.metadata.owner_references = Some(vec![dep]);
    let mine = vec![
        node(created(web("on-n1"), Some(t(0))), Some("n1")),
        node(created(web("on-n2"), Some(t(500))), Some("n2")),
    ];
    let mut all = mine.clone();
    all.push(node(
        owned_by(pod("sib", &[("app", "web-old")]), "old-uid"),
        Some("n1"),
    ));
    let all = arcs(all);
    // Without siblings: one pod per node, the newer pod goes.
    let alone = reconcile(&r, &all, true, t(1000));
    assert_eq!(alone.delete, vec!["on-n2"]);
    // With the sibling's pod on n1, the doubled-up pod goes.
    let sibs = vec![Arc::new(old)];
    let with = reconcile_with_siblings(&r, &sibs, &all, true, t(1000));
    assert_eq!(with.delete, vec!["on-n1"]);
    assert_eq!(
        names(&related_pods(&r, &sibs, &all)),
        vec!["on-n1", "on-n2", "sib"]
    );
    // A ReplicaSet without controller ranks nothing.
    assert!(related_pods(&rs(1, SEL), &sibs, &all).is_empty());
}

#[test]
fn new_pod_and_patches() {
    let r = rs(1, SEL);
    let p = new_pod(&r).expect("template");
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(p.metadata.labels, Some(labels(SEL)));
    let o = orphan(web("o"));
    let adopt = adopt_patch(&r, &o);
    assert_eq!(adopt["metadata"]["uid"], "uid-o");
    assert_eq!(adopt["metadata"]["ownerReferences"][0]["uid"], RS_UID);
    assert_eq!(
        adopt["metadata"]["ownerReferences"][0]["kind"],
        "ReplicaSet"
    );
    assert_eq!(adopt["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        adopt["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        true
    );
    let rel = release_patch(&r, &o);
    assert_eq!(
        rel,
        serde_json::json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": RS_UID}], "uid": "uid-o"}})
    );
    assert_eq!(key(&r), "default/web");
}
