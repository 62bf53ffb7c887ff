//! `ballast agent`: the node side. Today only its hollow form (kubemark's hollow nodes, for
//! scale tests of the control plane); the agent that runs pods on Docker comes next.

mod hollow;

use std::time::Duration;

use clap::Args;

pub use hollow::HollowNodes;

/// `ballast agent`'s flags (k3s's names where k3s has one).
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The API server's URL.
    #[arg(long, default_value = "http://127.0.0.1:6443")]
    pub server: String,
    /// The node's name; with `--nodes N` > 1, nodes are named `<name>-0` .. `<name>-<N-1>`.
    #[arg(long)]
    pub node_name: Option<String>,
    /// Register hollow nodes (as kubemark does): no containers; pods bound to them are reported
    /// Running and Ready at once.
    #[arg(long)]
    pub hollow: bool,
    /// How many hollow nodes this process registers.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Each hollow node's CPU capacity.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Each hollow node's memory capacity.
    #[arg(long, default_value = "16Gi")]
    pub memory: String,
    /// Each hollow node's pod capacity (kubelet's --max-pods).
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Spread hollow nodes over this many zones (`topology.kubernetes.io/zone=zone-<i>`); 0: no
    /// zone label.
    #[arg(long, default_value_t = 0)]
    pub zones: usize,
    /// How long a hollow node takes to report a bound pod Running and Ready (kubemark: at
    /// once); tests set it to see what happens while pods start.
    #[arg(long, value_parser = ballast_server::config::parse_duration, default_value = "0s")]
    pub startup_delay: Duration,
    /// How often each node's Lease in kube-node-lease is renewed (kubelet: 10 s).
    #[arg(long, value_parser = ballast_server::config::parse_duration, default_value = "10s")]
    pub node_lease_renew_interval: Duration,
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !args.hollow {
        anyhow::bail!(
            "ballast agent: only hollow nodes (--hollow) exist yet; the agent that runs pods on Docker is not built"
        );
    }
    let nodes = HollowNodes::new(&args)?;
    tokio::select! {
        res = nodes.run() => res,
        () = shutdown => Ok(()),
    }
}
