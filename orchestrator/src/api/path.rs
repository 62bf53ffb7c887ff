//! A request path read as kube-apiserver's RequestInfo: which group version, resource,
//! namespace, name and subresource it addresses.

use super::resources::{self, ResourceInfo};

/// What a resource path names.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path is.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, `/apis/apps`: discovery documents.
    Discovery(Discovery),
    Resource(Target),
    /// A group version or resource this server does not serve.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`: its resources.
    Resources { group: String, version: String },
}

/// Reads `path` (without the query).
pub fn route(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Route::Discovery(Discovery::CoreVersions),
        ["apis"] => return Route::Discovery(Discovery::Groups),
        ["apis", group] => return Route::Discovery(Discovery::Group(group.to_string())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::Unknown,
    };
    if rest.is_empty() {
        return Route::Discovery(Discovery::Resources {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    // `namespaces/<ns>/<resource>...` is a namespaced path unless its third segment is one of
    // the Namespace object's own subresources.
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") => {
            (Some(ns.to_string()), [&[*resource][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let Some(resource) = resources::find(group, version, rest[0]) else {
        return Route::Unknown;
    };
    if resource.namespaced != namespace.is_some() && rest.len() > 1 {
        // A namespaced resource's object must be named within a namespace, and a cluster-scoped
        // one must not be.
        return Route::Unknown;
    }
    if !resource.namespaced && namespace.is_some() {
        return Route::Unknown;
    }
    let (name, subresource) = match &rest[1..] {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if resource.has(sub) => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::Unknown,
    };
    Route::Resource(Target {
        resource,
        namespace,
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> (String, Option<String>, Option<String>, Option<String>) {
        match route(path) {
            Route::Resource(t) => (
                t.resource.group_resource(),
                t.namespace,
                t.name,
                t.subresource,
            ),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn paths() {
        assert_eq!(target("/api/v1/pods"), ("pods".into(), None, None, None));
        assert_eq!(
            target("/api/v1/namespaces/a/pods"),
            ("pods".into(), s("a"), None, None)
        );
        assert_eq!(
            target("/api/v1/namespaces/a/pods/p/status"),
            ("pods".into(), s("a"), s("p"), s("status"))
        );
        assert_eq!(
            target("/api/v1/namespaces"),
            ("namespaces".into(), None, None, None)
        );
        assert_eq!(
            target("/api/v1/namespaces/a"),
            ("namespaces".into(), None, s("a"), None)
        );
        assert_eq!(
            target("/api/v1/namespaces/a/status"),
            ("namespaces".into(), None, s("a"), s("status"))
        );
        assert_eq!(
            target("/apis/apps/v1/namespaces/x/deployments/web/scale"),
            ("deployments.apps".into(), s("x"), s("web"), s("scale"))
        );
        assert_eq!(
            target("/api/v1/nodes/n1"),
            ("nodes".into(), None, s("n1"), None)
        );
        assert!(
            matches!(route("/apis/apps/v1"), Route::Discovery(Discovery::Resources { group, version }) if group == "apps" && version == "v1")
        );
        for unknown in [
            "/apis/apps/v2/deployments",
            "/api/v1/namespaces/a/nodes/n1",
            "/api/v1/pods/p",
            "/api/v1/namespaces/a/configmaps/c/scale",
        ] {
            assert!(matches!(route(unknown), Route::Unknown), "{unknown}");
        }
    }
}
