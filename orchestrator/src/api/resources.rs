//! Every resource the API server serves: its names, scope, verbs and subresources as discovery
//! tells kubectl, and its k8s-openapi type, through which every object is decoded and encoded.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v1 as autoscaling_v1;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::conversion::{Conversion, EVENTS_V1, HPA_V1};

/// One resource of one group version.
#[derive(Debug, Clone, Copy)]
pub struct ResourceInfo {
    /// "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// The plural name in URLs and store keys: `deployments`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// `all` for what `kubectl get all` lists.
    pub categories: &'static [&'static str],
    /// Subresources served: `status`, `scale`, `binding`, `log`.
    pub subresources: &'static [&'static str],
    /// Decodes an object through its k8s-openapi type and encodes it back: a body that does not
    /// fit the type is refused, and fields the type does not know are dropped (reported as
    /// kube-apiserver does, by `fieldValidation`: see `handlers::strict_fields`).
    pub normalize: fn(Value) -> Result<Value, serde_json::Error>,
    /// The type's JSON schema, for the OpenAPI documents.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    /// How objects of this version are stored, if not as served.
    pub conversion: Option<&'static Conversion>,
}

impl ResourceInfo {
    /// `deployments.apps`, `pods`: how kube-apiserver names the resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, `Pod`: the kind as kube-apiserver names it in 422 messages.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// `apps/v1`, `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has(&self, subresource: &str) -> bool {
        self.subresources.contains(&subresource)
    }

    /// The verbs discovery lists for the resource.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// Whether a k8s-openapi scope is namespaced.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

fn normalize<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(v)?)
}

fn schema<T: schemars::JsonSchema>(gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
    gen.subschema_for::<T>()
}

const fn info<T>(
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo
where
    T: k8s_openapi::ListableResource + DeserializeOwned + Serialize + schemars::JsonSchema,
    T::Scope: Scope,
{
    ResourceInfo {
        group: T::GROUP,
        version: T::VERSION,
        plural: T::URL_PATH_SEGMENT,
        singular,
        kind: T::KIND,
        list_kind: T::LIST_KIND,
        namespaced: <T::Scope as Scope>::NAMESPACED,
        short_names,
        categories,
        subresources,
        normalize: normalize::<T>,
        schema: schema::<T>,
        conversion: None,
    }
}

const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const STATUS_SCALE: &[&str] = &["status", "scale"];

/// Every served resource, in discovery's order.
pub static RESOURCES: &[ResourceInfo] = &[
    info::<core::Namespace>("namespace", &["ns"], &[], STATUS),
    info::<core::Node>("node", &["no"], &[], STATUS),
    info::<core::Pod>("pod", &["po"], ALL, &["status", "binding", "log"]),
    info::<core::Service>("service", &["svc"], ALL, STATUS),
    info::<core::Endpoints>("endpoints", &["ep"], &[], &[]),
    info::<core::Event>("event", &["ev"], &[], &[]),
    info::<core::ConfigMap>("configmap", &["cm"], &[], &[]),
    info::<core::Secret>("secret", &[], &[], &[]),
    info::<core::ServiceAccount>("serviceaccount", &["sa"], &[], &[]),
    info::<core::PersistentVolume>("persistentvolume", &["pv"], &[], STATUS),
    info::<core::PersistentVolumeClaim>("persistentvolumeclaim", &["pvc"], &[], STATUS),
    info::<apps::Deployment>("deployment", &["deploy"], ALL, STATUS_SCALE),
    info::<apps::ReplicaSet>("replicaset", &["rs"], ALL, STATUS_SCALE),
    info::<apps::StatefulSet>("statefulset", &["sts"], ALL, STATUS_SCALE),
    info::<apps::DaemonSet>("daemonset", &["ds"], ALL, STATUS),
    info::<apps::ControllerRevision>("controllerrevision", &[], &[], &[]),
    info::<batch::Job>("job", &[], ALL, STATUS),
    info::<autoscaling::HorizontalPodAutoscaler>("horizontalpodautoscaler", &["hpa"], ALL, STATUS),
    ResourceInfo {
        conversion: Some(&HPA_V1),
        ..info::<autoscaling_v1::HorizontalPodAutoscaler>(
            "horizontalpodautoscaler",
            &["hpa"],
            ALL,
            STATUS,
        )
    },
    info::<coordination::Lease>("lease", &[], &[], &[]),
    info::<discovery::EndpointSlice>("endpointslice", &[], &[], &[]),
    ResourceInfo {
        conversion: Some(&EVENTS_V1),
        ..info::<events::Event>("event", &["ev"], &[], &[])
    },
];

/// The group versions served, in discovery's order (the core group first, as `/api/v1`).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resource `plural` of `group`/`version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes_come_from_the_types() {
        let d = find("apps", "v1", "deployments").unwrap();
        assert_eq!(
            (d.kind, d.list_kind, d.namespaced),
            ("Deployment", "DeploymentList", true)
        );
        assert_eq!(d.group_resource(), "deployments.apps");
        let ns = find("", "v1", "namespaces").unwrap();
        assert!(!ns.namespaced);
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(group_versions()[0], ("", "v1"));
    }

    #[test]
    fn bodies_are_decoded_through_the_type() {
        let cm = find("", "v1", "configmaps").unwrap();
        let v = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"k": "v"}, "unknown": 1});
        let out = (cm.normalize)(v).unwrap();
        assert_eq!(out["data"]["k"], "v");
        assert!(out.get("unknown").is_none(), "unknown fields are dropped");
        let bad = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": 1}});
        assert!((cm.normalize)(bad).is_err());
    }
}
