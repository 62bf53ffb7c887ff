//! Bad input to the API server: each is answered with a `Status` carrying kube-apiserver's
//! code, reason and message, and nothing is stored.

mod common;

use common::apiserver::{request, ApiServer};
use serde_json::{json, Value};

const CMS: &str = "/api/v1/namespaces/input/configmaps";

/// Asserts a Status with `code` and `reason` whose message contains `message`.
fn refused(answer: (u16, Value), code: u16, reason: &str, message: &str) {
    let (got, status) = answer;
    assert_eq!(got, code, "{status}");
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["code"], code, "{status}");
    assert_eq!(status["reason"], reason, "{status}");
    let text = status["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "expected {message:?} in {text:?}");
}

fn post(s: &ApiServer, path: &str, body: &Value) -> (u16, Value) {
    request(
        s,
        "POST",
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn stored_names(s: &ApiServer) -> Vec<String> {
    let (code, list) = request(s, "GET", CMS, "application/json", b"");
    assert_eq!(code, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let s = ApiServer::stacked(&[]);
    let (code, _) = post(
        &s,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "input"}}),
    );
    assert_eq!(code, 201);

    // Malformed JSON.
    refused(
        request(&s, "POST", CMS, "application/json", b"{\"metadata\": {"),
        400,
        "BadRequest",
        "error decoding request body",
    );
    // A body that is not this resource's kind, or of another version.
    refused(
        post(
            &s,
            CMS,
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}),
        ),
        400,
        "BadRequest",
        "the kind in the data (Secret) does not match the expected kind (ConfigMap)",
    );
    refused(
        post(
            &s,
            "/apis/apps/v1/namespaces/input/deployments",
            &json!({"apiVersion": "apps/v2", "kind": "Deployment", "metadata": {"name": "a"}}),
        ),
        400,
        "BadRequest",
        "the API version in the data (apps/v2) does not match the expected API version (apps/v1)",
    );
    // A field of the wrong type.
    refused(
        post(
            &s,
            CMS,
            &json!({"metadata": {"name": "a"}, "data": {"k": 1}}),
        ),
        400,
        "BadRequest",
        "ConfigMap",
    );
    // Unknown resources and group versions.
    refused(
        request(
            &s,
            "GET",
            "/apis/apps/v2/deployments",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    refused(
        request(
            &s,
            "GET",
            "/api/v1/namespaces/input/widgets",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    // A body over kube-apiserver's 3 MiB limit.
    let huge = json!({"metadata": {"name": "huge"}, "data": {"k": "x".repeat(4 * 1024 * 1024)}});
    refused(
        post(&s, CMS, &huge),
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    // Invalid names, with kube-apiserver's wording and the field's cause.
    let (code, status) = post(&s, CMS, &json!({"metadata": {"name": "Not_Valid"}}));
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        "ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value: \"Not_Valid\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    // A deployment whose selector does not match its template, and negative replicas.
    let (code, status) = post(
        &s,
        "/apis/apps/v1/namespaces/input/deployments",
        &json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        }),
    );
    assert_eq!(code, 422, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("Deployment.apps \"web\" is invalid: ["),
        "{message}"
    );
    assert!(
        message.contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{message}"
    );
    assert!(
        message.contains("`selector` does not match template `labels`"),
        "{message}"
    );
    // A namespace that does not exist.
    refused(
        post(
            &s,
            "/api/v1/namespaces/nowhere/configmaps",
            &json!({"metadata": {"name": "a"}}),
        ),
        404,
        "NotFound",
        "namespaces \"nowhere\" not found",
    );
    assert!(stored_names(&s).is_empty(), "nothing was stored");

    // A patch that does not apply changes nothing.
    let (code, _) = post(
        &s,
        CMS,
        &json!({"metadata": {"name": "kept"}, "data": {"k": "v"}}),
    );
    assert_eq!(code, 201);
    let path = format!("{CMS}/kept");
    refused(
        request(
            &s,
            "PATCH",
            &path,
            "application/json-patch+json",
            br#"[{"op":"test","path":"/data/k","value":"other"},{"op":"remove","path":"/data/k"}]"#,
        ),
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    refused(
        request(
            &s,
            "PATCH",
            &path,
            "application/json-patch+json",
            br#"{"op":"remove"}"#,
        ),
        400,
        "BadRequest",
        "",
    );
    refused(
        request(
            &s,
            "PATCH",
            &path,
            "application/strategic-merge-patch+json",
            br#"{"data": {"k": 5}}"#,
        ),
        400,
        "BadRequest",
        "ConfigMap",
    );
    refused(
        request(&s, "PATCH", &path, "text/plain", b"{}"),
        415,
        "UnsupportedMediaType",
        "",
    );
    let (_, kept) = request(&s, "GET", &path, "application/json", b"");
    assert_eq!(kept["data"], json!({"k": "v"}));
    assert_eq!(stored_names(&s), ["kept"]);
}
