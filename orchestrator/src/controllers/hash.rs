//! The hashes kube-controller-manager names objects with: `controller.ComputeHash` (a pod
//! template's `pod-template-hash` and `controller-revision-hash`: FNV-1a), the ControllerRevision
//! hash (FNV-1), and `rand.SafeEncodeString`. Kube hashes a `spew` dump of the Go struct, which
//! cannot be reproduced; here the input is the object's JSON with keys sorted, so values are
//! stable but differ from a real kube-controller-manager's.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// Alphabet of `rand.SafeEncodeString` (no vowels, no 0/1/3: no words, no look-alikes).
pub(crate) const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits (Go's `hash/fnv.New32a`, used by `controller.ComputeHash`).
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1, 32 bits (Go's `hash/fnv.New32`, used by `HashControllerRevision`).
pub fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        h.wrapping_mul(0x0100_0193) ^ u32::from(*b)
    })
}

/// `rand.SafeEncodeString`: each character mapped into the vowel-free alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|c| char::from(SAFE_ALPHABET[usize::from(c) % SAFE_ALPHABET.len()]))
        .collect()
}

/// `v` as compact JSON with object keys sorted at every depth (whatever serde_json's map
/// feature flags are).
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(inner) = map.get(k) {
                        write(inner, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// `controller.ComputeHash(template, collisionCount)`: FNV-1a over the template, then, when a
/// collision count is present, its value as 8 little-endian bytes (u32 + 4 zero bytes); the
/// decimal text of the sum, safe-encoded.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut bytes = canonical_json(&value).into_bytes();
    if let Some(count) = collision_count {
        let mut suffix = [0u8; 8];
        suffix[..4].copy_from_slice(&(count as u32).to_le_bytes());
        bytes.extend_from_slice(&suffix);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}
