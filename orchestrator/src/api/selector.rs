//! Label and field selectors as kube-apiserver parses and matches them: the `labelSelector` and
//! `fieldSelector` query parameters, and a workload's `spec.selector` (a `metav1.LabelSelector`).
//!
//! The grammar, the order in which mistakes are found and the error texts follow apimachinery
//! 1.32 (`pkg/labels/selector.go`, `pkg/fields/selector.go`, `pkg/util/validation`). The fields a
//! resource may select on follow the field label conversion function kube-apiserver registers for
//! its kind (`pkg/apis/*/v1/conversion.go`, else `runtime.DefaultMetaV1FieldSelectorConversion`),
//! and the value a field compares as follows the registry's `ToSelectableFields`.
//!
//! The work is split by concern into child modules: `labels` (the `labelSelector` lexer and
//! parser, its requirements and their matching, and the conversion of a `metav1.LabelSelector`)
//! and `fields` (the `fieldSelector` parser, the fields each kind may select on, and the values
//! they compare as). This file keeps what their error messages share: Go's quoting and
//! apimachinery's validation of label keys and values, with its texts.

use super::error::{ApiError, FieldError};

mod fields;
mod labels;

pub use fields::FieldSelector;
pub use labels::LabelSelector;

// The tests read label maps and JSON objects through `super::*`, as they did when the selectors
// were defined in this file.
#[cfg(test)]
use serde_json::{Map, Value};

fn invalid(field: &str, value: &str, detail: &str) -> String {
    FieldError::invalid(field, value, detail).to_string()
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, else the distinct ones in brackets.
fn aggregate(errors: Vec<String>) -> String {
    let mut distinct: Vec<String> = Vec::new();
    for e in errors {
        if !distinct.contains(&e) {
            distinct.push(e);
        }
    }
    match distinct.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Go's `%q` for the strings a selector can hold.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => out.extend(['\\', c]),
            '\u{7}'..='\u{d}' => {
                out.push_str(["\\a", "\\b", "\\t", "\\n", "\\v", "\\f", "\\r"][c as usize - 7])
            }
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`; an empty one is the nil slice in every path that reports it.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `validation.RegexError`, double spaces before each "or" included.
fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{regex}')",
        examples.join(" or ")
    )
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: Option<&u8>| c.is_some_and(u8::is_ascii_alphanumeric);
    edge(b.first())
        && edge(b.last())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// `validation.IsQualifiedName`, the rule for a label key (`[prefix/]name`).
fn qualified_name_errors(value: &str) -> Vec<String> {
    let name_regex = || {
        let msg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
        regex_error(
            msg,
            "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]",
            &["MyName", "my.name", "123-abc"],
        )
    };
    let mut errors = Vec::new();
    let name = match value.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(dns1123_subdomain_errors(prefix).into_iter().map(|e| format!("prefix part {e}")));
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_regex()
            )]
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {}", name_regex()));
    }
    errors
}

/// `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        let msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
        let regex = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
        errors.push(regex_error(msg, regex, &["MyValue", "my_value", "12345"]));
    }
    errors
}

/// `validation.IsDNS1123Subdomain`, the rule for a label key's prefix.
fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let b = l.as_bytes();
        b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || *c == b'-')
    };
    if !value.split('.').all(label_ok) {
        let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
        let regex = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
        errors.push(regex_error(msg, regex, &["example.com"]));
    }
    errors
}

#[cfg(test)]
#[path = "selector_test.rs"]
mod tests;
