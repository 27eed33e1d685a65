//! The operator's in-memory view of the cluster, and what to change in it.
//!
//! Synchronous and free of I/O, like an index in linkerd's policy controller: watch events go in
//! ([`State::apply_intents`], [`State::apply_pod`], …) and mark *subjects* dirty; [`State::plan`]
//! turns the dirty subjects into the writes that bring the cluster to the desired state.
//!
//! A subject is a `(namespace, name)` that intents refer to, as a client or as a target. The
//! desired policies and pod labels of a subject depend only on the intents that refer to it, so
//! a change to one client's intents recomputes only the servers it names (and the client
//! itself), never the whole cluster: the core generates over a small inventory holding just
//! those intents and the Services and pods they refer to.

mod plan;
mod status;
#[cfg(test)]
mod tests;

pub use plan::{pod_patch, same_policy};
pub use status::{StatusInput, status_patch};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use accord_policy::GenerateOptions;
use accord_policy::diagnostic::{Diagnostic, Origin};
use accord_policy::generate::{DEFAULT_DENY_PREFIX, called_by};
use accord_policy::identity::{self, WorkloadId};
use accord_policy::intents::{self, ClientIntents};
use accord_policy::inventory::{IngressBackend, Pod, ProtectedService};
use accord_policy::labels;
use accord_policy::objects::{Labels, NetworkPolicy, ObjectMeta, Service};
use serde_json::Value;

use crate::k8s::ClientIntentsStatus;

/// `(namespace, name)` of an object, or of a subject.
pub type Key = (String, String);

/// What the operator knows about one ClientIntents object.
#[derive(Clone, Debug)]
pub struct IntentsEntry {
    pub uid: Option<String>,
    pub generation: Option<i64>,
    /// The normalized intents, `None` when the object could not be used at all.
    pub parsed: Option<ClientIntents>,
    /// Problems found parsing the object.
    pub parse_diagnostics: Vec<Diagnostic>,
    /// The status currently on the object (the default when there is none, or when it cannot be
    /// read: it is then rewritten).
    pub status: ClientIntentsStatus,
    pub subjects: BTreeSet<Key>,
}

#[derive(Clone, Debug)]
pub struct PodEntry {
    pub meta: ObjectMeta,
    pub workload: WorkloadId,
}

/// One change to make in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Server-side apply of a generated policy.
    ApplyPolicy {
        subject: Key,
        policy: Box<NetworkPolicy>,
    },
    DeletePolicy {
        subject: Key,
        namespace: String,
        name: String,
    },
    /// Merge patch of a pod's labels and annotations (a `null` value removes one).
    PatchPodLabels {
        subject: Key,
        namespace: String,
        name: String,
        labels: BTreeMap<String, Value>,
        annotations: BTreeMap<String, Value>,
    },
    /// Merge patch of a ClientIntents status.
    PatchStatus {
        namespace: String,
        name: String,
        status: ClientIntentsStatus,
    },
}

impl Write {
    pub fn subject(&self) -> Option<&Key> {
        match self {
            Write::ApplyPolicy { subject, .. }
            | Write::DeletePolicy { subject, .. }
            | Write::PatchPodLabels { subject, .. } => Some(subject),
            Write::PatchStatus { .. } => None,
        }
    }
}

/// Everything the watches told us, with indexes from subjects to what depends on them.
#[derive(Default)]
pub struct State {
    pub options: GenerateOptions,
    pub intents: HashMap<Key, IntentsEntry>,
    /// Subject → the ClientIntents that refer to it.
    by_subject: HashMap<Key, BTreeSet<Key>>,
    /// Ordered, so that the Services and pods of one namespace are a range.
    pub services: BTreeMap<Key, Service>,
    pub pods: BTreeMap<Key, PodEntry>,
    /// The Services each Ingress sends traffic to, by Ingress.
    pub ingresses: BTreeMap<Key, Vec<IngressBackend>>,
    /// Pods carrying the `called-by` annotation: their server subject and the callers named.
    called_by: BTreeMap<Key, (Key, BTreeSet<Key>)>,
    /// Subject (the pod's workload `(namespace, name)`) → pods.
    pods_by_workload: HashMap<Key, BTreeSet<Key>>,
    /// Metadata of pod owners (ReplicaSets, Jobs, …) by `(namespace, kind, name)`.
    owners: HashMap<(String, String, String), ObjectMeta>,
    pub protected: HashMap<Key, ProtectedService>,
    /// Labels of the namespaces in scope, by name.
    pub namespaces: HashMap<String, Labels>,
    /// The policies carrying Accord's ownership labels, as the API server last showed them.
    /// Ordered, so that the policies of one namespace are a range.
    pub live_policies: BTreeMap<Key, NetworkPolicy>,
    /// Which subject each desired policy belongs to (from the last plan).
    desired_owner: HashMap<Key, Key>,
    /// The names of the policies last planned per subject.
    desired_by_subject: HashMap<Key, BTreeSet<String>>,
    /// The policies last planned, to recognise the echoes of our own applies.
    desired_policies: HashMap<Key, NetworkPolicy>,
    /// The managed labels last planned per workload, to recognise echoes of label patches.
    desired_labels: HashMap<WorkloadId, Labels>,
    dirty: BTreeSet<Key>,
    /// ClientIntents whose status must be recomputed even if no subject of theirs is dirty.
    status_dirty: BTreeSet<Key>,
    /// Subjects whose last writes failed.
    pub failed: HashSet<Key>,
}

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone(),
    )
}

impl State {
    pub fn new(options: GenerateOptions) -> Self {
        State {
            options,
            ..Default::default()
        }
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.status_dirty.is_empty()
    }

    pub fn mark_dirty(&mut self, key: Key) {
        self.dirty.insert(key);
    }

    /// Marks every subject dirty (the initial full reconcile, and periodic resyncs).
    pub fn mark_all_dirty(&mut self) {
        let keys: Vec<Key> = self
            .by_subject
            .keys()
            .chain(self.pods_by_workload.keys())
            .chain(self.desired_by_subject.keys())
            .cloned()
            .collect();
        self.dirty.extend(keys);
        self.dirty.extend(
            self.protected
                .values()
                .map(|p| (p.namespace.clone(), p.service_name.clone())),
        );
        self.status_dirty.extend(self.intents.keys().cloned());
    }

    // ---- ClientIntents ----

    /// A ClientIntents object was added or changed (given as JSON). Returns the parse
    /// diagnostics. Only a change of the normalized model marks subjects dirty, so status
    /// updates do not cause recomputation.
    pub fn apply_intents(&mut self, doc: &Value) -> Vec<Diagnostic> {
        let meta: ObjectMeta = doc
            .get("metadata")
            .cloned()
            .and_then(|m| serde_json::from_value(m).ok())
            .unwrap_or_default();
        let key = key_of(&meta);
        let mut diags = Vec::new();
        let parsed = intents::parse(&Origin::default(), doc, &mut diags).map(|mut i| {
            // The origin and generation do not change what is generated; clear them so that
            // equality below means "same intents".
            i.generation = None;
            i
        });
        let generation = doc.pointer("/metadata/generation").and_then(Value::as_i64);
        let status = doc
            .get("status")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        let subjects = parsed
            .as_ref()
            .map(ClientIntents::subjects)
            .unwrap_or_default();
        let previous = self.intents.get(&key);
        let changed = previous.is_none_or(|p| p.parsed != parsed || p.parse_diagnostics != diags);
        let generation_changed = previous.is_none_or(|p| p.generation != generation);
        if changed {
            self.remove_intents_index(&key);
            for s in &subjects {
                self.by_subject
                    .entry(s.clone())
                    .or_default()
                    .insert(key.clone());
                self.dirty.insert(s.clone());
            }
        }
        if changed || generation_changed {
            self.status_dirty.insert(key.clone());
        }
        self.intents.insert(
            key,
            IntentsEntry {
                uid: meta.uid.clone(),
                generation,
                parsed,
                parse_diagnostics: diags.clone(),
                status,
                subjects,
            },
        );
        diags
    }

    fn remove_intents_index(&mut self, key: &Key) {
        if let Some(old) = self.intents.get(key) {
            for s in old.subjects.clone() {
                if let Some(set) = self.by_subject.get_mut(&s) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_subject.remove(&s);
                    }
                }
                self.dirty.insert(s);
            }
        }
    }

    /// A ClientIntents object is gone (or being deleted): its subjects are recomputed without it.
    pub fn delete_intents(&mut self, key: &Key) {
        self.remove_intents_index(key);
        self.intents.remove(key);
        self.status_dirty.remove(key);
    }

    // ---- Pods and their owners ----

    /// The pod's identity, through the core's one owner-chain walk (a root owner not known yet
    /// stands in by the reference's name).
    fn resolve(&self, meta: &ObjectMeta) -> WorkloadId {
        let pod = Pod {
            metadata: meta.clone(),
            ..Default::default()
        };
        identity::resolve(&pod, |ns, kind, name| {
            self.owners
                .get(&(ns.to_string(), kind.to_string(), name.to_string()))
        })
    }

    pub fn apply_pod(&mut self, meta: ObjectMeta) {
        let key = key_of(&meta);
        self.remove_pod(&key);
        let workload = self.resolve(&meta);
        let subject = (workload.namespace.clone(), workload.name.clone());
        // A server naming its callers: both sides are recomputed when the names change.
        let callers: Option<BTreeSet<Key>> = meta.annotations.get(labels::CALLED_BY).map(|value| {
            called_by(value, &key.0)
                .into_iter()
                .map(|c| (c.namespace, c.name))
                .collect()
        });
        let before = self.called_by.get(&key);
        if before.map(|(s, c)| (s, c)) != callers.as_ref().map(|c| (&subject, c)) {
            if let Some((s, c)) = before.cloned() {
                self.dirty.insert(s);
                self.dirty.extend(c);
            }
            if let Some(c) = &callers {
                self.dirty.insert(subject.clone());
                self.dirty.extend(c.iter().cloned());
            }
        }
        match callers {
            Some(c) => {
                self.called_by.insert(key.clone(), (subject.clone(), c));
            }
            None => {
                self.called_by.remove(&key);
            }
        }
        self.pods_by_workload
            .entry(subject.clone())
            .or_default()
            .insert(key.clone());
        // A pod that already carries the labels last planned for its workload (the echo of
        // our own patch, or a status change) needs no work.
        let settled = self
            .desired_labels
            .get(&workload)
            .is_some_and(|want| pod_patch(&meta, want).is_none());
        if !settled {
            self.dirty.insert(subject);
        }
        self.pods.insert(key, PodEntry { meta, workload });
    }

    pub fn delete_pod(&mut self, key: &Key) {
        self.remove_pod(key);
        if let Some((server, callers)) = self.called_by.remove(key) {
            self.dirty.insert(server);
            self.dirty.extend(callers);
        }
    }

    fn remove_pod(&mut self, key: &Key) {
        if let Some(old) = self.pods.remove(key) {
            let subject = (old.workload.namespace.clone(), old.workload.name.clone());
            if let Some(set) = self.pods_by_workload.get_mut(&subject) {
                set.remove(key);
                if set.is_empty() {
                    self.pods_by_workload.remove(&subject);
                }
            }
        }
    }

    /// A ReplicaSet, Job or other pod owner was added or changed: re-resolve the pods it owns.
    pub fn apply_owner(&mut self, kind: &str, meta: ObjectMeta) {
        let (ns, name) = key_of(&meta);
        let changed = self
            .owners
            .get(&(ns.clone(), kind.to_string(), name.clone()))
            .is_none_or(|old| {
                old.owner_references != meta.owner_references || old.annotations != meta.annotations
            });
        self.owners
            .insert((ns.clone(), kind.to_string(), name.clone()), meta);
        if changed {
            self.reresolve_owned_by(&ns, kind, &name);
        }
    }

    pub fn delete_owner(&mut self, kind: &str, ns: &str, name: &str) {
        if self
            .owners
            .remove(&(ns.to_string(), kind.to_string(), name.to_string()))
            .is_some()
        {
            self.reresolve_owned_by(ns, kind, name);
        }
    }

    /// Whether the owner `kind`/`name` is on the owner chain of a pod in `ns` (as far as the
    /// chain's owners are known).
    fn chain_contains(&self, ns: &str, pod: &ObjectMeta, kind: &str, name: &str) -> bool {
        let mut current = pod;
        for _ in 0..16 {
            let Some(r) = current.owner_references.first() else {
                return false;
            };
            if r.kind == kind && r.name == name {
                return true;
            }
            match self
                .owners
                .get(&(ns.to_string(), r.kind.clone(), r.name.clone()))
            {
                Some(m) => current = m,
                None => return false,
            }
        }
        false
    }

    fn reresolve_owned_by(&mut self, ns: &str, kind: &str, name: &str) {
        let owned: Vec<ObjectMeta> = self
            .pods
            .iter()
            .filter(|((pns, _), p)| pns == ns && self.chain_contains(ns, &p.meta, kind, name))
            .map(|(_, p)| p.meta.clone())
            .collect();
        for meta in owned {
            self.apply_pod(meta);
        }
    }

    // ---- Namespaces ----

    /// A namespace was added or its labels changed: its subjects are recomputed with the
    /// current labels.
    pub fn apply_namespace(&mut self, meta: ObjectMeta) {
        if self.namespaces.get(&meta.name) == Some(&meta.labels) {
            return;
        }
        let subjects: Vec<Key> = self
            .by_subject
            .keys()
            .filter(|k| k.0 == meta.name)
            .cloned()
            .collect();
        self.dirty.extend(subjects);
        self.namespaces.insert(meta.name, meta.labels);
    }

    pub fn delete_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    // ---- Services, ProtectedServices, policies ----

    /// A Service changed. Besides a Service target of that name, the servers of its namespace
    /// are recomputed when the Service exposes them outside the cluster (their external-access
    /// policies) or, with egress on, when it may stand in front of an egress target.
    pub fn apply_service(&mut self, service: Service) {
        let key = key_of(&service.metadata);
        let old = self.services.get(&key);
        if old != Some(&service) {
            let wide = self.options.egress
                || old.is_some_and(|s| self.exposes(s))
                || self.exposes(&service);
            self.dirty.insert(key.clone());
            if wide {
                self.mark_namespace_dirty(&key.0);
            }
            self.services.insert(key, service);
        }
    }

    pub fn delete_service(&mut self, key: &Key) {
        if let Some(old) = self.services.remove(key) {
            self.dirty.insert(key.clone());
            if self.options.egress || self.exposes(&old) {
                self.mark_namespace_dirty(&key.0);
            }
        }
    }

    /// Whether a Service takes traffic from outside the cluster (its own type, or an Ingress).
    fn exposes(&self, service: &Service) -> bool {
        service.is_exposed_outside()
            || self
                .ingresses
                .values()
                .flatten()
                .any(|b| b.namespace == service.namespace() && b.service == service.metadata.name)
    }

    /// Every subject of a namespace is recomputed.
    fn mark_namespace_dirty(&mut self, ns: &str) {
        let subjects: Vec<Key> = self
            .by_subject
            .keys()
            .filter(|k| k.0 == ns)
            .cloned()
            .collect();
        self.dirty.extend(subjects);
    }

    /// An Ingress was added or changed: the servers behind its backends may now be exposed.
    pub fn apply_ingress(&mut self, key: Key, backends: Vec<IngressBackend>) {
        if self.ingresses.get(&key) != Some(&backends) {
            self.mark_namespace_dirty(&key.0);
            self.ingresses.insert(key, backends);
        }
    }

    pub fn delete_ingress(&mut self, key: &Key) {
        if self.ingresses.remove(key).is_some() {
            self.mark_namespace_dirty(&key.0);
        }
    }

    pub fn apply_protected(&mut self, p: ProtectedService) {
        let key = (p.namespace.clone(), p.name.clone());
        if let Some(old) = self.protected.get(&key) {
            self.dirty
                .insert((old.namespace.clone(), old.service_name.clone()));
        }
        self.dirty
            .insert((p.namespace.clone(), p.service_name.clone()));
        self.protected.insert(key, p);
    }

    pub fn delete_protected(&mut self, key: &Key) {
        if let Some(old) = self.protected.remove(key) {
            self.dirty
                .insert((old.namespace.clone(), old.service_name.clone()));
        }
    }

    /// An owned policy changed or appeared: recompute its subject so that an edit is undone.
    /// Returns true when no subject wants the policy (it is an orphan to delete).
    pub fn apply_live_policy(&mut self, policy: NetworkPolicy) {
        let key = key_of(&policy.metadata);
        match self.desired_owner.get(&key) {
            // The echo of our own apply: nothing to do.
            Some(_)
                if self
                    .desired_policies
                    .get(&key)
                    .is_some_and(|d| same_policy(d, &policy)) => {}
            Some(subject) => {
                self.dirty.insert(subject.clone());
            }
            None => {
                // Not (or no longer) desired by any subject we know: find its subject by label so
                // the next plan deletes it.
                self.dirty.insert(self.subject_of_orphan(&policy));
            }
        }
        self.live_policies.insert(key, policy);
    }

    /// Record what an apply returned, so the next plan compares with it rather than with a
    /// state the watch has not caught up with.
    pub fn record_applied(&mut self, policy: NetworkPolicy) {
        self.live_policies.insert(key_of(&policy.metadata), policy);
    }

    pub fn delete_live_policy(&mut self, key: &Key) {
        self.live_policies.remove(key);
        if let Some(subject) = self.desired_owner.get(key) {
            self.dirty.insert(subject.clone());
        }
    }

    /// The best guess of the subject of a policy nobody wants: its name without the suffix,
    /// with the `.` of the workload's name turned back into the identity's `_`.
    fn subject_of_orphan(&self, policy: &NetworkPolicy) -> Key {
        let name = &policy.metadata.name;
        let base = ["-access", "-ingress", "-egress"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .or_else(|| name.strip_prefix(DEFAULT_DENY_PREFIX))
            .unwrap_or(name);
        (
            policy.namespace().to_string(),
            identity::normalize_name(base),
        )
    }

    /// Policies carrying Accord's labels that no subject wants, once everything is known.
    /// None is deleted in a namespace where a write failed: a policy left by the upstream
    /// operator goes only once what replaces it is in place.
    pub fn orphan_policies(&self) -> Vec<Key> {
        let failed: HashSet<&str> = self.failed.iter().map(|k| k.0.as_str()).collect();
        self.live_policies
            .keys()
            .filter(|k| !self.desired_owner.contains_key(*k) && !failed.contains(k.0.as_str()))
            .cloned()
            .collect()
    }
}
