//! Go's renderings of the bad values kube-apiserver puts in field errors (`%q` for strings, `%v`
//! for numbers, `%#v` for maps and structs), so that a cause reads exactly as kube-apiserver's:
//! `Invalid value: map[string]string{"app":"x"}: ...`.

use serde_json::{Map, Value};

/// Go's `%q` of a string (`strconv.Quote`).
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as kube-apiserver prints a scalar field's bad value: strings quoted, numbers and
/// booleans bare, a missing pointer as `null`. Objects and arrays have no faithful Go rendering
/// here, so they are printed as compact JSON.
pub(super) fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => quote(s),
        None | Some(Value::Null) => "null".into(),
        Some(other) => other.to_string(),
    }
}

/// The entries of a JSON object sorted by key, the order Go's fmt prints a map in (serde_json may
/// keep insertion order when another crate enables `preserve_order`).
pub(super) fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `%#v` of a `map[string]string` (labels, selectors): `map[string]string{"a":"b", "c":"d"}`,
/// or `map[string]string(nil)` when absent.
pub(super) fn string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let body: Vec<String> = sorted(m)
                .into_iter()
                .map(|(k, v)| format!("{}:{}", quote(k), quote(v.as_str().unwrap_or_default())))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a `[]string`: `[]string{"a", "b"}`, or `[]string(nil)` when absent.
pub(super) fn string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".into(),
        Some(items) => {
            let body: Vec<String> = items
                .iter()
                .map(|i| quote(i.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a (dereferenced) `*metav1.LabelSelector`, as in the well-known
/// `spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"x"},
/// MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable`.
pub(super) fn label_selector(v: Option<&Value>) -> String {
    let Some(sel) = v.filter(|v| !v.is_null()) else {
        return "null".into();
    };
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let body: Vec<String> = items
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(e.get("key").and_then(Value::as_str).unwrap_or_default()),
                        quote(
                            e.get("operator")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                        string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", body.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        string_map(sel.get("matchLabels")),
        exprs
    )
}

/// `%#v` of an `intstr.IntOrString` (Type 0 is an int, 1 a string).
pub(super) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            quote(s)
        ),
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}")
        }
    }
}

/// `%#v` of a nil or non-nil pointer to a struct named `ty`, as Go prints it inside another
/// struct. A set pointer prints as an address in Go, which has no stable equivalent here.
pub(super) fn pointer(ty: &str, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => format!("(*{ty})(nil)"),
        Some(_) => format!("(*{ty})(0xc000000000)"),
    }
}

/// A `metav1.Time` as its `String()` prints it: `2024-01-02 03:04:05 +0000 UTC` for the
/// RFC 3339 `2024-01-02T03:04:05Z` on the wire.
pub(super) fn time(v: Option<&Value>) -> String {
    let Some(s) = v.and_then(Value::as_str) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    match s.strip_suffix('Z').and_then(|s| s.split_once('T')) {
        Some((date, clock)) => format!("{date} {clock} +0000 UTC"),
        None => s.to_string(),
    }
}
