//! Subresources and list paging: `pods/<name>/binding`, a workload's `scale` (the
//! `autoscaling/v1` Scale), and kube-apiserver's continue tokens.

use serde_json::{json, Value};

use super::error::ApiError;
use super::path::Target;
use super::query::Query;
use super::resources::ResourceInfo;
use super::selector::LabelSelector;
use super::Api;
use crate::clock::rfc3339;

impl Api {
    /// `pods/<name>/binding`: sets the pod's node, once.
    pub async fn bind(&self, target: &Target, name: &str, body: &[u8]) -> Result<Value, ApiError> {
        let binding: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::BadRequest("binding has no target node".into()))?
            .to_string();
        self.update_with(target, name, None, &Query::default(), |cur| {
            if let Some(current) = cur
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::Conflict {
                    resource: "pods".into(),
                    name: name.to_string(),
                    detail: format!("pod {name} is already assigned to node \"{current}\""),
                });
            }
            let mut new = cur.clone();
            new["spec"]["nodeName"] = json!(node);
            // kube-apiserver's assignPod: the pod is now PodScheduled (replacing the False
            // condition an earlier attempt left).
            let scheduled = json!({
                "type": "PodScheduled", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": rfc3339(self.clock.now()),
            });
            let status = new
                .as_object_mut()
                .map(|o| o.entry("status").or_insert_with(|| json!({})));
            if let Some(Value::Object(status)) = status {
                let conditions = status.entry("conditions").or_insert_with(|| json!([]));
                if let Value::Array(list) = conditions {
                    list.retain(|c| c["type"] != "PodScheduled");
                    list.push(scheduled);
                }
            }
            Ok(new)
        })
        .await?;
        Ok(
            json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
        )
    }
}

/// The `autoscaling/v1` Scale of a workload.
pub fn scale_of(info: &ResourceInfo, object: &Value) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            scale_meta[field] = v.clone();
        }
    }
    let selector = object
        .pointer("/spec/selector")
        .map(|s| {
            LabelSelector::from_label_selector(s)
                .map(|s| s.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let _ = info;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": { "replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// kube-apiserver's continue token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after prefix>"}`.
pub(super) mod continue_token {
    use base64::Engine;
    use serde_json::{json, Value};

    use crate::api::error::ApiError;

    fn engine() -> base64::engine::GeneralPurpose {
        base64::engine::general_purpose::URL_SAFE
    }

    fn bad() -> ApiError {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    }

    pub fn encode(next_key: &[u8], revision: i64, prefix: &str) -> String {
        let start =
            String::from_utf8_lossy(&next_key[prefix.len().min(next_key.len())..]).to_string();
        engine()
            .encode(json!({ "v": "meta.k8s.io/v1", "rv": revision, "start": start }).to_string())
    }

    pub fn decode(token: &str, prefix: &str) -> Result<(Vec<u8>, i64), ApiError> {
        let raw = engine().decode(token).map_err(|_| bad())?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
        let rv = v
            .get("rv")
            .and_then(Value::as_i64)
            .filter(|rv| *rv > 0)
            .ok_or_else(bad)?;
        let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
        if start.contains("..") || start.starts_with('/') {
            return Err(bad());
        }
        Ok((format!("{prefix}{start}").into_bytes(), rv))
    }
}
