//! The single watch set of the operator and the dashboard.
//!
//! One table ([`watched`]) says which kinds Accord reads from a cluster and how: untyped
//! (`DynamicObject`, so a malformed object reaches the core parser as JSON and becomes a
//! diagnostic instead of breaking the watch), ClientIntents and ProtectedServices at the
//! storage version (no conversion webhook needed), Namespaces as metadata (only their labels
//! matter), pending and running pods only (a finished pod receives no traffic and needs no
//! labels). The workload kinds are read whole: their pod templates stand for pods not created
//! yet. A watch's initial list (`Init` … `InitDone`) becomes one [`Change::Reset`] of that kind,
//! so objects deleted while a watch was down disappear at the relist; once every watch has
//! listed, [`Change::Synced`] follows.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use accord_policy::Origin;
use futures::StreamExt;
use futures::stream::{self, BoxStream, SelectAll};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::Value;

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

/// Whether a kind must be served for Accord to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// A built-in kind.
    Required,
    /// Accord's own custom resources: the operator waits for them; the dashboard reads a
    /// cluster without them (no intents) and says so in its log.
    Accord,
    /// Read when served and readable (AdminNetworkPolicy, BaselineAdminNetworkPolicy).
    Optional,
}

/// One kind of the watch set.
#[derive(Clone, Debug)]
pub struct Watched {
    pub resource: ApiResource,
    pub cluster_scoped: bool,
    /// Only the metadata is read (labels, owners).
    pub metadata_only: bool,
    /// A field selector every watch of this kind uses.
    pub fields: Option<&'static str>,
    pub presence: Presence,
}

/// Every kind the operator or the dashboard reads from a cluster.
pub fn watched() -> Vec<Watched> {
    let kind = |resource: ApiResource| Watched {
        resource,
        cluster_scoped: false,
        metadata_only: false,
        fields: None,
        presence: Presence::Required,
    };
    let anp = "policy.networking.k8s.io";
    vec![
        Watched {
            cluster_scoped: true,
            metadata_only: true,
            ..kind(resource("", "v1", "Namespace", "namespaces"))
        },
        Watched {
            fields: Some("status.phase!=Succeeded,status.phase!=Failed"),
            ..kind(resource("", "v1", "Pod", "pods"))
        },
        kind(resource("apps", "v1", "Deployment", "deployments")),
        kind(resource("apps", "v1", "StatefulSet", "statefulsets")),
        kind(resource("apps", "v1", "DaemonSet", "daemonsets")),
        kind(resource("apps", "v1", "ReplicaSet", "replicasets")),
        kind(resource("batch", "v1", "Job", "jobs")),
        kind(resource("batch", "v1", "CronJob", "cronjobs")),
        kind(resource(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
        )),
        kind(resource("", "v1", "Service", "services")),
        kind(resource("networking.k8s.io", "v1", "Ingress", "ingresses")),
        kind(resource(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
        )),
        Watched {
            presence: Presence::Accord,
            ..kind(crate::k8s::client_intents_resource())
        },
        Watched {
            presence: Presence::Accord,
            ..kind(crate::k8s::protected_service_resource())
        },
        Watched {
            cluster_scoped: true,
            presence: Presence::Optional,
            ..kind(resource(
                anp,
                "v1alpha1",
                "AdminNetworkPolicy",
                "adminnetworkpolicies",
            ))
        },
        Watched {
            cluster_scoped: true,
            presence: Presence::Optional,
            ..kind(resource(
                anp,
                "v1alpha1",
                "BaselineAdminNetworkPolicy",
                "baselineadminnetworkpolicies",
            ))
        },
    ]
}

/// Who watches, and where.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Also watch the operator's published settings (`crate::settings`) in this namespace.
    pub settings_namespace: Option<String>,
    /// Watch Accord's custom resources even when they are not served yet (the operator, which
    /// cannot work without them, waits; the dashboard skips them).
    pub require_accord_kinds: bool,
}

/// One change to the index.
#[derive(Debug)]
pub enum Change {
    /// Every object of `kind` (in `scope`, when the watch was for one namespace).
    Reset {
        kind: String,
        scope: Option<String>,
        objects: Vec<(Origin, Value)>,
    },
    Apply {
        origin: Origin,
        object: Value,
    },
    Delete {
        kind: String,
        namespace: String,
        name: String,
    },
    /// Every watch has delivered its first list.
    Synced,
    /// A watch of `kind` started failing (`Some`: the error; the index keeps the last state
    /// seen, and kube-runtime retries with backoff) or works again (`None`).
    Health {
        kind: String,
        error: Option<String>,
    },
}

fn origin(ar: &ApiResource) -> Origin {
    Origin::new(format!("cluster:{}", ar.plural), 0)
}

/// The object as the core reads it: with its apiVersion and kind, which list items lack.
fn with_type(ar: &ApiResource, mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), ar.api_version.clone().into());
        o.insert("kind".into(), ar.kind.clone().into());
    }
    v
}

/// A watch's events as changes: the initial list is buffered into one `Reset`.
fn changes(
    ar: ApiResource,
    scope: Option<String>,
    events: BoxStream<'static, Result<watcher::Event<Value>, watcher::Error>>,
) -> BoxStream<'static, Change> {
    let mut buffer: HashMap<(String, String), Value> = HashMap::new();
    let mut failing = false;
    events
        .flat_map(move |event| {
            let mut out = Vec::with_capacity(2);
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(kind = %ar.kind, error = %e, "watch error; retrying with backoff");
                    if !failing {
                        failing = true;
                        out.push(Change::Health {
                            kind: ar.kind.clone(),
                            error: Some(e.to_string()),
                        });
                    }
                    return stream::iter(out);
                }
            };
            if failing {
                failing = false;
                tracing::info!(kind = %ar.kind, "watch works again");
                out.push(Change::Health {
                    kind: ar.kind.clone(),
                    error: None,
                });
            }
            let key = |v: &Value| {
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
                (s("/metadata/namespace"), s("/metadata/name"))
            };
            let change = match event {
                watcher::Event::Init => {
                    buffer.clear();
                    None
                }
                watcher::Event::InitApply(v) => {
                    buffer.insert(key(&v), with_type(&ar, v));
                    None
                }
                watcher::Event::InitDone => {
                    let objects: Vec<(Origin, Value)> =
                        buffer.drain().map(|(_, v)| (origin(&ar), v)).collect();
                    tracing::info!(kind = %ar.kind, scope = scope.as_deref().unwrap_or("*"), objects = objects.len(), "listed");
                    Some(Change::Reset {
                        kind: ar.kind.clone(),
                        scope: scope.clone(),
                        objects,
                    })
                }
                watcher::Event::Apply(v) => Some(Change::Apply {
                    origin: origin(&ar),
                    object: with_type(&ar, v),
                }),
                watcher::Event::Delete(v) => {
                    let (namespace, name) = key(&v);
                    Some(Change::Delete {
                        kind: ar.kind.clone(),
                        namespace,
                        name,
                    })
                }
            };
            out.extend(change);
            stream::iter(out)
        })
        .boxed()
}

fn events(
    client: &Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    config: watcher::Config,
    metadata_only: bool,
) -> BoxStream<'static, Result<watcher::Event<Value>, watcher::Error>> {
    fn json<T: serde::Serialize>(e: watcher::Event<T>) -> watcher::Event<Value> {
        let j = |t: T| serde_json::to_value(t).unwrap_or(Value::Null);
        match e {
            watcher::Event::Apply(t) => watcher::Event::Apply(j(t)),
            watcher::Event::Delete(t) => watcher::Event::Delete(j(t)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitApply(t) => watcher::Event::InitApply(j(t)),
            watcher::Event::InitDone => watcher::Event::InitDone,
        }
    }
    fn api<K>(client: &Client, ar: &ApiResource, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    }
    if metadata_only {
        let api: Api<PartialObjectMeta<DynamicObject>> = api(client, ar, namespace);
        watcher(api, config)
            .default_backoff()
            .map(|e| e.map(json))
            .boxed()
    } else {
        let api: Api<DynamicObject> = api(client, ar, namespace);
        watcher(api, config)
            .default_backoff()
            .map(|e| e.map(json))
            .boxed()
    }
}

/// Whether this client can list `ar` (in `namespace`, or anywhere).
async fn readable(
    client: &Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    fields: Option<&str>,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let mut params = ListParams::default().limit(1);
    if let Some(f) = fields {
        params = params.fields(f);
    }
    api.list_metadata(&params).await.map(|_| ())
}

/// Start every watch of the set; the stream of their changes ends only when every watch does.
pub async fn watch(client: Client, options: Options) -> BoxStream<'static, Change> {
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let mut all: SelectAll<BoxStream<'static, (usize, Change)>> = SelectAll::new();
    let add = |all: &mut SelectAll<_>,
               ar: &ApiResource,
               scope: Option<String>,
               namespace: Option<&str>,
               config: watcher::Config,
               metadata_only: bool| {
        let id = all.len();
        let events = events(&client, ar, namespace, config, metadata_only);
        all.push(
            changes(ar.clone(), scope, events)
                .map(move |c| (id, c))
                .boxed(),
        );
    };
    for w in watched() {
        let skippable = match w.presence {
            Presence::Required => false,
            Presence::Accord => !options.require_accord_kinds,
            Presence::Optional => true,
        };
        if skippable
            && let Err(e) = readable(
                &client,
                &w.resource,
                options
                    .namespaces
                    .first()
                    .map(String::as_str)
                    .filter(|_| !w.cluster_scoped),
                None,
            )
            .await
        {
            tracing::warn!(kind = %w.resource.kind, error = %e, "not served or not readable; not watching it");
            continue;
        }
        // A cluster-scoped kind is watched once, or (Namespaces) once per watched namespace.
        let kind_scopes: Vec<Option<String>> = if w.cluster_scoped && w.resource.kind != "Namespace"
        {
            vec![None]
        } else {
            scopes.clone()
        };
        for scope in kind_scopes {
            let mut config = watcher::Config::default();
            let mut fields: Vec<String> = w.fields.iter().map(|f| f.to_string()).collect();
            let namespace = match (&scope, w.cluster_scoped) {
                (Some(ns), true) => {
                    fields.push(format!("metadata.name={ns}"));
                    None
                }
                (ns, _) => ns.clone(),
            };
            if !fields.is_empty() {
                config = config.fields(&fields.join(","));
            }
            add(
                &mut all,
                &w.resource,
                scope,
                namespace.as_deref(),
                config,
                w.metadata_only,
            );
        }
    }
    if let Some(ns) = options.settings_namespace {
        let ar = resource("", "v1", "ConfigMap", "configmaps");
        let only = format!("metadata.name={}", crate::settings::CONFIGMAP);
        match readable(&client, &ar, Some(&ns), Some(&only)).await {
            Ok(()) => {
                let config = watcher::Config::default().fields(&only);
                add(&mut all, &ar, Some(ns.clone()), Some(&ns), config, false);
            }
            Err(e) => tracing::warn!(
                namespace = %ns,
                name = crate::settings::CONFIGMAP,
                error = %e,
                "cannot read the operator's settings; comparing with the defaults"
            ),
        }
    }
    let mut pending: BTreeSet<usize> = (0..all.len()).collect();
    if pending.is_empty() {
        return stream::iter([Change::Synced]).boxed();
    }
    all.flat_map(move |(id, change)| {
        let mut out = Vec::with_capacity(2);
        let listed = matches!(change, Change::Reset { .. });
        out.push(change);
        if listed && pending.remove(&id) && pending.is_empty() {
            out.push(Change::Synced);
        }
        stream::iter(out)
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(apiGroup, resource)` pairs that a role file grants `list` and `watch` on.
    fn granted(text: &str) -> BTreeSet<(String, String)> {
        let list = |line: &str| -> Vec<String> {
            line.split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(items, _)| {
                    items
                        .split(',')
                        .map(|s| s.trim().trim_matches('"').to_string())
                        .filter(|s| !s.is_empty() || items.trim() == "\"\"")
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = BTreeSet::new();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(groups) = line.strip_prefix("- apiGroups:") else {
                continue;
            };
            let groups = list(groups);
            let rest = &lines[i + 1..(i + 4).min(lines.len())];
            let resources = rest
                .iter()
                .find_map(|l| l.strip_prefix("resources:"))
                .map(list)
                .unwrap_or_default();
            let verbs = rest
                .iter()
                .find_map(|l| l.strip_prefix("verbs:"))
                .map(list)
                .unwrap_or_default();
            let named = rest.iter().any(|l| l.starts_with("resourceNames:"));
            if named || !(verbs.iter().any(|v| v == "list") && verbs.iter().any(|v| v == "watch")) {
                continue;
            }
            for g in &groups {
                for r in &resources {
                    out.insert((g.clone(), r.clone()));
                }
            }
        }
        out
    }

    /// Every role that runs the watch set may list and watch every kind of it: the operator's
    /// and the dashboard's, in `deploy/` and in the chart.
    #[test]
    fn every_role_that_watches_may_read_the_whole_watch_set() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in [
            "deploy/rbac.yaml",
            "charts/accord/templates/operator-rbac.yaml",
            "charts/accord/templates/dashboard-rbac.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(file)).expect(file);
            let granted = granted(&text);
            let missing: Vec<String> = watched()
                .iter()
                .map(|w| (w.resource.group.clone(), w.resource.plural.clone()))
                .filter(|k| !granted.contains(k))
                .map(|(g, r)| format!("{g}/{r}"))
                .collect();
            assert!(
                missing.is_empty(),
                "{file} does not grant list+watch on {missing:?}"
            );
        }
    }
}
