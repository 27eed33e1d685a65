//! Whether a drift item's fix is safe to offer: the what-if engine applies it as the operator
//! would (its draft of ClientIntents, and any policy it deletes) and the fix is safe when the
//! item's drifting edges are resolved, Accord's output it is about is in place, and no edge
//! becomes blocked or newly open.

use std::collections::{BTreeMap, BTreeSet};

use super::changes::PairFacts;
use super::what_if::{self, Generation};
use super::{DriftItem, DriftKind, EdgeState, same_policy};
use crate::generate::{GenerateOptions, Generated};
use crate::identity::WorkloadId;
use crate::inventory::Inventory;

/// What applying a fix would do, as the what-if engine evaluates it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixCheck {
    /// Every drifting edge of the item is enforced (or, for an undeclared caller, declared or
    /// no longer admitted) afterwards, and Accord's output the item is about is in place.
    pub resolved: bool,
    /// Pairs (source, target) that would become blocked.
    pub blocked: Vec<(String, String)>,
    /// Pairs that would become allowed without a declaration, or lose their protection.
    pub newly_open: Vec<(String, String)>,
    /// Pairs whose access would be taken away (undeclared callers no longer admitted).
    pub revoked: Vec<(String, String)>,
    /// How many pairs change at all.
    pub changed: usize,
}

impl FixCheck {
    /// Safe to offer: it resolves the item and creates no blocked or newly open edge.
    pub fn safe(&self) -> bool {
        self.resolved && self.blocked.is_empty() && self.newly_open.is_empty()
    }
}

fn is_open(f: &PairFacts) -> bool {
    matches!(f.state, EdgeState::Open | EdgeState::Undeclared)
}

/// The live inventory with `item`'s fix applied, and the workloads whose pairs can change.
pub fn apply_fix(
    inv: &Inventory,
    item: &DriftItem,
    opts: &GenerateOptions,
    generation: Generation,
) -> Option<what_if::Applied> {
    let fix = item.fix.as_ref()?;
    let mut applied = what_if::apply(inv, fix.draft.clone(), opts, generation);
    for (ns, name) in &fix.delete {
        applied.delete_policy(inv, ns, name);
    }
    Some(applied)
}

/// Check `item`'s fix against the live analysis of `inv` (`live`, with what generation produced
/// in it; `None`: the item has no fix). The fix is applied as the operator would, and only the
/// pairs it can change are evaluated.
pub fn check_fix(
    inv: &Inventory,
    live: &impl what_if::Live,
    generated: &Generated,
    opts: &GenerateOptions,
    item: &DriftItem,
) -> Option<FixCheck> {
    let applied = apply_fix(inv, item, opts, Generation::Subjects)?;
    let changes = what_if::pair_changes(live, inv, &applied, opts);
    let mut check = FixCheck {
        changed: changes.len(),
        ..FixCheck::default()
    };
    let mut after: BTreeMap<(String, String), Option<PairFacts>> = BTreeMap::new();
    for c in changes {
        let (before, now) = (c.before.as_ref(), c.after.as_ref());
        if let Some(a) = now {
            if a.state == EdgeState::Blocked && before.is_none_or(|b| b.state != EdgeState::Blocked)
            {
                check.blocked.push(c.key.clone());
            }
            let newly_allowed_undeclared = is_open(a) && before.is_none_or(|b| !b.allowed);
            let lost_protection = a.state == EdgeState::Unprotected
                && before.is_some_and(|b| b.state == EdgeState::Enforced);
            let became_open = is_open(a) && before.is_some_and(|b| !is_open(b) && !b.allowed);
            if newly_allowed_undeclared || lost_protection || became_open {
                check.newly_open.push(c.key.clone());
            }
        }
        if before.is_some_and(|b| b.allowed) && !now.is_some_and(|a| a.allowed) {
            check.revoked.push(c.key.clone());
        }
        after.insert(c.key, c.after);
    }
    check.newly_open.dedup();

    // The item's edges, afterwards.
    let edges_resolved = item.edges.iter().all(|e| {
        let key = (e.source.to_string(), e.target.to_string());
        let state_after = match after.get(&key) {
            Some(a) => a.as_ref().map(|f| f.state),
            None => Some(e.state),
        };
        match (e.state, e.denied_once_applied) {
            (EdgeState::Enforced, false) | (EdgeState::Open, _) => true,
            (EdgeState::Undeclared, _) => state_after != Some(EdgeState::Undeclared),
            _ => state_after == Some(EdgeState::Enforced),
        }
    });

    // Accord's output the item is about, afterwards (the inventory after the fix is built only
    // for the kinds that look at it).
    let after = std::cell::OnceCell::new();
    let after_inv = || after.get_or_init(|| applied.inventory(inv));
    let output_in_place = match item.kind {
        DriftKind::MissingPolicy | DriftKind::ModifiedPolicy | DriftKind::OperatorAbsent => {
            let wanted: Vec<_> = generated
                .policies
                .iter()
                .filter(|p| match (&item.kind, &item.object) {
                    (DriftKind::OperatorAbsent, _) => p.namespace() == item.namespace,
                    (_, Some(o)) => p.namespace() == o.namespace && p.metadata.name == o.name,
                    _ => false,
                })
                .collect();
            !wanted.is_empty()
                && wanted.iter().all(|want| {
                    after_inv().network_policies.iter().any(|p| {
                        p.policy.namespace() == want.namespace()
                            && p.policy.metadata.name == want.metadata.name
                            && same_policy(&p.policy, want)
                    })
                })
                && labels_in_place(inv, generated, after_inv(), item)
        }
        DriftKind::MissingLabel => labels_in_place(inv, generated, after_inv(), item),
        DriftKind::StalePolicy => item.object.as_ref().is_some_and(|o| {
            !after_inv()
                .network_policies
                .iter()
                .any(|p| p.policy.namespace() == o.namespace && p.policy.metadata.name == o.name)
        }),
        DriftKind::Undeclared
        | DriftKind::Blocked
        | DriftKind::Unprotected
        | DriftKind::ObservedUndeclared => true,
        DriftKind::MissingTarget | DriftKind::DeclaredUnused | DriftKind::ObservedDropped => false,
    };
    check.resolved = edges_resolved && output_in_place;
    Some(check)
}

/// Whether the clients the item is about carry, after the fix, the access labels Accord wants.
fn labels_in_place(
    live: &Inventory,
    generated: &Generated,
    after: &Inventory,
    item: &DriftItem,
) -> bool {
    let clients: BTreeSet<&WorkloadId> = match item.kind {
        DriftKind::MissingLabel => item.workload.iter().collect(),
        DriftKind::OperatorAbsent => live
            .pods
            .iter()
            .filter(|p| p.workload.namespace == item.namespace)
            .map(|p| &p.workload)
            .collect(),
        _ => return true,
    };
    after
        .pods
        .iter()
        .filter(|p| clients.contains(&p.workload))
        .all(|pod| {
            generated
                .labels_for(&pod.workload)
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(crate::labels::ACCESS_PREFIX)
                        || k.starts_with(crate::labels::SVC_ACCESS_PREFIX)
                })
                .all(|(k, v)| pod.metadata.labels.get(k) == Some(v))
        })
}
