//! Rollout simulations: reconcile in a loop against the fake world of `testutil`, checking
//! the surge/availability guarantees after every applied plan and every tick.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::testutil::*;
use super::*;

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

/// A world whose deployment runs `image` fully rolled out (first rollout done).
fn settled(mut d: Deployment, image: &str) -> World {
    spec_mut(&mut d).template = template(image);
    let mut w = World::new(d);
    w.run(50, |_, _| {});
    assert!(w.complete());
    w
}

fn rolling_invariants(replicas: i32, surge: i32, unavailable: i32) -> impl FnMut(&World, &str) {
    move |w: &World, ctx: &str| {
        assert!(
            w.total_pods() <= replicas + surge,
            "{} pods > {}+{}: {ctx}",
            w.total_pods(),
            replicas,
            surge
        );
        assert!(
            w.available() >= replicas - unavailable,
            "{} available < {}-{}: {ctx}",
            w.available(),
            replicas,
            unavailable
        );
    }
}

fn assert_rolled_out(w: &World, image: &str) {
    let new = w.rs_by_image(image).expect("new RS");
    assert_eq!(super::util::rs_replicas(new), super::util::replicas(&w.d));
    for rs in &w.rss {
        if rs.metadata.name != new.metadata.name {
            assert_eq!(super::util::rs_replicas(rs), 0, "old RS still scaled");
        }
    }
    let s = w.d.status.as_ref();
    let p = cond(s, CONDITION_PROGRESSING).expect("progressing");
    assert_eq!(p.reason.as_deref(), Some(REASON_NEW_RS_AVAILABLE));
    let msg = format!(
        "ReplicaSet \"{}\" has successfully progressed.",
        super::util::rs_name(new)
    );
    assert_eq!(p.message.as_deref(), Some(msg.as_str()));
    let a = cond(s, CONDITION_AVAILABLE).expect("available");
    assert_eq!(
        (a.status.as_str(), a.message.as_deref()),
        ("True", Some("Deployment has minimum availability."))
    );
}

#[test]
fn rolling_update_respects_surge_and_unavailability() {
    for (replicas, surge, unavail, ready_per_tick) in [
        (10, pct("25%"), pct("25%"), i32::MAX),
        (10, pct("25%"), pct("25%"), 1),
        (3, IntOrString::Int(0), IntOrString::Int(1), i32::MAX),
        (5, IntOrString::Int(1), IntOrString::Int(0), 1),
        (4, pct("10%"), pct("10%"), 2), // surge 1, unavailable 0
        (2, pct("0%"), pct("1%"), 1),   // both resolve to 0 -> unavailable 1
    ] {
        let mut d = deployment(replicas, "v1");
        set_rolling(&mut d, surge.clone(), unavail.clone());
        let mut w = settled(d, "v1");
        w.ready_per_tick = ready_per_tick;
        let (s, u) = super::util::resolve_fenceposts(&surge, &unavail, replicas);
        w.set_image("v2");
        let steps = w.run(200, rolling_invariants(replicas, s, u));
        assert!(steps > 1);
        assert_rolled_out(&w, "v2");
        assert_eq!(ann(&w.d.metadata, REVISION_ANNOTATION), Some("2"));
        let new = w.rs_by_image("v2").expect("v2");
        assert_eq!(ann(&new.metadata, REVISION_ANNOTATION), Some("2"));
    }
}

#[test]
fn rollover_mid_rollout_keeps_guarantees() {
    let mut d = deployment(10, "v1");
    set_rolling(&mut d, IntOrString::Int(3), IntOrString::Int(2));
    let mut w = settled(d, "v1");
    w.ready_per_tick = 1;
    w.set_image("v2");
    let mut check = rolling_invariants(10, 3, 2);
    for _ in 0..3 {
        w.step();
        check(&w, "v2 phase");
        w.tick(10);
    }
    w.set_image("v3");
    w.run(300, check);
    assert_rolled_out(&w, "v3");
    assert_eq!(
        ann(
            &w.rs_by_image("v3").expect("v3").metadata,
            REVISION_ANNOTATION
        ),
        Some("3")
    );
}

#[test]
fn recreate_never_overlaps_old_and_new_pods() {
    let mut d = deployment(4, "v1");
    set_recreate(&mut d);
    let mut w = settled(d, "v1");
    w.set_image("v2");
    let mut saw_wait = false;
    let check = |w: &World, ctx: &str| {
        let new_pods: i32 = w
            .rs_by_image("v2")
            .map_or(0, super::util::rs_status_replicas);
        let old = w.rs_by_image("v1").expect("v1");
        let old_uid = old.metadata.uid.clone().unwrap_or_default();
        let old_pods = super::util::rs_status_replicas(old)
            + w.terminating.get(&old_uid).copied().unwrap_or(0);
        assert!(new_pods == 0 || old_pods == 0, "overlap: {ctx}");
    };
    for i in 0..30 {
        let acts = w.step();
        check(&w, "apply");
        if acts.is_empty() && w.complete() {
            break;
        }
        // Old pods terminating: the new RS must not exist yet.
        if !w.terminating.is_empty() && w.rs_by_image("v2").is_none() {
            let again = w.reconcile();
            assert!(!again
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_))));
            saw_wait = true;
        }
        w.tick(10);
        check(&w, "tick");
        assert!(i < 29, "did not converge");
    }
    assert!(saw_wait);
    assert_rolled_out(&w, "v2");
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    let mut d = deployment(10, "v1");
    set_rolling(&mut d, pct("25%"), pct("25%"));
    let mut w = settled(d, "v1");
    w.ready_per_tick = 1;
    w.set_image("v2");
    for _ in 0..2 {
        w.step();
        w.tick(10);
    }
    let old_before = super::util::rs_replicas(w.rs_by_image("v1").expect("v1"));
    let new_before = super::util::rs_replicas(w.rs_by_image("v2").expect("v2"));
    assert!(old_before > 0 && new_before > 0 && old_before + new_before <= 13);
    w.set_replicas(20);
    let acts = w.step();
    assert!(!acts
        .iter()
        .any(|a| matches!(a, Action::CreateReplicaSet(_))));
    let old_after = super::util::rs_replicas(w.rs_by_image("v1").expect("v1"));
    let new_after = super::util::rs_replicas(w.rs_by_image("v2").expect("v2"));
    assert_eq!(old_after + new_after, 25, "20 + 5 surge distributed");
    assert!(
        old_after > old_before && new_after > new_before,
        "{old_after} {new_after}"
    );
    for rs in &w.rss {
        assert_eq!(ann(&rs.metadata, DESIRED_REPLICAS_ANNOTATION), Some("20"));
        assert_eq!(ann(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("25"));
    }
    let mut reached = false;
    w.run(300, |w, ctx| {
        assert!(w.total_pods() <= 25, "{ctx}");
        if w.available() >= 15 {
            reached = true;
        }
        assert!(!reached || w.available() >= 15, "{ctx}");
    });
    assert_rolled_out(&w, "v2");
    // And back down to 4, fully settled.
    w.set_replicas(4);
    w.run(50, |w, ctx| assert!(w.total_pods() <= 25, "{ctx}"));
    assert_eq!(w.total_pods(), 4);
}

#[test]
fn pause_freezes_rollout_and_resume_continues() {
    let mut d = deployment(6, "v1");
    set_rolling(&mut d, IntOrString::Int(1), IntOrString::Int(1));
    let mut w = settled(d, "v1");
    w.ready_per_tick = 1;
    w.set_image("v2");
    w.step();
    w.tick(10);
    w.set_paused(true);
    let acts = w.step();
    let p = cond(w.d.status.as_ref(), CONDITION_PROGRESSING).expect("cond");
    assert_eq!(
        (p.status.as_str(), p.reason.as_deref(), p.message.as_deref()),
        (
            "Unknown",
            Some(REASON_DEPLOYMENT_PAUSED),
            Some("Deployment is paused")
        )
    );
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::CreateReplicaSet(_))),
        "{acts:?}"
    );
    let sizes = |w: &World| {
        w.rss
            .iter()
            .map(super::util::rs_replicas)
            .collect::<Vec<_>>()
    };
    // kube's paused `sync` tops the RSs up proportionally to replicas + maxSurge (7).
    let frozen = sizes(&w);
    assert_eq!(frozen.iter().sum::<i32>(), 7);
    // A template change while paused creates nothing; time passing does not time out.
    w.set_image("v3");
    for _ in 0..5 {
        let acts = w.step();
        assert!(!acts
            .iter()
            .any(|a| matches!(a, Action::CreateReplicaSet(_))));
        w.tick(600);
    }
    assert_eq!(sizes(&w), frozen);
    assert_eq!(super::requeue_after(&w.d, &w.rss, w.now), None);
    // Scaling while paused still works (proportionally, within replicas + surge).
    w.set_replicas(12);
    w.step();
    assert_eq!(sizes(&w).iter().sum::<i32>(), 13);
    w.set_paused(false);
    let acts = w.step();
    let first = acts.first().expect("resume status");
    let Action::UpdateStatus(s) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        cond(Some(s), CONDITION_PROGRESSING).and_then(|c| c.reason.as_deref()),
        Some(REASON_DEPLOYMENT_RESUMED)
    );
    w.run(300, |w, ctx| assert!(w.total_pods() <= 13, "{ctx}"));
    assert_rolled_out(&w, "v3");
}

#[test]
fn history_is_trimmed_to_revision_history_limit() {
    let mut d = deployment(2, "v1");
    spec_mut(&mut d).revision_history_limit = Some(2);
    d.metadata.annotations = Some([(CHANGE_CAUSE_ANNOTATION.to_string(), "v1".to_string())].into());
    let mut w = settled(d, "v1");
    for v in 2..=6 {
        let image = format!("v{v}");
        w.set_image(&image);
        w.d.metadata.annotations =
            Some([(CHANGE_CAUSE_ANNOTATION.to_string(), image.clone())].into());
        w.run(100, rolling_invariants(2, 1, 0));
        w.step();
    }
    // kubectl rollout history: revisions 4, 5, 6 remain, each with its change-cause.
    let mut hist: Vec<(String, String)> = w
        .rss
        .iter()
        .map(|rs| {
            (
                ann(&rs.metadata, REVISION_ANNOTATION)
                    .unwrap_or("")
                    .to_string(),
                ann(&rs.metadata, CHANGE_CAUSE_ANNOTATION)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    hist.sort();
    assert_eq!(
        hist,
        vec![
            ("4".into(), "v4".into()),
            ("5".into(), "v5".into()),
            ("6".into(), "v6".into())
        ]
    );
    assert_eq!(w.deleted.len(), 3);
}

#[test]
fn rollout_undo_reuses_old_replica_set_with_new_revision() {
    let mut d = deployment(4, "v1");
    set_rolling(&mut d, IntOrString::Int(1), IntOrString::Int(1));
    let mut w = settled(d, "v1");
    w.set_image("v2");
    w.run(100, rolling_invariants(4, 1, 1));
    let v1_name = w.rs_by_image("v1").expect("v1").metadata.name.clone();
    // kubectl rollout undo: template of revision 1 (hash label dropped) patched in.
    w.set_image("v1");
    let acts = w.step();
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::CreateReplicaSet(_))),
        "{acts:?}"
    );
    w.tick(10);
    w.run(100, rolling_invariants(4, 1, 1));
    assert_rolled_out(&w, "v1");
    let v1 = w.rs_by_image("v1").expect("v1");
    assert_eq!(v1.metadata.name, v1_name);
    assert_eq!(ann(&v1.metadata, REVISION_ANNOTATION), Some("3"));
    assert_eq!(ann(&v1.metadata, REVISION_HISTORY_ANNOTATION), Some("1"));
    assert_eq!(ann(&w.d.metadata, REVISION_ANNOTATION), Some("3"));
    assert_eq!(
        ann(
            &w.rs_by_image("v2").expect("v2").metadata,
            REVISION_ANNOTATION
        ),
        Some("2")
    );
}

#[test]
fn stalled_rollout_exceeds_progress_deadline() {
    let mut d = deployment(4, "v1");
    set_rolling(&mut d, IntOrString::Int(1), IntOrString::Int(1));
    spec_mut(&mut d).progress_deadline_seconds = Some(120);
    let mut w = settled(d, "v1");
    w.stuck_new = true;
    w.set_image("v2");
    let mut timed_out_at = None;
    for i in 0..40 {
        w.step();
        rolling_invariants(4, 1, 1)(&w, "stalled");
        let c = cond(w.d.status.as_ref(), CONDITION_PROGRESSING).expect("progressing");
        if c.reason.as_deref() == Some(REASON_TIMED_OUT) {
            timed_out_at = Some(i);
            break;
        }
        let wait = super::requeue_after(&w.d, &w.rss, w.now);
        assert!(wait.is_some(), "stalled rollout must be requeued");
        w.tick(30);
    }
    assert!(timed_out_at.is_some());
    let name = super::util::rs_name(w.rs_by_image("v2").expect("v2")).to_string();
    let c = cond(w.d.status.as_ref(), CONDITION_PROGRESSING).expect("progressing");
    assert_eq!(c.status, "False");
    assert_eq!(
        c.message.clone().unwrap_or_default(),
        format!("ReplicaSet \"{name}\" has timed out progressing.")
    );
    assert_eq!(super::requeue_after(&w.d, &w.rss, w.now), None);
    // Timed out is sticky: further syncs do not rewrite it.
    w.tick(30);
    let acts = w.step();
    assert!(acts.is_empty(), "{acts:?}");
}
