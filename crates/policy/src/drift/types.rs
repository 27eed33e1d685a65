//! The drift model's vocabulary (DESIGN.md, "Edge states"): edge states, drift kinds and
//! severities, object references, and the report an analysis produces. `accord-api` re-exports
//! these, so the server and the dashboard speak exactly this.

use crate::diagnostic::{Diagnostic, Origin};
use crate::evaluate::{Conns, PolicyRef};
use crate::generate::Generated;
use crate::identity::WorkloadId;
use crate::intents::ClientIntents;
use crate::objects::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

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

/// What a drift item is about: its root cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// Policies that are not Accord's isolate a server without admitting its declared callers.
    Blocked,
    /// A server no policy isolates and for which Accord generates none (shadow mode).
    Unprotected,
    /// Policies (not Accord's own, unedited) admit callers no intent declares.
    Undeclared,
    /// Accord's policy differs from what the intents generate now.
    ModifiedPolicy,
    /// A policy the intents call for is missing.
    MissingPolicy,
    /// Accord's label is on a policy no intent generates any more.
    StalePolicy,
    /// A client's pods lack the access labels its intents call for.
    MissingLabel,
    /// Accord's operator is not running or not enforcing in a namespace: every policy it
    /// generates there is missing.
    OperatorAbsent,
    /// An intent names a target that does not exist.
    MissingTarget,
    /// Observed calls no intent declares, allowed now and denied once the server is protected.
    ObservedUndeclared,
    /// A declared call not observed during a window with full coverage.
    DeclaredUnused,
    /// Observed calls dropped now (Hubble reported drops): an incident.
    ObservedDropped,
}

impl DriftKind {
    pub const ALL: [DriftKind; 12] = [
        DriftKind::Blocked,
        DriftKind::Unprotected,
        DriftKind::Undeclared,
        DriftKind::ModifiedPolicy,
        DriftKind::MissingPolicy,
        DriftKind::StalePolicy,
        DriftKind::MissingLabel,
        DriftKind::OperatorAbsent,
        DriftKind::MissingTarget,
        DriftKind::ObservedUndeclared,
        DriftKind::DeclaredUnused,
        DriftKind::ObservedDropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Blocked => "blocked",
            DriftKind::Unprotected => "unprotected",
            DriftKind::Undeclared => "undeclared",
            DriftKind::ModifiedPolicy => "modified-policy",
            DriftKind::MissingPolicy => "missing-policy",
            DriftKind::StalePolicy => "stale-policy",
            DriftKind::MissingLabel => "missing-label",
            DriftKind::OperatorAbsent => "operator-absent",
            DriftKind::MissingTarget => "missing-target",
            DriftKind::ObservedUndeclared => "observed-undeclared",
            DriftKind::DeclaredUnused => "declared-unused",
            DriftKind::ObservedDropped => "observed-dropped",
        }
    }

    pub fn parse(s: &str) -> Option<DriftKind> {
        DriftKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How much a drift item matters, by its impact on access (the table in ARCHITECTURE.md,
/// "Drift severity", which [`SEVERITY_RULES`] is tested against). Ordered: `Info` < `Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftSeverity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl DriftSeverity {
    /// Worst first.
    pub const ALL: [DriftSeverity; 5] = [
        DriftSeverity::Critical,
        DriftSeverity::High,
        DriftSeverity::Medium,
        DriftSeverity::Low,
        DriftSeverity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftSeverity::Info => "info",
            DriftSeverity::Low => "low",
            DriftSeverity::Medium => "medium",
            DriftSeverity::High => "high",
            DriftSeverity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<DriftSeverity> {
        DriftSeverity::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One rule of the severity table: the first rule that holds for an item decides its severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeverityRule {
    pub id: &'static str,
    pub severity: DriftSeverity,
    pub when: &'static str,
}

/// The severity table, worst first (ARCHITECTURE.md, "Drift severity", shows exactly these
/// rows; a test keeps them equal).
pub const SEVERITY_RULES: [SeverityRule; 11] = [
    SeverityRule {
        id: "declared-call-denied",
        severity: DriftSeverity::Critical,
        when: "a declared call the item affects is denied now (blocked): the client fails",
    },
    SeverityRule {
        id: "denied-once-applied",
        severity: DriftSeverity::Critical,
        when: "a declared call that works now will be denied once the operator's pending policy is applied: the server's Accord policy is missing or differs and the client lacks the access label it admits, in a namespace where the operator runs (where it is absent it would set the label too)",
    },
    SeverityRule {
        id: "over-permissive",
        severity: DriftSeverity::High,
        when: "a server protected by intents (Accord generates its policy) admits a caller no intent declares",
    },
    SeverityRule {
        id: "unprotected-enforced",
        severity: DriftSeverity::High,
        when: "a declared call is unprotected (nothing isolates the server) although the server is enforced (Accord generates its policy)",
    },
    SeverityRule {
        id: "observed-dropped",
        severity: DriftSeverity::High,
        when: "observed calls are dropped now (Hubble reported drops): an incident, whether the call is declared or not",
    },
    SeverityRule {
        id: "undeclared-unmanaged",
        severity: DriftSeverity::Medium,
        when: "a server no intent protects admits, through policies that are not Accord's, a caller no intent declares",
    },
    SeverityRule {
        id: "edited-output",
        severity: DriftSeverity::Medium,
        when: "Accord's policy was edited, with no effect on declared calls or undeclared access",
    },
    SeverityRule {
        id: "observed-undeclared",
        severity: DriftSeverity::Medium,
        when: "observed calls no intent declares are allowed now and would be denied once the server is protected (Accord's evaluation of the policies the intents would generate; Hubble's verdicts only corroborate)",
    },
    SeverityRule {
        id: "output-absent",
        severity: DriftSeverity::Low,
        when: "Accord's output (a policy, labels, a whole namespace) is missing or stale, or a target is missing, while effective access equals what is declared (enforced by someone else's policy or not at stake)",
    },
    SeverityRule {
        id: "declared-unused",
        severity: DriftSeverity::Low,
        when: "a declared call was not observed during an observation window with full coverage (no lost events, collector connected throughout; the item states the window)",
    },
    SeverityRule {
        id: "shadow-mode",
        severity: DriftSeverity::Info,
        when: "declared calls into a server in shadow mode (Accord generates no policy for it): unprotected by choice",
    },
];

/// The rule of [`SEVERITY_RULES`] with this id.
pub fn severity_rule(id: &str) -> Option<&'static SeverityRule> {
    SEVERITY_RULES.iter().find(|r| r.id == id)
}

/// One client→server edge a drift item affects, in its current state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AffectedEdge {
    pub source: WorkloadId,
    pub target: WorkloadId,
    pub state: EdgeState,
    /// A declared call that works now and will be denied once the operator's pending policy
    /// for the server is applied (the client lacks the access label it admits).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied_once_applied: bool,
}

/// What a fix changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixKind {
    /// The client's ClientIntents, merged: its current targets plus the new ones, same name.
    Intents,
    /// A live NetworkPolicy replaced by the generated one (shown as a diff).
    PolicyPatch,
    /// Labels set on a workload's pods (by the operator, from the intents).
    Labels,
    /// Run or enable Accord's operator for the namespace: it applies the policies and labels.
    Operator,
    /// A stale policy deleted.
    DeletePolicy,
}

impl FixKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FixKind::Intents => "intents",
            FixKind::PolicyPatch => "policy-patch",
            FixKind::Labels => "labels",
            FixKind::Operator => "operator",
            FixKind::DeletePolicy => "delete-policy",
        }
    }
}

/// A suggested fix. It is offered only once [`super::check_fix`] showed it safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    pub kind: FixKind,
    pub description: String,
    /// What to apply: merged ClientIntents, the generated policy, a label patch; may be empty.
    pub yaml: String,
    /// For a policy patch: a unified diff from the live policy to the generated one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// The ClientIntents whose application by the operator carries the fix out (merged intents
    /// for an intents fix, the current ones otherwise): what the what-if applies.
    pub draft: Vec<ClientIntents>,
    /// Policies (namespace, name) the fix deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<(String, String)>,
}

/// One thing to act on: one root cause, with the edges it affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    /// The cause, as a stable key (`kind/namespace/name...`): the same cause has the same key
    /// from one analysis to the next.
    pub key: String,
    pub kind: DriftKind,
    pub severity: DriftSeverity,
    /// The id of the [`SEVERITY_RULES`] row that decided the severity.
    pub rule: String,
    pub namespace: String,
    /// The workload concerned: the client lacking labels, the server of a policy, the client
    /// of a missing target.
    pub workload: Option<WorkloadId>,
    /// The first affected edge's ends (for a single-edge cause, the edge).
    pub source: Option<WorkloadId>,
    pub target: Option<WorkloadId>,
    /// The object at fault.
    pub object: Option<ObjectRef>,
    pub explanation: String,
    /// What to do, in words (also when no fix can be offered).
    pub advice: String,
    /// Every edge the cause affects, sorted.
    pub edges: Vec<AffectedEdge>,
    /// A fix to check with [`super::check_fix`] before offering it.
    pub fix: Option<Fix>,
    /// A hash of the cause's content (rule, edges and their states, object): when it changes,
    /// an acknowledgement lapses.
    pub fingerprint: String,
}

impl DriftItem {
    /// How many affected edges are in each state.
    pub fn edge_counts(&self) -> BTreeMap<EdgeState, u32> {
        let mut out = BTreeMap::new();
        for e in &self.edges {
            *out.entry(e.state).or_default() += 1;
        }
        out
    }
}

/// Everything [`analyze`] finds.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Sorted by id.
    pub workloads: Vec<WorkloadReport>,
    /// Sorted by (source, target).
    pub edges: Vec<EdgeReport>,
    /// Worst first: by severity, then by the number of affected edges, then by key.
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
