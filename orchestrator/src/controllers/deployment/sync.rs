//! The planner shared by all sync paths: working copies, the new-ReplicaSet lookup and
//! creation, scaling (including proportional scaling), pause conditions and status writes.
//!
//! Copies pkg/controller/deployment/sync.go (`sync`, `syncStatusOnly`,
//! `checkPausedConditions`, `getAllReplicaSetsAndSyncRevision`, `getNewReplicaSet`, `scale`,
//! `scaleReplicaSet`, `scaleReplicaSetAndRecordEvent`, `cleanupDeployment`,
//! `syncDeploymentStatus`, `isScalingEvent`). Where Go calls the API server, the planner
//! appends an [`Action`] and updates its working copy so later steps of the same sync see
//! the change (as Go sees the objects returned by the API calls).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use super::hash::{compute_hash, equal_ignore_hash, POD_TEMPLATE_HASH_LABEL};
use super::status::{self, get_condition, new_condition, set_condition};
use super::{history, util, Action};
use super::{
    CONDITION_PROGRESSING, REASON_DEPLOYMENT_PAUSED, REASON_DEPLOYMENT_RESUMED,
    REASON_FOUND_NEW_RS, REASON_NEW_RS_CREATED, REASON_TIMED_OUT, REVISION_ANNOTATION,
};

/// Returned by a step that ends the sync early (Go returns an error and requeues).
#[derive(Debug)]
pub(crate) struct Stop;

/// Working state of one reconcile.
#[derive(Debug)]
pub(crate) struct Planner {
    /// Working copy of the deployment (status and revision annotation are updated).
    pub d: Deployment,
    /// Working copies of the owned ReplicaSets; a created RS is appended.
    pub rss: Vec<ReplicaSet>,
    /// Actions so far, in execution order.
    pub actions: Vec<Action>,
    /// `now`, truncated to whole seconds (API times are serialised with second precision).
    pub now: Timestamp,
}

/// New RS index (if any) and old RS indices into `Planner::rss`.
pub(crate) type Split = (Option<usize>, Vec<usize>);

impl Planner {
    pub(crate) fn new(d: &Deployment, rss: &[ReplicaSet], now: Timestamp) -> Self {
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        Planner {
            d: d.clone(),
            rss: rss.to_vec(),
            actions: Vec::new(),
            now,
        }
    }

    fn status_mut(&mut self) -> &mut k8s_openapi::api::apps::v1::DeploymentStatus {
        self.d.status.get_or_insert_with(Default::default)
    }

    /// Emits `UpdateStatus` with the working status.
    pub(crate) fn push_status(&mut self) {
        let s = self.d.status.clone().unwrap_or_default();
        self.actions.push(Action::UpdateStatus(s));
    }

    /// Replaces the working copy of RS `idx` and records the write. Each RS is written at
    /// most once per plan: a later write replaces the payload of the earlier action, so every
    /// `UpdateReplicaSet` carries the resourceVersion the caller passed in.
    pub(crate) fn write_rs(&mut self, idx: usize, rs: ReplicaSet) {
        let name = util::rs_name(&rs).to_string();
        let existing = self.actions.iter_mut().find(|a| match a {
            Action::CreateReplicaSet(r) | Action::UpdateReplicaSet(r) => util::rs_name(r) == name,
            _ => false,
        });
        match existing {
            Some(Action::CreateReplicaSet(r)) | Some(Action::UpdateReplicaSet(r)) => {
                *r = rs.clone()
            }
            _ => self.actions.push(Action::UpdateReplicaSet(rs.clone())),
        }
        if let Some(slot) = self.rss.get_mut(idx) {
            *slot = rs;
        }
    }

    /// Clones of the working copies (what Go's `allRSs` slice holds during a step).
    pub(crate) fn snapshot(&self) -> Vec<ReplicaSet> {
        self.rss.clone()
    }

    /// `FindNewReplicaSet` + `FindOldReplicaSets` on the working copies: the oldest RS whose
    /// template equals the deployment's (ignoring the hash label) is the new one.
    pub(crate) fn split(&self) -> Split {
        let Some(tpl) = util::template(&self.d) else {
            return (None, (0..self.rss.len()).collect());
        };
        let mut order: Vec<usize> = (0..self.rss.len()).collect();
        order.sort_by(|a, b| util::cmp_by_creation(&self.rss[*a], &self.rss[*b]));
        let new = order
            .into_iter()
            .find(|i| util::rs_template(&self.rss[*i]).is_some_and(|t| equal_ignore_hash(t, tpl)));
        let old = (0..self.rss.len()).filter(|i| Some(*i) != new).collect();
        (new, old)
    }

    /// `getAllReplicaSetsAndSyncRevision` / `getNewReplicaSet`.
    pub(crate) fn get_all_and_sync_revision(&mut self, create: bool) -> Result<Split, Stop> {
        let (new, old) = self.split();
        let max_old = history::max_revision(old.iter().map(|i| &self.rss[*i]));
        let new_revision = max_old + 1;
        if let Some(idx) = new {
            let mut copy = self.rss[idx].clone();
            let annotations_updated =
                history::set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
            let want_mrs = util::min_ready_seconds(&self.d);
            let have_mrs = copy.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if annotations_updated || have_mrs.unwrap_or(0) != want_mrs {
                copy.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = (want_mrs != 0).then_some(want_mrs);
                self.write_rs(idx, copy);
                return Ok((new, old));
            }
            let rev = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            self.set_deployment_revision(rev);
            if util::progress_deadline(&self.d).is_some()
                && get_condition(self.d.status.as_ref(), CONDITION_PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set {:?}", util::rs_name(&copy));
                let c = new_condition(
                    CONDITION_PROGRESSING,
                    "True",
                    REASON_FOUND_NEW_RS,
                    msg,
                    self.now,
                );
                set_condition(self.status_mut(), c);
                self.push_status();
            }
            return Ok((new, old));
        }
        if !create {
            return Ok((None, old));
        }
        self.create_new_rs(old, new_revision)
    }

    fn set_deployment_revision(&mut self, rev: String) {
        let ann = self
            .d
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        if ann.get(REVISION_ANNOTATION) != Some(&rev) {
            ann.insert(REVISION_ANNOTATION.to_string(), rev.clone());
            self.actions.push(Action::SetDeploymentRevision(rev));
        }
    }

    /// The creation half of `getNewReplicaSet`, with the hash-collision check done against
    /// the owned ReplicaSets (an RS of the same name that is not the new one).
    fn create_new_rs(&mut self, old: Vec<usize>, new_revision: i64) -> Result<Split, Stop> {
        let Some(mut tpl) = util::template(&self.d).cloned() else {
            return Ok((None, old));
        };
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&tpl, collision_count);
        let name = format!("{}-{hash}", self.d.metadata.name.as_deref().unwrap_or(""));
        if self.rss.iter().any(|rs| util::rs_name(rs) == name) {
            let s = self.status_mut();
            s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
            self.push_status();
            return Err(Stop);
        }
        let labels = tpl
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
        let labels = labels.clone();
        let mut selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash);
        let mrs = util::min_ready_seconds(&self.d);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.metadata.namespace.clone(),
                owner_references: Some(vec![controller_ref(&self.d)]),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: (mrs != 0).then_some(mrs),
                selector,
                template: Some(tpl),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().map(|i| &self.rss[*i]).chain([&rs]).collect();
        let count = util::new_rs_new_replicas(&self.d, &all, &rs);
        util::set_rs_replicas(&mut rs, count);
        history::set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        self.actions.push(Action::CreateReplicaSet(rs.clone()));
        self.rss.push(rs);
        let idx = self.rss.len() - 1;
        self.set_deployment_revision(new_revision.to_string());
        if util::progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                REASON_NEW_RS_CREATED,
                msg,
                self.now,
            );
            set_condition(self.status_mut(), c);
            self.push_status();
        }
        Ok((Some(idx), old))
    }

    /// `scaleReplicaSetAndRecordEvent`: no-op when the size already matches.
    pub(crate) fn scale_and_record(&mut self, idx: usize, new_scale: i32) -> bool {
        if util::rs_replicas(&self.rss[idx]) == new_scale {
            return false;
        }
        self.scale_rs(idx, new_scale)
    }

    /// `scaleReplicaSet`: writes size and desired/max-replicas annotations when either
    /// differs; returns true if the size changed.
    pub(crate) fn scale_rs(&mut self, idx: usize, new_scale: i32) -> bool {
        let desired = util::replicas(&self.d);
        let max = desired + util::max_surge(&self.d);
        let rs = &self.rss[idx];
        let size_changed = util::rs_replicas(rs) != new_scale;
        if size_changed || util::replicas_annotations_need_update(rs, desired, max) {
            let mut copy = rs.clone();
            util::set_rs_replicas(&mut copy, new_scale);
            util::set_replicas_annotations(&mut copy, desired, max);
            self.write_rs(idx, copy);
        }
        size_changed
    }

    /// `FindActiveOrLatest`: the only active RS, or the newest one if none is active.
    fn active_or_latest(&self, new: Option<usize>, old: &[usize]) -> Option<usize> {
        let mut old_sorted = old.to_vec();
        old_sorted.sort_by(|a, b| util::cmp_by_creation(&self.rss[*b], &self.rss[*a]));
        let active: Vec<usize> = old_sorted
            .iter()
            .copied()
            .chain(new)
            .filter(|i| util::is_active(&self.rss[*i]))
            .collect();
        match active.len() {
            0 => new.or_else(|| old_sorted.first().copied()),
            1 => Some(active[0]),
            _ => None,
        }
    }

    /// `scale`: resizes ReplicaSets on a scaling event or while paused, spreading the change
    /// proportionally over the active ReplicaSets of a rolling deployment.
    pub(crate) fn scale(&mut self, new: Option<usize>, old: &[usize]) {
        let desired = util::replicas(&self.d);
        if let Some(i) = self.active_or_latest(new, old) {
            if util::rs_replicas(&self.rss[i]) != desired {
                self.scale_and_record(i, desired);
            }
            return;
        }
        if util::is_saturated(&self.d, new.map(|i| &self.rss[i])) {
            let active: Vec<usize> = old
                .iter()
                .copied()
                .filter(|i| util::is_active(&self.rss[*i]))
                .collect();
            for i in active {
                self.scale_and_record(i, 0);
            }
            return;
        }
        if !util::is_rolling(&self.d) {
            return;
        }
        let mut all: Vec<usize> = old
            .iter()
            .copied()
            .chain(new)
            .filter(|i| util::is_active(&self.rss[*i]))
            .collect();
        let current: i32 = all.iter().map(|i| util::rs_replicas(&self.rss[*i])).sum();
        let allowed = if desired > 0 {
            desired + util::max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - current;
        if to_add > 0 {
            all.sort_by(|a, b| util::cmp_by_size_newer(&self.rss[*a], &self.rss[*b]));
        } else if to_add < 0 {
            all.sort_by(|a, b| util::cmp_by_size_older(&self.rss[*a], &self.rss[*b]));
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for i in &all {
            let rs = &self.rss[*i];
            let p = if to_add != 0 {
                util::get_proportion(rs, &self.d, to_add, added)
            } else {
                0
            };
            added += p;
            sizes.push(util::rs_replicas(rs) + p);
        }
        if let Some(first) = sizes.first_mut() {
            if to_add != 0 {
                *first = (*first + to_add - added).max(0);
            }
        }
        for (i, size) in all.into_iter().zip(sizes) {
            self.scale_rs(i, size);
        }
    }

    /// `isScalingEvent`: an active RS whose desired-replicas annotation differs from
    /// spec.replicas.
    pub(crate) fn is_scaling_event(&mut self) -> Result<bool, Stop> {
        let (new, old) = self.get_all_and_sync_revision(false)?;
        let desired = util::replicas(&self.d);
        Ok(old.iter().copied().chain(new).any(|i| {
            let rs = &self.rss[i];
            util::is_active(rs)
                && util::annotation_int(rs, super::DESIRED_REPLICAS_ANNOTATION)
                    .is_some_and(|v| v != desired)
        }))
    }

    /// `cleanupDeployment` over a snapshot of old ReplicaSets.
    pub(crate) fn cleanup(&mut self, snap: &[ReplicaSet], old: &[usize]) {
        let olds: Vec<&ReplicaSet> = old.iter().map(|i| &snap[*i]).collect();
        let dels = history::cleanup_actions(&self.d, &olds);
        self.actions.extend(dels);
    }

    /// `syncDeploymentStatus`: writes `calculateStatus` if it differs.
    pub(crate) fn sync_deployment_status(&mut self, snap: &[ReplicaSet], new: Option<usize>) {
        let all: Vec<&ReplicaSet> = snap.iter().collect();
        let s = status::calculate_status(&all, new.map(|i| &snap[i]), &self.d, self.now);
        self.write_status_if_changed(s);
    }

    /// `syncRolloutStatus`: writes the status with the Progressing condition if it differs.
    pub(crate) fn sync_rollout_status(&mut self, snap: &[ReplicaSet], new: Option<usize>) {
        let all: Vec<&ReplicaSet> = snap.iter().collect();
        let s = status::rollout_status(&all, new.map(|i| &snap[i]), &self.d, self.now);
        self.write_status_if_changed(s);
    }

    fn write_status_if_changed(&mut self, s: k8s_openapi::api::apps::v1::DeploymentStatus) {
        if !status::statuses_equal(self.d.status.as_ref(), Some(&s)) {
            self.d.status = Some(s);
            self.push_status();
        }
    }

    /// `sync`: scaling event or paused deployment.
    pub(crate) fn sync(&mut self) -> Result<(), Stop> {
        let (new, old) = self.get_all_and_sync_revision(false)?;
        let snap = self.snapshot();
        self.scale(new, &old);
        if util::paused(&self.d) {
            self.cleanup(&snap, &old);
        }
        self.sync_deployment_status(&snap, new);
        Ok(())
    }

    /// `syncStatusOnly`: deployment being deleted.
    pub(crate) fn sync_status_only(&mut self) -> Result<(), Stop> {
        let (new, _) = self.get_all_and_sync_revision(false)?;
        let snap = self.snapshot();
        self.sync_deployment_status(&snap, new);
        Ok(())
    }

    /// `checkPausedConditions`: Progressing=Unknown with DeploymentPaused/DeploymentResumed
    /// so a resumed deployment is not failed for the time it spent paused.
    pub(crate) fn check_paused_conditions(&mut self) {
        if util::progress_deadline(&self.d).is_none() {
            return;
        }
        let cond = get_condition(self.d.status.as_ref(), CONDITION_PROGRESSING);
        let reason = cond.and_then(|c| c.reason.as_deref());
        if reason == Some(REASON_TIMED_OUT) {
            return;
        }
        let paused_exists = reason == Some(REASON_DEPLOYMENT_PAUSED);
        let paused = util::paused(&self.d);
        let c = if paused && !paused_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                REASON_DEPLOYMENT_PAUSED,
                "Deployment is paused".into(),
                self.now,
            )
        } else if !paused && paused_exists {
            new_condition(
                CONDITION_PROGRESSING,
                "Unknown",
                REASON_DEPLOYMENT_RESUMED,
                "Deployment is resumed".into(),
                self.now,
            )
        } else {
            return;
        };
        set_condition(self.status_mut(), c);
        self.push_status();
    }
}

/// `metav1.NewControllerRef(d, apps/v1 Deployment)`.
pub(crate) fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.metadata.name.clone().unwrap_or_default(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}
