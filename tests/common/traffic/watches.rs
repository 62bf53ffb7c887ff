//! The traffic's watchers and compactor: watches on the keyspace that follow it across member
//! failures (a record spanning reconnects), and compaction behind them.

use std::sync::Arc;
use std::time::Duration;

use ballast_check::history::{EventKind, Watch, WatchEvent};
use ballast_proto::mvccpb;
use ballast_proto::pb;
use ballast_proto::pb::kv_client::KvClient;
use ballast_proto::pb::watch_client::WatchClient;
use rand::rngs::StdRng;
use rand::Rng;

use super::{to_kv, Shared, PREFIX, PREFIX_END};
use crate::common::grpc;

/// The current revision as some member reports it (None if none answers now).
async fn current_revision(shared: &Shared, member: usize) -> Option<i64> {
    let mut kv = KvClient::new(shared.channel(member));
    tokio::time::timeout(Duration::from_secs(1), grpc::current_revision(&mut kv))
        .await
        .ok()?
}

/// Compacts to `revision - compact_lag` every `every`; returns how many compactions succeeded.
pub(super) async fn compactor(shared: Arc<Shared>, every: Duration) -> usize {
    let (mut done, mut member, mut last) = (0, 0, 0);
    while !shared.stopped() {
        tokio::time::sleep(every).await;
        member += 1;
        let Some(rev) = current_revision(&shared, member).await else {
            continue;
        };
        let target = rev - shared.config.compact_lag;
        if target <= last {
            continue;
        }
        let req = pb::CompactionRequest {
            revision: target,
            physical: false,
        };
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_secs(2),
            KvClient::new(shared.channel(member)).compact(req),
        )
        .await
        {
            last = target;
            done += 1;
        }
    }
    done
}

/// Keeps one watch on the keyspace open: created from a random recent revision on some member;
/// when its stream breaks, resumed from the revision after its last event on the next member, so
/// a `Watch` record spans reconnects (the checker then finds any gap or duplicate a reconnect
/// caused). A watch cancelled because its start was compacted is recorded and replaced. Returns
/// once it has delivered `final_rx`'s revision (after `stop`).
pub(super) async fn watcher(
    shared: Arc<Shared>,
    w: usize,
    mut rng: StdRng,
    final_rx: tokio::sync::watch::Receiver<i64>,
) -> Vec<Watch> {
    let mut done = Vec::new();
    let mut member = w;
    let mut current: Option<Watch> = None;
    loop {
        let final_rev = *final_rx.borrow();
        if final_rev > 0 {
            let last = current
                .as_ref()
                .and_then(|c| c.events.last())
                .map_or(0, |e| e.kv.mod_revision);
            if last >= final_rev {
                break;
            }
        }
        // Where to (re)start: after the last event, or a random recent revision for a new watch.
        let start = match &current {
            Some(c) => c
                .events
                .last()
                .map_or(c.start_revision, |e| e.kv.mod_revision + 1),
            None => match current_revision(&shared, member).await {
                Some(rev) if rng.gen_bool(0.8) => (rev - rng.gen_range(0..300)).max(1),
                Some(_) => 0,
                None => {
                    member += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let cur = current.get_or_insert_with(|| Watch {
            start: PREFIX.into(),
            end: PREFIX_END.into(),
            start_revision: start,
            events: Vec::new(),
            compacted: None,
        });
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: PREFIX.into(),
                    range_end: PREFIX_END.into(),
                    start_revision: start,
                    ..Default::default()
                },
            )),
        };
        // A watch stream outlives any request timeout: its own channel, without one.
        let endpoint = &shared.endpoints[member % shared.endpoints.len()];
        let channel = grpc::client_channel(endpoint, None);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(create).await.unwrap();
        let stream = match WatchClient::new(channel)
            .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(s) => s.into_inner(),
            Err(_) => {
                member += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ended = follow(stream, cur, final_rx.clone()).await;
        drop(tx);
        match ended {
            Followed::Compacted(rev) => {
                let mut finished = current.take().unwrap();
                if finished.events.is_empty() {
                    finished.compacted = Some(rev);
                }
                done.push(finished);
            }
            Followed::Broken => {
                member += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Followed::Reached => break,
        }
    }
    done.extend(current);
    done
}

enum Followed {
    /// The server cancelled the watch: its start revision was compacted.
    Compacted(i64),
    /// The stream ended or failed (member down, connection lost).
    Broken,
    /// The watch delivered the final write.
    Reached,
}

/// Appends a watch stream's events to `watch` until it breaks, is cancelled, or delivers the
/// final revision.
async fn follow(
    mut stream: tonic::Streaming<pb::WatchResponse>,
    watch: &mut Watch,
    mut final_rx: tokio::sync::watch::Receiver<i64>,
) -> Followed {
    loop {
        let reached = |watch: &Watch, final_rev: i64| {
            final_rev > 0
                && watch
                    .events
                    .last()
                    .is_some_and(|e| e.kv.mod_revision >= final_rev)
        };
        if reached(watch, *final_rx.borrow()) {
            return Followed::Reached;
        }
        let msg = tokio::select! {
            msg = stream.message() => msg,
            _ = final_rx.changed() => continue,
        };
        let resp = match msg {
            Ok(Some(resp)) => resp,
            Ok(None) | Err(_) => return Followed::Broken,
        };
        if resp.compact_revision > 0 {
            return Followed::Compacted(resp.compact_revision);
        }
        if resp.canceled {
            return Followed::Broken;
        }
        for e in &resp.events {
            let Some(kv) = &e.kv else { continue };
            let kind = if e.r#type == mvccpb::event::EventType::Delete as i32 {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            watch.events.push(WatchEvent {
                kind,
                kv: to_kv(kv),
            });
        }
    }
}
