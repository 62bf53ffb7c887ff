use super::history::*;
use super::testutil::*;
use super::*;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

fn settings(set: &StatefulSet) -> Settings {
    Settings::from_set(set).expect("spec")
}

fn rev_of(set: &StatefulSet, image: &str, n: i64) -> ControllerRevision {
    new_revision(&settings(set), set, &template(image), n, 0)
}

#[test]
fn fnv1_32_known_vectors_and_safe_encoding() {
    // FNV-1 (not 1a), as Go's hash/fnv.New32.
    assert_eq!(fnv32(b""), 0x811c_9dc5);
    assert_eq!(fnv32(b"a"), 0x050c_5d7e);
    assert_eq!(fnv32(b"foobar"), 0x31f0_b262);
    assert_eq!(safe_encode("09"), "4f");
    let long = "x".repeat(300);
    assert_eq!(revision_name(&long, "abc").len(), 223 + 4);
    assert_eq!(revision_name("web", "abc"), "web-abc");
}

#[test]
fn revision_data_is_a_replace_patch_of_the_template() {
    let tpl = template("nginx:1");
    let patch = patch_for(&tpl);
    assert_eq!(patch["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );
    let rev = ControllerRevision {
        data: Some(RawExtension(patch)),
        ..Default::default()
    };
    assert_eq!(template_of(&rev).ok(), Some(tpl));
    assert!(template_of(&ControllerRevision::default()).is_err());
}

#[test]
fn new_revision_is_named_labelled_and_owned() {
    let mut set = sts(1);
    set.metadata.annotations = Some(crate::controllers::testutil::labels(&[(
        "kubernetes.io/change-cause",
        "v1",
    )]));
    let rev = rev_of(&set, "nginx:1", 3);
    let hash = rev
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .cloned()
        .unwrap_or_default();
    assert!(!hash.is_empty());
    assert_eq!(rev.metadata.name, Some(format!("web-{hash}")));
    assert_eq!(rev.revision, 3);
    let labels = rev.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let ann = rev.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("kubernetes.io/change-cause").map(String::as_str),
        Some("v1")
    );
    let owner = crate::controllers::pods::controller_ref(&rev.metadata).cloned();
    assert_eq!(owner.map(|o| o.uid), Some(SET_UID.to_string()));
    // The collision count changes the name, the data stays.
    let bumped = new_revision(&settings(&set), &set, &template("nginx:1"), 3, 1);
    assert_ne!(bumped.metadata.name, rev.metadata.name);
    assert_eq!(bumped.data, rev.data);
    assert_eq!(
        hash_revision(&patch_for(&template("nginx:1")), Some(0)),
        hash
    );
}

#[test]
fn equal_revision_compares_data_and_numeric_hash_labels() {
    let set = sts(1);
    let a = rev_of(&set, "nginx:1", 1);
    let mut b = rev_of(&set, "nginx:1", 7);
    b.metadata.name = Some("other".into());
    assert!(equal_revision(&a, &b));
    assert!(!equal_revision(&a, &rev_of(&set, "nginx:2", 1)));
    let mut x = a.clone();
    let mut y = a.clone();
    x.metadata.labels = Some(crate::controllers::testutil::labels(&[(HASH_LABEL, "12")]));
    y.metadata.labels = Some(crate::controllers::testutil::labels(&[(HASH_LABEL, "13")]));
    assert!(!equal_revision(&x, &y));
}

#[test]
fn revisions_sort_by_number_then_creation_then_name() {
    let set = sts(1);
    let mut a = rev_of(&set, "a", 2);
    a.metadata.name = Some("b".into());
    let mut b = rev_of(&set, "b", 2);
    b.metadata.name = Some("a".into());
    let c = rev_of(&set, "c", 1);
    let mut v = [&a, &b, &c];
    v.sort_by(|x, y| cmp_revisions(x, y));
    let names: Vec<_> = v
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names[0], c.metadata.name.clone().unwrap_or_default());
    assert_eq!(&names[1..], &["a".to_string(), "b".to_string()]);
}

#[test]
fn get_revisions_creates_reuses_and_rolls_back() {
    let mut set = sts(1);
    let s = settings(&set);
    let mut actions = Vec::new();
    let r = get_revisions(&s, &set, &[], &[], &mut actions);
    assert!(matches!(actions.as_slice(), [Action::CreateRevision(c)] if c.revision == 1));
    assert_eq!(r.current.metadata.name, r.update.metadata.name);
    let r1 = r.update.clone();

    // Unchanged template: the newest revision is reused, nothing written.
    actions.clear();
    let r = get_revisions(&s, &set, &[&r1], &[], &mut actions);
    assert!(actions.is_empty());
    assert_eq!(r.update.metadata.name, r1.metadata.name);

    // New template: revision 2; current follows status.currentRevision.
    set_image(&mut set, "nginx:2");
    set.status = Some(k8s_openapi::api::apps::v1::StatefulSetStatus {
        current_revision: r1.metadata.name.clone(),
        ..Default::default()
    });
    actions.clear();
    let r = get_revisions(&s, &set, &[&r1], &[], &mut actions);
    assert!(matches!(actions.as_slice(), [Action::CreateRevision(c)] if c.revision == 2));
    assert_eq!(r.current.metadata.name, r1.metadata.name);
    let r2 = r.update.clone();

    // Back to the first template: revision 1 is renumbered 3.
    set_image(&mut set, "nginx:1");
    actions.clear();
    let r = get_revisions(&s, &set, &[&r1, &r2], &[], &mut actions);
    assert!(matches!(actions.as_slice(), [Action::UpdateRevision(u)]
        if u.revision == 3 && u.metadata.name == r1.metadata.name));
    assert_eq!(r.update.revision, 3);
}

#[test]
fn name_collision_bumps_collision_count() {
    let set = sts(1);
    let s = settings(&set);
    // A foreign revision already holds the name with other data.
    let mut squatter = rev_of(&set, "nginx:1", 1);
    squatter.data = Some(RawExtension(serde_json::json!({"other": true})));
    squatter.metadata.owner_references = None;
    squatter.metadata.labels = None;
    let mut actions = Vec::new();
    let r = get_revisions(&s, &set, &[], &[squatter.clone()], &mut actions);
    assert_eq!(r.collision_count, 1);
    assert_ne!(r.update.metadata.name, squatter.metadata.name);
    assert!(matches!(actions.as_slice(), [Action::CreateRevision(_)]));
}

#[test]
fn truncate_keeps_live_revisions_and_deletes_oldest_first() {
    let mut set = sts(1);
    if let Some(spec) = set.spec.as_mut() {
        spec.revision_history_limit = Some(1);
    }
    let s = settings(&set);
    let revs: Vec<ControllerRevision> = (1..=5)
        .map(|i| {
            let mut r = rev_of(&set, &format!("img:{i}"), i);
            r.metadata.name = Some(format!("r{i}"));
            r
        })
        .collect();
    let refs: Vec<&ControllerRevision> = revs.iter().collect();
    // r5 current/update, r2 used by a pod: history = r1, r3, r4 -> keep r4.
    assert_eq!(truncate(&s, &refs, &["r5", "r5", "r2"]), vec!["r1", "r3"]);
    let mut unlimited = s.clone();
    unlimited.history_limit = -1;
    assert!(truncate(&unlimited, &refs, &["r5"]).is_empty());
}
