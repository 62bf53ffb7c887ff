//! Go's view of a decoded JSON value, which strategicpatch's error texts show: its type as
//! `reflect.TypeOf` names it, and its `%v` (or `%s`) rendering by `fmt`.

use serde_json::Value;

use super::{GO_LIST, GO_MAP};

/// The Go type of a decoded JSON value (`reflect.TypeOf`): ints and floats differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

pub(super) fn go_type(v: &Value) -> GoType {
    match v {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.is_i64() => GoType::Int,
        Value::Number(_) => GoType::Float,
        Value::String(_) => GoType::String,
        Value::Array(_) => GoType::List,
        Value::Object(_) => GoType::Map,
    }
}

pub(super) fn go_type_name(v: &Value) -> &'static str {
    match go_type(v) {
        GoType::Nil => "%!s(<nil>)",
        GoType::Bool => "bool",
        GoType::Int => "int64",
        GoType::Float => "float64",
        GoType::String => "string",
        GoType::List => GO_LIST,
        GoType::Map => GO_MAP,
    }
}

/// Go's `%v` of a decoded JSON value, as strategicpatch's messages show them.
pub(super) fn go_v(v: &Value) -> String {
    go_fmt(v, true)
}

/// Go's `%v` (or, with `verb_v` false, `%s`, which marks the values that are not strings).
pub(super) fn go_fmt(v: &Value, verb_v: bool) -> String {
    let join = |items: Vec<String>| items.join(" ");
    let scalar = match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_i64().map_or_else(
            || go_float(n.as_f64().unwrap_or_default()),
            |i| i.to_string(),
        ),
        Value::String(s) => return s.clone(),
        Value::Array(items) => {
            return format!(
                "[{}]",
                join(items.iter().map(|v| go_fmt(v, verb_v)).collect())
            )
        }
        // serde_json's map is sorted by key, as Go prints maps.
        Value::Object(map) => {
            let entries = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v, verb_v)));
            return format!("map[{}]", join(entries.collect()));
        }
    };
    match v {
        Value::Null => scalar,
        _ if verb_v => scalar,
        other => format!("%!s({}={scalar})", go_type_name(other)),
    }
}

/// Go's `%v` of a float64: the shortest digits, with an exponent below 1e-4 and from 1e6.
fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if f == 0.0 || (-4..6).contains(&exp) {
        return f.to_string();
    }
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}
