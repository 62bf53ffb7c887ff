//! `ballast server`: the control-plane process. k3s's flags where k3s has one (`--data-dir`,
//! `--https-listen-port`, `--bind-address`, `--write-kubeconfig`, `--datastore-endpoint`); the
//! embedded member's peer flags as `ballast kv`'s, so that several servers form one stacked
//! cluster.
//!
//! Stacked (no `--datastore-endpoint`): a Ballast member runs in this process with its data in
//! `<data-dir>/db`, serving the etcd API on `--listen-client-urls` for tools and its peers on
//! `--listen-peer-urls`; the API server calls it directly. External: the API server talks to the
//! given etcd v3 endpoints.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ballast_server::config::parse_duration;
use ballast_server::{KvArgs, Member};
use clap::Parser;

use crate::api::admission::DefaultTolerations;
use crate::api::services::ServiceRanges;
use crate::api::{self, Api};
use crate::clock::SystemClock;
use crate::components::{self, ComponentArgs};
use crate::registry::Registry;
use crate::storage::external::External;
use crate::storage::stacked::Stacked;
use crate::storage::Storage;

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Folder to hold state (the embedded member's data, the kubeconfig).
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// The API server's port (HTTP in this version; TLS comes with authentication).
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,
    /// Also write the admin kubeconfig to this file (it is always written to <data-dir>/kubeconfig).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// An external store: comma-separated etcd v3 endpoints (`http://h1:2379,http://h2:2379`).
    /// Without it, the store is a Ballast member embedded in this process.
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// How often the store's history is compacted (kube-apiserver's `--etcd-compaction-interval`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// The address the `kubernetes` Service's endpoints give for this server (k3s's and
    /// kube-apiserver's flag; default: --bind-address, or 127.0.0.1 when that is unspecified).
    #[arg(long)]
    pub advertise_address: Option<std::net::IpAddr>,
    /// The range Services' cluster IPs come from (k3s's flag and default).
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// The range Services' node ports come from (kube-apiserver's flag and default).
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// The embedded member's name in its cluster.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The embedded member's etcd API, for tools (etcdctl, backups).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: String,
    #[arg(long)]
    pub advertise_client_urls: Option<String>,
    /// Where the embedded member's peers reach it.
    #[arg(long, default_value = "http://127.0.0.1:2380")]
    pub listen_peer_urls: String,
    #[arg(long)]
    pub initial_advertise_peer_urls: Option<String>,
    /// The stacked cluster: "name=peer-url,..." (default: this member alone).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    #[arg(long, default_value = "new")]
    pub initial_cluster_state: String,
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
    /// How long pods tolerate a not-ready node before they are evicted (kube-apiserver's flag).
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// How long pods tolerate an unreachable node before they are evicted (kube-apiserver's flag).
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    #[command(flatten)]
    pub components: ComponentArgs,
}

/// How often namespaces are looked at, for missing system namespaces and terminating ones
/// (kube-controller-manager's namespace controller resyncs every 5 minutes, but is woken by
/// every change; this one polls).
const NAMESPACE_SYNC: Duration = Duration::from_secs(2);

/// k3s's default: /var/lib/rancher/k3s as root, ~/.rancher/k3s otherwise; ours likewise.
fn default_data_dir() -> PathBuf {
    let root =
        std::env::var("USER").is_ok_and(|u| u == "root") || std::env::var_os("HOME").is_none();
    if root {
        PathBuf::from("/var/lib/ballast/server")
    } else {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".ballast/server")
    }
}

/// `ballast kv`'s arguments for the embedded member, read by its own parser so that the two
/// commands cannot disagree about what a flag means.
#[derive(Parser, Debug)]
struct EmbeddedMember {
    #[command(flatten)]
    kv: KvArgs,
}

impl ServerArgs {
    fn member_args(&self) -> anyhow::Result<KvArgs> {
        let mut argv = vec![
            "kv".to_string(),
            format!("--name={}", self.name),
            format!("--data-dir={}", self.data_dir.join("db").display()),
            format!("--listen-client-urls={}", self.listen_client_urls),
            format!(
                "--advertise-client-urls={}",
                self.advertise_client_urls
                    .as_ref()
                    .unwrap_or(&self.listen_client_urls)
            ),
            format!("--listen-peer-urls={}", self.listen_peer_urls),
            format!(
                "--initial-advertise-peer-urls={}",
                self.initial_advertise_peer_urls
                    .as_ref()
                    .unwrap_or(&self.listen_peer_urls)
            ),
            format!("--initial-cluster-state={}", self.initial_cluster_state),
            format!("--initial-cluster-token={}", self.initial_cluster_token),
            format!("--heartbeat-interval={}", self.heartbeat_interval),
            format!("--election-timeout={}", self.election_timeout),
            // Progress notifications feed watch bookmarks.
            "--experimental-watch-progress-notify-interval=5s".to_string(),
        ];
        if let Some(cluster) = &self.initial_cluster {
            argv.push(format!("--initial-cluster={cluster}"));
        }
        Ok(EmbeddedMember::try_parse_from(argv)?.kv)
    }

    fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        let ip: std::net::IpAddr = self.bind_address.parse().map_err(|_| {
            anyhow::anyhow!(
                "--bind-address {:?} is not an IP address",
                self.bind_address
            )
        })?;
        Ok(SocketAddr::new(ip, self.https_listen_port))
    }
}

/// A kubeconfig for the admin, pointing at `server`.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user: {{}}
"
    )
}

fn write_kubeconfig(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Compacts the store's history every `interval` to the revision it had one interval before
/// (kube-apiserver keeps the last interval of history for watches to resume from).
async fn compact_periodically(registry: Registry, interval: Duration) {
    let mut previous = None;
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        match registry.current_revision().await {
            Ok(now) => {
                if let Some(rev) = previous {
                    if let Err(err) = registry.compact(rev).await {
                        tracing::warn!(%err, revision = rev, "compaction failed");
                    }
                }
                previous = Some(now);
            }
            Err(err) => tracing::warn!(%err, "compaction skipped: the store did not answer"),
        }
    }
}

/// Runs the control plane until `shutdown` resolves.
pub async fn run(
    args: ServerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut member_task = None;
    let mut member = None;
    let storage: Arc<dyn Storage> = match &args.datastore_endpoint {
        Some(urls) => Arc::new(External::new(urls)?),
        None => {
            let kv = args.member_args()?;
            let opened = Member::open(kv.member_options()?).await?;
            let mut stop = stop_rx.clone();
            let (_, serving) =
                ballast_server::serve(opened.clone(), kv.serve_options()?, async move {
                    let _ = stop.changed().await;
                })
                .await?;
            member_task = Some(tokio::spawn(serving));
            opened.wait_published().await;
            member = Some(opened.clone());
            Arc::new(Stacked::new(opened))
        }
    };
    let registry = Registry::new(storage.clone());
    let ranges = ServiceRanges::parse(&args.service_cidr, &args.service_node_port_range)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = args.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    let advertise = args
        .advertise_address
        .unwrap_or_else(|| host.parse().expect("an IP address"));
    let api = Api {
        services: Arc::new(ranges),
        advertise: Some(std::net::SocketAddr::new(advertise, bound.port())),
        tolerations: DefaultTolerations {
            not_ready_seconds: args.default_not_ready_toleration_seconds,
            unreachable_seconds: args.default_unreachable_toleration_seconds,
        },
        ..Api::new(registry.clone(), Arc::new(SystemClock))
    };
    let config = kubeconfig(&format!("http://{host}:{}", bound.port()));
    write_kubeconfig(&args.data_dir.join("kubeconfig"), &config)?;
    if let Some(path) = &args.write_kubeconfig {
        write_kubeconfig(path, &config)?;
    }
    let compactor = tokio::spawn(compact_periodically(
        registry,
        args.etcd_compaction_interval,
    ));
    let namespaces = tokio::spawn(api.clone().keep_namespaces(NAMESPACE_SYNC));
    let components = components::spawn(
        &args.components,
        &format!("http://{host}:{}", bound.port()),
        &api.metrics,
    )?;
    eprintln!(
        "ballast: API server ready on http://{bound}, store: {}",
        storage.describe()
    );
    let mut stop = stop_rx.clone();
    axum::serve(listener, api::router(api))
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                _ = stop.changed() => {}
            }
        })
        .await?;
    compactor.abort();
    namespaces.abort();
    for task in components {
        task.abort();
    }
    let _ = stop_tx.send(true);
    if let Some(task) = member_task {
        task.await??;
    } else if let Some(member) = member {
        member.shutdown().await;
    }
    eprintln!("ballast: stopped");
    Ok(())
}
