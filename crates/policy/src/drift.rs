//! Drift: declared intents compared with evaluated reality.
//!
//! In: an [`Inventory`] (with its live NetworkPolicies) and the generation options. Out: a
//! [`Report`] with one [`EdgeReport`] per client→server workload pair that is declared or
//! allowed, in one of the states of DESIGN.md's drift model, and the [`DriftItem`]s a platform
//! team should act on: one per root cause (a policy, a workload's missing access labels, the
//! operator absent from a namespace, a missing target, policies that are not Accord's), listing
//! the edges it affects, ranked by impact ([`SEVERITY_RULES`]), with a fix that
//! [`check_fix`] verifies with the what-if engine before it is offered.
//!
//! Workloads are named by their root identity ([`Naming::Workload`]). Edges are computed for the
//! whole inventory at once from the evaluator's connectivity, so the cost follows the number of
//! allowed pairs; per-rule explanations are left to [`Evaluator::explain`], which callers ask for
//! the few edges a user looks at.

pub mod changes;
mod fix;
mod items;
mod types;
pub mod what_if;

pub use fix::{FixCheck, check_fix};
pub(crate) use items::fnv;
use items::same_policy;
pub use items::{intents_yaml, line_diff, merged_intents};
pub use types::*;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::evaluate::{Conns, Evaluator, Naming, Peer, PolicyRef, Prepared};
use crate::generate::{GenerateOptions, generate};
use crate::identity::WorkloadId;
use crate::intents::{ClientIntents, TargetKind, TargetPort};
use crate::inventory::{Inventory, PolicyObject};
use crate::objects::{IntOrString, NetworkPolicy};

fn policy_object_ref(p: &NetworkPolicy, origin: &Origin) -> ObjectRef {
    ObjectRef {
        kind: "NetworkPolicy".to_string(),
        namespace: p.namespace().to_string(),
        name: p.metadata.name.clone(),
        origin: origin.clone(),
        field: String::new(),
    }
}

fn intents_ref(i: &ClientIntents, field: &str) -> ObjectRef {
    ObjectRef {
        kind: "ClientIntents".to_string(),
        namespace: i.namespace.clone(),
        name: i.name.clone(),
        origin: i.origin.clone(),
        field: field.to_string(),
    }
}

fn ports_conns(ports: &[TargetPort]) -> Conns {
    let mut c = Conns::none();
    for p in ports {
        let lo = p.port.clamp(0, 65535) as u16;
        let hi = p.end_port.unwrap_or(p.port).clamp(0, 65535) as u16;
        c.add(p.protocol, lo, hi.max(lo));
    }
    c
}

/// The ports a Service target reaches on a pod of the workload, resolving named target ports
/// against the pod's container ports.
fn service_conns(service: &crate::objects::Service, pod: Option<&crate::inventory::Pod>) -> Conns {
    let mut c = Conns::none();
    for p in &service.ports {
        match p.effective_target_port() {
            IntOrString::Int(n) => {
                let n = n.clamp(0, 65535) as u16;
                c.add(p.protocol, n, n);
            }
            IntOrString::String(name) => {
                if let Some(n) = pod.and_then(|pod| pod.named_port(&name, p.protocol)) {
                    let n = n.clamp(0, 65535) as u16;
                    c.add(p.protocol, n, n);
                }
            }
        }
    }
    c
}

struct Index<'a> {
    /// Resolved workload ids by (namespace, name).
    by_name: HashMap<(&'a str, &'a str), Vec<&'a WorkloadId>>,
    /// First pod index of each workload.
    first_pod: HashMap<&'a WorkloadId, usize>,
}

impl<'a> Index<'a> {
    fn new(inv: &'a Inventory) -> Self {
        let mut by_name: HashMap<(&str, &str), Vec<&WorkloadId>> = HashMap::new();
        let mut first_pod = HashMap::new();
        for (i, p) in inv.pods.iter().enumerate() {
            if first_pod.insert(&p.workload, i).is_none() {
                by_name
                    .entry((p.workload.namespace.as_str(), p.workload.name.as_str()))
                    .or_default()
                    .push(&p.workload);
            }
        }
        Index { by_name, first_pod }
    }

    /// The resolved workloads a declared identity designates.
    fn resolve(&self, id: &WorkloadId) -> Vec<&'a WorkloadId> {
        self.by_name
            .get(&(id.namespace.as_str(), id.name.as_str()))
            .map(|v| v.iter().copied().filter(|w| id.matches(w)).collect())
            .unwrap_or_default()
    }
}

/// The objects an analysis reads: an inventory's, or those of an inventory with a draft applied
/// (its policies, intents and some pods' labels replaced, without copying the inventory).
pub(crate) struct Estate<'a> {
    inv: &'a Inventory,
    policies: Vec<&'a PolicyObject>,
    intents: Vec<&'a ClientIntents>,
    /// Pods (indices into `inv.pods`) whose labels differ from the inventory's.
    relabelled: HashMap<usize, &'a crate::objects::Labels>,
}

impl<'a> Estate<'a> {
    pub(crate) fn of(inv: &'a Inventory) -> Self {
        Estate {
            inv,
            policies: inv.network_policies.iter().collect(),
            intents: inv.intents.iter().collect(),
            relabelled: HashMap::new(),
        }
    }

    pub(crate) fn changed(
        inv: &'a Inventory,
        policies: Vec<&'a PolicyObject>,
        intents: Vec<&'a ClientIntents>,
        relabelled: HashMap<usize, &'a crate::objects::Labels>,
    ) -> Self {
        Estate {
            inv,
            policies,
            intents,
            relabelled,
        }
    }

    pub(crate) fn inv(&self) -> &'a Inventory {
        self.inv
    }

    /// The labels of pod `i`.
    fn labels(&self, i: usize) -> &'a crate::objects::Labels {
        self.relabelled
            .get(&i)
            .copied()
            .unwrap_or(&self.inv.pods[i].metadata.labels)
    }
}

/// Per workload: the policies selecting it, those isolating it for ingress, and its pod count.
type Selection<'a> = BTreeMap<&'a WorkloadId, (BTreeSet<PolicyRef>, BTreeSet<PolicyRef>, u32)>;

/// The edges of an analysis and what they were computed from.
struct EdgeParts<'a> {
    selected: Selection<'a>,
    intents_of: BTreeMap<&'a WorkloadId, Vec<ObjectRef>>,
    edges: Vec<EdgeReport>,
    /// How many workloads admit every caller, when their open edges are left out.
    open_omitted: Option<usize>,
    open_bound: usize,
}

/// The edges of `inv`: every pair, or with `scope` only the pairs whose source or destination
/// is in it (the same edges as the whole analysis has for those pairs).
fn edge_parts<'a>(
    estate: &Estate<'a>,
    evaluator: &Evaluator<'_>,
    index: &Index<'a>,
    scope: Option<&HashSet<&WorkloadId>>,
) -> EdgeParts<'a> {
    let inv = estate.inv;
    let in_scope = |w: &WorkloadId| scope.is_none_or(|s| s.contains(w));
    // Which policies select each workload, and which isolate it for ingress.
    let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in estate.policies.iter().enumerate() {
        by_namespace
            .entry(p.policy.namespace())
            .or_default()
            .push(i);
    }
    // Within a scope, the policies are listed for the scope's workloads only; of the others,
    // whether some policy isolates them is enough until an edge needs the list (below).
    let detailed = |w: &WorkloadId| scope.is_none_or(|s| s.contains(w));
    let mut isolated_only: HashSet<&WorkloadId> = HashSet::new();
    let list_policies = |entry: &mut (BTreeSet<PolicyRef>, BTreeSet<PolicyRef>, u32),
                         pod_index: usize,
                         pod: &crate::inventory::Pod| {
        let labels = estate.labels(pod_index);
        for &i in by_namespace.get(pod.namespace()).into_iter().flatten() {
            let p = &estate.policies[i].policy;
            if !p.spec.pod_selector.matches(labels) {
                continue;
            }
            let r = PolicyRef {
                namespace: p.namespace().to_string(),
                name: p.metadata.name.clone(),
            };
            if p.spec.effective_types().0 {
                entry.1.insert(r.clone());
            }
            entry.0.insert(r);
        }
    };
    let mut selected: BTreeMap<&WorkloadId, (BTreeSet<PolicyRef>, BTreeSet<PolicyRef>, u32)> =
        BTreeMap::new();
    for (pod_index, pod) in inv.pods.iter().enumerate() {
        let entry = selected.entry(&pod.workload).or_default();
        entry.2 += 1;
        if detailed(&pod.workload) {
            list_policies(entry, pod_index, pod);
        } else if !isolated_only.contains(&pod.workload) {
            let labels = estate.labels(pod_index);
            let isolates = by_namespace
                .get(pod.namespace())
                .into_iter()
                .flatten()
                .map(|&i| &estate.policies[i].policy)
                .any(|p| p.spec.effective_types().0 && p.spec.pod_selector.matches(labels));
            if isolates {
                isolated_only.insert(&pod.workload);
            }
        }
    }

    // Pods by namespace, so that resolving a Service target costs its namespace's pods only.
    let mut pods_by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, pod) in inv.pods.iter().enumerate() {
        pods_by_namespace
            .entry(pod.namespace())
            .or_default()
            .push(i);
    }

    // Services by (namespace, name); the first wins, as in `Inventory::service`.
    let mut services: HashMap<(&str, &str), &crate::objects::Service> = HashMap::new();
    for svc in &inv.services {
        services
            .entry((svc.namespace(), svc.metadata.name.as_str()))
            .or_insert(svc);
    }

    let scope_namespaces: HashSet<&str> = scope
        .into_iter()
        .flatten()
        .map(|w| w.namespace.as_str())
        .collect();

    // Declared calls, resolved to workloads.
    let mut declared: BTreeMap<(&WorkloadId, &WorkloadId), Vec<Declaration>> = BTreeMap::new();
    let mut intents_of: BTreeMap<&WorkloadId, Vec<ObjectRef>> = BTreeMap::new();
    let scope_names: HashSet<(&str, &str)> = scope
        .into_iter()
        .flatten()
        .map(|w| (w.namespace.as_str(), w.name.as_str()))
        .collect();
    // Within a scope, intents whose client and targets cannot be in it declare nothing there.
    let may_touch_scope = |i: &ClientIntents| {
        scope_names.contains(&(i.namespace.as_str(), i.workload.name.as_str()))
            || i.targets.iter().any(|t| match &t.kind {
                TargetKind::Workload {
                    name, namespace, ..
                } => scope_names.contains(&(namespace.as_str(), name.as_str())),
                TargetKind::Service { namespace, .. } => {
                    scope_namespaces.contains(namespace.as_str())
                }
                _ => false,
            })
    };
    for &i in &estate.intents {
        if scope.is_some() && !may_touch_scope(i) {
            continue;
        }
        let client = WorkloadId::new(&i.namespace, &i.workload.name, i.workload.kind.as_deref());
        let clients = index.resolve(&client);
        for c in &clients {
            intents_of
                .entry(c)
                .or_default()
                .push(intents_ref(i, "spec.workload"));
        }
        for t in &i.targets {
            if t.is_api_server() {
                continue;
            }
            let servers: Vec<(&WorkloadId, Conns)> = match &t.kind {
                TargetKind::Workload {
                    name,
                    namespace,
                    kind,
                    ports,
                    ..
                } => {
                    let conns = if ports.is_empty() {
                        Conns::all()
                    } else {
                        ports_conns(ports)
                    };
                    index
                        .resolve(&WorkloadId::new(namespace, name, kind.as_deref()))
                        .into_iter()
                        .map(|w| (w, conns.clone()))
                        .collect()
                }
                TargetKind::Service {
                    name,
                    namespace,
                    ports,
                } => {
                    // Within a scope, a Service can only matter to an in-scope client or
                    // through the in-scope workloads of its namespace.
                    if scope.is_some()
                        && !clients.iter().any(|c| in_scope(c))
                        && !scope_namespaces.contains(namespace.as_str())
                    {
                        continue;
                    }
                    let Some(svc) = services.get(&(namespace.as_str(), name.as_str())) else {
                        continue;
                    };
                    let Some(sel) = &svc.selector else { continue };
                    let mut out: BTreeMap<&WorkloadId, Conns> = BTreeMap::new();
                    let in_namespace = pods_by_namespace
                        .get(namespace.as_str())
                        .map_or(&[][..], |v| &v[..]);
                    for &pod_index in in_namespace {
                        let pod = &inv.pods[pod_index];
                        let labels = estate.labels(pod_index);
                        if sel.is_empty() || !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                            continue;
                        }
                        let conns = if ports.is_empty() {
                            service_conns(svc, Some(pod))
                        } else {
                            ports_conns(ports)
                        };
                        out.entry(&pod.workload).or_default().union_with(&conns);
                    }
                    out.into_iter().collect()
                }
                _ => continue,
            };
            for c in &clients {
                for (s, conns) in &servers {
                    if c == s || !(in_scope(c) || in_scope(s)) {
                        continue;
                    }
                    declared.entry((c, s)).or_default().push(Declaration {
                        intents: intents_ref(i, &t.field),
                        conns: conns.clone(),
                    });
                }
            }
        }
    }

    // What the live policies allow. Pairs into a workload no policy isolates are `open` (and
    // hidden unless asked for); with few policies there are about workloads² of them, so past
    // OPEN_EDGE_LIMIT only the pairs into isolated workloads and the declared ones are examined.
    let open_servers = selected
        .iter()
        .filter(|(w, v)| v.1.is_empty() && !isolated_only.contains(*w))
        .count();
    let open_bound = selected.len().saturating_mul(open_servers);
    let mut open_omitted = None;
    let isolated = |w: &WorkloadId| {
        isolated_only.contains(w) || selected.get(w).is_some_and(|v| !v.1.is_empty())
    };
    let connections = if let Some(scope) = scope {
        // The pairs into the scope, and those out of it (both as the whole analysis would
        // examine them: into isolated workloads only, past the limit).
        let omit = open_bound > OPEN_EDGE_LIMIT;
        if omit {
            open_omitted = Some(open_servers);
        }
        let pairs: BTreeSet<(&WorkloadId, &WorkloadId)> = declared.keys().copied().collect();
        evaluator.workload_connections_around(
            Naming::Workload,
            |w| scope.contains(w) && (!omit || isolated(w)),
            |s| scope.contains(s),
            |d| !omit || isolated(d),
            &pairs,
        )
    } else if open_bound <= OPEN_EDGE_LIMIT {
        evaluator.connectivity(Naming::Workload).connections
    } else {
        open_omitted = Some(open_servers);
        let declared_pairs: BTreeSet<(&WorkloadId, &WorkloadId)> =
            declared.keys().copied().collect();
        evaluator.workload_connections(Naming::Workload, isolated, &declared_pairs)
    };

    // Every declared or allowed workload pair.
    let mut edges: Vec<EdgeReport> = Vec::new();
    let mut allowed_pairs: BTreeMap<(&WorkloadId, &WorkloadId), &Conns> = BTreeMap::new();
    for c in &connections {
        if let (Peer::Workload(s), Peer::Workload(d)) = (&c.src, &c.dst) {
            allowed_pairs.insert((s, d), &c.conns);
        }
    }
    let mut keys: BTreeSet<(&WorkloadId, &WorkloadId)> = allowed_pairs.keys().copied().collect();
    keys.extend(declared.keys().copied());
    // The policies isolating the destinations outside the scope that edges reach.
    let needed: HashSet<&WorkloadId> = keys
        .iter()
        .map(|(_, d)| *d)
        .filter(|d| isolated_only.contains(d))
        .collect();
    if !needed.is_empty() {
        for (pod_index, pod) in inv.pods.iter().enumerate() {
            if needed.contains(&pod.workload) {
                let entry = selected.entry(&pod.workload).or_default();
                list_policies(entry, pod_index, pod);
            }
        }
    }
    let isolated_by = |w: &WorkloadId| -> Vec<PolicyRef> {
        selected
            .get(w)
            .map(|s| s.1.iter().cloned().collect())
            .unwrap_or_default()
    };
    for (s, d) in keys {
        let decls = declared.remove(&(s, d)).unwrap_or_default();
        let mut declared_conns = Conns::none();
        for decl in &decls {
            declared_conns.union_with(&decl.conns);
        }
        let allowed = allowed_pairs
            .get(&(s, d))
            .map(|c| (*c).clone())
            .unwrap_or_default();
        let isolation = isolated_by(d);
        let is_declared = !decls.is_empty();
        // A declared call counts as allowed when some declared port is allowed (a target with
        // ports that resolve to nothing counts as allowed when anything is).
        let declared_allowed = if declared_conns.is_empty() {
            !allowed.is_empty()
        } else {
            !allowed.intersection(&declared_conns).is_empty()
        };
        let is_allowed = if is_declared {
            declared_allowed
        } else {
            !allowed.is_empty()
        };
        let Some(state) = EdgeState::of(is_declared, is_allowed, !isolation.is_empty()) else {
            continue;
        };
        let summary = summary(s, d, state, &decls, &allowed, &isolation);
        edges.push(EdgeReport {
            source: s.clone(),
            target: d.clone(),
            state,
            declared_by: decls,
            declared: declared_conns,
            allowed,
            ingress_isolated_by: isolation,
            summary,
        });
    }

    EdgeParts {
        selected,
        intents_of,
        edges,
        open_omitted,
        open_bound,
    }
}

/// Past this many possible `open` edges (workloads × workloads that no policy isolates), they
/// are left out of a [`Report`] and a warning says so.
pub const OPEN_EDGE_LIMIT: usize = 100_000;

/// Compare declared intents with what the inventory's live NetworkPolicies allow.
pub fn analyze(inv: &Inventory, opts: &GenerateOptions) -> Report {
    analyze_with(inv, opts, &Evaluator::new(inv))
}

/// [`analyze`] with the inventory's policies compiled beforehand (kept for what-ifs).
pub fn analyze_prepared(inv: &Inventory, opts: &GenerateOptions, prepared: &Prepared) -> Report {
    analyze_with(inv, opts, &prepared.evaluator(inv))
}

fn analyze_with(inv: &Inventory, opts: &GenerateOptions, evaluator: &Evaluator) -> Report {
    let generated = generate(inv, opts);
    let index = Index::new(inv);
    let EdgeParts {
        selected,
        intents_of,
        edges,
        open_omitted,
        open_bound,
    } = edge_parts(&Estate::of(inv), evaluator, &index, None);

    let workloads: Vec<WorkloadReport> = selected
        .iter()
        .map(|(id, (sel, iso, pods))| WorkloadReport {
            id: (*id).clone(),
            pods: *pods,
            ingress_isolated_by: iso.iter().cloned().collect(),
            selected_by: sel.iter().cloned().collect(),
            intents: intents_of.get(id).cloned().unwrap_or_default(),
            labels: index
                .first_pod
                .get(id)
                .map(|&i| inv.pods[i].metadata.labels.clone())
                .unwrap_or_default(),
        })
        .collect();

    let items = items::items(&items::Inputs {
        inv,
        generated: &generated,
        index: &index,
        evaluator,
        edges: &edges,
    });

    let mut diagnostics = generated.diagnostics.clone();
    diagnostics.extend(evaluator.diagnostics().iter().cloned());
    if let Some(n) = open_omitted {
        diagnostics.push(Diagnostic::warning(
            DiagnosticCode::OpenEdgesNotListed,
            &Origin::default(),
            "",
            "",
            format!(
                "{n} of {} workloads admit every caller (no NetworkPolicy isolates them for ingress); their default-allow (open) edges, up to {open_bound}, are not listed. Declared calls to them are (as unprotected).",
                selected.len()
            ),
        ));
    }
    Report {
        workloads,
        edges,
        items,
        generated,
        diagnostics,
    }
}

fn summary(
    s: &WorkloadId,
    d: &WorkloadId,
    state: EdgeState,
    decls: &[Declaration],
    allowed: &Conns,
    isolation: &[PolicyRef],
) -> String {
    let declared_by = decls
        .iter()
        .map(|d| d.intents.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let isolated = isolation
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match state {
        EdgeState::Enforced => format!(
            "{s} may call {d} ({allowed}) as declared by {declared_by}; {d} is isolated for ingress by {isolated}."
        ),
        EdgeState::Blocked => format!(
            "{declared_by} declares the call from {s} to {d}, but the policies isolating {d} ({isolated}) do not admit it on the declared ports."
        ),
        EdgeState::Unprotected => format!(
            "{s} may call {d} as declared by {declared_by}, but no NetworkPolicy isolates {d} for ingress, so every other workload may call it too."
        ),
        EdgeState::Undeclared => format!(
            "{s} may call {d} ({allowed}) although no intent declares it; {d} is isolated by {isolated}, whose rules let it in."
        ),
        EdgeState::Open => format!(
            "{s} may call {d} ({allowed}): no NetworkPolicy isolates {d} for ingress (default allow), and no intent declares the call."
        ),
    }
}

#[cfg(test)]
mod tests;
