//! The verbs on resources: get, list, create, update, patch, delete and deletecollection, with
//! kube-apiserver's semantics, on the [`Registry`]. Each write is one compare-and-swap; an
//! update that races another is tried again on the fresh object when the client did not pin a
//! resourceVersion (kube-apiserver's GuaranteedUpdate), and is a Conflict when it did.

use serde_json::{json, Value};

use super::conversion;
use super::error::ApiError;
use super::objects::{self, meta_str, with_version};
use super::path::Target;
use super::query::Query;
use super::resources::ResourceInfo;
use super::selector::{FieldSelector, LabelSelector};
use super::subresources::{continue_token, scale_of};
use super::{patch, services, validation, warnings, Api};
use crate::clock::rfc3339;
use crate::registry::{list_prefix, object_key, Stored, Swap};
use crate::storage::StorageError;

/// How often an update that lost a race is tried again before it is answered with a Conflict.
const UPDATE_ATTEMPTS: usize = 8;

/// Events live an hour (kube-apiserver's `--event-ttl`).
const EVENT_TTL_SECONDS: i64 = 3600;

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Compacted { compact_revision } => ApiError::Gone(format!(
                "The resourceVersion for the provided list is too old (compacted at {compact_revision})."
            )),
            StorageError::FutureRevision => ApiError::Timeout(
                "Too large resource version".into(),
            ),
            StorageError::Unavailable(why) => ApiError::Unavailable(why),
            StorageError::Refused(why) => ApiError::Internal(why),
        }
    }
}

pub fn not_found(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: info.group_resource(),
        name: name.to_string(),
    }
}

pub(super) fn conflict(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::Conflict {
        resource: info.group_resource(),
        name: name.to_string(),
        detail: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

/// Whether `info` is core/v1 Services (whose addresses the API server allocates).
pub(super) fn is_service(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.kind == "Service"
}

/// A stored object of `info` as its version serves it, at its revision.
pub(super) fn decode(info: &ResourceInfo, stored: &Stored) -> Result<Value, ApiError> {
    let object: Value = serde_json::from_slice(&stored.value)
        .map_err(|e| ApiError::Internal(format!("stored object is not JSON: {e}")))?;
    Ok(with_version(
        conversion::served(info, object),
        stored.mod_revision,
    ))
}

/// An object of `info`'s served version as it is stored.
pub(super) fn encode(info: &ResourceInfo, object: &Value) -> Vec<u8> {
    let stored = conversion::stored(info, object.clone());
    serde_json::to_vec(&stored).expect("a JSON value encodes")
}

/// A request body as JSON whose apiVersion and kind fit the path (not yet decoded through the
/// type: an update does that once, in `update_with`).
fn parse_body(info: &ResourceInfo, body: &[u8]) -> Result<Value, ApiError> {
    let object: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "error decoding request body: couldn't get version/kind; json parse error: {e}"
        ))
    })?;
    objects::check_type(info, &object)?;
    Ok(object)
}

/// Reads a request body as an object of `info`'s type: JSON, checked against the path's type
/// and decoded through its k8s-openapi type.
pub fn read_body(info: &ResourceInfo, body: &[u8], query: &Query) -> Result<Value, ApiError> {
    let object = parse_body(info, body)?;
    let normalized = normalize(info, object.clone())?;
    strict_fields(info, query, &object, &normalized)?;
    Ok(normalized)
}

/// `fieldValidation`: a field the type does not have is an error with `Strict` (what kubectl
/// sends by default), a warning with `Warn` (the default otherwise), dropped silently with
/// `Ignore`.
fn strict_fields(
    info: &ResourceInfo,
    query: &Query,
    sent: &Value,
    normalized: &Value,
) -> Result<(), ApiError> {
    // kube-apiserver's default is Warn.
    let mode = query.get("fieldValidation").unwrap_or("Warn");
    if mode == "Ignore" {
        return Ok(());
    }
    let unknown = objects::unknown_fields(sent, normalized);
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if list.is_empty() || mode != "Strict" {
        list.into_iter().for_each(warnings::warn);
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
        list.join(", "),
        kind = info.kind,
        version = info.version,
    )))
}

/// `object` through its k8s-openapi type, with apiVersion and kind set.
fn normalize(info: &ResourceInfo, mut object: Value) -> Result<Value, ApiError> {
    object["apiVersion"] = json!(info.api_version());
    object["kind"] = json!(info.kind);
    (info.normalize)(object).map_err(|e| {
        ApiError::BadRequest(format!(
            "error decoding request body into {}: {e}",
            info.kind
        ))
    })
}

impl Api {
    pub(super) fn key(&self, target: &Target, name: &str) -> String {
        object_key(target.resource.plural, target.namespace.as_deref(), name)
    }

    /// The object the target names, and its stored form.
    pub async fn fetch(&self, target: &Target, name: &str) -> Result<(Value, Stored), ApiError> {
        let (stored, _) = self.registry.get(&self.key(target, name)).await?;
        let stored = stored.ok_or_else(|| not_found(target.resource, name))?;
        Ok((decode(target.resource, &stored)?, stored))
    }

    pub async fn get(&self, target: &Target, name: &str) -> Result<Value, ApiError> {
        let (object, _) = self.fetch(target, name).await?;
        match target.subresource.as_deref() {
            Some("scale") => Ok(scale_of(target.resource, &object)),
            Some("log") => Err(ApiError::BadRequest(format!(
                "pod {name} does not have a host assigned"
            ))),
            _ => Ok(object),
        }
    }

    /// A list: every object of the target matching the selectors, in key order, paged.
    pub async fn list(
        &self,
        target: &Target,
        query: &Query,
    ) -> Result<(Vec<Value>, Value), ApiError> {
        let info = target.resource;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
        fields.check_supported(info.plural)?;
        let limit = query.int("limit")?.unwrap_or(0).max(0);
        let prefix = list_prefix(info.plural, target.namespace.as_deref());
        let (mut from, mut revision) = match query.get("continue") {
            Some(token) => {
                let (key, rev) = continue_token::decode(token, &prefix)?;
                (Some(key), rev)
            }
            None => (None, exact_revision(query)?),
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining;
        loop {
            // Ask for more than is missing when selectors may filter some out.
            let want = if limit == 0 {
                0
            } else {
                limit - items.len() as i64
            };
            let page = self
                .registry
                .list(&prefix, from.as_deref(), revision, want)
                .await?;
            revision = page.revision;
            for stored in &page.items {
                let object = decode(info, stored)?;
                if matches(&labels, &fields, &object) {
                    items.push(object);
                }
            }
            remaining = page.remaining;
            match page.next {
                Some(key) if limit > 0 && (items.len() as i64) < limit => from = Some(key),
                Some(key) => {
                    next = Some(key);
                    break;
                }
                None => break,
            }
        }
        let mut meta = json!({ "resourceVersion": revision.to_string() });
        if let Some(key) = next {
            meta["continue"] = json!(continue_token::encode(&key, revision, &prefix));
            if labels.is_empty() && fields.is_empty() {
                if let Some(remaining) = remaining {
                    meta["remainingItemCount"] = json!(remaining);
                }
            }
        }
        Ok((items, meta))
    }

    /// Refuses new objects in a namespace that does not exist or is being deleted.
    async fn check_namespace(
        &self,
        info: &ResourceInfo,
        name: &str,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let (ns, _) = self
            .registry
            .get(&object_key("namespaces", None, namespace))
            .await?;
        let Some(ns) = ns else {
            return Err(ApiError::NotFound {
                resource: "namespaces".into(),
                name: namespace.into(),
            });
        };
        let ns: Value = serde_json::from_slice(&ns.value).unwrap_or_default();
        if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
            return Err(ApiError::Forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                info.group_resource()
            )));
        }
        Ok(())
    }

    pub async fn create(
        &self,
        target: &Target,
        body: &[u8],
        query: &Query,
    ) -> Result<Value, ApiError> {
        let info = target.resource;
        let mut object = read_body(info, body, query)?;
        if let Some(ns) = &target.namespace {
            match meta_str(&object, "namespace") {
                Some(body_ns) if body_ns != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ))
                }
                _ => {
                    objects::meta_mut(&mut object).insert("namespace".into(), json!(ns));
                }
            }
        } else if info.namespaced {
            return Err(ApiError::NoSuchPath);
        } else {
            objects::meta_mut(&mut object).remove("namespace");
        }
        if meta_str(&object, "name").is_none() {
            if let Some(prefix) = meta_str(&object, "generateName") {
                let name = objects::generate_name(prefix);
                objects::meta_mut(&mut object).insert("name".into(), json!(name));
            }
        }
        let now = rfc3339(self.clock.now());
        objects::prepare_create(info, &mut object, objects::new_uid(), &now);
        validation::default_object(info.group, info.kind, &mut object);
        if info.group.is_empty() && info.kind == "Pod" {
            self.tolerations.admit_pod(&mut object);
        }
        validation::initial_status(info.group, info.kind, &mut object);
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        let causes = validation::validate(info.group, info.kind, &object, None);
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                kind: info.group_kind(),
                name,
                causes,
            });
        }
        if let Some(ns) = &target.namespace {
            self.check_namespace(info, &name, ns).await?;
        }
        if query.dry_run() {
            return Ok(object);
        }
        let lease = if info.kind == "Event" {
            self.registry.lease(EVENT_TTL_SECONDS).await?
        } else {
            0
        };
        let allocated = if is_service(info) {
            self.allocate(&mut object).await?
        } else {
            Vec::new()
        };
        let written = self
            .registry
            .swap(&self.key(target, &name), 0, encode(info, &object), lease)
            .await;
        match written {
            Ok(Swap::Done { revision }) => Ok(with_version(object, revision)),
            lost => {
                self.release(&allocated).await;
                match lost {
                    Err(e) => Err(e.into()),
                    _ => Err(ApiError::AlreadyExists {
                        resource: info.group_resource(),
                        name,
                    }),
                }
            }
        }
    }

    /// Replaces the object with what `change` makes of the stored one, compare-and-swap, trying
    /// again on a fresh copy when another write came first and `pinned` is None. `pinned`: the
    /// resourceVersion the client sent, which must be the stored one.
    pub async fn update_with<F>(
        &self,
        target: &Target,
        name: &str,
        pinned: Option<i64>,
        query: &Query,
        mut change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let info = target.resource;
        let status_only = target.subresource.as_deref() == Some("status");
        let binding = target.subresource.as_deref() == Some("binding");
        for _ in 0..UPDATE_ATTEMPTS {
            let (current, stored) = self.fetch(target, name).await?;
            if pinned.is_some_and(|rv| rv != stored.mod_revision) {
                return Err(conflict(info, name));
            }
            let sent = change(&current)?;
            objects::check_type(info, &sent)?;
            let mut new = normalize(info, sent.clone())?;
            strict_fields(info, query, &sent, &new)?;
            if meta_str(&new, "name").is_some_and(|n| n != name) {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta_str(&new, "name").unwrap_or_default()
                )));
            }
            let mut old = current.clone();
            objects::meta_mut(&mut old).remove("resourceVersion");
            objects::meta_mut(&mut new).insert("name".into(), json!(name));
            if let Some(ns) = &target.namespace {
                objects::meta_mut(&mut new).insert("namespace".into(), json!(ns));
            }
            // A binding writes the pod's node and its PodScheduled condition at once.
            let bound_status = binding.then(|| new.get("status").cloned()).flatten();
            objects::prepare_update(info, &mut new, &old, status_only);
            if let Some(status) = bound_status {
                new["status"] = status;
            }
            let mut causes = Vec::new();
            if is_service(info) {
                causes.extend(services::carry_over(&old, &mut new).err());
            }
            validation::default_object(info.group, info.kind, &mut new);
            // A binding sets the one field a pod update may not change (its storage path in
            // kube-apiserver is not the update's, and skips its validation).
            if !binding {
                causes.extend(validation::validate(
                    info.group,
                    info.kind,
                    &new,
                    Some(&old),
                ));
            }
            if !causes.is_empty() {
                return Err(ApiError::Invalid {
                    kind: info.group_kind(),
                    name: name.to_string(),
                    causes,
                });
            }
            // What the update needs and the Service does not hold yet (a port made a NodePort);
            // lost in a race, it is released by the repair.
            if is_service(info) && !query.dry_run() && new != old {
                self.allocate(&mut new).await?;
            }
            // Nothing changed: nothing is written, and the resourceVersion stays (what makes a
            // repeated `kubectl apply` a no-op).
            if new == old || query.dry_run() {
                return Ok(with_version(new, stored.mod_revision));
            }
            // An object being deleted whose last finalizer goes is deleted now.
            let finished = meta_str(&new, "deletionTimestamp").is_some()
                && objects::finalizers(&new).is_empty();
            let outcome = if finished {
                self.registry
                    .delete(&self.key(target, name), stored.mod_revision)
                    .await?
            } else {
                self.registry
                    .swap(
                        &self.key(target, name),
                        stored.mod_revision,
                        encode(info, &new),
                        0,
                    )
                    .await?
            };
            match outcome {
                Swap::Done { revision } => return Ok(with_version(new, revision)),
                Swap::Lost { current: None } => return Err(not_found(info, name)),
                Swap::Lost { .. } if pinned.is_some() => return Err(conflict(info, name)),
                Swap::Lost { .. } => continue,
            }
        }
        Err(conflict(info, name))
    }

    pub async fn update(
        &self,
        target: &Target,
        name: &str,
        body: &[u8],
        query: &Query,
    ) -> Result<Value, ApiError> {
        let info = target.resource;
        if target.subresource.as_deref() == Some("scale") {
            return self.update_scale(target, name, body, query).await;
        }
        // Decoded through the type (and checked for unknown fields) by `update_with`, once.
        let new = parse_body(info, body)?;
        let pinned = match meta_str(&new, "resourceVersion") {
            Some(rv) => Some(
                rv.parse::<i64>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}")))?,
            ),
            None => None,
        };
        self.update_with(target, name, pinned, query, |_| Ok(new.clone()))
            .await
    }

    async fn update_scale(
        &self,
        target: &Target,
        name: &str,
        body: &[u8],
        query: &Query,
    ) -> Result<Value, ApiError> {
        let scale: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))?;
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let pinned = meta_str(&scale, "resourceVersion").and_then(|rv| rv.parse().ok());
        let main = Target {
            subresource: None,
            ..target.clone()
        };
        let object = self
            .update_with(&main, name, pinned, query, |cur| {
                let mut new = cur.clone();
                new["spec"]["replicas"] = json!(replicas);
                Ok(new)
            })
            .await?;
        Ok(scale_of(target.resource, &object))
    }

    pub async fn patch(
        &self,
        target: &Target,
        name: &str,
        content_type: &str,
        body: &[u8],
        query: &Query,
    ) -> Result<Value, ApiError> {
        let info = target.resource;
        let kind = patch::PatchKind::from_content_type(content_type).ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json".into(),
            )
        })?;
        if kind == patch::PatchKind::Apply {
            return Err(ApiError::UnsupportedMediaType(
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply is not served yet)".into(),
            ));
        }
        let patch_doc: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
        let scale = target.subresource.as_deref() == Some("scale");
        let pinned = patch_doc
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|rv| rv.parse().ok());
        let main = if scale {
            Target {
                subresource: None,
                ..target.clone()
            }
        } else {
            target.clone()
        };
        let object = self
            .update_with(&main, name, pinned, query, |cur| {
                if scale {
                    let patched =
                        patch::apply_patch(kind, "Scale", &scale_of(info, cur), &patch_doc)?;
                    let mut new = cur.clone();
                    new["spec"]["replicas"] = patched
                        .pointer("/spec/replicas")
                        .cloned()
                        .unwrap_or(json!(0));
                    return Ok(new);
                }
                patch::apply_patch(kind, info.kind, cur, &patch_doc)
            })
            .await?;
        Ok(if scale {
            scale_of(info, &object)
        } else {
            object
        })
    }
}

/// The list object kube-apiserver answers a list with.
pub fn list_object(info: &ResourceInfo, items: Vec<Value>, meta: Value) -> Value {
    json!({
        "kind": info.list_kind,
        "apiVersion": info.api_version(),
        "metadata": meta,
        "items": items,
    })
}

pub fn matches(labels: &LabelSelector, fields: &FieldSelector, object: &Value) -> bool {
    let empty = serde_json::Map::new();
    let object_labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    labels.matches(object_labels) && fields.matches(object)
}

/// `resourceVersion` with `resourceVersionMatch=Exact` (or an old-style pinned list) reads at
/// that revision; anything else reads the latest.
fn exact_revision(query: &Query) -> Result<i64, ApiError> {
    match (query.get("resourceVersionMatch"), query.resource_version()?) {
        (Some("Exact"), Some(rv)) => Ok(rv),
        (Some("Exact"), None) => Err(ApiError::BadRequest(
            "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"".into(),
        )),
        (Some("NotOlderThan") | None, _) => Ok(0),
        (Some(other), _) => Err(ApiError::BadRequest(format!(
            "unsupported resourceVersionMatch {other:?}"
        ))),
    }
}
