//! The pod and claim writes of one sync, planned instead of performed.
//!
//! Copies pkg/controller/statefulset/stateful_pod_control.go of Kubernetes
//! 1.32 (`CreateStatefulPod`, `UpdateStatefulPod`, `DeleteStatefulPod`,
//! `ClaimsMatchRetentionPolicy`, `UpdatePodClaimForRetentionPolicy`,
//! `PodClaimIsStale`, `createMissingPersistentVolumeClaims`,
//! `createPersistentVolumeClaims`). Reads of claims go to the caller's claim
//! list (upstream's lister); claims this plan updates are kept in an overlay
//! so later steps see them, claims it creates are not (as upstream's cache).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};

use super::identity::{
    claims_for, identity_matches, ordinal, storage_matches, update_identity, update_storage,
    Settings,
};
use super::retention::{
    claim_owner_up_to_date, has_stale_owner_ref, has_unexpected_controller,
    update_claim_owner_refs, Owner,
};
use super::{Action, DeleteReason, Event, EVENT_WARNING};

/// Planner state shared by the steps of one sync.
#[derive(Debug)]
pub struct PodControl<'a> {
    /// The set's settings.
    pub s: &'a Settings,
    /// The set (its claim templates and selector are read).
    pub set: &'a StatefulSet,
    /// Claims of the namespace by name, with this plan's updates applied.
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    /// The planned writes, in order.
    pub actions: Vec<Action>,
    /// Events to record whatever the outcome of the writes.
    pub events: Vec<Event>,
    /// Pods this plan already deletes (never deleted twice).
    pub deleted: BTreeSet<String>,
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

impl<'a> PodControl<'a> {
    /// A planner over the claims of the set's namespace.
    pub fn new(s: &'a Settings, set: &'a StatefulSet, pvcs: &[PersistentVolumeClaim]) -> Self {
        let claims = pvcs
            .iter()
            .filter(|c| c.metadata.namespace.as_deref().unwrap_or(&s.namespace) == s.namespace)
            .filter_map(|c| Some((c.metadata.name.clone()?, c.clone())))
            .collect();
        PodControl {
            s,
            set,
            claims,
            actions: Vec::new(),
            events: Vec::new(),
            deleted: BTreeSet::new(),
        }
    }

    fn in_range(&self, pod: &Pod) -> bool {
        self.s.in_range(ordinal(pod))
    }

    /// `createPersistentVolumeClaims`: plans a create for each missing claim
    /// of `pod`; `Err` when one of them is being deleted.
    pub fn create_claims(&mut self, pod: &Pod) -> Result<(), String> {
        let mut errs = Vec::new();
        for (_, claim) in claims_for(self.s, self.set, ordinal(pod)) {
            let cname = claim.metadata.name.clone().unwrap_or_default();
            match self.claims.get(&cname) {
                None => self.actions.push(Action::CreateClaim {
                    claim,
                    pod: name_of(pod).to_string(),
                }),
                Some(c) if c.metadata.deletion_timestamp.is_some() => {
                    errs.push(format!("pvc {cname} is being deleted"));
                }
                Some(_) => {}
            }
        }
        aggregate(errs)
    }

    /// `ClaimsMatchRetentionPolicy`: every existing claim of `pod` carries the
    /// owner references the retention policy asks for (missing claims match).
    pub fn claims_match_retention(&self, pod: &Pod) -> bool {
        let in_range = self.in_range(pod);
        claims_for(self.s, self.set, ordinal(pod))
            .iter()
            .filter_map(|(_, c)| self.claims.get(c.metadata.name.as_deref().unwrap_or("")))
            .all(|c| claim_owner_up_to_date(self.s, c, name_of(pod), uid_of(pod), in_range))
    }

    /// `UpdatePodClaimForRetentionPolicy`: plans an update of each existing
    /// claim of `pod` whose owner references disagree with the policy, and a
    /// `ConflictingController` warning for claims another controller owns.
    pub fn update_claims_for_retention(&mut self, pod: &Pod) {
        let in_range = self.in_range(pod);
        let set_owner = Owner::set(self.s);
        let pod_owner = Owner::pod(name_of(pod), uid_of(pod));
        for (_, wanted) in claims_for(self.s, self.set, ordinal(pod)) {
            let cname = wanted.metadata.name.clone().unwrap_or_default();
            let Some(claim) = self.claims.get(&cname) else {
                continue;
            };
            if has_unexpected_controller(self.s, claim, &set_owner, &pod_owner) {
                self.events.push(Event {
                    type_: EVENT_WARNING,
                    reason: "ConflictingController".into(),
                    message: format!(
                        "PersistentVolumeClaim {cname} has a conflicting OwnerReference that acts \
                         as a manging controller, the retention policy is ignored for this claim"
                    ),
                });
            }
            if claim_owner_up_to_date(self.s, claim, name_of(pod), uid_of(pod), in_range) {
                continue;
            }
            let updated =
                update_claim_owner_refs(self.s, claim, name_of(pod), uid_of(pod), in_range);
            self.claims.insert(cname, updated.clone());
            self.actions.push(Action::UpdateClaim {
                claim: updated,
                pod: name_of(pod).to_string(),
            });
        }
    }

    /// `PodClaimIsStale`: with `whenScaled: Delete`, an existing claim of the
    /// pod about to be created still references an earlier pod of that name;
    /// creation waits for the garbage collector.
    pub fn claim_is_stale(&self, pod: &Pod) -> bool {
        if !self.s.delete_when_scaled {
            return false;
        }
        let owner = Owner::pod(name_of(pod), uid_of(pod));
        claims_for(self.s, self.set, ordinal(pod))
            .iter()
            .filter_map(|(_, c)| self.claims.get(c.metadata.name.as_deref().unwrap_or("")))
            .any(|c| has_stale_owner_ref(c, &owner))
    }

    /// `createMissingPersistentVolumeClaims`: for a Pending pod, creates its
    /// missing claims and fixes the retention owner references.
    pub fn create_missing_claims(&mut self, pod: &Pod) -> Result<(), String> {
        self.create_claims(pod)?;
        self.update_claims_for_retention(pod);
        Ok(())
    }

    /// `CreateStatefulPod`: the pod's claims first, then the pod, then the
    /// retention references of claims that already existed.
    pub fn create_pod(&mut self, pod: &Pod) -> Result<(), String> {
        self.create_claims(pod)?;
        self.actions.push(Action::CreatePod(pod.clone()));
        self.update_claims_for_retention(pod);
        Ok(())
    }

    /// `UpdateStatefulPod`: repairs the identity (name label, index label,
    /// namespace) and the claim volumes of an existing pod, creating missing
    /// claims, and fixes retention references. The pod update is only planned
    /// when identity or storage changed (upstream also writes the unchanged
    /// pod when only claims were fixed).
    pub fn update_pod(&mut self, pod: &Pod) -> Result<(), String> {
        let mut p = pod.clone();
        let mut dirty = false;
        if !identity_matches(self.s, &p) {
            update_identity(self.s, &mut p);
            dirty = true;
        }
        if !storage_matches(self.s, self.set, &p) {
            update_storage(self.s, self.set, &mut p);
            dirty = true;
            self.create_claims(&p)?;
        }
        if !self.claims_match_retention(&p) {
            self.update_claims_for_retention(&p);
        }
        if dirty {
            self.actions.push(Action::UpdatePod(p));
        }
        Ok(())
    }

    /// `DeleteStatefulPod`, at most once per pod and plan.
    pub fn delete_pod(&mut self, pod: &Pod, reason: DeleteReason) {
        let name = name_of(pod).to_string();
        if self.deleted.insert(name.clone()) {
            self.actions.push(Action::DeletePod {
                name,
                uid: pod.metadata.uid.clone(),
                reason,
            });
        }
    }
}

/// `utilerrors.NewAggregate(..).Error()`: one message as is, several as
/// `[a, b]`.
fn aggregate(errs: Vec<String>) -> Result<(), String> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.into_iter().next().unwrap_or_default()),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}
