//! The Kubernetes REST API: discovery, resources, and the request path from HTTP to the registry.
//!
//! A request goes: [`router`] (axum) -> [`dispatch`], which reads the path as a [`path::Route`]
//! and the verb from the method and query -> a verb of [`Api`] in `handlers` (or `watch`) ->
//! the [`Registry`] -> the storage seam. Answers are JSON (objects, lists, or Tables when kubectl
//! asks for them); every failure is an [`error::ApiError`] answered as a `Status` by one function.
//! TLS and authentication (a later issue) will sit in front of `dispatch`, on the listener.

pub mod admission;
pub mod conversion;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod kubernetes_service;
pub mod lifecycle;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod path;
pub mod protobuf;
pub mod query;
pub mod resources;
pub mod selector;
pub mod services;
pub mod subresources;
pub mod table;
pub mod validation;
pub mod warnings;
pub mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::clock::Clock;
use crate::fanout::Fanout;
use crate::registry::Registry;
use error::ApiError;
use path::{Discovery, Route, Target};
use query::Query;
use services::ServiceRanges;

/// The largest request body accepted (kube-apiserver's `MaxRequestBodyBytes`, 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The API server's state: where objects are kept, the watches on them, and the clock.
#[derive(Debug, Clone)]
pub struct Api {
    pub registry: Registry,
    /// One store watch per resource, fanned out to the API's watches.
    pub watches: Arc<Fanout>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Where Services' cluster IPs and node ports come from.
    pub services: Arc<ServiceRanges>,
    /// Where clients reach this server, for the `kubernetes` Service's endpoints (None: no
    /// such Service, as in tests of the API alone).
    pub advertise: Option<std::net::SocketAddr>,
    /// The DefaultTolerationSeconds admission's flags.
    pub tolerations: admission::DefaultTolerations,
}

impl Api {
    pub fn new(registry: Registry, clock: Arc<dyn Clock>) -> Self {
        Self {
            registry,
            watches: Arc::default(),
            clock,
            metrics: Arc::default(),
            services: Arc::default(),
            advertise: None,
            tolerations: admission::DefaultTolerations::default(),
        }
    }
}

/// Every route of the API server.
pub fn router(api: Api) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { json_response(StatusCode::OK, &discovery::version()) }),
        )
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .route(
            "/openapi/v3",
            get(|| async { json_response(StatusCode::OK, &openapi::v3_root()) }),
        )
        .route("/openapi/v3/{*path}", get(openapi_document))
        .fallback(dispatch)
        .with_state(api)
}

async fn health() -> &'static str {
    "ok"
}

/// Ready when the store answers.
async fn ready(State(api): State<Api>) -> Response {
    match api.registry.current_revision().await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("[-]etcd failed: {e}\nreadyz check failed"),
        )
            .into_response(),
    }
}

/// One group version's OpenAPI v3 document, as kube-openapi serves it: addressed by content hash
/// (a stale hash is redirected to the current one) and cacheable for good.
async fn openapi_document(
    axum::extract::Path(path): axum::extract::Path<String>,
    uri: Uri,
) -> Response {
    let Some(doc) = openapi::v3_document(&path) else {
        return error_response(&ApiError::NoSuchPath);
    };
    let asked = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("hash=")));
    let etag = format!("\"{}\"", doc.hash);
    match asked {
        Some(hash) if hash != doc.hash => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, doc.server_relative_url())],
        )
            .into_response(),
        Some(_) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::ETAG, etag),
                (header::CACHE_CONTROL, "public, immutable".to_string()),
            ],
            doc.body.clone(),
        )
            .into_response(),
        None => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::ETAG, etag),
            ],
            doc.body.clone(),
        )
            .into_response(),
    }
}

async fn render_metrics(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        api.metrics.render(),
    )
        .into_response()
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).expect("JSON encodes");
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(err: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.status(),
    )
}

/// Whether the client asked for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
/// The aggregated discovery version the client asks for, if any.
fn aggregated_discovery(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(discovery::aggregated_version)
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.contains("as=Table")))
}

/// The verb kube-apiserver would name this request with (metrics, and audit later).
fn verb(method: &Method, target: &Target, query: &Query) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", true) => "GET",
        ("GET", false) if query.flag("watch") => "WATCH",
        ("GET", false) => "LIST",
        ("POST", _) => "POST",
        ("PUT", _) => "PUT",
        ("PATCH", _) => "PATCH",
        ("DELETE", true) => "DELETE",
        ("DELETE", false) => "DELETECOLLECTION",
        _ => "OTHER",
    }
}

async fn dispatch(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let route = path::route(uri.path());
    let target = match route {
        Route::Discovery(which) => {
            if let (Discovery::CoreVersions | Discovery::Groups, Some(version), &Method::GET) =
                (&which, aggregated_discovery(&headers), &method)
            {
                let doc = discovery::aggregated(matches!(which, Discovery::CoreVersions), version);
                let media = discovery::aggregated_media_type(version);
                let body = serde_json::to_vec(&doc).expect("a JSON value encodes");
                return (StatusCode::OK, [(header::CONTENT_TYPE, media)], body).into_response();
            }
            return match discovery::document(&which) {
                Some(doc) if method == Method::GET => json_response(StatusCode::OK, &doc),
                Some(_) => error_response(&ApiError::MethodNotAllowed),
                None => error_response(&ApiError::NoSuchPath),
            };
        }
        Route::Unknown => return error_response(&ApiError::NoSuchPath),
        Route::Resource(target) => target,
    };
    let query = match Query::parse(uri.query()) {
        Ok(q) => q,
        Err(e) => return error_response(&e),
    };
    let verb = verb(&method, &target, &query);
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return error_response(&ApiError::TooLarge(format!(
                "Request entity too large: limit is {MAX_BODY_BYTES}"
            )))
        }
    };
    let (response, warned) =
        warnings::collect(answer(&api, &method, &target, &query, &headers, body)).await;
    let code = match &response {
        Ok(_) => 200,
        Err(e) => e.code(),
    };
    api.metrics.observe(
        verb,
        target.resource,
        target.subresource.as_deref(),
        code,
        started.elapsed(),
    );
    let mut response = match response {
        Ok(response) => response,
        Err(e) => error_response(&e),
    };
    for text in warned {
        if let Some(value) = warnings::header(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

async fn answer(
    api: &Api,
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let table = wants_table(headers);
    let info = target.resource;
    let include = if table {
        table::IncludeObject::parse(query.get("includeObject").unwrap_or(""))?
    } else {
        table::IncludeObject::Metadata
    };
    let render_one = |object: Value| -> Value {
        if table {
            table::table(
                info.group,
                info.plural,
                &[object],
                api.clock.now(),
                include,
                serde_json::json!({}),
            )
        } else {
            object
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let name = target.name.clone();
    match (method.as_str(), name, target.subresource.as_deref()) {
        ("GET", Some(name), _) => Ok(json_response(
            StatusCode::OK,
            &render_one(api.get(target, &name).await?),
        )),
        ("GET", None, _) if query.flag("watch") => {
            let clock = api.clock.clone();
            let render: Option<watch::Render> = if table {
                Some(Box::new(move |object| {
                    table::table(
                        info.group,
                        info.plural,
                        &[object],
                        clock.now(),
                        include,
                        serde_json::json!({}),
                    )
                }))
            } else {
                None
            };
            let rx = api.watch(target, query, render).await?;
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::TRANSFER_ENCODING, "chunked"),
                ],
                Body::from_stream(stream),
            )
                .into_response())
        }
        ("GET", None, _) => {
            let (items, meta) = api.list(target, query).await?;
            let out = if table {
                table::table(
                    info.group,
                    info.plural,
                    &items,
                    api.clock.now(),
                    include,
                    meta,
                )
            } else {
                handlers::list_object(info, items, meta)
            };
            Ok(json_response(StatusCode::OK, &out))
        }
        ("POST", None, None) => {
            let body = json_body(&content_type, body)?;
            Ok(json_response(
                StatusCode::CREATED,
                &render_one(api.create(target, &body, query).await?),
            ))
        }
        ("POST", Some(name), Some("binding")) => {
            let body = json_body(&content_type, body)?;
            Ok(json_response(
                StatusCode::CREATED,
                &api.bind(target, &name, &body).await?,
            ))
        }
        ("PUT", Some(name), _) => {
            let body = json_body(&content_type, body)?;
            Ok(json_response(
                StatusCode::OK,
                &render_one(api.update(target, &name, &body, query).await?),
            ))
        }
        ("PATCH", Some(name), _) => Ok(json_response(
            StatusCode::OK,
            &render_one(
                api.patch(target, &name, &content_type, &body, query)
                    .await?,
            ),
        )),
        ("DELETE", Some(name), None) => {
            let query = query.with_delete_options(&json_body(&content_type, body)?)?;
            Ok(json_response(
                StatusCode::OK,
                &api.delete(target, &name, &query).await?,
            ))
        }
        ("DELETE", None, None) => {
            let query = query.with_delete_options(&json_body(&content_type, body)?)?;
            Ok(json_response(
                StatusCode::OK,
                &api.delete_collection(target, &query).await?,
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// A create or update body as JSON: JSON as sent, and kube's protobuf (what kubectl's typed
/// clients send: `kubectl create namespace|configmap|deployment ...`) as the JSON object it
/// encodes; YAML is refused by name.
fn json_body(content_type: &str, body: Bytes) -> Result<Bytes, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => Ok(body),
        protobuf::MEDIA_TYPE => {
            let object =
                protobuf::decode(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Ok(serde_json::to_vec(&object)
                .expect("a JSON value encodes")
                .into())
        }
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "application/json, {}",
            protobuf::MEDIA_TYPE
        ))),
    }
}
