//! The ReplicaSet controller's I/O: it carries out the [`Plan`] of
//! [`crate::controllers::replicaset::reconcile`] in kube's order (adoptions and releases, then
//! creations in slow-start batches or deletions, then status), keeping the expectations that
//! stop a stale cache from creating or deleting twice.

use std::sync::Arc;

use futures_util::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle};

use super::{drain, retry, status_meta, Shared, SyncError};
use crate::controllers::pods::controller_ref;
use crate::controllers::replicaset::{
    adopt_patch, key, new_pod, reconcile_with_siblings, release_patch, requeue_after,
    slow_start_batches, Plan,
};
use crate::controllers::selector;

/// What makes a ReplicaSet sync: itself, its pods (and orphans it would adopt), and the
/// deletion of its pods.
pub struct Triggers<D> {
    pub replicasets: ReflectHandle<ReplicaSet>,
    pub pods: ReflectHandle<Pod>,
    pub pods_deleted: D,
}

/// The ReplicaSet that controls `pod`, if any.
pub fn owner_of(pod: &Pod) -> Option<ObjectRef<ReplicaSet>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    controller_ref(&pod.metadata)
        .filter(|owner| owner.kind == "ReplicaSet")
        .map(|owner| ObjectRef::new(&owner.name).within(ns))
}

pub async fn run<D>(shared: Arc<Shared>, triggers: Triggers<D>)
where
    D: futures_util::Stream<Item = ObjectRef<ReplicaSet>> + Send + 'static,
{
    let store = shared.replicasets.clone();
    let lookup = store.clone();
    let controller = Controller::for_shared_stream(triggers.replicasets, store)
        // A pod triggers its controller; an orphan, every ReplicaSet that would adopt it.
        .watches_shared_stream(triggers.pods, move |pod: Arc<Pod>| {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            match controller_ref(&pod.metadata) {
                Some(_) => owner_of(&pod).into_iter().collect(),
                None => {
                    let labels = pod.metadata.labels.clone().unwrap_or_default();
                    lookup
                        .state_filter(|rs| {
                            rs.metadata.namespace.as_deref() == Some(ns.as_str())
                                && rs
                                    .spec
                                    .as_ref()
                                    .is_some_and(|s| selector::matches(&s.selector, &labels))
                        })
                        .iter()
                        .map(|rs| ObjectRef::from_obj(rs.as_ref()))
                        .collect::<Vec<_>>()
                }
            }
        })
        .reconcile_on(triggers.pods_deleted);
    drain(controller.run(sync, retry, shared)).await;
}

/// One sync of a ReplicaSet (kube's syncReplicaSet).
async fn sync(rs: Arc<ReplicaSet>, shared: Arc<Shared>) -> Result<Action, SyncError> {
    let now = Timestamp::now();
    let rs_key = key(&rs);
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    let satisfied = shared.expectations.lock().satisfied(&rs_key, now);
    let pods = shared.pods_in(&ns);
    let siblings = shared
        .replicasets
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(ns.as_str()));
    let plan = reconcile_with_siblings(&rs, &siblings, &pods, satisfied, now);
    if let Some(e) = &plan.selector_error {
        tracing::debug!(rs = rs_key, e, "invalid selector; not synced");
        return Ok(Action::await_change());
    }
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    claim(&api, &rs, &plan, &pods).await?;
    let failure = if plan.create > 0 {
        create(&shared, &api, &rs, &rs_key, plan.create).await
    } else if !plan.delete.is_empty() {
        delete(&shared, &api, &rs, &rs_key, &plan).await
    } else {
        None
    };
    let status = match &failure {
        Some(e) => plan.status_after_error(&rs, e, now),
        None => plan.status.clone(),
    };
    if let Some(status) = status {
        let rss: Api<ReplicaSet> = Api::namespaced(shared.client.clone(), &ns);
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let object = ReplicaSet {
            metadata: status_meta(&rs.metadata),
            spec: None,
            status: Some(status),
        };
        rss.replace_status(name, &PostParams::default(), &object)
            .await?;
    }
    if let Some(e) = failure {
        return Err(SyncError::Plan(e));
    }
    Ok(requeue_after(&rs, &plan.claimed, now)
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// Adoptions and releases (kube's ClaimPods); any error but NotFound ends the sync.
async fn claim(
    api: &Api<Pod>,
    rs: &ReplicaSet,
    plan: &Plan,
    pods: &[Arc<Pod>],
) -> Result<(), SyncError> {
    let by_name = |name: &String| {
        pods.iter()
            .find(|p| p.metadata.name.as_ref() == Some(name))
            .cloned()
    };
    let patches = plan
        .adopt
        .iter()
        .filter_map(|n| by_name(n).map(|p| (n, adopt_patch(rs, &p))))
        .chain(
            plan.release
                .iter()
                .filter_map(|n| by_name(n).map(|p| (n, release_patch(rs, &p)))),
        );
    for (name, patch) in patches {
        match api
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates `n` pods in slow-start batches (1, 2, 4, ...), stopping after the first batch with
/// a failure; the expectations of the pods never made are taken back. The first error, if any.
async fn create(
    shared: &Shared,
    api: &Api<Pod>,
    rs: &ReplicaSet,
    rs_key: &str,
    n: usize,
) -> Option<String> {
    let pod = new_pod(rs)?;
    shared
        .expectations
        .lock()
        .expect_creations(rs_key, n, Timestamp::now());
    let mut made = 0;
    let mut failure = None;
    for batch in slow_start_batches(n) {
        let params = PostParams::default();
        let results = join_all((0..batch).map(|_| api.create(&params, &pod))).await;
        for result in results {
            match result {
                Ok(created) => {
                    made += 1;
                    let name = created.metadata.name.unwrap_or_default();
                    shared
                        .event(
                            rs,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {name}"),
                        )
                        .await;
                }
                // A terminating namespace refuses new pods: not the controller's failure.
                Err(kube::Error::Api(e))
                    if e.reason == "Forbidden" && e.message.contains("being terminated") =>
                {
                    made += 1;
                }
                Err(e) => {
                    let message = format!("Error creating: {e}");
                    shared
                        .event(rs, true, "FailedCreate", "Create", message)
                        .await;
                    failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let mut exp = shared.expectations.lock();
    for _ in made..n {
        exp.creation_observed(rs_key);
    }
    failure
}

/// Deletes the plan's pods at once; a failed delete is no longer expected.
async fn delete(
    shared: &Shared,
    api: &Api<Pod>,
    rs: &ReplicaSet,
    rs_key: &str,
    plan: &Plan,
) -> Option<String> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or("");
    shared
        .expectations
        .lock()
        .expect_deletions(rs_key, &plan.delete_keys(ns), Timestamp::now());
    let results = join_all(
        plan.delete
            .iter()
            .map(|name| async move { (name, api.delete(name, &DeleteParams::default()).await) }),
    )
    .await;
    let mut failure = None;
    for (name, result) in results {
        match result {
            Ok(_) => {
                shared
                    .event(
                        rs,
                        false,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
            }
            Err(e) => {
                shared
                    .expectations
                    .lock()
                    .deletion_observed(rs_key, &format!("{ns}/{name}"));
                let not_found = matches!(&e, kube::Error::Api(a) if a.code == 404);
                if !not_found {
                    let message = format!("Error deleting: {e}");
                    shared
                        .event(rs, true, "FailedDelete", "Delete", message)
                        .await;
                    failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    failure
}
