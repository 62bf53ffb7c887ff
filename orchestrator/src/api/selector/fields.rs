//! The `fieldSelector` query parameter, as apimachinery parses it (`pkg/fields/selector.go`),
//! the fields each resource's kind lets it select on (the field label conversion functions
//! kube-apiserver registers), and the value each field compares as (`ToSelectableFields`).

use std::fmt;

use serde_json::Value;

use super::{go_quote, ApiError};

/// A parsed `fieldSelector` (k8s.io/apimachinery/pkg/fields: `=`, `==`, `!=`; a comma means AND;
/// a value may escape `\,`, `\=` and `\\`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In the order kube-apiserver checks them: sorted by the term's text as written.
    terms: Vec<FieldTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    /// `=` and `==` (true) or `!=` (false).
    equal: bool,
}

impl FieldSelector {
    /// Parses a `fieldSelector`; empty terms are skipped, so `""` and `","` select everything.
    /// A field name is taken as written, blanks included; a value is unescaped.
    pub fn parse(s: &str) -> Result<FieldSelector, ApiError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let not_understood = || format!("invalid selector: '{s}'; can't understand '{part}'");
            let (field, op, value) =
                split_term(part).ok_or_else(|| ApiError::BadRequest(not_understood()))?;
            let value = unescape_value(value).map_err(ApiError::BadRequest)?;
            terms.push(FieldTerm {
                field: field.to_string(),
                value,
                equal: op != "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Checks that every field the selector names is one `resource` (a plural resource name;
    /// `events.events.k8s.io` names events.k8s.io's) can be selected on, with the 400 BadRequest
    /// text kube-apiserver answers otherwise (the first refused term in the sorted order).
    pub fn check_supported(&self, resource: &str) -> Result<(), ApiError> {
        let (accepted, rejection) = field_labels(resource);
        match self
            .terms
            .iter()
            .find(|t| !accepted.split(' ').any(|a| a == t.field))
        {
            None => Ok(()),
            Some(term) => Err(ApiError::BadRequest(rejection.message(&term.field))),
        }
    }

    /// Whether `object` (the resource as served, JSON) is selected: each term compares the
    /// field's value as the registry's `ToSelectableFields` renders it; a field the object
    /// lacks is the empty string (or `false` / `0` for a boolean / count).
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (selectable_value(object, &t.field) == t.value) == t.equal)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value an `=`/`==` term requires of `field`, if there is one (`RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }
}

/// Prints the selector as apimachinery's `String()` does, values escaped again.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            let value = t
                .value
                .replace('\\', r"\\")
                .replace(',', r"\,")
                .replace('=', r"\=");
            let op = if t.equal { "=" } else { "!=" };
            write!(f, "{}{}{op}{value}", if i > 0 { "," } else { "" }, t.field)?;
        }
        Ok(())
    }
}

/// Splits on the commas a backslash does not escape.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let (mut terms, mut start, mut in_slash) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator; at one position `!=` wins over `==` over `=`.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let op = ["!=", "==", "="]
            .into_iter()
            .find(|op| term[i..].starts_with(op))?;
        Some((&term[..i], op, &term[i + op.len()..]))
    })
}

fn unescape_value(s: &str) -> Result<String, String> {
    let (mut out, mut in_slash) = (String::with_capacity(s.len()), false);
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' || c == '=' {
            // Go prints the rune with %v, which is its number (61 for '=').
            return Err(format!(
                "invalid field selector: unescaped character in value: {}",
                c as u32
            ));
        } else {
            out.push(c);
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// How a kind's field label conversion function refuses a field.
#[derive(Clone, Copy)]
enum Rejection {
    /// core/v1's functions (and certificates/v1's, events.k8s.io/v1's).
    NotSupported,
    /// `runtime.DefaultMetaV1FieldSelectorConversion`, for every kind without its own function.
    NotKnown,
    /// batch/v1's function for Job.
    Job,
}

impl Rejection {
    fn message(self, field: &str) -> String {
        match self {
            Rejection::NotSupported => format!("field label not supported: {field}"),
            Rejection::NotKnown => format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(field)
            ),
            Rejection::Job => format!("field label {} not supported for Job", go_quote(field)),
        }
    }
}

/// The fields (space-separated) a resource's kind accepts, and how it refuses the others.
fn field_labels(resource: &str) -> (&'static str, Rejection) {
    use Rejection::*;
    match resource {
        // spec.host is old v1 clients' name for spec.nodeName, still accepted.
        "pods" => (
            "metadata.name metadata.namespace spec.nodeName spec.restartPolicy spec.schedulerName \
             spec.serviceAccountName spec.hostNetwork status.phase status.podIP status.podIPs \
             status.nominatedNodeName spec.host",
            NotSupported,
        ),
        // Node's, Namespace's and CertificateSigningRequest's functions refuse metadata.namespace,
        // while a cluster-scoped kind with no function of its own accepts it (and then matches
        // only the empty namespace).
        "nodes" => ("metadata.name spec.unschedulable", NotSupported),
        "namespaces" => ("status.phase metadata.name", NotSupported),
        "replicationcontrollers" => (
            "metadata.name metadata.namespace status.replicas",
            NotSupported,
        ),
        "events" => (
            "involvedObject.kind involvedObject.namespace involvedObject.name involvedObject.uid \
             involvedObject.apiVersion involvedObject.resourceVersion involvedObject.fieldPath \
             reason reportingComponent source type metadata.namespace metadata.name",
            NotSupported,
        ),
        "events.events.k8s.io" => (
            "reason regarding.kind regarding.namespace regarding.name regarding.uid \
             regarding.apiVersion regarding.resourceVersion regarding.fieldPath \
             reportingController source type metadata.namespace metadata.name",
            NotSupported,
        ),
        "secrets" => ("type metadata.namespace metadata.name", NotSupported),
        "services" => (
            "metadata.namespace metadata.name spec.clusterIP spec.type",
            NotSupported,
        ),
        "jobs" | "jobs.batch" => ("metadata.name metadata.namespace status.successful", Job),
        "certificatesigningrequests" | "certificatesigningrequests.certificates.k8s.io" => {
            ("metadata.name spec.signerName", NotSupported)
        }
        // Everything else, apps/v1's kinds included (a ReplicaSet's status.replicas is not
        // selectable in 1.32, whatever the documentation says), and every custom resource.
        _ => ("metadata.name metadata.namespace", NotKnown),
    }
}

/// A field's value as the registries' `ToSelectableFields` render it from the internal object,
/// read here from the served JSON: the fields whose internal form differs are spelled out.
fn selectable_value(object: &Value, field: &str) -> String {
    let at = |path: &str, absent: &str| match object.pointer(path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => absent.to_string(),
    };
    let first = |paths: &[&str]| {
        paths
            .iter()
            .map(|p| at(p, ""))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
    };
    match field {
        "spec.host" | "spec.nodeName" => at("/spec/nodeName", ""),
        // Booleans and counts are always set internally, so an absent one is false or 0.
        "spec.hostNetwork" => at("/spec/hostNetwork", "false"),
        "spec.unschedulable" => at("/spec/unschedulable", "false"),
        "status.replicas" => at("/status/replicas", "0"),
        // A Job's selector field is named after a status field that does not exist.
        "status.successful" => at("/status/succeeded", "0"),
        // v1's deprecated serviceAccount fills serviceAccountName when that is empty.
        "spec.serviceAccountName" => first(&["/spec/serviceAccountName", "/spec/serviceAccount"]),
        // status.podIP wins over podIPs[0] when both are set and differ.
        "status.podIP" => first(&["/status/podIP", "/status/podIPs/0/ip"]),
        // Accepted by the conversion function, but never put in the selectable set.
        "status.podIPs" => String::new(),
        // An Event's source is its source component, else its reporting controller. Event
        // fields are read from the core/v1 and the events.k8s.io/v1 shape of the object alike.
        "source" => first(&[
            "/source/component",
            "/deprecatedSource/component",
            "/reportingComponent",
            "/reportingController",
        ]),
        "reportingComponent" | "reportingController" => {
            first(&["/reportingComponent", "/reportingController"])
        }
        _ => match field
            .strip_prefix("involvedObject.")
            .or_else(|| field.strip_prefix("regarding."))
        {
            Some(rest) => first(&[
                &format!("/involvedObject/{rest}"),
                &format!("/regarding/{rest}"),
            ]),
            None => {
                let escape = |p: &str| format!("/{}", p.replace('~', "~0").replace('/', "~1"));
                at(&field.split('.').map(escape).collect::<String>(), "")
            }
        },
    }
}
