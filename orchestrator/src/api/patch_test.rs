//! Tests of the PATCH flavours: each case is a target, a patch and kube-apiserver's answer (the
//! expected values were checked against the Go packages kube-apiserver 1.32 runs).

use serde_json::{json, Value};

use super::*;

use PatchKind::{Json, Merge as MergePatch, StrategicMerge as Smp};

fn check(kind: PatchKind, object_kind: &str, target: Value, patch: Value, expected: Value) {
    let got = apply_patch(kind, object_kind, &target, &patch);
    assert_eq!(got, Ok(expected), "{kind:?} patch {patch}");
}

fn check_err(kind: PatchKind, object_kind: &str, target: Value, patch: Value, expected: ApiError) {
    let got = apply_patch(kind, object_kind, &target, &patch);
    assert_eq!(got, Err(expected), "{kind:?} patch {patch}");
}

/// A Deployment whose pod template has two containers.
fn deployment(containers: Value) -> Value {
    json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
           "spec": {"replicas": 2, "template": {"spec": {"containers": containers}}}})
}

fn containers(patch: Value) -> Value {
    json!({"spec": {"template": {"spec": patch}}})
}

fn web() -> Value {
    json!({"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]})
}

fn side() -> Value {
    json!({"name": "side", "image": "busybox"})
}

#[test]
fn content_types() {
    let kind = PatchKind::from_content_type;
    assert_eq!(kind("application/json-patch+json"), Some(Json));
    assert_eq!(kind("application/merge-patch+json"), Some(MergePatch));
    assert_eq!(
        kind("application/strategic-merge-patch+json; charset=utf-8"),
        Some(Smp)
    );
    assert_eq!(kind("application/apply-patch+yaml"), Some(PatchKind::Apply));
    // kube-apiserver neither trims nor folds case.
    assert_eq!(kind("application/json-patch+json ; charset=utf-8"), None);
    assert_eq!(kind("Application/JSON-Patch+json"), None);
    assert_eq!(kind("application/json"), None);
    let refused = apply_patch(PatchKind::Apply, "Pod", &json!({}), &json!({}));
    assert_eq!(refused.map_err(|e| e.code()), Err(415));
}

#[test]
fn strategic_merge_lists_by_key() {
    let web2 = json!({"name": "web", "image": "nginx:2", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]});
    // One container's image changes; the other is untouched.
    let patch = containers(json!({"containers": [{"name": "web", "image": "nginx:2"}]}));
    check(
        Smp,
        "Deployment",
        deployment(json!([web(), side()])),
        patch,
        deployment(json!([web2, side()])),
    );
    // An env var is added by name; new items go before the ones the patch does not name.
    let patch =
        containers(json!({"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}));
    let env = json!({"name": "web", "image": "nginx:1", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]});
    check(
        Smp,
        "Deployment",
        deployment(json!([web(), side()])),
        patch,
        deployment(json!([env, side()])),
    );
    // A new container comes first too, as kube-apiserver orders it without $setElementOrder.
    let patch = containers(json!({"containers": [{"name": "new", "image": "n"}]}));
    let expected = deployment(json!([{"name": "new", "image": "n"}, web(), side()]));
    check(
        Smp,
        "Deployment",
        deployment(json!([web(), side()])),
        patch,
        expected,
    );
    // Container ports merge by containerPort, with `$patch: delete` items.
    let patch = containers(
        json!({"containers": [{"name": "web", "ports": [{"containerPort": 443}, {"containerPort": 80, "$patch": "delete"}]}]}),
    );
    let ports = json!({"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 443}]});
    check(
        Smp,
        "Deployment",
        deployment(json!([web(), side()])),
        patch,
        deployment(json!([ports, side()])),
    );
}

#[test]
fn strategic_merge_directives() {
    let target = deployment(json!([web(), side()]));
    // `$patch: delete` in a list removes the item with that key.
    let patch = containers(json!({"containers": [{"name": "side", "$patch": "delete"}]}));
    check(
        Smp,
        "Deployment",
        target.clone(),
        patch,
        deployment(json!([web()])),
    );
    // `$patch: replace` in a list makes the other items the whole list.
    let patch =
        containers(json!({"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}));
    check(
        Smp,
        "Deployment",
        target.clone(),
        patch,
        deployment(json!([{"name": "only", "image": "x"}])),
    );
    // `$setElementOrder` reorders, and places a new item where it says.
    let patch =
        containers(json!({"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}));
    check(
        Smp,
        "Deployment",
        target.clone(),
        patch,
        deployment(json!([side(), web()])),
    );
    let order = json!([{"name": "side"}, {"name": "new"}, {"name": "web"}]);
    let patch = containers(
        json!({"$setElementOrder/containers": order, "containers": [{"name": "new", "image": "n"}]}),
    );
    check(
        Smp,
        "Deployment",
        target.clone(),
        patch,
        deployment(json!([side(), {"name": "new", "image": "n"}, web()])),
    );
    // `$patch: replace` and `$patch: delete` in a map.
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "x"}}});
    let mut expected = target.clone();
    expected["metadata"]["labels"] = json!({"only": "x"});
    check(Smp, "Deployment", target.clone(), patch, expected);
    let mut expected = target.clone();
    expected["metadata"]["labels"] = json!({});
    check(
        Smp,
        "Deployment",
        target.clone(),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
        expected,
    );
    // A null deletes a map key.
    let mut expected = target.clone();
    expected["metadata"]["labels"] = json!({"app": "web"});
    check(
        Smp,
        "Deployment",
        target.clone(),
        json!({"metadata": {"labels": {"tier": null}}}),
        expected,
    );
    // Directive keys inside a new item are dropped, as the typed decode drops unknown fields.
    let patch = containers(
        json!({"containers": [{"name": "new", "$setElementOrder/env": [{"name": "X"}]}]}),
    );
    check(
        Smp,
        "Deployment",
        deployment(json!([side()])),
        patch,
        deployment(json!([{"name": "new"}, side()])),
    );
}

#[test]
fn strategic_merge_retain_keys_and_replace_strategy() {
    let target =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    check(
        Smp,
        "Deployment",
        target.clone(),
        patch,
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    check_err(
        Smp,
        "Deployment",
        target,
        patch,
        ApiError::BadRequest("invalid patch format of retainKeys".into()),
    );
    // A PodDisruptionBudget's selector has patchStrategy "replace".
    let target = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}});
    let patch = json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}});
    check(Smp, "PodDisruptionBudget", target, patch.clone(), patch);
}

#[test]
fn strategic_merge_lists_of_scalars() {
    let target = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
    let with = |f: Value| json!({"metadata": {"name": "x", "finalizers": f}});
    check(
        Smp,
        "ConfigMap",
        target.clone(),
        json!({"metadata": {"finalizers": ["c"]}}),
        with(json!(["c", "a", "b"])),
    );
    let patch = json!({"metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]}});
    check(
        Smp,
        "ConfigMap",
        target.clone(),
        patch,
        with(json!(["c", "a"])),
    );
    let patch =
        json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}});
    check(
        Smp,
        "ConfigMap",
        target.clone(),
        patch,
        with(json!(["b", "c", "a"])),
    );
    // A Node's podCIDRs merge the same way.
    let patch = json!({"spec": {"podCIDRs": ["fd00::/64"]}});
    let expected = json!({"spec": {"podCIDRs": ["fd00::/64", "10.0.0.0/24"]}});
    check(
        Smp,
        "Node",
        json!({"spec": {"podCIDRs": ["10.0.0.0/24"]}}),
        patch,
        expected,
    );
}

#[test]
fn strategic_merge_keys_of_other_kinds() {
    // Service ports merge by port.
    let target =
        json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 9090}]}});
    let expected = json!({"spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}, {"port": 9090}, {"port": 443, "name": "https"}]}});
    check(Smp, "Service", target, patch, expected);
    // Tolerations and taints have no strategy: replaced whole.
    let tolerations = |t: Value| containers(json!({"tolerations": t}));
    let patch = tolerations(json!([{"key": "z", "operator": "Exists"}]));
    check(
        Smp,
        "Deployment",
        tolerations(json!([{"key": "k", "operator": "Exists"}])),
        patch.clone(),
        patch,
    );
    let target = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}, "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
    let patch = json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}});
    let expected = json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
    check(Smp, "Node", target, patch, expected);
    // ownerReferences merge by uid, pod conditions by type.
    let target = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let expected = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    check(Smp, "Pod", target, patch, expected);
    // A CronJob's pod template is three levels down; a kind without merge keys replaces lists.
    let cron = |c: Value| json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": c}}}}}});
    let patch = cron(json!([{"name": "side", "image": "b2"}]));
    check(
        Smp,
        "CronJob",
        cron(json!([web(), side()])),
        patch,
        cron(json!([web(), {"name": "side", "image": "b2"}])),
    );
    let patch = cron(json!([{"name": "side", "image": "b2"}]));
    check(
        Smp,
        "ConfigMap",
        cron(json!([web(), side()])),
        patch.clone(),
        patch,
    );
}

/// kubectl apply removing container `b` and adding `d` beside a server-only `x`: Go merges in the
/// original list's own array, so `x` lands after `d`, not before it.
#[test]
fn strategic_merge_follows_go_slice_aliasing() {
    let names = |n: &[&str]| Value::Array(n.iter().map(|n| json!({"name": n})).collect());
    let order = names(&["a", "d", "c"]);
    let patch = containers(
        json!({"$setElementOrder/containers": order, "containers": [{"name": "b", "$patch": "delete"}, {"name": "d"}]}),
    );
    let target = deployment(names(&["a", "x", "b", "c"]));
    check(
        Smp,
        "Deployment",
        target,
        patch,
        deployment(names(&["a", "x", "d", "c"])),
    );
}

#[test]
fn strategic_merge_errors() {
    let target = deployment(json!([web(), side()]));
    let bad = |m: &str| ApiError::BadRequest(m.into());
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        json!([1]),
        bad("json: cannot unmarshal array into Go value of type map[string]interface {}"),
    );
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        json!("x"),
        bad("json: cannot unmarshal string into Go value of type map[string]interface {}"),
    );
    check(
        Smp,
        "Deployment",
        target.clone(),
        Value::Null,
        target.clone(),
    );
    let missing = containers(json!({"containers": [{"image": "x"}]}));
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        missing,
        go_error("map: map[image:x] does not contain declared merge key: name".into()),
    );
    let merge = containers(json!({"containers": [{"name": "web", "$patch": "merge"}]}));
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        merge,
        go_error("merging lists cannot yet be specified in the patch".into()),
    );
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        json!({"spec": {"$patch": 1}}),
        go_error("unknown patch type: %!s(int64=1) in map: map[$patch:1]".into()),
    );
    // A list of lists is the one strategic merge failure kube-apiserver answers 422.
    let lists = json!({"metadata": {"finalizers": [["x"]]}});
    check_err(
        Smp,
        "Pod",
        json!({"metadata": {"finalizers": []}}),
        lists,
        rejected(),
    );
    let mixed = json!({"metadata": {"finalizers": ["a"]}});
    let got = apply_patch(
        Smp,
        "Pod",
        &json!({"metadata": {"finalizers": [80]}}),
        &mixed,
    );
    assert_eq!(
        got,
        Err(go_error(
            "list element types are not identical: [[80] [a]]".into()
        ))
    );
    let order = containers(
        json!({"$setElementOrder/containers": [{"name": "web"}], "containers": [{"name": "side", "image": "q"}]}),
    );
    let message = "The order in patch list:\n[map[image:q name:side]]\n doesn't match $setElementOrder list:\n[map[name:web]]\n";
    check_err(
        Smp,
        "Deployment",
        target.clone(),
        order,
        go_error(message.into()),
    );
    let prefix = json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}});
    check_err(
        Smp,
        "Deployment",
        target,
        prefix,
        bad("invalid patch format of primitive list"),
    );
}

#[test]
fn json_patch_operations() {
    let target =
        json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"list": [1, 2, 3]}});
    let with = |labels: Value, list: Value| json!({"metadata": {"name": "a", "labels": labels}, "spec": {"list": list}});
    let ok = |patch: Value, expected: Value| check(Json, "Pod", target.clone(), patch, expected);
    ok(
        json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}]),
        with(json!({"x": "1", "y": "2"}), json!([1, 2, 3])),
    );
    ok(
        json!([{"op": "replace", "path": "/metadata/labels/x", "value": "9"}]),
        with(json!({"x": "9"}), json!([1, 2, 3])),
    );
    ok(
        json!([{"op": "remove", "path": "/metadata/labels/x"}]),
        with(json!({}), json!([1, 2, 3])),
    );
    ok(
        json!([{"op": "test", "path": "/metadata/name", "value": "a"}, {"op": "remove", "path": "/spec/list/-1"}]),
        with(json!({"x": "1"}), json!([1, 2])),
    );
    ok(
        json!([{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}]),
        with(json!({"x": "1"}), json!([2, 3, 1])),
    );
    ok(
        json!([{"op": "copy", "from": "/metadata/labels/x", "path": "/metadata/labels/~1y"}]),
        with(json!({"x": "1", "/y": "1"}), json!([1, 2, 3])),
    );
    // evanphx/json-patch v4's quirks: replace of a missing key adds it, negative indices, Atoi indices.
    ok(
        json!([{"op": "replace", "path": "/metadata/labels/new", "value": "n"}]),
        with(json!({"x": "1", "new": "n"}), json!([1, 2, 3])),
    );
    ok(
        json!([{"op": "add", "path": "/spec/list/-4", "value": 0}]),
        with(json!({"x": "1"}), json!([0, 1, 2, 3])),
    );
    ok(
        json!([{"op": "replace", "path": "/spec/list/+01", "value": 7}]),
        with(json!({"x": "1"}), json!([1, 7, 3])),
    );
    ok(
        json!([{"op": "test", "path": "/metadata/missing", "value": null}]),
        target.clone(),
    );
    ok(Value::Null, target.clone());
}

#[test]
fn json_patch_failures() {
    let target =
        json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"list": [1, 2, 3]}});
    let fails = |patch: Value| check_err(Json, "Pod", target.clone(), patch, rejected());
    fails(json!([{"op": "test", "path": "/metadata/name", "value": "b"}]));
    fails(
        json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}, {"op": "test", "path": "/spec/list/0", "value": 1.0}]),
    );
    fails(json!([{"op": "remove", "path": "/metadata/labels/nope"}]));
    fails(json!([{"op": "replace", "path": "/spec/list/3", "value": 7}]));
    fails(json!([{"op": "add", "path": "/spec/list/5", "value": 7}]));
    fails(json!([{"op": "add", "path": "/no/such", "value": 7}]));
    fails(json!([{"op": "add", "path": "", "value": {}}]));
    fails(json!([{"op": "bogus", "path": "/a"}]));
    fails(json!([null]));
    let bad =
        |m: &str| ApiError::BadRequest(format!("error decoding patch: json: cannot unmarshal {m}"));
    let decode = |patch: Value, m: &str| check_err(Json, "Pod", target.clone(), patch, bad(m));
    decode(
        json!({"op": "add"}),
        "object into Go value of type []handlers.jsonPatchOp",
    );
    decode(
        json!("x"),
        "string into Go value of type []handlers.jsonPatchOp",
    );
    decode(
        json!([1]),
        "number into Go value of type handlers.jsonPatchOp",
    );
    decode(
        json!([{"op": 5}]),
        "number into Go struct field jsonPatchOp.op of type string",
    );
    let many = Value::Array(vec![
        json!({"op": "test", "path": "/metadata/name", "value": "a"});
        10_001
    ]);
    check_err(Json, "Pod", target, many, too_many_operations(10_001));
}

#[test]
fn merge_patch() {
    let target = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"list": [1, 2]}});
    let patch = json!({"metadata": {"labels": {"x": null, "z": "3"}}, "spec": {"list": [{"a": null}, null]}});
    let expected = json!({"metadata": {"name": "a", "labels": {"y": "2", "z": "3"}}, "spec": {"list": [{}, null]}});
    check(MergePatch, "Pod", target.clone(), patch, expected);
    // Over an object, a list is taken as it is, nulls in it kept.
    let expected = json!({"metadata": [{"a": null}], "spec": {"list": [1, 2]}});
    check(
        MergePatch,
        "Pod",
        target.clone(),
        json!({"metadata": [{"a": null}]}),
        expected,
    );
    check_err(
        MergePatch,
        "Pod",
        target.clone(),
        Value::Null,
        ApiError::BadRequest("Invalid JSON Patch".into()),
    );
    let message = "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}";
    check_err(
        MergePatch,
        "Pod",
        target,
        json!([1]),
        ApiError::BadRequest(message.into()),
    );
}
