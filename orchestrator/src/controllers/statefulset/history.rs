//! ControllerRevision history of a StatefulSet.
//!
//! Copies pkg/controller/history/controller_history.go
//! (`ControllerRevisionName`, `NewControllerRevision`,
//! `HashControllerRevision`, `SortControllerRevisions`, `EqualRevision`,
//! `FindEqualRevisions`, `realHistory.ListControllerRevisions` /
//! `CreateControllerRevision`) and, from pkg/controller/statefulset,
//! `getPatch`, `newRevision`, `ApplyRevision`, `nextRevision`
//! (stateful_set_utils.go) and `getStatefulSetRevisions` / `truncateHistory`
//! (stateful_set_control.go).
//!
//! Revision data is the strategic-merge patch
//! `{"spec":{"template":{...,"$patch":"replace"}}}`, as upstream, so
//! `kubectl rollout undo statefulset` can apply it. Upstream hashes the bytes
//! Go's encoder produces; here the data is hashed as canonical JSON (keys
//! sorted at every depth) with the same FNV-1 32-bit function, collision
//! suffix and alphabet, so names are stable but differ from a real
//! kube-controller-manager's.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{json, Value};

use super::identity::Settings;
use super::{Action, API_VERSION, HASH_LABEL, KIND};
pub use crate::controllers::hash::{canonical_json, fnv32, safe_encode};
use crate::controllers::pods::{controller_ref, new_controller_ref};

fn data_of(rev: &ControllerRevision) -> &Value {
    static NULL: Value = Value::Null;
    rev.data.as_ref().map(|d| &d.0).unwrap_or(&NULL)
}

/// `HashControllerRevision`: FNV-1 over the data, then the decimal collision
/// count, encoded with the safe alphabet.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = canonical_json(data).into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 bytes.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut cut = prefix.len().min(223);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &prefix[..cut], hash)
}

/// `getPatch`: `{"spec":{"template":<template>}}` with `"$patch":"replace"`
/// added to the template.
pub fn patch_for(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut t {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    json!({ "spec": { "template": t } })
}

/// `ApplyRevision` restricted to what revisions store: the pod template
/// saved in `rev` (its `$patch` directive removed). `Err` when the data holds
/// no decodable template.
pub fn template_of(rev: &ControllerRevision) -> Result<PodTemplateSpec, String> {
    let mut t = data_of(rev)
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .ok_or_else(|| {
            format!(
                "revision {} has no spec.template",
                rev.metadata.name.as_deref().unwrap_or("")
            )
        })?;
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
    }
    serde_json::from_value(t).map_err(|e| e.to_string())
}

/// `newRevision` + `NewControllerRevision`: the revision of the set's current
/// template, numbered `revision`: labels = template labels plus
/// `controller.kubernetes.io/hash`, annotations copied from the set, a
/// controller reference to the set, name `<set>-<hash>`.
pub fn new_revision(
    s: &Settings,
    set: &StatefulSet,
    template: &PodTemplateSpec,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    let data = patch_for(template);
    let hash = hash_revision(&data, Some(collision_count));
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.clone());
    let annotations = set.metadata.annotations.clone().unwrap_or_default();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&s.name, &hash)),
            namespace: Some(s.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(&set.metadata, API_VERSION, KIND)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// `byRevision`: ascending revision, then creation time, then name.
pub fn cmp_revisions(a: &ControllerRevision, b: &ControllerRevision) -> Ordering {
    a.revision
        .cmp(&b.revision)
        .then_with(|| {
            let t = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn hash_label_number(rev: &ControllerRevision) -> Option<i32> {
    rev.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)?
        .parse::<i32>()
        .ok()
}

/// `EqualRevision`: not equal when both hash labels are decimal numbers that
/// differ; otherwise equal when the data are equal.
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    if let (Some(x), Some(y)) = (hash_label_number(a), hash_label_number(b)) {
        if x != y {
            return false;
        }
    }
    data_of(a) == data_of(b)
}

/// The revisions the set works with, as `ListControllerRevisions` +
/// `adoptOrphanRevisions` pick them from `all`: those in the set's namespace
/// whose labels match `selector` and that are controlled by the set or by
/// nobody. Returns (owned, orphans); orphans are only returned when the set
/// is not being deleted.
pub fn select_revisions<'a>(
    s: &Settings,
    set: &StatefulSet,
    selector: &crate::controllers::selector::Selector,
    all: &'a [ControllerRevision],
) -> (Vec<&'a ControllerRevision>, Vec<&'a ControllerRevision>) {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    let mut orphans = Vec::new();
    for rev in all {
        let ns = rev.metadata.namespace.as_deref().unwrap_or(&s.namespace);
        let labels = rev.metadata.labels.clone().unwrap_or_default();
        if ns != s.namespace || !selector.matches(&labels) {
            continue;
        }
        match controller_ref(&rev.metadata) {
            Some(r) if r.uid == s.uid => owned.push(rev),
            Some(_) => {}
            None if !deleting => orphans.push(rev),
            None => {}
        }
    }
    (owned, orphans)
}

/// The strategic-merge patch that adopts an orphan revision
/// (`AdoptControllerRevision`): adds the controller reference, with the
/// revision's uid as precondition.
pub fn adopt_patch(set: &StatefulSet, rev: &ControllerRevision) -> Value {
    let rev_uid = rev.metadata.uid.as_deref().unwrap_or("");
    crate::controllers::pods::adopt_patch(&set.metadata, API_VERSION, KIND, rev_uid)
}

/// The outcome of `getStatefulSetRevisions`.
#[derive(Debug, Clone)]
pub struct Revisions {
    /// The revision `status.currentRevision` names, or the update revision.
    pub current: ControllerRevision,
    /// The revision of the set's template.
    pub update: ControllerRevision,
    /// The collision count to store in the status.
    pub collision_count: i32,
}

/// `getStatefulSetRevisions` over `revisions` (sorted with
/// [`cmp_revisions`]): reuses the newest revision when it equals the set's
/// template; re-numbers an older equal revision to `max + 1` (a rollback,
/// [`Action::UpdateRevision`]); otherwise creates a new one
/// ([`Action::CreateRevision`]), bumping the collision count while the name
/// is taken in `namespace_revisions` by a revision with other data.
pub fn get_revisions(
    s: &Settings,
    set: &StatefulSet,
    revisions: &[&ControllerRevision],
    namespace_revisions: &[ControllerRevision],
    actions: &mut Vec<Action>,
) -> Revisions {
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|st| st.collision_count)
        .unwrap_or(0);
    let template = set
        .spec
        .as_ref()
        .map(|sp| sp.template.clone())
        .unwrap_or_default();
    let next = revisions.last().map(|r| r.revision + 1).unwrap_or(1);
    let candidate = new_revision(s, set, &template, next, collision_count);
    let equal: Vec<&ControllerRevision> = revisions
        .iter()
        .copied()
        .filter(|r| equal_revision(r, &candidate))
        .collect();
    let update = match (equal.last(), revisions.last()) {
        (Some(eq), Some(last)) if equal_revision(last, eq) => (*last).clone(),
        (Some(eq), _) => {
            let mut bumped = (*eq).clone();
            bumped.revision = candidate.revision;
            actions.push(Action::UpdateRevision(bumped.clone()));
            bumped
        }
        (None, _) => {
            let mut rev = candidate;
            loop {
                let name = rev.metadata.name.clone().unwrap_or_default();
                let taken = namespace_revisions.iter().find(|r| {
                    r.metadata.name.as_deref() == Some(name.as_str())
                        && r.metadata.namespace.as_deref().unwrap_or(&s.namespace) == s.namespace
                });
                match taken {
                    Some(existing) if data_of(existing) == data_of(&rev) => {
                        break existing.clone();
                    }
                    Some(_) if collision_count < i32::MAX => {
                        collision_count += 1;
                        rev = new_revision(s, set, &template, next, collision_count);
                    }
                    _ => {
                        actions.push(Action::CreateRevision(rev.clone()));
                        break rev;
                    }
                }
            }
        }
    };
    let current_name = set
        .status
        .as_ref()
        .and_then(|st| st.current_revision.as_deref())
        .unwrap_or("");
    let current = revisions
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(current_name))
        .map(|r| (*r).clone())
        .unwrap_or_else(|| update.clone());
    Revisions {
        current,
        update,
        collision_count,
    }
}

/// `truncateHistory`: names of the non-live revisions to delete, oldest
/// first, so that at most `revisionHistoryLimit` remain. Live revisions are
/// the current and update revisions and those named by a pod's
/// `controller-revision-hash` label (`live_names`).
pub fn truncate(
    s: &Settings,
    revisions: &[&ControllerRevision],
    live_names: &[&str],
) -> Vec<String> {
    let history: Vec<&str> = revisions
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .filter(|n| !live_names.contains(n))
        .collect();
    let limit = s.history_limit;
    let Ok(limit) = usize::try_from(limit) else {
        return Vec::new();
    };
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit]
        .iter()
        .map(|n| n.to_string())
        .collect()
}
