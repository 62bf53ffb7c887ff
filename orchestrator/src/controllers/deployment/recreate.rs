//! Recreate strategy: one step of `rolloutRecreate`.
//!
//! Copies pkg/controller/deployment/recreate.go (`rolloutRecreate`,
//! `scaleDownOldReplicaSetsForRecreate`, `oldPodsRunning`,
//! `scaleUpNewReplicaSetForRecreate`): scale every old RS to 0, wait until no pod of an old
//! RS is left in a non-terminal phase, only then create/scale the new RS.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::status::deployment_complete;
use super::sync::{Planner, Stop};
use super::util;

/// `rolloutRecreate`. `pods` are the pods of the deployment's ReplicaSets (matched to them by
/// controller owner reference UID; others are ignored).
pub(crate) fn rollout(p: &mut Planner, pods: &[Pod]) -> Result<(), Stop> {
    let (mut new, mut old) = p.get_all_and_sync_revision(false)?;
    let mut snap = p.snapshot();
    let active_old: Vec<usize> = old
        .iter()
        .copied()
        .filter(|i| util::is_active(&p.rss[*i]))
        .collect();

    let mut scaled = false;
    for i in active_old {
        scaled |= p.scale_and_record(i, 0);
    }
    if scaled {
        p.sync_rollout_status(&snap, new);
        return Ok(());
    }
    if old_pods_running(&snap, new, &old, pods) {
        p.sync_rollout_status(&snap, new);
        return Ok(());
    }
    if new.is_none() {
        (new, old) = p.get_all_and_sync_revision(true)?;
        snap = p.snapshot();
    }
    if let Some(n) = new {
        let desired = util::replicas(&p.d);
        p.scale_and_record(n, desired);
    }
    if deployment_complete(&p.d, p.d.status.as_ref()) {
        p.cleanup(&snap, &old);
    }
    p.sync_rollout_status(&snap, new);
    Ok(())
}

/// `oldPodsRunning`: an old RS still reports pods, or a pod controlled by an owned RS other
/// than the new one is not Succeeded/Failed (Unknown counts as running).
fn old_pods_running(
    snap: &[k8s_openapi::api::apps::v1::ReplicaSet],
    new: Option<usize>,
    old: &[usize],
    pods: &[Pod],
) -> bool {
    if old
        .iter()
        .map(|i| util::rs_status_replicas(&snap[*i]))
        .sum::<i32>()
        > 0
    {
        return true;
    }
    let new_uid = new.and_then(|i| snap[i].metadata.uid.as_deref());
    let owned: BTreeMap<&str, ()> = snap
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .map(|u| (u, ()))
        .collect();
    pods.iter().any(|pod| {
        let Some(owner) = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
        else {
            return false;
        };
        if !owned.contains_key(owner.uid.as_str()) || Some(owner.uid.as_str()) == new_uid {
            return false;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded") | Some("Failed"))
    })
}
