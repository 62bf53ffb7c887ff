use super::*;
use crate::controllers::testutil::labels;
use k8s_openapi::api::core::v1::{NodeSpec, PreferredSchedulingTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn node(name: &str, lbls: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(lbls)),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: None,
    }
}

fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

fn term(
    exprs: Vec<NodeSelectorRequirement>,
    fields: Vec<NodeSelectorRequirement>,
) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: (!exprs.is_empty()).then_some(exprs),
        match_fields: (!fields.is_empty()).then_some(fields),
    }
}

fn with_affinity(terms: Vec<NodeSelectorTerm>) -> PodSpec {
    PodSpec {
        affinity: Some(pin_to_node(None, "x")).map(|mut a| {
            if let Some(na) = a.node_affinity.as_mut() {
                na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
                    node_selector_terms: terms,
                });
            }
            a
        }),
        ..Default::default()
    }
}

#[test]
fn required_affinity_operators_terms_and_node_selector() {
    let n = node("n1", &[("zone", "a"), ("cpus", "8")]);
    let ok = |t: Vec<NodeSelectorTerm>| required_affinity_matches(&with_affinity(t), &n);
    assert!(ok(vec![term(vec![req("zone", "In", &["a", "b"])], vec![])]));
    assert!(!ok(vec![term(vec![req("zone", "NotIn", &["a"])], vec![])]));
    assert!(ok(vec![term(
        vec![req("gpu", "DoesNotExist", &[])],
        vec![]
    )]));
    assert!(ok(vec![term(
        vec![req("cpus", "Gt", &["4"]), req("cpus", "Lt", &["9"])],
        vec![]
    )]));
    assert!(!ok(vec![term(vec![req("cpus", "Gt", &["8"])], vec![])]));
    // Terms are ORed; an empty or unparsable term matches nothing.
    assert!(ok(vec![
        term(vec![req("zone", "In", &["z"])], vec![]),
        term(vec![req("zone", "Exists", &[])], vec![])
    ]));
    assert!(!ok(vec![term(vec![], vec![])]));
    assert!(!ok(vec![term(vec![req("zone", "In", &[])], vec![])]));
    // matchFields on metadata.name.
    assert!(ok(vec![term(
        vec![],
        vec![req("metadata.name", "In", &["n1"])]
    )]));
    assert!(!ok(vec![term(
        vec![],
        vec![req("metadata.name", "In", &["n2"])]
    )]));
    // nodeSelector: every label must be there.
    let spec = PodSpec {
        node_selector: Some(labels(&[("zone", "a"), ("disk", "ssd")])),
        ..Default::default()
    };
    assert!(!required_affinity_matches(&spec, &n));
    assert!(required_affinity_matches(
        &spec,
        &node("n2", &[("zone", "a"), ("disk", "ssd")])
    ));
}

#[test]
fn tolerations_match_taints() {
    let taint = Taint {
        key: "k".into(),
        value: Some("v".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    };
    let tol = |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| Toleration {
        key: key.map(Into::into),
        operator: Some(op.into()),
        value: value.map(Into::into),
        effect: effect.map(Into::into),
        toleration_seconds: None,
    };
    assert!(tolerates(&tol(None, "Exists", None, None), &taint));
    assert!(tolerates(
        &tol(Some("k"), "Equal", Some("v"), Some("NoSchedule")),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("k"), "Equal", Some("w"), None),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("k"), "Exists", None, Some("NoExecute")),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("other"), "Exists", None, None),
        &taint
    ));
    let taints = vec![taint.clone()];
    assert!(untolerated_taint(&taints, &[], |t| t.effect == "NoExecute").is_none());
    assert!(untolerated_taint(&taints, &[], |_| true).is_some());
}

#[test]
fn daemon_tolerations_are_added_once_and_replace_timed_ones() {
    let mut spec = PodSpec {
        tolerations: Some(vec![Toleration {
            key: Some(TAINT_NOT_READY.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            value: None,
        }]),
        ..Default::default()
    };
    add_daemon_tolerations(&mut spec);
    add_daemon_tolerations(&mut spec);
    let tols = spec.tolerations.clone().unwrap_or_default();
    assert_eq!(tols.len(), 6);
    assert!(tols.iter().all(|t| t.toleration_seconds.is_none()));
    let keys: Vec<_> = tols.iter().filter_map(|t| t.key.clone()).collect();
    assert!(keys.contains(&TAINT_UNSCHEDULABLE.to_string()));
    assert!(!keys.contains(&TAINT_NETWORK_UNAVAILABLE.to_string()));
    let mut host = PodSpec {
        host_network: Some(true),
        ..Default::default()
    };
    add_daemon_tolerations(&mut host);
    assert_eq!(host.tolerations.map(|t| t.len()), Some(7));
}

#[test]
fn pinning_replaces_required_terms_and_keeps_preferred() {
    let mut spec = with_affinity(vec![term(vec![req("zone", "In", &["a"])], vec![])]);
    if let Some(na) = spec
        .affinity
        .as_mut()
        .and_then(|a| a.node_affinity.as_mut())
    {
        na.preferred_during_scheduling_ignored_during_execution =
            Some(vec![PreferredSchedulingTerm {
                weight: 1,
                preference: term(vec![req("zone", "In", &["a"])], vec![]),
            }]);
    }
    let a = pin_to_node(spec.affinity.take(), "n7");
    let na = a.node_affinity.clone().unwrap_or_default();
    assert!(na
        .preferred_during_scheduling_ignored_during_execution
        .is_some());
    let terms = na
        .required_during_scheduling_ignored_during_execution
        .map(|r| r.node_selector_terms)
        .unwrap_or_default();
    assert_eq!(
        terms,
        vec![term(vec![], vec![req("metadata.name", "In", &["n7"])])]
    );
    let pod = Pod {
        spec: Some(PodSpec {
            affinity: Some(a),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(target_node_name(&pod).as_deref(), Some("n7"));
    let bound = Pod {
        spec: Some(PodSpec {
            node_name: Some("n9".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(target_node_name(&bound).as_deref(), Some("n9"));
    assert_eq!(target_node_name(&Pod::default()), None);
}
