//! The StatefulSet controller's I/O: it carries out the actions of
//! [`crate::controllers::statefulset::reconcile`] in order, stopping at the first failure,
//! and records kube's events for each.

use std::sync::Arc;

use futures_util::Stream;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle};

use super::{drain, retry, status_meta, Shared, SyncError};
use crate::controllers::pods::controller_ref;
use crate::controllers::statefulset::{reconcile, Action, Event, EVENT_WARNING};

/// What makes a StatefulSet sync: itself, its pods (changed or deleted) and its revisions.
pub struct Triggers<D> {
    pub sets: ReflectHandle<StatefulSet>,
    pub pods: ReflectHandle<Pod>,
    pub revisions: ReflectHandle<ControllerRevision>,
    pub pods_deleted: D,
}

/// The StatefulSet that controls `pod`, if any.
pub fn owner_of(pod: &Pod) -> Option<ObjectRef<StatefulSet>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    controller_ref(&pod.metadata)
        .filter(|owner| owner.kind == "StatefulSet")
        .map(|owner| ObjectRef::new(&owner.name).within(ns))
}

pub async fn run<D>(shared: Arc<Shared>, triggers: Triggers<D>)
where
    D: Stream<Item = ObjectRef<StatefulSet>> + Send + 'static,
{
    let controller = Controller::for_shared_stream(triggers.sets, shared.statefulsets.clone())
        .owns_shared_stream(triggers.revisions)
        .watches_shared_stream(triggers.pods, |pod: Arc<Pod>| owner_of(&pod))
        .reconcile_on(triggers.pods_deleted);
    drain(controller.run(sync, retry, shared)).await;
}

async fn sync(set: Arc<StatefulSet>, shared: Arc<Shared>) -> Result<Requeue, SyncError> {
    let now = Timestamp::now();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let in_ns = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.namespace.as_deref() == Some(ns.as_str())
    };
    let pods = shared.pods_in(&ns);
    let claims: Vec<PersistentVolumeClaim> = shared
        .claims
        .state_filter(|c| in_ns(&c.metadata))
        .iter()
        .map(|c| c.as_ref().clone())
        .collect();
    let revisions: Vec<ControllerRevision> = shared
        .revisions
        .state_filter(|r| in_ns(&r.metadata))
        .iter()
        .map(|r| r.as_ref().clone())
        .collect();
    let plan = reconcile(&set, &pods, &claims, &revisions, now);
    let name = set.metadata.name.clone().unwrap_or_default();
    for action in &plan.actions {
        let result = execute(&shared, &set, &ns, action).await;
        let error = result.as_ref().err().map(ToString::to_string);
        if let Some(event) = action.event(&name, error.as_deref()) {
            record(&shared, &set, event).await;
        }
        result?;
    }
    for event in plan.events {
        record(&shared, &set, event).await;
    }
    if let Some(e) = plan.error {
        return Err(SyncError::Plan(e));
    }
    Ok(plan
        .requeue_after
        .map(Requeue::requeue)
        .unwrap_or_else(Requeue::await_change))
}

async fn record(shared: &Shared, set: &StatefulSet, event: Event) {
    let warning = event.type_ == EVENT_WARNING;
    shared
        .event(set, warning, &event.reason, &event.reason, event.message)
        .await;
}

/// Ignores NotFound: what the action was for is gone already.
fn gone_ok<T>(result: kube::Result<T>) -> kube::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn execute(
    shared: &Shared,
    set: &StatefulSet,
    ns: &str,
    action: &Action,
) -> kube::Result<()> {
    let client = shared.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let post = PostParams::default();
    let patch = PatchParams::default();
    match action {
        Action::AdoptRevision { name, patch: p } => {
            gone_ok(revisions.patch(name, &patch, &Patch::Strategic(p)).await)
        }
        Action::AdoptPod { name, patch: p } | Action::ReleasePod { name, patch: p } => {
            gone_ok(pods.patch(name, &patch, &Patch::Strategic(p)).await)
        }
        Action::CreateRevision(r) => revisions.create(&post, r).await.map(|_| ()),
        Action::UpdateRevision(r) => {
            let name = r.metadata.name.clone().unwrap_or_default();
            revisions.replace(&name, &post, r).await.map(|_| ())
        }
        Action::CreateClaim { claim, .. } => match claims.create(&post, claim).await {
            // Made by an earlier sync whose answer was lost: the claim is there, as wanted.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            other => other.map(|_| ()),
        },
        Action::UpdateClaim { claim, .. } => {
            let name = claim.metadata.name.clone().unwrap_or_default();
            claims.replace(&name, &post, claim).await.map(|_| ())
        }
        Action::CreatePod(pod) => pods.create(&post, pod).await.map(|_| ()),
        Action::UpdatePod(pod) => {
            let name = pod.metadata.name.clone().unwrap_or_default();
            pods.replace(&name, &post, pod).await.map(|_| ())
        }
        Action::DeletePod { name, uid, .. } => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            gone_ok(pods.delete(name, &params).await)
        }
        Action::UpdateStatus(status) => {
            let sets: Api<StatefulSet> = Api::namespaced(client, ns);
            let object = StatefulSet {
                metadata: status_meta(&set.metadata),
                spec: None,
                status: Some(status.clone()),
            };
            let name = set.metadata.name.clone().unwrap_or_default();
            sets.replace_status(&name, &post, &object).await.map(|_| ())
        }
        Action::DeleteRevision { name } => {
            gone_ok(revisions.delete(name, &DeleteParams::default()).await)
        }
    }
}
