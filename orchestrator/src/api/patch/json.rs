//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386) as `gopkg.in/evanphx/json-patch.v4`
//! (v4.12.0) applies them for kube-apiserver, quirks included.

use serde_json::Value;

use super::{
    decode_error, json_kind, rejected, too_many_operations, ApiError, Object, GO_MAP,
    MAX_JSON_PATCH_OPERATIONS,
};

// ---- JSON patch (RFC 6902, as evanphx/json-patch v4) ----

pub(super) fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    // kube-apiserver first decodes the body as `[]jsonPatchOp` (fieldValidation Warn, the default):
    // the body must be an array (or null) of objects (or nulls) whose op, path and from are strings.
    let bad = |m: String| ApiError::BadRequest(format!("error decoding patch: {m}"));
    let ops: &[Value] = match patch {
        Value::Null => &[],
        Value::Array(ops) => ops,
        other => return Err(bad(decode_error(other, "[]handlers.jsonPatchOp"))),
    };
    for op in ops {
        match op {
            Value::Null => {}
            Value::Object(fields) => {
                for name in ["from", "op", "path"] {
                    if let Some(v) = fields.get(name).filter(|v| !v.is_null() && !v.is_string()) {
                        let kind = json_kind(v);
                        let field = format!("Go struct field jsonPatchOp.{name} of type string");
                        return Err(bad(format!("json: cannot unmarshal {kind} into {field}")));
                    }
                }
            }
            other => return Err(bad(decode_error(other, "handlers.jsonPatchOp"))),
        }
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(too_many_operations(ops.len()));
    }
    let mut doc = target.clone();
    for op in ops {
        apply_operation(&mut doc, op.as_object()).ok_or_else(rejected)?;
    }
    Ok(doc)
}

/// One operation; `None` when it does not apply (kube-apiserver keeps no detail of why).
fn apply_operation(doc: &mut Value, op: Option<&Object>) -> Option<()> {
    let op = op?;
    let text = |name: &str| op.get(name).and_then(Value::as_str);
    // A missing or null `value` stores null, as the Go package does.
    let value = || op.get("value").cloned().unwrap_or(Value::Null);
    match text("op")? {
        "add" => add(locate(doc, text("path")?)?, value()),
        "remove" => remove(locate(doc, text("path")?)?),
        "replace" if text("path")?.is_empty() => {
            // The whole document: the value must be an object or an array.
            *doc = op
                .get("value")
                .filter(|v| v.is_object() || v.is_array())?
                .clone();
            Some(())
        }
        "replace" => {
            let (container, key) = locate(doc, text("path")?)?;
            get(container, &key)?;
            match container {
                Value::Array(items) => {
                    let i = index(&key, items.len())?;
                    items[i] = value();
                }
                _ => add((container, key), value())?,
            }
            Some(())
        }
        "move" => {
            let (container, key) = locate(doc, text("from")?)?;
            let moved = get(container, &key)?.unwrap_or(Value::Null);
            remove((container, key))?;
            add(locate(doc, text("path")?)?, moved)
        }
        "copy" => {
            let (container, key) = locate(doc, text("from")?)?;
            let copied = get(container, &key)?.unwrap_or(Value::Null);
            add(locate(doc, text("path")?)?, copied)
        }
        "test" if text("path")?.is_empty() => (Some(&*doc) == op.get("value")).then_some(()),
        "test" => {
            let (container, key) = locate(doc, text("path")?)?;
            match (get(container, &key)?, op.get("value")) {
                // A missing or null member passes a test for null or for no value at all.
                (None, None | Some(Value::Null)) => Some(()),
                (Some(found), Some(wanted)) if found == *wanted => Some(()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The container of the path's last token and that token, unescaped. The Go package ignores the
/// first token (so `a/b` means `/b`) and needs every step to be an object or an array.
fn locate<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let tokens: Vec<String> = path
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, steps) = tokens.split_last()?;
    let mut at = doc;
    for step in steps.get(1..)? {
        at = match at {
            Value::Object(map) => map.get_mut(step.as_str())?,
            Value::Array(items) => {
                let i = index(step, items.len())?;
                &mut items[i]
            }
            _ => return None,
        };
        if !at.is_object() && !at.is_array() {
            return None;
        }
    }
    Some((at, last.clone()))
}

/// An array index as Go's `strconv.Atoi` reads it, negative ones counting from the end.
fn index(key: &str, len: usize) -> Option<usize> {
    let i: i64 = key.parse().ok()?;
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { i + len } else { i };
    usize::try_from(i).ok().filter(|_| i < len)
}

/// The member at `key`: `Some(None)` for a missing or null object member, `None` for a bad index.
fn get(container: &Value, key: &str) -> Option<Option<Value>> {
    let found = match container {
        Value::Object(map) => map.get(key),
        Value::Array(items) => Some(&items[index(key, items.len())?]),
        _ => return None,
    };
    Some(found.filter(|v| !v.is_null()).cloned())
}

fn add((container, key): (&mut Value, String), value: Value) -> Option<()> {
    match container {
        Value::Object(map) => drop(map.insert(key, value)),
        Value::Array(items) if key == "-" => items.push(value),
        // An insert may also land one past the end, so the index counts from `len + 1`.
        Value::Array(items) => items.insert(index(&key, items.len() + 1)?, value),
        _ => return None,
    }
    Some(())
}

fn remove((container, key): (&mut Value, String)) -> Option<()> {
    match container {
        Value::Object(map) => map.remove(&key).map(drop),
        Value::Array(items) => {
            let i = index(&key, items.len())?;
            items.remove(i);
            Some(())
        }
        _ => None,
    }
}

// ---- JSON merge patch (RFC 7386, as evanphx/json-patch v4's MergePatch) ----

pub(super) fn merge_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let patch = match patch {
        Value::Object(patch) => patch,
        Value::Null => return Err(ApiError::BadRequest("Invalid JSON Patch".into())),
        other => {
            return Err(ApiError::BadRequest(format!(
                "error decoding patch: {}",
                decode_error(other, GO_MAP)
            )))
        }
    };
    let mut doc = target.as_object().cloned().unwrap_or_default();
    merge_docs(&mut doc, patch);
    Ok(Value::Object(doc))
}

fn merge_docs(doc: &mut Object, patch: &Object) {
    for (key, value) in patch {
        let merged = match (doc.remove(key), value) {
            (_, Value::Null) => continue,
            (Some(Value::Object(mut current)), Value::Object(p)) => {
                merge_docs(&mut current, p);
                Value::Object(current)
            }
            // Over an object, a value that is not one is taken as it is, nulls in it kept.
            (Some(Value::Object(_)), other) => other.clone(),
            // Anywhere else the value is taken without the nulls of its objects.
            _ => pruned(value.clone()),
        };
        doc.insert(key.clone(), merged);
    }
}

pub(super) fn pruned(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(pruned).collect()),
        other => other,
    }
}
