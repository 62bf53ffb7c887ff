//! The pure decision core of the node lifecycle controller.
//!
//! Copies `tryUpdateNodeHealth`, `monitorNodeHealth`,
//! `processTaintBaseEviction`, `doNoExecuteTaintingPass`,
//! `markNodeAsReachable` and `doNoScheduleTaintingPass` of
//! pkg/controller/nodelifecycle/node_lifecycle_controller.go and
//! `MarkPodsNotReady` of pkg/controller/util/node/controller_utils.go
//! (Kubernetes 1.32). Taint-based eviction (pkg/controller/tainteviction) and
//! kube-apiserver's DefaultTolerationSeconds admission are in the `eviction` submodule
//! (re-exported here).
//!
//! Health is judged the way upstream's `nodeHealthData` does it: the node's
//! own timestamps (Ready heartbeat, Lease renewTime) are only compared with
//! the values seen before, and the moment a change is seen is taken from the
//! controller's clock (`now`); so a node whose clock is skewed is judged
//! correctly as long as its timestamps keep changing.
//!
//! Differences: the NoExecute taint is decided from the Ready condition as
//! it stands after this call's update (upstream taints in the next 5 s
//! monitor pass, from the condition it observed); no zone disruption
//! handling or taint rate limiting (every node is tainted at once; upstream
//! stops tainting when all zones are fully disrupted);
//! `node.kubernetes.io/exclude-disruption` is not consulted.
//!
//! The integrator keeps one [`ObservedHealth`] per node name (dropped with
//! the node), calls [`node_status`] for every node every monitor period
//! (`--node-monitor-period`, 5 s) with the node's Lease from
//! `kube-node-lease`, then: writes `status` (UpdateStatus, with the node's
//! resourceVersion) when set; writes `taints` into spec.taints when
//! `taints_changed`; when `mark_pods_not_ready`, updates the status of each
//! pod bound to the node with [`mark_pod_not_ready`].

mod eviction;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, PodStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub use eviction::{evictions, tolerates};

/// `--node-monitor-grace-period` default.
pub const NODE_MONITOR_GRACE_PERIOD: Duration = Duration::from_secs(40);
/// `--node-startup-grace-period` default: grace for a node that never
/// posted a Ready condition.
pub const NODE_STARTUP_GRACE_PERIOD: Duration = Duration::from_secs(60);
/// `v1.TaintNodeNotReady`.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `v1.TaintNodeUnreachable`.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `v1.TaintNodeUnschedulable`.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// `nodeConditionToTaintKeyStatusMap`: condition type and status that give
/// a NoSchedule taint.
const CONDITION_TAINTS: [(&str, &str, &str); 6] = [
    ("Ready", "False", TAINT_NOT_READY),
    ("Ready", "Unknown", TAINT_UNREACHABLE),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

/// Conditions the controller sets to Unknown (not NetworkUnavailable).
const WATCHED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers about one node between calls
/// (`nodeHealthData`). Start from `Default` for a node not seen yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedHealth {
    /// The Ready condition as last seen (node timestamps, compared only).
    pub saved_ready: Option<NodeCondition>,
    /// The Lease renewTime last seen (node clock, compared only).
    pub lease_renew_time: Option<Timestamp>,
    /// When, by our clock, a heartbeat or renewal was last seen; `None`
    /// until the node was first seen.
    pub probe_timestamp: Option<Timestamp>,
    /// When, by our clock, the Ready condition last changed.
    pub ready_transition_timestamp: Option<Timestamp>,
}

/// What to do about one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeDecision {
    /// The Ready condition goes to Unknown (its heartbeat is older than the
    /// grace period): write `status`.
    pub set_ready_unknown: bool,
    /// The node status to write (conditions Ready / MemoryPressure /
    /// DiskPressure / PIDPressure set Unknown, reason `NodeStatusUnknown`,
    /// message `Kubelet stopped posting node status.`, or
    /// `NodeStatusNeverUpdated` / `Kubelet never posted node status.` for
    /// conditions never posted).
    pub status: Option<NodeStatus>,
    /// The node's whole desired spec.taints: its other taints kept, the
    /// controller's NoExecute taint (`not-ready` when Ready=False,
    /// `unreachable` when Unknown, none when True) and NoSchedule condition
    /// taints (plus `unschedulable`) reconciled; added ones get timeAdded.
    pub taints: Vec<Taint>,
    /// `taints` differs from spec.taints (by key and effect).
    pub taints_changed: bool,
    /// The controller just turned a Ready node not ready: mark its pods not
    /// ready.
    pub mark_pods_not_ready: bool,
    /// Time left before the grace period runs out (no change seen until
    /// then); `None` once past.
    pub recheck_after: Option<Duration>,
}

fn find<'a>(conds: &'a [NodeCondition], type_: &str) -> Option<&'a NodeCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

fn sd(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// One health check of `node` (`tryUpdateNodeHealth`, then the taint and
/// pod decisions of `monitorNodeHealth`), updating `observed`.
pub fn node_status(
    node: &Node,
    lease: Option<&Lease>,
    observed: &mut ObservedHealth,
    grace: Duration,
    now: Timestamp,
) -> NodeDecision {
    let conds: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let current = find(&conds, "Ready").cloned();
    let created = node.metadata.creation_timestamp.clone();
    let (observed_ready, grace) = match &current {
        Some(c) => (c.clone(), grace),
        None => {
            if observed.probe_timestamp.is_none() {
                observed.probe_timestamp = created.as_ref().map(|t| t.0);
                observed.ready_transition_timestamp = observed.probe_timestamp;
            }
            observed.saved_ready = None;
            let fake = NodeCondition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                last_heartbeat_time: created.clone(),
                last_transition_time: created.clone(),
                ..Default::default()
            };
            (fake, NODE_STARTUP_GRACE_PERIOD)
        }
    };
    match (&observed.saved_ready, &current) {
        _ if observed.probe_timestamp.is_none() => {
            observed.probe_timestamp = Some(now);
            observed.ready_transition_timestamp = Some(now);
            observed.saved_ready = current.clone();
        }
        (None, Some(_)) => {
            observed.probe_timestamp = Some(now);
            observed.ready_transition_timestamp = Some(now);
            observed.saved_ready = current.clone();
        }
        (Some(saved), Some(cur)) if saved.last_heartbeat_time != cur.last_heartbeat_time => {
            if saved.last_transition_time != cur.last_transition_time {
                observed.ready_transition_timestamp = Some(now);
            }
            observed.probe_timestamp = Some(now);
            observed.saved_ready = current.clone();
        }
        _ => {}
    }
    // A renewed Lease counts as a heartbeat.
    if let Some(renew) = lease.and_then(|l| l.spec.as_ref()?.renew_time.as_ref()) {
        if observed
            .lease_renew_time
            .is_none_or(|saved| saved < renew.0)
        {
            observed.lease_renew_time = Some(renew.0);
            observed.probe_timestamp = Some(now);
        }
    }

    let mut decision = NodeDecision::default();
    let mut new_conds = conds.clone();
    let deadline = observed
        .probe_timestamp
        .and_then(|p| p.checked_add(sd(grace)).ok());
    if deadline.is_none_or(|d| now > d) {
        for type_ in WATCHED_CONDITIONS {
            match new_conds.iter_mut().find(|c| c.type_ == type_) {
                None => new_conds.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                }),
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(Time(now));
                }
                Some(_) => {}
            }
        }
        let new_ready = find(&new_conds, "Ready").cloned();
        if new_ready.as_ref() != Some(&observed_ready) {
            decision.set_ready_unknown = true;
            let mut status = node.status.clone().unwrap_or_default();
            status.conditions = Some(new_conds.clone());
            decision.status = Some(status);
            observed.saved_ready = new_ready;
            observed.ready_transition_timestamp = Some(now);
        }
    } else if let Some(d) = deadline {
        decision.recheck_after = Duration::try_from(d.duration_since(now)).ok();
    }
    let final_conds = if decision.set_ready_unknown {
        &new_conds
    } else {
        &conds
    };
    let final_ready = find(final_conds, "Ready").map(|c| c.status.as_str());
    decision.mark_pods_not_ready =
        current.is_some() && observed_ready.status == "True" && final_ready != Some("True");
    let spec = node.spec.as_ref();
    let existing = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
    let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    decision.taints = desired_taints(&existing, final_conds, unschedulable, now);
    decision.taints_changed = !same_taints(&existing, &decision.taints);
    decision
}

fn taint(key: &str, effect: &str, now: Timestamp) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: Some(Time(now)),
    }
}

/// The node's taints with the controller's own reconciled: NoSchedule
/// condition taints per `doNoScheduleTaintingPass`, and the NoExecute
/// not-ready / unreachable taint per the Ready condition (left as is when
/// there is no Ready condition). Matching is by key and effect.
pub fn desired_taints(
    existing: &[Taint],
    conditions: &[NodeCondition],
    unschedulable: bool,
    now: Timestamp,
) -> Vec<Taint> {
    let mut no_schedule: Vec<&str> = CONDITION_TAINTS
        .iter()
        .filter(|(t, s, _)| find(conditions, t).is_some_and(|c| c.status == *s))
        .map(|(_, _, k)| *k)
        .collect();
    if unschedulable {
        no_schedule.push(TAINT_UNSCHEDULABLE);
    }
    let ready = find(conditions, "Ready").map(|c| c.status.as_str());
    let no_execute = match ready {
        Some("False") => Some(TAINT_NOT_READY),
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => None,
    };
    let managed_ns =
        |k: &str| k == TAINT_UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|c| c.2 == k);
    let managed_ne = |k: &str| ready.is_some() && (k == TAINT_NOT_READY || k == TAINT_UNREACHABLE);
    let mut out: Vec<Taint> = Vec::new();
    for t in existing {
        let keep = match t.effect.as_str() {
            "NoSchedule" if managed_ns(&t.key) => no_schedule.contains(&t.key.as_str()),
            "NoExecute" if managed_ne(&t.key) => no_execute == Some(t.key.as_str()),
            _ => true,
        };
        let dup = out.iter().any(|o| o.key == t.key && o.effect == t.effect);
        if keep && !dup {
            out.push(t.clone());
        }
    }
    let wanted = no_schedule
        .iter()
        .map(|k| (*k, "NoSchedule"))
        .chain(no_execute.map(|k| (k, "NoExecute")));
    for (key, effect) in wanted {
        if !out.iter().any(|t| t.key == key && t.effect == effect) {
            out.push(taint(key, effect, now));
        }
    }
    out
}

fn same_taints(a: &[Taint], b: &[Taint]) -> bool {
    let has =
        |list: &[Taint], t: &Taint| list.iter().any(|x| x.key == t.key && x.effect == t.effect);
    a.len() == b.len() && a.iter().all(|t| has(b, t)) && b.iter().all(|t| has(a, t))
}

/// `MarkPodsNotReady` for one pod: its status with the Ready condition set
/// to False (lastTransitionTime `now`); `None` when it has no Ready
/// condition or it is already False.
pub fn mark_pod_not_ready(pod: &Pod, now: Timestamp) -> Option<PodStatus> {
    let mut status = pod.status.clone()?;
    let cond = status
        .conditions
        .as_mut()?
        .iter_mut()
        .find(|c| c.type_ == "Ready")?;
    if cond.status == "False" {
        return None;
    }
    cond.status = "False".into();
    cond.last_transition_time = Some(Time(now));
    Some(status)
}

#[cfg(test)]
#[path = "nodelifecycle_test.rs"]
mod tests;
