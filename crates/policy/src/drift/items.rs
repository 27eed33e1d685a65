//! Drift items: one per root cause (a policy, a missing label set on a workload, the operator
//! absent from a namespace, a missing target, policies that are not Accord's), each listing the
//! edges it affects, ranked by impact ([`SEVERITY_RULES`]) and with a fix to check before it is
//! offered ([`super::check_fix`]). ClientIntents are written with the core's one writer.

use super::*;
use crate::diagnostic::Origin;
use crate::evaluate::{Evaluator, Naming, Peer, PolicyRef};
use crate::generate::Generated;
use crate::identity::WorkloadId;
use crate::intents::{ClientIntents, Target, TargetKind, WorkloadRef};
use crate::inventory::{Inventory, PolicyObject};
use crate::labels;
use crate::objects::{Labels, NetworkPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A ClientIntents (v2beta1) declaring that `client` calls `servers`, as a fix suggestion.
pub fn intents_yaml(client: &WorkloadId, servers: &[&WorkloadId]) -> String {
    let mut intents = new_intents(client);
    for s in servers {
        intents.targets.push(workload_target(s));
    }
    crate::render::intents_yaml(std::slice::from_ref(&intents))
}

fn new_intents(client: &WorkloadId) -> ClientIntents {
    ClientIntents {
        // The object is named after the workload's own name, which the API server accepts
        // (the identity's `_` back to `.`).
        name: crate::generate::object_name("", &client.name, ""),
        namespace: client.namespace.clone(),
        workload: WorkloadRef {
            name: client.name.clone(),
            kind: client.kind.clone(),
        },
        ..ClientIntents::default()
    }
}

fn workload_target(server: &WorkloadId) -> Target {
    Target {
        field: String::new(),
        kind: TargetKind::Workload {
            name: server.name.clone(),
            namespace: server.namespace.clone(),
            kind: server.kind.clone(),
            ports: Vec::new(),
            kafka: false,
        },
    }
}

/// The client's current ClientIntents merged with calls to `servers`: the first of its intents
/// (by name) keeps every target it has and gains the new ones, under the same name; a client
/// without intents gets a new object.
pub fn merged_intents(
    inv: &Inventory,
    client: &WorkloadId,
    servers: &[&WorkloadId],
) -> ClientIntents {
    let mut current: Vec<&ClientIntents> = inv
        .intents
        .iter()
        .filter(|i| {
            i.namespace == client.namespace
                && WorkloadId::new(&i.namespace, &i.workload.name, i.workload.kind.as_deref())
                    .matches(client)
        })
        .collect();
    current.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = match current.first() {
        Some(i) => (*i).clone(),
        None => new_intents(client),
    };
    for s in servers {
        out.targets.push(workload_target(s));
    }
    out
}

fn policy_yaml(p: &NetworkPolicy) -> String {
    crate::render::policies_yaml(std::slice::from_ref(p)).unwrap_or_default()
}

/// A line diff from `old` to `new`: every line, prefixed `-`, `+` or ` ` (longest common
/// subsequence; policies are short).
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
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

fn is_access_label(k: &str) -> bool {
    k.starts_with(labels::ACCESS_PREFIX) || k.starts_with(labels::SVC_ACCESS_PREFIX)
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

/// Whether a generated policy is live as generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status<'a> {
    Missing,
    Modified(&'a PolicyObject),
    Same,
}

/// One cause being gathered.
struct Cause {
    kind: DriftKind,
    namespace: String,
    workload: Option<WorkloadId>,
    object: Option<ObjectRef>,
    edges: BTreeMap<(WorkloadId, WorkloadId), AffectedEdge>,
    /// Generated policies (indices into `generated.policies`) the cause is about.
    policies: BTreeSet<usize>,
    /// Clients whose access labels the cause is about.
    clients: BTreeSet<WorkloadId>,
    /// Servers admitting undeclared callers (for an intents fix).
    stale: Option<(String, String)>,
    target_field: String,
}

impl Cause {
    fn new(kind: DriftKind, namespace: &str) -> Cause {
        Cause {
            kind,
            namespace: namespace.to_string(),
            workload: None,
            object: None,
            edges: BTreeMap::new(),
            policies: BTreeSet::new(),
            clients: BTreeSet::new(),
            stale: None,
            target_field: String::new(),
        }
    }

    fn add_edge(&mut self, e: &EdgeReport, denied_once_applied: bool) {
        let entry = self
            .edges
            .entry((e.source.clone(), e.target.clone()))
            .or_insert_with(|| AffectedEdge {
                source: e.source.clone(),
                target: e.target.clone(),
                state: e.state,
                denied_once_applied: false,
            });
        entry.denied_once_applied |= denied_once_applied;
    }
}

/// What the items are computed from.
pub(super) struct Inputs<'a, 'e> {
    pub inv: &'a Inventory,
    pub generated: &'a Generated,
    pub index: &'a Index<'a>,
    pub evaluator: &'a Evaluator<'e>,
    pub edges: &'a [EdgeReport],
}

/// Every drift item of an analysis, worst first.
pub(super) fn items(x: &Inputs<'_, '_>) -> Vec<DriftItem> {
    let Inputs {
        inv,
        generated,
        index,
        evaluator,
        edges,
    } = *x;

    // Live policies by (namespace, name), and each generated policy's status.
    let live: HashMap<(&str, &str), &PolicyObject> = inv
        .network_policies
        .iter()
        .map(|p| ((p.policy.namespace(), p.policy.metadata.name.as_str()), p))
        .collect();
    let status: Vec<Status> = generated
        .policies
        .iter()
        .map(
            |want| match live.get(&(want.namespace(), want.metadata.name.as_str())) {
                None => Status::Missing,
                Some(obj) if !same_policy(&obj.policy, want) => Status::Modified(obj),
                Some(_) => Status::Same,
            },
        )
        .collect();

    // Namespaces where the operator is absent: every policy generated there is missing.
    let mut per_namespace: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, want) in generated.policies.iter().enumerate() {
        let e = per_namespace.entry(want.namespace()).or_default();
        e.0 += 1;
        if status[i] == Status::Missing {
            e.1 += 1;
        }
    }
    let absent: BTreeSet<&str> = per_namespace
        .iter()
        .filter(|(_, (all, missing))| all == missing)
        .map(|(ns, _)| *ns)
        .collect();

    // The generated ingress policies of each server.
    let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in generated.policies.iter().enumerate() {
        if p.spec.effective_types().0 {
            by_namespace.entry(p.namespace()).or_default().push(i);
        }
    }
    let mut server_policies: HashMap<&WorkloadId, Vec<usize>> = HashMap::new();
    for w in index.first_pod.keys() {
        let Some(candidates) = by_namespace.get(w.namespace.as_str()) else {
            continue;
        };
        // Generation selects a server as its intents name it: with or without its kind.
        let sel = crate::generate::workload_selector(w);
        let kindless = crate::generate::workload_selector(&WorkloadId {
            kind: None,
            ..(*w).clone()
        });
        let mine: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let s = &generated.policies[i].spec.pod_selector;
                *s == sel || *s == kindless
            })
            .collect();
        if !mine.is_empty() {
            server_policies.insert(w, mine);
        }
    }
    let protected = |w: &WorkloadId| server_policies.contains_key(w);
    let mut policy_servers: Vec<Vec<&WorkloadId>> = vec![Vec::new(); generated.policies.len()];
    for (w, ps) in &server_policies {
        for &i in ps {
            policy_servers[i].push(w);
        }
    }
    let mut intents_by_subject: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, intents) in inv.intents.iter().enumerate() {
        for s in intents.subjects() {
            intents_by_subject.entry(s).or_default().push(i);
        }
    }

    // The access labels each client lacks.
    let mut missing_labels: BTreeMap<&WorkloadId, (Labels, usize)> = BTreeMap::new();
    {
        let mut cache: HashMap<&WorkloadId, Labels> = HashMap::new();
        for (pi, pod) in inv.pods.iter().enumerate() {
            if missing_labels.contains_key(&pod.workload) {
                continue;
            }
            let want = cache
                .entry(&pod.workload)
                .or_insert_with(|| generated.labels_for(&pod.workload));
            let missing: Labels = want
                .iter()
                .filter(|(k, _)| is_access_label(k))
                .filter(|(k, v)| pod.metadata.labels.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !missing.is_empty() {
                missing_labels.insert(&pod.workload, (missing, pi));
            }
        }
    }
    // Whether the generated ingress policy of `server` admits callers by a label `client` lacks
    // while the operator runs in the client's namespace (where it is absent, it would set the
    // label along with the policies: nothing would be denied once all of its output applies).
    let admits_by_missing_label = |client: &WorkloadId, server: &WorkloadId| -> bool {
        let Some((missing, _)) = missing_labels.get(client) else {
            return false;
        };
        server_policies.get(server).into_iter().flatten().any(|&i| {
            generated.policies[i]
                .spec
                .ingress
                .iter()
                .flatten()
                .flat_map(|r| r.from.iter())
                .filter_map(|peer| peer.pod_selector.as_ref())
                .any(|sel| sel.match_labels.keys().any(|k| missing.contains_key(k)))
        })
    };
    let lacks_admitting_label = |client: &WorkloadId, server: &WorkloadId| -> bool {
        !absent.contains(client.namespace.as_str()) && admits_by_missing_label(client, server)
    };
    // The generated policy of `server` that is not live as generated, if any.
    let pending = |server: &WorkloadId| -> Option<usize> {
        server_policies
            .get(server)
            .into_iter()
            .flatten()
            .copied()
            .find(|&i| status[i] != Status::Same)
    };

    let mut causes: BTreeMap<String, Cause> = BTreeMap::new();
    let policy_cause = |causes: &mut BTreeMap<String, Cause>, i: usize| -> String {
        let want = &generated.policies[i];
        let ns = want.namespace();
        let (key, kind, object) = if absent.contains(ns) {
            (
                format!("operator-absent/{ns}"),
                DriftKind::OperatorAbsent,
                None,
            )
        } else {
            match status[i] {
                Status::Modified(obj) => (
                    format!("modified-policy/{ns}/{}", want.metadata.name),
                    DriftKind::ModifiedPolicy,
                    Some(policy_object_ref(&obj.policy, &obj.origin)),
                ),
                _ => (
                    format!("missing-policy/{ns}/{}", want.metadata.name),
                    DriftKind::MissingPolicy,
                    Some(policy_object_ref(want, &Origin::default())),
                ),
            }
        };
        let c = causes
            .entry(key.clone())
            .or_insert_with(|| Cause::new(kind, ns));
        c.object = object;
        if kind == DriftKind::OperatorAbsent {
            c.object = Some(ObjectRef {
                kind: "Namespace".to_string(),
                namespace: String::new(),
                name: ns.to_string(),
                origin: Origin::default(),
                field: String::new(),
            });
        }
        c.policies.insert(i);
        key
    };
    let label_cause = |causes: &mut BTreeMap<String, Cause>, client: &WorkloadId| -> String {
        let ns = client.namespace.as_str();
        let (key, kind) = if absent.contains(ns) {
            (format!("operator-absent/{ns}"), DriftKind::OperatorAbsent)
        } else {
            (format!("missing-label/{client}"), DriftKind::MissingLabel)
        };
        let c = causes
            .entry(key.clone())
            .or_insert_with(|| Cause::new(kind, ns));
        if kind == DriftKind::MissingLabel {
            c.workload = Some(client.clone());
            if let Some((_, pi)) = missing_labels.get(client) {
                let pod = &inv.pods[*pi];
                c.object = Some(ObjectRef {
                    kind: if pod.from_template {
                        client.kind.clone().unwrap_or_else(|| "Pod".to_string())
                    } else {
                        "Pod".to_string()
                    },
                    namespace: pod.namespace().to_string(),
                    name: pod.metadata.name.clone(),
                    origin: pod.origin.clone(),
                    field: "metadata.labels".to_string(),
                });
            }
        } else {
            c.object = Some(ObjectRef {
                kind: "Namespace".to_string(),
                namespace: String::new(),
                name: ns.to_string(),
                origin: Origin::default(),
                field: String::new(),
            });
        }
        c.clients.insert(client.clone());
        key
    };

    // Undeclared callers are attributed to the policies that admit them, explained once per
    // server (for its first undeclared caller).
    let mut admitting: HashMap<&WorkloadId, Vec<PolicyRef>> = HashMap::new();

    for e in edges {
        match e.state {
            EdgeState::Open => {}
            EdgeState::Enforced => {
                // Works and is protected; it still belongs to a cause of Accord's own output.
                if let Some(i) = pending(&e.target) {
                    let denied = lacks_admitting_label(&e.source, &e.target);
                    let key = policy_cause(&mut causes, i);
                    causes.get_mut(&key).expect("cause").add_edge(e, denied);
                    if denied {
                        let key = label_cause(&mut causes, &e.source);
                        causes.get_mut(&key).expect("cause").add_edge(e, true);
                    }
                } else if missing_labels.contains_key(&e.source) {
                    let key = label_cause(&mut causes, &e.source);
                    causes.get_mut(&key).expect("cause").add_edge(e, false);
                }
            }
            EdgeState::Blocked => {
                let key = if admits_by_missing_label(&e.source, &e.target) {
                    label_cause(&mut causes, &e.source)
                } else if let Some(i) = pending(&e.target) {
                    policy_cause(&mut causes, i)
                } else {
                    let key = format!("blocked/{}", e.target);
                    let c = causes
                        .entry(key.clone())
                        .or_insert_with(|| Cause::new(DriftKind::Blocked, &e.target.namespace));
                    c.workload = Some(e.target.clone());
                    if let Some(p) = e.ingress_isolated_by.first() {
                        c.object = Some(policy_ref_object(p));
                    }
                    key
                };
                causes.get_mut(&key).expect("cause").add_edge(e, false);
            }
            EdgeState::Unprotected => {
                let key = if let Some(i) = pending(&e.target) {
                    policy_cause(&mut causes, i)
                } else {
                    let key = format!("unprotected/{}", e.target);
                    let c = causes
                        .entry(key.clone())
                        .or_insert_with(|| Cause::new(DriftKind::Unprotected, &e.target.namespace));
                    c.workload = Some(e.target.clone());
                    key
                };
                let denied = lacks_admitting_label(&e.source, &e.target);
                causes.get_mut(&key).expect("cause").add_edge(e, denied);
            }
            EdgeState::Undeclared => {
                let by = admitting.entry(&e.target).or_insert_with(|| {
                    admitting_policies(evaluator, &e.source, &e.target, &e.ingress_isolated_by)
                });
                // A modified Accord policy admitting the caller is the cause; otherwise the
                // (other) policies that admit it.
                let modified = by.iter().find_map(|p| {
                    server_policies
                        .get(&e.target)
                        .into_iter()
                        .flatten()
                        .find(|&&i| {
                            matches!(status[i], Status::Modified(_))
                                && generated.policies[i].metadata.name == p.name
                                && generated.policies[i].namespace() == p.namespace
                        })
                });
                let key = if let Some(&i) = modified {
                    policy_cause(&mut causes, i)
                } else {
                    let names = by.iter().map(|p| p.to_string()).collect::<Vec<_>>();
                    let key = format!("undeclared/{}", names.join(","));
                    let ns = by
                        .first()
                        .map_or(e.target.namespace.as_str(), |p| p.namespace.as_str());
                    let c = causes
                        .entry(key.clone())
                        .or_insert_with(|| Cause::new(DriftKind::Undeclared, ns));
                    if let Some(p) = by.first() {
                        c.object = Some(policy_ref_object(p));
                    }
                    key
                };
                causes.get_mut(&key).expect("cause").add_edge(e, false);
            }
        }
    }

    // Accord's output drifting with no edge at stake.
    for (i, s) in status.iter().enumerate() {
        if *s != Status::Same {
            policy_cause(&mut causes, i);
        }
    }
    for client in missing_labels.keys() {
        label_cause(&mut causes, client);
    }
    let wanted: BTreeSet<(&str, &str)> = generated
        .policies
        .iter()
        .map(|p| (p.namespace(), p.metadata.name.as_str()))
        .collect();
    for obj in &inv.network_policies {
        let p = &obj.policy;
        let key = (p.namespace(), p.metadata.name.as_str());
        if p.metadata.labels.contains_key(labels::NETWORK_POLICY) && !wanted.contains(&key) {
            let k = format!("stale-policy/{}/{}", key.0, key.1);
            let c = causes
                .entry(k)
                .or_insert_with(|| Cause::new(DriftKind::StalePolicy, key.0));
            c.object = Some(policy_object_ref(p, &obj.origin));
            c.stale = Some((key.0.to_string(), key.1.to_string()));
        }
    }
    missing_targets(inv, index, &mut causes);

    let mut out: Vec<DriftItem> = causes
        .into_iter()
        .map(|(key, c)| {
            finish(
                key,
                c,
                &Lookup {
                    x,
                    protected: &protected,
                    status: &status,
                    missing_labels: &missing_labels,
                    policy_servers: &policy_servers,
                    intents_by_subject: &intents_by_subject,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.edges.len().cmp(&a.edges.len()))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

fn policy_ref_object(p: &PolicyRef) -> ObjectRef {
    ObjectRef {
        kind: "NetworkPolicy".to_string(),
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        origin: Origin::default(),
        field: String::new(),
    }
}

/// The policies whose ingress rules admit `source` into `target` (sorted); the isolating
/// policies when the explanation names none.
fn admitting_policies(
    evaluator: &Evaluator<'_>,
    source: &WorkloadId,
    target: &WorkloadId,
    isolating: &[PolicyRef],
) -> Vec<PolicyRef> {
    let mut out: BTreeSet<PolicyRef> = evaluator
        .explain(
            &Peer::Workload(source.clone()),
            &Peer::Workload(target.clone()),
            Naming::Workload,
        )
        .map(|x| {
            x.ingress
                .admitted_by
                .into_iter()
                .map(|a| a.rule.policy)
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        out.extend(isolating.iter().cloned());
    }
    out.into_iter().collect()
}

/// Intents targets that name no workload and no Service.
fn missing_targets(inv: &Inventory, index: &Index<'_>, causes: &mut BTreeMap<String, Cause>) {
    let services: BTreeSet<(&str, &str)> = inv
        .services
        .iter()
        .map(|s| (s.namespace(), s.metadata.name.as_str()))
        .collect();
    for i in &inv.intents {
        for t in &i.targets {
            if t.is_api_server() {
                continue;
            }
            let (exists, name, namespace) = match &t.kind {
                TargetKind::Workload {
                    name,
                    namespace,
                    kind,
                    ..
                } => (
                    !index
                        .resolve(&WorkloadId::new(namespace, name, kind.as_deref()))
                        .is_empty(),
                    name,
                    namespace,
                ),
                TargetKind::Service {
                    name, namespace, ..
                } => (
                    services.contains(&(namespace.as_str(), name.as_str())),
                    name,
                    namespace,
                ),
                _ => continue,
            };
            if exists {
                continue;
            }
            let key = format!("missing-target/{}/{}/{}", i.namespace, i.name, t.field);
            let c = causes
                .entry(key)
                .or_insert_with(|| Cause::new(DriftKind::MissingTarget, &i.namespace));
            c.object = Some(intents_ref(i, &t.field));
            c.workload = Some(WorkloadId::new(
                &i.namespace,
                &i.workload.name,
                i.workload.kind.as_deref(),
            ));
            c.target_field = format!("{namespace}/{name}");
        }
    }
}

/// The first rule of [`SEVERITY_RULES`] that holds for a cause.
fn rule_of(
    kind: DriftKind,
    edges: &[AffectedEdge],
    protected: &dyn Fn(&WorkloadId) -> bool,
) -> &'static SeverityRule {
    let id = if edges.iter().any(|e| e.state == EdgeState::Blocked) {
        "declared-call-denied"
    } else if edges.iter().any(|e| e.denied_once_applied) {
        "denied-once-applied"
    } else if edges
        .iter()
        .any(|e| e.state == EdgeState::Undeclared && protected(&e.target))
    {
        "over-permissive"
    } else if edges
        .iter()
        .any(|e| e.state == EdgeState::Unprotected && protected(&e.target))
    {
        "unprotected-enforced"
    } else if edges.iter().any(|e| e.state == EdgeState::Undeclared) {
        "undeclared-unmanaged"
    } else if kind == DriftKind::ModifiedPolicy {
        "edited-output"
    } else if kind == DriftKind::Unprotected {
        "shadow-mode"
    } else {
        "output-absent"
    };
    severity_rule(id).expect("a rule of the table")
}

pub(crate) fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What [`finish`] looks things up in.
struct Lookup<'l, 'a, 'e> {
    x: &'l Inputs<'a, 'e>,
    protected: &'l dyn Fn(&WorkloadId) -> bool,
    status: &'l [Status<'a>],
    missing_labels: &'l BTreeMap<&'a WorkloadId, (Labels, usize)>,
    /// The servers each generated ingress policy is for.
    policy_servers: &'l [Vec<&'a WorkloadId>],
    /// Intents (indices) by subject.
    intents_by_subject: &'l HashMap<(String, String), Vec<usize>>,
}

impl Lookup<'_, '_, '_> {
    /// The intents the operator acts on to regenerate the policies and labels of `subjects`.
    fn intents_about(&self, subjects: &BTreeSet<(String, String)>) -> Vec<ClientIntents> {
        let idx: BTreeSet<usize> = subjects
            .iter()
            .flat_map(|s| {
                self.intents_by_subject
                    .get(s)
                    .into_iter()
                    .flatten()
                    .copied()
            })
            .collect();
        idx.into_iter()
            .map(|i| self.x.inv.intents[i].clone())
            .collect()
    }

    /// The workloads the generated policies are for, as subjects.
    fn subjects_of_policies(&self, set: &BTreeSet<usize>) -> BTreeSet<(String, String)> {
        set.iter()
            .flat_map(|&i| self.policy_servers[i].iter())
            .map(|w| (w.namespace.clone(), w.name.clone()))
            .collect()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn finish(key: String, c: Cause, l: &Lookup<'_, '_, '_>) -> DriftItem {
    let (x, protected, status, missing_labels) = (l.x, l.protected, l.status, l.missing_labels);
    let inv = x.inv;
    let generated = x.generated;
    let edges: Vec<AffectedEdge> = c.edges.into_values().collect();
    let rule = rule_of(c.kind, &edges, protected);
    let count = |s: EdgeState| edges.iter().filter(|e| e.state == s).count();
    let (blocked, unprotected, undeclared, enforced) = (
        count(EdgeState::Blocked),
        count(EdgeState::Unprotected),
        count(EdgeState::Undeclared),
        count(EdgeState::Enforced),
    );
    let denied_later = edges.iter().filter(|e| e.denied_once_applied).count();
    // What the edges say, in words, true of every state.
    let effect = {
        let mut parts = Vec::new();
        if blocked > 0 {
            parts.push(format!(
                "{} denied now",
                plural(blocked, "declared call is", "declared calls are")
            ));
        }
        if denied_later > 0 {
            parts.push(format!(
                "{} will be denied once the operator's policy is applied (the client lacks the access label)",
                plural(denied_later, "declared call", "declared calls")
            ));
        }
        if unprotected > 0 {
            parts.push(format!(
                "{} unprotected (the server admits everyone)",
                plural(unprotected, "declared call is", "declared calls are")
            ));
        }
        if undeclared > 0 {
            parts.push(format!(
                "{} admitted although no intent declares them",
                plural(undeclared, "caller is", "callers are")
            ));
        }
        if enforced > denied_later {
            parts.push(format!(
                "{} enforced (allowed into an isolated server)",
                plural(
                    enforced - denied_later,
                    "declared call is",
                    "declared calls are"
                )
            ));
        }
        if parts.is_empty() {
            "No call is affected.".to_string()
        } else {
            let mut s = parts.join("; ");
            s.push('.');
            s[..1].to_uppercase() + &s[1..]
        }
    };
    let (explanation, advice, fix) = match c.kind {
        DriftKind::OperatorAbsent => {
            let ns = &c.namespace;
            let subjects: BTreeSet<(String, String)> = {
                let mut s = l.subjects_of_policies(
                    &generated
                        .policies
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.namespace() == ns)
                        .map(|(i, _)| i)
                        .collect(),
                );
                s.extend(
                    c.clients
                        .iter()
                        .map(|w| (w.namespace.clone(), w.name.clone())),
                );
                s
            };
            let wanted: Vec<NetworkPolicy> = generated
                .policies
                .iter()
                .filter(|p| p.namespace() == ns)
                .cloned()
                .collect();
            (
                format!(
                    "None of the {} Accord generates in {ns} is live: its operator is not running or not enforcing there. {effect}",
                    plural(wanted.len(), "NetworkPolicy", "NetworkPolicies")
                ),
                format!(
                    "Run Accord's operator with enforcement for namespace {ns}; it applies the policies and access labels the intents call for."
                ),
                Some(Fix {
                    kind: FixKind::Operator,
                    description: format!(
                        "Run or enable Accord's operator for {ns} (or apply its {} below).",
                        plural(wanted.len(), "policy", "policies")
                    ),
                    yaml: crate::render::policies_yaml(&wanted).unwrap_or_default(),
                    diff: String::new(),
                    draft: l.intents_about(&subjects),
                    delete: Vec::new(),
                }),
            )
        }
        DriftKind::MissingPolicy | DriftKind::ModifiedPolicy => {
            let i = *c
                .policies
                .iter()
                .next()
                .expect("a policy cause has its policy");
            let want = &generated.policies[i];
            let name = format!("{}/{}", want.namespace(), want.metadata.name);
            let (explanation, diff) = match status[i] {
                Status::Modified(obj) => (
                    format!(
                        "NetworkPolicy {name} is Accord's but differs from what the intents generate now (edited by hand?). {effect}"
                    ),
                    line_diff(&policy_yaml(&obj.policy), &policy_yaml(want)),
                ),
                _ => (
                    format!(
                        "NetworkPolicy {name}, which the intents call for, is missing. {effect}"
                    ),
                    line_diff("", &policy_yaml(want)),
                ),
            };
            let subjects = l.subjects_of_policies(&c.policies);
            (
                explanation,
                if c.kind == DriftKind::ModifiedPolicy {
                    "Replace it with the generated policy (the diff below); declare any extra access in ClientIntents instead.".to_string()
                } else {
                    "Apply the generated policy (below); Accord's operator recreates it when it runs.".to_string()
                },
                Some(Fix {
                    kind: FixKind::PolicyPatch,
                    description: format!("Apply the generated NetworkPolicy {name}."),
                    yaml: policy_yaml(want),
                    diff,
                    draft: l.intents_about(&subjects),
                    delete: Vec::new(),
                }),
            )
        }
        DriftKind::MissingLabel => {
            let w = c.workload.clone().expect("a label cause has its workload");
            let missing = missing_labels
                .get(&w)
                .map(|(l, _)| l.clone())
                .unwrap_or_default();
            let keys = missing.keys().cloned().collect::<Vec<_>>().join(", ");
            let subjects = BTreeSet::from([(w.namespace.clone(), w.name.clone())]);
            (
                format!(
                    "The pods of {w} lack the access label(s) {keys} that its intents call for. {effect}"
                ),
                "Set the labels (below) on the pods; Accord's operator does this when it runs."
                    .to_string(),
                Some(Fix {
                    kind: FixKind::Labels,
                    description: format!("Set the access labels on the pods of {w}."),
                    yaml: label_patch_yaml(&w, &missing),
                    diff: String::new(),
                    draft: l
                        .intents_about(&subjects)
                        .into_iter()
                        .filter(|i| i.namespace == w.namespace && i.workload.name == w.name)
                        .collect(),
                    delete: Vec::new(),
                }),
            )
        }
        DriftKind::StalePolicy => {
            let (ns, name) = c.stale.clone().expect("a stale cause has its policy");
            (
                format!(
                    "NetworkPolicy {ns}/{name} carries Accord's label but no intent generates it any more. {effect}"
                ),
                format!("Delete it: kubectl delete networkpolicy -n {ns} {name}"),
                Some(Fix {
                    kind: FixKind::DeletePolicy,
                    description: format!("Delete NetworkPolicy {ns}/{name}."),
                    yaml: String::new(),
                    diff: String::new(),
                    draft: Vec::new(),
                    delete: vec![(ns, name)],
                }),
            )
        }
        DriftKind::Undeclared => {
            let by = c.object.as_ref().map(|o| o.to_string()).unwrap_or_default();
            let mut callers: BTreeMap<&WorkloadId, Vec<&WorkloadId>> = BTreeMap::new();
            for e in edges.iter().filter(|e| e.state == EdgeState::Undeclared) {
                callers.entry(&e.source).or_default().push(&e.target);
            }
            let draft: Vec<ClientIntents> = callers
                .iter()
                .map(|(client, servers)| merged_intents(inv, client, servers))
                .collect();
            (
                format!(
                    "{by} (and any other policy listed) admits callers no intent declares. {effect}"
                ),
                format!(
                    "If these calls are wanted, declare them in each client's ClientIntents (merged below); otherwise remove the rule that admits them from {by}."
                ),
                Some(Fix {
                    kind: FixKind::Intents,
                    description: format!(
                        "Declare the {} in {} (current targets kept).",
                        plural(undeclared, "call", "calls"),
                        plural(draft.len(), "ClientIntents", "ClientIntents")
                    ),
                    yaml: crate::render::intents_yaml(&draft),
                    diff: String::new(),
                    draft,
                    delete: Vec::new(),
                }),
            )
        }
        DriftKind::Blocked => {
            let server = c.workload.clone().expect("a blocked cause has its server");
            let isolating = edges
                .first()
                .and_then(|e| {
                    x.edges
                        .iter()
                        .find(|r| r.source == e.source && r.target == e.target)
                })
                .map(|r| {
                    r.ingress_isolated_by
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            (
                format!(
                    "The policies isolating {server} ({isolating}) are not Accord's and do not admit its declared callers. {effect}"
                ),
                format!(
                    "Add a rule admitting the declared callers to {isolating}, or let Accord generate {server}'s policy."
                ),
                None,
            )
        }
        DriftKind::Unprotected => {
            let server = c
                .workload
                .clone()
                .expect("an unprotected cause has its server");
            (
                format!(
                    "No NetworkPolicy isolates {server} and Accord generates none for it (shadow mode). {effect}"
                ),
                format!(
                    "Enforce namespace {} in the operator's settings (or protect {server} with a ProtectedService) to isolate it.",
                    server.namespace
                ),
                None,
            )
        }
        DriftKind::ObservedUndeclared | DriftKind::DeclaredUnused | DriftKind::ObservedDropped => {
            unreachable!("observed items are built by observed::drift_items, never as causes here")
        }
        DriftKind::MissingTarget => {
            let client = c.workload.clone().expect("a target cause has its client");
            (
                format!(
                    "{} names {} as a target, but no workload or Service of that name exists. No call is affected.",
                    c.object.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                    c.target_field
                ),
                format!(
                    "Deploy {} or remove the target from {client}'s ClientIntents.",
                    c.target_field
                ),
                None,
            )
        }
    };
    let first = edges.first();
    let fingerprint = {
        let mut text = format!("{key}|{}|", rule.id);
        for e in &edges {
            text.push_str(&format!(
                "{}>{}:{}:{};",
                e.source, e.target, e.state, e.denied_once_applied
            ));
        }
        if let Some(f) = &fix {
            text.push_str(&f.yaml);
        }
        fnv(&text)
    };
    DriftItem {
        key,
        kind: c.kind,
        severity: rule.severity,
        rule: rule.id.to_string(),
        namespace: c.namespace,
        workload: c.workload,
        source: first.map(|e| e.source.clone()),
        target: first.map(|e| e.target.clone()),
        object: c.object,
        explanation,
        advice,
        edges,
        fix,
        fingerprint,
    }
}
