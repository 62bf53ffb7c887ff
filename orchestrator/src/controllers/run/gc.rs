//! The garbage collector's I/O: every second it builds the owner graph from the shared caches,
//! asks [`crate::controllers::gc::actions`] what to do, confirms absent owners with a live read
//! (a lagging cache must never cascade deletes), and carries the actions out.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    Preconditions,
};
use kube::runtime::reflector::Store;
use kube::Resource;

use super::Shared;
use crate::controllers::gc::{
    actions, remove_finalizer_patch, remove_owner_ref_patch, unblock_patch, Action, Node, ObjectRef,
};

/// How often the graph is looked at (kube's collector is woken by every change; a second's
/// delay is what a cascade takes here).
const PERIOD: Duration = Duration::from_secs(1);

fn nodes_of<K>(store: &Store<K>, out: &mut Vec<Node>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (api_version, kind) = (K::api_version(&()), K::kind(&()));
    for object in store.state() {
        out.push(Node::from_meta(&api_version, &kind, object.meta()));
    }
}

/// The graph of every object the caches hold.
fn graph(shared: &Shared) -> Vec<Node> {
    let mut nodes = Vec::new();
    nodes_of(&shared.pods, &mut nodes);
    nodes_of(&shared.replicasets, &mut nodes);
    nodes_of(&shared.deployments, &mut nodes);
    nodes_of(&shared.statefulsets, &mut nodes);
    nodes_of(&shared.revisions, &mut nodes);
    nodes_of(&shared.claims, &mut nodes);
    nodes_of(&shared.daemonsets, &mut nodes);
    nodes_of(&shared.jobs, &mut nodes);
    nodes_of(&shared.nodes, &mut nodes);
    nodes_of(&shared.services, &mut nodes);
    nodes_of(&shared.endpoint_slices, &mut nodes);
    nodes
}

/// The API of an object by its apiVersion and kind (plural guessed as kube does).
fn api_of(
    shared: &Shared,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match namespace {
        Some(ns) => Api::namespaced_with(shared.client.clone(), ns, &resource),
        None => Api::all_with(shared.client.clone(), &resource),
    }
}

fn api_for(shared: &Shared, target: &ObjectRef) -> Api<DynamicObject> {
    api_of(
        shared,
        &target.api_version,
        &target.kind,
        target.namespace.as_deref(),
    )
}

/// The owner is really gone: not found, or found with another uid (upstream's isDangling).
async fn confirmed_absent(shared: &Shared, dependent: &ObjectRef, owner: &OwnerReference) -> bool {
    // A namespaced dependent's owner is in its namespace, or cluster-scoped: try the first, then
    // the second.
    for namespace in [dependent.namespace.as_deref(), None] {
        match api_of(shared, &owner.api_version, &owner.kind, namespace)
            .get_opt(&owner.name)
            .await
        {
            Ok(Some(found)) if found.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                return false
            }
            Ok(_) => {}
            Err(_) => return false,
        }
        if namespace.is_none() {
            break;
        }
    }
    true
}

/// Runs until aborted.
pub async fn run(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(PERIOD).await;
        let nodes = graph(&shared);
        for action in actions(&nodes) {
            if let Err(e) = execute(&shared, &nodes, &action).await {
                tracing::debug!(%e, ?action, "garbage collection: retrying later");
                break;
            }
        }
    }
}

async fn execute(shared: &Shared, nodes: &[Node], action: &Action) -> kube::Result<()> {
    let patch = PatchParams::default();
    let result = match action {
        Action::Delete {
            target,
            propagation,
            absent_owners,
        } => {
            for owner in absent_owners {
                if !confirmed_absent(shared, target, owner).await {
                    return Ok(());
                }
            }
            let params = DeleteParams {
                propagation_policy: Some(propagation.clone()),
                preconditions: Some(Preconditions {
                    uid: Some(target.uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            api_for(shared, target)
                .delete(&target.name, &params)
                .await
                .map(|_| ())
        }
        Action::RemoveOwnerRef {
            dependent,
            owner_uid,
        } => api_for(shared, dependent)
            .patch(
                &dependent.name,
                &patch,
                &Patch::Strategic(remove_owner_ref_patch(&dependent.uid, owner_uid)),
            )
            .await
            .map(|_| ()),
        Action::UnblockOwnerRefs { dependent } => {
            let node = node_of(nodes, dependent);
            api_for(shared, dependent)
                .patch(&dependent.name, &patch, &Patch::Merge(unblock_patch(&node)))
                .await
                .map(|_| ())
        }
        Action::RemoveFinalizer { object, finalizer } => {
            let node = node_of(nodes, object);
            api_for(shared, object)
                .patch(
                    &object.name,
                    &patch,
                    &Patch::Merge(remove_finalizer_patch(&node, finalizer)),
                )
                .await
                .map(|_| ())
        }
    };
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        other => other,
    }
}

/// The graph's node of `target` (for the patches built from its references and finalizers).
fn node_of(nodes: &[Node], target: &ObjectRef) -> Node {
    nodes
        .iter()
        .find(|n| n.uid == target.uid)
        .cloned()
        .unwrap_or_else(|| {
            Node::from_meta(&target.api_version, &target.kind, &ObjectMeta::default())
        })
}
