//! Admission that depends on the server's flags rather than on the object alone (pure
//! defaulting is `validation::default_object`): kube-apiserver's DefaultTolerationSeconds
//! plugin, which gives every pod a bounded toleration of the not-ready and unreachable
//! NoExecute taints, so that pods leave a lost node after `--default-*-toleration-seconds`.

use serde_json::{json, Value};

/// `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerations {
    pub not_ready_seconds: i64,
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerations {
    fn default() -> Self {
        Self {
            not_ready_seconds: 300,
            unreachable_seconds: 300,
        }
    }
}

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

impl DefaultTolerations {
    /// Adds the two tolerations to a new pod unless it already tolerates the taint (a
    /// toleration with the key, or an Exists toleration with no key, with effect NoExecute or
    /// none), as the plugin does.
    pub fn admit_pod(&self, pod: &mut Value) {
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let list = spec.entry("tolerations").or_insert_with(|| json!([]));
        if list.is_null() {
            *list = json!([]);
        }
        let Some(list) = list.as_array_mut() else {
            return;
        };
        let tolerates = |list: &[Value], key: &str| {
            list.iter().any(|t| {
                let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                let matches_key = match t.get("key").and_then(Value::as_str) {
                    Some(k) if !k.is_empty() => k == key,
                    _ => t.get("operator").and_then(Value::as_str) == Some("Exists"),
                };
                matches_key && (effect.is_empty() || effect == "NoExecute")
            })
        };
        for (key, seconds) in [
            (NOT_READY, self.not_ready_seconds),
            (UNREACHABLE, self.unreachable_seconds),
        ] {
            if !tolerates(list, key) {
                list.push(json!({
                    "key": key, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": seconds,
                }));
            }
        }
        if list.is_empty() {
            spec.remove("tolerations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(spec: Value) -> Value {
        let mut pod = json!({ "spec": spec });
        DefaultTolerations::default().admit_pod(&mut pod);
        pod["spec"]["tolerations"].clone()
    }

    #[test]
    fn every_pod_tolerates_a_lost_node_for_300_seconds() {
        assert_eq!(
            admitted(json!({ "containers": [] })),
            json!([
                { "key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                { "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
            ])
        );
    }

    #[test]
    fn a_pods_own_toleration_is_kept() {
        let own = json!({ "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 });
        let got = admitted(json!({ "tolerations": [own.clone()] }));
        assert_eq!(got.as_array().unwrap().len(), 2);
        assert_eq!(got[0], own);
        assert_eq!(got[1]["key"], NOT_READY);
        // A keyless Exists toleration tolerates everything: nothing is added.
        let all = json!([{ "operator": "Exists" }]);
        assert_eq!(admitted(json!({ "tolerations": all.clone() })), all);
        // A NoSchedule toleration of the key does not count.
        let no_schedule = json!({ "key": NOT_READY, "operator": "Exists", "effect": "NoSchedule" });
        assert_eq!(
            admitted(json!({ "tolerations": [no_schedule] }))
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn the_flags_set_the_seconds() {
        let mut pod = json!({ "spec": {} });
        DefaultTolerations {
            not_ready_seconds: 7,
            unreachable_seconds: 9,
        }
        .admit_pod(&mut pod);
        assert_eq!(pod["spec"]["tolerations"][0]["tolerationSeconds"], 7);
        assert_eq!(pod["spec"]["tolerations"][1]["tolerationSeconds"], 9);
    }
}
