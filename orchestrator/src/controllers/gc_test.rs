use super::*;

fn node(uid: &str, kind: &str, ns: Option<&str>, owners: Vec<OwnerReference>) -> Node {
    Node {
        uid: uid.into(),
        api_version: "apps/v1".into(),
        kind: kind.into(),
        namespace: ns.map(Into::into),
        name: format!("n-{uid}"),
        resource_version: Some("5".into()),
        owner_references: owners,
        being_deleted: false,
        finalizers: vec![],
    }
}

fn oref(uid: &str, kind: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: format!("n-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn deleting(mut n: Node, finalizer: Option<&str>) -> Node {
    n.being_deleted = true;
    n.finalizers = finalizer.into_iter().map(String::from).collect();
    n
}

fn deletes(a: &[Action]) -> Vec<(String, PropagationPolicy)> {
    a.iter()
        .filter_map(|x| match x {
            Action::Delete {
                target,
                propagation,
                ..
            } => Some((target.uid.clone(), propagation.clone())),
            _ => None,
        })
        .collect()
}

fn unrefs(a: &[Action]) -> Vec<(String, String)> {
    a.iter()
        .filter_map(|x| match x {
            Action::RemoveOwnerRef {
                dependent,
                owner_uid,
            } => Some((dependent.uid.clone(), owner_uid.clone())),
            _ => None,
        })
        .collect()
}

fn finalizers_removed(a: &[Action]) -> Vec<(String, String)> {
    a.iter()
        .filter_map(|x| match x {
            Action::RemoveFinalizer { object, finalizer } => {
                Some((object.uid.clone(), finalizer.clone()))
            }
            _ => None,
        })
        .collect()
}

const NS: Option<&str> = Some("default");

#[test]
fn from_meta_reads_everything() {
    let meta = ObjectMeta {
        uid: Some("u".into()),
        name: Some("p".into()),
        namespace: Some("ns".into()),
        resource_version: Some("9".into()),
        owner_references: Some(vec![oref("o", "ReplicaSet", true)]),
        finalizers: Some(vec![FOREGROUND.into()]),
        deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        )),
        ..Default::default()
    };
    let n = Node::from_meta("v1", "Pod", &meta);
    assert_eq!(
        (n.uid.as_str(), n.kind.as_str(), n.namespace.as_deref()),
        ("u", "Pod", Some("ns"))
    );
    assert!(n.deleting_dependents());
    assert_eq!(n.owner_references.len(), 1);
}

#[test]
fn orphaned_dependent_is_deleted_in_background() {
    let pod = node("pod", "Pod", NS, vec![oref("gone", "ReplicaSet", true)]);
    let a = actions(&[pod]);
    assert_eq!(
        deletes(&a),
        vec![("pod".to_string(), PropagationPolicy::Background)]
    );
    match &a[0] {
        Action::Delete { absent_owners, .. } => assert_eq!(absent_owners[0].uid, "gone"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_owner_keeps_dependent_and_dangling_refs_are_dropped() {
    let rs = node("rs", "ReplicaSet", NS, vec![]);
    let both = node(
        "pod",
        "Pod",
        NS,
        vec![
            oref("rs", "ReplicaSet", true),
            oref("gone", "ReplicaSet", false),
        ],
    );
    let a = actions(&[rs.clone(), both]);
    assert!(deletes(&a).is_empty());
    assert_eq!(unrefs(&a), vec![("pod".to_string(), "gone".to_string())]);
    let fine = node("pod2", "Pod", NS, vec![oref("rs", "ReplicaSet", true)]);
    assert!(actions(&[rs, fine]).is_empty());
}

#[test]
fn cross_namespace_owner_counts_as_absent() {
    let rs = node("rs", "ReplicaSet", Some("other"), vec![]);
    let pod = node("pod", "Pod", NS, vec![oref("rs", "ReplicaSet", true)]);
    let nodes = [rs.clone(), pod];
    assert_eq!(
        deletes(&actions(&nodes)),
        vec![("pod".to_string(), PropagationPolicy::Background)]
    );
    assert!(dependents(&nodes, &rs).is_empty());
    // A cluster-scoped owner is fine for a namespaced dependent.
    let node_obj = node("nd", "Node", None, vec![]);
    let lease = node("lease", "Lease", NS, vec![oref("nd", "Node", false)]);
    assert!(actions(&[node_obj, lease]).is_empty());
}

#[test]
fn cluster_scoped_dependent_of_namespaced_owner_is_never_collected() {
    let owner = node("cm", "ConfigMap", NS, vec![]);
    let pv = node(
        "pv",
        "PersistentVolume",
        None,
        vec![oref("cm", "ConfigMap", false)],
    );
    assert!(actions(&[owner, pv]).is_empty());
}

#[test]
fn kind_or_name_mismatch_is_absent() {
    let rs = node("rs", "ReplicaSet", NS, vec![]);
    let mut r = oref("rs", "ReplicaSet", true);
    r.name = "someone-else".into();
    let pod = node("pod", "Pod", NS, vec![r]);
    assert_eq!(deletes(&actions(&[rs.clone(), pod])).len(), 1);
    let pod = node("pod", "Pod", NS, vec![oref("rs", "StatefulSet", true)]);
    assert_eq!(deletes(&actions(&[rs, pod])).len(), 1);
}

#[test]
fn foreground_chain_deletes_top_down_and_finalizers_go_bottom_up() {
    let deploy = deleting(node("d", "Deployment", NS, vec![]), Some(FOREGROUND));
    let rs = node("rs", "ReplicaSet", NS, vec![oref("d", "Deployment", true)]);
    let pod = node("pod", "Pod", NS, vec![oref("rs", "ReplicaSet", true)]);
    // Step 1: the ReplicaSet has dependents: deleted in the foreground.
    let a = actions(&[deploy.clone(), rs.clone(), pod.clone()]);
    assert_eq!(
        deletes(&a),
        vec![("rs".to_string(), PropagationPolicy::Foreground)]
    );
    assert!(finalizers_removed(&a).is_empty(), "rs still blocks");
    // Step 2: the ReplicaSet deletes its dependents; the pod goes in background.
    let rs2 = deleting(rs, Some(FOREGROUND));
    let a = actions(&[deploy.clone(), rs2.clone(), pod]);
    assert_eq!(
        deletes(&a),
        vec![("pod".to_string(), PropagationPolicy::Background)]
    );
    assert!(finalizers_removed(&a).is_empty());
    // Step 3: pod gone: the ReplicaSet's finalizer goes, the Deployment waits.
    let a = actions(&[deploy.clone(), rs2]);
    assert_eq!(
        finalizers_removed(&a),
        vec![("rs".to_string(), FOREGROUND.to_string())]
    );
    // Step 4: ReplicaSet gone: the Deployment's finalizer goes.
    let a = actions(&[deploy]);
    assert_eq!(
        finalizers_removed(&a),
        vec![("d".to_string(), FOREGROUND.to_string())]
    );
}

#[test]
fn non_blocking_dependents_are_deleted_but_do_not_block() {
    let owner = deleting(node("o", "ReplicaSet", NS, vec![]), Some(FOREGROUND));
    let dep = node("p", "Pod", NS, vec![oref("o", "ReplicaSet", false)]);
    let a = actions(&[owner, dep]);
    assert_eq!(
        finalizers_removed(&a),
        vec![("o".to_string(), FOREGROUND.to_string())]
    );
    assert_eq!(
        deletes(&a),
        vec![("p".to_string(), PropagationPolicy::Background)]
    );
}

#[test]
fn foreground_owner_is_dropped_when_another_owner_lives() {
    let owner = deleting(node("o", "ReplicaSet", NS, vec![]), Some(FOREGROUND));
    let other = node("x", "ReplicaSet", NS, vec![]);
    let dep = node(
        "p",
        "Pod",
        NS,
        vec![
            oref("o", "ReplicaSet", true),
            oref("x", "ReplicaSet", false),
        ],
    );
    let a = actions(&[owner, other, dep]);
    assert!(deletes(&a).is_empty());
    assert_eq!(unrefs(&a), vec![("p".to_string(), "o".to_string())]);
}

#[test]
fn orphan_finalizer_strips_references_then_itself() {
    let owner = deleting(node("o", "ReplicaSet", NS, vec![]), Some(ORPHAN));
    let p1 = node("p1", "Pod", NS, vec![oref("o", "ReplicaSet", true)]);
    let p2 = node("p2", "Pod", NS, vec![oref("o", "ReplicaSet", true)]);
    let a = actions(&[owner, p1, p2]);
    assert!(deletes(&a).is_empty());
    assert_eq!(
        unrefs(&a),
        vec![
            ("p1".to_string(), "o".to_string()),
            ("p2".to_string(), "o".to_string())
        ]
    );
    assert!(
        matches!(a.last(), Some(Action::RemoveFinalizer { finalizer, .. }) if finalizer == ORPHAN)
    );
}

#[test]
fn dependents_being_deleted_are_left_alone_and_own_finalizers_pick_policy() {
    let gone_owner = vec![oref("gone", "ReplicaSet", true)];
    let already = deleting(
        node("p", "Pod", NS, gone_owner.clone()),
        Some("example.com/x"),
    );
    assert!(actions(&[already]).is_empty());
    let mut orphaning = node("rs", "ReplicaSet", NS, gone_owner.clone());
    orphaning.finalizers = vec![ORPHAN.into()];
    let mut fg = node("rs2", "ReplicaSet", NS, gone_owner);
    fg.finalizers = vec![FOREGROUND.into()];
    assert_eq!(
        deletes(&actions(&[orphaning, fg])),
        vec![
            ("rs".to_string(), PropagationPolicy::Orphan),
            ("rs2".to_string(), PropagationPolicy::Foreground)
        ]
    );
}

#[test]
fn cycle_is_broken_by_unblocking_before_foreground_delete() {
    let owner = deleting(node("o", "Deployment", NS, vec![]), Some(FOREGROUND));
    let mid = node("m", "ReplicaSet", NS, vec![oref("o", "Deployment", true)]);
    let leaf = deleting(
        node("l", "Pod", NS, vec![oref("m", "ReplicaSet", true)]),
        Some(FOREGROUND),
    );
    let a = actions(&[owner, mid, leaf]);
    let pos = |f: &dyn Fn(&Action) -> bool| a.iter().position(f);
    let unblock =
        pos(&|x| matches!(x, Action::UnblockOwnerRefs { dependent } if dependent.uid == "m"));
    let delete = pos(&|x| matches!(x, Action::Delete { target, .. } if target.uid == "m"));
    assert!(unblock.is_some() && unblock < delete, "{a:?}");
}

#[test]
fn dangling_leaves_owner_bookkeeping_out() {
    let owner = deleting(node("o", "ReplicaSet", NS, vec![]), Some(ORPHAN));
    let p = node("p", "Pod", NS, vec![oref("o", "ReplicaSet", true)]);
    assert!(dangling(&[owner, p]).is_empty());
}

#[test]
fn patches_have_upstream_shapes() {
    assert_eq!(
        remove_owner_ref_patch("dep", "own"),
        json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "own"}], "uid": "dep"}})
    );
    let mut n = node(
        "p",
        "Pod",
        NS,
        vec![oref("a", "ReplicaSet", true), oref("b", "ReplicaSet", true)],
    );
    n.finalizers = vec![FOREGROUND.into(), "keep".into()];
    let p = remove_finalizer_patch(&n, FOREGROUND);
    assert_eq!(
        p,
        json!({"metadata": {"finalizers": ["keep"], "resourceVersion": "5"}})
    );
    let p = remove_owner_ref_merge_patch(&n, "a");
    assert_eq!(
        p["metadata"]["ownerReferences"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "b");
    let p = unblock_patch(&n);
    assert_eq!(
        p["metadata"]["ownerReferences"][1]["blockOwnerDeletion"],
        false
    );
    assert_eq!(
        serde_json::to_value(PropagationPolicy::Foreground).unwrap(),
        "Foreground"
    );
}

#[test]
fn dependents_in_other_namespaces_do_not_block_foreground_deletion() {
    let owner = deleting(node("o", "ReplicaSet", NS, vec![]), Some(FOREGROUND));
    let elsewhere = node(
        "p",
        "Pod",
        Some("other"),
        vec![oref("o", "ReplicaSet", true)],
    );
    let a = actions(&[owner, elsewhere]);
    assert_eq!(
        finalizers_removed(&a),
        vec![("o".to_string(), FOREGROUND.to_string())]
    );
    // The misplaced dependent is itself collected as having no valid owner.
    assert_eq!(
        deletes(&a),
        vec![("p".to_string(), PropagationPolicy::Background)]
    );
}
