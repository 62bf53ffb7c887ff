//! An in-process Ballast member serving over real TCP on a free port, for the server's tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ballast_server::compaction::AutoCompaction;
use ballast_server::{Member, MemberOptions, ServeOptions};
use tokio::sync::oneshot;

/// Stops serving when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub member: Member,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts a member in a fresh directory; `configure` adjusts its options. Watch progress
/// notifications come every 200 ms (etcd: 10 minutes) so that tests can see them.
pub async fn start(configure: impl FnOnce(&mut MemberOptions)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = MemberOptions::new(dir.path().join("data"));
    configure(&mut opts);
    let member = Member::open(opts).await.unwrap();
    let serve = ServeOptions {
        listen_client_urls: vec!["http://127.0.0.1:0".into()],
        listen_peer_urls: Vec::new(),
        watch_progress_interval: Duration::from_millis(200),
        auto_compaction: AutoCompaction::Off,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (addrs, run) = ballast_server::serve(member.clone(), serve, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    tokio::spawn(run);
    member.wait_published().await;
    Server {
        addr: addrs[0],
        member,
        stop: Some(stop),
        _dir: dir,
    }
}
