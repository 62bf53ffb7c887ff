//! Stable identity and storage of StatefulSet pods, and the set's spec with
//! the API server's defaults applied.
//!
//! Copies pkg/controller/statefulset/stateful_set_utils.go of Kubernetes 1.32
//! (`getParentNameAndOrdinal`, `getStartOrdinal`, `podInOrdinalRange`,
//! `getPodName`, `getPersistentVolumeClaimName`, `isMemberOf`,
//! `identityMatches`, `storageMatches`, `getPersistentVolumeClaims`,
//! `updateStorage`, `initIdentity`, `updateIdentity`, `newStatefulSetPod`,
//! `newVersionedStatefulSetPod`, `setPodRevision`, `getPodRevision`) and the
//! defaults of pkg/apis/apps/v1/defaults.go `SetDefaults_StatefulSet`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};

use super::{API_VERSION, KIND, POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};
use crate::controllers::pods::pod_from_template;

/// The update strategy (`spec.updateStrategy`) after defaulting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `OnDelete`: pods are only replaced when someone deletes them.
    OnDelete,
    /// `RollingUpdate`. `partition` is `None` when `rollingUpdate` is absent
    /// while the type was given explicitly (upstream then creates missing
    /// pods at the current revision below `status.currentReplicas`).
    RollingUpdate {
        /// `rollingUpdate.partition` (default 0 when `rollingUpdate` is set).
        partition: Option<i32>,
    },
}

/// The StatefulSet fields the controller reads, with `SetDefaults_StatefulSet`
/// applied (replicas 1, OrderedReady, RollingUpdate partition 0, revision
/// history 10, Retain/Retain claims).
#[derive(Debug, Clone)]
pub struct Settings {
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    pub namespace: String,
    /// metadata.uid.
    pub uid: String,
    /// spec.replicas (default 1, negative read as 0).
    pub replicas: i32,
    /// spec.ordinals.start (default 0).
    pub start: i32,
    /// spec.minReadySeconds (default 0).
    pub min_ready_seconds: i32,
    /// spec.podManagementPolicy == Parallel (`allowsBurst`).
    pub parallel: bool,
    /// spec.updateStrategy.
    pub strategy: Strategy,
    /// spec.revisionHistoryLimit (default 10).
    pub history_limit: i32,
    /// persistentVolumeClaimRetentionPolicy.whenDeleted == Delete.
    pub delete_when_deleted: bool,
    /// persistentVolumeClaimRetentionPolicy.whenScaled == Delete.
    pub delete_when_scaled: bool,
    /// spec.serviceName ("" when absent).
    pub service_name: String,
}

impl Settings {
    /// Reads `set` with the API server's defaults; `None` without a spec.
    pub fn from_set(set: &StatefulSet) -> Option<Settings> {
        let spec = set.spec.as_ref()?;
        let strategy = match spec.update_strategy.as_ref() {
            Some(s) if s.type_.as_deref() == Some("OnDelete") => Strategy::OnDelete,
            Some(s) if s.type_.as_deref() == Some("RollingUpdate") => Strategy::RollingUpdate {
                partition: s.rolling_update.as_ref().map(|r| r.partition.unwrap_or(0)),
            },
            // An absent type defaults to RollingUpdate with partition 0.
            _ => Strategy::RollingUpdate { partition: Some(0) },
        };
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        let is_delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
        Some(Settings {
            name: set.metadata.name.clone().unwrap_or_default(),
            namespace: set.metadata.namespace.clone().unwrap_or_default(),
            uid: set.metadata.uid.clone().unwrap_or_default(),
            replicas: spec.replicas.unwrap_or(1).max(0),
            start: spec
                .ordinals
                .as_ref()
                .and_then(|o| o.start)
                .unwrap_or(0)
                .max(0),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
            strategy,
            history_limit: spec.revision_history_limit.unwrap_or(10),
            delete_when_deleted: is_delete(policy.and_then(|p| p.when_deleted.as_ref())),
            delete_when_scaled: is_delete(policy.and_then(|p| p.when_scaled.as_ref())),
            service_name: spec.service_name.clone().unwrap_or_default(),
        })
    }

    /// `getEndOrdinal`: the last ordinal of the set (inclusive); `start - 1`
    /// when there are no replicas.
    pub fn end(&self) -> i32 {
        self.start.saturating_add(self.replicas).saturating_sub(1)
    }

    /// `podInOrdinalRange` for an ordinal.
    pub fn in_range(&self, ordinal: i64) -> bool {
        ordinal >= i64::from(self.start) && ordinal <= i64::from(self.end())
    }

    /// `getPodName`: `<set>-<ordinal>`.
    pub fn pod_name(&self, ordinal: i64) -> String {
        format!("{}-{}", self.name, ordinal)
    }

    /// `getPersistentVolumeClaimName`: `<template>-<set>-<ordinal>`.
    pub fn claim_name(&self, template: &str, ordinal: i64) -> String {
        format!("{}-{}-{}", template, self.name, ordinal)
    }
}

/// `getParentNameAndOrdinal`: splits a pod name at its last `-<digits>`
/// suffix (the regexp `(.*)-([0-9]+)$`). The ordinal is -1 when the suffix
/// does not fit an int32; `None` when the name has no such suffix.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let dash = name.rfind('-')?;
    let digits = &name[dash + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ordinal = digits.parse::<i32>().map(i64::from).unwrap_or(-1);
    Some((&name[..dash], ordinal))
}

/// `getOrdinal`: the pod's ordinal, -1 when its name has none.
pub fn ordinal(pod: &Pod) -> i64 {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or(""))
        .map(|(_, o)| o)
        .unwrap_or(-1)
}

/// `isMemberOf`: the pod's name is `<set>-<digits>`.
pub fn is_member(s: &Settings, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or(""))
        .is_some_and(|(parent, _)| parent == s.name)
}

/// `getPodRevision`: the `controller-revision-hash` label ("" when absent).
pub fn pod_revision(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

/// `identityMatches`: valid ordinal, name `<set>-<ordinal>`, the set's
/// namespace and the `statefulset.kubernetes.io/pod-name` label.
pub fn identity_matches(s: &Settings, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let Some((parent, ord)) = parent_and_ordinal(name) else {
        return false;
    };
    ord >= 0
        && parent == s.name
        && name == s.pod_name(ord)
        && pod.metadata.namespace.as_deref().unwrap_or("") == s.namespace
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_NAME_LABEL))
            .is_some_and(|v| v == name)
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[])
}

fn template_name(t: &PersistentVolumeClaim) -> &str {
    t.metadata.name.as_deref().unwrap_or("")
}

/// `storageMatches`: every volumeClaimTemplate has a pod volume of the same
/// name that references the claim `<template>-<set>-<ordinal>`.
pub fn storage_matches(s: &Settings, set: &StatefulSet, pod: &Pod) -> bool {
    let ord = ordinal(pod);
    if ord < 0 {
        return false;
    }
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|sp| sp.volumes.as_deref())
        .unwrap_or(&[]);
    claim_templates(set).iter().all(|t| {
        let want = s.claim_name(template_name(t), ord);
        volumes.iter().any(|v| {
            v.name == template_name(t)
                && v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == want)
        })
    })
}

/// `getPersistentVolumeClaims`: one claim per volumeClaimTemplate for the pod
/// with ordinal `ord`, as `(template name, claim)` in template order: the
/// template named `<template>-<set>-<ordinal>`, in the set's namespace, its
/// labels merged with the selector's matchLabels. Status is dropped.
pub fn claims_for(
    s: &Settings,
    set: &StatefulSet,
    ord: i64,
) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|sp| sp.selector.match_labels.clone());
    claim_templates(set)
        .iter()
        .map(|t| {
            let mut claim = t.clone();
            claim.metadata.name = Some(s.claim_name(template_name(t), ord));
            claim.metadata.namespace = Some(s.namespace.clone());
            claim.metadata.labels = match (claim.metadata.labels.take(), &match_labels) {
                (Some(mut l), Some(m)) => {
                    l.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Some(l)
                }
                (Some(l), None) => Some(l),
                (None, m) => m.clone(),
            };
            claim.status = None;
            (template_name(t).to_string(), claim)
        })
        .collect()
}

/// `updateStorage`: the claim volumes first (template order), then the pod's
/// other volumes; a pod volume named like a template is replaced.
pub fn update_storage(s: &Settings, set: &StatefulSet, pod: &mut Pod) {
    let claims = claims_for(s, set, ordinal(pod));
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(tname, claim)| Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(
        current
            .into_iter()
            .filter(|v| !claims.iter().any(|(t, _)| *t == v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// `updateIdentity`: name `<set>-<ordinal>`, the set's namespace, and the
/// `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`
/// labels (the PodIndexLabel gate is GA in 1.32).
pub fn update_identity(s: &Settings, pod: &mut Pod) {
    let ord = ordinal(pod);
    let name = s.pod_name(ord);
    pod.metadata.namespace = Some(s.namespace.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_string(), ord.to_string());
    pod.metadata.name = Some(name);
}

/// `newStatefulSetPod`: the pod built from `template` (`GetPodFromTemplate`
/// with a controller reference to the set), named `<set>-<ordinal>`, with
/// hostname = its name and subdomain = spec.serviceName (`initIdentity`),
/// and its claim volumes (`updateStorage`).
pub fn new_pod(s: &Settings, set: &StatefulSet, template: &PodTemplateSpec, ord: i64) -> Pod {
    let mut pod = pod_from_template(template, &set.metadata, API_VERSION, KIND);
    pod.metadata.name = Some(s.pod_name(ord));
    update_identity(s, &mut pod);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = pod.metadata.name.clone();
    spec.subdomain = (!s.service_name.is_empty()).then(|| s.service_name.clone());
    update_storage(s, set, &mut pod);
    pod
}

/// `newVersionedStatefulSetPod`: the pod for ordinal `ord` at the current
/// revision when it lies below the partition (or, without `rollingUpdate`,
/// below `start + status.currentReplicas`), otherwise at the update revision;
/// the revision name goes into the `controller-revision-hash` label.
pub fn new_versioned_pod(
    s: &Settings,
    set: &StatefulSet,
    current: (&PodTemplateSpec, &str),
    update: (&PodTemplateSpec, &str),
    ord: i64,
) -> Pod {
    let start = i64::from(s.start);
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|st| st.current_replicas)
        .unwrap_or(0);
    let at_current = match s.strategy {
        Strategy::RollingUpdate { partition: None } => ord < start + i64::from(current_replicas),
        Strategy::RollingUpdate { partition: Some(p) } => ord < start + i64::from(p),
        Strategy::OnDelete => false,
    };
    let (template, revision) = if at_current { current } else { update };
    let mut pod = new_pod(s, set, template, ord);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.to_string(), revision.to_string());
    pod
}
