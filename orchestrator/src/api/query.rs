//! The query parameters of a resource request, read once (kube-apiserver's ListOptions,
//! GetOptions, DeleteOptions and friends, as far as they are served).

use std::collections::HashMap;

use super::error::ApiError;

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

    /// `dryRun=All`: validate and answer, store nothing.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}
