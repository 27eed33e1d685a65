//! The operator: watches ClientIntents and what they refer to, and keeps NetworkPolicies, pod
//! labels and ClientIntents statuses as the core says they should be.
//!
//! In: watch events of ClientIntents and ProtectedServices (untyped, so a malformed object is
//! reported on its status instead of breaking the watch), Pods, their owners up to the root
//! kinds and Namespaces (metadata only), Services, and the NetworkPolicies carrying Accord's
//! labels. With `--webhook-listen`, also the API server's conversion and admission reviews
//! ([`webhook`]). Out: server-side applied
//! NetworkPolicies (field manager [`FIELD_MANAGER`]), merge patches of pod labels, deletions
//! of policies carrying Accord's labels only, status patches, a finalizer on ClientIntents.
//!
//! One task owns the [`state::State`]: events update it and mark subjects dirty; when no event is
//! waiting, the dirty subjects are planned and the writes run concurrently. Leader election on a
//! Lease makes a second replica a standby.

pub mod leader;
pub mod metrics;
pub mod state;
pub mod webhook;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_policy::diagnostic::Diagnostic;
use accord_policy::inventory::Inventory;
use accord_policy::labels;
use accord_policy::objects::{NetworkPolicy, ObjectMeta};
use accord_policy::{GenerateOptions, Origin};
use futures::channel::mpsc;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, SinkExt, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event as K8sEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::k8s::ClientIntentsStatus;
use metrics::Op;
use state::{Key, State, Write};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "accord-operator";
/// The finalizer Accord puts on ClientIntents so that deleting them always cleans up.
pub const FINALIZER: &str = "intents.otterize.com/accord-operator";

/// Operator settings (from `accord operator`'s flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub options: GenerateOptions,
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    pub metrics_listen: SocketAddr,
    /// `None` disables leader election.
    pub lease: Option<leader::LeaseConfig>,
    /// Concurrent API requests while applying a batch.
    pub concurrency: usize,
    /// How long to wait for more events before reconciling a batch.
    pub debounce: Duration,
    /// The conversion and validating webhooks; `None` serves none.
    pub webhook: Option<webhook::Config>,
    /// Where the leader publishes these settings (`crate::settings`) for `accord serve`;
    /// `None` publishes nothing.
    pub settings_namespace: Option<String>,
}

impl Settings {
    fn published(&self) -> crate::settings::Published {
        crate::settings::Published {
            generation: self.options.clone(),
            watched_namespaces: self.namespaces.clone(),
        }
    }
}

/// Publish the settings this operator runs with, retrying with backoff until the API server
/// takes them (the dashboard then compares the cluster with what this operator generates).
async fn publish_settings(client: Client, namespace: String, settings: crate::settings::Published) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let doc = settings.configmap(&namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut delay = Duration::from_secs(1);
    loop {
        match api
            .patch(crate::settings::CONFIGMAP, &params, &Patch::Apply(&doc))
            .await
        {
            Ok(_) => {
                info!(%namespace, name = crate::settings::CONFIGMAP, "published the generation settings");
                return;
            }
            Err(e) => {
                warn!(%namespace, name = crate::settings::CONFIGMAP, error = %e, "publishing the generation settings failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    #[error("serving metrics on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    #[error("serving webhooks on {0}: {1}")]
    WebhookListen(SocketAddr, #[source] std::io::Error),
    #[error(transparent)]
    Webhook(#[from] webhook::Error),
}

pub fn client_intents_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            crate::k8s::GROUP,
            crate::k8s::STORAGE_VERSION,
            "ClientIntents",
        ),
        "clientintents",
    )
}

fn protected_service_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            crate::k8s::GROUP,
            crate::k8s::STORAGE_VERSION,
            "ProtectedService",
        ),
        "protectedservices",
    )
}

/// Run the operator until interrupted (or until it loses the lease).
pub async fn run(settings: Settings) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Client)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind(settings.metrics_listen)
        .await
        .map_err(|e| Error::Listen(settings.metrics_listen, e))?;
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics, /healthz, /readyz");
    tokio::spawn(metrics::serve(listener, metrics.clone()));
    // Every replica serves the webhooks, leader or not: the API server calls any of them.
    if let Some(config) = &settings.webhook {
        let tls = webhook::Tls::prepare(&config.tls)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::WebhookListen(config.listen, e))?;
        tokio::spawn(webhook::serve(
            listener,
            tls.server,
            webhook::router(client.clone()),
        ));
        if let webhook::TlsSource::Files { cert, key } = &config.tls {
            tokio::spawn(webhook::keep_reloading(
                tls.certificate,
                cert.clone(),
                key.clone(),
            ));
        }
        tokio::spawn(webhook::keep_injected(
            client.clone(),
            tls.generated_ca,
            config.url.clone(),
        ));
    }

    let publish = |client: &Client| {
        if let Some(ns) = &settings.settings_namespace {
            tokio::spawn(publish_settings(
                client.clone(),
                ns.clone(),
                settings.published(),
            ));
        }
    };
    let Some(lease) = settings.lease.clone() else {
        metrics.set_leader(true);
        publish(&client);
        tokio::select! {
            () = Controller::new(client, settings, metrics).run() => {}
            () = shutdown_signal() => info!("shutting down"),
        }
        return Ok(());
    };
    let mut elector = leader::Elector::new(client.clone(), lease);
    // Losing the lease (e.g. the API server was unreachable for longer than the lease) stops
    // the controller and makes this replica a standby again; when it leads again, it starts
    // from fresh lists.
    loop {
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown_signal() => { info!("shutting down while standing by"); return Ok(()); }
        }
        metrics.set_leader(true);
        metrics.set_ready(false);
        publish(&client);
        let lost = tokio::select! {
            () = Controller::new(client.clone(), settings.clone(), metrics.clone()).run() => false,
            () = elector.keep_renewing() => true,
            () = shutdown_signal() => { info!("shutting down"); elector.release().await; false }
        };
        metrics.set_leader(false);
        if !lost {
            return Ok(());
        }
        warn!("lost the lease; standing by");
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

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

struct Controller {
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
    fn new(client: Client, settings: Settings, metrics: Arc<metrics::Metrics>) -> Self {
        let (retry_tx, retry_rx) = mpsc::unbounded();
        Controller {
            recorder: Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER)),
            client,
            state: State::new(settings.options.clone()),
            settings,
            metrics,
            watches: Vec::new(),
            intents_api: client_intents_resource(),
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
            let protected = dynamic(&protected_service_resource());
            add(
                Kind::Protected,
                watcher(protected, cfg.clone())
                    .default_backoff()
                    .map(|e| e.map(to_json))
                    .boxed(),
            );
            add(
                Kind::Pod,
                watcher(typed::<PartialObjectMeta<Pod>>(&client, &ns), cfg.clone())
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

    async fn run(mut self) {
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
            if has_finalizer {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                self.finalizing.insert(key, (finalizers, rv, subjects));
            }
            return;
        }
        if !has_finalizer {
            // Added with the next batch's writes, concurrently with the others.
            let mut all = finalizers.clone();
            all.push(FINALIZER.to_string());
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

    async fn reconcile(&mut self) {
        let started = Instant::now();
        // The resourceVersion makes each merge patch conditional: finalizers another
        // controller added meanwhile are not lost (a conflict means a newer version is on its
        // way through the watch, and it is handled then).
        let additions: Vec<(Key, (Vec<String>, Value))> = self.add_finalizer.drain().collect();
        let this = &*self;
        futures::stream::iter(additions)
            .for_each_concurrent(self.settings.concurrency.max(1), |(key, (all, rv))| async move {
                let api = Api::<DynamicObject>::namespaced_with(this.client.clone(), &key.0, &this.intents_api);
                let patch = json!({"metadata": {"finalizers": all, "resourceVersion": rv}});
                this.metrics.request(Op::Finalizer);
                if let Err(e) = api.patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    this.metrics.error(Op::Finalizer, &e);
                    debug!(ns = %key.0, name = %key.1, error = %e, "adding the finalizer failed");
                }
            })
            .await;
        let plan = self.state.plan();
        let subjects = plan.subjects.len();
        let writes = plan.writes.len();
        let span = info_span!("reconcile", subjects, writes);
        async {
            let mut failed: BTreeSet<Key> = BTreeSet::new();
            let results: Vec<WriteResult> = futures::stream::iter(plan.writes)
                .map(|w| {
                    let subject = w.subject().cloned();
                    let op = Op::of(&w);
                    let this = &*self;
                    async move { (subject, op, this.execute_inner(w).await) }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
            for (subject, op, result) in results {
                match result {
                    Ok(Some(applied)) => self.state.record_applied(applied),
                    Ok(None) => {}
                    Err(e) => {
                        self.metrics.error(op, &e);
                        if let Some(s) = subject {
                            warn!(ns = %s.0, name = %s.1, error = %e, "write failed; will retry");
                            failed.insert(s);
                        }
                    }
                }
            }
            for s in &plan.subjects {
                if failed.contains(s) {
                    self.state.failed.insert(s.clone());
                } else {
                    self.state.failed.remove(s);
                }
            }
            for s in failed {
                let mut tx = self.retry_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = tx.send(s).await;
                });
            }
            // Statuses, after the writes they report on.
            let now = Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()));
            let patches: Vec<(Key, ClientIntentsStatus)> = plan
                .statuses
                .iter()
                .filter_map(|s| state::status_patch(s, &self.state.failed, &now).map(|p| (s.key.clone(), p)))
                .collect();
            let results: Vec<(Key, ClientIntentsStatus, Result<Option<NetworkPolicy>, kube::Error>)> = futures::stream::iter(patches)
                .map(|(key, status)| {
                    let this = &*self;
                    async move {
                        let r = this
                            .execute_inner(Write::PatchStatus {
                                namespace: key.0.clone(),
                                name: key.1.clone(),
                                status: status.clone(),
                            })
                            .await;
                        (key, status, r)
                    }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
            let mut events = Vec::new();
            for (key, status, r) in results {
                match r {
                    Ok(_) => {
                        if let Some(e) = self.state.intents.get_mut(&key) {
                            if let Some(event) = status_event(&e.status, &status) {
                                events.push((key.clone(), e.uid.clone(), event));
                            }
                            e.status = status;
                        }
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        self.metrics.error(Op::PatchStatus, &e);
                        warn!(ns = %key.0, name = %key.1, error = %e, "status update failed");
                    }
                }
            }
            // Events for status changes a person should see.
            let this = &*self;
            futures::stream::iter(events)
                .for_each_concurrent(self.settings.concurrency.max(1), |(key, uid, event)| async move {
                    let reference = ObjectReference {
                        api_version: Some(format!("{}/{}", crate::k8s::GROUP, crate::k8s::STORAGE_VERSION)),
                        kind: Some("ClientIntents".into()),
                        namespace: Some(key.0.clone()),
                        name: Some(key.1.clone()),
                        uid,
                        ..Default::default()
                    };
                    this.metrics.request(Op::Event);
                    if let Err(e) = this.recorder.publish(&event, &reference).await {
                        this.metrics.error(Op::Event, &e);
                        debug!(ns = %key.0, name = %key.1, error = %e, "publishing an event failed");
                    }
                })
                .await;
            // Finalizers of deleted intents whose subjects are clean.
            // Only once every subject of the deleted intents was written successfully.
            let done: Vec<(Key, Vec<String>, Value)> = self
                .finalizing
                .iter()
                .filter(|(_, (_, _, subjects))| subjects.iter().all(|s| !self.state.failed.contains(s)))
                .map(|(k, (f, rv, _))| (k.clone(), f.clone(), rv.clone()))
                .collect();
            for (key, finalizers, rv) in done {
                self.finalizing.remove(&key);
                match self.remove_finalizer(&key, finalizers, rv).await {
                    Ok(()) => info!(ns = %key.0, name = %key.1, "cleaned up; finalizer removed"),
                    Err(e) => {
                        self.metrics.error(Op::Finalizer, &e);
                        warn!(ns = %key.0, name = %key.1, error = %e, "removing the finalizer failed; the next event retries");
                    }
                }
            }
        }
        .instrument(span)
        .await;
        self.metrics.batch(subjects, started.elapsed());
        debug!(
            subjects,
            writes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reconciled"
        );
    }

    /// Remove Accord's finalizer with a patch guarded by the resourceVersion, so that finalizers
    /// other controllers add or remove meanwhile are kept; on a conflict, read the object again
    /// and retry.
    async fn remove_finalizer(
        &self,
        key: &Key,
        mut finalizers: Vec<String>,
        mut rv: Value,
    ) -> Result<(), kube::Error> {
        let api =
            Api::<DynamicObject>::namespaced_with(self.client.clone(), &key.0, &self.intents_api);
        for attempt in 0.. {
            let Some(patch) = finalizer_removal_patch(&finalizers, &rv) else {
                return Ok(());
            };
            self.metrics.request(Op::Finalizer);
            match api
                .patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => {
                    debug!(ns = %key.0, name = %key.1, "finalizers changed meanwhile; reading them again");
                    let Some(current) = api.get_opt(&key.1).await? else {
                        return Ok(());
                    };
                    finalizers = current.metadata.finalizers.unwrap_or_default();
                    rv = json!(current.metadata.resource_version);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Delete the policies carrying our labels that nothing wants any more (their intents were
    /// deleted while no operator ran). Returns whether every one is gone; a failure is logged,
    /// counted and retried a second later (a retry message wakes the loop, which sweeps again).
    async fn sweep_orphans(&mut self) -> bool {
        let mut all_gone = true;
        for (ns, name) in self.state.orphan_policies() {
            info!(%ns, %name, "deleting a policy no intents want");
            let write = Write::DeletePolicy {
                subject: (ns.clone(), name.clone()),
                namespace: ns.clone(),
                name: name.clone(),
            };
            if let Err(e) = self.execute(write).await {
                error!(%ns, %name, error = %e, "deleting a policy no intents want failed; will retry");
                self.metrics.error(Op::DeletePolicy, &e);
                all_gone = false;
            }
        }
        if !all_gone {
            let mut tx = self.retry_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                // Any key wakes the loop; the sweep runs again after the next reconcile.
                let _ = tx.send((String::new(), String::new())).await;
            });
        }
        all_gone
    }

    async fn execute(&mut self, write: Write) -> Result<(), kube::Error> {
        let r = self.execute_inner(write.clone()).await;
        if r.is_ok()
            && let Write::DeletePolicy {
                namespace, name, ..
            } = write
        {
            self.state.live_policies.remove(&(namespace, name));
        }
        r.map(|_| ())
    }

    /// Run one write; an applied policy is returned as the API server stored it.
    async fn execute_inner(&self, write: Write) -> Result<Option<NetworkPolicy>, kube::Error> {
        let m = &self.metrics;
        match write {
            Write::ApplyPolicy { policy, .. } => {
                let ns = policy.namespace().to_string();
                let name = policy.metadata.name.clone();
                let api: Api<K8sNetworkPolicy> = Api::namespaced(self.client.clone(), &ns);
                m.request(Op::ApplyPolicy);
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let applied = api.patch(&name, &params, &Patch::Apply(&policy)).await?;
                info!(%ns, %name, "applied NetworkPolicy");
                return Ok(serde_json::to_value(applied)
                    .ok()
                    .and_then(|v| serde_json::from_value(v).ok()));
            }
            Write::DeletePolicy {
                namespace, name, ..
            } => {
                let api: Api<K8sNetworkPolicy> = Api::namespaced(self.client.clone(), &namespace);
                m.request(Op::DeletePolicy);
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => info!(ns = %namespace, %name, "deleted NetworkPolicy"),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Write::PatchPodLabels {
                namespace,
                name,
                labels,
                ..
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
                m.request(Op::PatchPod);
                let patch = json!({"metadata": {"labels": labels}});
                match api
                    .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => debug!(ns = %namespace, %name, "patched pod labels"),
                    // The pod is gone; its replacement gets its own event.
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Write::PatchStatus {
                namespace,
                name,
                status,
            } => {
                let api = Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    &namespace,
                    &self.intents_api,
                );
                m.request(Op::PatchStatus);
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&StatusPatch { status: &status }),
                )
                .await?;
            }
        }
        Ok(None)
    }
}

/// A merge patch of the status subresource.
#[derive(Debug, serde::Serialize)]
struct StatusPatch<'a> {
    status: &'a ClientIntentsStatus,
}

/// The Event to publish when a ClientIntents status changes from `old` to `new`: a warning
/// when it became invalid, unresolved or failed to apply, a normal event when a new generation
/// was applied.
fn status_event(old: &ClientIntentsStatus, new: &ClientIntentsStatus) -> Option<K8sEvent> {
    let condition = |s: &ClientIntentsStatus, kind: &str| -> Option<(String, String, String)> {
        let c = s.conditions.iter().find(|c| c.type_ == kind)?;
        Some((c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    for kind in ["Valid", "Unique", "TargetsResolved", "PoliciesApplied"] {
        if let Some((status, reason, message)) = condition(new, kind)
            && status == "False"
            && condition(old, kind) != Some((status, reason.clone(), message.clone()))
        {
            return Some(K8sEvent {
                type_: EventType::Warning,
                reason,
                note: Some(message),
                action: "Reconcile".into(),
                secondary: None,
            });
        }
    }
    let applied = new.up_to_date && new.observed_generation != old.observed_generation;
    applied.then(|| K8sEvent {
        type_: EventType::Normal,
        reason: "Applied".into(),
        note: condition(new, "PoliciesApplied").map(|c| c.2),
        action: "Reconcile".into(),
        secondary: None,
    })
}

/// The merge patch that removes Accord's finalizer from `finalizers` as of resourceVersion
/// `rv` (the API server answers 409 Conflict when the object changed since), or `None` when
/// the finalizer is not there.
fn finalizer_removal_patch(finalizers: &[String], rv: &Value) -> Option<Value> {
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return None;
    }
    let remaining: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    Some(json!({"metadata": {"finalizers": remaining, "resourceVersion": rv}}))
}

/// Log a fatal error the same way everywhere.
pub fn log_fatal(e: &Error) {
    error!(error = %e, "operator stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_removal_is_guarded_and_keeps_other_finalizers() {
        let all = vec!["example.com/keep".to_string(), FINALIZER.to_string()];
        assert_eq!(
            finalizer_removal_patch(&all, &json!("42")),
            Some(
                json!({"metadata": {"finalizers": ["example.com/keep"], "resourceVersion": "42"}})
            )
        );
        assert_eq!(
            finalizer_removal_patch(&["example.com/keep".to_string()], &json!("43")),
            None
        );
    }

    #[test]
    fn a_duplicate_becomes_a_warning_event_of_its_own() {
        let status =
            |v: Value| -> ClientIntentsStatus { serde_json::from_value(v).expect("a status") };
        let old = status(
            json!({"conditions": [{"type": "Unique", "status": "True", "reason": "Unique", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let new = status(
            json!({"conditions": [{"type": "Unique", "status": "False", "reason": "DuplicateIntents", "message": "spec.workload: taken", "lastTransitionTime": "2026-01-02T00:00:00Z"}]}),
        );
        let event = status_event(&old, &new).expect("an event");
        assert_eq!(event.reason, "DuplicateIntents");
        assert_eq!(event.type_, EventType::Warning);
    }
}
