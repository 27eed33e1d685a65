//! Drift items from observed traffic, one per cause like the report's own: a client's observed
//! calls no intent declares (that protection would deny), an edge whose observed calls are
//! dropped now, and a declared call not observed while the window had full coverage.

use std::collections::BTreeMap;

use super::aggregate::{Aggregate, Class, Key, Party};
use super::assess::{Assessment, ObservedState};
use super::ips::format_rfc3339;
use super::suggest::Suggestion;
use crate::drift::{AffectedEdge, DriftItem, DriftKind, EdgeState, Fix, FixKind, severity_rule};
use crate::identity::WorkloadId;

/// A declared call and its state now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredEdge {
    pub client: WorkloadId,
    pub server: WorkloadId,
    pub state: EdgeState,
}

/// What observed drift items are computed from.
pub struct ObservedInput<'a> {
    /// Every stored call with its assessment.
    pub calls: &'a [(&'a Key, &'a Aggregate, &'a Assessment)],
    /// The state now of a client→server pair the report knows (`None`: neither declared nor
    /// allowed by Accord's evaluation).
    pub edge_state: &'a dyn Fn(&WorkloadId, &WorkloadId) -> Option<EdgeState>,
    /// Suggestions over every observation (the fix of an undeclared item).
    pub suggestions: &'a [Suggestion],
    /// Every declared call.
    pub declared: &'a [DeclaredEdge],
    /// The window (nanoseconds) over which coverage was full: "declared but unused" is claimed
    /// only with one.
    pub complete_window: Option<(i64, i64)>,
}

/// An item with the time its cause was first seen (nanoseconds).
pub type Dated = (DriftItem, i64);

#[allow(clippy::too_many_arguments)]
fn item(
    kind: DriftKind,
    rule: &str,
    key: String,
    namespace: &str,
    workload: Option<WorkloadId>,
    edges: Vec<AffectedEdge>,
    explanation: String,
    advice: String,
    fix: Option<Fix>,
    cause: &str,
) -> DriftItem {
    let rule = severity_rule(rule).expect("a rule of the table");
    let fingerprint = crate::drift::fnv(&format!("{key}|{}|{cause}", rule.id));
    DriftItem {
        kind,
        severity: rule.severity,
        rule: rule.id.to_string(),
        namespace: namespace.to_string(),
        workload,
        source: edges.first().map(|e| e.source.clone()),
        target: edges.first().map(|e| e.target.clone()),
        object: None,
        explanation,
        advice,
        edges,
        fix,
        fingerprint,
        key,
    }
}

fn ports(keys: &[&Key]) -> String {
    let mut v: Vec<String> = keys
        .iter()
        .map(|k| format!("{}/{}", k.port, k.protocol.as_str()))
        .collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

/// The observed drift items, worst first (then by key), each with its first-seen time.
pub fn drift_items(input: &ObservedInput<'_>) -> Vec<Dated> {
    let mut out: Vec<Dated> = Vec::new();
    let edge = |c: &WorkloadId, s: &WorkloadId| AffectedEdge {
        source: c.clone(),
        target: s.clone(),
        state: (input.edge_state)(c, s).unwrap_or(EdgeState::Open),
        denied_once_applied: false,
    };

    // Dropped now: one item per client→server edge.
    let mut dropped: BTreeMap<(&WorkloadId, &WorkloadId), Vec<(&Key, &Aggregate)>> =
        BTreeMap::new();
    // Undeclared and denied once protected: one item per client.
    let mut undeclared: BTreeMap<&WorkloadId, Vec<(&Key, &Aggregate)>> = BTreeMap::new();
    for (key, agg, a) in input.calls {
        if key.class != Class::Call {
            continue;
        }
        let (Some(client), Party::Workload { workload: server }) =
            (key.client.workload(), &key.server)
        else {
            continue;
        };
        match a.state {
            ObservedState::Dropped => dropped
                .entry((client, server))
                .or_default()
                .push((key, agg)),
            ObservedState::Undeclared if !a.declared && a.allowed_when_protected == Some(false) => {
                undeclared.entry(client).or_default().push((key, agg))
            }
            _ => {}
        }
    }
    for ((client, server), calls) in dropped {
        let keys: Vec<&Key> = calls.iter().map(|(k, _)| *k).collect();
        let (n, total): (u64, u64) = calls
            .iter()
            .fold((0, 0), |(d, c), (_, a)| (d + a.dropped, c + a.count));
        let first = calls.iter().map(|(_, a)| a.first_seen).min().unwrap_or(0);
        let last = calls.iter().map(|(_, a)| a.last_seen).max().unwrap_or(0);
        let e = edge(client, server);
        let declared = e.state != EdgeState::Open && e.state != EdgeState::Undeclared;
        out.push((
            item(
                DriftKind::ObservedDropped,
                "observed-dropped",
                format!("observed-dropped/{client}>{server}"),
                &server.namespace,
                Some(server.clone()),
                vec![e],
                format!(
                    "{client} calls {server} on {} and Hubble reported {n} of {} dropped (last at {}): {} call fails now.",
                    ports(&keys),
                    super::calls_in_words(total),
                    format_rfc3339(last),
                    if declared { "a declared" } else { "an undeclared" }
                ),
                format!(
                    "Find the policy denying {client} → {server} (the graph's edge lists the policies isolating {server}); if the call is meant to work, declare it in {client}'s ClientIntents."
                ),
                None,
                &ports(&keys),
            ),
            first,
        ));
    }
    for (client, calls) in undeclared {
        let mut servers: Vec<&WorkloadId> = calls
            .iter()
            .filter_map(|(k, _)| k.server.workload())
            .collect();
        servers.sort();
        servers.dedup();
        let keys: Vec<&Key> = calls.iter().map(|(k, _)| *k).collect();
        let first = calls.iter().map(|(_, a)| a.first_seen).min().unwrap_or(0);
        let count: u64 = calls.iter().map(|(_, a)| a.count).sum();
        let calls_text: Vec<String> = calls
            .iter()
            .map(|(k, _)| format!("{} {}/{}", k.server, k.port, k.protocol.as_str()))
            .collect();
        let suggestion = input.suggestions.iter().find(|s| &s.client == client);
        let fix = suggestion.map(|s| {
            let yaml = crate::render::intents_yaml(std::slice::from_ref(&s.suggested));
            Fix {
                kind: FixKind::Intents,
                description: match &s.current {
                    Some(c) => format!(
                        "Add the observed calls to ClientIntents {}/{} (its targets kept).",
                        c.namespace, c.name
                    ),
                    None => {
                        format!("Declare the observed calls in new ClientIntents for {client}.")
                    }
                },
                diff: crate::drift::line_diff(
                    &s.current
                        .as_ref()
                        .map(|c| crate::render::intents_yaml(std::slice::from_ref(c)))
                        .unwrap_or_default(),
                    &yaml,
                ),
                yaml,
                draft: vec![s.suggested.clone()],
                delete: Vec::new(),
            }
        });
        out.push((
            item(
                DriftKind::ObservedUndeclared,
                "observed-undeclared",
                format!("observed-undeclared/{client}"),
                &client.namespace,
                Some(client.clone()),
                servers.iter().map(|s| edge(client, s)).collect(),
                format!(
                    "{client} was observed calling {} ({}) without an intent declaring it: allowed now, denied once the server is protected.",
                    calls_text.join(", "),
                    super::calls_in_words(count)
                ),
                format!(
                    "Declare the calls in {client}'s ClientIntents (merged with its current targets) before protecting {}.",
                    servers
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                fix,
                &ports(&keys),
            ),
            first,
        ));
    }
    if let Some((from, to)) = input.complete_window {
        let seen: std::collections::BTreeSet<(&WorkloadId, &WorkloadId)> = input
            .calls
            .iter()
            .filter(|(k, a, _)| k.class == Class::Call && a.last_seen >= from)
            .filter_map(|(k, _, _)| Some((k.client.workload()?, k.server.workload()?)))
            .collect();
        for d in input.declared {
            if seen.contains(&(&d.client, &d.server)) {
                continue;
            }
            let (client, server) = (&d.client, &d.server);
            out.push((
                item(
                    DriftKind::DeclaredUnused,
                    "declared-unused",
                    format!("declared-unused/{client}>{server}"),
                    &client.namespace,
                    Some(client.clone()),
                    vec![AffectedEdge {
                        source: client.clone(),
                        target: server.clone(),
                        state: d.state,
                        denied_once_applied: false,
                    }],
                    format!(
                        "{client} declares calls to {server} but none was observed from {} to {} UTC, a window with full coverage (collector connected, no events lost).",
                        format_rfc3339(from),
                        format_rfc3339(to)
                    ),
                    format!(
                        "If {client} no longer calls {server}, remove the target from its ClientIntents; calls made rarely (batch jobs, failover) may fall outside the window."
                    ),
                    None,
                    d.state.as_str(),
                ),
                from,
            ));
        }
    }
    out.sort_by(|(a, _), (b, _)| {
        b.severity
            .cmp(&a.severity)
            .then(b.edges.len().cmp(&a.edges.len()))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}
