//! The drift model's vocabulary (DESIGN.md, "Edge states"): edge states, drift kinds and
//! severities, object references, and the report an analysis produces. `accord-api` re-exports
//! these, so the server and the dashboard speak exactly this.

use crate::diagnostic::{Diagnostic, Origin};
use crate::evaluate::{Conns, PolicyRef};
use crate::generate::Generated;
use crate::identity::WorkloadId;
use crate::objects::Labels;
use serde::{Deserialize, Serialize};
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
