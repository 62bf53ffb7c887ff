//! Test builders and a fake "world" that executes [`Action`]s like an API server plus a
//! ReplicaSet controller and kubelet would (pods appear at once, become ready on `tick`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, DeploymentStrategy,
    ReplicaSet, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;

pub(crate) fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs)).unwrap_or(t)
}

pub(crate) fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

pub(crate) fn deployment(replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                match_expressions: None,
            },
            template: template(image),
            ..Default::default()
        }),
        status: None,
    }
}

pub(crate) fn spec_mut(d: &mut Deployment) -> &mut DeploymentSpec {
    d.spec.get_or_insert_with(Default::default)
}

pub(crate) fn set_rolling(d: &mut Deployment, surge: IntOrString, unavailable: IntOrString) {
    spec_mut(d).strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(surge),
            max_unavailable: Some(unavailable),
        }),
    });
}

pub(crate) fn set_recreate(d: &mut Deployment) {
    spec_mut(d).strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
}

/// An RS as the controller would have created it for `d`'s template with `image`.
pub(crate) fn owned_rs(
    d: &Deployment,
    image: &str,
    replicas: i32,
    available: i32,
    revision: i64,
    age: i64,
) -> ReplicaSet {
    let tpl = template(image);
    let hash = compute_hash(&tpl, None);
    let mut tpl_hashed = tpl;
    if let Some(l) = tpl_hashed.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    }
    let name = format!("web-{hash}");
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            generation: Some(1),
            creation_timestamp: Some(Time(plus(t0(), -age))),
            owner_references: Some(vec![super::sync::controller_ref(d)]),
            annotations: Some(BTreeMap::from([
                (REVISION_ANNOTATION.to_string(), revision.to_string()),
                (
                    DESIRED_REPLICAS_ANNOTATION.to_string(),
                    super::util::replicas(d).to_string(),
                ),
                (
                    MAX_REPLICAS_ANNOTATION.to_string(),
                    (super::util::replicas(d) + super::util::max_surge(d)).to_string(),
                ),
            ])),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector::default(),
            template: Some(tpl_hashed),
            min_ready_seconds: None,
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            observed_generation: Some(1),
            ..Default::default()
        }),
    }
}

pub(crate) fn ann<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(|s| s.as_str())
}

pub(crate) fn cond<'a>(
    s: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    s.and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

pub(crate) fn last_status(actions: &[Action]) -> Option<&DeploymentStatus> {
    actions.iter().rev().find_map(|a| match a {
        Action::UpdateStatus(s) => Some(s),
        _ => None,
    })
}

/// Fake cluster: applies actions, models pods per RS.
#[derive(Debug)]
pub(crate) struct World {
    pub d: Deployment,
    pub rss: Vec<ReplicaSet>,
    /// Pods of scaled-down RSs still shutting down, by RS uid (visible to Recreate).
    pub terminating: BTreeMap<String, i32>,
    pub now: Timestamp,
    /// RSs created while this is true never get available pods.
    pub stuck_new: bool,
    pub stuck: BTreeSet<String>,
    /// How many pods per RS become available per tick.
    pub ready_per_tick: i32,
    pub deleted: Vec<String>,
    next: u64,
}

impl World {
    pub(crate) fn new(d: Deployment) -> Self {
        World {
            d,
            rss: Vec::new(),
            terminating: BTreeMap::new(),
            now: t0(),
            stuck_new: false,
            stuck: BTreeSet::new(),
            ready_per_tick: i32::MAX,
            deleted: Vec::new(),
            next: 100,
        }
    }

    pub(crate) fn pods(&self) -> Vec<Pod> {
        let mut pods = Vec::new();
        for rs in &self.rss {
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            let n = rs.status.as_ref().map_or(0, |s| s.replicas)
                + self.terminating.get(&uid).copied().unwrap_or(0);
            for i in 0..n {
                pods.push(Pod {
                    metadata: ObjectMeta {
                        name: Some(format!(
                            "{}-{i}",
                            rs.metadata.name.clone().unwrap_or_default()
                        )),
                        owner_references: Some(vec![OwnerReference {
                            api_version: "apps/v1".into(),
                            kind: "ReplicaSet".into(),
                            name: rs.metadata.name.clone().unwrap_or_default(),
                            uid: uid.clone(),
                            controller: Some(true),
                            block_owner_deletion: Some(true),
                        }]),
                        ..Default::default()
                    },
                    spec: None,
                    status: Some(PodStatus {
                        phase: Some("Running".into()),
                        ..Default::default()
                    }),
                });
            }
        }
        pods
    }

    pub(crate) fn reconcile(&self) -> Vec<Action> {
        super::reconcile(&self.d, &self.rss, &self.pods(), self.now)
    }

    /// Reconcile and apply; returns the actions.
    pub(crate) fn step(&mut self) -> Vec<Action> {
        let acts = self.reconcile();
        self.apply(&acts);
        acts
    }

    fn bump(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }

    pub(crate) fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::CreateReplicaSet(rs) => {
                    let name = rs.metadata.name.clone().unwrap_or_default();
                    assert!(
                        self.rss
                            .iter()
                            .all(|r| r.metadata.name.as_deref() != Some(&name)),
                        "AlreadyExists {name}"
                    );
                    let mut rs = rs.clone();
                    rs.metadata.uid = Some(format!("uid-{name}-{}", self.next));
                    rs.metadata.resource_version = Some(self.bump());
                    rs.metadata.generation = Some(1);
                    rs.metadata.creation_timestamp = Some(Time(self.now));
                    let n = super::util::rs_replicas(&rs);
                    rs.status = Some(ReplicaSetStatus {
                        replicas: n,
                        observed_generation: Some(0),
                        ..Default::default()
                    });
                    if self.stuck_new {
                        self.stuck.insert(name);
                    }
                    self.rss.push(rs);
                }
                Action::UpdateReplicaSet(rs) => {
                    let rv = self.bump();
                    let name = rs.metadata.name.clone().unwrap_or_default();
                    let Some(cur) = self
                        .rss
                        .iter_mut()
                        .find(|r| r.metadata.name.as_deref() == Some(&name))
                    else {
                        panic!("update of missing RS {name}");
                    };
                    assert_eq!(
                        cur.metadata.resource_version, rs.metadata.resource_version,
                        "conflict on {name}"
                    );
                    let old_n = super::util::rs_replicas(cur);
                    let new_n = super::util::rs_replicas(rs);
                    let spec_changed = cur.spec != rs.spec;
                    let status = cur.status.clone().unwrap_or_default();
                    let generation = cur.metadata.generation.unwrap_or(1) + i64::from(spec_changed);
                    *cur = rs.clone();
                    cur.metadata.resource_version = Some(rv);
                    cur.metadata.generation = Some(generation);
                    let avail = status.available_replicas.unwrap_or(0).min(new_n);
                    cur.status = Some(ReplicaSetStatus {
                        replicas: new_n,
                        available_replicas: Some(avail),
                        ready_replicas: Some(avail),
                        ..status
                    });
                    if new_n < old_n {
                        let uid = cur.metadata.uid.clone().unwrap_or_default();
                        *self.terminating.entry(uid).or_insert(0) += old_n - new_n;
                    }
                }
                Action::DeleteReplicaSet { name, .. } => {
                    self.rss
                        .retain(|r| r.metadata.name.as_deref() != Some(name));
                    self.deleted.push(name.clone());
                }
                Action::SetDeploymentRevision(rev) => {
                    self.d
                        .metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert(REVISION_ANNOTATION.into(), rev.clone());
                }
                Action::UpdateStatus(s) => self.d.status = Some(s.clone()),
            }
        }
    }

    /// Time passes: pods become available (unless stuck), terminating pods vanish.
    pub(crate) fn tick(&mut self, secs: i64) {
        self.now = plus(self.now, secs);
        self.terminating.clear();
        for rs in &mut self.rss {
            let n = super::util::rs_replicas(rs);
            let stuck = self
                .stuck
                .contains(rs.metadata.name.as_deref().unwrap_or(""));
            let generation = rs.metadata.generation;
            let st = rs.status.get_or_insert_with(Default::default);
            let avail = st.available_replicas.unwrap_or(0);
            let avail = if stuck {
                avail.min(n)
            } else {
                (avail.saturating_add(self.ready_per_tick)).min(n)
            };
            st.available_replicas = Some(avail);
            st.ready_replicas = Some(avail);
            st.replicas = n;
            st.observed_generation = generation;
        }
    }

    pub(crate) fn total_pods(&self) -> i32 {
        self.rss.iter().map(super::util::rs_status_replicas).sum()
    }

    pub(crate) fn available(&self) -> i32 {
        self.rss.iter().map(super::util::rs_available).sum()
    }

    pub(crate) fn set_image(&mut self, image: &str) {
        spec_mut(&mut self.d).template = template(image);
        self.d.metadata.generation = Some(self.d.metadata.generation.unwrap_or(0) + 1);
    }

    pub(crate) fn set_replicas(&mut self, n: i32) {
        spec_mut(&mut self.d).replicas = Some(n);
        self.d.metadata.generation = Some(self.d.metadata.generation.unwrap_or(0) + 1);
    }

    pub(crate) fn set_paused(&mut self, paused: bool) {
        spec_mut(&mut self.d).paused = Some(paused);
        self.d.metadata.generation = Some(self.d.metadata.generation.unwrap_or(0) + 1);
    }

    pub(crate) fn rs_by_image(&self, image: &str) -> Option<&ReplicaSet> {
        self.rss.iter().find(|rs| {
            super::util::rs_template(rs)
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                == Some(image)
        })
    }

    /// Rollout finished as `kubectl rollout status` sees it, and nothing left to do.
    pub(crate) fn complete(&self) -> bool {
        let want = super::util::replicas(&self.d);
        let Some(s) = self.d.status.as_ref() else {
            return false;
        };
        s.observed_generation.unwrap_or(0) >= self.d.metadata.generation.unwrap_or(0)
            && s.updated_replicas.unwrap_or(0) == want
            && s.replicas.unwrap_or(0) == want
            && s.available_replicas.unwrap_or(0) == want
    }

    /// Loop reconcile/apply/tick until complete and quiet, checking `check` after every
    /// apply and every tick. Returns the number of iterations.
    pub(crate) fn run(&mut self, max_iter: usize, mut check: impl FnMut(&World, &str)) -> usize {
        for i in 0..max_iter {
            let acts = self.step();
            if acts.is_empty() && self.complete() {
                return i;
            }
            check(self, &format!("after apply #{i}: {acts:?}"));
            self.tick(10);
            check(self, &format!("after tick #{i}"));
        }
        panic!("did not converge: {:#?}", self.d.status);
    }
}
