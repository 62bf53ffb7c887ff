//! Hollow nodes, as kubemark's: each registers a Node and renews its Lease as a kubelet does,
//! and reports every pod bound to it Running and Ready at once, without containers, so that the
//! scheduler, the controllers and the API server can be measured at a scale no machine runs.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::AgentArgs;

/// Status writes in flight at once (a burst of thousands of bound pods must not open thousands
/// of requests).
const IN_FLIGHT: usize = 64;

/// Lease duration written into each node's Lease (kubelet's default, 40 s).
const NODE_LEASE_SECONDS: i32 = 40;

pub struct HollowNodes {
    client: kube::Client,
    names: Vec<String>,
    args: AgentArgs,
}

impl std::fmt::Debug for HollowNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HollowNodes")
            .field("names", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl HollowNodes {
    pub fn new(args: &AgentArgs) -> anyhow::Result<Self> {
        let config = kube::Config::new(args.server.parse()?);
        let client = kube::Client::try_from(config)?;
        let base = args
            .node_name
            .clone()
            .unwrap_or_else(|| "hollow-node".into());
        let names = match args.nodes {
            1 => vec![base],
            n => (0..n).map(|i| format!("{base}-{i}")).collect(),
        };
        Ok(Self {
            client,
            names,
            args: args.clone(),
        })
    }

    /// Registers the nodes, then renews their Leases and reports their pods until it fails.
    pub async fn run(self) -> anyhow::Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        futures_util::stream::iter(self.names.iter().enumerate())
            .map(|(i, name)| register(&nodes, name, i, &self.args))
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        eprintln!(
            "ballast agent: {} hollow node(s) registered",
            self.names.len()
        );
        let leases = tokio::spawn(renew_leases(
            self.client.clone(),
            self.names.clone(),
            self.args.node_lease_renew_interval,
        ));
        let res = report_pods(self.client.clone(), &self.names, self.args.startup_delay).await;
        leases.abort();
        res
    }
}

/// Creates the node (or takes it over after a restart) and writes its status: capacity, Ready.
async fn register(nodes: &Api<Node>, name: &str, i: usize, args: &AgentArgs) -> anyhow::Result<()> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("node.kubernetes.io/hollow".to_string(), "true".to_string()),
    ]);
    if args.zones > 0 {
        labels.insert(
            "topology.kubernetes.io/zone".into(),
            format!("zone-{}", i % args.zones),
        );
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {},
    }))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let now = Timestamp::now().to_string();
    let resources = json!({
        "cpu": args.cpu, "memory": args.memory, "pods": args.max_pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    let status = json!({ "status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", &now),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", &now),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", &now),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", &now),
        ],
        "addresses": [
            { "type": "InternalIP", "address": node_ip(i) },
            { "type": "Hostname", "address": name },
        ],
        "nodeInfo": {
            "kubeletVersion": "v1.32.0-ballast-hollow",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "containerRuntimeVersion": "hollow://0",
            "kernelVersion": "", "osImage": "hollow", "machineID": "", "systemUUID": "", "bootID": "",
        },
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    })
}

/// A node's fake address: 10.240.0.0/12, one per node.
fn node_ip(i: usize) -> String {
    let i = i + 1;
    format!("10.{}.{}.{}", 240 + (i >> 16) % 16, (i >> 8) & 255, i & 255)
}

/// Renews every node's Lease each `every`, spread over the period (kubelet renews each 10 s).
async fn renew_leases(client: kube::Client, names: Vec<String>, every: std::time::Duration) {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let pause = every / names.len().max(1) as u32;
    loop {
        for name in &names {
            let now = Timestamp::now().to_string();
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": { "name": name },
                "spec": {
                    "holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_SECONDS,
                    "renewTime": now,
                },
            });
            let patched = leases
                .patch(name, &PatchParams::default(), &Patch::Merge(&lease))
                .await;
            if let Err(kube::Error::Api(e)) = &patched {
                if e.code == 404 {
                    if let Ok(lease) = serde_json::from_value::<Lease>(lease) {
                        let _ = leases.create(&PostParams::default(), &lease).await;
                    }
                }
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// Watches every pod and reports the ones bound to these nodes Running and Ready.
async fn report_pods(
    client: kube::Client,
    names: &[String],
    startup: std::time::Duration,
) -> anyhow::Result<()> {
    let ours: HashSet<&str> = names.iter().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let pods: Api<Pod> = Api::all(client.clone());
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let next_ip = Arc::new(AtomicU32::new(0));
    let mut reported = HashSet::new();
    let mut stream = watcher(pods, watcher::Config::default())
        .applied_objects()
        .boxed();
    while let Some(pod) = stream.try_next().await? {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            continue;
        };
        if !ours.contains(node) || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if phase == Some("Running") || !reported.insert(uid) {
            continue;
        }
        let host_ip = node_ip(index.get(node).copied().unwrap_or(0));
        let permit = limit.clone().acquire_owned().await?;
        let client = client.clone();
        let ip = next_ip.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::time::sleep(startup).await;
            if let Err(e) = report_running(client, &pod, &host_ip, ip).await {
                tracing::debug!(%e, pod = pod.metadata.name.as_deref().unwrap_or(""), "status not written");
            }
            drop(permit);
        });
    }
    Ok(())
}

async fn report_running(
    client: kube::Client,
    pod: &Pod,
    host_ip: &str,
    n: u32,
) -> kube::Result<()> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let now = Timestamp::now().to_string();
    let pod_ip = format!("10.{}.{}.{}", 42 + (n >> 16) % 8, (n >> 8) & 255, n & 255);
    let containers: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
                "containerID": format!("hollow://{name}-{}", c.name),
                "ready": true, "started": true, "restartCount": 0,
                "state": { "running": { "startedAt": now } },
            })
        })
        .collect();
    let cond = |kind: &str| json!({ "type": kind, "status": "True", "lastTransitionTime": now, "lastProbeTime": null });
    let status = json!({ "status": {
        "phase": "Running",
        "conditions": [
            cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
            cond("ContainersReady"), cond("PodScheduled"),
        ],
        "hostIP": host_ip, "hostIPs": [{ "ip": host_ip }],
        "podIP": pod_ip, "podIPs": [{ "ip": pod_ip }],
        "startTime": now,
        "containerStatuses": containers,
    }});
    let pods: Api<Pod> = Api::namespaced(client, ns);
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_distinct() {
        let ips: HashSet<String> = (0..70_000).map(node_ip).collect();
        assert_eq!(ips.len(), 70_000);
        assert_eq!(node_ip(0), "10.240.0.1");
    }
}
