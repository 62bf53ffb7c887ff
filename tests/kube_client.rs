//! kube-rs, the Rust client users of Kubernetes have, against a real `ballast server`: typed
//! CRUD, list pagination, conflicts between concurrent updates, raw watches with bookmarks, and
//! a kube-runtime watcher and reflector that stay right across a forced 410 (history compacted
//! under a watch that then resumes from an old resourceVersion).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::apiserver::ApiServer;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;

async fn client(server: &ApiServer) -> Client {
    let config = kube::Config::new(server.url().parse().unwrap());
    Client::try_from(config).unwrap()
}

async fn namespace(client: &Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("value".to_string(), value.to_string())])),
        ..Default::default()
    }
}

fn api_error(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone(), status.message.clone()),
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_pages_and_conflicts() {
    let server = ApiServer::stacked(&[]);
    let client = client(&server).await;
    namespace(&client, "crud").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");

    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let (code, reason, message) = api_error(
        cms.create(&PostParams::default(), &config_map("a", "1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );

    // Two writers read the same version; the second to write is refused with a Conflict.
    let mut first = cms.get("a").await.unwrap();
    let mut second = first.clone();
    first.data = Some(BTreeMap::from([("value".into(), "first".into())]));
    cms.replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    second.data = Some(BTreeMap::from([("value".into(), "second".into())]));
    let (code, reason, message) = api_error(
        cms.replace("a", &PostParams::default(), &second)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["value"], "first");

    // Typed objects of another group.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "crud");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}
    }))
    .unwrap();
    let created = deploys
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.replicas, Some(1), "defaulted");
    assert_eq!(
        spec.template.spec.unwrap().containers[0]
            .image_pull_policy
            .as_deref(),
        Some("Always")
    );

    // Pages: 25 objects in pages of 10, each page pinned to the first's revision.
    for i in 0..25 {
        cms.create(
            &PostParams::default(),
            &config_map(&format!("page-{i:02}"), "x"),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(10).labels("");
    let mut pages = 0;
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 26, "a and page-00..24");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let (code, _, message) = api_error(cms.get("a").await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (404, "configmaps \"a\" not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_arrive() {
    let server = ApiServer::stacked(&[]);
    let client = client(&server).await;
    namespace(&client, "marks").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "marks");
    let created = cms
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .unwrap()
        .boxed();
    let bookmark = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let WatchEvent::Bookmark(mark) = event {
                return mark.metadata.resource_version;
            }
        }
        panic!("the watch ended without a bookmark");
    })
    .await
    .expect("a bookmark within 30 s");
    assert!(bookmark.parse::<i64>().unwrap() >= rv.parse::<i64>().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_and_reflector_converge_across_a_forced_relist() {
    let server = ApiServer::stacked(&[]);
    let etcd = server.etcd_url.clone().unwrap();
    let client = client(&server).await;
    namespace(&client, "relist").await;
    namespace(&client, "elsewhere").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "relist");
    let (reader, writer) = reflector::store::<ConfigMap>();
    // Watches end every 2 s and resume from their last resourceVersion: after a compaction
    // past it, the resume is answered 410 and the watcher lists again.
    let stream = watcher(cms.clone(), watcher::Config::default().timeout(2))
        .default_backoff()
        .reflect(writer);
    let seen = tokio::spawn(async move {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut lists = 0;
        // The reflector swaps its store in at the end of a list (InitDone): the stream is
        // only left between lists, or the store read below could be the one before the list.
        let mut listing = false;
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => {
                    lists += 1;
                    listing = true;
                }
                Ok(watcher::Event::InitDone) => listing = false,
                Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                    let value = cm
                        .data
                        .as_ref()
                        .and_then(|d| d.get("value").cloned())
                        .unwrap_or_default();
                    seen.insert(cm.metadata.name.clone().unwrap(), value);
                }
                Ok(_) | Err(_) => continue,
            }
            if !listing && lists >= 2 && seen.len() == 20 && seen.values().all(|v| v == "3") {
                return (seen, lists);
            }
        }
        panic!("the watcher stream ended");
    });
    for round in 1..=3 {
        for i in 0..20 {
            let name = format!("cm-{i:02}");
            if round == 1 {
                cms.create(&PostParams::default(), &config_map(&name, "1"))
                    .await
                    .unwrap();
            } else {
                let mut cm = cms.get(&name).await.unwrap();
                cm.data = Some(BTreeMap::from([("value".into(), round.to_string())]));
                cms.replace(&name, &PostParams::default(), &cm)
                    .await
                    .unwrap();
            }
        }
        // Move the store on where the watcher does not look, then compact at its newest
        // revision: the watcher's resourceVersion is now below the compacted one, so its next
        // resume (its watches end every 2 s) is answered 410 and it lists again.
        let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "elsewhere");
        for i in 0..3 {
            elsewhere
                .create(
                    &PostParams::default(),
                    &config_map(&format!("r{round}-{i}"), "x"),
                )
                .await
                .unwrap();
        }
        let status = common::etcdctl(&etcd, &["endpoint", "status", "-w", "json"], None)
            .expect_ok(&["endpoint", "status"]);
        let rev = common::json(&status)[0]["Status"]["header"]["revision"]
            .as_i64()
            .unwrap();
        common::etcdctl(&etcd, &["compact", &rev.to_string()], None).expect_ok(&["compact"]);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // Every object's last value is seen, and the watcher listed again after its first list
    // (a 410 sent it back to a list).
    let (seen, lists) = tokio::time::timeout(Duration::from_secs(60), seen)
        .await
        .expect("the watcher sees every change and relists")
        .unwrap();
    assert_eq!(seen.len(), 20);
    assert!(lists >= 2, "{lists} lists");
    // The reflector's store holds exactly what the server holds.
    let mut cached: Vec<(String, String)> = reader
        .state()
        .iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap(),
                cm.data.as_ref().unwrap()["value"].clone(),
            )
        })
        .collect();
    cached.sort();
    let listed: Vec<(String, String)> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|cm| (cm.metadata.name.unwrap(), cm.data.unwrap()["value"].clone()))
        .collect();
    assert_eq!(cached, listed);
}
