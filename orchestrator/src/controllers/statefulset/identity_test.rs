use super::identity::*;
use super::testutil::*;
use super::*;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume};

fn settings(set: &StatefulSet) -> Settings {
    Settings::from_set(set).expect("spec")
}

#[test]
fn parses_parent_and_ordinal_like_the_upstream_regexp() {
    assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
    assert_eq!(parent_and_ordinal("web-0-12"), Some(("web-0", 12)));
    assert_eq!(parent_and_ordinal("my-web-007"), Some(("my-web", 7)));
    assert_eq!(parent_and_ordinal("web-"), None);
    assert_eq!(parent_and_ordinal("web"), None);
    assert_eq!(parent_and_ordinal("web-1x"), None);
    // Too large for an int32: a member with ordinal -1 (ignored by the sync).
    assert_eq!(parent_and_ordinal("web-99999999999"), Some(("web", -1)));
}

#[test]
fn settings_apply_api_server_defaults() {
    let mut set = sts(3);
    let s = settings(&set);
    assert_eq!(s.replicas, 3);
    assert_eq!(s.start, 0);
    assert!(!s.parallel);
    assert_eq!(s.strategy, Strategy::RollingUpdate { partition: Some(0) });
    assert_eq!(s.history_limit, 10);
    assert!(!s.delete_when_deleted && !s.delete_when_scaled);
    assert_eq!(s.service_name, "web");
    if let Some(spec) = set.spec.as_mut() {
        spec.replicas = None;
        spec.update_strategy = Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: None,
        });
    }
    let s = settings(&set);
    assert_eq!(s.replicas, 1);
    // Explicit type without rollingUpdate is not defaulted by the API server.
    assert_eq!(s.strategy, Strategy::RollingUpdate { partition: None });
    if let Some(spec) = set.spec.as_mut() {
        spec.update_strategy = Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: None,
        });
    }
    assert_eq!(settings(&set).strategy, Strategy::OnDelete);
}

#[test]
fn new_pod_has_stable_identity_labels_and_owner() {
    let set = sts(3);
    let s = settings(&set);
    let pod = new_pod(&s, &set, &template("nginx:1"), 2);
    assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
    let l = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get(POD_NAME_LABEL).map(String::as_str), Some("web-2"));
    assert_eq!(l.get(POD_INDEX_LABEL).map(String::as_str), Some("2"));
    assert_eq!(l.get("app").map(String::as_str), Some("web"));
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("web-2"));
    assert_eq!(spec.subdomain.as_deref(), Some("web"));
    let owner = crate::controllers::pods::controller_ref(&pod.metadata).cloned();
    assert_eq!(owner.as_ref().map(|o| o.kind.as_str()), Some("StatefulSet"));
    assert_eq!(owner.as_ref().map(|o| o.uid.as_str()), Some(SET_UID));
    assert!(identity_matches(&s, &pod));
    assert!(storage_matches(&s, &set, &pod));
}

#[test]
fn claims_are_named_per_template_and_ordinal_with_selector_labels() {
    let mut set = sts(2);
    if let Some(spec) = set.spec.as_mut() {
        let mut logs = claim_template("logs");
        logs.metadata.labels = Some(crate::controllers::testutil::labels(&[("kind", "log")]));
        spec.volume_claim_templates = Some(vec![claim_template("data"), logs]);
    }
    let s = settings(&set);
    let claims = claims_for(&s, &set, 1);
    let names: Vec<_> = claims
        .iter()
        .map(|(t, c)| (t.clone(), c.metadata.name.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("data".to_string(), "data-web-1".to_string()),
            ("logs".to_string(), "logs-web-1".to_string())
        ]
    );
    for (_, c) in &claims {
        assert_eq!(c.metadata.namespace.as_deref(), Some("default"));
        let l = c.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        assert!(c.metadata.owner_references.is_none());
    }
    let l = claims[1].1.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get("kind").map(String::as_str), Some("log"));
}

#[test]
fn pod_volumes_reference_claims_and_replace_same_named_volumes() {
    let mut set = sts(1);
    if let Some(spec) = set.spec.as_mut() {
        let pod_spec = spec.template.spec.get_or_insert_with(Default::default);
        pod_spec.volumes = Some(vec![
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
            Volume {
                name: "scratch".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
        ]);
    }
    let s = settings(&set);
    let tpl = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let pod = new_pod(&s, &set, &tpl, 0);
    let vols = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert_eq!(vols.len(), 2);
    assert_eq!(vols[0].name, "data");
    assert_eq!(
        vols[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("data-web-0")
    );
    assert!(vols[0].empty_dir.is_none());
    assert_eq!(vols[1].name, "scratch");
}

#[test]
fn identity_and_storage_mismatch_are_detected_and_repaired() {
    let set = sts(2);
    let s = settings(&set);
    let mut pod = new_pod(&s, &set, &template("nginx:1"), 1);
    if let Some(l) = pod.metadata.labels.as_mut() {
        l.remove(POD_NAME_LABEL);
    }
    assert!(!identity_matches(&s, &pod));
    update_identity(&s, &mut pod);
    assert!(identity_matches(&s, &pod));
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = None;
    }
    assert!(!storage_matches(&s, &set, &pod));
    update_storage(&s, &set, &mut pod);
    assert!(storage_matches(&s, &set, &pod));
    let mut other_ns = pod.clone();
    other_ns.metadata.namespace = Some("elsewhere".into());
    assert!(!identity_matches(&s, &other_ns));
}

#[test]
fn versioned_pod_below_partition_uses_current_revision() {
    let set = partition(sts(4), 2);
    let s = settings(&set);
    let cur = template("nginx:1");
    let upd = template("nginx:2");
    let low = new_versioned_pod(&s, &set, (&cur, "web-a"), (&upd, "web-b"), 1);
    let high = new_versioned_pod(&s, &set, (&cur, "web-a"), (&upd, "web-b"), 2);
    assert_eq!(pod_revision(&low), "web-a");
    assert_eq!(image_of(&low), "nginx:1");
    assert_eq!(pod_revision(&high), "web-b");
    assert_eq!(image_of(&high), "nginx:2");
}

#[test]
fn membership_needs_the_set_name_prefix() {
    let set = sts(1);
    let s = settings(&set);
    let mk = |n: &str| Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(n.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(is_member(&s, &mk("web-3")));
    assert!(!is_member(&s, &mk("webby-3")));
    assert!(!is_member(&s, &mk("web")));
    assert_eq!(ordinal(&mk("web-3")), 3);
    assert_eq!(ordinal(&mk("web")), -1);
}
