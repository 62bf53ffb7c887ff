//! Tests of status.rs: counters, conditions and the progress deadline.

use super::*;
use crate::controllers::deployment::testutil::*;
use k8s_openapi::api::apps::v1::{ReplicaSetCondition, ReplicaSetStatus};

fn d4() -> Deployment {
    let mut d = deployment(4, "v2");
    set_rolling(&mut d, IntOrString::Int(1), IntOrString::Int(1));
    d
}

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn counters_are_summed_and_unavailable_clamped() {
    let d = d4();
    let old = owned_rs(&d, "v1", 2, 2, 1, 100);
    let mut new = owned_rs(&d, "v2", 3, 1, 2, 10);
    if let Some(s) = new.status.as_mut() {
        s.ready_replicas = Some(2);
    }
    let s = calculate_status(&[&old, &new], Some(&new), &d, t0());
    assert_eq!(s.replicas, Some(5));
    assert_eq!(s.updated_replicas, Some(3));
    assert_eq!(s.ready_replicas, Some(4));
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.unavailable_replicas, Some(2));
    assert_eq!(s.observed_generation, Some(1));
    // More available than desired (scaling down): unavailable clamps to 0.
    let big = owned_rs(&d, "v2", 1, 6, 2, 10);
    let s = calculate_status(&[&big], Some(&big), &d, t0());
    assert_eq!(s.unavailable_replicas, Some(0));
}

#[test]
fn available_condition_uses_max_unavailable() {
    let d = d4();
    let rs = owned_rs(&d, "v2", 4, 3, 1, 10);
    let s = calculate_status(&[&rs], Some(&rs), &d, t0());
    let c = get_condition(Some(&s), CONDITION_AVAILABLE).expect("cond");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some(REASON_MINIMUM_REPLICAS_AVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("Deployment has minimum availability.")
    );
    let rs = owned_rs(&d, "v2", 4, 2, 1, 10);
    let s = calculate_status(&[&rs], Some(&rs), &d, t0());
    let c = get_condition(Some(&s), CONDITION_AVAILABLE).expect("cond");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(REASON_MINIMUM_REPLICAS_UNAVAILABLE))
    );
    assert_eq!(
        c.message.as_deref(),
        Some("Deployment does not have minimum availability.")
    );
}

#[test]
fn set_condition_keeps_times_when_status_unchanged() {
    let mut s = DeploymentStatus::default();
    set_condition(
        &mut s,
        new_condition("Available", "True", "A", "m".into(), t0()),
    );
    set_condition(
        &mut s,
        new_condition("Progressing", "True", "X", "m".into(), t0()),
    );
    // Same status and reason: ignored entirely (even the message).
    set_condition(
        &mut s,
        new_condition("Progressing", "True", "X", "other".into(), plus(t0(), 5)),
    );
    let c = get_condition(Some(&s), "Progressing").expect("c");
    assert_eq!(c.message.as_deref(), Some("m"));
    // Same status, new reason: transition time kept, update time moves; moved to the end.
    set_condition(
        &mut s,
        new_condition("Available", "True", "B", "n".into(), plus(t0(), 9)),
    );
    let cs = s.conditions.clone().unwrap_or_default();
    assert_eq!(cs.last().map(|c| c.type_.as_str()), Some("Available"));
    let c = get_condition(Some(&s), "Available").expect("c");
    assert_eq!(c.last_transition_time.as_ref().map(|t| t.0), Some(t0()));
    assert_eq!(
        c.last_update_time.as_ref().map(|t| t.0),
        Some(plus(t0(), 9))
    );
    // Status flips: both times move.
    set_condition(
        &mut s,
        new_condition("Available", "False", "C", "o".into(), plus(t0(), 20)),
    );
    let c = get_condition(Some(&s), "Available").expect("c");
    assert_eq!(
        c.last_transition_time.as_ref().map(|t| t.0),
        Some(plus(t0(), 20))
    );
}

fn with_progressing(mut d: Deployment, reason: &str, status: &str, at: i64) -> Deployment {
    let mut s = d.status.clone().unwrap_or_default();
    set_condition(
        &mut s,
        new_condition(
            CONDITION_PROGRESSING,
            status,
            reason,
            "x".into(),
            plus(t0(), at),
        ),
    );
    d.status = Some(s);
    d
}

#[test]
fn rollout_status_progress_reasons_and_messages() {
    let d = with_progressing(d4(), REASON_NEW_RS_CREATED, "True", 0);
    let old = owned_rs(&d, "v1", 3, 3, 1, 100);
    let new = owned_rs(&d, "v2", 2, 0, 2, 10);
    let name = new.metadata.name.clone().unwrap_or_default();
    // Progress (updated replicas went up vs. the recorded status).
    let s = rollout_status(&[&old, &new], Some(&new), &d, plus(t0(), 30));
    let c = get_condition(Some(&s), CONDITION_PROGRESSING).expect("c");
    assert_eq!(c.reason.as_deref(), Some(REASON_RS_UPDATED));
    assert_eq!(
        c.message.clone().unwrap_or_default(),
        format!("ReplicaSet \"{name}\" is progressing.")
    );
    assert_eq!(c.last_transition_time.as_ref().map(|t| t.0), Some(t0()));
    assert_eq!(
        c.last_update_time.as_ref().map(|t| t.0),
        Some(plus(t0(), 30))
    );
    // Complete.
    let done = owned_rs(&d, "v2", 4, 4, 2, 10);
    let s = rollout_status(&[&done], Some(&done), &d, plus(t0(), 40));
    let c = get_condition(Some(&s), CONDITION_PROGRESSING).expect("c");
    assert_eq!(c.reason.as_deref(), Some(REASON_NEW_RS_AVAILABLE));
    assert_eq!(
        c.message.clone().unwrap_or_default(),
        format!("ReplicaSet \"{name}\" has successfully progressed.")
    );
}

#[test]
fn progress_deadline_is_strictly_after_last_update() {
    let mut d = with_progressing(d4(), REASON_RS_UPDATED, "True", 0);
    let old = owned_rs(&d, "v1", 3, 3, 1, 100);
    let new = owned_rs(&d, "v2", 2, 0, 2, 10);
    d.status = Some(rollout_status(&[&old, &new], Some(&new), &d, t0()));
    // Same world later: no progress. At exactly the deadline: not yet.
    let s = rollout_status(&[&old, &new], Some(&new), &d, plus(t0(), 600));
    assert_eq!(
        get_condition(Some(&s), CONDITION_PROGRESSING).and_then(|c| c.reason.as_deref()),
        Some(REASON_RS_UPDATED)
    );
    assert_eq!(
        requeue_after_status(&d, &s, plus(t0(), 300)),
        Some(std::time::Duration::from_secs(301))
    );
    assert_eq!(
        requeue_after_status(&d, &s, plus(t0(), 600)),
        Some(std::time::Duration::ZERO)
    );
    let s = rollout_status(&[&old, &new], Some(&new), &d, plus(t0(), 601));
    let c = get_condition(Some(&s), CONDITION_PROGRESSING).expect("c");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(REASON_TIMED_OUT))
    );
    // Disabled deadline: no Progressing condition at all.
    let mut nd = d.clone();
    spec_mut(&mut nd).progress_deadline_seconds = Some(i32::MAX);
    let s = rollout_status(&[&old, &new], Some(&new), &nd, plus(t0(), 601));
    assert!(get_condition(Some(&s), CONDITION_PROGRESSING).is_none());
    assert_eq!(requeue_after_status(&nd, &s, plus(t0(), 1)), None);
}

#[test]
fn replica_failures_are_promoted_and_cleared() {
    let d = d4();
    let mut new = owned_rs(&d, "v2", 4, 0, 2, 10);
    let failure = ReplicaSetCondition {
        type_: CONDITION_REPLICA_FAILURE.into(),
        status: "True".into(),
        reason: Some("FailedCreate".into()),
        message: Some("quota".into()),
        last_transition_time: None,
    };
    new.status = Some(ReplicaSetStatus {
        conditions: Some(vec![failure]),
        ..new.status.clone().unwrap_or_default()
    });
    let s = rollout_status(&[&new], Some(&new), &d, t0());
    let c = get_condition(Some(&s), CONDITION_REPLICA_FAILURE).expect("promoted");
    assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
    let mut d2 = d.clone();
    d2.status = Some(s);
    let healthy = owned_rs(&d, "v2", 4, 0, 2, 10);
    let s = rollout_status(&[&healthy], Some(&healthy), &d2, t0());
    assert!(get_condition(Some(&s), CONDITION_REPLICA_FAILURE).is_none());
}

#[test]
fn status_equality_ignores_absent_versus_zero() {
    let a = DeploymentStatus {
        replicas: Some(0),
        conditions: Some(vec![]),
        ..Default::default()
    };
    assert!(statuses_equal(Some(&a), None));
    let b = DeploymentStatus {
        replicas: Some(1),
        ..Default::default()
    };
    assert!(!statuses_equal(Some(&a), Some(&b)));
    let c = DeploymentStatus {
        collision_count: Some(0),
        ..Default::default()
    };
    assert!(
        !statuses_equal(Some(&c), None),
        "collisionCount is a pointer in Go"
    );
}
