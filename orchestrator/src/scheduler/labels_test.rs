use super::*;
use crate::scheduler::testutil::from;
use serde_json::json;

fn set(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn label_selector_match_labels_and_expressions() {
    let sel: LabelSelector = from(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"}
        ]
    }));
    let s = Selector::from_label_selector(Some(&sel));
    assert!(s.matches(&set(&[("app", "web"), ("tier", "a"), ("team", "x")])));
    assert!(s.matches(&set(&[
        ("app", "web"),
        ("tier", "b"),
        ("team", "x"),
        ("env", "dev")
    ])));
    assert!(!s.matches(&set(&[("app", "db"), ("tier", "a"), ("team", "x")])));
    assert!(!s.matches(&set(&[("app", "web"), ("tier", "c"), ("team", "x")])));
    assert!(!s.matches(&set(&[
        ("app", "web"),
        ("tier", "a"),
        ("team", "x"),
        ("env", "prod")
    ])));
    assert!(!s.matches(&set(&[("app", "web"), ("tier", "a")])));
    assert!(!s.matches(&set(&[
        ("app", "web"),
        ("tier", "a"),
        ("team", "x"),
        ("legacy", "1")
    ])));
}

#[test]
fn label_selector_nil_empty_and_invalid() {
    let labels = set(&[("a", "1")]);
    assert!(
        !Selector::from_label_selector(None).matches(&labels),
        "nil selects nothing"
    );
    let empty: LabelSelector = from(json!({}));
    assert!(
        Selector::from_label_selector(Some(&empty)).matches(&labels),
        "{{}} selects all"
    );
    let bad_op: LabelSelector =
        from(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["0"]}]}));
    assert!(!Selector::from_label_selector(Some(&bad_op)).matches(&labels));
    let in_no_values: LabelSelector =
        from(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}));
    assert!(!Selector::from_label_selector(Some(&in_no_values)).matches(&labels));
}

fn term(v: serde_json::Value) -> NodeTerm {
    NodeTerm::parse(&from(v)).expect("non-empty term")
}

#[test]
fn node_term_gt_lt_and_parse_errors() {
    let gt =
        term(json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}));
    assert!(gt.matches(&set(&[("cores", "8")]), "n"));
    assert!(!gt.matches(&set(&[("cores", "4")]), "n"));
    assert!(
        !gt.matches(&set(&[("cores", "many")]), "n"),
        "non-integer label"
    );
    assert!(!gt.matches(&set(&[]), "n"), "missing label");
    let lt =
        term(json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}));
    assert!(lt.matches(&set(&[("cores", "2")]), "n"));
    assert!(!lt.matches(&set(&[("cores", "4")]), "n"));
    let bad = term(
        json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["1", "2"]}]}),
    );
    assert!(
        !bad.matches(&set(&[("cores", "8")]), "n"),
        "two values: parse error, never matches"
    );
    let bad_int =
        term(json!({"matchExpressions": [{"key": "c", "operator": "Lt", "values": ["x"]}]}));
    assert!(!bad_int.matches(&set(&[("c", "1")]), "n"));
    let empty: NodeSelectorTerm = from(json!({}));
    assert!(NodeTerm::parse(&empty).is_none(), "empty terms are skipped");
}

#[test]
fn node_term_match_fields_metadata_name() {
    let t = term(
        json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
    );
    assert!(t.matches(&set(&[]), "n1"));
    assert!(!t.matches(&set(&[]), "n2"));
    let t = term(
        json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}),
    );
    assert!(!t.matches(&set(&[]), "n1"));
    assert!(t.matches(&set(&[]), "n2"));
    let two = term(
        json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}),
    );
    assert!(
        !two.matches(&set(&[]), "n1"),
        "field In needs exactly one value"
    );
}

#[test]
fn required_node_affinity_selector_and_ored_terms() {
    let pod: Pod = from(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}
                ]
            }}}
        }
    }));
    let r = RequiredNodeAffinity::of_pod(&pod);
    assert!(r.matches(&set(&[("disk", "ssd"), ("zone", "a")]), "n"));
    assert!(r.matches(&set(&[("disk", "ssd"), ("gpu", "1")]), "n"));
    assert!(
        !r.matches(&set(&[("disk", "hdd"), ("zone", "a")]), "n"),
        "nodeSelector ANDed"
    );
    assert!(!r.matches(&set(&[("disk", "ssd"), ("zone", "b")]), "n"));
    let plain: Pod = from(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
    assert!(RequiredNodeAffinity::of_pod(&plain).is_empty());
}

#[test]
fn toleration_semantics() {
    let taint: Taint = from(json!({"key": "k", "value": "v", "effect": "NoSchedule"}));
    let t = |v: serde_json::Value| -> Toleration { from(v) };
    assert!(tolerates(
        &t(json!({"key": "k", "operator": "Equal", "value": "v"})),
        &taint
    ));
    assert!(tolerates(
        &t(json!({"key": "k", "value": "v", "effect": "NoSchedule"})),
        &taint
    ));
    assert!(!tolerates(
        &t(json!({"key": "k", "value": "other"})),
        &taint
    ));
    assert!(tolerates(
        &t(json!({"key": "k", "operator": "Exists"})),
        &taint
    ));
    assert!(
        tolerates(&t(json!({"operator": "Exists"})), &taint),
        "empty key + Exists tolerates all"
    );
    assert!(!tolerates(
        &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
        &taint
    ));
    assert!(!tolerates(
        &t(json!({"key": "x", "operator": "Exists"})),
        &taint
    ));
    assert!(!tolerates(
        &t(json!({"key": "k", "operator": "Bogus"})),
        &taint
    ));
}
