//! The API layer's one error type and its one mapping to the wire: a `meta.k8s.io/v1` `Status`
//! with kube-apiserver's reason, code and message text.

use serde_json::{json, Value};

/// One field's problem, as Kubernetes' `field.Error`: `spec.replicas: Invalid value: -1: must be
/// greater than or equal to 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    /// The field's path, `spec.template.spec.containers[0].name`.
    pub field: String,
    /// The offending value as kube-apiserver prints it (JSON-ish: strings quoted), if any.
    pub value: Option<String>,
    /// The detail after the value, `must be greater than or equal to 0`.
    pub detail: String,
}

/// Kubernetes' `field.ErrorType`: the cause's `reason` on the wire and the words in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueRequired`, "Required value".
    Required,
    /// `FieldValueInvalid`, "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`, "Unsupported value".
    NotSupported,
    /// `FieldValueDuplicate`, "Duplicate value".
    Duplicate,
    /// `FieldValueForbidden`, "Forbidden".
    Forbidden,
    /// `FieldValueTooLong`, "Too long".
    TooLong,
    /// `FieldValueNotFound`, "Not found".
    NotFound,
}

impl FieldErrorKind {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::NotFound => "FieldValueNotFound",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::NotFound => "Not found",
        }
    }
}

impl FieldError {
    pub fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// The cause's message: `Invalid value: -1: must be greater than or equal to 0`.
    pub fn message(&self) -> String {
        let mut out = self.kind.words().to_string();
        if let Some(value) = &self.value {
            out.push_str(": ");
            out.push_str(value);
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Everything a request can fail with. Each variant is one `Status` reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400 BadRequest: a body or parameter that cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// 404 NotFound: `deployments.apps "web" not found`.
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    /// 404 NotFound for a path that names no resource: `the server could not find the requested resource`.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// 409 AlreadyExists: `namespaces "a" already exists`.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    /// 409 Conflict: `Operation cannot be fulfilled on deployments.apps "web": the object has been
    /// modified; please apply your changes to the latest version and try again`.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: String,
        name: String,
        detail: String,
    },
    /// 410 Expired: a resourceVersion below the compacted revision.
    #[error("{0}")]
    Gone(String),
    /// 422 Invalid: `Deployment.apps "web" is invalid: spec.replicas: Invalid value: ...`.
    #[error("{kind} \"{name}\" is invalid: {}", join_causes(causes))]
    Invalid {
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// 422 Invalid with kube-apiserver's message as is and no causes (a JSON patch that does not
    /// apply: `the server rejected our request due to an error in our request`).
    #[error("{0}")]
    Unprocessable(String),
    /// 403 Forbidden (e.g. a namespace being terminated refuses new objects).
    #[error("{0}")]
    Forbidden(String),
    /// 405 MethodNotAllowed.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406 NotAcceptable.
    #[error("{0}")]
    NotAcceptable(String),
    /// 413 RequestEntityTooLarge: `Request entity too large: limit is 3145728`.
    #[error("{0}")]
    TooLarge(String),
    /// 415 UnsupportedMediaType.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {0}"
    )]
    UnsupportedMediaType(String),
    /// 500 InternalError.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 503 ServiceUnavailable: the store cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// 504 Timeout.
    #[error("{0}")]
    Timeout(String),
}

fn join_causes(causes: &[FieldError]) -> String {
    match causes {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) => 403,
            Self::NotFound { .. } | Self::NoSuchPath => 404,
            Self::MethodNotAllowed => 405,
            Self::NotAcceptable(_) => 406,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Gone(_) => 410,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid { .. } | Self::Unprocessable(_) => 422,
            Self::Internal(_) => 500,
            Self::Unavailable(_) => 503,
            Self::Timeout(_) => 504,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound { .. } | Self::NoSuchPath => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Gone(_) => "Expired",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Invalid { .. } | Self::Unprocessable(_) => "Invalid",
            Self::Internal(_) => "InternalError",
            Self::Unavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
        }
    }

    /// The `meta.k8s.io/v1` Status kube-apiserver answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. } => Some(details(resource, name, None)),
            Self::Invalid { kind, name, causes } => {
                let (group, kind_only) = match kind.split_once('.') {
                    Some((k, g)) => (g, k),
                    None => ("", kind.as_str()),
                };
                let mut d = json!({ "name": name, "group": group, "kind": kind_only });
                d["causes"] = causes
                    .iter()
                    .map(|c| json!({ "reason": c.kind.reason(), "message": c.message(), "field": c.field }))
                    .collect();
                if group.is_empty() {
                    d.as_object_mut().unwrap().remove("group");
                }
                Some(d)
            }
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

/// `details` of a Status about one object: its name, group and resource (`deployments.apps` is
/// group `apps`, kind `deployments`, as kube-apiserver fills them).
fn details(resource: &str, name: &str, _causes: Option<()>) -> Value {
    let (kind, group) = match resource.split_once('.') {
        Some((r, g)) => (r, g),
        None => (resource, ""),
    };
    let mut d = json!({ "name": name, "kind": kind });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}
