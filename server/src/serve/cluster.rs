//! A live cluster as the dashboard's source: one kube-runtime watcher per kind feeds the index.
//!
//! Every kind is watched as a `DynamicObject`, so a malformed object (a ClientIntents with a bad
//! field, say) reaches the core parser as JSON and becomes a diagnostic instead of breaking the
//! watch. A watch's initial list (`Init` … `InitDone`) replaces that kind's objects at once;
//! deletes are applied as they come, and the next relist corrects any that were missed. Kinds
//! whose resource is absent (the ClientIntents CRD not installed) are skipped with a warning.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use accord_policy::Origin;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::Value;

use super::Feed;

/// A Kubernetes client from a kubeconfig file, or the default configuration (KUBECONFIG,
/// `~/.kube/config`, or the in-cluster service account).
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?
        }
        None => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// Every kind the dashboard watches. The last two are custom resources that may be absent.
pub fn resources() -> Vec<(ApiResource, bool)> {
    vec![
        (resource("", "v1", "Namespace", "namespaces"), false),
        (resource("", "v1", "Pod", "pods"), false),
        (resource("apps", "v1", "Deployment", "deployments"), false),
        (resource("apps", "v1", "StatefulSet", "statefulsets"), false),
        (resource("apps", "v1", "DaemonSet", "daemonsets"), false),
        (resource("apps", "v1", "ReplicaSet", "replicasets"), false),
        (resource("batch", "v1", "Job", "jobs"), false),
        (resource("batch", "v1", "CronJob", "cronjobs"), false),
        (resource("", "v1", "Service", "services"), false),
        (
            resource(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
            ),
            false,
        ),
        (
            resource(
                "k8s.otterize.com",
                "v2beta1",
                "ClientIntents",
                "clientintents",
            ),
            true,
        ),
        (
            resource(
                "k8s.otterize.com",
                "v2beta1",
                "ProtectedService",
                "protectedservices",
            ),
            true,
        ),
    ]
}

/// The object as the core reads it: with its apiVersion and kind, which list items lack.
fn to_json(ar: &ApiResource, obj: DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), ar.api_version.clone().into());
        o.insert("kind".into(), ar.kind.clone().into());
    }
    v
}

fn origin(ar: &ApiResource) -> Origin {
    Origin::new(format!("cluster:{}", ar.plural), 0)
}

/// Watch every kind until the process ends; marks the feed initialized once every watch has
/// delivered its initial list. With `settings_namespace`, the operator's settings ConfigMap there
/// is watched too (when this client may read it), so the first pass already uses them.
pub async fn run(
    client: Client,
    feed: Arc<Feed>,
    settings_namespace: Option<String>,
) -> anyhow::Result<()> {
    let mut watched = Vec::new();
    for (ar, optional) in resources() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        if optional && let Err(e) = api.list_metadata(&ListParams::default().limit(1)).await {
            tracing::warn!(kind = %ar.kind, error = %e, "resource not served; not watching it");
            continue;
        }
        watched.push((ar, api, watcher::Config::default()));
    }
    if let Some(ns) = settings_namespace {
        let ar = resource("", "v1", "ConfigMap", "configmaps");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let only = format!("metadata.name={}", crate::settings::CONFIGMAP);
        match api
            .list_metadata(&ListParams::default().fields(&only).limit(1))
            .await
        {
            Ok(_) => watched.push((ar, api, watcher::Config::default().fields(&only))),
            Err(e) => tracing::warn!(
                namespace = %ns,
                name = crate::settings::CONFIGMAP,
                error = %e,
                "cannot read the operator's settings; comparing with the defaults"
            ),
        }
    }
    let pending = Arc::new(std::sync::Mutex::new(
        watched
            .iter()
            .map(|(ar, _, _)| ar.kind.clone())
            .collect::<std::collections::BTreeSet<_>>(),
    ));
    let mut tasks = Vec::new();
    for (ar, api, config) in watched {
        let feed = feed.clone();
        let pending = pending.clone();
        tasks.push(tokio::spawn(async move {
            let mut buffer: HashMap<(String, String), Value> = HashMap::new();
            let mut stream = watcher(api, config).default_backoff().boxed();
            loop {
                let event = match stream.try_next().await {
                    Ok(Some(e)) => e,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(kind = %ar.kind, error = %e, "watch error; retrying");
                        continue;
                    }
                };
                match event {
                    watcher::Event::Init => buffer.clear(),
                    watcher::Event::InitApply(obj) => {
                        let key = (
                            obj.metadata.namespace.clone().unwrap_or_default(),
                            obj.metadata.name.clone().unwrap_or_default(),
                        );
                        buffer.insert(key, to_json(&ar, obj));
                    }
                    watcher::Event::InitDone => {
                        let objects: Vec<(Origin, Value)> =
                            buffer.drain().map(|(_, v)| (origin(&ar), v)).collect();
                        tracing::info!(kind = %ar.kind, objects = objects.len(), "initial list");
                        feed.update(|idx| idx.reset(&ar.kind, objects));
                        let done = {
                            let mut p = pending.lock().expect("pending lock");
                            p.remove(&ar.kind);
                            p.is_empty()
                        };
                        if done {
                            feed.set_initialized();
                        }
                    }
                    watcher::Event::Apply(obj) => {
                        let _span = tracing::debug_span!(
                            "apply",
                            kind = %ar.kind,
                            ns = obj.metadata.namespace.as_deref().unwrap_or(""),
                            name = obj.metadata.name.as_deref().unwrap_or("")
                        )
                        .entered();
                        let v = to_json(&ar, obj);
                        feed.update(|idx| idx.apply(origin(&ar), v));
                    }
                    watcher::Event::Delete(obj) => {
                        let ns = obj.metadata.namespace.clone().unwrap_or_default();
                        let name = obj.metadata.name.clone().unwrap_or_default();
                        tracing::debug!(kind = %ar.kind, %ns, %name, "delete");
                        feed.update(|idx| idx.delete(&ar.kind, &ns, &name));
                    }
                }
            }
        }));
    }
    if tasks.is_empty() {
        feed.set_initialized();
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}
