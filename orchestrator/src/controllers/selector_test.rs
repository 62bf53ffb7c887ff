use super::*;
use crate::controllers::testutil::labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

fn expr(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
    }
}

fn sel(ml: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_labels: (!ml.is_empty()).then(|| labels(ml)),
        match_expressions: (!exprs.is_empty()).then_some(exprs),
    }
}

#[test]
fn empty_selector_matches_everything_nil_matches_nothing() {
    let empty = LabelSelector::default();
    assert!(matches(&empty, &labels(&[])));
    assert!(matches(&empty, &labels(&[("a", "b")])));
    // Present but empty collections are still "empty".
    let empty2 = LabelSelector {
        match_labels: Some(BTreeMap::new()),
        match_expressions: Some(vec![]),
    };
    assert!(matches(&empty2, &labels(&[("x", "y")])));
    assert!(!matches_opt(None, &labels(&[("a", "b")])));
    assert!(!matches_opt(None, &labels(&[])));
    assert_eq!(parse_opt(None), Ok(Selector::Nothing));
    assert!(parse(&empty).is_ok_and(|s| s.is_everything()));
}

#[test]
fn match_labels_need_every_pair() {
    let s = sel(&[("app", "web"), ("tier", "fe")], vec![]);
    assert!(matches(
        &s,
        &labels(&[("app", "web"), ("tier", "fe"), ("x", "1")])
    ));
    assert!(!matches(&s, &labels(&[("app", "web")])));
    assert!(!matches(&s, &labels(&[("app", "web"), ("tier", "be")])));
}

#[test]
fn in_and_notin() {
    let s_in = sel(&[], vec![expr("tier", "In", Some(&["a", "b"]))]);
    assert!(matches(&s_in, &labels(&[("tier", "b")])));
    assert!(!matches(&s_in, &labels(&[("tier", "c")])));
    assert!(!matches(&s_in, &labels(&[])));
    let s_notin = sel(&[], vec![expr("tier", "NotIn", Some(&["a", "b"]))]);
    assert!(!matches(&s_notin, &labels(&[("tier", "a")])));
    assert!(matches(&s_notin, &labels(&[("tier", "c")])));
    // NotIn holds when the label is absent.
    assert!(matches(&s_notin, &labels(&[])));
}

#[test]
fn exists_and_does_not_exist() {
    let s = sel(
        &[],
        vec![
            expr("a", "Exists", None),
            expr("b", "DoesNotExist", Some(&[])),
        ],
    );
    assert!(matches(&s, &labels(&[("a", "")])));
    assert!(!matches(&s, &labels(&[("a", "1"), ("b", "2")])));
    assert!(!matches(&s, &labels(&[])));
}

#[test]
fn invalid_selectors_are_errors_and_match_nothing() {
    let cases = vec![
        sel(&[], vec![expr("a", "Matches", Some(&["x"]))]),
        sel(&[], vec![expr("a", "In", None)]),
        sel(&[], vec![expr("a", "NotIn", Some(&[]))]),
        sel(&[], vec![expr("a", "Exists", Some(&["x"]))]),
        sel(&[("bad key!", "v")], vec![]),
        sel(&[("k", "bad value!")], vec![]),
        sel(&[("-k", "v")], vec![]),
        sel(&[("Example.com/k", "v")], vec![]),
        sel(&[("a/b/c", "v")], vec![]),
    ];
    for c in cases {
        assert!(parse(&c).is_err(), "{c:?}");
        assert!(!matches(&c, &labels(&[("a", "x"), ("k", "v")])), "{c:?}");
        assert!(to_query(&c).is_err());
    }
    let op = sel(&[], vec![expr("a", "Matches", Some(&["x"]))]);
    assert_eq!(
        parse(&op).unwrap_err().to_string(),
        "\"Matches\" is not a valid label selector operator"
    );
}

#[test]
fn valid_keys_and_values() {
    let s = sel(
        &[("example.com/app-name_1.x", "V-1.x_y"), ("k", "")],
        vec![],
    );
    assert!(parse(&s).is_ok());
    let long = "a".repeat(64);
    assert!(parse(&sel(&[(long.as_str(), "v")], vec![])).is_err());
    assert!(parse(&sel(&[("k", long.as_str())], vec![])).is_err());
}

#[test]
fn query_string_is_sorted_by_key_with_sorted_values() {
    let s = sel(
        &[("app", "web")],
        vec![
            expr("tier", "In", Some(&["b", "a"])),
            expr("env", "NotIn", Some(&["prod"])),
            expr("canary", "DoesNotExist", None),
            expr("zone", "Exists", None),
        ],
    );
    assert_eq!(
        to_query(&s).unwrap(),
        "app=web,!canary,env notin (prod),tier in (a,b),zone"
    );
    assert_eq!(to_query(&LabelSelector::default()).unwrap(), "");
}
