//! The controller loop: one task owns the shared watch set and index (`crate::cluster`) and the
//! planner's state (`state.rs`) derived from it, batches the events that arrive together, plans
//! the writes of the dirty subjects, executes them with bounded concurrency, then writes
//! statuses, Events and finalizers.

mod writes;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use accord_policy::Origin;
use accord_policy::diagnostic::Diagnostic;
use accord_policy::inventory::{Inventory, WORKLOAD_KINDS};
use accord_policy::labels;
use accord_policy::objects::{NetworkPolicy, ObjectMeta};
use futures::channel::mpsc;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::ApiResource;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::Value;
use tracing::{Instrument, info, info_span, warn};

use crate::cluster;
use crate::k8s::ClientIntentsStatus;
use metrics::Op;
use state::{Key, State};

use super::*;

enum Msg {
    Change(cluster::Change),
    Retry(Key),
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
    /// The shared model of the cluster (`crate::cluster`), fed by the shared watch set; the
    /// planner's `state` is derived from its changes.
    index: cluster::Index,
    state: State,
    /// Every watch has delivered its first list.
    synced: bool,
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
            index: cluster::Index::default(),
            state: State::new(settings.options.clone()),
            synced: false,
            intents_api: crate::k8s::client_intents_resource(),
            settings,
            metrics,
            finalizing: HashMap::new(),
            add_finalizer: HashMap::new(),
            retry_tx,
            retry_rx: Some(retry_rx),
            initial_done: false,
            orphans_swept: false,
        }
    }

    async fn streams(&mut self) -> SelectAll<BoxStream<'static, Msg>> {
        let mut all = SelectAll::new();
        let options = cluster::Options {
            namespaces: self.settings.namespaces.clone(),
            settings_namespace: None,
            require_accord_kinds: true,
        };
        all.push(
            cluster::watch(self.client.clone(), options)
                .await
                .map(Msg::Change)
                .boxed(),
        );
        if let Some(rx) = self.retry_rx.take() {
            all.push(rx.map(Msg::Retry).boxed());
        }
        all
    }

    pub(super) async fn run(mut self) {
        let mut streams = self.streams().await;
        info!(namespaces = ?self.settings.namespaces, "watching");
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
                if !self.synced {
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
        match msg {
            Msg::Retry(key) => self.state.mark_dirty(key),
            Msg::Change(cluster::Change::Synced) => self.synced = true,
            // Logged by the watch; the planner keeps working from the last state seen.
            Msg::Change(cluster::Change::Health { .. }) => {}
            Msg::Change(change) => {
                self.index.apply_change(change);
                for key in self.index.take_changed() {
                    self.changed(key).await;
                }
            }
        }
    }

    /// Bring the planner's state up to date with one object of the index (its new version, or
    /// its absence).
    async fn changed(&mut self, (kind, namespace, name): cluster::ObjectKey) {
        let obj = self.index.get(&kind, &namespace, &name).cloned();
        let key: Key = (namespace, name);
        let Some(obj) = obj else {
            match kind.as_str() {
                "ClientIntents" => {
                    self.state.delete_intents(&key);
                    self.finalizing.remove(&key);
                    self.add_finalizer.remove(&key);
                }
                "ProtectedService" => self.state.delete_protected(&key),
                "Pod" => self.state.delete_pod(&key),
                "Namespace" => self.state.delete_namespace(&key.1),
                "Service" => self.state.delete_service(&key),
                "Ingress" => self.state.delete_ingress(&key),
                "NetworkPolicy" => self.state.delete_live_policy(&key),
                owner if WORKLOAD_KINDS.contains(&owner) => {
                    self.state.delete_owner(owner, &key.0, &key.1)
                }
                _ => {}
            }
            return;
        };
        match kind.as_str() {
            "ClientIntents" => {
                let span = info_span!("intents", ns = %key.0, name = %key.1);
                self.apply_intents(key, obj).instrument(span).await
            }
            "ProtectedService" => {
                let (inv, diags) = core_object(&obj);
                match inv.protected_services.into_iter().next() {
                    Some(p) => self.state.apply_protected(p),
                    None => {
                        warn!(ns = %key.0, name = %key.1, ?diags, "skipping an invalid ProtectedService")
                    }
                }
            }
            "Pod" => self.state.apply_pod(meta_of(&obj)),
            "Namespace" => self.state.apply_namespace(meta_of(&obj)),
            "Service" => {
                let (inv, diags) = core_object(&obj);
                match inv.services.into_iter().next() {
                    Some(s) => self.state.apply_service(s),
                    None => {
                        warn!(ns = %key.0, name = %key.1, ?diags, "skipping a Service that could not be read")
                    }
                }
            }
            "Ingress" => {
                let (inv, _) = core_object(&obj);
                self.state.apply_ingress(key, inv.ingress_backends);
            }
            // Only Accord's own policies (generated or default-deny) are the operator's; a
            // policy that lost its label is no longer one of them.
            "NetworkPolicy" => {
                let ours = obj
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .is_some_and(|l| {
                        l.contains_key(labels::NETWORK_POLICY)
                            || l.contains_key(labels::DEFAULT_DENY)
                    });
                if !ours {
                    self.state.delete_live_policy(&key);
                    return;
                }
                match serde_json::from_value::<NetworkPolicy>(obj) {
                    Ok(p) => self.state.apply_live_policy(p),
                    Err(e) => {
                        warn!(ns = %key.0, name = %key.1, error = %e, "skipping a NetworkPolicy that could not be read")
                    }
                }
            }
            owner if WORKLOAD_KINDS.contains(&owner) => {
                self.state.apply_owner(owner, meta_of(&obj))
            }
            _ => {}
        }
    }

    async fn apply_intents(&mut self, key: Key, obj: Value) {
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
