//! Serving a member: gRPC and HTTP on every client URL, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use ballast_proto::pb;
use ballast_raft::peer_service::PeerService;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::service::Routes;
use tonic::Status;

use crate::auth::AuthService;
use crate::authority::FixAuthority;

use crate::cluster::ClusterService;
use crate::compaction::AutoCompaction;
use crate::election::ElectionService;
use crate::error::OpenError;
use crate::kv::KvService;
use crate::lease::LeaseService;
use crate::lock::LockService;
use crate::maintenance::MaintenanceService;
use crate::member::Member;
use crate::watch::WatchService;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen_client_urls: Vec<String>,
    /// Where peers reach this member's raft (`ballast.raft.Peer`).
    pub listen_peer_urls: Vec<String>,
    pub watch_progress_interval: Duration,
    pub auto_compaction: AutoCompaction,
}

/// gRPC's receive limit sits above the request limit, so that an oversized request is answered
/// with etcd's "request is too large" rather than a transport error (etcd adds 512 KiB too).
const GRPC_OVERHEAD: usize = 512 * 1024;

/// "http://host:port" (or "host:port") to a socket address; "localhost" is 127.0.0.1.
pub fn parse_listen_url(url: &str) -> Result<SocketAddr, OpenError> {
    let bad = || {
        OpenError::Config(format!(
            "cannot listen on {url:?}: expected http://host:port"
        ))
    };
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.starts_with("https://") || url.starts_with("unix") {
        return Err(OpenError::Config(format!(
            "cannot listen on {url:?}: only http:// URLs are supported"
        )));
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host.trim_start_matches('[').trim_end_matches(']')
    };
    let ip = host.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

/// The router with every service of a member.
pub fn routes(member: &Member, opts: &ServeOptions) -> Routes {
    let limit = member.options().max_request_bytes + GRPC_OVERHEAD;
    let kv = pb::kv_server::KvServer::new(KvService::new(member.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let watch = pb::watch_server::WatchServer::new(WatchService::new(
        member.clone(),
        opts.watch_progress_interval,
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(usize::MAX);
    let lease = pb::lease_server::LeaseServer::new(LeaseService::new(member.clone()))
        .max_decoding_message_size(limit);
    let cluster = pb::cluster_server::ClusterServer::new(ClusterService::new(member.clone()))
        .max_decoding_message_size(limit);
    let maintenance =
        pb::maintenance_server::MaintenanceServer::new(MaintenanceService::new(member.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX);
    let auth = pb::auth_server::AuthServer::new(AuthService::new(member.clone()))
        .max_decoding_message_size(limit);
    Routes::from(crate::http::router(member.clone()))
        .add_service(kv)
        .add_service(watch)
        .add_service(lease)
        .add_service(cluster)
        .add_service(maintenance)
        .add_service(auth)
        .add_service(
            ballast_proto::v3lockpb::lock_server::LockServer::new(LockService::new(member.clone()))
                .max_decoding_message_size(limit),
        )
        .add_service(
            ballast_proto::v3electionpb::election_server::ElectionServer::new(
                ElectionService::new(member.clone()),
            )
            .max_decoding_message_size(limit),
        )
}

/// A request over the gRPC receive limit is refused by tonic with OutOfRange, "Error, decoded
/// message length too large: found N bytes, the limit is: M bytes"; etcd's gRPC-Go server says
/// ResourceExhausted, "grpc: received message larger than max (N vs. M)", and Go clients treat the
/// two codes differently (OutOfRange is what a compacted revision gets). The refusal of a unary
/// request is a trailers-only response, its status in the headers: this rewrites that one.
fn as_grpc_go_size_refusal<B>(mut resp: http::Response<B>) -> http::Response<B> {
    // Most responses say 0 (or nothing) here: only an OutOfRange is decoded.
    const OUT_OF_RANGE: &[u8] = b"11";
    let headers = resp.headers_mut();
    if headers.get("grpc-status").map(|v| v.as_bytes()) != Some(OUT_OF_RANGE) {
        return resp;
    }
    let Some((found, limit)) =
        Status::from_header_map(headers).and_then(|s| tonic_size_refusal(s.message()))
    else {
        return resp;
    };
    let refusal = Status::resource_exhausted(format!(
        "grpc: received message larger than max ({found} vs. {limit})"
    ));
    if let Err(err) = refusal.add_header(headers) {
        tracing::warn!(%err, "could not rewrite an oversized request's refusal");
    }
    resp
}

/// The sizes in tonic's refusal of an oversized message, if that is what `message` is.
fn tonic_size_refusal(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

/// Accepted connections, with Nagle off and the `:authority` fix-up in front of h2.
fn incoming(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<FixAuthority<tokio::net::TcpStream>>> {
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(FixAuthority::new(conn))
    })
}

/// How long a stopping member waits for its open requests and streams before it closes them
/// (etcd 3.4 gives its gRPC servers 2 s to stop gracefully, then stops them).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Binds every client URL (so that a bad address fails before anything runs) and returns the bound
/// addresses with the future that serves them until `shutdown` resolves.
pub async fn serve(
    member: Member,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Vec<SocketAddr>, impl Future<Output = Result<(), OpenError>>), OpenError> {
    let mut listeners = Vec::new();
    for url in &opts.listen_client_urls {
        let addr = parse_listen_url(url)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| OpenError::Config(format!("cannot listen on {url}: {e}")))?;
        listeners.push(listener);
    }
    let addrs = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<Vec<_>, _>>()?;
    let mut peer_listeners = Vec::new();
    for url in &opts.listen_peer_urls {
        let addr = parse_listen_url(url)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| OpenError::Config(format!("cannot listen on {url}: {e}")))?;
        peer_listeners.push(listener);
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for listener in peer_listeners {
        let mut stop = stop_tx.subscribe();
        let server = tonic::transport::Server::builder()
            .add_service(PeerService::server(member.replica().clone()))
            .serve_with_incoming_shutdown(incoming(listener), async move {
                let _ = stop.recv().await;
            });
        servers.push(tokio::spawn(server));
    }
    for listener in listeners {
        let (mut stop, mut stop_early) = (stop_tx.subscribe(), stop_tx.subscribe());
        let server = tonic::transport::Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(tower::util::MapResponseLayer::new(
                as_grpc_go_size_refusal::<tonic::body::Body>,
            ))
            .add_routes(routes(&member, &opts))
            .serve_with_incoming_shutdown(incoming(listener), async move {
                let _ = stop.recv().await;
            });
        let published = member.clone();
        servers.push(tokio::spawn(async move {
            // As etcd: clients are served once this member has published its name and client
            // URLs to the cluster (the listener is bound already; connections wait in its backlog).
            tokio::select! {
                () = published.wait_published() => server.await,
                _ = stop_early.recv() => Ok(()),
            }
        }));
    }
    let compactor = tokio::spawn(opts.auto_compaction.run(member.clone()));
    let run = async move {
        shutdown.await;
        let _ = stop_tx.send(());
        member.replica().close_peer_streams();
        compactor.abort();
        // Streams that never end by themselves (a watch held for hours, a keep-alive) would hold
        // a graceful shutdown forever: as etcd, give them a moment, then stop regardless.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut server in servers {
            match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(%e, "server ended with an error"),
                Ok(Err(e)) => tracing::warn!(%e, "server task failed"),
                Err(_) => {
                    tracing::info!(
                        grace = ?SHUTDOWN_GRACE,
                        "connections still open after the grace period; closing them"
                    );
                    server.abort();
                }
            }
        }
        member.shutdown().await;
        Ok(())
    };
    Ok((addrs, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_requests_are_refused_as_grpc_go_does() {
        let refusal = |status: &'static str, message: &'static str| {
            let mut resp = http::Response::new(());
            resp.headers_mut()
                .insert("grpc-status", http::HeaderValue::from_static(status));
            resp.headers_mut()
                .insert("grpc-message", http::HeaderValue::from_static(message));
            let resp = as_grpc_go_size_refusal(resp);
            let status = Status::from_header_map(resp.headers()).unwrap();
            let raw = resp.headers()["grpc-message"].to_str().unwrap().to_owned();
            (status.code(), status.message().to_owned(), raw)
        };
        let (code, message, _) = refusal(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%20700%20bytes,%20the%20limit%20is:%20600%20bytes",
        );
        assert_eq!(
            (code, message.as_str()),
            (
                tonic::Code::ResourceExhausted,
                "grpc: received message larger than max (700 vs. 600)"
            )
        );
        // Any other OutOfRange is left as it was.
        let compacted = "etcdserver:%20mvcc:%20required%20revision%20has%20been%20compacted";
        let (code, _, raw) = refusal("11", compacted);
        assert_eq!((code, raw.as_str()), (tonic::Code::OutOfRange, compacted));
    }

    #[test]
    fn listen_urls() {
        assert_eq!(
            parse_listen_url("http://localhost:2379").unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
        assert_eq!(
            parse_listen_url("http://0.0.0.0:1").unwrap(),
            "0.0.0.0:1".parse().unwrap()
        );
        assert_eq!(
            parse_listen_url("http://[::1]:2379").unwrap(),
            "[::1]:2379".parse().unwrap()
        );
        assert!(parse_listen_url("https://127.0.0.1:2379").is_err());
        assert!(parse_listen_url("http://127.0.0.1").is_err());
    }
}
