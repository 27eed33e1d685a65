//! Clusters with few policies: every workload admits every caller, so the `open` pairs grow with
//! the square of the workloads. The evaluator can leave out destinations that admit everyone,
//! and the drift report does so past `OPEN_EDGE_LIMIT`, keeping every declared call.

use std::collections::BTreeSet;

use accord_policy::drift::{self, EdgeState, OPEN_EDGE_LIMIT};
use accord_policy::evaluate::Peer;
use accord_policy::synthetic::{self, Spec};
use accord_policy::{Evaluator, Inventory, Naming, WorkloadId};

/// The synthetic cluster as the operator leaves it, but with only every `protect_every`-th
/// generated policy live (none for 0): the other servers admit everyone.
fn cluster(spec: &Spec, protect_every: usize) -> Inventory {
    let mut inv = synthetic::applied_inventory(spec);
    let policies = std::mem::take(&mut inv.network_policies);
    inv.network_policies = policies
        .into_iter()
        .enumerate()
        .filter(|(i, _)| protect_every > 0 && i % protect_every == 0)
        .map(|(_, p)| p)
        .collect();
    inv
}

const SMALL: Spec = Spec {
    workloads: 90,
    namespaces: 9,
    calls: 300,
    cross_namespace_percent: 30,
    service_target_percent: 20,
    seed: 11,
};

#[test]
fn restricted_connections_are_exactly_the_full_ones_filtered() {
    let inv = cluster(&SMALL, 3);
    let evaluator = Evaluator::new(&inv);
    let full: Vec<_> = evaluator
        .connectivity(Naming::Workload)
        .connections
        .into_iter()
        .filter(|c| matches!((&c.src, &c.dst), (Peer::Workload(_), Peer::Workload(_))))
        .collect();
    let workloads: Vec<WorkloadId> = inv.workload_ids().into_iter().cloned().collect();
    // Keep every third destination; ask for some pairs into the others, allowed or not.
    let keep = |w: &WorkloadId| workloads.iter().position(|x| x == w).unwrap() % 3 == 0;
    let extra: BTreeSet<(&WorkloadId, &WorkloadId)> = workloads
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            [
                &workloads[(i * 7 + 1) % workloads.len()],
                &workloads[(i * 13 + 2) % workloads.len()],
            ]
            .into_iter()
            .map(move |d| (s, d))
        })
        .collect();
    let restricted = evaluator.workload_connections(Naming::Workload, keep, &extra);
    let expected: Vec<_> = full
        .iter()
        .filter(|c| {
            let (Peer::Workload(s), Peer::Workload(d)) = (&c.src, &c.dst) else {
                unreachable!()
            };
            keep(d) || extra.contains(&(s, d))
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert!(
        expected.len() < full.len(),
        "the filter leaves something out"
    );
    assert_eq!(restricted, expected);

    // Keeping everything is the full list.
    let all = evaluator.workload_connections(Naming::Workload, |_| true, &BTreeSet::new());
    assert_eq!(all, full);
}

#[test]
fn open_edges_are_listed_below_the_limit() {
    let inv = cluster(&SMALL, 3);
    let report = drift::analyze(&inv, &Default::default());
    assert!(report.edges.iter().any(|e| e.state == EdgeState::Open));
    assert!(
        !report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("not listed")),
        "{:?}",
        report.diagnostics
    );
}

#[test]
fn past_the_limit_open_edges_are_left_out_and_declared_calls_kept() {
    // No policy at all: 400 workloads × 400 open servers is past the limit.
    let spec = Spec {
        workloads: 400,
        namespaces: 20,
        calls: 1_200,
        ..SMALL
    };
    assert!(spec.workloads * spec.workloads > OPEN_EDGE_LIMIT);
    let inv = cluster(&spec, 0);
    let report = drift::analyze(&inv, &Default::default());
    assert!(report.edges.iter().all(|e| e.state != EdgeState::Open));
    // Every declared call is there, unprotected (nothing isolates its server).
    let declared = report.edges.len();
    assert!(declared >= spec.calls * 9 / 10, "{declared} edges");
    assert!(
        report
            .edges
            .iter()
            .all(|e| e.state == EdgeState::Unprotected && e.is_declared())
    );
    let warning = report
        .diagnostics
        .iter()
        .find(|d| d.message.contains("not listed"))
        .expect("a warning says open edges were left out");
    assert!(!warning.is_error());
    assert!(
        warning
            .message
            .starts_with("400 of 400 workloads admit every caller"),
        "{}",
        warning.message
    );
}
