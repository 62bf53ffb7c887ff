//! `?watch=1`: a stream of JSON watch events (`{"type":"ADDED","object":{...}}`, one per line)
//! fed by the resource's shared store watch ([`crate::fanout`]).
//!
//! From resourceVersion "" or "0", the stream starts with the current objects as ADDED (what
//! kube-apiserver's watch cache gives); with `sendInitialEvents=true` that is followed by a
//! BOOKMARK annotated `k8s.io/initial-events-end`. From a resourceVersion below the compacted
//! revision it is one ERROR event, 410 Expired, as kube-apiserver. Store progress notifications,
//! asked for every [`crate::fanout::PROGRESS_EVERY`], become BOOKMARK events when the client allows them.

use std::convert::Infallible;
use std::time::Duration;

use ballast_proto::mvccpb;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::conversion;
use super::error::ApiError;
use super::handlers::matches;
use super::objects::with_version;
use super::path::Target;
use super::query::Query;
use super::resources::ResourceInfo;
use super::selector::{FieldSelector, LabelSelector};
use super::Api;
use crate::storage::StorageError;

/// Events buffered for a slow client before the watch waits for it.
const BUFFER: usize = 256;

/// How a watch's objects are shown when not as themselves: as one-row Tables (`kubectl get -w`).
pub type Render = Box<dyn Fn(Value) -> Value + Send + Sync>;

struct Sink {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    render: Option<Render>,
}

impl Sink {
    /// False once the client has gone.
    async fn send(&self, kind: &str, object: Value) -> bool {
        let object = match &self.render {
            Some(render) if matches!(kind, "ADDED" | "MODIFIED" | "DELETED") => render(object),
            _ => object,
        };
        let json = serde_json::to_vec(&object).expect("JSON encodes");
        self.line(kind, &json).await
    }

    /// A store event's object, encoded once for every watch that shows objects as they are.
    async fn send_derived(&self, kind: &str, derived: &Derived) -> bool {
        match (&self.render, &derived.json) {
            (None, Some(json)) => self.line(kind, json).await,
            (_, _) => match &derived.object {
                Some(object) => self.send(kind, object.clone()).await,
                None => true,
            },
        }
    }

    async fn line(&self, kind: &str, object: &[u8]) -> bool {
        let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }

    async fn error(&self, err: &ApiError) -> bool {
        self.send("ERROR", err.status()).await
    }
}

/// The error that ends a watch from `rv`: 410 Expired when its history is compacted away.
fn ended(rv: i64, e: StorageError) -> ApiError {
    match e {
        StorageError::Compacted { compact_revision } if compact_revision > 0 => ApiError::Gone(
            format!("too old resource version: {rv} ({compact_revision})"),
        ),
        StorageError::Compacted { .. } => ApiError::Gone(format!("too old resource version: {rv}")),
        e => ApiError::from(e),
    }
}

impl Api {
    /// Starts the watch; its events arrive on the returned channel until the client goes, the
    /// timeout passes, or the history it needs is gone.
    pub async fn watch(
        &self,
        target: &Target,
        query: &Query,
        render: Option<Render>,
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
            let namespace = target.namespace.as_deref();
            let plural = target.resource.plural;
            let mut events = match api
                .watches
                .subscribe(&api.registry, plural, namespace, after)
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    sink.error(&ended(after, e)).await;
                    return;
                }
            };
            loop {
                let batch = tokio::select! {
                    batch = events.next() => batch,
                    () = sink.tx.closed() => return,
                };
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(e) => {
                        sink.error(&ended(after, e)).await;
                        return;
                    }
                };
                if batch.events.is_empty() {
                    // A bookmark also when nothing changed: it tells the client the watch is
                    // alive and its resourceVersion still good (kube-apiserver sends them about
                    // once a minute either way).
                    if bookmarks {
                        let mark = json!({
                            "kind": target.resource.kind,
                            "apiVersion": target.resource.api_version(),
                            "metadata": { "resourceVersion": batch.revision.to_string() },
                        });
                        if !sink.send("BOOKMARK", mark).await {
                            return;
                        }
                    }
                } else {
                    let info = target.resource;
                    for event in &batch.events {
                        let derived = event.memo((info.group, info.version), |e| derive(info, e));
                        let Some(kind) = derived.kind(&labels, &fields) else {
                            continue;
                        };
                        if !sink.send_derived(kind, &derived).await {
                            return;
                        }
                    }
                }
                after = batch.revision;
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

fn object_of(info: &ResourceInfo, kv: &mvccpb::KeyValue, revision: i64) -> Option<Value> {
    serde_json::from_slice(&kv.value)
        .ok()
        .map(|v| with_version(conversion::served(info, v), revision))
}

/// What every watch of one served version makes of a store event: made once per event and
/// shared ([`crate::fanout::Event::memo`]), so that watches cost a selector match and a copy.
#[derive(Debug)]
struct Derived {
    deleted: bool,
    /// A put's object before it, as served; None if it is new.
    prev: Option<Value>,
    /// The object after the event; for a delete, as it was last, at the revision of its
    /// deletion.
    object: Option<Value>,
    /// `object` as JSON, for the watches that show objects as they are.
    json: Option<Vec<u8>>,
    /// The event starts the object (no earlier version of it).
    created: bool,
}

fn derive(info: &ResourceInfo, event: &mvccpb::Event) -> Derived {
    let kv = event.kv.as_ref();
    let deleted = event.r#type == mvccpb::event::EventType::Delete as i32;
    let (prev, object) = match kv {
        None => (None, None),
        Some(kv) if deleted => (
            None,
            event
                .prev_kv
                .as_ref()
                .and_then(|p| object_of(info, p, kv.mod_revision)),
        ),
        Some(kv) => (
            event
                .prev_kv
                .as_ref()
                .and_then(|p| object_of(info, p, p.mod_revision)),
            object_of(info, kv, kv.mod_revision),
        ),
    };
    let json = object
        .as_ref()
        .map(|o| serde_json::to_vec(o).expect("JSON encodes"));
    Derived {
        deleted,
        created: kv.is_some_and(|kv| kv.create_revision == kv.mod_revision),
        prev,
        object,
        json,
    }
}

impl Derived {
    /// The watch event a client of these selectors sees, if any: an object that starts
    /// matching is ADDED, one that stops matching is DELETED (kube-apiserver's filtering).
    fn kind(&self, labels: &LabelSelector, fields: &FieldSelector) -> Option<&'static str> {
        let object = self.object.as_ref()?;
        let is = matches(labels, fields, object);
        if self.deleted {
            return is.then_some("DELETED");
        }
        let was = self
            .prev
            .as_ref()
            .is_some_and(|p| matches(labels, fields, p));
        match (was, is) {
            (_, true) if self.created || self.prev.is_none() => Some("ADDED"),
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }
}
