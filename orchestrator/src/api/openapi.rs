//! The OpenAPI v3 documents kubectl reads: `/openapi/v3` (the index) and one document per served
//! group version, built from k8s-openapi's schemars schemas.
//!
//! kubectl reads them for three things. `kubectl explain` finds a resource's operations under its
//! REST paths, takes the kind from their `x-kubernetes-group-version-kind` extension, and prints
//! the component schema carrying the same kind. `kubectl create`/`apply`/`replace` with the
//! default `--validate=strict` look for the kind's PATCH operation and, if it lists the
//! `fieldValidation` parameter, leave validation to the server (`?fieldValidation=Strict`)
//! instead of downloading the OpenAPI v2 document to validate on the client. And client-side
//! `kubectl apply` computes its strategic merge patch from the component schemas when the PATCH
//! operation accepts `application/strategic-merge-patch+json`, reading the lists' merge keys from
//! the `x-kubernetes-patch-merge-key` and `x-kubernetes-patch-strategy` extensions.
//! k8s-openapi's schemas carry neither those extensions nor any paths, so both are added here.
//!
//! kubectl 1.32 never asks for `/openapi/v2` in these flows while the v3 documents answer, so
//! no v2 document is served.

use std::sync::OnceLock;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Binding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Patch, Status};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::discovery;
use super::resources::{group_versions, ResourceInfo, RESOURCES};

/// Where a document's references point: its own `components.schemas`.
const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Lists that strategic merge patch merges rather than replaces, as Kubernetes' Go types tag
/// them (`patchStrategy`, `patchMergeKey`), one per line: the component, the property, its
/// `x-kubernetes-patch-strategy` and its `x-kubernetes-patch-merge-key` (none for lists of
/// scalars). k8s-openapi's schemas carry neither, and client-side `kubectl apply` reads them from
/// the documents: without them it sends whole lists, which the server merges by key, so removing
/// a container or an environment variable from a manifest would never remove it. A component a
/// document does not contain is skipped.
const PATCH_META: &str = "
    io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta finalizers merge
    io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta ownerReferences merge uid
    io.k8s.api.core.v1.Container env merge name
    io.k8s.api.core.v1.Container ports merge containerPort
    io.k8s.api.core.v1.Container volumeDevices merge devicePath
    io.k8s.api.core.v1.Container volumeMounts merge mountPath
    io.k8s.api.core.v1.ContainerStatus allocatedResourcesStatus merge name
    io.k8s.api.core.v1.ContainerStatus volumeMounts merge mountPath
    io.k8s.api.core.v1.EphemeralContainer env merge name
    io.k8s.api.core.v1.EphemeralContainer ports merge containerPort
    io.k8s.api.core.v1.EphemeralContainer volumeDevices merge devicePath
    io.k8s.api.core.v1.EphemeralContainer volumeMounts merge mountPath
    io.k8s.api.core.v1.NamespaceStatus conditions merge type
    io.k8s.api.core.v1.NodeSpec podCIDRs merge
    io.k8s.api.core.v1.NodeStatus addresses merge type
    io.k8s.api.core.v1.NodeStatus conditions merge type
    io.k8s.api.core.v1.PersistentVolumeClaimStatus conditions merge type
    io.k8s.api.core.v1.PodSpec containers merge name
    io.k8s.api.core.v1.PodSpec ephemeralContainers merge name
    io.k8s.api.core.v1.PodSpec hostAliases merge ip
    io.k8s.api.core.v1.PodSpec imagePullSecrets merge name
    io.k8s.api.core.v1.PodSpec initContainers merge name
    io.k8s.api.core.v1.PodSpec resourceClaims merge,retainKeys name
    io.k8s.api.core.v1.PodSpec schedulingGates merge name
    io.k8s.api.core.v1.PodSpec topologySpreadConstraints merge topologyKey
    io.k8s.api.core.v1.PodSpec volumes merge,retainKeys name
    io.k8s.api.core.v1.PodStatus conditions merge type
    io.k8s.api.core.v1.PodStatus hostIPs merge ip
    io.k8s.api.core.v1.PodStatus podIPs merge ip
    io.k8s.api.core.v1.PodStatus resourceClaimStatuses merge,retainKeys name
    io.k8s.api.core.v1.ServiceAccount secrets merge name
    io.k8s.api.core.v1.ServiceSpec ports merge port
    io.k8s.api.core.v1.ServiceStatus conditions merge type
    io.k8s.api.apps.v1.DaemonSetStatus conditions merge type
    io.k8s.api.apps.v1.DeploymentSpec strategy retainKeys
    io.k8s.api.apps.v1.DeploymentStatus conditions merge type
    io.k8s.api.apps.v1.ReplicaSetStatus conditions merge type
    io.k8s.api.apps.v1.StatefulSetStatus conditions merge type
    io.k8s.api.batch.v1.JobStatus conditions merge type
    io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus conditions merge type
";

/// The rows of [`PATCH_META`]: component, property, strategy, merge key ("" for none).
fn patch_meta() -> impl Iterator<Item = (&'static str, &'static str, &'static str, &'static str)> {
    PATCH_META.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        Some((
            words.next()?,
            words.next()?,
            words.next()?,
            words.next().unwrap_or(""),
        ))
    })
}

/// The parameters operations take, one per line: name, type, description (shortened from
/// kube-apiserver's). They are written inline, never as references, as kubectl compares the
/// names of an operation's own parameters; `fieldValidation` on a kind's PATCH operation is what
/// tells it that the server validates fields itself.
const PARAMS: &str = "
    allowWatchBookmarks boolean allowWatchBookmarks requests watch events with type \"BOOKMARK\".
    container string The container for which to stream logs. Defaults to only container if there is one container in the pod.
    continue string The continue option should be set when retrieving more results from the server.
    dryRun string When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed
    fieldManager string fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.
    fieldSelector string A selector to restrict the list of returned objects by their fields. Defaults to everything.
    fieldValidation string fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.
    follow boolean Follow the log stream of the pod. Defaults to false.
    force boolean Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.
    gracePeriodSeconds integer The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.
    labelSelector string A selector to restrict the list of returned objects by their labels. Defaults to everything.
    limit integer limit is a maximum number of responses to return for a list call.
    limitBytes integer If set, the number of bytes to read from the server before terminating the log output.
    namespace string object name and auth scope, such as for teams and projects
    orphanDependents boolean Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.
    pretty string If 'true', then the output is pretty printed.
    previous boolean Return previous terminated container logs. Defaults to false.
    propagationPolicy string Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.
    resourceVersion string resourceVersion sets a constraint on what resource versions a request may be served from.
    resourceVersionMatch string resourceVersionMatch determines how resourceVersion is applied to list calls.
    sendInitialEvents boolean `sendInitialEvents=true` may be set together with `watch=true`.
    sinceSeconds integer A relative time in seconds before the current time from which to show logs.
    tailLines integer If set, the number of lines from the end of the logs to show.
    timeoutSeconds integer Timeout for the list/watch call.
    timestamps boolean If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.
    watch boolean Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.
";

/// The parameters of each kind of operation, in kube-apiserver's (alphabetical) order.
const LIST: &str = "allowWatchBookmarks continue fieldSelector labelSelector limit resourceVersion resourceVersionMatch sendInitialEvents timeoutSeconds watch";
const WRITE: &str = "dryRun fieldManager fieldValidation";
const PATCH: &str = "dryRun fieldManager fieldValidation force";
const DELETE: &str = "dryRun gracePeriodSeconds orphanDependents propagationPolicy";
const DELETE_COLLECTION: &str = "continue dryRun fieldSelector gracePeriodSeconds labelSelector limit orphanDependents propagationPolicy resourceVersion resourceVersionMatch sendInitialEvents timeoutSeconds";
const LIST_ALL_NAMESPACES: &str = "allowWatchBookmarks continue fieldSelector labelSelector limit pretty resourceVersion resourceVersionMatch sendInitialEvents timeoutSeconds watch";
const LOG: &str =
    "container follow limitBytes name namespace pretty previous sinceSeconds tailLines timestamps";

/// One group version's document, serialized once.
#[derive(Debug)]
pub struct V3Document {
    /// The document's key in `/openapi/v3`: `api/v1`, `apis/apps/v1`.
    pub path: String,
    /// A digest of `body`, which the index's `serverRelativeURL` carries as `?hash=` so that
    /// clients caching by URL fetch the document again when it changes.
    pub hash: String,
    /// The document as JSON, as served.
    pub body: Vec<u8>,
}

impl V3Document {
    /// `/openapi/v3/apis/apps/v1?hash=...`: where the index points clients.
    pub fn server_relative_url(&self) -> String {
        format!("/openapi/v3/{}?hash={}", self.path, self.hash)
    }
}

/// Every served group version's document, in discovery's order; built on first use, as the
/// documents are large and never change while the server runs.
pub fn v3_documents() -> &'static [V3Document] {
    static DOCUMENTS: OnceLock<Vec<V3Document>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        group_versions()
            .into_iter()
            .map(|(group, version)| {
                let value = group_version_document(group, version);
                // A `Value` always serializes: its map keys are strings.
                let body = serde_json::to_vec(&value).unwrap_or_default();
                V3Document {
                    path: document_path(group, version),
                    hash: format!("{:016X}", fnv1a(&body)),
                    body,
                }
            })
            .collect()
    })
}

/// The document served at `/openapi/v3/<path>` (`api/v1`, `apis/apps/v1`); None if not served.
pub fn v3_document(path: &str) -> Option<&'static V3Document> {
    let path = path.trim_matches('/');
    v3_documents().iter().find(|d| d.path == path)
}

/// `GET /openapi/v3`: where each group version's document is.
pub fn v3_root() -> Value {
    let paths: Map<String, Value> = v3_documents()
        .iter()
        .map(|d| {
            (
                d.path.clone(),
                json!({ "serverRelativeURL": d.server_relative_url() }),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// `GET /openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>` (the path after
/// `/openapi/v3/`); None if not served.
pub fn v3_group_version(path: &str) -> Option<Value> {
    v3_document(path).and_then(|d| serde_json::from_slice(&d.body).ok())
}

fn document_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// 64-bit FNV-1a: a stable digest for the `hash` parameter (it only has to change when the
/// document does; kube-apiserver's SHA-512 is not needed for that).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMA_REF_PREFIX}{name}") })
}

/// The component a generated schema refers to, as `subschema_for` returns a reference for every
/// k8s-openapi type.
fn component_name(schema: &schemars::Schema) -> Option<String> {
    let reference = schema.get("$ref")?.as_str()?;
    Some(reference.strip_prefix(SCHEMA_REF_PREFIX)?.to_string())
}

fn component_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<String> {
    component_name(&generator.subschema_for::<T>())
}

/// The component names of one resource's schemas.
struct Components {
    kind: String,
    list: String,
}

/// Shared components every document's operations refer to.
struct Common {
    status: String,
    delete_options: String,
    patch: String,
    list_meta: String,
    scale: String,
    binding: String,
}

fn group_version_document(group: &str, version: &str) -> Value {
    let served: Vec<&ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    // OpenAPI 3.0 settings keep the definitions under `/components/schemas` and turn a `$ref`
    // with siblings (a field's description) into `allOf: [{$ref}]`, as kube-apiserver writes it.
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut resources: Vec<(&ResourceInfo, Components)> = Vec::new();
    for r in served {
        let Some(kind) = component_name(&(r.schema)(&mut generator)) else {
            // Every k8s-openapi resource type is a named definition; a schema without a name
            // could not be found by kind, so it is left out rather than served half-described.
            continue;
        };
        let list = match kind.strip_suffix(r.kind) {
            Some(prefix) => format!("{prefix}{}", r.list_kind),
            None => format!("{kind}List"),
        };
        resources.push((r, Components { kind, list }));
    }
    let common = Common {
        status: component_of::<Status>(&mut generator).unwrap_or_default(),
        delete_options: component_of::<DeleteOptions>(&mut generator).unwrap_or_default(),
        patch: component_of::<Patch>(&mut generator).unwrap_or_default(),
        list_meta: component_of::<ListMeta>(&mut generator).unwrap_or_default(),
        scale: if resources.iter().any(|(r, _)| r.has("scale")) {
            component_of::<Scale>(&mut generator).unwrap_or_default()
        } else {
            String::new()
        },
        binding: if resources.iter().any(|(r, _)| r.has("binding")) {
            component_of::<Binding>(&mut generator).unwrap_or_default()
        } else {
            String::new()
        },
    };
    let mut schemas = generator.take_definitions(true);

    for (r, names) in &resources {
        let list = list_schema(r, names, &common, schemas.get(&names.kind));
        schemas.insert(names.list.clone(), list);
        set_kind(&mut schemas, &names.kind, gvk(group, version, r.kind));
    }
    set_kind(&mut schemas, &common.status, gvk("", "v1", "Status"));
    set_kind(
        &mut schemas,
        &common.delete_options,
        gvk(group, version, "DeleteOptions"),
    );
    set_kind(
        &mut schemas,
        &common.scale,
        gvk("autoscaling", "v1", "Scale"),
    );
    set_kind(&mut schemas, &common.binding, gvk("", "v1", "Binding"));
    add_patch_meta(&mut schemas);

    let mut paths = Map::new();
    for (r, names) in &resources {
        add_paths(&mut paths, r, names, &common);
    }

    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": discovery::version()["gitVersion"] },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// Marks a component as the schema of a kind: adds the kind to its
/// `x-kubernetes-group-version-kind`, which kube-apiserver writes as a list (a component may
/// serve several group versions). k8s-openapi lists `metadata` as required in every kind, as its
/// Rust types always carry one; Kubernetes requires no `metadata` (`kubectl explain` would print
/// it as `-required-`), so that requirement is dropped.
fn set_kind(schemas: &mut Map<String, Value>, component: &str, kind: Value) {
    let Some(Value::Object(schema)) = schemas.get_mut(component) else {
        return;
    };
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| field != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
    let entry = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| json!([]));
    if let Value::Array(kinds) = entry {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
}

/// The `<Kind>List` component: k8s-openapi's `List<T>` has no schema of its own, so it is
/// assembled from the item's component and `ListMeta`, with the item's own `apiVersion` and
/// `kind` descriptions.
fn list_schema(
    r: &ResourceInfo,
    names: &Components,
    common: &Common,
    item: Option<&Value>,
) -> Value {
    let property = |name: &str| {
        item.and_then(|i| i.pointer(&format!("/properties/{name}")))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{} is a list of {} objects.", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": property("apiVersion"),
            "kind": property("kind"),
            "items": {
                "description": format!("items is the list of {} objects.", r.kind),
                "type": "array",
                "items": schema_ref(&names.kind),
            },
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                "allOf": [schema_ref(&common.list_meta)],
            },
        },
        "x-kubernetes-group-version-kind": [gvk(r.group, r.version, r.list_kind)],
    })
}

fn add_patch_meta(schemas: &mut Map<String, Value>) {
    for (component, property, strategy, merge_key) in patch_meta() {
        let pointer = format!("/properties/{property}");
        let Some(Value::Object(field)) = schemas
            .get_mut(component)
            .and_then(|schema| schema.pointer_mut(&pointer))
        else {
            continue;
        };
        field.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        if !merge_key.is_empty() {
            field.insert("x-kubernetes-patch-merge-key".into(), json!(merge_key));
        }
    }
}

/// `apps` -> `Apps`, `coordination.k8s.io` -> `Coordination`, `` -> `Core`, `v1` -> `V1`: the
/// pieces of kube-apiserver's operation ids.
fn camel(segment: &str) -> String {
    let segment = segment.strip_suffix(".k8s.io").unwrap_or(segment);
    if segment.is_empty() {
        return "Core".to_string();
    }
    segment
        .split('.')
        .flat_map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
        })
        .collect()
}

/// The parameters named in `names` (space-separated, from [`PARAMS`]); `name` is the path
/// parameter naming an object of kind `kind`, `namespace` the other path parameter.
fn params(names: &str, kind: &str) -> Vec<Value> {
    names
        .split_whitespace()
        .map(|name| param(name, kind))
        .collect()
}

fn param(name: &str, kind: &str) -> Value {
    let row = PARAMS.lines().find_map(|line| {
        let (n, rest) = line.trim().split_once(' ')?;
        (n == name).then_some(rest)
    });
    let (schema_type, description) = row
        .and_then(|r| r.split_once(' '))
        .unwrap_or(("string", ""));
    let mut param = json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": schema_type, "uniqueItems": true },
    });
    if name == "name" || name == "namespace" {
        param["in"] = json!("path");
        param["required"] = json!(true);
    }
    if name == "name" {
        param["description"] = json!(format!("name of the {kind}"));
    }
    param
}

/// What an operation takes or answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Body {
    None,
    Object,
    List,
    Patch,
    DeleteOptions,
    Status,
    Scale,
    Binding,
    Text,
}

/// The path of the collection across all namespaces (`/apis/apps/v1/deployments`), which only
/// namespaced resources have.
const ALL_NAMESPACES: &str = "*";

/// One row of [`OPERATIONS`]: the path below the collection, the method, the
/// `x-kubernetes-action`, the operation id's verb, infix (after the group version) and suffix,
/// the operation's own parameters, its body, the status codes it answers with a body, that body,
/// and its description, which the kind completes.
type OperationRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Body,
    &'static [&'static str],
    Body,
    &'static str,
);

/// The operations of a resource's REST paths, as kube-apiserver documents them (less the
/// deprecated `watch/` paths). A row below `{name}/<subresource>` is served only for resources
/// with that subresource.
#[rustfmt::skip]
const OPERATIONS: &[OperationRow] = &[
    ("", "get", "list", "list", "", "", LIST, Body::None, &["200"], Body::List, "list or watch objects of kind"),
    ("", "post", "post", "create", "", "", WRITE, Body::Object, &["200", "201", "202"], Body::Object, "create a"),
    ("", "delete", "deletecollection", "delete", "Collection", "", DELETE_COLLECTION, Body::DeleteOptions, &["200"], Body::Status, "delete collection of"),
    ("/{name}", "get", "get", "read", "", "", "", Body::None, &["200"], Body::Object, "read the specified"),
    ("/{name}", "put", "put", "replace", "", "", WRITE, Body::Object, &["200", "201"], Body::Object, "replace the specified"),
    ("/{name}", "patch", "patch", "patch", "", "", PATCH, Body::Patch, &["200", "201"], Body::Object, "partially update the specified"),
    ("/{name}", "delete", "delete", "delete", "", "", DELETE, Body::DeleteOptions, &["200", "202"], Body::Status, "delete a"),
    ("/{name}/status", "get", "get", "read", "", "Status", "", Body::None, &["200"], Body::Object, "read status of the specified"),
    ("/{name}/status", "put", "put", "replace", "", "Status", WRITE, Body::Object, &["200", "201"], Body::Object, "replace status of the specified"),
    ("/{name}/status", "patch", "patch", "patch", "", "Status", PATCH, Body::Patch, &["200", "201"], Body::Object, "partially update status of the specified"),
    ("/{name}/scale", "get", "get", "read", "", "Scale", "", Body::None, &["200"], Body::Scale, "read scale of the specified"),
    ("/{name}/scale", "put", "put", "replace", "", "Scale", WRITE, Body::Scale, &["200", "201"], Body::Scale, "replace scale of the specified"),
    ("/{name}/scale", "patch", "patch", "patch", "", "Scale", PATCH, Body::Patch, &["200", "201"], Body::Scale, "partially update scale of the specified"),
    ("/{name}/binding", "post", "post", "create", "", "Binding", WRITE, Body::Binding, &["200", "201", "202"], Body::Binding, "create binding of a"),
    ("/{name}/log", "get", "get", "read", "", "Log", "", Body::None, &["200"], Body::Text, "read log of the specified"),
    (ALL_NAMESPACES, "get", "list", "list", "", "ForAllNamespaces", "", Body::None, &["200"], Body::List, "list or watch objects of kind"),
];

/// The REST paths of one resource and its subresources, with their operations.
fn add_paths(out: &mut Map<String, Value>, r: &ResourceInfo, names: &Components, common: &Common) {
    let prefix = match r.group {
        "" => format!("/api/{}", r.version),
        group => format!("/apis/{group}/{}", r.version),
    };
    let group = match r.group {
        "" => "core",
        group => group.strip_suffix(".k8s.io").unwrap_or(group),
    };
    let tag = format!("{}_{}", group.replace('.', "_"), r.version);
    let gv = format!("{}{}", camel(r.group), camel(r.version));
    let collection = match r.namespaced {
        true => format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
        false => format!("{prefix}/{}", r.plural),
    };
    let schema = |body: Body| -> Value {
        let name = match body {
            Body::List => &names.list,
            Body::Patch => &common.patch,
            Body::DeleteOptions => &common.delete_options,
            Body::Status => &common.status,
            Body::Scale => &common.scale,
            Body::Binding => &common.binding,
            Body::Text => return json!({ "type": "string" }),
            Body::None | Body::Object => &names.kind,
        };
        schema_ref(name)
    };
    for &(below, method, action, verb, infix, suffix, own, request, codes, response, what) in
        OPERATIONS
    {
        let path = match below {
            ALL_NAMESPACES if r.namespaced => format!("{prefix}/{}", r.plural),
            ALL_NAMESPACES => continue,
            below => format!("{collection}{below}"),
        };
        if let Some(sub) = below.strip_prefix("/{name}/") {
            if !r.has(sub) {
                continue;
            }
        }
        let scoped = if r.namespaced && below != ALL_NAMESPACES {
            "Namespaced"
        } else {
            ""
        };
        // An operation is marked with the kind it answers: a scale's or a binding's operations
        // are for `Scale` and `Binding`, not for the resource.
        let kind = match response {
            Body::Scale => gvk("autoscaling", "v1", "Scale"),
            Body::Binding => gvk("", "v1", "Binding"),
            _ => gvk(r.group, r.version, r.kind),
        };
        let media = match response {
            Body::Text => "text/plain",
            _ => "application/json",
        };
        let mut content = json!({ media: { "schema": schema(response) } });
        if response == Body::List {
            content["application/json;stream=watch"] = content[media].clone();
        }
        let mut responses = Map::new();
        for code in codes {
            let description = match *code {
                "201" => "Created",
                "202" => "Accepted",
                _ => "OK",
            };
            responses.insert(
                code.to_string(),
                json!({ "description": description, "content": content }),
            );
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        let mut op = json!({
            "tags": [tag],
            "description": format!("{what} {}", r.kind),
            "operationId": format!("{verb}{gv}{infix}{scoped}{}{suffix}", r.kind),
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": kind,
        });
        if !own.is_empty() {
            op["parameters"] = Value::Array(params(own, r.kind));
        }
        match request {
            Body::None => {}
            // kube-apiserver lists every patch type it accepts; kubectl computes a strategic
            // merge patch from these documents only if that type is among them.
            Body::Patch => {
                let patch = json!({ "schema": schema(Body::Patch) });
                op["requestBody"] = json!({ "content": {
                    "application/apply-patch+yaml": patch,
                    "application/json-patch+json": patch,
                    "application/merge-patch+json": patch,
                    "application/strategic-merge-patch+json": patch,
                } });
            }
            body => op["requestBody"] = json!({ "content": { "*/*": { "schema": schema(body) } } }),
        }
        let entry = out.entry(path).or_insert_with(|| {
            // The path's own parameters: the object's name, its namespace, `pretty`; or, for
            // listing across namespaces and reading a log, the options too.
            let named = match below {
                "" => "namespace pretty",
                ALL_NAMESPACES => LIST_ALL_NAMESPACES,
                "/{name}/log" => LOG,
                _ => "name namespace pretty",
            };
            let named = named
                .split_whitespace()
                .filter(|p| r.namespaced || *p != "namespace");
            let name_of = match below {
                "/{name}/scale" => "Scale",
                "/{name}/binding" => "Binding",
                _ => r.kind,
            };
            json!({ "parameters": named.map(|p| param(p, name_of)).collect::<Vec<_>>() })
        });
        entry[method] = op;
    }
}

#[cfg(test)]
#[path = "openapi_test.rs"]
mod tests;
