//! The operator: watches ClientIntents and what they refer to, and keeps NetworkPolicies, pod
//! labels and ClientIntents statuses as the core says they should be.
//!
//! In: the shared watch set of [`crate::cluster`] (the same kinds, versions and index as the
//! dashboard's: ClientIntents and ProtectedServices untyped, so a malformed object is reported
//! on its status instead of breaking the watch; pods, their owners up to the root kinds,
//! Namespaces, Services, Ingresses and NetworkPolicies). With `--webhook-listen`, also the API
//! server's conversion and admission reviews ([`webhook`]). Out: server-side applied
//! NetworkPolicies (field manager [`FIELD_MANAGER`]), merge patches of pod labels, deletions
//! of policies carrying Accord's labels only, status patches, a finalizer on ClientIntents.
//!
//! One task owns the index and the planner's [`state::State`]: changed objects update the
//! state and mark subjects dirty; when no event is waiting, the dirty subjects are planned and
//! the writes run concurrently. Leader election on a
//! Lease makes a second replica a standby.

mod controller;
pub mod leader;
pub mod metrics;
pub mod state;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use accord_policy::GenerateOptions;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as K8sEvent, EventType};
use kube::{Api, Client};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::k8s::ClientIntentsStatus;
use controller::Controller;

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

/// Whether a finalizer on ClientIntents is the upstream Otterize operator's: any in the
/// `intents.otterize.com/` domain but Accord's own. Accord takes them over when it takes over
/// a cluster from that operator (see deploy/README.md), which must be stopped first.
pub fn is_upstream_finalizer(f: &str) -> bool {
    f.starts_with("intents.otterize.com/") && f != FINALIZER
}

/// The finalizers ClientIntents should carry under Accord (its own added, the upstream
/// operator's dropped, anyone else's kept), or `None` when they already do.
fn takeover_finalizers(finalizers: &[String]) -> Option<Vec<String>> {
    let mut all: Vec<String> = finalizers
        .iter()
        .filter(|f| !is_upstream_finalizer(f))
        .cloned()
        .collect();
    if !all.iter().any(|f| f == FINALIZER) {
        all.push(FINALIZER.to_string());
    }
    (all != finalizers).then_some(all)
}

/// The merge patch that removes Accord's finalizer (and any the upstream operator left) from
/// `finalizers` as of resourceVersion `rv` (the API server answers 409 Conflict when the
/// object changed since), or `None` when neither is there.
fn finalizer_removal_patch(finalizers: &[String], rv: &Value) -> Option<Value> {
    let ours = |f: &String| f == FINALIZER || is_upstream_finalizer(f);
    if !finalizers.iter().any(ours) {
        return None;
    }
    let remaining: Vec<&String> = finalizers.iter().filter(|f| !ours(f)).collect();
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
    fn the_upstream_operators_finalizer_is_taken_over() {
        let upstream = "intents.otterize.com/svc-network-policy-finalizer".to_string();
        let keep = "example.com/keep".to_string();
        assert_eq!(
            takeover_finalizers(&[upstream.clone(), keep.clone()]),
            Some(vec![keep.clone(), FINALIZER.to_string()])
        );
        assert_eq!(
            takeover_finalizers(&[keep.clone(), FINALIZER.to_string()]),
            None
        );
        // Deleted before Accord could take it over: the upstream finalizer is removed once
        // Accord has cleaned up.
        assert_eq!(
            finalizer_removal_patch(&[upstream, keep], &json!("7")),
            Some(json!({"metadata": {"finalizers": ["example.com/keep"], "resourceVersion": "7"}}))
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
