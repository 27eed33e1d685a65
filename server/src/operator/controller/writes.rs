//! The write side of the controller loop: reconcile a batch (plan, apply with bounded
//! concurrency, deletions last), statuses and Events, finalizers, orphaned policies, and the
//! API calls themselves.

use super::*;
use crate::k8s::ClientIntentsStatus;
use accord_policy::objects::NetworkPolicy;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use metrics::Op;
use serde_json::{Value, json};
use state::{Key, Write};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tracing::{Instrument, debug, error, info, info_span, warn};

impl Controller {
    pub(super) async fn reconcile(&mut self) {
        let started = Instant::now();
        let plan = self.state.plan();
        let subjects = plan.subjects.len();
        let writes = plan.writes.len();
        let span = info_span!("reconcile", subjects, writes);
        async {
            let mut failed: BTreeSet<Key> = BTreeSet::new();
            // Deletions go after everything else, and only for subjects whose other writes
            // succeeded: a policy (Accord's old one, or the upstream operator's on a takeover)
            // is never removed before what replaces it is in place.
            let (deletes, writes): (Vec<Write>, Vec<Write>) = plan
                .writes
                .into_iter()
                .partition(|w| matches!(w, Write::DeletePolicy { .. }));
            for (phase, batch) in [writes, deletes].into_iter().enumerate() {
            let batch: Vec<Write> = batch
                .into_iter()
                .filter(|w| phase == 0 || w.subject().is_none_or(|s| !failed.contains(s)))
                .collect();
            let results: Vec<WriteResult> = futures::stream::iter(batch)
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
            // Finalizers, once the policies and labels are written (a cold start puts every
            // policy and label in place first; an orphan left by a crash meanwhile is swept at
            // the next start) and before the statuses, whose writes change the resourceVersion
            // that makes each merge patch conditional: finalizers another controller added
            // meanwhile are not lost (a conflict means a newer version is on its way through the
            // watch, and it is handled then).
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
    pub(super) async fn sweep_orphans(&mut self) -> bool {
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
                annotations,
                ..
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
                m.request(Op::PatchPod);
                let patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
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
