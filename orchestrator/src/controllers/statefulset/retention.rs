//! `persistentVolumeClaimRetentionPolicy`: the owner references the
//! controller keeps on each pod's claims so that the garbage collector
//! deletes them when the set is deleted (`whenDeleted: Delete`, reference to
//! the set) or when the pod is scaled away (`whenScaled: Delete`, reference
//! to the condemned pod).
//!
//! Copies stateful_set_utils.go of Kubernetes 1.32 (`matchesRef`,
//! `hasUnexpectedController`, `hasNonControllerOwner`, `removeRefs`,
//! `isClaimOwnerUpToDate`, `updateClaimOwnerRefForSetAndPod`, `hasOwnerRef`,
//! `hasStaleOwnerRef`, `addControllerRef`) and stateful_pod_control.go
//! (`ClaimsMatchRetentionPolicy`, `UpdatePodClaimForRetentionPolicy`,
//! `PodClaimIsStale`).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::identity::Settings;
use super::{API_VERSION, KIND};

/// The owner a claim may reference: the set or one of its pods.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// apiVersion of the owner (`apps/v1` or `v1`).
    pub api_version: &'a str,
    /// Kind of the owner (`StatefulSet` or `Pod`).
    pub kind: &'a str,
    /// Name of the owner.
    pub name: &'a str,
    /// Uid of the owner ("" for a pod not yet created).
    pub uid: &'a str,
}

impl<'a> Owner<'a> {
    /// The set as an owner.
    pub fn set(s: &'a Settings) -> Owner<'a> {
        Owner {
            api_version: API_VERSION,
            kind: KIND,
            name: &s.name,
            uid: &s.uid,
        }
    }

    /// A pod as an owner.
    pub fn pod(name: &'a str, uid: &'a str) -> Owner<'a> {
        Owner {
            api_version: "v1",
            kind: "Pod",
            name,
            uid,
        }
    }

    fn matches(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name
    }

    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            uid: self.uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or(&[])
}

fn has_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    refs(claim).iter().any(|r| r.uid == owner.uid)
}

/// `hasStaleOwnerRef`: the first reference to an object of `owner`'s kind
/// and name carries another uid.
pub fn has_stale_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    refs(claim)
        .iter()
        .find(|r| owner.matches(r))
        .is_some_and(|r| r.uid != owner.uid)
}

/// `hasUnexpectedController`: with a Delete policy, the claim is controlled
/// by something other than this set or pod (or references an earlier set or
/// pod of the same name).
pub fn has_unexpected_controller(
    s: &Settings,
    claim: &PersistentVolumeClaim,
    set: &Owner,
    pod: &Owner,
) -> bool {
    if !s.delete_when_deleted && !s.delete_when_scaled {
        return false;
    }
    for r in refs(claim) {
        if set.matches(r) {
            if r.uid != set.uid {
                return true;
            }
            continue;
        }
        if pod.matches(r) {
            if r.uid != pod.uid {
                return true;
            }
            continue;
        }
        if r.controller == Some(true) {
            return true;
        }
    }
    false
}

fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &Owner, pod: &Owner) -> bool {
    refs(claim)
        .iter()
        .any(|r| (r.uid == set.uid || r.uid == pod.uid) && r.controller != Some(true))
}

/// `isClaimOwnerUpToDate`: the claim's references agree with the policy
/// (Retain/Retain: none; whenDeleted Delete: the set; whenScaled Delete: the
/// pod once scaled down, `in_range` false). Stale or foreign controllers
/// leave the claim alone (true).
pub fn claim_owner_up_to_date(
    s: &Settings,
    claim: &PersistentVolumeClaim,
    pod_name: &str,
    pod_uid: &str,
    in_range: bool,
) -> bool {
    let set = Owner::set(s);
    let pod = Owner::pod(pod_name, pod_uid);
    if has_stale_owner_ref(claim, &set) || has_stale_owner_ref(claim, &pod) {
        return true;
    }
    if has_unexpected_controller(s, claim, &set, &pod) {
        return !(has_owner_ref(claim, &set) || has_owner_ref(claim, &pod));
    }
    if has_non_controller_owner(claim, &set, &pod) {
        return false;
    }
    let scaled_down = !in_range;
    let (want_set, want_pod) = match (s.delete_when_scaled, s.delete_when_deleted) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    };
    has_owner_ref(claim, &set) == want_set && has_owner_ref(claim, &pod) == want_pod
}

/// `updateClaimOwnerRefForSetAndPod`: the claim with its references to the
/// set and pod rewritten for the policy (only removed when a foreign
/// controller is present).
pub fn update_claim_owner_refs(
    s: &Settings,
    claim: &PersistentVolumeClaim,
    pod_name: &str,
    pod_uid: &str,
    in_range: bool,
) -> PersistentVolumeClaim {
    let set = Owner::set(s);
    let pod = Owner::pod(pod_name, pod_uid);
    let unexpected = has_unexpected_controller(s, claim, &set, &pod);
    let mut kept: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !set.matches(r) && !pod.matches(r))
        .cloned()
        .collect();
    if !unexpected {
        let scaled_down = !in_range;
        let mut add = |o: &Owner| {
            if !kept.iter().any(|r| r.uid == o.uid) {
                kept.push(o.controller_ref());
            }
        };
        match (s.delete_when_scaled, s.delete_when_deleted) {
            (false, false) => {}
            (false, true) => add(&set),
            (true, false) => {
                if scaled_down {
                    add(&pod);
                }
            }
            (true, true) => {
                if scaled_down {
                    add(&pod);
                } else {
                    add(&set);
                }
            }
        }
    }
    let mut out = claim.clone();
    out.metadata.owner_references = (!kept.is_empty()).then_some(kept);
    out
}
