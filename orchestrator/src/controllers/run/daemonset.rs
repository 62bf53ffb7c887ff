//! The DaemonSet controller's I/O: one pod per eligible node, in kube's order (adoptions and
//! releases, creations in slow-start batches, deletions, status), with the expectations that
//! keep a stale cache from creating a node's pod twice.

use std::sync::Arc;

use futures_util::future::join_all;
use futures_util::Stream;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle};

use super::{drain, retry, status_meta, Shared, SyncError};
use crate::controllers::daemonset::{
    adopt_patch, new_pod, reconcile, release_patch, slow_start_batches, status,
};
use crate::controllers::pods::controller_ref;
use crate::controllers::statefulset::{Event, EVENT_WARNING};

/// What makes a DaemonSet sync: itself, its pods (changed or deleted), and any node change.
pub struct Triggers<D> {
    pub daemonsets: ReflectHandle<DaemonSet>,
    pub pods: ReflectHandle<Pod>,
    pub nodes: ReflectHandle<Node>,
    pub pods_deleted: D,
}

/// The expectations key of a DaemonSet (apart from the ReplicaSets' `namespace/name`).
pub fn key(namespace: &str, name: &str) -> String {
    format!("daemonset:{namespace}/{name}")
}

/// The DaemonSet that controls `pod`, if any.
pub fn owner_of(pod: &Pod) -> Option<ObjectRef<DaemonSet>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    controller_ref(&pod.metadata)
        .filter(|owner| owner.kind == "DaemonSet")
        .map(|owner| ObjectRef::new(&owner.name).within(ns))
}

pub async fn run<D>(shared: Arc<Shared>, triggers: Triggers<D>)
where
    D: Stream<Item = ObjectRef<DaemonSet>> + Send + 'static,
{
    let every = shared.daemonsets.clone();
    let controller = Controller::for_shared_stream(triggers.daemonsets, shared.daemonsets.clone())
        .watches_shared_stream(triggers.pods, |pod: Arc<Pod>| owner_of(&pod))
        // A node that comes, goes or changes may need (or stop needing) every set's pod.
        .watches_shared_stream(triggers.nodes, move |_: Arc<Node>| {
            every
                .state()
                .iter()
                .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(triggers.pods_deleted);
    drain(controller.run(sync, retry, shared)).await;
}

async fn sync(ds: Arc<DaemonSet>, shared: Arc<Shared>) -> Result<Requeue, SyncError> {
    let now = Timestamp::now();
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let ds_key = key(&ns, &name);
    let nodes = shared.nodes.state();
    let pods = shared.pods_in(&ns);
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &ns);
    let satisfied = shared.expectations.lock().satisfied(&ds_key, now);
    if !satisfied {
        if let Some(status) = status(&ds, &nodes, &pods, false, now) {
            write_status(&shared, &ds, status).await?;
        }
        return Ok(Requeue::requeue(std::time::Duration::from_secs(1)));
    }
    let plan = reconcile(&ds, &nodes, &pods, now);
    for event in &plan.events {
        record(&shared, &ds, event).await;
    }
    if let Some(e) = &plan.error {
        return Err(SyncError::Plan(e.clone()));
    }
    let by_name = |n: &String| {
        pods.iter()
            .find(|p| p.metadata.name.as_ref() == Some(n))
            .cloned()
    };
    for (names, adopt) in [(&plan.adopt, true), (&plan.release, false)] {
        for pod in names.iter().filter_map(by_name) {
            let patch = if adopt {
                adopt_patch(&ds, &pod)
            } else {
                release_patch(&ds, &pod)
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            match api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                other => {
                    other?;
                }
            }
        }
    }
    shared.expectations.lock().set_expectations(
        &ds_key,
        plan.create.len() as i64,
        plan.delete.len() as i64,
        now,
    );
    let mut failure = None;
    let mut nodes_left = plan.create.iter();
    let mut attempted = 0;
    for batch in slow_start_batches(plan.create.len()) {
        let creates = nodes_left
            .by_ref()
            .take(batch)
            .filter_map(|node| new_pod(&ds, node, &plan.hash));
        let params = PostParams::default();
        let results = join_all(creates.map(|pod| {
            let api = api.clone();
            let params = params.clone();
            async move { api.create(&params, &pod).await }
        }))
        .await;
        attempted += batch;
        for result in results {
            match result {
                Ok(created) => {
                    let pod = created.metadata.name.unwrap_or_default();
                    shared
                        .event(
                            &*ds,
                            false,
                            "SuccessfulCreate",
                            "Create",
                            format!("Created pod: {pod}"),
                        )
                        .await;
                }
                Err(e) => {
                    shared.expectations.lock().creation_observed(&ds_key);
                    shared
                        .event(
                            &*ds,
                            true,
                            "FailedCreate",
                            "Create",
                            format!("Error creating: {e}"),
                        )
                        .await;
                    failure.get_or_insert(e.to_string());
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    {
        let mut exp = shared.expectations.lock();
        for _ in attempted..plan.create.len() {
            exp.creation_observed(&ds_key);
        }
    }
    for pod in &plan.delete {
        match api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                shared
                    .event(
                        &*ds,
                        false,
                        "SuccessfulDelete",
                        "Delete",
                        format!("Deleted pod: {pod}"),
                    )
                    .await;
            }
            Err(e) => {
                shared
                    .expectations
                    .lock()
                    .deletion_observed(&ds_key, &format!("{ns}/{pod}"));
                if !matches!(&e, kube::Error::Api(a) if a.code == 404) {
                    failure.get_or_insert(e.to_string());
                }
            }
        }
    }
    if let Some(status) = plan.status.clone() {
        write_status(&shared, &ds, status).await?;
    }
    if let Some(e) = failure {
        return Err(SyncError::Plan(e));
    }
    Ok(plan
        .requeue_after
        .map(Requeue::requeue)
        .unwrap_or_else(Requeue::await_change))
}

async fn write_status(
    shared: &Shared,
    ds: &DaemonSet,
    status: k8s_openapi::api::apps::v1::DaemonSetStatus,
) -> Result<(), SyncError> {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    let api: Api<DaemonSet> = Api::namespaced(shared.client.clone(), ns);
    let object = DaemonSet {
        metadata: status_meta(&ds.metadata),
        spec: None,
        status: Some(status),
    };
    let name = ds.metadata.name.clone().unwrap_or_default();
    api.replace_status(&name, &PostParams::default(), &object)
        .await?;
    Ok(())
}

async fn record(shared: &Shared, ds: &DaemonSet, event: &Event) {
    let warning = event.type_ == EVENT_WARNING;
    shared
        .event(
            ds,
            warning,
            &event.reason,
            &event.reason,
            event.message.clone(),
        )
        .await;
}
