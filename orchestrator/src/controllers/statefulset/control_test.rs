use super::testutil::*;
use super::*;

fn created(plan: &Plan) -> Vec<String> {
    plan.created_pods()
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn deleted(plan: &Plan) -> Vec<String> {
    plan.deleted_pods().iter().map(|s| s.to_string()).collect()
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::AdoptRevision { .. } => "AdoptRevision",
            Action::AdoptPod { .. } => "AdoptPod",
            Action::ReleasePod { .. } => "ReleasePod",
            Action::CreateRevision(_) => "CreateRevision",
            Action::UpdateRevision(_) => "UpdateRevision",
            Action::CreateClaim { .. } => "CreateClaim",
            Action::UpdateClaim { .. } => "UpdateClaim",
            Action::CreatePod(_) => "CreatePod",
            Action::UpdatePod(_) => "UpdatePod",
            Action::DeletePod { .. } => "DeletePod",
            Action::UpdateStatus(_) => "UpdateStatus",
            Action::DeleteRevision { .. } => "DeleteRevision",
        })
        .collect()
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_claim_first() {
    let mut w = World::new(sts(3));
    let p = w.sync();
    assert_eq!(
        kinds(&p),
        vec!["CreateRevision", "CreateClaim", "CreatePod", "UpdateStatus"]
    );
    assert_eq!(created(&p), vec!["web-0"]);
    // Pending web-0 blocks web-1.
    let p = w.sync();
    assert!(created(&p).is_empty());
    assert!(w.pvcs.contains_key("data-web-0"));
    // Running but not ready still blocks.
    w.set_phase("web-0", "Running");
    assert!(created(&w.sync()).is_empty());
    w.make_ready("web-0");
    assert_eq!(created(&w.sync()), vec!["web-1"]);
    w.make_ready("web-1");
    assert_eq!(created(&w.sync()), vec!["web-2"]);
    w.make_ready("web-2");
    let p = w.sync();
    assert!(created(&p).is_empty());
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.replicas, 3);
    assert_eq!(st.ready_replicas, Some(3));
    assert_eq!(st.available_replicas, Some(3));
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.collision_count, Some(0));
    assert_eq!(st.current_revision, st.update_revision);
    // Nothing changed: no status write.
    assert!(w.plan().actions.is_empty());
}

#[test]
fn created_pod_carries_revision_and_claim_volume() {
    let mut w = World::new(sts(1));
    let p = w.sync();
    let rev = match p.actions.first() {
        Some(Action::CreateRevision(r)) => r.metadata.name.clone().unwrap_or_default(),
        other => panic!("expected a revision first, got {other:?}"),
    };
    let pod = w.pods.get("web-0").cloned().unwrap_or_default();
    assert_eq!(pod_revision(&pod), rev);
    let vols = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert_eq!(
        vols[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("data-web-0")
    );
    let claim = w.pvcs.get("data-web-0").cloned().unwrap_or_default();
    assert_eq!(
        claim
            .metadata
            .labels
            .and_then(|l| l.get("app").cloned())
            .as_deref(),
        Some("web")
    );
}

#[test]
fn events_use_upstream_texts() {
    let claim = Action::CreateClaim {
        claim: claims_for(&Settings::from_set(&sts(1)).expect("spec"), &sts(1), 0)
            .remove(0)
            .1,
        pod: "web-0".into(),
    };
    let ev = claim.event("web", None).expect("event");
    assert_eq!(ev.reason, "SuccessfulCreate");
    assert_eq!(
        ev.message,
        "create Claim data-web-0 Pod web-0 in StatefulSet web success"
    );
    let ev = claim.event("web", Some("boom")).expect("event");
    assert_eq!(ev.type_, EVENT_WARNING);
    assert_eq!(
        ev.message,
        "create Claim data-web-0 for Pod web-0 in StatefulSet web failed error: boom"
    );
    let mut w = World::new(sts(1));
    let p = w.sync();
    let create = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreatePod(_)))
        .expect("create");
    let ev = create.event("web", None).expect("event");
    assert_eq!(ev.type_, EVENT_NORMAL);
    assert_eq!(ev.reason, "SuccessfulCreate");
    assert_eq!(ev.message, "create Pod web-0 in StatefulSet web successful");
    let del = Action::DeletePod {
        name: "web-0".into(),
        uid: None,
        reason: DeleteReason::ScaleDown,
    };
    let ev = del.event("web", None).expect("event");
    assert_eq!(
        (ev.reason.as_str(), ev.message.as_str()),
        (
            "SuccessfulDelete",
            "delete Pod web-0 in StatefulSet web successful"
        )
    );
    let ev = del.event("web", Some("nope")).expect("event");
    assert_eq!(ev.reason, "FailedDelete");
    assert_eq!(
        ev.message,
        "delete Pod web-0 in StatefulSet web failed error: nope"
    );
    assert!(Action::DeleteRevision { name: "x".into() }
        .event("web", None)
        .is_none());
}

#[test]
fn ordered_ready_waits_for_min_ready_seconds() {
    let mut set = sts(2);
    if let Some(spec) = set.spec.as_mut() {
        spec.min_ready_seconds = Some(10);
    }
    let mut w = World::new(set);
    w.sync();
    w.make_ready("web-0");
    let p = w.sync();
    assert!(created(&p).is_empty(), "web-0 not yet available");
    assert_eq!(p.requeue_after, Some(std::time::Duration::from_secs(10)));
    w.now = w
        .now
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(11))
        .expect("time");
    assert_eq!(created(&w.sync()), vec!["web-1"]);
}

#[test]
fn parallel_creates_every_missing_pod_at_once() {
    let mut w = World::new(parallel(sts(3)));
    let p = w.sync();
    assert_eq!(created(&p), vec!["web-0", "web-1", "web-2"]);
    assert_eq!(
        kinds(&p),
        vec![
            "CreateRevision",
            "CreateClaim",
            "CreatePod",
            "CreateClaim",
            "CreatePod",
            "CreateClaim",
            "CreatePod",
            "UpdateStatus"
        ]
    );
}

#[test]
fn ordered_scale_down_removes_highest_ordinal_first_and_keeps_claims() {
    let mut w = World::new(sts(3));
    w.converge(10);
    set_replicas(&mut w.set, 1);
    let p = w.sync();
    assert_eq!(deleted(&p), vec!["web-2"]);
    // Waits for web-2 to terminate.
    assert!(deleted(&w.sync()).is_empty());
    w.finish_deletions();
    assert_eq!(deleted(&w.sync()), vec!["web-1"]);
    w.finish_deletions();
    w.sync();
    assert_eq!(w.pod_names(), vec!["web-0"]);
    // Retain policy: every claim is still there and nothing deletes claims.
    assert_eq!(w.pvcs.len(), 3);
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.replicas, 1);
}

#[test]
fn ordered_scale_down_waits_for_unhealthy_replicas() {
    let mut w = World::new(sts(3));
    w.converge(10);
    set_replicas(&mut w.set, 2);
    w.set_phase("web-0", "Pending");
    assert!(deleted(&w.sync()).is_empty());
    w.make_ready("web-0");
    assert_eq!(deleted(&w.sync()), vec!["web-2"]);
}

#[test]
fn parallel_scale_down_deletes_all_condemned_at_once() {
    let mut w = World::new(parallel(sts(4)));
    w.converge(10);
    set_replicas(&mut w.set, 1);
    assert_eq!(deleted(&w.sync()), vec!["web-3", "web-2", "web-1"]);
}

#[test]
fn failed_and_succeeded_pods_are_deleted_then_recreated() {
    let mut w = World::new(sts(2));
    w.converge(10);
    w.set_phase("web-0", "Failed");
    let p = w.sync();
    assert_eq!(deleted(&p), vec!["web-0"]);
    assert!(matches!(
        p.actions
            .iter()
            .find(|a| matches!(a, Action::DeletePod { .. })),
        Some(Action::DeletePod {
            reason: DeleteReason::Failed,
            ..
        })
    ));
    assert!(created(&p).is_empty(), "recreated on the next sync");
    w.finish_deletions();
    assert_eq!(created(&w.sync()), vec!["web-0"]);
    w.make_ready("web-0");
    w.set_phase("web-1", "Succeeded");
    assert_eq!(deleted(&w.sync()), vec!["web-1"]);
}

#[test]
fn existing_claim_is_reused_and_deleting_claim_blocks_creation() {
    let mut w = World::new(sts(1));
    let mut claim = claims_for(&Settings::from_set(&w.set).expect("spec"), &w.set, 0)
        .remove(0)
        .1;
    w.pvcs.insert("data-web-0".into(), claim.clone());
    let p = w.plan();
    assert_eq!(
        kinds(&p),
        vec!["CreateRevision", "CreatePod", "UpdateStatus"]
    );
    claim.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(w.now));
    w.pvcs.insert("data-web-0".into(), claim);
    let p = w.plan();
    assert!(created(&p).is_empty());
    assert_eq!(p.error.as_deref(), Some("pvc data-web-0 is being deleted"));
}

#[test]
fn pending_pod_gets_its_missing_claim() {
    let mut w = World::new(sts(1));
    w.sync();
    w.pvcs.clear();
    let p = w.plan();
    assert_eq!(kinds(&p), vec!["CreateClaim", "UpdateStatus"]);
    assert!(p.created_pods().is_empty());
}

#[test]
fn rolling_update_replaces_from_highest_ordinal_one_at_a_time() {
    let mut w = World::new(sts(3));
    w.converge(10);
    let old_rev = w
        .set
        .status
        .clone()
        .and_then(|s| s.current_revision)
        .unwrap_or_default();
    set_image(&mut w.set, "nginx:2");
    let p = w.sync();
    assert_eq!(kinds(&p)[0], "CreateRevision");
    assert_eq!(deleted(&p), vec!["web-2"]);
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.current_revision.as_deref(), Some(old_rev.as_str()));
    assert_ne!(st.update_revision.as_deref(), Some(old_rev.as_str()));
    assert_eq!(
        st.current_replicas,
        Some(2),
        "decremented for the deleted pod"
    );
    // Terminating web-2 blocks everything.
    assert!(deleted(&w.sync()).is_empty());
    w.finish_deletions();
    assert_eq!(created(&w.sync()), vec!["web-2"]);
    assert_eq!(
        w.pods.get("web-2").map(image_of).as_deref(),
        Some("nginx:2")
    );
    // The recreated pod must be healthy before web-1 goes.
    assert!(deleted(&w.sync()).is_empty());
    w.make_ready("web-2");
    assert_eq!(deleted(&w.sync()), vec!["web-1"]);
    w.converge(10);
    for p in w.pods.values() {
        assert_eq!(image_of(p), "nginx:2");
    }
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));
}

#[test]
fn rolling_update_respects_partition() {
    let mut w = World::new(partition(sts(4), 2));
    w.converge(12);
    set_image(&mut w.set, "nginx:2");
    w.converge(12);
    let images: Vec<String> = w.pods.values().map(image_of).collect();
    assert_eq!(images, vec!["nginx:1", "nginx:1", "nginx:2", "nginx:2"]);
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.updated_replicas, Some(2));
    assert_eq!(st.current_replicas, Some(2));
    assert_ne!(st.current_revision, st.update_revision);
    // A pod below the partition is recreated at the current revision.
    w.set_phase("web-0", "Failed");
    w.sync();
    w.finish_deletions();
    w.sync();
    assert_eq!(
        w.pods.get("web-0").map(image_of).as_deref(),
        Some("nginx:1")
    );
    // Lowering the partition finishes the rollout.
    if let Some(u) = w
        .set
        .spec
        .as_mut()
        .and_then(|s| s.update_strategy.as_mut())
        .and_then(|u| u.rolling_update.as_mut())
    {
        u.partition = Some(0);
    }
    w.converge(12);
    let st = w.set.status.clone().unwrap_or_default();
    assert_eq!(st.current_revision, st.update_revision);
    assert!(w.pods.values().all(|p| image_of(p) == "nginx:2"));
}

#[test]
fn on_delete_only_replaces_pods_deleted_by_someone_else() {
    let mut set = sts(2);
    if let Some(spec) = set.spec.as_mut() {
        spec.update_strategy = Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: None,
        });
    }
    let mut w = World::new(set);
    w.converge(10);
    set_image(&mut w.set, "nginx:2");
    let p = w.sync();
    assert!(deleted(&p).is_empty());
    w.pods.remove("web-1");
    assert_eq!(created(&w.sync()), vec!["web-1"]);
    assert_eq!(
        w.pods.get("web-1").map(image_of).as_deref(),
        Some("nginx:2")
    );
    assert_eq!(
        w.pods.get("web-0").map(image_of).as_deref(),
        Some("nginx:1")
    );
}

#[test]
fn adopts_orphans_releases_mismatches_ignores_foreign() {
    let mut w = World::new(sts(2));
    w.converge(10);
    let mut orphan = w.pods.get("web-1").cloned().unwrap_or_default();
    orphan.metadata.owner_references = None;
    w.pods.insert("web-1".into(), orphan);
    let mut stranger = w.pods.get("web-0").cloned().unwrap_or_default();
    stranger.metadata.name = Some("other-0".into());
    stranger.metadata.owner_references = None;
    w.pods.insert("other-0".into(), stranger);
    let mut foreign = w.pods.get("web-0").cloned().unwrap_or_default();
    foreign.metadata.name = Some("web-7".into());
    foreign.metadata.owner_references = Some(vec![crate::controllers::testutil::owner(
        "someone",
        "ReplicaSet",
    )]);
    w.pods.insert("web-7".into(), foreign);
    let p = w.plan();
    assert_eq!(kinds(&p), vec!["AdoptPod"]);
    assert!(matches!(&p.actions[0], Action::AdoptPod { name, patch }
        if name == "web-1" && patch["metadata"]["ownerReferences"][0]["uid"] == SET_UID));
    // An owned pod whose labels no longer match is released.
    if let Some(l) = w
        .pods
        .get_mut("web-0")
        .and_then(|p| p.metadata.labels.as_mut())
    {
        l.insert("app".into(), "changed".into());
    }
    let p = w.plan();
    assert!(p
        .actions
        .iter()
        .any(|a| matches!(a, Action::ReleasePod { name, patch }
        if name == "web-0" && patch["metadata"]["ownerReferences"][0]["$patch"] == "delete")));
}

#[test]
fn deleting_set_only_updates_status() {
    let mut w = World::new(sts(3));
    w.sync();
    w.make_ready("web-0");
    w.set.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(w.now));
    let p = w.plan();
    assert!(created(&p).is_empty());
    assert!(deleted(&p).is_empty());
    assert_eq!(p.status().map(|s| s.ready_replicas), Some(Some(1)));
}

#[test]
fn history_is_truncated_to_the_limit_keeping_live_revisions() {
    let mut set = sts(1);
    if let Some(spec) = set.spec.as_mut() {
        spec.revision_history_limit = Some(1);
    }
    let mut w = World::new(set);
    w.converge(10);
    for i in 2..=4 {
        set_image(&mut w.set, &format!("nginx:{i}"));
        w.converge(10);
    }
    // The sync that completes the rollout still sees the old current
    // revision; the status write triggers one more sync that truncates.
    let p = w.sync();
    assert_eq!(kinds(&p), vec!["DeleteRevision"]);
    // Current (= update) revision plus one historic revision.
    assert_eq!(w.revisions.len(), 2);
    let numbers: Vec<i64> = w.revisions.values().map(|r| r.revision).collect();
    assert!(numbers.contains(&4) && numbers.contains(&3), "{numbers:?}");
}

#[test]
fn identity_is_repaired_with_a_pod_update() {
    let mut w = World::new(sts(1));
    w.converge(10);
    if let Some(l) = w
        .pods
        .get_mut("web-0")
        .and_then(|p| p.metadata.labels.as_mut())
    {
        l.remove(POD_NAME_LABEL);
    }
    let p = w.plan();
    assert_eq!(kinds(&p), vec!["UpdatePod"]);
    assert!(matches!(&p.actions[0], Action::UpdatePod(pod)
        if pod.metadata.labels.as_ref().and_then(|l| l.get(POD_NAME_LABEL)).map(String::as_str) == Some("web-0")));
}

#[test]
fn start_ordinal_shifts_names_and_condemns_pods_outside() {
    let mut w = World::new(sts(2));
    w.converge(10);
    if let Some(spec) = w.set.spec.as_mut() {
        spec.ordinals = Some(k8s_openapi::api::apps::v1::StatefulSetOrdinals { start: Some(5) });
    }
    let p = w.sync();
    // web-5 is created first (replicas before condemned, and OrderedReady
    // stops at the first created pod).
    assert_eq!(created(&p), vec!["web-5"]);
    w.converge(10);
    assert_eq!(w.pod_names(), vec!["web-5", "web-6"]);
    assert!(w.pvcs.contains_key("data-web-6"));
}

#[test]
fn orphan_revisions_are_adopted_and_reused() {
    let mut w = World::new(sts(1));
    w.sync();
    for r in w.revisions.values_mut() {
        r.metadata.owner_references = None;
    }
    let p = w.plan();
    assert_eq!(kinds(&p)[0], "AdoptRevision");
    assert!(!kinds(&p).contains(&"CreateRevision"));
}
