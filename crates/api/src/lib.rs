//! `accord-api`: the JSON of Accord's dashboard HTTP API, shared by the server (`accord serve`)
//! and the Leptos frontend.
//!
//! In: serde and the core's vocabulary (edge states, drift kinds and severities, object
//! references and diagnostics, re-exported from `accord-policy` rather than mirrored). Out:
//! plain data types. This crate has no logic beyond small helpers and builds for
//! `wasm32-unknown-unknown`. Every type round-trips through `serde_json`.
//!
//! Conventions: identifiers of workloads are `namespace/name[Kind]` strings (the root workload
//! identity); times are RFC 3339 UTC strings; enums are lowercase strings; optional fields are
//! omitted when empty.

use serde::{Deserialize, Serialize};

// The vocabulary is the core's: one definition of each state, kind, severity, reference and
// diagnostic, serialized the same way everywhere.
pub mod observed;

pub use accord_policy::diagnostic::{Diagnostic, DiagnosticCode, Origin, Severity};
pub use accord_policy::drift::changes::ChangeKind;
pub use accord_policy::drift::what_if::Impact;
pub use accord_policy::drift::{DriftKind, DriftSeverity, EdgeState, FixKind, ObjectRef};
pub use accord_policy::generate::GenerateOptions;

pub mod filter;

/// Path prefix of every API endpoint.
pub const API_PREFIX: &str = "/api";

// ---------------------------------------------------------------------------------------------
// Graph

/// A workload node of the graph.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `namespace/name[Kind]`.
    pub id: String,
    pub namespace: String,
    pub name: String,
    /// Workload kind (`Deployment`, `StatefulSet`, …); empty for a kind-less identity.
    #[serde(default)]
    pub kind: String,
    /// Whether some policy isolates the workload for ingress.
    #[serde(default)]
    pub ingress_isolated: bool,
    /// Whether some ClientIntents declares calls from this workload.
    #[serde(default)]
    pub has_intents: bool,
    /// Number of pods (template pods count as one).
    #[serde(default)]
    pub pods: u32,
    /// Number of drift items concerning this workload.
    #[serde(default)]
    pub drift: u32,
}

/// A client→server edge of the graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Client workload id.
    pub source: String,
    /// Server workload id.
    pub target: String,
    pub state: EdgeState,
    /// Allowed ports, e.g. `TCP 8080,8443` or `All Connections`; empty when nothing is allowed.
    #[serde(default)]
    pub ports: String,
    /// Declared ports (from intents), e.g. `TCP 8443` or `All Connections`; empty if undeclared.
    #[serde(default)]
    pub declared_ports: String,
    /// Whether an intent declares the call.
    pub declared: bool,
    /// Whether the live policies allow the call (on some port).
    pub allowed: bool,
    /// RFC 3339 time the edge was first seen by the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// RFC 3339 time the edge last changed state or ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
}

/// `GET /api/graph`: workloads and the edges between them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Number of each edge state in the (filtered) graph.
    #[serde(default)]
    pub counts: StateCounts,
    /// RFC 3339 time of the sync this graph comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
}

/// Number of edges per state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    #[serde(default)]
    pub enforced: u32,
    #[serde(default)]
    pub blocked: u32,
    #[serde(default)]
    pub unprotected: u32,
    #[serde(default)]
    pub undeclared: u32,
    #[serde(default)]
    pub open: u32,
}

impl StateCounts {
    pub fn add(&mut self, state: EdgeState, n: u32) {
        match state {
            EdgeState::Enforced => self.enforced += n,
            EdgeState::Blocked => self.blocked += n,
            EdgeState::Unprotected => self.unprotected += n,
            EdgeState::Undeclared => self.undeclared += n,
            EdgeState::Open => self.open += n,
        }
    }

    pub fn get(&self, state: EdgeState) -> u32 {
        match state {
            EdgeState::Enforced => self.enforced,
            EdgeState::Blocked => self.blocked,
            EdgeState::Unprotected => self.unprotected,
            EdgeState::Undeclared => self.undeclared,
            EdgeState::Open => self.open,
        }
    }

    pub fn total(&self) -> u32 {
        EdgeState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// Query of `GET /api/graph`. All fields optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphQuery {
    /// Only workloads in these namespaces (comma-separated in the query string); edges are kept
    /// when either end is in one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only edges in these states (comma-separated). Default: every state but `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Neighbourhood of this workload id only…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// …to this depth (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// `workload` (default) or `namespace` (aggregate to a [`NamespaceGraph`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A namespace node of the aggregated graph.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceNode {
    /// The namespace name (also its id).
    pub id: String,
    pub workloads: u32,
    #[serde(default)]
    pub counts: StateCounts,
}

/// An aggregated edge between namespaces (intra-namespace edges have `source == target`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceEdge {
    pub source: String,
    pub target: String,
    /// Number of workload edges per state.
    pub counts: StateCounts,
}

/// `GET /api/graph?level=namespace`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceGraph {
    pub nodes: Vec<NamespaceNode>,
    pub edges: Vec<NamespaceEdge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
}

/// One namespace of `GET /api/graph/overview`: its calls by state, each call counted once
/// (inbound, outbound or internal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSummary {
    pub namespace: String,
    pub workloads: u32,
    /// Calls into the namespace from other namespaces.
    pub inbound: StateCounts,
    /// Calls from the namespace to other namespaces.
    pub outbound: StateCounts,
    /// Calls between the namespace's own workloads.
    pub internal: StateCounts,
    /// Other namespaces it calls or is called by.
    pub peers: u32,
}

impl NamespaceSummary {
    /// Every call touching the namespace, by state.
    pub fn all(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for s in EdgeState::ALL {
            c.add(
                s,
                self.inbound.get(s) + self.outbound.get(s) + self.internal.get(s),
            );
        }
        c
    }

    /// The overview's ranking key, larger is worse: blocked calls (something fails), then
    /// unprotected and undeclared ones (a risk), then open ones.
    pub fn badness(&self) -> (u32, u32, u32) {
        let c = self.all();
        (c.blocked, c.unprotected + c.undeclared, c.open)
    }
}

/// Query of `GET /api/graph/overview`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewQuery {
    /// `worst` (default: blocked calls, then unprotected and undeclared ones), a state
    /// (`blocked`, `unprotected`, …: most calls in that state first), `internal`, `workloads`
    /// or `peers`; largest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

/// `GET /api/graph/overview`: every namespace, worst first, with the estate's totals. Small at
/// any size (one row per namespace), so the dashboard's first view never needs every call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub namespaces: Vec<NamespaceSummary>,
    pub workloads: u32,
    /// Every call, by state.
    pub calls: StateCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Explanations and workload detail

/// A policy rule taking part in a decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// `namespace/name` of the NetworkPolicy.
    pub policy: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// Index of the rule in the policy's list.
    pub index: u32,
    /// Ports the rule admits, e.g. `TCP 8080`.
    #[serde(default)]
    pub ports: String,
}

/// Why an edge has its state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeExplanation {
    /// One or two sentences a developer can read.
    pub summary: String,
    /// The intents that declare the call (with the target's field path).
    #[serde(default)]
    pub declared_by: Vec<ObjectRef>,
    /// Policies isolating the server for ingress (`namespace/name`).
    #[serde(default)]
    pub ingress_isolated_by: Vec<String>,
    /// Ingress rules admitting the client.
    #[serde(default)]
    pub ingress_admitted_by: Vec<RuleRef>,
    /// Policies isolating the client for egress.
    #[serde(default)]
    pub egress_isolated_by: Vec<String>,
    /// Egress rules admitting the server.
    #[serde(default)]
    pub egress_admitted_by: Vec<RuleRef>,
    /// Admin (baseline) policy decisions, formatted.
    #[serde(default)]
    pub admin: Vec<String>,
    /// The explanation in a developer's words, first what happens and then the cause (set by
    /// `GET /api/workloads/…`; `summary` keeps the policy-level wording).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub in_words: String,
    /// The key of the drift item that causes this state, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// An edge with its explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainedEdge {
    #[serde(flatten)]
    pub edge: Edge,
    pub explanation: EdgeExplanation,
}

/// `GET /api/workloads/{id}`: one workload and everything about its access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadDetail {
    pub node: Node,
    /// Edges into this workload.
    pub callers: Vec<ExplainedEdge>,
    /// Edges out of this workload.
    pub callees: Vec<ExplainedEdge>,
    /// NetworkPolicies whose pod selector selects this workload.
    pub policies: Vec<ObjectRef>,
    /// ClientIntents declared by this workload (as a client).
    pub intents: Vec<ObjectRef>,
    /// ClientIntents of other workloads that declare calls to this one.
    pub declared_callers: Vec<ObjectRef>,
    /// Drift items concerning this workload.
    pub drift: Vec<DriftItem>,
    /// Labels of the workload's pods (merged).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Drift

/// What the what-if engine found when it applied a fix as the operator would.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixVerdict {
    /// Resolves the item and creates no blocked or newly open edge: the fix is offered.
    pub safe: bool,
    /// Every drifting edge of the item is resolved and Accord's output is in place.
    pub resolved: bool,
    /// Edges (`source → target`) the fix would block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    /// Edges the fix would open (allowed undeclared, or no longer protected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub newly_open: Vec<String>,
    /// Undeclared access the fix takes away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
}

/// The suggested fix for a drift item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedFix {
    /// What to do, in a sentence (the advice, when no fix can be offered).
    pub description: String,
    /// What the fix changes; absent when none is offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FixKind>,
    /// YAML to apply (merged ClientIntents, a NetworkPolicy, a label patch); may be empty.
    /// Lists leave it out; the item's own endpoint fills it once the fix is verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub yaml: String,
    /// For a policy patch: a line diff from the live policy to the generated one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// The ClientIntents the fix applies (for the draft form and the what-if).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub draft: String,
    /// The what-if engine's verdict (the item's own endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<FixVerdict>,
    /// The draft's ClientIntents as the draft form holds them, one per client; only those the
    /// form can hold whole (every target a workload or Service, named after the client).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forms: Vec<DraftIntents>,
}

/// One ClientIntents as the draft form holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftIntents {
    /// `namespace/name[Kind]`.
    pub client: String,
    /// The ClientIntents object's name; empty means the client's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub targets: Vec<DraftTarget>,
}

/// One target of [`DraftIntents`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftTarget {
    /// A Service rather than a workload.
    #[serde(default)]
    pub service: bool,
    /// Addresses outside the cluster (an `internet` target): `name` holds its domains and IPs
    /// or CIDRs, comma-separated, and `namespace` is unused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internet: bool,
    pub name: String,
    pub namespace: String,
    /// Comma-separated `port/PROTOCOL`; empty for every port.
    #[serde(default)]
    pub ports: String,
}

/// An edge a drift item affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedEdge {
    pub source: String,
    pub target: String,
    pub state: EdgeState,
    /// Works now, will be denied once the operator's pending policy is applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied_once_applied: bool,
}

/// An acknowledgement of a drift item: kept until the item's cause changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub reason: String,
    pub at: String,
}

/// One drift item: one root cause, with the edges it affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    /// The cause's stable key (`kind/namespace/name…`).
    #[serde(default)]
    pub key: String,
    pub kind: DriftKind,
    pub severity: DriftSeverity,
    /// The severity table's rule that decided the severity.
    #[serde(default)]
    pub rule: String,
    pub namespace: String,
    /// The workload concerned (the client lacking labels, the server of a policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The first affected edge's ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The object at fault (a policy, a pod, an intent, a namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// What is wrong, in a sentence or two.
    pub explanation: String,
    pub fix: SuggestedFix,
    /// How many affected edges are in each state.
    #[serde(default)]
    pub edge_counts: std::collections::BTreeMap<EdgeState, u32>,
    /// The affected edges (in lists, the first [`DRIFT_EDGES_LISTED`]).
    #[serde(default)]
    pub edges: Vec<AffectedEdge>,
    /// The owner: the namespace, or the team label or annotation the platform configures.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// When this cause was first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledgement>,
    /// Changes when the cause does (an acknowledgement lapses then).
    #[serde(default)]
    pub fingerprint: String,
}

/// How many affected edges a listed drift item carries.
pub const DRIFT_EDGES_LISTED: usize = 20;

/// Query of `GET /api/drift`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftQuery {
    /// Comma-separated severities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Comma-separated kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Comma-separated namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Comma-separated owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Words that must all appear in the item (key, explanation, workloads, object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `severity` (default: worst first), `edges`, `namespace`, `owner`, `first_seen`; a `-`
    /// prefix reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// Include acknowledged items (default: no).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<bool>,
    /// 1-based page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
}

/// Counts of drift items under one heading (a namespace, an owner).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCount {
    pub name: String,
    pub items: u32,
    pub worst: Option<DriftSeverity>,
}

/// The top of the drift page: how bad, where, since when, who owns it (of every
/// unacknowledged item, whatever the filter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftSummary {
    pub by_severity: std::collections::BTreeMap<DriftSeverity, u32>,
    /// The namespaces with the worst items, worst first (at most 10).
    pub namespaces: Vec<DriftCount>,
    /// The owners with the worst items, worst first (at most 10).
    pub owners: Vec<DriftCount>,
    /// The oldest first-seen time of an unacknowledged critical or high item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_since: Option<String>,
    pub acknowledged: u32,
    /// Affected edges, by state.
    pub edges: std::collections::BTreeMap<EdgeState, u32>,
}

/// `GET /api/drift`: one page of drift items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    pub summary: DriftSummary,
    pub items: Vec<DriftItem>,
    /// Items matching the filter.
    pub total: u32,
    pub page: u32,
    pub per_page: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// The assessment of observed traffic the observed items come from (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<observed::ObservedAssessment>,
}

/// `POST /api/drift/ack`: acknowledge an item (an empty reason is refused).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub key: String,
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// Diagnostics, what-if, drafts

/// `POST /api/what-if`: a draft evaluated against the current inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIfRequest {
    /// One or more ClientIntents (YAML or JSON, multi-document allowed). They replace intents
    /// of the same namespace/name in the inventory.
    pub yaml: String,
}

/// An edge whose state would change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeChange {
    pub source: String,
    pub target: String,
    /// `None` when the edge does not exist before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<EdgeState>,
    /// `None` when the edge disappears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EdgeState>,
    #[serde(default)]
    pub ports_before: String,
    #[serde(default)]
    pub ports_after: String,
    /// How the change matters (the draft page's sections, riskiest first).
    #[serde(default = "declaration")]
    pub impact: Impact,
    /// Why, in a developer's words.
    #[serde(default)]
    pub why: String,
}

fn declaration() -> Impact {
    Impact::Declaration
}

/// Response of `POST /api/what-if`. A draft with errors answers 422 with an [`ErrorBody`] whose
/// `diagnostics` are the draft's; [`WhatIfResponse::from_http`] reads either answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIfResponse {
    /// Whether the draft parsed without errors.
    pub ok: bool,
    pub diagnostics: Vec<Diagnostic>,
    /// The NetworkPolicies the intents (current + draft) would generate for the draft's
    /// servers, as YAML.
    pub policies_yaml: String,
    /// Pod label changes the draft implies, as YAML.
    #[serde(default)]
    pub labels_yaml: String,
    /// Edges whose state would change because of the draft itself, sorted.
    pub changes: Vec<EdgeChange>,
    /// Changes the operator makes anyway once it reconciles the draft's subjects (e.g. a
    /// client's missing access label restored), whatever the draft says: they happen when the
    /// draft is applied, but are not its own effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_fixed: Vec<EdgeChange>,
    /// The draft's clients' current calls that nothing changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<EdgeChange>,
}

/// `GET /api/intents?client=namespace/name[Kind]`: a workload's current ClientIntents, from the
/// synced model (cluster or manifests), as the draft form starts from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentIntents {
    /// `namespace/name[Kind]` of the client.
    pub client: String,
    /// The ClientIntents object's name; empty when the workload declares nothing yet.
    #[serde(default)]
    pub name: String,
    /// Its targets as the form holds them; `None` when some target is one the form cannot hold
    /// (then `yaml` is the whole object and the form can only replace it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<DraftIntents>,
    /// The current ClientIntents as YAML (v2beta1); empty when there are none.
    #[serde(default)]
    pub yaml: String,
    /// Other ClientIntents objects of the same client (the operator merges them), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<String>,
}

/// A target the draft form may suggest: a workload or a Service, with its ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOption {
    #[serde(default)]
    pub service: bool,
    pub namespace: String,
    pub name: String,
    /// Ports as the form writes them (`8443/TCP`), from the Service or the containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

/// `GET /api/targets`: every workload and Service a draft may target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOptions {
    pub targets: Vec<TargetOption>,
}

impl WhatIfResponse {
    /// The answer to `POST /api/what-if` from its status and body: 200 is a response, 422 an
    /// [`ErrorBody`] turned into a response with `ok: false` and the draft's diagnostics, anything
    /// else the error message to show.
    pub fn from_http(status: u16, body: &str) -> Result<WhatIfResponse, String> {
        match status {
            200 => serde_json::from_str(body).map_err(|e| format!("unexpected response: {e}")),
            _ => match serde_json::from_str::<ErrorBody>(body) {
                Ok(ErrorBody {
                    diagnostics: Some(diagnostics),
                    ..
                }) if status == 422 => Ok(WhatIfResponse {
                    ok: false,
                    diagnostics,
                    ..WhatIfResponse::default()
                }),
                Ok(e) => Err(e.error),
                Err(_) => Err(format!("request failed ({status})")),
            },
        }
    }
}

/// A saved draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub id: i64,
    pub name: String,
    pub yaml: String,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339.
    #[serde(default)]
    pub updated: String,
}

/// `POST /api/drafts` body (also `PUT /api/drafts/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDraft {
    pub name: String,
    pub yaml: String,
}

/// `GET /api/drafts`: drafts without their YAML bodies trimmed (the list is small).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftList {
    pub drafts: Vec<Draft>,
}

/// Result of `POST /api/drafts/{id}/apply`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    /// `namespace/name` of each ClientIntents applied.
    pub applied: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// History

/// One change-log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: i64,
    /// RFC 3339.
    pub time: String,
    /// The workload concerned (the server of the edge).
    pub workload: String,
    pub source: String,
    pub target: String,
    pub change: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<EdgeState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EdgeState>,
    /// The objects that changed in the same sync and decide the edge (`Kind ns/name`).
    #[serde(default)]
    pub by: Vec<String>,
}

/// Query of `GET /api/history`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// Entries whose source or target is this workload id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Return entries with `id < before` (paging backwards; newest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Page size (default 100, max 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /api/history`: newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Status, events, errors

/// `GET /api/status`: where the data comes from and how fresh it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `demo`, `manifests:PATH` or `cluster`.
    pub source: String,
    /// Whether a first sync completed.
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// Sync passes completed since start.
    pub syncs: u64,
    pub workloads: u32,
    pub edges: u32,
    /// Diagnostics of the input of the last sync.
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
    /// Whether `POST /api/drafts/{id}/apply` is enabled.
    #[serde(default)]
    pub apply_enabled: bool,
    /// Whether part of the source cannot be read or the database cannot be written, so that
    /// what is served is (partly) the last good state.
    #[serde(default)]
    pub degraded: bool,
    /// Files or documents (`file (document N)`) served from their last good version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<String>,
    /// The last database write error, when the last sync pass could not be stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// The generation settings the drift and what-if compare with (the operator's, when it
    /// publishes them), and where they came from, in words.
    #[serde(default)]
    pub settings: GenerateOptions,
    #[serde(default)]
    pub settings_source: String,
}

/// Data of a server-sent event on `/api/events` (event name `sync`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Sync run id.
    pub run: i64,
    pub synced_at: String,
    /// Number of edges that changed in this pass.
    pub changed: u32,
    /// Sent when an assessment of observed traffic changed the observed drift items (same
    /// run, nothing changed in the pass): how many there are now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_drift: Option<u32>,
}

/// Body of every error response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<Diagnostic>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_state_serializes_lowercase_and_parses_back() {
        for s in EdgeState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<EdgeState>(), Ok(s));
        }
        assert!("nope".parse::<EdgeState>().is_err());
    }

    #[test]
    fn explained_edge_flattens_the_edge() {
        let e = ExplainedEdge {
            edge: Edge {
                source: "a/b[Deployment]".into(),
                target: "a/c[Deployment]".into(),
                state: EdgeState::Blocked,
                ports: String::new(),
                declared_ports: "TCP 80".into(),
                declared: true,
                allowed: false,
                first_seen: None,
                last_changed: None,
            },
            explanation: EdgeExplanation::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["state"], "blocked");
        assert_eq!(v["source"], "a/b[Deployment]");
        let back: ExplainedEdge = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn error_body_omits_absent_diagnostics() {
        let e = ErrorBody {
            error: "not found".into(),
            diagnostics: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":"not found"}"#
        );
    }

    #[test]
    fn state_counts_add_up() {
        let mut c = StateCounts::default();
        c.add(EdgeState::Open, 2);
        c.add(EdgeState::Blocked, 1);
        assert_eq!(c.total(), 3);
        assert_eq!(c.get(EdgeState::Open), 2);
    }
}
