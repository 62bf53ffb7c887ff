//! Builders and a fake API world for the StatefulSet tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::{reconcile, Action, Plan};
use crate::controllers::testutil::{labels, t, NS};

pub const SET_UID: &str = "sts-uid";

pub fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

pub fn claim_template(name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            ..Default::default()
        }),
        status: None,
    }
}

/// StatefulSet `web` (OrderedReady, RollingUpdate partition 0, serviceName
/// `web`, one claim template `data`).
pub fn sts(replicas: i32) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some(NS.into()),
            uid: Some(SET_UID.into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                match_expressions: None,
            },
            service_name: Some("web".into()),
            template: template("nginx:1"),
            volume_claim_templates: Some(vec![claim_template("data")]),
            ..Default::default()
        }),
        status: None,
    }
}

pub fn parallel(mut set: StatefulSet) -> StatefulSet {
    if let Some(spec) = set.spec.as_mut() {
        spec.pod_management_policy = Some("Parallel".into());
    }
    set
}

pub fn partition(mut set: StatefulSet, p: i32) -> StatefulSet {
    if let Some(spec) = set.spec.as_mut() {
        spec.update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                partition: Some(p),
                max_unavailable: None,
            }),
        });
    }
    set
}

pub fn set_image(set: &mut StatefulSet, image: &str) {
    if let Some(spec) = set.spec.as_mut() {
        spec.template = template(image);
    }
    set.metadata.generation = Some(set.metadata.generation.unwrap_or(0) + 1);
}

pub fn set_replicas(set: &mut StatefulSet, n: i32) {
    if let Some(spec) = set.spec.as_mut() {
        spec.replicas = Some(n);
    }
    set.metadata.generation = Some(set.metadata.generation.unwrap_or(0) + 1);
}

pub fn image_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// A fake API server + kubelet: applies plans, runs pods.
#[derive(Debug, Clone)]
pub struct World {
    pub set: StatefulSet,
    pub pods: BTreeMap<String, Pod>,
    pub pvcs: BTreeMap<String, PersistentVolumeClaim>,
    pub revisions: BTreeMap<String, ControllerRevision>,
    pub now: Timestamp,
    pub uid_seq: u32,
}

impl World {
    pub fn new(set: StatefulSet) -> World {
        World {
            set,
            pods: BTreeMap::new(),
            pvcs: BTreeMap::new(),
            revisions: BTreeMap::new(),
            now: t(1000),
            uid_seq: 0,
        }
    }

    pub fn plan(&self) -> Plan {
        let pods: Vec<Arc<Pod>> = self.pods.values().cloned().map(Arc::new).collect();
        let pvcs: Vec<PersistentVolumeClaim> = self.pvcs.values().cloned().collect();
        let revs: Vec<ControllerRevision> = self.revisions.values().cloned().collect();
        reconcile(&self.set, &pods, &pvcs, &revs, self.now)
    }

    fn next_uid(&mut self, prefix: &str) -> String {
        self.uid_seq += 1;
        format!("{prefix}-uid-{}", self.uid_seq)
    }

    /// Carries out every action (all succeed); deleted pods get a
    /// deletionTimestamp (graceful) and stay until [`World::finish_deletions`].
    pub fn apply(&mut self, plan: &Plan) {
        for a in &plan.actions {
            match a {
                Action::CreatePod(p) => {
                    let mut p = p.clone();
                    p.metadata.uid = Some(self.next_uid("pod"));
                    p.metadata.creation_timestamp = Some(Time(self.now));
                    p.status = Some(PodStatus {
                        phase: Some("Pending".into()),
                        ..Default::default()
                    });
                    let name = p.metadata.name.clone().unwrap_or_default();
                    assert!(!self.pods.contains_key(&name), "duplicate pod {name}");
                    self.pods.insert(name, p);
                }
                Action::UpdatePod(p) => {
                    self.pods
                        .insert(p.metadata.name.clone().unwrap_or_default(), p.clone());
                }
                Action::DeletePod { name, .. } => {
                    if let Some(p) = self.pods.get_mut(name) {
                        p.metadata.deletion_timestamp = Some(Time(self.now));
                    }
                }
                Action::CreateClaim { claim, .. } => {
                    let mut c = claim.clone();
                    c.metadata.uid = Some(self.next_uid("pvc"));
                    let name = c.metadata.name.clone().unwrap_or_default();
                    assert!(!self.pvcs.contains_key(&name), "duplicate claim {name}");
                    self.pvcs.insert(name, c);
                }
                Action::UpdateClaim { claim, .. } => {
                    self.pvcs.insert(
                        claim.metadata.name.clone().unwrap_or_default(),
                        claim.clone(),
                    );
                }
                Action::CreateRevision(r) | Action::UpdateRevision(r) => {
                    let mut r = r.clone();
                    r.metadata.creation_timestamp.get_or_insert(Time(self.now));
                    self.revisions
                        .insert(r.metadata.name.clone().unwrap_or_default(), r);
                }
                Action::DeleteRevision { name } => {
                    self.revisions.remove(name);
                }
                Action::UpdateStatus(s) => self.set.status = Some(s.clone()),
                Action::AdoptPod { name, .. } => {
                    if let Some(p) = self.pods.get_mut(name) {
                        p.metadata.owner_references =
                            Some(vec![crate::controllers::pods::new_controller_ref(
                                &self.set.metadata,
                                "apps/v1",
                                "StatefulSet",
                            )]);
                    }
                }
                Action::ReleasePod { name, .. } => {
                    if let Some(p) = self.pods.get_mut(name) {
                        p.metadata.owner_references = None;
                    }
                }
                Action::AdoptRevision { .. } => {}
            }
        }
    }

    /// One sync: plan and apply; returns the plan.
    pub fn sync(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        plan
    }

    /// The kubelet starts the pod: Running and Ready since `now`.
    pub fn make_ready(&mut self, name: &str) {
        let now = self.now;
        if let Some(p) = self.pods.get_mut(name) {
            let st = p.status.get_or_insert_with(Default::default);
            st.phase = Some("Running".into());
            st.conditions = Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            }]);
        }
    }

    pub fn set_phase(&mut self, name: &str, phase: &str) {
        if let Some(p) = self.pods.get_mut(name) {
            p.status.get_or_insert_with(Default::default).phase = Some(phase.into());
        }
    }

    /// Terminating pods go away (the kubelet and GC finish).
    pub fn finish_deletions(&mut self) {
        self.pods
            .retain(|_, p| p.metadata.deletion_timestamp.is_none());
    }

    /// Syncs and makes every created pod ready and every deleted pod gone,
    /// until a sync plans nothing but a status; at most `max` rounds.
    pub fn converge(&mut self, max: usize) {
        for _ in 0..max {
            let names: Vec<String> = self.pods.keys().cloned().collect();
            for n in names {
                self.make_ready(&n);
            }
            self.finish_deletions();
            let plan = self.sync();
            let busy = plan
                .actions
                .iter()
                .any(|a| !matches!(a, Action::UpdateStatus(_)));
            if !busy {
                return;
            }
        }
        panic!("did not converge in {max} syncs");
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }
}
