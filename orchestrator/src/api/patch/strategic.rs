//! Strategic merge patch as `k8s.io/apimachinery/pkg/util/strategicpatch` applies it: maps
//! merged key by key, lists merged by their merge key or as sets, the `$patch`, `$retainKeys`,
//! `$setElementOrder` and `$deleteFromPrimitiveList` directives, and strategicpatch's errors.
//!
//! Child modules hold the parts that stand apart: `order` (the order of merged lists, which
//! follows Go's sort and slice aliasing), `go_value` (Go's types and `%v` of decoded JSON, which
//! the error texts show) and `merge_keys` (the `patchStrategy` and `patchMergeKey` tags).

use serde_json::Value;

use super::json::pruned;
use super::{decode_error, go_error, rejected, ApiError, Object, GO_LIST, GO_MAP};

mod go_value;
mod merge_keys;
mod order;

use go_value::{go_fmt, go_type, go_type_name, go_v, GoType};
use merge_keys::{field, root, Strategy};
use order::{go_aliased_original, normalize_order, partition};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// A strategic merge failure, sorted as kube-apiserver's `interpretStrategicMergePatchError` does.
enum SmpError {
    /// One of `mergepatch`'s format errors: 400 with its text.
    Format(&'static str),
    /// `mergepatch.ErrNoListOfLists`: the 422 of [`rejected`].
    ListOfLists,
    /// Any other error: 500 with its text.
    Go(String),
}

impl From<SmpError> for ApiError {
    fn from(e: SmpError) -> ApiError {
        match e {
            SmpError::Format(message) => ApiError::BadRequest(message.into()),
            SmpError::ListOfLists => rejected(),
            SmpError::Go(message) => go_error(message),
        }
    }
}

type Smp<T> = Result<T, SmpError>;

pub(super) fn strategic_merge_patch(
    object_kind: &str,
    target: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        // A null body decodes to no map at all, which changes nothing.
        Value::Null => return Ok(target.clone()),
        other => return Err(ApiError::BadRequest(decode_error(other, GO_MAP))),
    };
    let original = target.as_object().cloned().unwrap_or_default();
    Ok(Value::Object(merge_map(
        original,
        patch,
        root(object_kind),
    )?))
}

fn merge_map(mut original: Object, mut patch: Object, ty: &'static str) -> Smp<Object> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            Some("replace") => Ok(strip_directive_keys(patch)),
            Some("delete") => Ok(Object::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;
    // Go visits the keys in random order. Only a patch that both adds and deletes one item of a
    // list of scalars can tell: deletions go last here, as they most often do there.
    let (deletions, rest): (Vec<_>, Vec<_>) = patch
        .into_iter()
        .partition(|(k, _)| k.starts_with(DELETE_FROM_PRIMITIVE_LIST));
    for (key, patch_v) in rest.into_iter().chain(deletions) {
        let delete_list = key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
        let key = if delete_list {
            extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?
        } else {
            key
        };
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let (strategy, merge_key, field_ty) = field(ty, &key);
        let merged = match (original.remove(&key), patch_v) {
            (None, _) if delete_list => None,
            (Some(Value::Object(o)), Value::Object(p)) => Some(Value::Object(match strategy {
                Strategy::Replace => strip_directive_keys(p),
                _ => merge_map(o, p, field_ty)?,
            })),
            (Some(Value::Array(o)), Value::Array(p))
                if strategy == Strategy::Merge || delete_list =>
            {
                Some(Value::Array(merge_list(
                    o,
                    p,
                    field_ty,
                    merge_key,
                    delete_list,
                )?))
            }
            (Some(Value::Array(_)), Value::Array(p)) => {
                Some(Value::Array(p.into_iter().map(strip_directives).collect()))
            }
            (Some(o), p) if delete_list && go_type(&o) != go_type(&p) => Some(o),
            // Where the original has nothing, or a value of another type, the patch's value goes
            // in without its nulls and without the maps that carry `$patch`.
            (_, p) => remove_directives(pruned(p)).map(strip_directives),
        };
        if let Some(v) = merged {
            original.insert(key, v);
        }
    }
    Ok(original)
}

/// `$retainKeys: [..]` clears the original's other keys; the patch may set no key outside it.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Smp<()> {
    let Some(keep) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = SmpError::Format("invalid patch format of retainKeys");
    let Value::Array(keep) = keep else {
        return Err(bad);
    };
    let kept = |k: &String| keep.iter().any(|v| v.as_str() == Some(k));
    let directive =
        |k: &str| k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER);
    if patch
        .iter()
        .any(|(k, v)| !v.is_null() && !directive(k) && !kept(k))
    {
        return Err(bad);
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// `$setElementOrder/<list>` (`mergePatchIntoOriginal`): merges that list and orders it by the
/// directive, then by the patch, then by the original.
fn merge_ordered_lists(original: &mut Object, patch: &mut Object, ty: &'static str) -> Smp<()> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let order = match patch.remove(&directive) {
            Some(Value::Array(order)) => order,
            other => return Err(bad_arg_type(GO_LIST, &other.unwrap_or_default())),
        };
        let name = extract_key(&directive, SET_ELEMENT_ORDER)?;
        let list = |v: Option<&Value>| match v {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(bad_arg_type(GO_LIST, other)),
        };
        let (from_original, from_patch) = (list(original.get(&name))?, list(patch.get(&name))?);
        let (strategy, key, field_ty) = field(ty, &name);
        validate_order(from_patch.as_deref().unwrap_or_default(), &order, key)?;
        let mut server_order = from_original.clone().unwrap_or_default();
        let merged = match (&from_original, &from_patch) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => p
                .iter()
                .cloned()
                .filter_map(remove_directives)
                .map(strip_directives)
                .collect(),
            (Some(o), Some(p)) if strategy == Strategy::Merge => {
                server_order = go_aliased_original(o, p, key);
                merge_list(o.clone(), p.clone(), field_ty, key, false)?
            }
            (Some(_), Some(p)) => p.iter().cloned().map(strip_directives).collect(),
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(merged, &order, key)?;
        let maps = element_type(&[
            from_original.unwrap_or_default(),
            from_patch.unwrap_or_default(),
        ])? == GoType::Map;
        let both = normalize_order(in_order, server_only, &order, &server_order, key, maps)?;
        original.insert(name.clone(), Value::Array(both));
        patch.remove(&name);
    }
    Ok(())
}

/// The patch list's items must appear in the `$setElementOrder` list, in the same order.
fn validate_order(patch_list: &[Value], order: &[Value], key: &str) -> Smp<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items = if key.is_empty() {
        patch_list.to_vec()
    } else {
        split_deletions(patch_list.to_vec())?.0
    };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(PATCH).is_some() {
            p += 1;
            continue;
        }
        let same = if key.is_empty() {
            items[p] == order[o]
        } else {
            merge_key(&items[p], key)? == merge_key(&order[o], key)?
        };
        p += usize::from(same);
        o += 1;
    }
    if p < items.len() {
        let (patch_list, order) = (
            go_v(&Value::Array(patch_list.to_vec())),
            go_v(&Value::Array(order.to_vec())),
        );
        let message = format!("The order in patch list:\n{patch_list}\n doesn't match {SET_ELEMENT_ORDER} list:\n{order}\n");
        return Err(SmpError::Go(message));
    }
    Ok(())
}

/// Merges two lists with a merge strategy (`mergeSlice`): maps by `key`, scalars as a set.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    ty: &'static str,
    key: &str,
    delete_list: bool,
) -> Smp<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let maps = element_type(&[original.clone(), patch.clone()])? == GoType::Map;
    let (original, patch, merged) = if !maps {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let both = dedup_scalars(original.iter().chain(&patch).cloned().collect());
        (original, patch, both)
    } else {
        if key.is_empty() {
            return Err(SmpError::Go(
                "cannot merge lists without merge key for string".into(),
            ));
        }
        let (original, patch) = apply_list_directives(original, patch, key)?;
        let mut merged = original.clone();
        for item in &patch {
            match find_by_key(&merged, key, merge_key(item, key)?)? {
                Some(i) => {
                    let (current, item) = (
                        into_object(std::mem::take(&mut merged[i])),
                        into_object(item.clone()),
                    );
                    merged[i] = Value::Object(merge_map(current, item, ty)?);
                }
                None => merged.push(strip_directives(item.clone())),
            }
        }
        (original, patch, merged)
    };
    let (in_patch, server_only) = partition(merged, &patch, key)?;
    normalize_order(in_patch, server_only, &patch, &original, key, maps)
}

/// Handles the `$patch` items of a list of maps: `delete` removes items by key, `replace` makes
/// the other items the whole list. Returns the original and the patch's plain items.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Smp<(Vec<Value>, Vec<Value>)> {
    let (mut plain, mut replace) = (Vec::new(), false);
    for item in patch {
        match item.get(PATCH).map(|d| (d, d.as_str())) {
            None => plain.push(item),
            Some((_, Some("delete"))) => {
                let value = merge_key(&item, key)?;
                while let Some(i) = find_by_key(&original, key, value)? {
                    original.remove(i);
                }
            }
            Some((_, Some("replace"))) => replace = true,
            Some((_, Some("merge"))) => {
                return Err(SmpError::Go(
                    "merging lists cannot yet be specified in the patch".into(),
                ))
            }
            Some((directive, _)) => {
                return Err(bad_patch_type(
                    directive,
                    item.as_object().unwrap_or(&Object::new()),
                ))
            }
        }
    }
    if replace {
        return Ok((
            plain.into_iter().map(strip_directives).collect(),
            Vec::new(),
        ));
    }
    Ok((original, plain))
}

/// Separates the `$patch: delete` items of a list of maps.
fn split_deletions(items: Vec<Value>) -> Smp<(Vec<Value>, Vec<Value>)> {
    let (mut kept, mut deleted) = (Vec::new(), Vec::new());
    for item in items {
        if !item.is_object() {
            return Err(bad_arg_type(GO_MAP, &item));
        }
        let delete = item.get(PATCH).and_then(Value::as_str) == Some("delete");
        (if delete { &mut deleted } else { &mut kept }).push(item);
    }
    Ok((kept, deleted))
}

/// Go's `deduplicateScalars`: a duplicate is replaced by the last item, so the order changes.
fn dedup_scalars(mut items: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i + 1 < items.len() {
        let mut j = i + 1;
        while j < items.len() {
            if items[i] == items[j] {
                drop(items.swap_remove(j))
            } else {
                j += 1
            }
        }
        i += 1;
    }
    items
}

fn merge_key<'a>(item: &'a Value, key: &str) -> Smp<&'a Value> {
    let Value::Object(map) = item else {
        return Err(bad_arg_type(GO_MAP, item));
    };
    map.get(key).ok_or_else(|| {
        SmpError::Go(format!(
            "map: {} does not contain declared merge key: {key}",
            go_v(item)
        ))
    })
}

fn find_by_key(list: &[Value], key: &str, value: &Value) -> Smp<Option<usize>> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(SmpError::Go(format!("value for key {i} is not a map")));
        };
        if map.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `sliceElementType`: every item of the lists must have one Go type, and not be a list.
fn element_type(lists: &[Vec<Value>]) -> Smp<GoType> {
    let mut items = lists.iter().flatten();
    let Some(first) = items.next() else {
        return Err(SmpError::Go(
            "no elements in any of the given slices".into(),
        ));
    };
    match go_type(first) {
        GoType::List => Err(SmpError::ListOfLists),
        t if t != GoType::Nil && items.all(|v| go_type(v) == t) => Ok(t),
        _ => {
            let all = Value::Array(lists.iter().map(|l| Value::Array(l.clone())).collect());
            Err(SmpError::Go(format!(
                "list element types are not identical: {}",
                go_v(&all)
            )))
        }
    }
}

fn extract_key(directive: &str, prefix: &'static str) -> Smp<String> {
    match directive.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ if prefix == SET_ELEMENT_ORDER => Err(SmpError::Format(
            "invalid patch format of setElementOrder list",
        )),
        _ => Err(SmpError::Format("invalid patch format of primitive list")),
    }
}

/// Go's `removeDirectives`: drops the maps that carry `$patch`, at any depth.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(map) if map.contains_key(PATCH) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| Some((k, remove_directives(v)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drops the directive keys left in values taken from the patch: Go leaves them in its map and
/// kube-apiserver drops them as unknown fields when it decodes the result into its typed object.
fn strip_directive_keys(map: Object) -> Object {
    let directive = |k: &str| {
        k == PATCH
            || k == RETAIN_KEYS
            || k.starts_with(SET_ELEMENT_ORDER)
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
    };
    map.into_iter()
        .filter(|(k, _)| !directive(k))
        .map(|(k, v)| (k, strip_directives(v)))
        .collect()
}

fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(strip_directive_keys(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

fn into_object(v: Value) -> Object {
    if let Value::Object(map) = v {
        map
    } else {
        Object::new()
    }
}

fn bad_arg_type(expected: &str, actual: &Value) -> SmpError {
    SmpError::Go(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

fn bad_patch_type(directive: &Value, map: &Object) -> SmpError {
    // `%s` marks every value that is not a string, but nil only at the top.
    let directive = if directive.is_null() {
        "%!s(<nil>)".into()
    } else {
        go_fmt(directive, false)
    };
    let map = go_v(&Value::Object(map.clone()));
    SmpError::Go(format!("unknown patch type: {directive} in map: {map}"))
}
