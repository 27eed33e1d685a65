//! The observed-traffic JSON: `GET /api/observed` (a server's observed callers, the window and
//! its coverage, what is declared but unused, and suggested intents for undeclared callers).

use serde::{Deserialize, Serialize};

pub use accord_policy::observed::ObservedState;

/// `GET /api/observed` query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedQuery {
    /// Only calls into this workload (`ns/name[Kind]`); without it, every observed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Only calls last seen at or after this RFC 3339 time, or this long ago (`1h`, `24h`,
    /// `7d`: hours or days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `/api/observed/edges` only: the edges with the source or the target in this namespace
    /// and the namespace pairs it is an end of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `/api/observed/edges` only: the edges with this workload (`ns/name[Kind]`) at an end,
    /// and the namespace pairs its namespace is an end of (a neighbourhood's drawing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// `/api/observed/edges` only: the window and the namespace pairs, no edges (the overview).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pairs_only: bool,
}

/// Which assessment of the observed calls an answer shows: assessing every call takes long on
/// large estates, so it runs in the background and answers show the last complete one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedAssessment {
    /// When it finished (RFC 3339).
    pub at: String,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// The view or the observed data changed since: a newer assessment is being computed (or
    /// waits its turn), and this one is shown meanwhile.
    pub assessing: bool,
}

/// One observed call (aggregated over the window).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedCall {
    /// `call`, `host-probe`, `dns`, `host-network` or `unresolved`.
    pub class: String,
    /// `ns/name[Kind]`, `external:<address>`, `host` or `unresolved:<ip>`.
    pub client: String,
    pub server: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub port: u16,
    /// Calls counted: connections opened, each once although Hubble reports a call between two
    /// pods at both ends; 0 when only later segments of connections already open were seen.
    pub count: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub audit: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// For calls between workloads and to external peers (absent for probes, DNS, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ObservedState>,
    /// The client's intents declare it.
    #[serde(default)]
    pub declared: bool,
    /// The live policies allow it (Accord's evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_now: Option<bool>,
    /// The policies the intents would generate allow it once the server is protected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_when_protected: Option<bool>,
    /// Hubble's verdicts agree with Accord's evaluation of the live policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corroborated: Option<bool>,
}

/// The observation window and its coverage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedWindow {
    /// Where flows come from (`hubble ADDR`, `flows PATH`); empty when nothing is observed.
    pub source: String,
    /// The collector is connected now.
    pub connected: bool,
    /// The first and last instant covered (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Observation has been complete (connected, no lost events) since this time, up to `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_since: Option<String>,
    /// Connected intervals, `[from, to]`.
    #[serde(default)]
    pub intervals: Vec<[String; 2]>,
    /// Events Hubble reported lost in the window.
    pub lost_events: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The assessment the calls' states come from (absent before the first one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<ObservedAssessment>,
}

/// A declared call that was not observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredUnused {
    pub client: String,
    pub server: String,
    /// Declared ports, e.g. `TCP 8443` or `All Connections`.
    pub ports: String,
}

/// Suggested ClientIntents for one client: its current intents plus what it was observed calling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSuggestion {
    pub client: String,
    /// `ns/name` of the ClientIntents it merges with, if the client has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_with: Option<String>,
    /// What it adds, one line each (`checkout/payments[Deployment] TCP/9090`).
    pub added: Vec<String>,
    /// The whole merged ClientIntents (a draft to review; never applied automatically).
    pub yaml: String,
    /// From the current ClientIntents to the suggestion, line by line (`-`, `+`, ` `).
    #[serde(default)]
    pub diff: String,
    /// The same, as the draft form holds it (absent when the form cannot hold it whole, e.g.
    /// targets with port ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<crate::DraftIntents>,
}

/// `GET /api/observed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub window: ObservedWindow,
    /// Calls between workloads and to or from external peers.
    pub calls: Vec<ObservedCall>,
    /// Host probes, DNS, host-network and unresolved traffic, shown apart.
    pub other: Vec<ObservedCall>,
    /// Declared calls into the server not observed; listed only when the window since `since`
    /// had full coverage (`unused_claimed`).
    pub unused: Vec<DeclaredUnused>,
    pub unused_claimed: bool,
    pub suggestions: Vec<ObservedSuggestion>,
}

/// `GET /api/observed/panel?server=…`: the dashboard side panel's observed section, written by
/// the server as lines to draw (the dashboard's WASM stays small).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedPanel {
    /// The window, its source and completeness; empty when nothing is observed (no `--hubble`
    /// or `--flows`): the section is hidden.
    pub window: String,
    /// One observed caller each: a sentence, and its [`ObservedState`] as text (for styling
    /// and tests).
    pub callers: Vec<[String; 2]>,
    /// Probes and DNS apart, declared callers not observed.
    pub notes: Vec<String>,
    pub suggestions: Vec<PanelSuggestion>,
}

/// A suggestion: what it adds, and the draft form's content (absent: the YAML is shown).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelSuggestion {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<crate::DraftIntents>,
    #[serde(default)]
    pub yaml: String,
}

/// `GET /api/observed/edges?since=…`: the observed dimension of every workload-to-workload
/// edge (the graph overlays it on its edges by `source` and `target`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEdge {
    /// Client workload id (as the graph's edges name it).
    pub source: String,
    /// Server workload id.
    pub target: String,
    /// The worst state over the edge's ports: dropped, then undeclared, then declared.
    pub state: ObservedState,
    /// Observed ports, e.g. `TCP 8080,9090`.
    pub ports: String,
    pub count: u64,
    pub dropped: u64,
    pub last_seen: String,
    /// What the drawing says of it, written by the server (e.g. `observed 12 flows TCP 5432,
    /// last 2026-11-30 05:00:08 UTC · undeclared: blocked once the server is protected`).
    #[serde(default)]
    pub note: String,
}

/// `GET /api/observed/edges`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEdges {
    pub window: ObservedWindow,
    pub edges: Vec<ObservedEdge>,
    /// Declared calls between workloads not observed since `since`; listed only when that
    /// window was observed completely.
    #[serde(default)]
    pub unused: Vec<DeclaredUnused>,
    /// The window in words, for the legend (empty when nothing is observed).
    #[serde(default)]
    pub summary: String,
    /// What the graph draws, sorted by key: `[source->target, mark, words]`, the mark being
    /// the edge's state or `unused` (declared, not observed).
    #[serde(default)]
    pub marks: Vec<[String; 3]>,
    /// One entry per ordered namespace pair with observed calls or declared calls not observed,
    /// sorted by key (with `namespace`, only the pairs it is an end of): `[srcNS->dstNS, mark,
    /// words]`, the mark being the worst of its calls (`dropped`, `undeclared`, `declared`;
    /// `unused` when it only has declared calls not observed).
    #[serde(default)]
    pub namespaces: Vec<[String; 3]>,
}
