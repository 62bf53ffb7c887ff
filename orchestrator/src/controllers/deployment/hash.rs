//! Pod-template hashing and template comparison.
//!
//! Copies the intent of `controller.ComputeHash` (pkg/controller/controller_utils.go),
//! `rand.SafeEncodeString` (apimachinery pkg/util/rand) and `EqualIgnoreHash`
//! (pkg/controller/deployment/util/deployment_util.go). Kubernetes hashes a `spew` dump of
//! the Go struct, which cannot be reproduced here; instead the template is serialised to
//! canonical JSON (object keys sorted, at every depth) and that byte string is hashed with
//! the same FNV-1a 32-bit function, the same collision-count suffix and the same encoding
//! alphabet. Hash values therefore differ from the ones a real kube-controller-manager
//! computes for the same template, but are stable across runs and crate versions.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// Label added to every ReplicaSet (labels, selector and pod template) the controller creates.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Canonical JSON text of a pod template (sorted keys; `None` fields are absent).
#[cfg(test)]
pub(crate) fn canonical_json(template: &PodTemplateSpec) -> String {
    crate::controllers::hash::canonical_json(&serde_json::to_value(template).unwrap_or(Value::Null))
}

/// The `pod-template-hash` value of a deployment's template (`controller.ComputeHash`).
pub use crate::controllers::hash::compute_hash;

/// Drops nulls, empty arrays and empty objects, recursively. Mirrors the forked
/// `reflect.DeepEqual` used by `apiequality.Semantic`, for which nil and empty slices and
/// maps are equal (an empty struct pointer is treated like nil here too: a documented
/// simplification).
fn prune(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .map(|i| prune(i).unwrap_or(Value::Null))
                .collect();
            if items.is_empty() {
                None
            } else {
                Some(Value::Array(items))
            }
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            if map.is_empty() {
                None
            } else {
                Some(Value::Object(map))
            }
        }
        other => Some(other),
    }
}

fn without_hash_label(template: &PodTemplateSpec) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    prune(serde_json::to_value(&t).unwrap_or(Value::Null)).unwrap_or(Value::Null)
}

/// `EqualIgnoreHash`: true when two pod templates are semantically equal once the
/// `pod-template-hash` label is removed from both. Used to find the deployment's new
/// ReplicaSet (the one whose template equals the deployment's template).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash_label(a) == without_hash_label(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::hash::{fnv32a, safe_encode, SAFE_ALPHABET};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv32a_known_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encode_uses_kube_alphabet() {
        // '0' is 48 -> 48 % 27 = 21 -> '4'; '9' is 57 -> 3 -> 'f'.
        assert_eq!(safe_encode("09"), "4f");
        let h = compute_hash(&template("nginx:1"), None);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    #[test]
    fn hash_is_deterministic_and_depends_on_template_and_collisions() {
        let t = template("nginx:1");
        assert_eq!(compute_hash(&t, None), compute_hash(&t.clone(), None));
        assert_ne!(
            compute_hash(&t, None),
            compute_hash(&template("nginx:2"), None)
        );
        assert_ne!(compute_hash(&t, None), compute_hash(&t, Some(1)));
        assert_ne!(compute_hash(&t, Some(1)), compute_hash(&t, Some(2)));
        // Some(0) appends eight zero bytes, so it differs from "no count", as in kube.
        assert_ne!(compute_hash(&t, None), compute_hash(&t, Some(0)));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut t = template("x");
        if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.insert("zzz".into(), "1".into());
            l.insert("aaa".into(), "2".into());
        }
        let s = canonical_json(&t);
        let a = s.find("\"aaa\"").unwrap_or(usize::MAX);
        let z = s.find("\"zzz\"").unwrap_or(0);
        assert!(a < z, "{s}");
        assert!(s.find("\"metadata\"") < s.find("\"spec\""));
    }

    #[test]
    fn equal_ignore_hash_ignores_only_the_hash_label() {
        let a = template("nginx:1");
        let mut b = a.clone();
        if let Some(l) = b.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
        }
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template("nginx:2")));
        let mut c = a.clone();
        if let Some(l) = c.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.insert("tier".into(), "front".into());
        }
        assert!(!equal_ignore_hash(&a, &c));
    }

    #[test]
    fn equal_ignore_hash_treats_empty_and_absent_collections_alike() {
        let a = template("nginx:1");
        let mut b = a.clone();
        if let Some(spec) = b.spec.as_mut() {
            spec.volumes = Some(vec![]);
        }
        if let Some(m) = b.metadata.as_mut() {
            m.annotations = Some(BTreeMap::new());
        }
        assert!(equal_ignore_hash(&a, &b));
    }
}
