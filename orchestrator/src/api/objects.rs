//! What kube-apiserver does to an object's metadata on create, update and delete, as pure
//! functions on JSON: names from `generateName`, uid, creationTimestamp, generation, the parts of
//! an object a subresource may change, and what is never stored (resourceVersion).

use rand::Rng;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::resources::ResourceInfo;

/// `metadata` of `object`, created if missing.
pub fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// Checks the body's `apiVersion` and `kind` against the resource the path names, as
/// kube-apiserver's decoder does (both may be left out).
pub fn check_type(info: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::BadRequest(
            "the body of the request was not a JSON object".into(),
        ));
    }
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str) {
        if api_version != info.api_version() {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str) {
        if kind != info.kind {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    Ok(())
}

/// The characters of a generated name's suffix (apimachinery's `utilrand.String`: no vowels, no
/// look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let mut name = prefix.to_string();
    for _ in 0..5 {
        name.push(SUFFIX_ALPHABET[rng.gen_range(0..SUFFIX_ALPHABET.len())] as char);
    }
    name
}

/// A random (version 4) UUID, as Kubernetes' object uids are.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::thread_rng().gen();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, byte)| match i {
            6 => format!("{:02x}", (byte & 0x0f) | 0x40),
            8 => format!("{:02x}", (byte & 0x3f) | 0x80),
            _ => format!("{byte:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Sets what the server owns on a new object: uid, creationTimestamp, generation 1; clears what
/// a client may not set (resourceVersion, deletion fields) and, where the status is a
/// subresource, the status.
pub fn prepare_create(info: &ResourceInfo, object: &mut Value, uid: String, now: &str) {
    let has_status = info.has("status");
    let meta = meta_mut(object);
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(now));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if object.get("spec").is_some() {
        meta_mut(object).insert("generation".into(), json!(1));
    }
    if has_status && info.kind != "Namespace" {
        if let Some(obj) = object.as_object_mut() {
            obj.remove("status");
        }
    }
}

/// The object an update stores: `new` as sent, with what the client may not change kept from
/// `old` (identity and timestamps; the status, unless this is the status subresource; the rest,
/// if it is), and `generation` bumped when the spec changed.
pub fn prepare_update(info: &ResourceInfo, new: &mut Value, old: &Value, status_only: bool) {
    if status_only {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(status) => merged["status"] = status,
            None => {
                if let Some(o) = merged.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        *new = merged;
    } else if info.has("status") {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(new);
    for keep in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(keep) {
            Some(v) => meta.insert(keep.into(), v.clone()),
            None => meta.remove(keep),
        };
    }
    meta.remove("resourceVersion");
    if !status_only && new.get("spec") != old.get("spec") {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(new).insert("generation".into(), json!(generation + 1));
    }
}

/// An object as the API answers with it: its resourceVersion set from the store.
pub fn with_version(mut object: Value, mod_revision: i64) -> Value {
    meta_mut(&mut object).insert("resourceVersion".into(), json!(mod_revision.to_string()));
    object
}

/// The object's finalizers.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of `sent` that decoding through the type dropped (`normalized` is what came out):
/// kube-apiserver's unknown fields, named as its strict decoder names them
/// (`spec.template.spec.containers[0].imagePullPolicyy`).
pub fn unknown_fields(sent: &Value, normalized: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(sent, normalized, String::new(), &mut out);
    out
}

fn walk_unknown(sent: &Value, kept: &Value, path: String, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(sent), Value::Object(kept)) => {
            for (key, value) in sent {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    Some(k) => walk_unknown(value, k, here, out),
                    None if !value.is_null() => out.push(here),
                    None => {}
                }
            }
        }
        (Value::Array(sent), Value::Array(kept)) => {
            for (i, (s, k)) in sent.iter().zip(kept).enumerate() {
                walk_unknown(s, k, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::find;

    #[test]
    fn create_sets_what_the_server_owns() {
        let d = find("apps", "v1", "deployments").unwrap();
        let mut obj = json!({"metadata": {"name": "a", "resourceVersion": "9"}, "spec": {}, "status": {"replicas": 3}});
        prepare_create(d, &mut obj, "u".into(), "t");
        assert_eq!(
            obj["metadata"],
            json!({"name": "a", "uid": "u", "creationTimestamp": "t", "generation": 1})
        );
        assert!(obj.get("status").is_none());
    }

    #[test]
    fn update_keeps_identity_and_bumps_generation_on_spec_change() {
        let d = find("apps", "v1", "deployments").unwrap();
        let old = json!({"metadata": {"name": "a", "uid": "u", "generation": 1, "creationTimestamp": "t"},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "a", "uid": "other", "labels": {"x": "y"}}, "spec": {"replicas": 1}});
        prepare_update(d, &mut new, &old, false);
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["metadata"]["generation"], 1, "labels are not the spec");
        assert_eq!(
            new["status"],
            json!({"replicas": 1}),
            "the status is the subresource's"
        );
        let mut new = json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}, "status": {}});
        prepare_update(d, &mut new, &old, false);
        assert_eq!(new["metadata"]["generation"], 2);
        // The status subresource changes the status alone.
        let mut new = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"replicas": 5}, "status": {"replicas": 2}});
        prepare_update(d, &mut new, &old, true);
        assert_eq!(
            (
                new["spec"]["replicas"].clone(),
                new["status"]["replicas"].clone()
            ),
            (json!(1), json!(2))
        );
        assert!(new["metadata"].get("labels").is_none());
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let sent = json!({"spec": {"replicas": 1, "replicaz": 2, "template": {"spec": {"containers": [{"name": "a", "imag": "x"}]}}}, "x": null});
        let kept =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        assert_eq!(
            unknown_fields(&sent, &kept),
            ["spec.replicaz", "spec.template.spec.containers[0].imag"]
        );
    }

    #[test]
    fn uids_are_version_4() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
    }
}
