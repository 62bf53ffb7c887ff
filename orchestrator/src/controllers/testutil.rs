//! Builders shared by the unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::jiff::Timestamp;

pub const NS: &str = "default";
pub const RS_UID: &str = "rs-uid";

/// Seconds after a fixed epoch.
pub fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("valid timestamp")
}

pub fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn rs(replicas: i32, selector: &[(&str, &str)]) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some(NS.into()),
            uid: Some(RS_UID.into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(selector)),
                match_expressions: None,
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(selector)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("nginx".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

pub fn owner(uid: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: format!("owner-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A running, scheduled, not-ready pod with the given labels, owned by RS_UID.
pub fn pod(name: &str, lbls: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(lbls)),
            owner_references: Some(vec![owner(RS_UID, "ReplicaSet")]),
            creation_timestamp: Some(Time(t(0))),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-a".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }),
    }
}

pub fn orphan(mut p: Pod) -> Pod {
    p.metadata.owner_references = None;
    p
}

pub fn owned_by(mut p: Pod, uid: &str) -> Pod {
    p.metadata.owner_references = Some(vec![owner(uid, "ReplicaSet")]);
    p
}

pub fn ready(mut p: Pod, since: Option<Timestamp>) -> Pod {
    let status = p.status.get_or_insert_with(Default::default);
    status.conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: "True".into(),
        last_transition_time: since.map(Time),
        ..Default::default()
    }]);
    p
}

pub fn with_phase(mut p: Pod, ph: &str) -> Pod {
    p.status.get_or_insert_with(Default::default).phase = Some(ph.into());
    p
}

pub fn node(mut p: Pod, n: Option<&str>) -> Pod {
    p.spec.get_or_insert_with(Default::default).node_name = n.map(Into::into);
    p
}

pub fn created(mut p: Pod, at: Option<Timestamp>) -> Pod {
    p.metadata.creation_timestamp = at.map(Time);
    p
}

pub fn restarts(mut p: Pod, n: i32) -> Pod {
    let status = p.status.get_or_insert_with(Default::default);
    status.container_statuses = Some(vec![ContainerStatus {
        name: "c".into(),
        restart_count: n,
        ..Default::default()
    }]);
    p
}

pub fn annotate(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(k.into(), v.into());
    p
}

pub fn deleting(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(Time(t(0)));
    p
}

pub fn arcs(pods: Vec<Pod>) -> Vec<Arc<Pod>> {
    pods.into_iter().map(Arc::new).collect()
}

pub fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}
