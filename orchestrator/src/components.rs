//! The control loops a `ballast server` runs beside its API server, each under its leader
//! election (as k3s runs kube-scheduler and kube-controller-manager in its server process):
//! of several servers, one schedules and one runs the controllers, and another takes over
//! when that one dies.

use std::time::Duration;

use ballast_server::config::parse_duration;
use tokio::task::JoinHandle;

use crate::api::metrics::Metrics;
use crate::election::{self, ElectionConfig};

/// The flags of the components (k3s's `--disable-*`; kube-scheduler's and
/// kube-controller-manager's `--leader-elect-*`).
#[derive(clap::Args, Debug, Clone)]
pub struct ComponentArgs {
    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Do not run the controller manager in this process.
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// How long a standby waits, after the leader's last renewal it saw, before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives leadership up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// The pause between attempts to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// How long a node may go without renewing its Lease before it is Ready=Unknown and
    /// tainted unreachable (kube-controller-manager's flag).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
}

impl ComponentArgs {
    fn election(&self) -> ElectionConfig {
        ElectionConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        }
    }
}

/// Starts the components `args` leaves on, talking to the API server at `url`; their
/// leadership is reported on `metrics`.
pub fn spawn(
    args: &ComponentArgs,
    url: &str,
    metrics: &Metrics,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let config = args.election();
    let mut tasks = Vec::new();
    if !args.disable_scheduler {
        let (leading, watching) = tokio::sync::watch::channel(false);
        metrics.elected("kube-scheduler", watching);
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let work = client.clone();
            election::run(client, "kube-scheduler", config, leading, move || {
                let client = work.clone();
                async move {
                    if let Err(e) = crate::scheduler::run::run(client).await {
                        tracing::warn!(%e, "scheduler stopped");
                    }
                }
            })
            .await;
        }));
    }
    if !args.disable_controller_manager {
        let (leading, watching) = tokio::sync::watch::channel(false);
        metrics.elected("kube-controller-manager", watching);
        let controllers = crate::controllers::run::Config {
            node_monitor_grace_period: args.node_monitor_grace_period,
        };
        tasks.push(tokio::spawn(async move {
            let work = client.clone();
            election::run(
                client,
                "kube-controller-manager",
                config,
                leading,
                move || {
                    let client = work.clone();
                    async move {
                        if let Err(e) = crate::controllers::run::run(client, controllers).await {
                            tracing::warn!(%e, "controller manager stopped");
                        }
                    }
                },
            )
            .await;
        }));
    }
    Ok(tasks)
}
