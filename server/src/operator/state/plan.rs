//! The planner: dirty subjects → the writes that bring the cluster to the desired state (through
//! the core's generation over a small inventory of the intents involved), and the inputs of the
//! statuses to write after them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use accord_policy::diagnostic::Diagnostic;
use accord_policy::generate;
use accord_policy::generate::{DEFAULT_DENY_PREFIX, object_name};
use accord_policy::identity::formatted;
use accord_policy::inventory::{Inventory, Namespace, Pod};
use accord_policy::labels;
use accord_policy::objects::{Labels, NetworkPolicy, ObjectMeta};
use serde_json::Value;

use super::*;

impl State {
    /// Compute the writes for every dirty subject, and the statuses of the intents involved.
    /// Clears the dirty sets.
    pub fn plan(&mut self) -> Plan {
        let mut dirty = std::mem::take(&mut self.dirty);
        let status_dirty = std::mem::take(&mut self.status_dirty);
        // A server that names its callers and those callers go together: the server's policy
        // admits them and their labels come from its annotation.
        for (server, callers) in self.called_by.values() {
            if dirty.contains(server) || callers.iter().any(|c| dirty.contains(c)) {
                dirty.insert(server.clone());
                dirty.extend(callers.iter().cloned());
            }
        }

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
        // Pods go in with their labels, which decide the Services in front of a server.
        let mini_pod = |p: &PodEntry| Pod {
            metadata: ObjectMeta {
                name: p.meta.name.clone(),
                namespace: p.meta.namespace.clone(),
                labels: p.meta.labels.clone(),
                annotations: p
                    .meta
                    .annotations
                    .get(labels::CALLED_BY)
                    .map(|v| Labels::from([(labels::CALLED_BY.to_string(), v.clone())]))
                    .unwrap_or_default(),
                ..Default::default()
            },
            workload: p.workload.clone(),
            ..Default::default()
        };
        let mut added_pods: HashSet<&Key> = HashSet::new();
        let mut namespaces_added: HashSet<&str> = HashSet::new();
        for s in &referenced {
            if namespaces_added.insert(s.0.as_str()) {
                if let Some(labels) = self.namespaces.get(&s.0) {
                    mini.namespaces.insert(
                        s.0.clone(),
                        Namespace {
                            name: s.0.clone(),
                            labels: labels.clone(),
                            declared: true,
                        },
                    );
                }
                // Every Service of the namespace and the Ingresses sending traffic to them:
                // which of them stand in front of a server decides its egress rules and
                // external-access policies.
                for (_, svc) in self
                    .services
                    .range((s.0.clone(), String::new())..)
                    .take_while(|(k, _)| k.0 == s.0)
                {
                    mini.services.push(svc.clone());
                }
                for (_, backends) in self
                    .ingresses
                    .range((s.0.clone(), String::new())..)
                    .take_while(|(k, _)| k.0 == s.0)
                {
                    mini.ingress_backends.extend(backends.iter().cloned());
                }
            }
            for pod in self.pods_by_workload.get(s).into_iter().flatten() {
                if let Some(p) = self.pods.get(pod)
                    && added_pods.insert(pod)
                {
                    mini.pods.push(mini_pod(p));
                }
            }
            // A Service target: the pods it selects, whatever their workloads are called.
            if let Some(svc) = self.services.get(s).filter(|svc| svc.selector.is_some()) {
                for (key, p) in self
                    .pods
                    .range((s.0.clone(), String::new())..)
                    .take_while(|(k, _)| k.0 == s.0)
                {
                    if svc.selects(&p.meta.labels) && added_pods.insert(key) {
                        mini.pods.push(mini_pod(p));
                    }
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
                let Some((name, ns, kind)) = t.workload_ref() else {
                    continue;
                };
                if let Some(s) = dirty.get(&(ns.to_string(), name.to_string())) {
                    owned_labels
                        .entry(s)
                        .or_default()
                        .insert(formatted(name, ns, kind));
                }
            }
        }

        // A server naming callers owns the (kind-less) policy that admits them.
        for (server, _) in self.called_by.values() {
            if let Some(s) = dirty.get(server) {
                owned_labels
                    .entry(s)
                    .or_default()
                    .insert(formatted(&server.1, &server.0, None));
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
                self.protected
                    .values()
                    .find(|s| {
                        s.namespace == ns
                            && object_name(DEFAULT_DENY_PREFIX, &s.service_name, "")
                                == p.metadata.name
                    })
                    .map(|s| (ns, s.service_name.clone()))
                    .filter(|k| dirty.contains(k))
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
                if let Some((labels, annotations)) = pod_patch(&pod.meta, &want) {
                    writes.push(Write::PatchPodLabels {
                        subject: subject.clone(),
                        namespace: pod_key.0.clone(),
                        name: pod_key.1.clone(),
                        labels,
                        annotations,
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

/// The result of planning a batch.
#[derive(Debug, Default)]
pub struct Plan {
    pub subjects: BTreeSet<Key>,
    pub writes: Vec<Write>,
    pub statuses: Vec<StatusInput>,
}

/// Whether a managed label is one a client pod carries because of its intents.
/// The merge patches (labels, annotations) that give a pod Accord's `want` labels among the
/// managed ones (the core's rule, [`labels::pod_label_change`]), or `None` when it already has
/// them. A pod that keeps client labels without being a client is annotated
/// `intents.otterize.com/all-intents-removed: "true"`; the mark goes when it is a client again.
pub fn pod_patch(
    have: &ObjectMeta,
    want: &Labels,
) -> Option<(BTreeMap<String, Value>, BTreeMap<String, Value>)> {
    let change = labels::pod_label_change(&have.labels, want);
    let mut patch: BTreeMap<String, Value> = change
        .set
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    patch.extend(change.remove.into_iter().map(|k| (k, Value::Null)));
    let mut annotations = BTreeMap::new();
    let marked = have.annotations.get(labels::ALL_INTENTS_REMOVED);
    if change.keeps_client_labels {
        if marked.map(String::as_str) != Some("true") {
            annotations.insert(
                labels::ALL_INTENTS_REMOVED.to_string(),
                Value::String("true".to_string()),
            );
        }
    } else if marked.is_some() {
        annotations.insert(labels::ALL_INTENTS_REMOVED.to_string(), Value::Null);
    }
    (!patch.is_empty() || !annotations.is_empty()).then_some((patch, annotations))
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
