//! Drift items: what a platform team should act on (blocked, unprotected and undeclared calls;
//! Accord's own policies edited, missing or stale; access labels missing), each with a suggested
//! fix, written with the core's one ClientIntents writer.

use super::*;
use crate::diagnostic::Origin;
use crate::generate::Generated;
use crate::identity::WorkloadId;
use crate::intents::{ClientIntents, TargetKind};
use crate::inventory::Inventory;
use crate::labels;
use crate::objects::{Labels, NetworkPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A ClientIntents (v2beta1) declaring that `client` calls `servers`, as a fix suggestion.
pub fn intents_yaml(client: &WorkloadId, servers: &[&WorkloadId]) -> String {
    let intents = ClientIntents {
        // The object is named after the workload's own name, which the API server accepts
        // (the identity's `_` back to `.`).
        name: crate::generate::object_name("", &client.name, ""),
        namespace: client.namespace.clone(),
        workload: crate::intents::WorkloadRef {
            name: client.name.clone(),
            kind: client.kind.clone(),
        },
        targets: servers
            .iter()
            .map(|s| crate::intents::Target {
                field: String::new(),
                kind: TargetKind::Workload {
                    name: s.name.clone(),
                    namespace: s.namespace.clone(),
                    kind: s.kind.clone(),
                    ports: Vec::new(),
                    kafka: false,
                },
            })
            .collect(),
        ..ClientIntents::default()
    };
    crate::render::intents_yaml(std::slice::from_ref(&intents))
}

fn policy_yaml(p: &NetworkPolicy) -> String {
    crate::render::policies_yaml(std::slice::from_ref(p)).unwrap_or_default()
}

/// The generated policies of each server, rendered as YAML, computed once per server.
struct GeneratedYaml<'g> {
    by_namespace: HashMap<&'g str, Vec<&'g NetworkPolicy>>,
    rendered: HashMap<WorkloadId, String>,
}

impl<'g> GeneratedYaml<'g> {
    fn new(generated: &'g Generated) -> Self {
        let mut by_namespace: HashMap<&str, Vec<&NetworkPolicy>> = HashMap::new();
        for p in &generated.policies {
            by_namespace.entry(p.namespace()).or_default().push(p);
        }
        GeneratedYaml {
            by_namespace,
            rendered: HashMap::new(),
        }
    }

    /// The policies Accord generates for `server`, as one YAML stream.
    fn of(&mut self, server: &WorkloadId) -> String {
        if let Some(y) = self.rendered.get(server) {
            return y.clone();
        }
        let sel = crate::generate::workload_selector(server);
        let yaml = self
            .by_namespace
            .get(server.namespace.as_str())
            .into_iter()
            .flatten()
            .filter(|p| p.spec.pod_selector == sel)
            .map(|p| policy_yaml(p))
            .collect::<Vec<_>>()
            .join("---\n");
        self.rendered.insert(server.clone(), yaml.clone());
        yaml
    }
}

fn label_patch_yaml(workload: &WorkloadId, labels: &Labels) -> String {
    let mut out = format!(
        "# Labels for the pods of {workload} (set in the pod template of the {})\nmetadata:\n  labels:\n",
        workload.kind.as_deref().unwrap_or("workload")
    );
    for (k, v) in labels {
        out.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    out
}

pub(super) fn edge_items(
    edges: &[EdgeReport],
    generated: &Generated,
    index: &Index<'_>,
    items: &mut Vec<DriftItem>,
) {
    let mut generated_yaml = GeneratedYaml::new(generated);
    for e in edges {
        let (kind, severity, workload) = match e.state {
            EdgeState::Blocked => (DriftKind::Blocked, DriftSeverity::Critical, &e.source),
            EdgeState::Unprotected => (DriftKind::Unprotected, DriftSeverity::Warning, &e.target),
            EdgeState::Undeclared => (DriftKind::Undeclared, DriftSeverity::Warning, &e.target),
            EdgeState::Enforced | EdgeState::Open => continue,
        };
        let (fix, fix_yaml, object) = match e.state {
            EdgeState::Blocked => {
                // A missing access label on the client is the usual cause; otherwise the
                // server's policy does not match what Accord generates.
                let want = generated.labels_for(&e.source);
                let have = index
                    .first_pod
                    .get(&e.source)
                    .map(|&i| &index.inv.pods[i].metadata.labels);
                let missing: Labels = want
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(labels::ACCESS_PREFIX)
                            || k.starts_with(labels::SVC_ACCESS_PREFIX)
                    })
                    .filter(|(k, v)| have.is_none_or(|h| h.get(*k) != Some(*v)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !missing.is_empty() {
                    (
                        format!(
                            "Restore the access labels on the pods of {} (Accord's operator sets them; check that it runs).",
                            e.source
                        ),
                        label_patch_yaml(&e.source, &missing),
                        None,
                    )
                } else {
                    (
                        format!(
                            "Apply the NetworkPolicy Accord generates for {} so that its ingress admits the declared callers.",
                            e.target
                        ),
                        generated_yaml.of(&e.target),
                        None,
                    )
                }
            }
            EdgeState::Unprotected => (
                format!(
                    "Apply the NetworkPolicy Accord generates for {} so that only declared clients may call it.",
                    e.target
                ),
                generated_yaml.of(&e.target),
                None,
            ),
            _ => {
                let culprit = e
                    .ingress_isolated_by
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    format!(
                        "If {} should call {}, declare it in the client's ClientIntents (below); otherwise remove the rule that admits it from {culprit}.",
                        e.source, e.target
                    ),
                    intents_yaml(&e.source, &[&e.target]),
                    None,
                )
            }
        };
        items.push(DriftItem {
            kind,
            severity,
            namespace: workload.namespace.clone(),
            workload: Some(workload.clone()),
            source: Some(e.source.clone()),
            target: Some(e.target.clone()),
            object,
            explanation: e.summary.clone(),
            fix,
            fix_yaml,
        });
    }
}

/// The fields of a policy that decide what it does (metadata aside); absent and empty rule
/// lists mean the same.
pub(super) fn same_policy(live: &NetworkPolicy, want: &NetworkPolicy) -> bool {
    fn rules<T>(r: &Option<Vec<T>>) -> &[T] {
        r.as_deref().unwrap_or(&[])
    }
    let (a, b) = (&live.spec, &want.spec);
    a.pod_selector == b.pod_selector
        && a.policy_types == b.policy_types
        && rules(&a.ingress) == rules(&b.ingress)
        && rules(&a.egress) == rules(&b.egress)
}

pub(super) fn policy_items(inv: &Inventory, generated: &Generated, items: &mut Vec<DriftItem>) {
    let live: BTreeMap<(&str, &str), &crate::inventory::PolicyObject> = inv
        .network_policies
        .iter()
        .map(|p| ((p.policy.namespace(), p.policy.metadata.name.as_str()), p))
        .collect();
    let mut wanted: BTreeSet<(&str, &str)> = BTreeSet::new();
    for want in &generated.policies {
        let key = (want.namespace(), want.metadata.name.as_str());
        wanted.insert(key);
        match live.get(&key) {
            None => items.push(DriftItem {
                kind: DriftKind::MissingPolicy,
                severity: DriftSeverity::Critical,
                namespace: key.0.to_string(),
                workload: None,
                source: None,
                target: None,
                object: Some(policy_object_ref(want, &Origin::default())),
                explanation: format!(
                    "NetworkPolicy {}/{} that the intents call for is missing, so the workload it protects admits everyone (or is isolated without its declared callers).",
                    key.0, key.1
                ),
                fix: "Apply the generated policy (below); Accord's operator recreates it when it runs.".to_string(),
                fix_yaml: policy_yaml(want),
            }),
            Some(obj) if !same_policy(&obj.policy, want) => items.push(DriftItem {
                kind: DriftKind::ModifiedPolicy,
                severity: DriftSeverity::Warning,
                namespace: key.0.to_string(),
                workload: None,
                source: None,
                target: None,
                object: Some(policy_object_ref(&obj.policy, &obj.origin)),
                explanation: format!(
                    "NetworkPolicy {}/{} is Accord's but differs from what the intents generate now (edited by hand?).",
                    key.0, key.1
                ),
                fix: "Replace it with the generated policy (below), and declare any extra access in ClientIntents instead.".to_string(),
                fix_yaml: policy_yaml(want),
            }),
            Some(_) => {}
        }
    }
    for obj in &inv.network_policies {
        let p = &obj.policy;
        let key = (p.namespace(), p.metadata.name.as_str());
        if p.metadata.labels.contains_key(labels::NETWORK_POLICY) && !wanted.contains(&key) {
            items.push(DriftItem {
                kind: DriftKind::StalePolicy,
                severity: DriftSeverity::Warning,
                namespace: key.0.to_string(),
                workload: None,
                source: None,
                target: None,
                object: Some(policy_object_ref(p, &obj.origin)),
                explanation: format!(
                    "NetworkPolicy {}/{} carries Accord's label but no intent generates it any more.",
                    key.0, key.1
                ),
                fix: format!("Delete it: kubectl delete networkpolicy -n {} {}", key.0, key.1),
                fix_yaml: String::new(),
            });
        }
    }
}

pub(super) fn label_items(inv: &Inventory, generated: &Generated, items: &mut Vec<DriftItem>) {
    let mut seen: BTreeSet<&WorkloadId> = BTreeSet::new();
    let mut cache: HashMap<&WorkloadId, Labels> = HashMap::new();
    for pod in &inv.pods {
        let want = cache
            .entry(&pod.workload)
            .or_insert_with(|| generated.labels_for(&pod.workload));
        let missing: Labels = want
            .iter()
            .filter(|(k, _)| {
                k.starts_with(labels::ACCESS_PREFIX) || k.starts_with(labels::SVC_ACCESS_PREFIX)
            })
            .filter(|(k, v)| pod.metadata.labels.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if missing.is_empty() || !seen.insert(&pod.workload) {
            continue;
        }
        let keys = missing.keys().cloned().collect::<Vec<_>>().join(", ");
        items.push(DriftItem {
            kind: DriftKind::MissingLabel,
            severity: DriftSeverity::Critical,
            namespace: pod.workload.namespace.clone(),
            workload: Some(pod.workload.clone()),
            source: None,
            target: None,
            object: Some(ObjectRef {
                kind: if pod.from_template {
                    pod.workload.kind.clone().unwrap_or_else(|| "Pod".to_string())
                } else {
                    "Pod".to_string()
                },
                namespace: pod.namespace().to_string(),
                name: pod.metadata.name.clone(),
                origin: pod.origin.clone(),
                field: "metadata.labels".to_string(),
            }),
            explanation: format!(
                "The pods of {} lack the access label(s) {keys} that its intents require, so the servers' policies do not admit it.",
                pod.workload
            ),
            fix: "Set the labels (below) on the pods; Accord's operator does this when it runs."
                .to_string(),
            fix_yaml: label_patch_yaml(&pod.workload, &missing),
        });
    }
}
