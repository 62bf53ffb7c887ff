//! Tests of the OpenAPI documents: what kubectl looks up in them must be there.

use super::*;

fn document(path: &str) -> Value {
    v3_group_version(path).unwrap_or_else(|| panic!("{path} is not served"))
}

/// Every `$ref` below `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_root_lists_every_served_group_version() {
    let root = v3_root();
    let paths = root["paths"].as_object().unwrap();
    let expected: Vec<String> = group_versions()
        .into_iter()
        .map(|(g, v)| document_path(g, v))
        .collect();
    assert_eq!(paths.len(), expected.len());
    for path in &expected {
        let url = paths[path]["serverRelativeURL"].as_str().unwrap();
        let hash = &v3_document(path).unwrap().hash;
        assert_eq!(url, format!("/openapi/v3/{path}?hash={hash}"));
        assert!(v3_group_version(path).is_some(), "{path}");
    }
    assert!(paths.contains_key("api/v1"));
    assert!(paths.contains_key("apis/apps/v1"));
    assert!(v3_group_version("apis/apps/v2").is_none());
    assert!(v3_group_version("apis/apps").is_none());
    assert!(
        v3_group_version("/apis/apps/v1/").is_some(),
        "slashes around the path are ignored"
    );
}

#[test]
fn documents_are_built_once() {
    let a = v3_document("apis/apps/v1").unwrap();
    let b = v3_document("apis/apps/v1").unwrap();
    assert!(std::ptr::eq(a, b));
}

#[test]
fn every_kind_is_a_component_with_its_group_version_kind() {
    let apps = document("apis/apps/v1");
    let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{ "group": "apps", "version": "v1", "kind": "Deployment" }])
    );
    assert!(deployment["description"]
        .as_str()
        .unwrap()
        .starts_with("Deployment enables"));
    let list = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    for r in RESOURCES {
        let doc = document(&document_path(r.group, r.version));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let found = schemas.values().any(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|k| k.contains(&gvk(r.group, r.version, r.kind)))
        });
        assert!(found, "{} has no component", r.group_kind());
    }
}

#[test]
fn every_reference_resolves_within_the_document() {
    for (group, version) in group_versions() {
        let path = document_path(group, version);
        let doc = document(&path);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix(SCHEMA_REF_PREFIX)
                .unwrap_or_else(|| panic!("{path}: {r}"));
            assert!(schemas.contains_key(name), "{path}: {r} is dangling");
        }
        assert!(!doc.to_string().contains("$defs"), "{path}");
    }
}

/// kubectl's check (cli-runtime's `supportsQueryParamV3`): the first PATCH operation for the
/// kind must list `fieldValidation` among its own parameters.
#[test]
fn every_patch_operation_of_a_kind_takes_field_validation() {
    let apps = document("apis/apps/v1");
    let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        gvk("apps", "v1", "Deployment")
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fieldValidation"), "{names:?}");
    assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());

    for (group, version) in group_versions() {
        let doc = document(&document_path(group, version));
        for (path, item) in doc["paths"].as_object().unwrap() {
            if let Some(op) = item.get("patch") {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params.iter().any(|p| p["name"] == "fieldValidation"),
                    "{path}"
                );
                // kubectl's apply computes a strategic merge patch from these documents (and
                // not from its compiled-in types) only if the operation takes one.
                let body = &op["requestBody"]["content"]["application/strategic-merge-patch+json"];
                assert!(body.is_object(), "{path}");
                assert!(
                    op["x-kubernetes-group-version-kind"]["kind"].is_string(),
                    "{path}"
                );
            }
        }
    }
}

/// kubectl explain finds a resource's kind through the operations of these paths.
#[test]
fn resource_paths_follow_the_rest_layout() {
    let core = document("api/v1");
    let paths = core["paths"].as_object().unwrap();
    for path in [
        "/api/v1/namespaces/{namespace}/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}",
        "/api/v1/namespaces/{namespace}/pods/{name}/status",
        "/api/v1/namespaces/{namespace}/pods/{name}/binding",
        "/api/v1/namespaces/{namespace}/pods/{name}/log",
        "/api/v1/pods",
        "/api/v1/nodes",
        "/api/v1/nodes/{name}",
        "/api/v1/namespaces/{name}/status",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert!(!paths.contains_key("/api/v1/namespaces/{namespace}/nodes"));
    let get = &paths["/api/v1/namespaces/{namespace}/configmaps"]["get"];
    assert_eq!(get["operationId"], "listCoreV1NamespacedConfigMap");
    assert_eq!(
        get["x-kubernetes-group-version-kind"],
        gvk("", "v1", "ConfigMap")
    );

    let apps = document("apis/apps/v1");
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        gvk("autoscaling", "v1", "Scale")
    );
    let scale_schema = &apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"];
    assert_eq!(
        scale_schema["x-kubernetes-group-version-kind"][0],
        gvk("autoscaling", "v1", "Scale")
    );
    let lease = document("apis/coordination.k8s.io/v1");
    let patch = &lease["paths"]
        ["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchCoordinationV1NamespacedLease");
}

/// Field descriptions come through as kube-apiserver shapes them: a described reference is an
/// `allOf` of the reference.
#[test]
fn described_references_are_wrapped_in_all_of() {
    let apps = document("apis/apps/v1");
    let spec = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"];
    let template = &spec["properties"]["template"];
    assert_eq!(
        template["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"
    );
    assert!(template["description"]
        .as_str()
        .unwrap()
        .starts_with("Template describes"));
}

#[test]
fn merge_keys_are_where_strategic_merge_patch_looks() {
    let apps = document("apis/apps/v1");
    let schemas = &apps["components"]["schemas"];
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let volumes = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    let finalizers =
        &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());

    // Every entry of the table lands in some document: a property k8s-openapi renamed would
    // otherwise silently lose its merge key.
    let docs: Vec<Value> = group_versions()
        .into_iter()
        .map(|(g, v)| document(&document_path(g, v)))
        .collect();
    assert_eq!(patch_meta().count(), 40);
    for (component, property, strategy, _) in patch_meta() {
        let found = docs.iter().any(|d| {
            d["components"]["schemas"][component]["properties"][property]
                ["x-kubernetes-patch-strategy"]
                == strategy
        });
        assert!(found, "{component}.{property}");
    }
}

/// kubectl explain (its plaintext template) takes a resource's kind from the first operation it
/// finds under the collection or item path, cluster-scoped or namespaced.
#[test]
fn explain_finds_every_resource_by_its_rest_paths() {
    for r in RESOURCES {
        let doc = document(&document_path(r.group, r.version));
        let prefix = match r.group {
            "" => format!("/api/{}", r.version),
            g => format!("/apis/{g}/{}", r.version),
        };
        let candidates = [
            format!("{prefix}/{}", r.plural),
            format!("{prefix}/{}/{{name}}", r.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
        ];
        let found = candidates.iter().find_map(|path| {
            let item = doc["paths"].get(path)?;
            ["get", "post", "put", "patch", "delete"]
                .iter()
                .find_map(|m| item.get(*m)?.get("x-kubernetes-group-version-kind"))
        });
        assert_eq!(
            found,
            Some(&gvk(r.group, r.version, r.kind)),
            "{}",
            r.plural
        );
    }
}

#[test]
fn kinds_do_not_require_metadata() {
    let core = document("api/v1");
    let schemas = &core["components"]["schemas"];
    assert!(schemas["io.k8s.api.core.v1.ConfigMap"]
        .get("required")
        .is_none());
    assert_eq!(
        schemas["io.k8s.api.core.v1.Binding"]["required"],
        json!(["target"])
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["required"],
        json!(["items"])
    );
}
