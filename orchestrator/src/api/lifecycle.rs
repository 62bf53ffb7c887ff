//! Deletion: an object goes at once, or is marked while finalizers hold it; a namespace is
//! marked Terminating, emptied and then deleted (what Kubernetes' namespace controller does);
//! deletecollection.

use serde_json::{json, Value};

use super::error::ApiError;
use super::handlers::{conflict, encode, is_service, list_object, not_found};
use super::objects::{self, meta_str, with_version};
use super::path::Target;
use super::query::Query;
use super::{resources, services, Api};
use crate::clock::rfc3339;
use crate::deletion;
use crate::registry::{list_prefix, object_key, Stored, Swap};

/// How often a delete that lost a race is tried again.
const DELETE_ATTEMPTS: usize = 8;

/// The namespaces kube-apiserver keeps: created at start, and again if they go.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A delete's preconditions (`preconditions.uid`, `preconditions.resourceVersion`) against the
/// object as stored: a Conflict with kube-apiserver's words when one does not hold.
fn check_preconditions(
    info: &resources::ResourceInfo,
    name: &str,
    object: &Value,
    revision: i64,
    query: &Query,
) -> Result<(), ApiError> {
    let failed = |what: &str, wanted: &str, have: &str| ApiError::Conflict {
        resource: info.group_resource(),
        name: name.to_string(),
        detail: format!(
            "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {have}"
        ),
    };
    if let Some(uid) = query.get("preconditions.uid") {
        let have = meta_str(object, "uid").unwrap_or_default();
        if uid != have {
            return Err(failed("UID", uid, have));
        }
    }
    if let Some(rv) = query.get("preconditions.resourceVersion") {
        if rv != revision.to_string() {
            return Err(failed("ResourceVersion", rv, &revision.to_string()));
        }
    }
    Ok(())
}

/// The system namespaces that may not be deleted (kube-node-lease may).
const UNDELETABLE_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

impl Api {
    /// Deletes the object, or marks it when finalizers hold it. Answers with the object as it
    /// was last (kube-apiserver's answer for most resources).
    pub async fn delete(
        &self,
        target: &Target,
        name: &str,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let info = target.resource;
        if info.kind == "Namespace" && UNDELETABLE_NAMESPACES.contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let propagation = query.propagation()?;
        for _ in 0..DELETE_ATTEMPTS {
            let (object, stored) = self.fetch(target, name).await?;
            check_preconditions(info, name, &object, stored.mod_revision, query)?;
            if info.kind == "Namespace" {
                return self.terminate_namespace(target, name, object, stored).await;
            }
            if query.dry_run() {
                return Ok(object);
            }
            // Finalizers hold the object, marked; Foreground and Orphan add the garbage
            // collector's own.
            let finalizers = objects::finalizers(&object);
            let hold = deletion::finalizer(&propagation);
            if !finalizers.is_empty() || hold.is_some() {
                let marked_already = meta_str(&object, "deletionTimestamp").is_some();
                let held = hold.is_none_or(|f| finalizers.iter().any(|have| have == f));
                if marked_already && held {
                    return Ok(object);
                }
                let mut marked = if marked_already {
                    let mut again = object.clone();
                    objects::meta_mut(&mut again).remove("resourceVersion");
                    again
                } else {
                    self.marked_for_deletion(&object)
                };
                let meta = objects::meta_mut(&mut marked);
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let (Some(f), false) = (hold, held) {
                    let mut list = finalizers.clone();
                    list.push(f.to_string());
                    meta.insert("finalizers".into(), json!(list));
                }
                match self
                    .registry
                    .swap(
                        &self.key(target, name),
                        stored.mod_revision,
                        encode(target.resource, &marked),
                        0,
                    )
                    .await?
                {
                    Swap::Done { revision } => return Ok(with_version(marked, revision)),
                    Swap::Lost { current: None } => return Err(not_found(info, name)),
                    Swap::Lost { .. } => continue,
                }
            }
            match self
                .registry
                .delete(&self.key(target, name), stored.mod_revision)
                .await?
            {
                Swap::Done { .. } => {
                    if is_service(info) {
                        self.release(&services::held(&object)).await;
                    }
                    return Ok(object);
                }
                Swap::Lost { current: None } => return Err(not_found(info, name)),
                Swap::Lost { .. } => continue,
            }
        }
        Err(conflict(info, name))
    }

    /// `object` as stored once marked for deletion now (what finalizers, and a namespace's
    /// contents, hold it in).
    fn marked_for_deletion(&self, object: &Value) -> Value {
        let mut marked = object.clone();
        let meta = objects::meta_mut(&mut marked);
        meta.remove("resourceVersion");
        meta.insert("deletionTimestamp".into(), json!(rfc3339(self.clock.now())));
        marked
    }

    /// A namespace is deleted in two steps, as Kubernetes' namespace controller does: it is
    /// marked Terminating (refusing new content), then what is in it is deleted, then it.
    async fn terminate_namespace(
        &self,
        target: &Target,
        name: &str,
        object: Value,
        stored: Stored,
    ) -> Result<Value, ApiError> {
        let mut marked = object.clone();
        if object.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating") {
            marked = self.marked_for_deletion(&object);
            marked["status"] = json!({ "phase": "Terminating" });
            match self
                .registry
                .swap(
                    &self.key(target, name),
                    stored.mod_revision,
                    encode(target.resource, &marked),
                    0,
                )
                .await?
            {
                Swap::Done { revision } => marked = with_version(marked, revision),
                _ => return Err(conflict(target.resource, name)),
            }
        }
        // `keep_namespaces` empties it, and deletes it once empty.
        Ok(marked)
    }

    /// Deletes what is in a terminating namespace, through the API's own delete (an object with
    /// finalizers is only marked and stays until they are gone), then the namespace once it is
    /// empty. Idempotent: any API server sharing the store may run it.
    async fn empty_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let mut left = 0;
        for info in resources::RESOURCES.iter().filter(|r| r.namespaced) {
            let prefix = list_prefix(info.plural, Some(namespace));
            let page = self.registry.list(&prefix, None, 0, 0).await?;
            let target = Target {
                resource: info,
                namespace: Some(namespace.to_string()),
                name: None,
                subresource: None,
            };
            for stored in page.items {
                let object: Value = serde_json::from_slice(&stored.value).unwrap_or_default();
                let Some(name) = meta_str(&object, "name").map(String::from) else {
                    continue;
                };
                left += 1;
                match self.delete(&target, &name, &Query::default()).await {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if left > 0 && self.namespace_holds_anything(namespace).await? {
            return Ok(());
        }
        let key = object_key("namespaces", None, namespace);
        if let (Some(stored), _) = self.registry.get(&key).await? {
            self.registry.delete(&key, stored.mod_revision).await?;
        }
        Ok(())
    }

    async fn namespace_holds_anything(&self, namespace: &str) -> Result<bool, ApiError> {
        for info in resources::RESOURCES.iter().filter(|r| r.namespaced) {
            let page = self
                .registry
                .list(&list_prefix(info.plural, Some(namespace)), None, 0, 1)
                .await?;
            if !page.items.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// kube-apiserver's and Kubernetes' namespace controllers, in the API server for now: every
    /// `every`, a missing system namespace is created (at start, and again if one goes), the
    /// Services' leaked allocations are released, this server's master lease is renewed and
    /// the `kubernetes` Service brought to the live servers, and each terminating namespace is emptied,
    /// and deleted once empty (a namespace whose objects' finalizers were removed since goes
    /// then; a server restarted mid-deletion finishes it).
    pub async fn keep_namespaces(self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Ok(page) = self
                .registry
                .list(&list_prefix("namespaces", None), None, 0, 0)
                .await
            else {
                continue;
            };
            let present: Vec<Value> = page
                .items
                .iter()
                .map(|stored| serde_json::from_slice(&stored.value).unwrap_or_default())
                .collect();
            for name in SYSTEM_NAMESPACES {
                if !present.iter().any(|o| meta_str(o, "name") == Some(*name)) {
                    self.create_system_namespace(name).await;
                }
            }
            if let Err(err) = self.repair_service_allocations().await {
                tracing::warn!(%err, "could not repair the Services' allocations yet");
            }
            let has_default = present
                .iter()
                .any(|o| meta_str(o, "name") == Some("default"));
            if let (Some(me), true) = (self.advertise, has_default) {
                if let Err(err) = self.reconcile_kubernetes_service(me).await {
                    tracing::warn!(%err, "could not reconcile the kubernetes Service yet");
                }
            }
            for object in present {
                if object.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating") {
                    continue;
                }
                if let Some(name) = meta_str(&object, "name") {
                    if let Err(err) = self.empty_namespace(name).await {
                        tracing::warn!(namespace = %name, %err, "could not empty a namespace yet");
                    }
                }
            }
        }
    }

    async fn create_system_namespace(&self, name: &str) {
        let target = Target {
            resource: resources::find("", "v1", "namespaces").expect("namespaces are served"),
            namespace: None,
            name: None,
            subresource: None,
        };
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(err) = self.ensure_exists(&target, body).await {
            tracing::warn!(namespace = %name, %err, "could not create a system namespace yet");
        }
    }

    pub async fn delete_collection(
        &self,
        target: &Target,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let (items, meta) = self.list(target, query).await?;
        let mut deleted = Vec::new();
        for item in items {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let one = Target {
                namespace: meta_str(&item, "namespace").map(String::from),
                ..target.clone()
            };
            match self.delete(&one, &name, query).await {
                Ok(object) => deleted.push(object),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list_object(target.resource, deleted, meta))
    }
}
