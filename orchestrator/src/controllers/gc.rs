//! The pure decision core of the garbage collector.
//!
//! Copies `attemptToDeleteItem`, `classifyReferences`, `isDangling`,
//! `processDeletingDependentsItem` and `attemptToOrphanWorker` of
//! pkg/controller/garbagecollector/garbagecollector.go and the dependency
//! graph rules of graph_builder.go (Kubernetes 1.32), evaluated over a
//! snapshot of the whole object graph instead of work queues:
//!
//! - a dependent all of whose owners are absent is deleted with the
//!   propagation its own finalizers ask for (background by default);
//! - an owner is absent when no object has its uid, or (for a namespaced
//!   dependent) the object with that uid is namespaced in another namespace,
//!   or its kind or name differ from the reference;
//! - a dependent of an owner being deleted in the foreground
//!   (`foregroundDeletion` finalizer) is deleted (with Foreground itself when
//!   it has dependents, unblocking its own references first when one of them
//!   is also deleting its dependents), or, when it has another live owner,
//!   loses the reference; the owner's finalizer goes once no dependent with
//!   `blockOwnerDeletion: true` remains;
//! - an owner being deleted with the `orphan` finalizer loses its reference
//!   from every dependent, then the finalizer.
//!
//! What the integrator must do: keep a [`Node`] for every object of every
//! resource that supports list, watch and delete (discovery; upstream skips
//! only `events`): at least pods, replicasets, deployments, statefulsets,
//! daemonsets, jobs, cronjobs, controllerrevisions, endpointslices,
//! endpoints, services, configmaps, secrets, serviceaccounts,
//! persistentvolumeclaims, persistentvolumes, leases, namespaces, nodes and
//! custom resources; run [`actions`] only once every informer synced and
//! again on any change; carry the actions out in order (stop at a failure
//! and retry later: the orphan finalizer must go only after its owner
//! references); before a [`Action::Delete`] with `absent_owners`, confirm
//! each is really gone with a live GET (upstream's `isDangling` does; a
//! lagging cache must not cascade deletes); delete with
//! `preconditions.uid`; skip an action still in flight for the same object.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{json, Value};

pub use crate::deletion::{PropagationPolicy, FOREGROUND, ORPHAN};

/// One object of the graph, built by the integrator from any object's
/// metadata ([`Node::from_meta`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// metadata.uid.
    pub uid: String,
    /// e.g. `apps/v1`.
    pub api_version: String,
    /// e.g. `ReplicaSet`.
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// metadata.name.
    pub name: String,
    /// metadata.resourceVersion, for patch preconditions.
    pub resource_version: Option<String>,
    /// metadata.ownerReferences.
    pub owner_references: Vec<OwnerReference>,
    /// metadata.deletionTimestamp is set.
    pub being_deleted: bool,
    /// metadata.finalizers.
    pub finalizers: Vec<String>,
}

impl Node {
    /// The node of an object with this apiVersion, kind and metadata.
    pub fn from_meta(api_version: &str, kind: &str, meta: &ObjectMeta) -> Node {
        Node {
            uid: meta.uid.clone().unwrap_or_default(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            owner_references: meta.owner_references.clone().unwrap_or_default(),
            being_deleted: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        }
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// `isDeletingDependents`: being deleted with the foreground finalizer.
    pub fn deleting_dependents(&self) -> bool {
        self.being_deleted && self.has_finalizer(FOREGROUND)
    }

    /// The coordinates of this object.
    pub fn reference(&self) -> ObjectRef {
        ObjectRef {
            uid: self.uid.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// Where an action applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Uid (use as delete / patch precondition).
    pub uid: String,
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// One write the garbage collector makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete the object with `preconditions.uid`.
    Delete {
        /// The object.
        target: ObjectRef,
        /// PropagationPolicy policy to send.
        propagation: PropagationPolicy,
        /// Owner references found absent in the graph: confirm with a live
        /// GET (absent, or present with another uid) before deleting.
        absent_owners: Vec<OwnerReference>,
    },
    /// Drop the owner reference with `owner_uid` from `dependent`
    /// ([`remove_owner_ref_patch`]).
    RemoveOwnerRef {
        /// The dependent.
        dependent: ObjectRef,
        /// Uid of the reference to remove.
        owner_uid: String,
    },
    /// Set `blockOwnerDeletion: false` on every reference of `dependent`
    /// ([`unblock_patch`]): breaks foreground-deletion cycles.
    UnblockOwnerRefs {
        /// The dependent.
        dependent: ObjectRef,
    },
    /// Remove `finalizer` from `object` ([`remove_finalizer_patch`]).
    RemoveFinalizer {
        /// The object.
        object: ObjectRef,
        /// `foregroundDeletion` or `orphan`.
        finalizer: String,
    },
}

/// The graph indexed once per pass: objects by uid, and each owner's references by the
/// owner's uid, so that resolving a reference and listing dependents cost a lookup, not a scan
/// of every object (the graph holds every pod).
struct Graph<'a> {
    nodes: &'a [Node],
    by_uid: HashMap<&'a str, &'a Node>,
    by_owner: HashMap<&'a str, Vec<(&'a Node, &'a OwnerReference)>>,
}

impl<'a> Graph<'a> {
    fn new(nodes: &'a [Node]) -> Self {
        let mut by_uid = HashMap::with_capacity(nodes.len());
        let mut by_owner: HashMap<&str, Vec<_>> = HashMap::new();
        for n in nodes {
            by_uid.entry(n.uid.as_str()).or_insert(n);
            for r in &n.owner_references {
                by_owner.entry(r.uid.as_str()).or_default().push((n, r));
            }
        }
        Self {
            nodes,
            by_uid,
            by_owner,
        }
    }
}

/// What an owner reference of `dependent` points at (`isDangling` plus the
/// graph builder's namespace rules): `None` when absent.
fn resolve<'a>(g: &Graph<'a>, dependent: &Node, r: &OwnerReference) -> Option<&'a Node> {
    let owner = *g.by_uid.get(r.uid.as_str())?;
    let wrong_namespace = dependent.namespace.is_some()
        && owner.namespace.is_some()
        && owner.namespace != dependent.namespace;
    let mismatch = owner.kind != r.kind || owner.name != r.name;
    (!wrong_namespace && !mismatch).then_some(owner)
}

/// The dependents of `owner`: objects with a reference resolving to it.
pub fn dependents<'a>(nodes: &'a [Node], owner: &Node) -> Vec<(&'a Node, &'a OwnerReference)> {
    dependents_in(&Graph::new(nodes), owner)
}

fn dependents_in<'a>(g: &Graph<'a>, owner: &Node) -> Vec<(&'a Node, &'a OwnerReference)> {
    g.by_owner
        .get(owner.uid.as_str())
        .map(|refs| {
            refs.iter()
                .filter(|(n, r)| resolve(g, n, r).is_some())
                .copied()
                .collect()
        })
        .unwrap_or_default()
}

/// Every action the garbage collector takes on this snapshot, in an order
/// the integrator can follow: per object, its orphaning / foreground
/// bookkeeping as an owner, or the collection of it as a dependent.
pub fn actions(nodes: &[Node]) -> Vec<Action> {
    let g = Graph::new(nodes);
    let mut out = Vec::new();
    for n in nodes {
        if n.being_deleted {
            if n.deleting_dependents() {
                // processDeletingDependentsItem.
                let blocking = dependents_in(&g, n)
                    .iter()
                    .any(|(_, r)| r.block_owner_deletion == Some(true));
                if !blocking {
                    out.push(Action::RemoveFinalizer {
                        object: n.reference(),
                        finalizer: FOREGROUND.into(),
                    });
                }
            } else if n.has_finalizer(ORPHAN) {
                out.extend(orphan(&g, n));
            }
            continue;
        }
        out.extend(attempt_to_delete(&g, n));
    }
    out
}

/// The dependent-collection part of [`actions`] only: objects whose owners
/// are all absent or being deleted in the foreground, and references to
/// clean from objects that keep a live owner.
pub fn dangling(nodes: &[Node]) -> Vec<Action> {
    let g = Graph::new(nodes);
    nodes
        .iter()
        .filter(|n| !n.being_deleted)
        .flat_map(|n| attempt_to_delete(&g, n))
        .collect()
}

/// `attemptToOrphanWorker`: every dependent loses its reference to `owner`,
/// then the `orphan` finalizer goes.
fn orphan(g: &Graph, owner: &Node) -> Vec<Action> {
    let mut out: Vec<Action> = dependents_in(g, owner)
        .into_iter()
        .map(|(d, _)| Action::RemoveOwnerRef {
            dependent: d.reference(),
            owner_uid: owner.uid.clone(),
        })
        .collect();
    out.dedup();
    out.push(Action::RemoveFinalizer {
        object: owner.reference(),
        finalizer: ORPHAN.into(),
    });
    out
}

/// `attemptToDeleteItem` for an object not being deleted.
fn attempt_to_delete(g: &Graph, item: &Node) -> Vec<Action> {
    if item.owner_references.is_empty() {
        return Vec::new();
    }
    let (mut solid, mut absent, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for r in &item.owner_references {
        match resolve(g, item, r) {
            None if item.namespace.is_none() && owner_is_namespaced(g, r) => {
                // A cluster-scoped dependent of a namespaced owner: an
                // unresolvable reference, never collected.
                solid.push(r)
            }
            None => absent.push(r),
            Some(o) if o.deleting_dependents() => waiting.push(r),
            Some(_) => solid.push(r),
        }
    }
    let target = item.reference();
    if !solid.is_empty() {
        return absent
            .iter()
            .chain(waiting.iter())
            .map(|r| Action::RemoveOwnerRef {
                dependent: target.clone(),
                owner_uid: r.uid.clone(),
            })
            .collect();
    }
    let absent_owners: Vec<OwnerReference> = absent.into_iter().cloned().collect();
    let my_dependents = dependents_in(g, item);
    if !waiting.is_empty() && !my_dependents.is_empty() {
        let mut out = Vec::new();
        if my_dependents.iter().any(|(d, _)| d.deleting_dependents()) {
            out.push(Action::UnblockOwnerRefs {
                dependent: target.clone(),
            });
        }
        out.push(Action::Delete {
            target,
            propagation: PropagationPolicy::Foreground,
            absent_owners,
        });
        return out;
    }
    let propagation = if item.has_finalizer(ORPHAN) {
        PropagationPolicy::Orphan
    } else if item.has_finalizer(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    vec![Action::Delete {
        target,
        propagation,
        absent_owners,
    }]
}

fn owner_is_namespaced(g: &Graph, r: &OwnerReference) -> bool {
    g.nodes
        .iter()
        .any(|n| n.uid == r.uid && n.namespace.is_some())
}

/// The strategic-merge patch removing the reference to `owner_uid`
/// (`GenerateDeleteOwnerRefStrategicMergeBytes`), for built-in kinds.
pub fn remove_owner_ref_patch(dependent_uid: &str, owner_uid: &str) -> Value {
    super::pods::release_patch(owner_uid, dependent_uid)
}

/// The JSON merge patch removing the reference to `owner_uid` from `node`
/// (`deleteOwnerRefJSONMergePatch`), for custom resources: the remaining
/// references, with uid and resourceVersion preconditions.
pub fn remove_owner_ref_merge_patch(node: &Node, owner_uid: &str) -> Value {
    let kept: Vec<&OwnerReference> = node
        .owner_references
        .iter()
        .filter(|r| r.uid != owner_uid)
        .collect();
    json!({"metadata": {
        "ownerReferences": kept,
        "uid": node.uid,
        "resourceVersion": node.resource_version,
    }})
}

/// The JSON merge patch setting `blockOwnerDeletion: false` on every
/// reference of `node` (`unblockOwnerReferencesJSONMergePatch`).
pub fn unblock_patch(node: &Node) -> Value {
    let refs: Vec<OwnerReference> = node
        .owner_references
        .iter()
        .cloned()
        .map(|mut r| {
            if r.block_owner_deletion == Some(true) {
                r.block_owner_deletion = Some(false);
            }
            r
        })
        .collect();
    json!({"metadata": {
        "ownerReferences": refs,
        "uid": node.uid,
        "resourceVersion": node.resource_version,
    }})
}

/// The JSON merge patch removing `finalizer` from `node` (`removeFinalizer`):
/// the remaining finalizers, with a resourceVersion precondition.
pub fn remove_finalizer_patch(node: &Node, finalizer: &str) -> Value {
    let kept: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
    json!({"metadata": {
        "finalizers": kept,
        "resourceVersion": node.resource_version,
    }})
}

#[cfg(test)]
#[path = "gc_test.rs"]
mod tests;
