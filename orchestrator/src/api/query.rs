//! The query parameters of a resource request, read once (kube-apiserver's ListOptions,
//! GetOptions, DeleteOptions and friends, as far as they are served).

use std::collections::HashMap;

use super::error::{ApiError, FieldError, FieldErrorKind};
use crate::deletion::PropagationPolicy;

#[derive(Debug, Clone, Default)]
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
        Ok(Self {
            params: pairs.into_iter().collect(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter: `watch=1`, `watch=true`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("invalid value {v:?} for parameter {key}"))
                })
            })
            .transpose()
    }

    /// `resourceVersion` as a revision: None when absent or "0" (meaning "any").
    pub fn resource_version(&self) -> Result<Option<i64>, ApiError> {
        match self.get("resourceVersion") {
            None | Some("0") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v}"))),
        }
    }

    /// The query with a DeleteOptions body's fields (what kubectl and kube-rs send) added as
    /// the parameters they also may be: propagationPolicy, orphanDependents, dryRun,
    /// gracePeriodSeconds, and the preconditions (`preconditions.uid`,
    /// `preconditions.resourceVersion`).
    pub fn with_delete_options(&self, body: &[u8]) -> Result<Query, ApiError> {
        let mut query = self.clone();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(query);
        }
        let options: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?;
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            serde_json::Value::Array(a) => a.first().and_then(|f| f.as_str()).map(String::from),
            other => Some(other.to_string()),
        };
        for (field, key) in [
            ("/propagationPolicy", "propagationPolicy"),
            ("/orphanDependents", "orphanDependents"),
            ("/dryRun", "dryRun"),
            ("/gracePeriodSeconds", "gracePeriodSeconds"),
            ("/preconditions/uid", "preconditions.uid"),
            (
                "/preconditions/resourceVersion",
                "preconditions.resourceVersion",
            ),
        ] {
            if let Some(value) = options.pointer(field).and_then(text) {
                query.params.insert(key.to_string(), value);
            }
        }
        Ok(query)
    }

    /// How a delete treats the object's dependents: `propagationPolicy`, or the deprecated
    /// `orphanDependents=true` (Orphan); Background when neither is given (kube's default for
    /// the apps and batch groups).
    pub fn propagation(&self) -> Result<PropagationPolicy, ApiError> {
        let invalid = |error: FieldError| ApiError::Invalid {
            kind: "DeleteOptions.meta.k8s.io".into(),
            name: String::new(),
            causes: vec![error],
        };
        match (self.get("propagationPolicy"), self.flag("orphanDependents")) {
            (Some(policy), true) => Err(invalid(FieldError::invalid(
                "propagationPolicy",
                format!("\"{policy}\""),
                "orphanDependents and deletionPropagation cannot be both set",
            ))),
            (None, true) => Ok(PropagationPolicy::Orphan),
            (None, false) | (Some("Background"), _) => Ok(PropagationPolicy::Background),
            (Some("Foreground"), _) => Ok(PropagationPolicy::Foreground),
            (Some("Orphan"), _) => Ok(PropagationPolicy::Orphan),
            (Some(other), _) => Err(invalid(FieldError::new(
                FieldErrorKind::NotSupported,
                "propagationPolicy",
                Some(format!("\"{other}\"")),
                "supported values: \"Foreground\", \"Background\", \"Orphan\"",
            ))),
        }
    }

    /// `dryRun=All`: validate and answer, store nothing.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}
