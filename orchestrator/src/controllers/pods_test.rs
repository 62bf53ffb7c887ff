use super::*;
use crate::controllers::testutil::*;

#[test]
fn active_excludes_finished_and_terminating() {
    assert!(is_active(&pod("a", &[])));
    assert!(is_active(&with_phase(pod("a", &[]), "Pending")));
    assert!(is_active(&with_phase(pod("a", &[]), "Unknown")));
    assert!(!is_active(&with_phase(pod("a", &[]), "Succeeded")));
    assert!(!is_active(&with_phase(pod("a", &[]), "Failed")));
    assert!(!is_active(&deleting(pod("a", &[]))));
}

#[test]
fn ready_needs_ready_condition_true() {
    assert!(!is_ready(&pod("a", &[])));
    assert!(is_ready(&ready(pod("a", &[]), Some(t(0)))));
    let mut p = ready(pod("a", &[]), Some(t(0)));
    if let Some(c) = p
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|c| c.first_mut())
    {
        c.status = "False".into();
    }
    assert!(!is_ready(&p));
}

#[test]
fn available_after_min_ready_seconds_strictly() {
    let p = ready(pod("a", &[]), Some(t(100)));
    assert!(is_available(&p, 0, t(100)));
    assert!(!is_available(&p, 10, t(105)));
    // lastTransitionTime + minReadySeconds must be strictly before now.
    assert!(!is_available(&p, 10, t(110)));
    assert!(is_available(&p, 10, t(111)));
    assert_eq!(available_at(&p, 10), Some(t(110)));
    // Ready without a transition time: only available with minReadySeconds 0.
    let z = ready(pod("b", &[]), None);
    assert!(is_available(&z, 0, t(0)));
    assert!(!is_available(&z, 1, t(1_000_000)));
    assert!(!is_available(&pod("c", &[]), 0, t(0)));
}

#[test]
fn controller_ref_is_the_one_with_controller_true() {
    let mut p = pod("a", &[]);
    let mut other = owner("x", "Foo");
    other.controller = None;
    p.metadata.owner_references = Some(vec![other, owner("y", "ReplicaSet")]);
    assert_eq!(
        controller_ref(&p.metadata).map(|r| r.uid.as_str()),
        Some("y")
    );
    assert!(controller_ref(&orphan(pod("b", &[])).metadata).is_none());
    assert_eq!(pod_key(&p), "default/a");
}

#[test]
fn new_controller_ref_sets_both_flags() {
    let r = rs(1, &[("app", "web")]);
    let cref = new_controller_ref(&r.metadata, "apps/v1", "ReplicaSet");
    assert_eq!(cref.name, "web");
    assert_eq!(cref.uid, RS_UID);
    assert_eq!(cref.api_version, "apps/v1");
    assert_eq!(cref.kind, "ReplicaSet");
    assert_eq!(cref.controller, Some(true));
    assert_eq!(cref.block_owner_deletion, Some(true));
}

#[test]
fn pod_from_template_copies_template_metadata_and_spec() {
    let r = rs(1, &[("app", "web")]);
    let mut template = r
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .expect("template");
    if let Some(m) = template.metadata.as_mut() {
        m.annotations = Some(labels(&[("note", "x")]));
        m.finalizers = Some(vec!["example.com/f".into()]);
        m.name = Some("ignored".into());
    }
    let p = pod_from_template(&template, &r.metadata, "apps/v1", "ReplicaSet");
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(p.metadata.name, None);
    assert_eq!(p.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(p.metadata.labels, Some(labels(&[("app", "web")])));
    assert_eq!(p.metadata.annotations, Some(labels(&[("note", "x")])));
    assert_eq!(
        p.metadata.finalizers,
        Some(vec!["example.com/f".to_string()])
    );
    let refs = p.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].uid, RS_UID);
    assert_eq!(refs[0].controller, Some(true));
    assert_eq!(p.spec, template.spec);
    assert!(p.status.is_none());
    assert_eq!(check_creatable(&p), Ok(()));
}

#[test]
fn pods_prefix_drops_dash_when_too_long() {
    assert_eq!(pods_prefix("web"), "web-");
    let long = "a".repeat(253);
    assert_eq!(pods_prefix(&long), long);
    let fits = "a".repeat(252);
    assert_eq!(pods_prefix(&fits), format!("{fits}-"));
}

#[test]
fn check_creatable_needs_labels_and_full_controller_ref() {
    let r = rs(1, &[]);
    let template = k8s_openapi::api::core::v1::PodTemplateSpec::default();
    let p = pod_from_template(&template, &r.metadata, "apps/v1", "ReplicaSet");
    assert_eq!(
        check_creatable(&p),
        Err("unable to create pods, no labels".to_string())
    );
    let mut q = pod("a", &[("app", "web")]);
    q.metadata.owner_references = None;
    assert_eq!(check_creatable(&q), Err("controllerRef is nil".to_string()));
}
