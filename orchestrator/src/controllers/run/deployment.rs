//! The Deployment controller's I/O: it carries out the actions of
//! [`crate::controllers::deployment::reconcile`] in order, stopping at the first failure, and
//! records kube's ScalingReplicaSet events.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use serde_json::json;

use super::{drain, retry, status_meta, Shared, SyncError};
use crate::controllers::deployment::{
    on_replica_set_already_exists, on_replica_set_create_failed, reconcile, requeue_after, Action,
};
use crate::controllers::pods::controller_ref;

/// What makes a Deployment sync: itself, its ReplicaSets (changed or deleted), and for
/// Recreate its pods (changed or deleted).
pub struct Triggers<R, P> {
    pub deployments: ReflectHandle<Deployment>,
    pub replicasets: ReflectHandle<ReplicaSet>,
    pub pods: ReflectHandle<Pod>,
    pub replicasets_deleted: R,
    pub pods_deleted: P,
}

/// The Deployment that controls `rs`, if any.
pub fn owner_of(rs: &ReplicaSet) -> Option<ObjectRef<Deployment>> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or("");
    controller_ref(&rs.metadata)
        .filter(|owner| owner.kind == "Deployment")
        .map(|owner| ObjectRef::new(&owner.name).within(ns))
}

/// The Deployment whose ReplicaSet controls `pod`, if any.
pub fn owner_of_pod(replicasets: &Store<ReplicaSet>, pod: &Pod) -> Option<ObjectRef<Deployment>> {
    let rs = super::replicaset::owner_of(pod)?;
    owner_of(replicasets.get(&rs)?.as_ref())
}

pub async fn run<R, P>(shared: Arc<Shared>, triggers: Triggers<R, P>)
where
    R: futures_util::Stream<Item = ObjectRef<Deployment>> + Send + 'static,
    P: futures_util::Stream<Item = ObjectRef<Deployment>> + Send + 'static,
{
    let store = shared.deployments.clone();
    let (lookup_rs, lookup_d) = (shared.replicasets.clone(), store.clone());
    let recreating = move |d: ObjectRef<Deployment>| {
        lookup_d.get(&d).filter(|d| {
            d.spec
                .as_ref()
                .and_then(|s| s.strategy.as_ref())
                .and_then(|s| s.type_.as_deref())
                == Some("Recreate")
        })
    };
    let recreating_too = recreating.clone();
    let controller = Controller::for_shared_stream(triggers.deployments, store)
        .owns_shared_stream(triggers.replicasets)
        // Pods matter only to Recreate, which waits for the old ones to stop.
        .watches_shared_stream(triggers.pods, move |pod: Arc<Pod>| {
            owner_of_pod(&lookup_rs, &pod)
                .and_then(&recreating)
                .map(|d| ObjectRef::from_obj(d.as_ref()))
        })
        .reconcile_on(triggers.replicasets_deleted)
        .reconcile_on(triggers.pods_deleted.filter_map(move |d| {
            futures_util::future::ready(recreating_too(d.clone()).map(|_| d))
        }));
    drain(controller.run(sync, retry, shared)).await;
}

/// One sync of a Deployment (kube's syncDeployment).
async fn sync(d: Arc<Deployment>, shared: Arc<Shared>) -> Result<Requeue, SyncError> {
    let now = Timestamp::now();
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let uid = d.metadata.uid.clone();
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        controller_ref(meta).is_some_and(|r| Some(&r.uid) == uid.as_ref())
    };
    let rss: Vec<ReplicaSet> = shared
        .replicasets
        .state_filter(|r| {
            r.metadata.namespace.as_deref() == Some(ns.as_str()) && owned(&r.metadata)
        })
        .iter()
        .map(|r| r.as_ref().clone())
        .collect();
    let recreate = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate");
    let pods: Vec<Pod> = if recreate {
        let rs_uids: Vec<&str> = rss
            .iter()
            .filter_map(|r| r.metadata.uid.as_deref())
            .collect();
        shared
            .pods_in(&ns)
            .iter()
            .filter(|p| {
                controller_ref(&p.metadata).is_some_and(|r| rs_uids.contains(&r.uid.as_str()))
            })
            .map(|p| p.as_ref().clone())
            .collect()
    } else {
        Vec::new()
    };
    let actions = reconcile(&d, &rss, &pods, now);
    execute(&shared, &d, &rss, actions, now).await?;
    Ok(requeue_after(&d, &rss, now)
        .map(|after| Requeue::requeue(after.max(std::time::Duration::from_millis(100))))
        .unwrap_or_else(Requeue::await_change))
}

async fn execute(
    shared: &Shared,
    d: &Deployment,
    rss: &[ReplicaSet],
    actions: Vec<Action>,
    now: Timestamp,
) -> Result<(), SyncError> {
    let ns = d.metadata.namespace.as_deref().unwrap_or("");
    let name = d.metadata.name.as_deref().unwrap_or("");
    let rs_api: Api<ReplicaSet> = Api::namespaced(shared.client.clone(), ns);
    let d_api: Api<Deployment> = Api::namespaced(shared.client.clone(), ns);
    for action in actions {
        match action {
            Action::CreateReplicaSet(rs) => {
                let rs_name = rs.metadata.name.clone().unwrap_or_default();
                match rs_api.create(&PostParams::default(), &rs).await {
                    Ok(created) => {
                        let to = replicas(&created);
                        if to > 0 {
                            scaled(shared, d, &rs_name, 0, to).await;
                        }
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        let existing = rs_api.get(&rs_name).await?;
                        let more = on_replica_set_already_exists(d, &existing);
                        Box::pin(execute(shared, d, rss, more, now)).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        let more = on_replica_set_create_failed(d, &rs_name, &e.to_string(), now);
                        Box::pin(execute(shared, d, rss, more, now)).await?;
                        return Err(e.into());
                    }
                }
            }
            Action::UpdateReplicaSet(rs) => {
                let rs_name = rs.metadata.name.clone().unwrap_or_default();
                let from = rss
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(rs_name.as_str()))
                    .map_or(0, replicas);
                let updated = rs_api
                    .replace(&rs_name, &PostParams::default(), &rs)
                    .await?;
                let to = replicas(&updated);
                if from != to {
                    scaled(shared, d, &rs_name, from, to).await;
                }
            }
            Action::DeleteReplicaSet {
                name,
                uid,
                resource_version,
            } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid,
                        resource_version,
                    }),
                    ..DeleteParams::default()
                };
                match rs_api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Action::SetDeploymentRevision(revision) => {
                let patch = json!({ "metadata": { "annotations": {
                    "deployment.kubernetes.io/revision": revision,
                }}});
                d_api
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
            Action::UpdateStatus(status) => {
                let object = Deployment {
                    metadata: status_meta(&d.metadata),
                    spec: None,
                    status: Some(status),
                };
                d_api
                    .replace_status(name, &PostParams::default(), &object)
                    .await?;
            }
        }
    }
    Ok(())
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// kube's ScalingReplicaSet event: "Scaled up replica set web-5d4f8 from 0 to 3".
async fn scaled(shared: &Shared, d: &Deployment, rs: &str, from: i32, to: i32) {
    let direction = if to > from { "up" } else { "down" };
    shared
        .event(
            d,
            false,
            "ScalingReplicaSet",
            "Scaling",
            format!("Scaled {direction} replica set {rs} from {from} to {to}"),
        )
        .await;
}
