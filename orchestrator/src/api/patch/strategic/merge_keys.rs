//! The merge keys of Kubernetes' Go types: each field's `patchStrategy` and `patchMergeKey`
//! struct tags, as `LookupPatchMetadataForStruct` reads them, for the kinds that have any.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    Plain,
    Merge,
    Replace,
}

use Strategy::{Merge, Plain, Replace};

/// In Go type `.0`, field `.1` has patch strategy `.2` with merge key `.3` (empty for lists of
/// scalars), and its own type is `.4` (empty: nothing below it has a strategy). From the struct
/// tags of k8s.io/api and apimachinery's ObjectMeta at v0.33, for the types that hold, at some
/// depth, a field with `patchStrategy`; under any other field maps merge key by key and lists are
/// replaced whole (tolerations, taints, Endpoints subsets...). A kind's root type is [`root`]'s;
/// roots (the types no field has) and `*TemplateSpec`s have an ObjectMeta under `metadata`.
#[rustfmt::skip]
const FIELDS: &[(&str, &str, Strategy, &str, &str)] = &[
    ("ObjectMeta", "ownerReferences", Merge, "uid", ""),
    ("ObjectMeta", "finalizers", Merge, "", ""),
    ("Workload", "spec", Plain, "", "WorkloadSpec"),
    ("Workload", "status", Plain, "", "Conditions"),
    ("WorkloadSpec", "template", Plain, "", "PodTemplateSpec"),
    ("CronJob", "spec", Plain, "", "CronJobSpec"),
    ("CronJobSpec", "jobTemplate", Plain, "", "JobTemplateSpec"),
    ("JobTemplateSpec", "spec", Plain, "", "WorkloadSpec"),
    ("PodTemplate", "template", Plain, "", "PodTemplateSpec"),
    ("PodTemplateSpec", "spec", Plain, "", "PodSpec"),
    ("Pod", "spec", Plain, "", "PodSpec"),
    ("Pod", "status", Plain, "", "PodStatus"),
    ("PodSpec", "containers", Merge, "name", "Container"),
    ("PodSpec", "initContainers", Merge, "name", "Container"),
    ("PodSpec", "ephemeralContainers", Merge, "name", "Container"),
    ("PodSpec", "volumes", Merge, "name", ""),
    ("PodSpec", "imagePullSecrets", Merge, "name", ""),
    ("PodSpec", "hostAliases", Merge, "ip", ""),
    ("PodSpec", "topologySpreadConstraints", Merge, "topologyKey", ""),
    ("PodSpec", "schedulingGates", Merge, "name", ""),
    ("PodSpec", "resourceClaims", Merge, "name", ""),
    ("Container", "ports", Merge, "containerPort", ""),
    ("Container", "env", Merge, "name", ""),
    ("Container", "volumeMounts", Merge, "mountPath", ""),
    ("Container", "volumeDevices", Merge, "devicePath", ""),
    ("PodStatus", "conditions", Merge, "type", ""),
    ("PodStatus", "hostIPs", Merge, "ip", ""),
    ("PodStatus", "podIPs", Merge, "ip", ""),
    ("PodStatus", "resourceClaimStatuses", Merge, "name", ""),
    ("Service", "spec", Plain, "", "ServiceSpec"),
    ("Service", "status", Plain, "", "Conditions"),
    ("ServiceSpec", "ports", Merge, "port", ""),
    ("Node", "spec", Plain, "", "NodeSpec"),
    ("Node", "status", Plain, "", "NodeStatus"),
    ("NodeSpec", "podCIDRs", Merge, "", ""),
    ("NodeStatus", "conditions", Merge, "type", ""),
    ("NodeStatus", "addresses", Merge, "type", ""),
    ("Conditioned", "status", Plain, "", "Conditions"),
    ("Conditions", "conditions", Merge, "type", ""),
    ("ComponentStatus", "conditions", Merge, "type", ""),
    ("ServiceAccount", "secrets", Merge, "name", ""),
    ("WebhookConfiguration", "webhooks", Merge, "name", "Webhook"),
    ("Webhook", "matchConditions", Merge, "name", ""),
    ("ValidatingAdmissionPolicy", "spec", Plain, "", "AdmissionPolicySpec"),
    ("AdmissionPolicySpec", "matchConditions", Merge, "name", ""),
    ("AdmissionPolicySpec", "variables", Merge, "name", ""),
    ("PodDisruptionBudget", "spec", Plain, "", "PdbSpec"),
    ("PodDisruptionBudget", "status", Plain, "", "Conditions"),
    ("PdbSpec", "selector", Replace, "", ""),
    ("CSINode", "spec", Plain, "", "CSINodeSpec"),
    ("CSINodeSpec", "drivers", Merge, "name", ""),
    ("ResourceClaim", "status", Plain, "", "ResourceClaimStatus"),
    ("ResourceClaimStatus", "reservedFor", Merge, "uid", ""),
];

/// The root type of a kind in [`FIELDS`]; `Object` for kinds with merge keys only in metadata.
#[rustfmt::skip]
pub(super) fn root(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" | "ReplicationController" => "Workload",
        "Namespace" | "PersistentVolumeClaim" | "HorizontalPodAutoscaler" | "FlowSchema"
        | "PriorityLevelConfiguration" | "ServiceCIDR" => "Conditioned",
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => "WebhookConfiguration",
        _ => {
            let is_root = |t: &&str| *t == kind && !FIELDS.iter().any(|f| f.4 == kind);
            FIELDS.iter().map(|f| f.0).find(is_root).unwrap_or("Object")
        }
    }
}

/// A field's strategy, merge key and type, as Go's `LookupPatchMetadataForStruct` gives them.
pub(super) fn field(ty: &'static str, name: &str) -> (Strategy, &'static str, &'static str) {
    if name == "metadata" && (ty.ends_with("TemplateSpec") || !FIELDS.iter().any(|f| f.4 == ty)) {
        return (Plain, "", "ObjectMeta");
    }
    FIELDS
        .iter()
        .find(|f| f.0 == ty && f.1 == name)
        .map_or((Plain, "", ""), |f| (f.2, f.3, f.4))
}
