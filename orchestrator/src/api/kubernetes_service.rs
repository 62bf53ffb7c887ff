//! The `kubernetes` Service in the `default` namespace, and its Endpoints and EndpointSlice: how
//! a pod finds the API servers (kube-apiserver's kubernetes service controller and its "lease"
//! endpoint reconciler).
//!
//! Each API server holds a master lease, `/registry/masterleases/<ip>:<port>`, on a 15 s store lease
//! that it renews every sweep; the Endpoints list the addresses of the live ones, so a server
//! that dies drops out of them within 15 s. The Service takes the first address of the service
//! CIDR (10.43.0.1 by default), as in Kubernetes.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::error::ApiError;
use super::path::Target;
use super::query::Query;
use super::{resources, Api};
use crate::registry::{list_prefix, object_key, Swap};

/// How long a master lease lives unless renewed (kube-apiserver's `--endpoint-reconciler-type=lease`
/// TTL).
const MASTER_LEASE_SECONDS: i64 = 15;

fn target(group: &str, version: &str, plural: &str, name: Option<&str>) -> Target {
    Target {
        resource: resources::find(group, version, plural).expect("a served resource"),
        namespace: Some("default".into()).filter(|_| plural != "namespaces"),
        name: name.map(str::to_string),
        subresource: None,
    }
}

impl Api {
    /// Creates `body` unless an object of its name exists (made by another API server on the
    /// same store, say: as good).
    pub(super) async fn ensure_exists(&self, target: &Target, body: Value) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(&body).expect("a JSON value encodes");
        match self.create(target, &bytes, &Query::default()).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renews this server's master lease and brings the `kubernetes` Service, Endpoints and
    /// EndpointSlice to the live API servers.
    pub async fn reconcile_kubernetes_service(&self, me: SocketAddr) -> Result<(), ApiError> {
        let lease = self.registry.lease(MASTER_LEASE_SECONDS).await?;
        let key = object_key("masterleases", None, &me.to_string());
        let record = json!({"ip": me.ip().to_string(), "port": me.port()});
        let bytes = serde_json::to_vec(&record).expect("a JSON value encodes");
        let (current, _) = self.registry.get(&key).await?;
        let expected = current.map_or(0, |c| c.mod_revision);
        // Lost: renewed by another process of this address in the meantime, as good.
        let _: Swap = self.registry.swap(&key, expected, bytes, lease).await?;
        let leases = self
            .registry
            .list(&list_prefix("masterleases", None), None, 0, 0)
            .await?;
        let mut live: Vec<(String, u64)> = leases
            .items
            .iter()
            .filter_map(|s| serde_json::from_slice::<Value>(&s.value).ok())
            .filter_map(|v| Some((v["ip"].as_str()?.to_string(), v["port"].as_u64()?)))
            .collect();
        live.sort();
        // Kubernetes' API servers share one port; where these do not (several on one host),
        // every server picks the same one, the lowest, so that they agree.
        let port_number = live
            .iter()
            .map(|(_, p)| *p)
            .min()
            .unwrap_or(me.port().into());
        let mut addresses: Vec<String> = live.into_iter().map(|(ip, _)| ip).collect();
        addresses.dedup();
        let port = json!({"name": "https", "port": port_number, "protocol": "TCP"});
        let first_ip = self.services.first().to_string();
        // Made when missing, and otherwise left as it is.
        self.converge(
            target("", "v1", "services", Some("kubernetes")),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": first_ip, "sessionAffinity": "None",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                        "targetPort": port_number}]},
            }),
            &[],
        )
        .await?;
        let subsets = json!([{
            "addresses": addresses.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
            "ports": [port],
        }]);
        self.converge(
            target("", "v1", "endpoints", Some("kubernetes")),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": subsets}),
            &["subsets"],
        )
        .await?;
        let endpoints: Vec<Value> = addresses
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
        self.converge(
            target(
                "discovery.k8s.io",
                "v1",
                "endpointslices",
                Some("kubernetes"),
            ),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                "addressType": "IPv4", "endpoints": endpoints, "ports": [port]}),
            &["endpoints", "ports"],
        )
        .await
    }

    /// Creates the object `target` names as `want`, or brings its `fields` to `want`'s.
    async fn converge(&self, target: Target, want: Value, fields: &[&str]) -> Result<(), ApiError> {
        let name = target.name.clone().expect("a named target");
        let create = Target {
            name: None,
            ..target.clone()
        };
        match self.fetch(&target, &name).await {
            Err(ApiError::NotFound { .. }) => self.ensure_exists(&create, want).await,
            Err(e) => Err(e),
            Ok((current, _)) if fields.iter().all(|f| current[*f] == want[*f]) => Ok(()),
            Ok(_) => {
                self.update_with(&target, &name, None, &Query::default(), |current| {
                    let mut next = current.clone();
                    for f in fields {
                        next[*f] = want[*f].clone();
                    }
                    Ok(next)
                })
                .await?;
                Ok(())
            }
        }
    }
}
