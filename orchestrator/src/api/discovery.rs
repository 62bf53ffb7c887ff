//! The discovery documents kubectl reads before anything else: `/version`, `/api`, `/apis`,
//! `/apis/<group>` and each group version's resource list (the classic, unaggregated documents:
//! kubectl falls back to them when the aggregated form is not offered).

use serde_json::{json, Value};

use super::path::Discovery;
use super::resources::{group_versions, RESOURCES};

/// The Kubernetes version this server's API is: the types are k8s-openapi's `v1_33`.
pub const KUBERNETES_MINOR: &str = "33";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-ballast.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({ "groupVersion": format!("{g}/{v}"), "version": v }))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// The document at a discovery path; None if it names nothing served.
pub fn document(which: &Discovery) -> Option<Value> {
    match which {
        Discovery::CoreVersions => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "" }],
        })),
        Discovery::Groups => {
            let mut groups: Vec<&str> = Vec::new();
            for (g, _) in group_versions() {
                if !g.is_empty() && !groups.contains(&g) {
                    groups.push(g);
                }
            }
            Some(json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": groups.into_iter().map(group_json).collect::<Vec<_>>(),
            }))
        }
        Discovery::Group(group) => {
            if group.is_empty() || !group_versions().iter().any(|(g, _)| g == group) {
                return None;
            }
            let mut doc = group_json(group);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Some(doc)
        }
        Discovery::Resources { group, version } => {
            let served: Vec<_> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .collect();
            if served.is_empty() {
                return None;
            }
            let mut resources = Vec::new();
            for r in served {
                let mut entry = json!({
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": r.verbs(),
                });
                if !r.short_names.is_empty() {
                    entry["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    entry["categories"] = json!(r.categories);
                }
                resources.push(entry);
                for sub in r.subresources {
                    let (kind, verbs, group_version): (&str, &[&str], Option<(&str, &str)>) =
                        match *sub {
                            "status" => (r.kind, &["get", "patch", "update"], None),
                            "scale" => (
                                "Scale",
                                &["get", "patch", "update"],
                                Some(("autoscaling", "v1")),
                            ),
                            "binding" => ("Binding", &["create"], None),
                            "log" => ("Pod", &["get"], None),
                            _ => continue,
                        };
                    let mut entry = json!({
                        "name": format!("{}/{sub}", r.plural),
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": kind,
                        "verbs": verbs,
                    });
                    if let Some((g, v)) = group_version {
                        entry["group"] = json!(g);
                        entry["version"] = json!(v);
                    }
                    resources.push(entry);
                }
            }
            let group_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            Some(json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": resources,
            }))
        }
    }
}
