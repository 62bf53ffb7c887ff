//! PATCH bodies as kube-apiserver applies them: JSON patch (RFC 6902), JSON merge patch (RFC 7386)
//! and Kubernetes' strategic merge patch, as pure functions on `serde_json::Value`.
//!
//! Each flavour follows the Go code kube-apiserver 1.32 runs, quirks included, because clients
//! depend on its results rather than on the RFCs. JSON patch and merge patch follow
//! `gopkg.in/evanphx/json-patch.v4` (v4.12.0): a `replace` of a missing object key adds it,
//! negative array indices count from the end, `copy` of a missing key adds null. That is why JSON
//! patch is written here rather than taken from the `json-patch` crate, which follows RFC 6902
//! strictly. Strategic merge follows `k8s.io/apimachinery/pkg/util/strategicpatch`; crates.io has
//! no maintained crate that applies it (k8s-openapi's `merge_strategies` merges typed values and
//! knows no `$patch` directives), so it is written here too, with the `patchStrategy` and
//! `patchMergeKey` tags of Kubernetes' Go types in the table of `strategic::merge_keys`.
//!
//! Errors carry kube-apiserver's codes and texts; where [`ApiError`] has no variant with the right
//! code and a free message, [`rejected`] and [`go_error`] name the stand-in used until it has one.
//!
//! The work is split by flavour into child modules: `json` (JSON patch and JSON merge patch) and
//! `strategic` (strategic merge patch, with its own children for list ordering, Go's view of
//! values and the merge-key table). This file keeps the dispatch and the errors they share.

use serde_json::{Map, Value};

use super::error::ApiError;

mod json;
mod strategic;

type Object = Map<String, Value>;

/// kube-apiserver's `maxJSONPatchOperations`.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// The message of the 422 `Invalid` kube-apiserver answers when a JSON patch operation does not
/// apply: it drops the underlying error (`NewGenericServerResponse` without causes).
pub const REJECTED: &str = "the server rejected our request due to an error in our request";
const GO_LIST: &str = "[]interface {}";
const GO_MAP: &str = "map[string]interface {}";

/// The PATCH flavour named by the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    StrategicMerge,
    /// Server-side apply: recognised, but the caller refuses it for now.
    Apply,
}

impl PatchKind {
    /// kube-apiserver cuts the header at its first `;` (unless the header starts with one) and
    /// compares the rest exactly: no trimming and no case folding.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = match ct.find(';') {
            Some(at) if at > 0 => &ct[..at],
            _ => ct,
        };
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// Applies `patch` (the request body, parsed as JSON) to `target` (the stored object). `object_kind`
/// is the object's Kind, which picks the merge keys of a strategic merge patch. Custom resources
/// take no strategic merge patch: kube-apiserver answers 415 before parsing, and so must the caller.
pub fn apply_patch(
    kind: PatchKind,
    object_kind: &str,
    target: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => json::json_patch(target, patch),
        PatchKind::Merge => json::merge_patch(target, patch),
        PatchKind::StrategicMerge => strategic::strategic_merge_patch(object_kind, target, patch),
        PatchKind::Apply => Err(ApiError::UnsupportedMediaType(
            "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json".into(),
        )),
    }
}

/// kube-apiserver's 422 `Invalid` with [`REJECTED`] and empty details.
pub fn rejected() -> ApiError {
    ApiError::Unprocessable(REJECTED.into())
}

/// An error kube-apiserver gets as a plain Go error: it answers 500 with no reason and the error's
/// text as the message. `ApiError::Internal` (reason `InternalError`, prefix `Internal error
/// occurred: `) is the nearest variant until there is one for this.
pub fn go_error(message: String) -> ApiError {
    ApiError::Internal(message)
}

/// kube-apiserver's refusal of a JSON patch with more operations than it applies.
fn too_many_operations(got: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {got}"
    ))
}

/// `json: cannot unmarshal <what> into Go value of type <go_type>`, Go's decoder's words.
fn decode_error(v: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        json_kind(v)
    )
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

#[cfg(test)]
#[path = "patch_test.rs"]
mod tests;
