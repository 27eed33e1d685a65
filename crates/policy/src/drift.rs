//! Drift: declared intents compared with evaluated reality.
//!
//! In: an [`Inventory`] (with its live NetworkPolicies) and the generation options. Out: a
//! [`Report`] with one [`EdgeReport`] per client→server workload pair that is declared or
//! allowed, in one of the states of DESIGN.md's drift model, and the [`DriftItem`]s a platform
//! team should act on, each with a suggested fix: declared calls that are blocked or
//! unprotected, undeclared access, and drift of Accord's own output (a generated policy edited,
//! missing or stale, a client pod missing its access label).
//!
//! Workloads are named by their root identity ([`Naming::Workload`]). Edges are computed for the
//! whole inventory at once from the evaluator's connectivity, so the cost follows the number of
//! allowed pairs; per-rule explanations are left to [`Evaluator::explain`], which callers ask for
//! the few edges a user looks at.

pub mod changes;
pub mod what_if;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::evaluate::{Conns, Evaluator, Naming, Peer, PolicyRef};
use crate::generate::{GenerateOptions, Generated, generate};
use crate::identity::WorkloadId;
use crate::intents::{ClientIntents, TargetKind, TargetPort};
use crate::inventory::Inventory;
use crate::labels;
use crate::objects::{IntOrString, Labels, NetworkPolicy};

/// The state of one client→server edge (DESIGN.md, "Edge states").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeState {
    Enforced,
    Blocked,
    Unprotected,
    Undeclared,
    Open,
}

impl EdgeState {
    pub const ALL: [EdgeState; 5] = [
        EdgeState::Enforced,
        EdgeState::Blocked,
        EdgeState::Unprotected,
        EdgeState::Undeclared,
        EdgeState::Open,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeState::Enforced => "enforced",
            EdgeState::Blocked => "blocked",
            EdgeState::Unprotected => "unprotected",
            EdgeState::Undeclared => "undeclared",
            EdgeState::Open => "open",
        }
    }

    /// The state of a pair: whether it is declared, allowed, and the server isolated for ingress.
    /// `None` for a pair that is neither declared nor allowed.
    pub fn of(declared: bool, allowed: bool, isolated: bool) -> Option<EdgeState> {
        Some(match (declared, allowed, isolated) {
            (true, true, true) => EdgeState::Enforced,
            (true, false, _) => EdgeState::Blocked,
            (true, true, false) => EdgeState::Unprotected,
            (false, true, true) => EdgeState::Undeclared,
            (false, true, false) => EdgeState::Open,
            (false, false, _) => return None,
        })
    }
}

impl fmt::Display for EdgeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no edge state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an edge state (enforced, blocked, unprotected, undeclared, open)")]
pub struct UnknownEdgeState(pub String);

impl std::str::FromStr for EdgeState {
    type Err = UnknownEdgeState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EdgeState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownEdgeState(s.to_string()))
    }
}

impl TryFrom<String> for EdgeState {
    type Error = UnknownEdgeState;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// An object, by kind, namespace and name, with where it came from and the field concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    /// A field path inside the object (empty for the whole object).
    pub field: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?;
        if !self.field.is_empty() {
            write!(f, " {}", self.field)?;
        }
        Ok(())
    }
}

/// One declaration of a call: the intent and target that declare it, and its ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub intents: ObjectRef,
    /// The ports declared (all connections when the target names none).
    pub conns: Conns,
}

/// One client→server workload pair that is declared or allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeReport {
    pub source: WorkloadId,
    pub target: WorkloadId,
    pub state: EdgeState,
    /// The intents declaring the call (empty when undeclared).
    pub declared_by: Vec<Declaration>,
    /// The union of the declared ports (empty when undeclared).
    pub declared: Conns,
    /// What the live policies allow from source to target.
    pub allowed: Conns,
    /// Policies isolating the server for ingress (empty: the server admits everyone).
    pub ingress_isolated_by: Vec<PolicyRef>,
    /// One or two sentences.
    pub summary: String,
}

impl EdgeReport {
    pub fn is_declared(&self) -> bool {
        !self.declared_by.is_empty()
    }

    pub fn is_allowed(&self) -> bool {
        !self.allowed.is_empty()
    }
}

/// What the report knows about one workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadReport {
    pub id: WorkloadId,
    pub pods: u32,
    /// Policies isolating the workload for ingress.
    pub ingress_isolated_by: Vec<PolicyRef>,
    /// Every NetworkPolicy selecting the workload's pods (either direction).
    pub selected_by: Vec<PolicyRef>,
    /// ClientIntents declaring calls from this workload.
    pub intents: Vec<ObjectRef>,
    /// The labels of the workload's pods (the first pod's, when they differ).
    pub labels: Labels,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    Blocked,
    Unprotected,
    Undeclared,
    ModifiedPolicy,
    MissingPolicy,
    StalePolicy,
    MissingLabel,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Blocked => "blocked",
            DriftKind::Unprotected => "unprotected",
            DriftKind::Undeclared => "undeclared",
            DriftKind::ModifiedPolicy => "modified-policy",
            DriftKind::MissingPolicy => "missing-policy",
            DriftKind::StalePolicy => "stale-policy",
            DriftKind::MissingLabel => "missing-label",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftSeverity {
    Info,
    Warning,
    Critical,
}

/// One thing to act on, with a suggested fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    pub kind: DriftKind,
    pub severity: DriftSeverity,
    pub namespace: String,
    /// The workload concerned: the client of a blocked or unprotected call, the server of an
    /// undeclared one, the selected workload of a policy.
    pub workload: Option<WorkloadId>,
    pub source: Option<WorkloadId>,
    pub target: Option<WorkloadId>,
    /// The object at fault.
    pub object: Option<ObjectRef>,
    pub explanation: String,
    pub fix: String,
    /// YAML to apply for the fix (intents, a policy or a label patch); may be empty.
    pub fix_yaml: String,
}

/// Everything [`analyze`] finds.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Sorted by id.
    pub workloads: Vec<WorkloadReport>,
    /// Sorted by (source, target).
    pub edges: Vec<EdgeReport>,
    /// Sorted by namespace, then kind, then workload.
    pub items: Vec<DriftItem>,
    /// What generation produced from the inventory's intents.
    pub generated: Generated,
    /// Problems of the input found while generating and evaluating.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn edge(&self, source: &WorkloadId, target: &WorkloadId) -> Option<&EdgeReport> {
        self.edges
            .binary_search_by(|e| (&e.source, &e.target).cmp(&(source, target)))
            .ok()
            .map(|i| &self.edges[i])
    }

    pub fn workload(&self, id: &WorkloadId) -> Option<&WorkloadReport> {
        self.workloads
            .binary_search_by(|w| w.id.cmp(id))
            .ok()
            .map(|i| &self.workloads[i])
    }
}

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
    inv: &'a Inventory,
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
        Index {
            inv,
            by_name,
            first_pod,
        }
    }

    /// The resolved workloads a declared identity designates.
    fn resolve(&self, id: &WorkloadId) -> Vec<&'a WorkloadId> {
        self.by_name
            .get(&(id.namespace.as_str(), id.name.as_str()))
            .map(|v| v.iter().copied().filter(|w| id.matches(w)).collect())
            .unwrap_or_default()
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
    inv: &'a Inventory,
    evaluator: &Evaluator<'_>,
    index: &Index<'a>,
    scope: Option<&HashSet<&WorkloadId>>,
) -> EdgeParts<'a> {
    let in_scope = |w: &WorkloadId| scope.is_none_or(|s| s.contains(w));
    // Which policies select each workload, and which isolate it for ingress.
    let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in inv.network_policies.iter().enumerate() {
        by_namespace
            .entry(p.policy.namespace())
            .or_default()
            .push(i);
    }
    let mut selected: BTreeMap<&WorkloadId, (BTreeSet<PolicyRef>, BTreeSet<PolicyRef>, u32)> =
        BTreeMap::new();
    for pod in &inv.pods {
        let entry = selected.entry(&pod.workload).or_default();
        entry.2 += 1;
        for &i in by_namespace.get(pod.namespace()).into_iter().flatten() {
            let p = &inv.network_policies[i].policy;
            if !p.spec.pod_selector.matches(&pod.metadata.labels) {
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
    for i in &inv.intents {
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
                    for pod in in_namespace.iter().map(|&i| &inv.pods[i]) {
                        if sel.is_empty()
                            || !sel
                                .iter()
                                .all(|(k, v)| pod.metadata.labels.get(k) == Some(v))
                        {
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

    let isolated_by = |w: &WorkloadId| -> Vec<PolicyRef> {
        selected
            .get(w)
            .map(|s| s.1.iter().cloned().collect())
            .unwrap_or_default()
    };

    // What the live policies allow. Pairs into a workload no policy isolates are `open` (and
    // hidden unless asked for); with few policies there are about workloads² of them, so past
    // OPEN_EDGE_LIMIT only the pairs into isolated workloads and the declared ones are examined.
    let open_servers = selected.values().filter(|v| v.1.is_empty()).count();
    let open_bound = selected.len().saturating_mul(open_servers);
    let mut open_omitted = None;
    let isolated = |w: &WorkloadId| selected.get(w).is_some_and(|v| !v.1.is_empty());
    let connections = if let Some(scope) = scope {
        // The pairs into the scope, and those out of it (both as the whole analysis would
        // examine them: into isolated workloads only, past the limit).
        let omit = open_bound > OPEN_EDGE_LIMIT;
        if omit {
            open_omitted = Some(open_servers);
        }
        let mut pairs: BTreeSet<(&WorkloadId, &WorkloadId)> = declared.keys().copied().collect();
        for s in scope {
            for d in selected.keys() {
                if !omit || isolated(d) {
                    pairs.insert((s, d));
                }
            }
        }
        evaluator.workload_connections(
            Naming::Workload,
            |w| scope.contains(w) && (!omit || isolated(w)),
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
    let generated = generate(inv, opts);
    let evaluator = Evaluator::new(inv);
    let index = Index::new(inv);
    let EdgeParts {
        selected,
        intents_of,
        edges,
        open_omitted,
        open_bound,
    } = edge_parts(inv, &evaluator, &index, None);

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

    let mut items = Vec::new();
    edge_items(&edges, &generated, &index, &mut items);
    policy_items(inv, &generated, &mut items);
    label_items(inv, &generated, &mut items);
    items.sort_by(|a, b| {
        (&a.namespace, a.kind, &a.workload, &a.source, &a.target).cmp(&(
            &b.namespace,
            b.kind,
            &b.workload,
            &b.source,
            &b.target,
        ))
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

fn edge_items(
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
fn same_policy(live: &NetworkPolicy, want: &NetworkPolicy) -> bool {
    fn rules<T>(r: &Option<Vec<T>>) -> &[T] {
        r.as_deref().unwrap_or(&[])
    }
    let (a, b) = (&live.spec, &want.spec);
    a.pod_selector == b.pod_selector
        && a.policy_types == b.policy_types
        && rules(&a.ingress) == rules(&b.ingress)
        && rules(&a.egress) == rules(&b.egress)
}

fn policy_items(inv: &Inventory, generated: &Generated, items: &mut Vec<DriftItem>) {
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

fn label_items(inv: &Inventory, generated: &Generated, items: &mut Vec<DriftItem>) {
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

#[cfg(test)]
mod tests;
