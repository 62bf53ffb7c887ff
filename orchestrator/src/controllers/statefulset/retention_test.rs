use super::retention::*;
use super::testutil::*;
use super::*;
use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

fn with_policy(mut set: StatefulSet, when_deleted: &str, when_scaled: &str) -> StatefulSet {
    if let Some(spec) = set.spec.as_mut() {
        spec.persistent_volume_claim_retention_policy =
            Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(when_deleted.into()),
                when_scaled: Some(when_scaled.into()),
            });
    }
    set
}

fn refs_of(w: &World, claim: &str) -> Vec<(String, String)> {
    w.pvcs
        .get(claim)
        .and_then(|c| c.metadata.owner_references.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.kind, r.name))
        .collect()
}

#[test]
fn retain_policy_never_touches_claim_owners() {
    let mut w = World::new(sts(2));
    w.converge(10);
    set_replicas(&mut w.set, 1);
    let p = w.sync();
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(a, Action::UpdateClaim { .. })));
    assert!(refs_of(&w, "data-web-1").is_empty());
}

#[test]
fn when_deleted_delete_gives_claims_a_set_controller_ref() {
    let mut w = World::new(with_policy(sts(1), "Delete", "Retain"));
    w.converge(10);
    assert_eq!(
        refs_of(&w, "data-web-0"),
        vec![("StatefulSet".to_string(), "web".to_string())]
    );
    let r = w
        .pvcs
        .get("data-web-0")
        .and_then(|c| c.metadata.owner_references.clone())
        .unwrap_or_default();
    assert_eq!(r[0].uid, SET_UID);
    assert_eq!(r[0].controller, Some(true));
}

#[test]
fn when_scaled_delete_refs_the_condemned_pod_before_deleting_it() {
    let mut w = World::new(with_policy(sts(2), "Retain", "Delete"));
    w.converge(10);
    assert!(refs_of(&w, "data-web-1").is_empty());
    set_replicas(&mut w.set, 1);
    let p = w.sync();
    let order: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateClaim { claim, .. } => claim.metadata.name.as_deref(),
            Action::DeletePod { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec!["data-web-1", "web-1"]);
    assert_eq!(
        refs_of(&w, "data-web-1"),
        vec![("Pod".to_string(), "web-1".to_string())]
    );
    let uid = w
        .pods
        .get("web-1")
        .and_then(|p| p.metadata.uid.clone())
        .unwrap_or_default();
    let r = w
        .pvcs
        .get("data-web-1")
        .and_then(|c| c.metadata.owner_references.clone())
        .unwrap_or_default();
    assert_eq!(r[0].uid, uid);
    assert!(refs_of(&w, "data-web-0").is_empty());
}

#[test]
fn stale_claim_blocks_recreation_until_collected() {
    let mut w = World::new(with_policy(sts(1), "Retain", "Delete"));
    w.converge(10);
    // The claim still points at an earlier web-0 (scaled down and gone).
    if let Some(c) = w.pvcs.get_mut("data-web-0") {
        c.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: "web-0".into(),
            uid: "old-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
    }
    w.pods.clear();
    let p = w.plan();
    assert!(p.created_pods().is_empty());
    w.pvcs.clear();
    let p = w.plan();
    assert_eq!(p.created_pods().len(), 1);
}

#[test]
fn foreign_controller_is_reported_and_our_refs_scrubbed() {
    let mut w = World::new(with_policy(sts(1), "Delete", "Delete"));
    w.converge(10);
    if let Some(c) = w.pvcs.get_mut("data-web-0") {
        let refs = c.metadata.owner_references.get_or_insert_with(Vec::new);
        refs.push(crate::controllers::testutil::owner("other", "Thing"));
    }
    let p = w.plan();
    assert!(p.events.iter().any(|e| e.reason == "ConflictingController"
        && e.message
            .starts_with("PersistentVolumeClaim data-web-0 has a conflicting")));
    let updated = p.actions.iter().find_map(|a| match a {
        Action::UpdateClaim { claim, .. } => Some(claim.clone()),
        _ => None,
    });
    let refs = updated
        .and_then(|c| c.metadata.owner_references)
        .unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].uid, "other");
}

#[test]
fn claim_owner_matrix() {
    let set = with_policy(sts(1), "Delete", "Delete");
    let s = Settings::from_set(&set).expect("spec");
    let claim = claims_for(&s, &set, 0).remove(0).1;
    // Delete/Delete in range: the set, not the pod.
    assert!(!claim_owner_up_to_date(&s, &claim, "web-0", "p1", true));
    let fixed = update_claim_owner_refs(&s, &claim, "web-0", "p1", true);
    assert!(claim_owner_up_to_date(&s, &fixed, "web-0", "p1", true));
    // Scaled down: the pod, not the set.
    assert!(!claim_owner_up_to_date(&s, &fixed, "web-0", "p1", false));
    let moved = update_claim_owner_refs(&s, &fixed, "web-0", "p1", false);
    let kinds: Vec<String> = moved
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, vec!["Pod"]);
    assert!(claim_owner_up_to_date(&s, &moved, "web-0", "p1", false));
    // A non-controller reference to the set must be rewritten.
    let mut loose = fixed.clone();
    if let Some(r) = loose.metadata.owner_references.as_mut() {
        r[0].controller = None;
    }
    assert!(!claim_owner_up_to_date(&s, &loose, "web-0", "p1", true));
}
