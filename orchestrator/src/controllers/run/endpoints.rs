//! The Endpoints and EndpointSlice controllers' I/O: for each Service with a selector, the
//! Endpoints object and the EndpointSlices of [`crate::controllers::endpoints`] are written
//! when they differ from what is stored; a deleted Service's Endpoints go with it (its slices
//! are owned by it and go with the garbage collector).

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};

use super::{drain, retry, Shared, SyncError};
use crate::controllers::endpoints::{
    endpoint_slices_for, endpoints_for, merge_into, needs_update, selector,
};

/// What makes a Service's endpoints sync: the Service, its pods (changed or deleted).
pub struct Triggers<D, G> {
    pub services: ReflectHandle<Service>,
    pub pods: ReflectHandle<Pod>,
    pub pods_deleted: D,
    /// Services deleted: their Endpoints are deleted.
    pub services_deleted: G,
}

/// The Services of the pod's namespace whose selector picks it.
pub fn services_of(services: &Store<Service>, pod: &Pod) -> Vec<ObjectRef<Service>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    services
        .state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && selector(s).is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .iter()
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

pub async fn run<D, G>(shared: Arc<Shared>, triggers: Triggers<D, G>)
where
    D: Stream<Item = Vec<ObjectRef<Service>>> + Send + 'static,
    G: Stream<Item = Arc<Service>> + Send + 'static,
{
    let lookup = shared.services.clone();
    let controller = Controller::for_shared_stream(triggers.services, shared.services.clone())
        .watches_shared_stream(triggers.pods, move |pod: Arc<Pod>| {
            services_of(&lookup, &pod)
        })
        .reconcile_on(triggers.pods_deleted.flat_map(futures_util::stream::iter));
    let gone = shared.clone();
    let forget = triggers.services_deleted.for_each(move |service| {
        let shared = gone.clone();
        async move {
            let ns = service.metadata.namespace.as_deref().unwrap_or("");
            let name = service.metadata.name.as_deref().unwrap_or("");
            let api: Api<Endpoints> = Api::namespaced(shared.client.clone(), ns);
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
    });
    tokio::join!(drain(controller.run(sync, retry, shared)), forget);
}

async fn sync(service: Arc<Service>, shared: Arc<Shared>) -> Result<Requeue, SyncError> {
    let ns = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let pods = shared.pods_in(&ns);
    let post = PostParams::default();
    if let Some(desired) = endpoints_for(&service, &pods) {
        let api: Api<Endpoints> = Api::namespaced(shared.client.clone(), &ns);
        match shared.endpoints.get(&ObjectRef::new(&name).within(&ns)) {
            None => match api.create(&post, &desired).await {
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                other => {
                    other?;
                }
            },
            Some(current) if needs_update(&current, &desired) => {
                api.replace(&name, &post, &merge_into(&current, &desired))
                    .await?;
            }
            Some(_) => {}
        }
    }
    let existing: Vec<EndpointSlice> = shared
        .endpoint_slices
        .state_filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
        .iter()
        .map(|s| s.as_ref().clone())
        .collect();
    let changes = endpoint_slices_for(&service, &pods, &existing);
    let slices: Api<EndpointSlice> = Api::namespaced(shared.client.clone(), &ns);
    for slice in &changes.create {
        slices.create(&post, slice).await?;
    }
    for slice in &changes.update {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        slices.replace(&slice_name, &post, slice).await?;
    }
    for slice in &changes.delete {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        match slices.delete(&slice_name, &DeleteParams::default()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            other => {
                other?;
            }
        }
    }
    Ok(Requeue::await_change())
}
