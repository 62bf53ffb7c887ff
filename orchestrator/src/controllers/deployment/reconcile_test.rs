//! Focused tests of `reconcile` and the public helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::testutil::*;
use super::*;

fn creates(acts: &[Action]) -> Vec<&ReplicaSet> {
    acts.iter()
        .filter_map(|a| match a {
            Action::CreateReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .collect()
}

fn updates(acts: &[Action]) -> Vec<&ReplicaSet> {
    acts.iter()
        .filter_map(|a| match a {
            Action::UpdateReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .collect()
}

fn size(rs: &ReplicaSet) -> i32 {
    super::util::rs_replicas(rs)
}

#[test]
fn first_sync_creates_the_new_replica_set() {
    let mut d = deployment(3, "v1");
    spec_mut(&mut d).min_ready_seconds = Some(5);
    d.metadata.annotations =
        Some([(CHANGE_CAUSE_ANNOTATION.to_string(), "init".to_string())].into());
    let acts = reconcile(&d, &[], &[], t0());
    let hash = compute_hash(
        &d.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default(),
        None,
    );
    let name = format!("web-{hash}");
    assert!(matches!(&acts[0], Action::CreateReplicaSet(_)), "{acts:?}");
    assert_eq!(acts[1], Action::SetDeploymentRevision("1".into()));
    let rs = creates(&acts)[0];
    assert_eq!(rs.metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
    let labels = rs.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let spec = rs.spec.as_ref().expect("spec");
    assert_eq!(
        spec.selector
            .match_labels
            .as_ref()
            .and_then(|m| m.get(POD_TEMPLATE_HASH_LABEL)),
        Some(&hash)
    );
    let tpl_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(tpl_labels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
    assert_eq!(spec.min_ready_seconds, Some(5));
    assert_eq!(spec.replicas, Some(3));
    let owner = &rs.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Deployment", "d-uid", Some(true))
    );
    assert_eq!(ann(&rs.metadata, REVISION_ANNOTATION), Some("1"));
    assert_eq!(ann(&rs.metadata, DESIRED_REPLICAS_ANNOTATION), Some("3"));
    assert_eq!(ann(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("4"));
    assert_eq!(ann(&rs.metadata, CHANGE_CAUSE_ANNOTATION), Some("init"));
    let Action::UpdateStatus(s) = &acts[2] else {
        panic!("{acts:?}")
    };
    let c = cond(Some(s), CONDITION_PROGRESSING).expect("progressing");
    assert_eq!(c.reason.as_deref(), Some(REASON_NEW_RS_CREATED));
    assert_eq!(
        c.message.clone().unwrap_or_default(),
        format!("Created new replica set \"{name}\"")
    );
    let s = last_status(&acts).expect("final status");
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(
        cond(Some(s), CONDITION_AVAILABLE).map(|c| c.status.as_str()),
        Some("False")
    );
}

#[test]
fn rolling_steps_follow_surge_and_unavailability_budgets() {
    let mut d = deployment(10, "v2");
    set_rolling(&mut d, IntOrString::Int(3), IntOrString::Int(2));
    let old = owned_rs(&d, "v1", 10, 10, 1, 100);
    // Sync 1: new RS created at the surge (3); in the same sync, as kube does, the old RS
    // shrinks by 13 - minAvailable(8) - unavailable new pods(3) = 2.
    let acts = reconcile(&d, std::slice::from_ref(&old), &[], t0());
    let new = creates(&acts)[0];
    assert_eq!(size(new), 3);
    assert_eq!(ann(&new.metadata, REVISION_ANNOTATION), Some("2"));
    assert_eq!(
        updates(&acts).iter().map(|r| size(r)).collect::<Vec<_>>(),
        vec![8]
    );
    // Sync 2: 11 pods, so the new RS grows to 5 and the sync ends there.
    let old8 = owned_rs(&d, "v1", 8, 8, 1, 100);
    let acts = reconcile(
        &d,
        &[old8.clone(), owned_rs(&d, "v2", 3, 0, 2, 10)],
        &[],
        t0(),
    );
    let ups = updates(&acts);
    assert_eq!((ups.len(), size(ups[0])), (1, 5));
    // Sync 3: new pods not available yet: 13 - 8 - 5 = 0, nothing may shrink.
    let acts = reconcile(&d, &[old8, owned_rs(&d, "v2", 5, 0, 2, 10)], &[], t0());
    assert!(updates(&acts).is_empty(), "{acts:?}");
}

#[test]
fn unhealthy_old_replicas_are_removed_first() {
    let mut d = deployment(10, "v3");
    set_rolling(&mut d, IntOrString::Int(3), IntOrString::Int(2));
    let older = owned_rs(&d, "v1", 3, 0, 1, 300); // crashlooping
    let old = owned_rs(&d, "v2", 8, 8, 2, 200);
    let new = owned_rs(&d, "v3", 2, 2, 3, 10);
    // all 13, minAvailable 8, new unavailable 0 -> 5 may go; 3 unhealthy first, then
    // available 10 - 8 = 2 more from the oldest active RS.
    let acts = reconcile(&d, &[older, old, new], &[], t0());
    let ups = updates(&acts);
    let by = |img: &str| {
        ups.iter()
            .find(|r| {
                super::hash::canonical_json(
                    r.spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .unwrap_or(&Default::default()),
                )
                .contains(img)
            })
            .map(|r| size(r))
    };
    assert_eq!(by("\"v1\""), Some(0));
    assert_eq!(by("\"v2\""), Some(6));
}

#[test]
fn existing_new_rs_gets_revision_and_min_ready_seconds_in_one_update() {
    let mut d = deployment(4, "v2");
    set_rolling(&mut d, IntOrString::Int(1), IntOrString::Int(1));
    spec_mut(&mut d).min_ready_seconds = Some(7);
    let old = owned_rs(&d, "v1", 4, 4, 5, 100);
    let new = owned_rs(&d, "v2", 0, 0, 2, 10);
    let acts = reconcile(&d, &[old, new.clone()], &[], t0());
    let ups = updates(&acts);
    let new_ups: Vec<_> = ups
        .iter()
        .filter(|r| r.metadata.name == new.metadata.name)
        .collect();
    assert_eq!(new_ups.len(), 1, "merged into one write: {acts:?}");
    let u = new_ups[0];
    assert_eq!(u.metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(ann(&u.metadata, REVISION_ANNOTATION), Some("6"));
    assert_eq!(u.spec.as_ref().and_then(|s| s.min_ready_seconds), Some(7));
    assert_eq!(size(u), 1);
    assert!(acts.contains(&Action::SetDeploymentRevision("6".into())));
    // No Progressing condition before: FoundNewReplicaSet is recorded.
    let found = acts.iter().any(|a| matches!(a, Action::UpdateStatus(s) if cond(Some(s), CONDITION_PROGRESSING).and_then(|c| c.reason.as_deref()) == Some(REASON_FOUND_NEW_RS)));
    assert!(found, "{acts:?}");
}

#[test]
fn steady_state_is_quiet() {
    let mut w = World::new(deployment(3, "v1"));
    w.run(20, |_, _| {});
    assert!(w.reconcile().is_empty());
    assert_eq!(super::requeue_after(&w.d, &w.rss, w.now), None);
}

#[test]
fn hash_collision_bumps_collision_count_and_stops() {
    let d = deployment(2, "v2");
    let hash = compute_hash(&template("v2"), None);
    // An owned RS with the new RS's name but another template.
    let mut squatter = owned_rs(&d, "v1", 2, 2, 1, 100);
    squatter.metadata.name = Some(format!("web-{hash}"));
    let acts = reconcile(&d, &[squatter.clone()], &[], t0());
    assert_eq!(acts.len(), 1, "{acts:?}");
    let Action::UpdateStatus(s) = &acts[0] else {
        panic!("{acts:?}")
    };
    assert_eq!(s.collision_count, Some(1));
    let mut d2 = d.clone();
    d2.status = Some(s.clone());
    let acts = reconcile(&d2, &[squatter], &[], t0());
    let created = creates(&acts)[0];
    let want = format!("web-{}", compute_hash(&template("v2"), Some(1)));
    assert_eq!(created.metadata.name.as_deref(), Some(want.as_str()));
}

#[test]
fn create_conflict_and_failure_helpers() {
    let d = deployment(2, "v2");
    let ours = owned_rs(&d, "v2", 0, 0, 1, 1);
    assert!(on_replica_set_already_exists(&d, &ours).is_empty());
    let mut foreign = ours.clone();
    foreign.metadata.owner_references = None;
    let acts = on_replica_set_already_exists(&d, &foreign);
    assert!(matches!(&acts[..], [Action::UpdateStatus(s)] if s.collision_count == Some(1)));
    let acts = on_replica_set_create_failed(&d, "web-abc", "quota exceeded", t0());
    let Some(Action::UpdateStatus(s)) = acts.first() else {
        panic!("{acts:?}")
    };
    let c = cond(Some(s), CONDITION_PROGRESSING).expect("c");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(REASON_FAILED_RS_CREATE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("Failed to create new replica set \"web-abc\": quota exceeded")
    );
}

#[test]
fn empty_selector_only_records_observed_generation() {
    let mut d = deployment(2, "v1");
    spec_mut(&mut d).selector = Default::default();
    d.metadata.generation = Some(4);
    let acts = reconcile(&d, &[], &[], t0());
    assert!(matches!(&acts[..], [Action::UpdateStatus(s)] if s.observed_generation == Some(4)));
}

#[test]
fn deleting_deployment_only_syncs_status() {
    let mut d = deployment(5, "v2");
    d.metadata.deletion_timestamp = Some(Time(t0()));
    let old = owned_rs(&d, "v1", 2, 2, 1, 100);
    let acts = reconcile(&d, &[old], &[], t0());
    assert!(
        acts.iter().all(|a| matches!(a, Action::UpdateStatus(_))),
        "{acts:?}"
    );
    assert_eq!(last_status(&acts).and_then(|s| s.replicas), Some(2));
}

#[test]
fn unknown_strategy_does_nothing_but_pause_bookkeeping() {
    let mut d = deployment(2, "v2");
    spec_mut(&mut d).strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
        type_: Some("Canary".into()),
        rolling_update: None,
    });
    assert!(reconcile(&d, &[], &[], t0()).is_empty());
}

#[test]
fn recreate_scales_old_down_then_waits_for_pods() {
    let mut d = deployment(3, "v2");
    set_recreate(&mut d);
    let old = owned_rs(&d, "v1", 3, 3, 1, 100);
    let acts = reconcile(&d, std::slice::from_ref(&old), &[], t0());
    assert!(creates(&acts).is_empty());
    assert_eq!(
        updates(&acts).iter().map(|r| size(r)).collect::<Vec<_>>(),
        vec![0]
    );
    // Old RS at 0 but still reporting pods: wait.
    let mut scaled = old.clone();
    super::util::set_rs_replicas(&mut scaled, 0);
    assert!(creates(&reconcile(&d, &[scaled.clone()], &[], t0())).is_empty());
    // RS status says 0 but a pod of it is still Running: wait.
    if let Some(s) = scaled.status.as_mut() {
        s.replicas = 0;
        s.available_replicas = Some(0);
    }
    let mut w = World::new(d.clone());
    w.rss = vec![scaled.clone()];
    w.terminating
        .insert(scaled.metadata.uid.clone().unwrap_or_default(), 1);
    assert!(creates(&w.reconcile()).is_empty());
    // A Succeeded pod does not count.
    let mut pods = w.pods();
    for p in &mut pods {
        if let Some(st) = p.status.as_mut() {
            st.phase = Some("Succeeded".into());
        }
    }
    let acts = reconcile(&d, &[scaled], &pods, t0());
    assert_eq!(
        creates(&acts).iter().map(|r| size(r)).collect::<Vec<_>>(),
        vec![3]
    );
}

#[test]
fn paused_saturated_new_rs_scales_leftover_old_to_zero() {
    let mut d = deployment(3, "v2");
    spec_mut(&mut d).paused = Some(true);
    let old = owned_rs(&d, "v1", 1, 1, 1, 100);
    let new = owned_rs(&d, "v2", 3, 3, 2, 10);
    let acts = reconcile(&d, &[old, new], &[], t0());
    assert_eq!(
        updates(&acts).iter().map(|r| size(r)).collect::<Vec<_>>(),
        vec![0]
    );
    let s = acts
        .iter()
        .find_map(|a| match a {
            Action::UpdateStatus(s) => Some(s),
            _ => None,
        })
        .expect("paused cond");
    assert_eq!(
        cond(Some(s), CONDITION_PROGRESSING).and_then(|c| c.reason.as_deref()),
        Some(REASON_DEPLOYMENT_PAUSED)
    );
}

#[test]
fn pausing_does_not_overwrite_a_timeout() {
    let mut d = deployment(3, "v2");
    spec_mut(&mut d).paused = Some(true);
    let mut s = DeploymentStatus::default();
    super::status::set_condition(
        &mut s,
        super::status::new_condition(
            CONDITION_PROGRESSING,
            "False",
            REASON_TIMED_OUT,
            "x".into(),
            t0(),
        ),
    );
    d.status = Some(s);
    let new = owned_rs(&d, "v2", 3, 3, 1, 10);
    let acts = reconcile(&d, &[new], &[], t0());
    let s = last_status(&acts).expect("status");
    assert_eq!(
        cond(Some(s), CONDITION_PROGRESSING).and_then(|c| c.reason.as_deref()),
        Some(REASON_TIMED_OUT)
    );
}

#[test]
fn requeue_after_counts_down_to_the_deadline() {
    let mut d = deployment(3, "v2");
    spec_mut(&mut d).progress_deadline_seconds = Some(100);
    let new = owned_rs(&d, "v2", 3, 0, 1, 10);
    assert_eq!(
        requeue_after(&d, std::slice::from_ref(&new), t0()),
        None,
        "no Progressing condition yet"
    );
    let mut s = DeploymentStatus::default();
    super::status::set_condition(
        &mut s,
        super::status::new_condition(
            CONDITION_PROGRESSING,
            "True",
            REASON_RS_UPDATED,
            "x".into(),
            t0(),
        ),
    );
    d.status = Some(s);
    assert_eq!(
        requeue_after(&d, std::slice::from_ref(&new), plus(t0(), 40)),
        Some(std::time::Duration::from_secs(61))
    );
    assert_eq!(
        requeue_after(&d, std::slice::from_ref(&new), plus(t0(), 150)),
        Some(std::time::Duration::ZERO)
    );
    let done = owned_rs(&d, "v2", 3, 3, 1, 10);
    assert_eq!(requeue_after(&d, &[done], plus(t0(), 40)), None, "complete");
}

#[test]
fn scaling_down_mid_rollout_shrinks_proportionally() {
    let mut d10 = deployment(10, "v2");
    set_rolling(&mut d10, pct("25%"), pct("25%"));
    let old = owned_rs(&d10, "v1", 7, 7, 1, 100); // annotated desired 10, max 13
    let new = owned_rs(&d10, "v2", 6, 3, 2, 10);
    let mut d = d10.clone();
    spec_mut(&mut d).replicas = Some(4);
    let acts = reconcile(&d, &[old, new], &[], t0());
    assert!(creates(&acts).is_empty());
    let ups = updates(&acts);
    // allowed 4 + 1 = 5: round(7*5/13)=3 and round(6*5/13)=2.
    assert_eq!(ups.iter().map(|r| size(r)).collect::<Vec<_>>(), vec![3, 2]);
    for rs in ups {
        assert_eq!(ann(&rs.metadata, DESIRED_REPLICAS_ANNOTATION), Some("4"));
        assert_eq!(ann(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("5"));
    }
}

#[test]
fn paused_sync_also_trims_history() {
    let mut d = deployment(2, "v4");
    spec_mut(&mut d).paused = Some(true);
    spec_mut(&mut d).revision_history_limit = Some(1);
    let mut rss: Vec<ReplicaSet> = (1..=3)
        .map(|v| owned_rs(&d, &format!("v{v}"), 0, 0, v, 400 - v * 100))
        .collect();
    rss.push(owned_rs(&d, "v4", 2, 2, 4, 10));
    let acts = reconcile(&d, &rss, &[], t0());
    let deleted: Vec<String> = acts
        .iter()
        .filter_map(|a| match a {
            Action::DeleteReplicaSet {
                name,
                uid,
                resource_version,
            } => {
                assert!(uid.is_some() && resource_version.as_deref() == Some("1"));
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    let want: Vec<String> = rss[..2]
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(deleted, want);
}

#[test]
fn recreate_ignores_pods_of_foreign_replica_sets() {
    let mut d = deployment(2, "v2");
    set_recreate(&mut d);
    let mut w = World::new(d.clone());
    w.rss = vec![owned_rs(&d, "v9", 1, 1, 1, 100)];
    let foreign_pods = w.pods(); // controlled by an RS the deployment does not own
    let acts = reconcile(&d, &[], &foreign_pods, t0());
    assert_eq!(
        creates(&acts).iter().map(|r| size(r)).collect::<Vec<_>>(),
        vec![2]
    );
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}
