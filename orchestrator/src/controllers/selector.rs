//! Label selectors as kube-apiserver and kube-controller-manager evaluate them.
//!
//! Copies `metav1.LabelSelectorAsSelector` (staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go)
//! and `labels.Requirement` / `internalSelector` (staging/src/k8s.io/apimachinery/pkg/labels/selector.go):
//! `matchLabels` become `key=value` requirements, `matchExpressions` become
//! `in` / `notin` / exists / `!` requirements, an empty selector matches everything
//! and a nil (absent) selector matches nothing.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Why a `LabelSelector` could not be turned into a selector (the error
/// `metav1.LabelSelectorAsSelector` / `labels.NewRequirement` would return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectorError {}

/// The operator of one requirement (`selection.Operator` restricted to what
/// a `LabelSelector` can express).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`, from `matchLabels`.
    Equals,
    /// `key in (v1,v2)`.
    In,
    /// `key notin (v1,v2)`; also true when the label is absent.
    NotIn,
    /// `key`: the label is present, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
}

/// One validated requirement (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values as given (empty for `Exists` / `DoesNotExist`).
    pub values: Vec<String>,
}

impl Requirement {
    /// Decides whether `labels` satisfy this requirement (`Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self.operator {
            Operator::Equals | Operator::In => labels
                .get(&self.key)
                .is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => labels
                .get(&self.key)
                .is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
        }
    }

    /// Renders the requirement as `Requirement.String` does (values of
    /// `in`/`notin` sorted on output).
    pub fn to_query(&self) -> String {
        let mut values = self.values.clone();
        values.sort();
        let joined = values.join(",");
        match self.operator {
            Operator::Equals => format!("{}={}", self.key, joined),
            Operator::In => format!("{} in ({})", self.key, joined),
            Operator::NotIn => format!("{} notin ({})", self.key, joined),
            Operator::Exists => self.key.clone(),
            Operator::DoesNotExist => format!("!{}", self.key),
        }
    }
}

/// A parsed selector (`labels.Selector`): `Nothing` for a nil selector,
/// otherwise the AND of its requirements, sorted by key (an empty list
/// matches everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `labels.Nothing()`: matches no object.
    Nothing,
    /// `labels.internalSelector`: all requirements must hold.
    Requirements(Vec<Requirement>),
}

impl Selector {
    /// Decides whether `labels` satisfy every requirement (`Selector.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Requirements(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// True for a selector that matches everything (`Selector.Empty`).
    pub fn is_everything(&self) -> bool {
        matches!(self, Selector::Requirements(r) if r.is_empty())
    }

    /// The `labelSelector` query string (`Selector.String`): requirements
    /// joined by `,` in key order. `Nothing` renders as `""` like upstream,
    /// which a server reads as "everything": never send it.
    pub fn to_query(&self) -> String {
        match self {
            Selector::Nothing => String::new(),
            Selector::Requirements(reqs) => reqs
                .iter()
                .map(Requirement::to_query)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// Converts a `LabelSelector` into a validated [`Selector`]
/// (`metav1.LabelSelectorAsSelector`): rejects unknown operators, wrong value
/// counts and invalid label keys / values.
pub fn parse(selector: &LabelSelector) -> Result<Selector, SelectorError> {
    let labels = selector.match_labels.as_ref();
    let exprs = selector.match_expressions.as_deref().unwrap_or(&[]);
    let mut reqs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        reqs.push(new_requirement(k, Operator::Equals, vec![v.clone()])?);
    }
    for e in exprs {
        let op = match e.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(SelectorError(format!(
                    "{other:?} is not a valid label selector operator"
                )))
            }
        };
        reqs.push(new_requirement(
            &e.key,
            op,
            e.values.clone().unwrap_or_default(),
        )?);
    }
    // internalSelector.Add keeps requirements sorted by key.
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Selector::Requirements(reqs))
}

/// Like [`parse`] for an optional selector: `None` gives [`Selector::Nothing`].
pub fn parse_opt(selector: Option<&LabelSelector>) -> Result<Selector, SelectorError> {
    match selector {
        None => Ok(Selector::Nothing),
        Some(s) => parse(s),
    }
}

/// Decides whether `labels` match `selector`. An empty selector matches
/// everything; an invalid selector matches nothing (as controllers treat a
/// selector that fails `LabelSelectorAsSelector`).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    parse(selector).is_ok_and(|s| s.matches(labels))
}

/// [`matches()`] for an optional selector: a nil selector matches nothing.
pub fn matches_opt(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| matches(s, labels))
}

/// The `labelSelector` query string for `selector`, e.g. `app=web,tier in (a,b)`
/// (`LabelSelectorAsSelector(..).String()`); an error for an invalid selector
/// (rendering it would silently widen or narrow the list).
pub fn to_query(selector: &LabelSelector) -> Result<String, SelectorError> {
    parse(selector).map(|s| s.to_query())
}

fn new_requirement(
    key: &str,
    operator: Operator,
    values: Vec<String>,
) -> Result<Requirement, SelectorError> {
    validate_key(key)?;
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err(SelectorError(
                "for 'in', 'notin' operators, values set can't be empty".into(),
            ))
        }
        Operator::Equals if values.len() != 1 => {
            return Err(SelectorError(
                "exact-match compatibility requires one single value".into(),
            ))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            return Err(SelectorError(
                "values set must be empty for exists and does not exist".into(),
            ))
        }
        _ => {}
    }
    for v in &values {
        if !is_valid_label_value(v) {
            return Err(SelectorError(format!("invalid label value: {v:?}")));
        }
    }
    Ok(Requirement {
        key: key.to_string(),
        operator,
        values,
    })
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    if is_qualified_name(key) {
        Ok(())
    } else {
        Err(SelectorError(format!("invalid label key {key:?}")))
    }
}

/// `validation.IsQualifiedName`: `[prefix/]name`, name up to 63 characters
/// of `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`, prefix a DNS-1123 subdomain.
pub(crate) fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if name.contains('/') {
        return false;
    }
    if let Some(p) = prefix {
        if p.is_empty() || !is_dns1123_subdomain(p) {
            return false;
        }
    }
    !name.is_empty() && name.len() <= 63 && is_name_part(name)
}

/// `validation.IsValidLabelValue`: empty, or up to 63 characters shaped like a name.
pub(crate) fn is_valid_label_value(v: &str) -> bool {
    v.is_empty() || (v.len() <= 63 && is_name_part(v))
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            alnum(f)
                && alnum(l)
                && b.iter()
                    .all(|&c| alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `validation.IsDNS1123Subdomain`: up to 253 characters of dot-separated
/// lowercase labels that start and end with an alphanumeric.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => ok(f) && ok(l) && b.iter().all(|&c| ok(c) || c == b'-'),
            _ => false,
        }
    })
}

#[cfg(test)]
#[path = "selector_test.rs"]
mod tests;
