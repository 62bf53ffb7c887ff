//! The HTTP endpoints served beside gRPC on the client port: `/health` (etcd's JSON) and
//! `/metrics` (Prometheus text, with the names etcd's operators already graph).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::member::Member;

pub fn router(member: Member) -> Router {
    let health_node = member.clone();
    Router::new()
        .route("/health", get(move || health(health_node.clone())))
        .route("/metrics", get(move || metrics(member.clone())))
}

async fn health(member: Member) -> impl IntoResponse {
    // etcd 3.4 reports unhealthy with an active alarm or without a leader.
    let healthy =
        member.is_running() && !member.has_alarm() && member.raft_status().leader.is_some();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if healthy {
        r#"{"health":"true"}"#
    } else {
        r#"{"health":"false"}"#
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(member: Member) -> impl IntoResponse {
    let body = render(&member);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub fn render(member: &Member) -> String {
    let m = member.metrics();
    let store = member.store().status();
    let watch = member.store().watch_stats();
    let mut out = String::new();
    let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let raft = member.raft_status();
    let replica = member.replica();
    gauge(
        "etcd_server_has_leader",
        "gauge",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        f64::from(u8::from(raft.leader.is_some())),
    );
    gauge(
        "etcd_server_is_leader",
        "gauge",
        "Whether or not this member is a leader.",
        f64::from(u8::from(replica.is_leader())),
    );
    gauge(
        "etcd_server_leader_changes_seen_total",
        "counter",
        "The number of leader changes seen.",
        replica.leader_changes() as f64,
    );
    gauge(
        "etcd_server_proposals_committed_total",
        "gauge",
        "The total number of consensus proposals committed.",
        raft.commit_index as f64,
    );
    gauge(
        "etcd_server_proposals_applied_total",
        "gauge",
        "The total number of consensus proposals applied.",
        raft.applied_index as f64,
    );
    gauge(
        "etcd_server_proposals_pending",
        "gauge",
        "The current number of pending proposals to commit.",
        m.proposals_pending.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "etcd_server_proposals_failed_total",
        "counter",
        "The total number of failed proposals seen.",
        m.proposals_failed.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        "gauge",
        "Total size of the underlying database physically allocated in bytes.",
        store.size_bytes as f64,
    );
    gauge(
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "gauge",
        "Total size of the underlying database logically in use in bytes.",
        store.size_bytes as f64,
    );
    gauge(
        "etcd_debugging_mvcc_current_revision",
        "gauge",
        "The current revision of store.",
        store.revision as f64,
    );
    gauge(
        "etcd_debugging_mvcc_compact_revision",
        "gauge",
        "The revision of the last compaction in store.",
        store.compact_revision as f64,
    );
    gauge(
        "etcd_debugging_mvcc_watcher_total",
        "gauge",
        "Total number of watchers.",
        watch.watchers as f64,
    );
    gauge(
        "etcd_debugging_mvcc_slow_watcher_total",
        "gauge",
        "Total number of unsynced slow watchers.",
        watch.unsynced as f64,
    );
    let rm = replica.metrics();
    rm.apply_seconds.render(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend (one state-machine batch).",
        &mut out,
    );
    rm.wal_fsync_seconds.render(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL (one raft log sync).",
        &mut out,
    );
    rm.appends_per_sync.render(
        "ballast_raft_appends_per_sync",
        "Log appends made durable by one sync (group commit).",
        &mut out,
    );
    rm.entries_per_apply.render(
        "ballast_server_commit_batch_size",
        "Log entries applied per state-machine batch.",
        &mut out,
    );
    rm.writes_per_forward.render(
        "ballast_raft_writes_per_forward",
        "Writes a follower forwarded to the leader in one RPC.",
        &mut out,
    );
    out
}
