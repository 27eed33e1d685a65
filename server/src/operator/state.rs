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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use accord_policy::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use accord_policy::identity::{self, WorkloadId, formatted};
use accord_policy::intents::{self, ClientIntents, TargetKind};
use accord_policy::inventory::{Inventory, Namespace, Pod, ProtectedService};
use accord_policy::labels;
use accord_policy::objects::{Labels, NetworkPolicy, ObjectMeta, Service};
use accord_policy::{GenerateOptions, generate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
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
    /// Merge patch of a pod's labels (a `null` value removes the label).
    PatchPodLabels {
        subject: Key,
        namespace: String,
        name: String,
        labels: BTreeMap<String, Value>,
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
    pub services: HashMap<Key, Service>,
    pub pods: HashMap<Key, PodEntry>,
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

/// Kinds that are the top of almost every owner chain. Their metadata is watched, so a chain
/// goes on above one that is itself owned; until the watch has shown one, it stands in by the
/// name in the reference, so that a pod never flaps to its ReplicaSet's identity meanwhile.
const ROOT_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "ReplicationController",
];

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone(),
    )
}

/// The subjects of parsed intents: the client and every workload or Service target.
fn subjects_of(i: &ClientIntents) -> BTreeSet<Key> {
    let mut out = BTreeSet::from([(i.namespace.clone(), i.workload.name.clone())]);
    for t in &i.targets {
        match &t.kind {
            TargetKind::Workload {
                name, namespace, ..
            }
            | TargetKind::Service {
                name, namespace, ..
            } => {
                out.insert((namespace.clone(), name.clone()));
            }
            _ => {}
        }
    }
    out
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
        let subjects = parsed.as_ref().map(subjects_of).unwrap_or_default();
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

    fn resolve(&self, meta: &ObjectMeta) -> WorkloadId {
        let pod = Pod {
            metadata: meta.clone(),
            ..Default::default()
        };
        let ns = pod.namespace().to_string();
        // A root owner (Deployment, …) not known yet stands in by the reference's name.
        let mut roots: Vec<(String, String, ObjectMeta)> = Vec::new();
        let mut current = meta;
        for _ in 0..16 {
            let Some(r) = current.owner_references.first() else {
                break;
            };
            match self
                .owners
                .get(&(ns.clone(), r.kind.clone(), r.name.clone()))
            {
                Some(m) => current = m,
                None => {
                    if ROOT_KINDS.contains(&r.kind.as_str()) {
                        let stand_in = ObjectMeta {
                            name: r.name.clone(),
                            namespace: Some(ns.clone()),
                            ..Default::default()
                        };
                        roots.push((r.kind.clone(), r.name.clone(), stand_in));
                    }
                    break;
                }
            }
        }
        identity::resolve(&pod, |ns, kind, name| {
            self.owners
                .get(&(ns.to_string(), kind.to_string(), name.to_string()))
                .or_else(|| {
                    roots
                        .iter()
                        .find(|(k, n, _)| k == kind && n == name)
                        .map(|(_, _, m)| m)
                })
        })
    }

    pub fn apply_pod(&mut self, meta: ObjectMeta) {
        let key = key_of(&meta);
        self.remove_pod(&key);
        let workload = self.resolve(&meta);
        let subject = (workload.namespace.clone(), workload.name.clone());
        self.pods_by_workload
            .entry(subject.clone())
            .or_default()
            .insert(key.clone());
        // A pod that already carries the labels last planned for its workload (the echo of
        // our own patch, or a status change) needs no work.
        let settled = self
            .desired_labels
            .get(&workload)
            .is_some_and(|want| label_patch(&meta.labels, want).is_none());
        if !settled {
            self.dirty.insert(subject);
        }
        self.pods.insert(key, PodEntry { meta, workload });
    }

    pub fn delete_pod(&mut self, key: &Key) {
        self.remove_pod(key);
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

    /// The owner keys currently known for one kind (for relists).
    pub fn owner_keys(&self, kind: &str) -> Vec<Key> {
        self.owners
            .keys()
            .filter(|(_, k, _)| k == kind)
            .map(|(ns, _, name)| (ns.clone(), name.clone()))
            .collect()
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

    pub fn apply_service(&mut self, service: Service) {
        let key = key_of(&service.metadata);
        if self.services.get(&key) != Some(&service) {
            self.dirty.insert(key.clone());
            self.services.insert(key, service);
        }
    }

    pub fn delete_service(&mut self, key: &Key) {
        if self.services.remove(key).is_some() {
            self.dirty.insert(key.clone());
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

    /// The best guess of the subject of a policy nobody wants: its name without the suffix.
    fn subject_of_orphan(&self, policy: &NetworkPolicy) -> Key {
        let name = &policy.metadata.name;
        let base = ["-access", "-ingress", "-egress"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .or_else(|| name.strip_prefix("default-deny-"))
            .unwrap_or(name);
        (policy.namespace().to_string(), base.to_string())
    }

    /// Policies carrying Accord's labels that no subject wants, once everything is known.
    pub fn orphan_policies(&self) -> Vec<Key> {
        self.live_policies
            .keys()
            .filter(|k| !self.desired_owner.contains_key(*k))
            .cloned()
            .collect()
    }

    // ---- Planning ----

    /// Compute the writes for every dirty subject, and the statuses of the intents involved.
    /// Clears the dirty sets.
    pub fn plan(&mut self) -> Plan {
        let dirty = std::mem::take(&mut self.dirty);
        let status_dirty = std::mem::take(&mut self.status_dirty);

        // The intents that refer to a dirty subject.
        let mut relevant: BTreeSet<Key> = status_dirty.clone();
        for s in &dirty {
            if let Some(set) = self.by_subject.get(s) {
                relevant.extend(set.iter().cloned());
            }
        }
        // Intents declaring the same client workload go together, so that the core sees (and
        // reports) a duplicate whichever of them changed.
        let mut same_client: Vec<Key> = Vec::new();
        for k in &relevant {
            let Some(i) = self.intents.get(k).and_then(|e| e.parsed.as_ref()) else {
                continue;
            };
            let client = (i.namespace.clone(), i.workload.name.clone());
            for other in self.by_subject.get(&client).into_iter().flatten() {
                let same = self
                    .intents
                    .get(other)
                    .and_then(|e| e.parsed.as_ref())
                    .is_some_and(|o| o.namespace == i.namespace && o.workload == i.workload);
                if same {
                    same_client.push(other.clone());
                }
            }
        }
        relevant.extend(same_client);
        let mut mini = Inventory::default();
        let mut referenced: BTreeSet<Key> = dirty.clone();
        for k in &relevant {
            if let Some(e) = self.intents.get(k) {
                referenced.extend(e.subjects.iter().cloned());
                if let Some(p) = &e.parsed {
                    mini.intents.push(p.clone());
                }
            }
        }
        for s in &referenced {
            if let Some(labels) = self.namespaces.get(&s.0) {
                mini.namespaces
                    .entry(s.0.clone())
                    .or_insert_with(|| Namespace {
                        name: s.0.clone(),
                        labels: labels.clone(),
                        declared: true,
                    });
            }
            if let Some(svc) = self.services.get(s) {
                mini.services.push(svc.clone());
            }
            for pod in self.pods_by_workload.get(s).into_iter().flatten() {
                if let Some(p) = self.pods.get(pod) {
                    mini.pods.push(Pod {
                        metadata: ObjectMeta {
                            name: p.meta.name.clone(),
                            namespace: p.meta.namespace.clone(),
                            ..Default::default()
                        },
                        workload: p.workload.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        mini.protected_services = self.protected.values().cloned().collect();
        let generated = generate(&mini, &self.options);

        // The ownership label values each dirty subject's policies may carry.
        let mut owned_labels: HashMap<&Key, HashSet<String>> = HashMap::new();
        for k in &relevant {
            let Some(i) = self.intents.get(k).and_then(|e| e.parsed.as_ref()) else {
                continue;
            };
            let client = (i.namespace.clone(), i.workload.name.clone());
            if let Some(s) = dirty.get(&client) {
                owned_labels.entry(s).or_default().insert(formatted(
                    &i.workload.name,
                    &i.namespace,
                    i.workload.kind.as_deref(),
                ));
            }
            for t in &i.targets {
                let (name, ns, kind) = match &t.kind {
                    TargetKind::Workload {
                        name,
                        namespace,
                        kind,
                        ..
                    } => (name, namespace, kind.as_deref()),
                    TargetKind::Service {
                        name, namespace, ..
                    } => (name, namespace, Some("Service")),
                    _ => continue,
                };
                if let Some(s) = dirty.get(&(ns.clone(), name.clone())) {
                    owned_labels
                        .entry(s)
                        .or_default()
                        .insert(formatted(name, ns, kind));
                }
            }
        }

        // Which dirty subject owns a policy, by (namespace, ownership label).
        let label_owner: HashMap<(&str, &str), &Key> = owned_labels
            .iter()
            .flat_map(|(s, set)| set.iter().map(move |l| ((s.0.as_str(), l.as_str()), *s)))
            .collect();
        let mut writes = Vec::new();
        let mut desired_now: HashMap<Key, Vec<&NetworkPolicy>> = HashMap::new();
        for p in &generated.policies {
            let ns = p.namespace().to_string();
            let subject = if p.metadata.labels.contains_key(labels::DEFAULT_DENY) {
                let base = p
                    .metadata
                    .name
                    .strip_prefix("default-deny-")
                    .unwrap_or(&p.metadata.name);
                Some((ns, base.to_string())).filter(|k| dirty.contains(k))
            } else {
                p.metadata
                    .labels
                    .get(labels::NETWORK_POLICY)
                    .and_then(|l| label_owner.get(&(ns.as_str(), l.as_str())))
                    .map(|s| (*s).clone())
            };
            if let Some(subject) = subject {
                desired_now.entry(subject).or_default().push(p);
            }
        }
        for subject in &dirty {
            let wanted = desired_now.remove(subject).unwrap_or_default();
            let names: BTreeSet<String> = wanted.iter().map(|p| p.metadata.name.clone()).collect();
            for p in &wanted {
                let key = (subject.0.clone(), p.metadata.name.clone());
                self.desired_owner.insert(key.clone(), subject.clone());
                self.desired_policies.insert(key.clone(), (*p).clone());
                let up_to_date = self
                    .live_policies
                    .get(&key)
                    .is_some_and(|live| same_policy(p, live));
                if !up_to_date || self.failed.contains(subject) {
                    writes.push(Write::ApplyPolicy {
                        subject: subject.clone(),
                        policy: Box::new((*p).clone()),
                    });
                }
            }
            // Policies this subject had, or that carry its labels, and that are no longer wanted.
            let mut unwanted: BTreeSet<String> = self
                .desired_by_subject
                .get(subject)
                .map(|old| old.difference(&names).cloned().collect())
                .unwrap_or_default();
            let in_namespace = self
                .live_policies
                .range((subject.0.clone(), String::new())..)
                .take_while(|(k, _)| k.0 == subject.0);
            for (key, live) in in_namespace {
                if key.0 == subject.0
                    && !names.contains(&key.1)
                    && self.desired_owner.get(key).is_none_or(|o| o == subject)
                {
                    let label = live.metadata.labels.get(labels::NETWORK_POLICY);
                    let ours = label
                        .is_some_and(|l| owned_labels.get(subject).is_some_and(|s| s.contains(l)))
                        || self.subject_of_orphan(live) == *subject;
                    if ours {
                        unwanted.insert(key.1.clone());
                    }
                }
            }
            for name in unwanted {
                let key = (subject.0.clone(), name.clone());
                if self.desired_owner.get(&key).is_some_and(|o| o != subject) {
                    continue;
                }
                self.desired_owner.remove(&key);
                self.desired_policies.remove(&key);
                if self.live_policies.contains_key(&key) {
                    writes.push(Write::DeletePolicy {
                        subject: subject.clone(),
                        namespace: subject.0.clone(),
                        name,
                    });
                }
            }
            if names.is_empty() {
                self.desired_by_subject.remove(subject);
            } else {
                self.desired_by_subject.insert(subject.clone(), names);
            }

            // Pod labels.
            for pod_key in self.pods_by_workload.get(subject).into_iter().flatten() {
                let Some(pod) = self.pods.get(pod_key) else {
                    continue;
                };
                let want = generated.labels_for(&pod.workload);
                self.desired_labels
                    .insert(pod.workload.clone(), want.clone());
                if let Some(patch) = label_patch(&pod.meta.labels, &want) {
                    writes.push(Write::PatchPodLabels {
                        subject: subject.clone(),
                        namespace: pod_key.0.clone(),
                        name: pod_key.1.clone(),
                        labels: patch,
                    });
                }
            }
        }

        let mut by_object: HashMap<&str, Vec<Diagnostic>> = HashMap::new();
        for d in &generated.diagnostics {
            by_object
                .entry(d.object.as_str())
                .or_default()
                .push(d.clone());
        }
        let mut statuses = Vec::new();
        for k in &relevant {
            if let Some(e) = self.intents.get(k) {
                statuses.push(StatusInput {
                    key: k.clone(),
                    subjects: e.subjects.clone(),
                    generation: e.generation,
                    parse_diagnostics: e.parse_diagnostics.clone(),
                    generate_diagnostics: by_object
                        .remove(format!("ClientIntents {}/{}", k.0, k.1).as_str())
                        .unwrap_or_default(),
                    current: e.status.clone(),
                    policies: e
                        .subjects
                        .iter()
                        .flat_map(|s| {
                            self.desired_by_subject
                                .get(s)
                                .into_iter()
                                .flatten()
                                .map(move |n| format!("{}/{n}", s.0))
                        })
                        .collect(),
                });
            }
        }
        Plan {
            subjects: dirty,
            writes,
            statuses,
        }
    }
}

/// What a status is computed from, after the writes are done.
#[derive(Clone, Debug)]
pub struct StatusInput {
    pub key: Key,
    pub subjects: BTreeSet<Key>,
    pub generation: Option<i64>,
    pub parse_diagnostics: Vec<Diagnostic>,
    pub generate_diagnostics: Vec<Diagnostic>,
    pub current: ClientIntentsStatus,
    /// `namespace/name` of the policies generated for the intents' subjects.
    pub policies: BTreeSet<String>,
}

/// The result of planning a batch.
#[derive(Debug, Default)]
pub struct Plan {
    pub subjects: BTreeSet<Key>,
    pub writes: Vec<Write>,
    pub statuses: Vec<StatusInput>,
}

/// The merge patch that gives a pod exactly Accord's `want` labels among the managed ones, or
/// `None` when it already has them.
pub fn label_patch(have: &Labels, want: &Labels) -> Option<BTreeMap<String, Value>> {
    let mut patch = BTreeMap::new();
    for (k, v) in want {
        if have.get(k) != Some(v) {
            patch.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for k in have.keys() {
        if labels::is_managed_pod_label(k) && !want.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// Whether a live policy is the generated one: same spec (absent and empty lists alike), the
/// ownership labels present, the same owner references.
pub fn same_policy(desired: &NetworkPolicy, live: &NetworkPolicy) -> bool {
    let norm = |p: &NetworkPolicy| {
        let mut s = p.spec.clone();
        if s.ingress.as_ref().is_some_and(Vec::is_empty) {
            s.ingress = None;
        }
        if s.egress.as_ref().is_some_and(Vec::is_empty) {
            s.egress = None;
        }
        s
    };
    let owners = |p: &NetworkPolicy| {
        p.metadata
            .owner_references
            .iter()
            .map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()))
            .collect::<Vec<_>>()
    };
    norm(desired) == norm(live)
        && desired
            .metadata
            .labels
            .iter()
            .all(|(k, v)| live.metadata.labels.get(k) == Some(v))
        && owners(desired) == owners(live)
}

/// The conditions and `upToDate` of a ClientIntents, as a status merge patch, or `None` when
/// the object already shows them. `failed` holds the subjects whose writes failed.
pub fn status_patch(
    input: &StatusInput,
    failed: &HashSet<Key>,
    now: &Time,
) -> Option<ClientIntentsStatus> {
    let cond = |kind: &str, ok: bool, reason: &str, message: String| Condition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: now.clone(),
        observed_generation: input.generation,
    };
    let errors: Vec<String> = input
        .parse_diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    // Conditions are chosen by the diagnostics' codes: a second ClientIntents for one workload
    // makes `Unique` false; anything else generation reports is a target that does not resolve.
    let duplicates: Vec<String> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code == DiagnosticCode::DuplicateIntents)
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    let unresolved_codes: BTreeSet<DiagnosticCode> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code != DiagnosticCode::DuplicateIntents)
        .map(|d| d.code)
        .collect();
    let unresolved: Vec<String> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code != DiagnosticCode::DuplicateIntents)
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    let write_failures: Vec<String> = input
        .subjects
        .iter()
        .filter(|s| failed.contains(*s))
        .map(|s| format!("{}/{}", s.0, s.1))
        .collect();
    let mut conditions = vec![
        if errors.is_empty() {
            cond("Valid", true, "Valid", "the intents are valid".into())
        } else {
            cond("Valid", false, "InvalidIntents", errors.join("; "))
        },
        if duplicates.is_empty() {
            cond(
                "Unique",
                true,
                "Unique",
                "no other ClientIntents declares this workload's calls".into(),
            )
        } else {
            cond("Unique", false, "DuplicateIntents", duplicates.join("; "))
        },
        if unresolved.is_empty() {
            cond(
                "TargetsResolved",
                true,
                "Resolved",
                "every target resolves".into(),
            )
        } else {
            // One reason for the condition, the most specific first: a Service without a
            // selector; then anything that resolves to nothing (a workload, a Service or the
            // client itself) as `TargetNotFound`; then addresses not known yet.
            let reason = if unresolved_codes.contains(&DiagnosticCode::ServiceWithoutSelector) {
                DiagnosticCode::ServiceWithoutSelector.reason()
            } else if unresolved_codes.iter().any(|c| {
                matches!(
                    c,
                    DiagnosticCode::TargetNotFound
                        | DiagnosticCode::ServiceNotFound
                        | DiagnosticCode::ClientNotFound
                )
            }) {
                DiagnosticCode::TargetNotFound.reason()
            } else {
                unresolved_codes
                    .first()
                    .map_or_else(String::new, |c| c.reason())
            };
            cond("TargetsResolved", false, &reason, unresolved.join("; "))
        },
        if write_failures.is_empty() {
            let msg = if input.policies.is_empty() {
                "no NetworkPolicy is needed; pod labels applied".to_string()
            } else {
                format!(
                    "applied {}",
                    input
                        .policies
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cond("PoliciesApplied", true, "Applied", msg)
        } else {
            cond(
                "PoliciesApplied",
                false,
                "ApplyFailed",
                format!("writes failed for {}; retrying", write_failures.join(", ")),
            )
        },
    ];
    let up_to_date = errors.is_empty() && duplicates.is_empty() && write_failures.is_empty();
    // Keep the transition time of conditions whose status did not change.
    let current = &input.current;
    for c in &mut conditions {
        if let Some(old) = current.conditions.iter().find(|o| o.type_ == c.type_)
            && old.status == c.status
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
    let shown = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    let same = current.up_to_date == up_to_date
        && current.observed_generation == input.generation
        && current
            .conditions
            .iter()
            .map(shown)
            .eq(conditions.iter().map(shown));
    // `resolvedIPs` stays out of the patch, so the merge leaves it as it is.
    (!same).then(|| ClientIntentsStatus {
        up_to_date,
        observed_generation: input.generation,
        resolved_ips: Vec::new(),
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn at(time: &str) -> Time {
        Time(time.parse::<Timestamp>().expect("a timestamp"))
    }

    fn intents(name: &str, workload: &str, target: &str) -> Value {
        json!({
            "apiVersion": "k8s.otterize.com/v2beta1",
            "kind": "ClientIntents",
            "metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {"workload": {"name": workload}, "targets": [{"kubernetes": {"name": target}}]},
        })
    }

    fn meta(name: &str, owner: Option<(&str, &str)>) -> ObjectMeta {
        serde_json::from_value(json!({
            "name": name,
            "namespace": "ns",
            "ownerReferences": owner
                .map(|(kind, name)| vec![json!({"apiVersion": "apps/v1", "kind": kind, "name": name})])
                .unwrap_or_default(),
        }))
        .expect("metadata")
    }

    fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .unwrap_or(&Value::Null)
    }

    fn status_of(plan: &Plan, name: &str) -> Value {
        let input = plan
            .statuses
            .iter()
            .find(|s| s.key.1 == name)
            .unwrap_or_else(|| panic!("no status planned for {name}"));
        let status =
            status_patch(input, &HashSet::new(), &at("2026-01-01T00:00:00Z")).expect("a status");
        serde_json::to_value(status).expect("a status serializes")
    }

    #[test]
    fn status_is_written_in_the_crd_shape_and_only_when_it_changes() {
        let mut state = State::default();
        state.apply_intents(&intents("c", "client", "server"));
        let plan = state.plan();
        let input = plan.statuses.first().expect("a status").clone();
        let written = status_patch(&input, &HashSet::new(), &at("2026-01-01T00:00:00Z"))
            .expect("a first status");
        let json = serde_json::to_value(&written).expect("a status serializes");
        // The merge patch names exactly these fields: `resolvedIPs` is left to whoever sets it.
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["conditions", "observedGeneration", "upToDate"]);
        assert_eq!(json["upToDate"], true);
        assert_eq!(json["observedGeneration"], 1);
        assert_eq!(
            condition(&json, "Valid"),
            &json!({
                "type": "Valid",
                "status": "True",
                "reason": "Valid",
                "message": "the intents are valid",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            })
        );
        assert_eq!(condition(&json, "TargetsResolved")["status"], "False");

        // The object now shows it (read back from the cluster's JSON): nothing to write.
        let shown: ClientIntentsStatus = serde_json::from_value(json).expect("a status parses");
        let again = StatusInput {
            current: shown.clone(),
            ..input.clone()
        };
        assert_eq!(
            status_patch(&again, &HashSet::new(), &at("2026-01-02T00:00:00Z")),
            None
        );

        // A failed write flips one condition: only that one gets a new transition time.
        let failed: HashSet<Key> = input.subjects.iter().cloned().collect();
        let next =
            status_patch(&again, &failed, &at("2026-01-02T00:00:00Z")).expect("a changed status");
        assert!(!next.up_to_date);
        let time = |kind: &str| {
            let c = next
                .conditions
                .iter()
                .find(|c| c.type_ == kind)
                .expect("the condition");
            (c.status.as_str(), c.last_transition_time.clone())
        };
        assert_eq!(
            time("PoliciesApplied"),
            ("False", at("2026-01-02T00:00:00Z"))
        );
        assert_eq!(time("Valid"), ("True", at("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn duplicate_intents_have_a_condition_of_their_own_whichever_changes() {
        let mut state = State::default();
        state.apply_intents(&intents("first", "client", "a"));
        state.apply_intents(&intents("second", "client", "b"));
        let plan = state.plan();
        let second = status_of(&plan, "second");
        let unique = condition(&second, "Unique");
        assert_eq!(unique["status"], "False");
        assert_eq!(unique["reason"], "DuplicateIntents");
        assert!(
            unique["message"]
                .as_str()
                .unwrap_or_default()
                .contains("ClientIntents ns/first"),
            "{unique}"
        );
        // The duplicate is no longer reported as an unresolved target (the targets here do not
        // exist, which is what that condition is for).
        let resolved = condition(&second, "TargetsResolved");
        assert!(
            !resolved["message"]
                .as_str()
                .unwrap_or_default()
                .contains("already has intents"),
            "{resolved}"
        );
        assert_eq!(second["upToDate"], false);
        assert_eq!(
            condition(&status_of(&plan, "first"), "Unique")["status"],
            "True"
        );

        // A change that touches only the duplicate's own target still sees the first intents.
        state.apply_pod(meta("b-1", None));
        state.mark_dirty(("ns".into(), "b".into()));
        let plan = state.plan();
        assert_eq!(
            condition(&status_of(&plan, "second"), "Unique")["status"],
            "False"
        );
    }

    #[test]
    fn owner_chains_go_above_root_kinds_and_follow_their_changes() {
        let mut state = State::default();
        let pod = meta("web-7d4-abc", Some(("ReplicaSet", "web-7d4")));
        state.apply_pod(pod.clone());
        // Until the ReplicaSet is known, the chain stops at the last owner that could be read.
        assert_eq!(state.pods[&key_of(&pod)].workload.name, "web-7d4-abc");
        state.apply_owner("ReplicaSet", meta("web-7d4", Some(("Deployment", "web"))));
        // A Deployment not seen yet stands in by its name.
        let w = &state.pods[&key_of(&pod)].workload;
        assert_eq!(
            (w.name.as_str(), w.kind.as_deref()),
            ("web", Some("Deployment"))
        );
        // A Deployment that is itself owned: the chain goes on to the root.
        state.apply_owner("Deployment", meta("web", Some(("StatefulSet", "platform"))));
        state.apply_owner("StatefulSet", meta("platform", None));
        let w = &state.pods[&key_of(&pod)].workload;
        assert_eq!(
            (w.name.as_str(), w.kind.as_deref()),
            ("platform", Some("StatefulSet"))
        );
        // The Deployment orphaned from its owner re-resolves the pods two levels below.
        state.apply_owner("Deployment", meta("web", None));
        let w = &state.pods[&key_of(&pod)].workload;
        assert_eq!(
            (w.name.as_str(), w.kind.as_deref()),
            ("web", Some("Deployment"))
        );
    }

    #[test]
    fn namespace_label_changes_recompute_its_subjects_only() {
        let mut state = State::default();
        state.apply_intents(&intents("c", "client", "server"));
        let _ = state.plan();
        let mut ns = meta("ns", None);
        ns.namespace = None;
        ns.labels = [("team".to_string(), "a".to_string())].into();
        state.apply_namespace(ns.clone());
        assert!(state.has_dirty());
        let plan = state.plan();
        assert!(
            plan.subjects
                .contains(&("ns".to_string(), "server".to_string()))
        );
        assert_eq!(state.namespaces["ns"]["team"], "a");
        // The same labels again: nothing to do.
        state.apply_namespace(ns);
        assert!(!state.has_dirty());
    }
}
