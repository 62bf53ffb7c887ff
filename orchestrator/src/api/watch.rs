//! `?watch=1`: a stream of JSON watch events (`{"type":"ADDED","object":{...}}`, one per line)
//! fed by a store watch on the resource's prefix.
//!
//! From resourceVersion "" or "0", the stream starts with the current objects as ADDED (what
//! kube-apiserver's watch cache gives); with `sendInitialEvents=true` that is followed by a
//! BOOKMARK annotated `k8s.io/initial-events-end`. From a resourceVersion below the compacted
//! revision it is one ERROR event, 410 Expired, as kube-apiserver. Store progress notifications,
//! asked for every `PROGRESS_EVERY`, become BOOKMARK events when the client allows them. A store
//! watch that breaks (its endpoint went away) is opened again from the last revision sent.

use std::convert::Infallible;
use std::time::Duration;

use ballast_proto::mvccpb;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::error::ApiError;
use super::handlers::matches;
use super::objects::with_version;
use super::path::Target;
use super::query::Query;
use super::selector::{FieldSelector, LabelSelector};
use super::Api;
use crate::registry::list_prefix;
use crate::storage::StorageError;

/// How often the store is asked for progress (the source of bookmarks).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Events buffered for a slow client before the watch waits for it.
const BUFFER: usize = 256;

/// How a watch's objects are shown: as themselves, or as one-row Tables (`kubectl get -w`).
pub type Render = Box<dyn Fn(Value) -> Value + Send + Sync>;

struct Sink {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    render: Render,
}

impl Sink {
    /// False once the client has gone.
    async fn send(&self, kind: &str, object: Value) -> bool {
        let object = if matches!(kind, "ADDED" | "MODIFIED" | "DELETED") {
            (self.render)(object)
        } else {
            object
        };
        let mut line =
            serde_json::to_vec(&json!({ "type": kind, "object": object })).expect("JSON encodes");
        line.push(b'\n');
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }

    async fn error(&self, err: &ApiError) -> bool {
        self.send("ERROR", err.status()).await
    }
}

fn too_old(rv: i64, compacted: i64) -> ApiError {
    if compacted > 0 {
        ApiError::Gone(format!("too old resource version: {rv} ({compacted})"))
    } else {
        ApiError::Gone(format!("too old resource version: {rv}"))
    }
}

impl Api {
    /// Starts the watch; its events arrive on the returned channel until the client goes, the
    /// timeout passes, or the history it needs is gone.
    pub async fn watch(
        &self,
        target: &Target,
        query: &Query,
        render: Render,
    ) -> Result<mpsc::Receiver<Result<Bytes, Infallible>>, ApiError> {
        let info = target.resource;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
        fields.check_supported(info.plural)?;
        let bookmarks = query.flag("allowWatchBookmarks");
        let initial_events = query.flag("sendInitialEvents");
        let start = query.resource_version()?;
        let timeout = query
            .int("timeoutSeconds")?
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64));
        let (tx, rx) = mpsc::channel(BUFFER);
        let sink = Sink { tx, render };
        let api = self.clone();
        let target = target.clone();
        let task = async move {
            let prefix = list_prefix(target.resource.plural, target.namespace.as_deref());
            let mut after = match start {
                Some(rv) if !initial_events => rv,
                _ => {
                    // The current state first, as ADDED events.
                    let listed = match api.list(&target, &Query::default()).await {
                        Ok(listed) => listed,
                        Err(e) => {
                            sink.error(&e).await;
                            return;
                        }
                    };
                    let (items, meta) = listed;
                    for item in items {
                        if matches(&labels, &fields, &item) && !sink.send("ADDED", item).await {
                            return;
                        }
                    }
                    let rv: i64 = meta["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if initial_events && bookmarks {
                        let mark = json!({
                            "kind": target.resource.kind,
                            "apiVersion": target.resource.api_version(),
                            "metadata": {
                                "resourceVersion": rv.to_string(),
                                "annotations": { "k8s.io/initial-events-end": "true" },
                            },
                        });
                        if !sink.send("BOOKMARK", mark).await {
                            return;
                        }
                    }
                    rv
                }
            };
            loop {
                let mut stream = match api.registry.watch(&prefix, after).await {
                    Ok(stream) => stream,
                    Err(StorageError::Compacted { compact_revision }) => {
                        sink.error(&too_old(after, compact_revision)).await;
                        return;
                    }
                    Err(e) => {
                        sink.error(&ApiError::from(e)).await;
                        return;
                    }
                };
                let mut progress = tokio::time::interval(PROGRESS_EVERY);
                progress.tick().await;
                loop {
                    let resp = tokio::select! {
                        resp = stream.next() => resp,
                        _ = progress.tick() => {
                            stream.request_progress();
                            continue;
                        }
                        () = sink.tx.closed() => return,
                    };
                    let resp = match resp {
                        Some(Ok(resp)) => resp,
                        Some(Err(StorageError::Compacted { compact_revision })) => {
                            sink.error(&too_old(after, compact_revision)).await;
                            return;
                        }
                        // The store's stream broke: open it again from where this one was.
                        Some(Err(_)) | None => break,
                    };
                    if resp.events.is_empty() {
                        let revision = resp.header.map_or(0, |h| h.revision);
                        // A bookmark also when nothing changed: it tells the client the
                        // watch is alive and its resourceVersion still good (kube-apiserver
                        // sends them about once a minute either way).
                        if bookmarks && revision >= after {
                            after = revision;
                            let mark = json!({
                                "kind": target.resource.kind,
                                "apiVersion": target.resource.api_version(),
                                "metadata": { "resourceVersion": revision.to_string() },
                            });
                            if !sink.send("BOOKMARK", mark).await {
                                return;
                            }
                        }
                        continue;
                    }
                    for event in resp.events {
                        let Some((kind, object)) = translate(&event, &labels, &fields) else {
                            continue;
                        };
                        if !sink.send(kind, object).await {
                            return;
                        }
                    }
                    after = after.max(resp.header.map_or(0, |h| h.revision));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::spawn(async move {
            match timeout {
                Some(t) => {
                    let _ = tokio::time::timeout(t, task).await;
                }
                None => task.await,
            }
        });
        Ok(rx)
    }
}

fn object_of(kv: &mvccpb::KeyValue, revision: i64) -> Option<Value> {
    serde_json::from_slice(&kv.value)
        .ok()
        .map(|v| with_version(v, revision))
}

/// A store event as the watch event a client of these selectors sees, if any: an object that
/// starts matching is ADDED, one that stops matching is DELETED (kube-apiserver's filtering).
fn translate(
    event: &mvccpb::Event,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Option<(&'static str, Value)> {
    let kv = event.kv.as_ref()?;
    let prev = event
        .prev_kv
        .as_ref()
        .and_then(|p| object_of(p, p.mod_revision));
    let was = prev.as_ref().is_some_and(|p| matches(labels, fields, p));
    if event.r#type == mvccpb::event::EventType::Delete as i32 {
        // A deleted object is shown as it was last, at the revision of its deletion.
        let last = event
            .prev_kv
            .as_ref()
            .and_then(|p| object_of(p, kv.mod_revision))?;
        return was.then_some(("DELETED", last));
    }
    let object = object_of(kv, kv.mod_revision)?;
    let is = matches(labels, fields, &object);
    match (was, is) {
        (_, true) if kv.create_revision == kv.mod_revision || prev.is_none() => {
            Some(("ADDED", object))
        }
        (true, true) => Some(("MODIFIED", object)),
        (false, true) => Some(("ADDED", object)),
        (true, false) => Some(("DELETED", object)),
        (false, false) => None,
    }
}
