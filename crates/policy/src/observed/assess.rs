//! What an observed call means for its server: declared or not, allowed now, and allowed once the
//! server is protected, as Accord's own evaluation says. Cilium's verdicts only corroborate:
//! a drop Hubble saw marks an incident, but "would be blocked" is computed from the policies the
//! intents would generate, with the server isolated.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, Class, Key, Party};
use crate::evaluate::{Evaluator, Naming, Peer};
use crate::generate::{Generated, apply_pod_labels};
use crate::identity::WorkloadId;
use crate::inventory::{Inventory, PolicyObject};
use crate::objects::{LabelSelector, NetworkPolicy, NetworkPolicySpec, ObjectMeta, PolicyType};

/// The observed dimension of a call, one vocabulary for the API, the drift report and the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservedState {
    /// Observed and declared: it keeps working once the server is protected.
    Declared,
    /// Observed but not declared: allowed now, blocked once the server is protected.
    Undeclared,
    /// Observed and dropped now (Hubble reported drops): an incident.
    Dropped,
}

impl ObservedState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObservedState::Declared => "declared",
            ObservedState::Undeclared => "undeclared",
            ObservedState::Dropped => "dropped",
        }
    }
}

/// One observed call assessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub state: ObservedState,
    /// The client's intents declare the call (port included).
    pub declared: bool,
    /// The live policies allow it (`None` for external peers and when unknown).
    pub allowed_now: Option<bool>,
    /// The policies the intents would generate allow it with the server isolated.
    pub allowed_when_protected: Option<bool>,
    /// Hubble's verdicts agree with `allowed_now` (forwarded only when allowed, dropped only
    /// when denied).
    pub corroborated: Option<bool>,
}

/// A label Accord puts on the servers it isolates in the protected inventory (never written to
/// a cluster).
const PROTECT_LABEL: &str = "accord.observed/protect";

/// The inventory as it would be once `servers` are protected: the policies the intents
/// generate in place of the live ones, the labels they need on pods, and every one of `servers`
/// isolated for ingress (as a ProtectedService or a default-deny would).
pub fn protected_inventory(
    inventory: &Inventory,
    generated: &Generated,
    servers: &BTreeSet<WorkloadId>,
) -> Inventory {
    // By namespace and name, so that each pod is matched against its few candidates (not
    // against every server: pods times servers was most of an assessment at scale).
    let mut by_name: std::collections::HashMap<(&str, &str), Vec<&WorkloadId>> =
        std::collections::HashMap::new();
    for s in servers {
        by_name
            .entry((s.namespace.as_str(), s.name.as_str()))
            .or_default()
            .push(s);
    }
    protect(inventory, generated, |w| {
        by_name
            .get(&(w.namespace.as_str(), w.name.as_str()))
            .is_some_and(|v| v.iter().any(|s| s.matches(w)))
    })
}

/// The inventory as it would be once every workload is protected. A call's verdict depends
/// only on its server's ingress and its client's egress, and isolating other servers changes
/// neither: for the calls into any set of servers this answers as [`protected_inventory`] of
/// that set, and it can be evaluated once for every set (new servers need no new inventory).
pub fn protected_everywhere(inventory: &Inventory, generated: &Generated) -> Inventory {
    protect(inventory, generated, |_| true)
}

fn protect(
    inventory: &Inventory,
    generated: &Generated,
    isolated: impl Fn(&WorkloadId) -> bool,
) -> Inventory {
    let mut inv = inventory.clone();
    inv.network_policies = generated
        .policies
        .iter()
        .map(|p| PolicyObject {
            origin: Default::default(),
            policy: p.clone(),
        })
        .collect();
    apply_pod_labels(&mut inv, generated);
    let mut namespaces = BTreeSet::new();
    for pod in &mut inv.pods {
        if isolated(&pod.workload) {
            pod.metadata
                .labels
                .insert(PROTECT_LABEL.to_string(), "true".to_string());
            namespaces.insert(pod.namespace().to_string());
        }
    }
    for ns in namespaces {
        inv.network_policies.push(PolicyObject {
            origin: Default::default(),
            policy: NetworkPolicy {
                metadata: ObjectMeta {
                    name: "accord-observed-protect".to_string(),
                    namespace: Some(ns),
                    ..ObjectMeta::default()
                },
                spec: NetworkPolicySpec {
                    pod_selector: LabelSelector {
                        match_labels: [(PROTECT_LABEL.to_string(), "true".to_string())].into(),
                        ..LabelSelector::default()
                    },
                    policy_types: vec![PolicyType::Ingress],
                    ingress: Some(vec![]),
                    egress: None,
                },
                ..NetworkPolicy::default()
            },
        });
    }
    inv
}

/// Whether `evaluator` allows each workload-to-workload call (`None` for other calls).
pub fn allowed(evaluator: &Evaluator, calls: &[&Key]) -> Vec<Option<bool>> {
    let pairs: BTreeSet<(&WorkloadId, &WorkloadId)> = calls
        .iter()
        .filter_map(|k| Some((k.client.workload()?, k.server.workload()?)))
        .collect();
    let connections = evaluator.workload_connections(Naming::Workload, |_| false, &pairs);
    // By pair, so that each call is one look-up (not a scan of every connection).
    let mut by_pair: std::collections::HashMap<
        (&WorkloadId, &WorkloadId),
        Vec<&crate::evaluate::Conns>,
    > = std::collections::HashMap::new();
    for conn in &connections {
        if let (Peer::Workload(c), Peer::Workload(s)) = (&conn.src, &conn.dst) {
            by_pair.entry((c, s)).or_default().push(&conn.conns);
        }
    }
    calls
        .iter()
        .map(|k| {
            let (c, s) = (k.client.workload()?, k.server.workload()?);
            Some(
                by_pair
                    .get(&(c, s))
                    .is_some_and(|v| v.iter().any(|conns| conns.allows(k.protocol, k.port))),
            )
        })
        .collect()
}

/// Assess calls from their aggregates and the two evaluations ([`allowed`] on the live
/// inventory and on the [`protected_inventory`]).
pub fn assess(
    calls: &[(&Key, &Aggregate)],
    inventory: &Inventory,
    allowed_now: &[Option<bool>],
    allowed_when_protected: &[Option<bool>],
) -> Vec<Assessment> {
    let keys: Vec<&Key> = calls.iter().map(|(k, _)| *k).collect();
    let declared = declared(inventory, &keys);
    assess_declared(calls, &declared, allowed_now, allowed_when_protected)
}

/// Whether the client's intents declare each call (port included).
pub fn declared(inventory: &Inventory, calls: &[&Key]) -> Vec<bool> {
    let lookup = super::suggest::Lookup::new(inventory);
    calls
        .iter()
        .map(|key| key.class == Class::Call && super::suggest::declares_in(&lookup, key))
        .collect()
}

/// [`assess`] with what [`declared`] says of each call (which depends on the inventory alone,
/// so that it can be kept while only the aggregates change).
pub fn assess_declared(
    calls: &[(&Key, &Aggregate)],
    declared: &[bool],
    allowed_now: &[Option<bool>],
    allowed_when_protected: &[Option<bool>],
) -> Vec<Assessment> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (_, agg))| {
            let declared = declared.get(i).copied().unwrap_or(false);
            let now = allowed_now.get(i).copied().flatten();
            let protected = allowed_when_protected.get(i).copied().flatten();
            let corroborated = now.map(|a| {
                if a {
                    agg.dropped == 0
                } else {
                    agg.forwarded == 0
                }
            });
            // Dropped is what Hubble saw; where Accord's evaluation of the live policies disagrees
            // with the verdicts, `corroborated` says so rather than the state.
            let state = if agg.dropped > 0 {
                ObservedState::Dropped
            } else if declared && protected != Some(false) {
                ObservedState::Declared
            } else {
                ObservedState::Undeclared
            };
            Assessment {
                state,
                declared,
                allowed_now: now,
                allowed_when_protected: protected,
                corroborated,
            }
        })
        .collect()
}

/// Whether an observed call's server is a workload (the calls protection is about).
pub fn is_workload_call(key: &Key) -> bool {
    key.class == Class::Call && matches!(key.server, Party::Workload { .. })
}
