//! The discovery documents kubectl reads before anything else: `/version`, `/api`, `/apis`,
//! `/apis/<group>` and each group version's resource list (the classic documents), and `/api`
//! and `/apis` aggregated (apidiscovery.k8s.io v2 and v2beta1: every resource of every version in
//! one answer, what kubectl 1.32 asks for first).

use serde_json::{json, Value};

use super::path::Discovery;
use super::resources::{group_versions, ResourceInfo, RESOURCES};

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

/// A subresource's kind, verbs and (when not the resource's own) group version.
#[allow(clippy::type_complexity)]
fn subresource(
    r: &ResourceInfo,
    sub: &str,
) -> Option<(
    &'static str,
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
)> {
    Some(match sub {
        "status" => (r.kind, &["get", "patch", "update"], None),
        "scale" => (
            "Scale",
            &["get", "patch", "update"],
            Some(("autoscaling", "v1")),
        ),
        "binding" => ("Binding", &["create"], None),
        "log" => ("Pod", &["get"], None),
        _ => return None,
    })
}

/// The aggregated discovery versions this server offers, newest first.
const AGGREGATED: [&str; 2] = ["v2", "v2beta1"];

/// The aggregated discovery version an `Accept` header asks for first, if any (kubectl 1.32
/// asks for `v2`, then `v2beta1`, then the classic documents).
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if !(has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList")) {
            return None;
        }
        AGGREGATED
            .into_iter()
            .find(|v| params.contains(&format!("v={v}").as_str()))
    })
}

/// The media type of an aggregated discovery document.
pub fn aggregated_media_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api` (the core group) or `/apis` (every named group) as one aggregated document
/// (apidiscovery.k8s.io's APIGroupDiscoveryList): every version's resources in one answer.
pub fn aggregated(core: bool, version: &str) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in group_versions() {
        if g.is_empty() == core && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = group_versions()
                .into_iter()
                .filter(|(g, _)| *g == group)
                .map(|(_, v)| {
                    let resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == group && r.version == v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let kind = |kind: &str, gv: Option<(&str, &str)>| {
        let (g, v) = gv.unwrap_or((r.group, r.version));
        json!({"group": g, "version": v, "kind": kind})
    };
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .filter_map(|sub| {
            let (k, verbs, gv) = subresource(r, sub)?;
            Some(json!({"subresource": sub, "responseKind": kind(k, gv), "verbs": verbs}))
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": kind(r.kind, None),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
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
                    let Some((kind, verbs, group_version)) = subresource(r, sub) else {
                        continue;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_is_offered_as_kubectl_asks() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(old), Some("v2beta1"));
        assert_eq!(aggregated_version("application/json"), None);
        assert_eq!(
            aggregated_version("application/json;as=Table;g=meta.k8s.io;v=v1"),
            None
        );
    }

    #[test]
    fn aggregated_documents_list_every_resource_once() {
        let core = aggregated(true, "v2");
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let groups = aggregated(false, "v2");
        let names: Vec<&str> = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"apps") && !names.contains(&""), "{names:?}");
        let autoscaling = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "autoscaling")
            .unwrap();
        assert_eq!(
            autoscaling["versions"][0]["version"], "v2",
            "the preferred version first"
        );
        let count: usize = [&core, &groups]
            .iter()
            .flat_map(|d| d["items"].as_array().unwrap())
            .flat_map(|g| g["versions"].as_array().unwrap())
            .map(|v| v["resources"].as_array().unwrap().len())
            .sum();
        assert_eq!(count, RESOURCES.len());
        let apps = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = &apps["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(deployments["scope"], "Namespaced");
        assert_eq!(
            deployments["subresources"][1]["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
    }
}
