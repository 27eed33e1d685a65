//! The controller loop: one task owns the watches and the index (`state.rs`), batches the
//! events that arrive together, plans the writes of the dirty subjects, executes them with
//! bounded concurrency, then writes statuses, Events and finalizers.

mod writes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use accord_policy::Origin;
use accord_policy::diagnostic::Diagnostic;
use accord_policy::inventory::Inventory;
use accord_policy::labels;
use accord_policy::objects::{NetworkPolicy, ObjectMeta};
use futures::channel::mpsc;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy as K8sNetworkPolicy};
use kube::api::{ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use serde_json::Value;
use tracing::{Instrument, info, info_span, warn};

use crate::k8s::ClientIntentsStatus;
use metrics::Op;
use state::{Key, State};

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Intents,
    Protected,
    Pod,
    /// Pod owners by kind (ReplicaSets, Jobs and the root kinds above them), as metadata.
    Owner(&'static str),
    /// Namespaces, as metadata.
    Namespace,
    Service,
    /// Ingresses: the Services they send traffic to expose servers outside the cluster.
    Ingress,
    /// Policies with the ownership label.
    Policy,
    /// Default-deny policies of ProtectedServices.
    DefaultDeny,
}

struct WatchInfo {
    kind: Kind,
    namespace: Option<String>,
    synced: bool,
    relist: Option<HashSet<Key>>,
}

enum Msg {
    Watch(usize, Result<Event<Value>, watcher::Error>),
    Retry(Key),
}

fn object_key(v: &Value) -> Key {
    let ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    (ns.to_string(), name.to_string())
}

fn to_json<K: serde::Serialize>(event: Event<K>) -> Event<Value> {
    let j = |k: K| serde_json::to_value(k).unwrap_or(Value::Null);
    match event {
        Event::Apply(k) => Event::Apply(j(k)),
        Event::Delete(k) => Event::Delete(j(k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(j(k)),
        Event::InitDone => Event::InitDone,
    }
}

fn meta_of(v: &Value) -> ObjectMeta {
    v.get("metadata")
        .cloned()
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default()
}

/// A Service or ProtectedService in the core's form (through the core's own loader).
fn core_object(doc: &Value) -> (Inventory, Vec<Diagnostic>) {
    let mut inv = Inventory::default();
    let mut diags = Vec::new();
    accord_policy::load::add_object(&mut inv, &Origin::default(), doc, None, &mut diags);
    (inv, diags)
}

/// The subject a write was for, its kind, and what it returned.
type WriteResult = (Option<Key>, Op, Result<Option<NetworkPolicy>, kube::Error>);

pub(super) struct Controller {
    client: Client,
    recorder: Recorder,
    settings: Settings,
    metrics: Arc<metrics::Metrics>,
    state: State,
    watches: Vec<WatchInfo>,
    intents_api: ApiResource,
    /// ClientIntents being deleted whose finalizer is removed once their subjects are clean.
    finalizing: HashMap<Key, (Vec<String>, Value, BTreeSet<Key>)>,
    /// ClientIntents that need Accord's finalizer: the full list to write, and the
    /// resourceVersion it was computed from.
    add_finalizer: HashMap<Key, (Vec<String>, Value)>,
    retry_tx: mpsc::UnboundedSender<Key>,
    retry_rx: Option<mpsc::UnboundedReceiver<Key>>,
    initial_done: bool,
    /// Whether the orphaned policies found at start have all been deleted.
    orphans_swept: bool,
}

impl Controller {
    pub(super) fn new(client: Client, settings: Settings, metrics: Arc<metrics::Metrics>) -> Self {
        let (retry_tx, retry_rx) = mpsc::unbounded();
        Controller {
            recorder: Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER)),
            client,
            state: State::new(settings.options.clone()),
            settings,
            metrics,
            watches: Vec::new(),
            intents_api: crate::k8s::client_intents_resource(),
            finalizing: HashMap::new(),
            add_finalizer: HashMap::new(),
            retry_tx,
            retry_rx: Some(retry_rx),
            initial_done: false,
            orphans_swept: false,
        }
    }

    fn streams(&mut self) -> SelectAll<BoxStream<'static, Msg>> {
        let mut all = SelectAll::new();
        let scopes: Vec<Option<String>> = if self.settings.namespaces.is_empty() {
            vec![None]
        } else {
            self.settings.namespaces.iter().cloned().map(Some).collect()
        };
        let client = self.client.clone();
        for ns in scopes {
            let dynamic = |ar: &ApiResource| match &ns {
                Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, ar),
                None => Api::<DynamicObject>::all_with(client.clone(), ar),
            };
            fn typed<K>(client: &Client, ns: &Option<String>) -> Api<K>
            where
                K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
                <K as kube::Resource>::DynamicType: Default,
            {
                match ns {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                }
            }
            let cfg = watcher::Config::default();
            let mut add =
                |kind: Kind, s: BoxStream<'static, Result<Event<Value>, watcher::Error>>| {
                    let i = self.watches.len();
                    self.watches.push(WatchInfo {
                        kind,
                        namespace: ns.clone(),
                        synced: false,
                        relist: None,
                    });
                    all.push(s.map(move |e| Msg::Watch(i, e)).boxed());
                };
            let intents = dynamic(&self.intents_api);
            add(
                Kind::Intents,
                watcher(intents, cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            let protected = dynamic(&crate::k8s::protected_service_resource());
            add(
                Kind::Protected,
                watcher(protected, cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            // Pending and running pods: every one of them gets its identity labels, and a
            // finished pod needs none (as upstream does).
            add(
                Kind::Pod,
                watcher(
                    typed::<PartialObjectMeta<Pod>>(&client, &ns),
                    cfg.clone()
                        .fields("status.phase!=Succeeded,status.phase!=Failed"),
                )
                .default_backoff()
                .map(|e| e.map(to_json))
                .boxed(),
            );
            fn owners<K>(
                client: &Client,
                ns: &Option<String>,
                cfg: &watcher::Config,
            ) -> BoxStream<'static, Result<Event<Value>, watcher::Error>>
            where
                K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
                    + Clone
                    + std::fmt::Debug
                    + Send
                    + serde::de::DeserializeOwned
                    + 'static,
                <K as kube::Resource>::DynamicType: Default,
            {
                let api: Api<PartialObjectMeta<K>> = match ns {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                };
                watcher(api, cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed()
            }
            add(
                Kind::Owner("ReplicaSet"),
                owners::<ReplicaSet>(&client, &ns, &cfg),
            );
            add(Kind::Owner("Job"), owners::<Job>(&client, &ns, &cfg));
            // The root kinds, so that an owner chain is followed to its real top (and a root
            // that is itself owned continues the chain), as upstream does.
            add(
                Kind::Owner("Deployment"),
                owners::<Deployment>(&client, &ns, &cfg),
            );
            add(
                Kind::Owner("StatefulSet"),
                owners::<StatefulSet>(&client, &ns, &cfg),
            );
            add(
                Kind::Owner("DaemonSet"),
                owners::<DaemonSet>(&client, &ns, &cfg),
            );
            add(
                Kind::Owner("CronJob"),
                owners::<CronJob>(&client, &ns, &cfg),
            );
            add(
                Kind::Owner("ReplicationController"),
                owners::<ReplicationController>(&client, &ns, &cfg),
            );
            // Namespace labels: all of them, or the watched namespaces' own.
            let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
            let ns_cfg = match &ns {
                Some(ns) => cfg.clone().fields(&format!("metadata.name={ns}")),
                None => cfg.clone(),
            };
            add(
                Kind::Namespace,
                watcher(namespaces, ns_cfg)
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            add(
                Kind::Service,
                watcher(typed::<Service>(&client, &ns), cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            add(
                Kind::Ingress,
                watcher(typed::<Ingress>(&client, &ns), cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            add(
                Kind::Policy,
                watcher(
                    typed::<K8sNetworkPolicy>(&client, &ns),
                    cfg.clone().labels(labels::NETWORK_POLICY),
                )
                .default_backoff()
                .map(|e| e.map(to_json))
                .boxed(),
            );
            add(
                Kind::DefaultDeny,
                watcher(
                    typed::<K8sNetworkPolicy>(&client, &ns),
                    cfg.clone().labels(labels::DEFAULT_DENY),
                )
                .default_backoff()
                .map(|e| e.map(to_json))
                .boxed(),
            );
        }
        if let Some(rx) = self.retry_rx.take() {
            all.push(rx.map(Msg::Retry).boxed());
        }
        all
    }

    pub(super) async fn run(mut self) {
        let mut streams = self.streams();
        info!(watches = self.watches.len(), namespaces = ?self.settings.namespaces, "watching");
        loop {
            let Some(msg) = streams.next().await else {
                return;
            };
            self.handle(msg).await;
            // Take every event that is already waiting, then a short pause for stragglers, so a
            // burst becomes one batch.
            let deadline = tokio::time::Instant::now() + self.settings.debounce;
            loop {
                match streams.next().now_or_never() {
                    Some(Some(msg)) => self.handle(msg).await,
                    Some(None) => return,
                    None => match tokio::time::timeout_at(deadline, streams.next()).await {
                        Ok(Some(msg)) => self.handle(msg).await,
                        Ok(None) => return,
                        Err(_) => break,
                    },
                }
            }
            if !self.initial_done {
                if !self.watches.iter().all(|w| w.synced) {
                    continue;
                }
                info!(
                    intents = self.state.intents.len(),
                    pods = self.state.pods.len(),
                    services = self.state.services.len(),
                    policies = self.state.live_policies.len(),
                    "every watch has listed; reconciling everything"
                );
                self.state.mark_all_dirty();
            }
            if self.state.has_dirty()
                || !self.finalizing.is_empty()
                || !self.add_finalizer.is_empty()
            {
                self.reconcile().await;
            }
            if !self.orphans_swept {
                self.orphans_swept = self.sweep_orphans().await;
            }
            if !self.initial_done {
                self.initial_done = true;
                self.metrics.set_ready(true);
                info!("initial reconcile done; ready");
            }
        }
    }

    async fn handle(&mut self, msg: Msg) {
        let (i, event) = match msg {
            Msg::Retry(key) => {
                self.state.mark_dirty(key);
                return;
            }
            Msg::Watch(i, Ok(e)) => (i, e),
            Msg::Watch(i, Err(e)) => {
                warn!(kind = ?self.watches[i].kind, error = %e, "watch error; retrying with backoff");
                return;
            }
        };
        match event {
            Event::Init => self.watches[i].relist = Some(HashSet::new()),
            Event::InitApply(obj) => {
                if let Some(set) = self.watches[i].relist.as_mut() {
                    set.insert(object_key(&obj));
                }
                self.apply(i, obj).await;
            }
            Event::InitDone => {
                // The objects that were not listed again are gone (deletes may be missed while
                // a watch is down).
                let seen = self.watches[i].relist.take().unwrap_or_default();
                let kind = self.watches[i].kind;
                let scope = self.watches[i].namespace.clone();
                let known: Vec<Key> = match kind {
                    Kind::Intents => self.state.intents.keys().cloned().collect(),
                    Kind::Protected => self.state.protected.keys().cloned().collect(),
                    Kind::Pod => self.state.pods.keys().cloned().collect(),
                    Kind::Owner(owner) => self.state.owner_keys(owner),
                    // Cluster-scoped: keyed like `object_key` does, by ("default", name).
                    Kind::Namespace => self
                        .state
                        .namespaces
                        .keys()
                        .map(|n| ("default".to_string(), n.clone()))
                        .collect(),
                    Kind::Service => self.state.services.keys().cloned().collect(),
                    Kind::Ingress => self.state.ingresses.keys().cloned().collect(),
                    Kind::Policy | Kind::DefaultDeny => {
                        let label = if kind == Kind::Policy {
                            labels::NETWORK_POLICY
                        } else {
                            labels::DEFAULT_DENY
                        };
                        self.state
                            .live_policies
                            .iter()
                            .filter(|(_, p)| p.metadata.labels.contains_key(label))
                            .map(|(k, _)| k.clone())
                            .collect()
                    }
                };
                for key in known {
                    let namespace = if kind == Kind::Namespace {
                        &key.1
                    } else {
                        &key.0
                    };
                    if scope.as_ref().is_none_or(|ns| ns == namespace) && !seen.contains(&key) {
                        self.delete(kind, &key);
                    }
                }
                self.watches[i].synced = true;
            }
            Event::Apply(obj) => self.apply(i, obj).await,
            Event::Delete(obj) => {
                let key = object_key(&obj);
                self.delete(self.watches[i].kind, &key);
            }
        }
    }

    async fn apply(&mut self, i: usize, obj: Value) {
        let key = object_key(&obj);
        match self.watches[i].kind {
            Kind::Intents => {
                self.apply_intents(obj)
                    .instrument(info_span!("intents", ns = %key.0, name = %key.1))
                    .await
            }
            Kind::Protected => {
                let (inv, diags) = core_object(&obj);
                match inv.protected_services.into_iter().next() {
                    Some(p) => self.state.apply_protected(p),
                    None => {
                        warn!(ns = %key.0, name = %key.1, ?diags, "skipping an invalid ProtectedService")
                    }
                }
            }
            Kind::Pod => self.state.apply_pod(meta_of(&obj)),
            Kind::Owner(owner) => self.state.apply_owner(owner, meta_of(&obj)),
            Kind::Namespace => self.state.apply_namespace(meta_of(&obj)),
            Kind::Service => {
                let (inv, diags) = core_object(&obj);
                match inv.services.into_iter().next() {
                    Some(s) => self.state.apply_service(s),
                    None => {
                        warn!(ns = %key.0, name = %key.1, ?diags, "skipping a Service that could not be read")
                    }
                }
            }
            Kind::Ingress => {
                let (inv, _) = core_object(&obj);
                self.state.apply_ingress(key, inv.ingress_backends);
            }
            Kind::Policy | Kind::DefaultDeny => {
                match serde_json::from_value::<NetworkPolicy>(obj) {
                    Ok(p) => self.state.apply_live_policy(p),
                    Err(e) => {
                        warn!(ns = %key.0, name = %key.1, error = %e, "skipping a NetworkPolicy that could not be read")
                    }
                }
            }
        }
    }

    fn delete(&mut self, kind: Kind, key: &Key) {
        match kind {
            Kind::Intents => {
                self.state.delete_intents(key);
                self.finalizing.remove(key);
                self.add_finalizer.remove(key);
            }
            Kind::Protected => self.state.delete_protected(key),
            Kind::Pod => self.state.delete_pod(key),
            Kind::Owner(owner) => self.state.delete_owner(owner, &key.0, &key.1),
            Kind::Namespace => self.state.delete_namespace(&key.1),
            Kind::Service => self.state.delete_service(key),
            Kind::Ingress => self.state.delete_ingress(key),
            Kind::Policy | Kind::DefaultDeny => self.state.delete_live_policy(key),
        }
    }

    async fn apply_intents(&mut self, obj: Value) {
        let key = object_key(&obj);
        let finalizers: Vec<String> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            info!("intents are being deleted; cleaning up");
            let subjects = self
                .state
                .intents
                .get(&key)
                .map(|e| e.subjects.clone())
                .unwrap_or_default();
            self.state.delete_intents(&key);
            if has_finalizer || finalizers.iter().any(|f| is_upstream_finalizer(f)) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                self.finalizing.insert(key, (finalizers, rv, subjects));
            }
            return;
        }
        // Added with the next batch's writes, concurrently with the others; the upstream
        // operator's finalizer is replaced by Accord's (it would otherwise keep the object
        // forever once that operator is gone).
        if let Some(all) = takeover_finalizers(&finalizers) {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            self.add_finalizer.insert(key.clone(), (all, rv));
        }
        let diags = self.state.apply_intents(&obj);
        if diags.iter().any(Diagnostic::is_error) {
            self.metrics.invalid_intents();
            warn!(problems = %diags.iter().map(|d| format!("{}: {}", d.field, d.message)).collect::<Vec<_>>().join("; "), "invalid intents");
        }
    }
}

/// A merge patch of the status subresource.
#[derive(Debug, serde::Serialize)]
struct StatusPatch<'a> {
    status: &'a ClientIntentsStatus,
}
