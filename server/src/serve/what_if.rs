//! What-if: a draft of ClientIntents evaluated against the current inventory.
//!
//! Before is the effective access now: the sync pass's own analysis of the live inventory (every
//! live policy, hand-written ones included). After is the live inventory once the operator
//! applied the draft: for the subjects the draft touches, the generated policies replace their
//! Accord-labelled ones and the generated labels are set on their pods (see
//! [`accord_policy::drift::what_if`]). Only the pairs with a touched end are evaluated.

use std::collections::BTreeSet;
use std::sync::Arc;

use accord_api as api;
use accord_policy::drift::changes::PairFacts;
use accord_policy::drift::{self, what_if, what_if::Generation};
use accord_policy::evaluate::Prepared;
use accord_policy::{DiagnosticCode, Origin, Source};

use super::MemoryBudget;
use super::sync::View;
use crate::cluster::key_of;

/// The file name diagnostics of the draft carry.
pub const DRAFT_FILE: &str = "draft";

/// The draft's objects, or the diagnostics that make it unusable.
pub fn parse_draft(
    text: &str,
) -> (
    Vec<(Origin, serde_json::Value)>,
    Vec<accord_policy::Diagnostic>,
) {
    let mut diags = Vec::new();
    let docs = accord_policy::load::documents(&Source::new(DRAFT_FILE, text), &mut diags);
    let mut out = Vec::new();
    for (origin, doc) in docs {
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if kind != "ClientIntents" {
            diags.push(accord_policy::Diagnostic::error(
                DiagnosticCode::InvalidDraft,
                &origin,
                kind,
                "kind",
                format!("a draft holds ClientIntents only, not {kind:?}"),
            ));
            continue;
        }
        if key_of(&doc).is_none() {
            diags.push(accord_policy::Diagnostic::error(
                DiagnosticCode::MissingField,
                &origin,
                "ClientIntents",
                "metadata.name",
                "the ClientIntents needs a name".to_string(),
            ));
            continue;
        }
        out.push((origin, doc));
    }
    if out.is_empty() && diags.is_empty() {
        diags.push(accord_policy::Diagnostic::error(
            DiagnosticCode::InvalidDraft,
            &Origin::new(DRAFT_FILE, 0),
            "",
            "",
            "the draft is empty".to_string(),
        ));
    }
    (out, diags)
}

/// The sync pass's analysis, as the what-if compares with it: the pairs of its view.
impl drift::what_if::Live for View {
    fn open_omitted(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.code == DiagnosticCode::OpenEdgesNotListed)
    }

    fn pairs(&self, touched: Option<&BTreeSet<String>>) -> Vec<((String, String), PairFacts)> {
        let facts = |i: usize| {
            let e = &self.edges[i];
            (
                (e.source.clone(), e.target.clone()),
                PairFacts {
                    state: e.state,
                    allowed: e.allowed,
                    ports: e.ports.clone(),
                    declared_ports: e.declared_ports.clone(),
                },
            )
        };
        let Some(touched) = touched else {
            return (0..self.edges.len()).map(facts).collect();
        };
        let mut at: BTreeSet<usize> = BTreeSet::new();
        for id in touched {
            at.extend(self.out_edges.get(id).into_iter().flatten());
            at.extend(self.in_edges.get(id).into_iter().flatten());
        }
        at.into_iter().map(facts).collect()
    }
}

/// A what-if refused because those in flight hold too much memory.
#[derive(Debug)]
pub struct OverBudget {
    /// The estimated working memory of the refused what-if, in bytes.
    pub needed: usize,
}

/// Evaluate `text` (ClientIntents YAML or JSON) against the sync pass of `view`: before is the
/// access the pass found, after the live inventory once the operator applied the draft (with
/// the settings the pass used). Only the pairs the draft can change are evaluated.
#[cfg(test)]
pub fn what_if(view: &View, text: &str) -> api::WhatIfResponse {
    match what_if_within(view, text, &MemoryBudget::new(usize::MAX)) {
        Ok(r) => r,
        Err(_) => unreachable!("an unlimited budget refuses nothing"),
    }
}

/// [`what_if`], evaluating only when `budget` has room for its working memory (estimated once
/// the draft is applied, from the cluster's size and the workloads the draft touches).
pub fn what_if_within(
    view: &View,
    text: &str,
    budget: &Arc<MemoryBudget>,
) -> Result<api::WhatIfResponse, OverBudget> {
    let (objects, mut diags) = parse_draft(text);
    let Some(live) = view.inventory.as_deref() else {
        diags.push(accord_policy::Diagnostic::error(
            DiagnosticCode::InvalidDraft,
            &Origin::new(DRAFT_FILE, 0),
            "",
            "",
            "the first sync has not finished yet".to_string(),
        ));
        return Ok(api::WhatIfResponse {
            ok: false,
            diagnostics: diags,
            ..Default::default()
        });
    };
    let opts = &view.settings.options;
    let mut draft = Vec::new();
    for (origin, doc) in objects {
        if let Some(i) = accord_policy::intents::parse(&origin, &doc, &mut diags) {
            draft.push(i);
        }
    }
    if diags.iter().any(|d| d.is_error()) {
        return Ok(api::WhatIfResponse {
            ok: false,
            diagnostics: diags,
            ..Default::default()
        });
    }
    let applied = what_if::apply(live, draft, opts, Generation::Subjects);
    // Generation's diagnostics about the draft's own objects (a target that resolves to
    // nothing, a duplicate of another ClientIntents).
    diags.extend(applied.diagnostics.iter().cloned());
    let ok = !diags.iter().any(|d| d.is_error());
    if !ok {
        return Ok(api::WhatIfResponse {
            ok,
            diagnostics: diags,
            ..Default::default()
        });
    }

    let mut policies_yaml =
        accord_policy::render::policies_yaml(&applied.policies).unwrap_or_default();
    for r in &applied.removed {
        policies_yaml.push_str(&format!(
            "# deleted: NetworkPolicy {}/{}\n",
            r.namespace, r.name
        ));
    }
    let mut labels_yaml = String::new();
    for l in &applied.labels {
        labels_yaml.push_str(&format!("{}:\n", l.workload));
        for (k, v) in &l.set {
            labels_yaml.push_str(&format!("  {k}: \"{v}\"\n"));
        }
        for k in &l.removed {
            labels_yaml.push_str(&format!("  {k}: null\n"));
        }
    }
    // The pass's policies compiled once, by its first what-if, and patched by every one.
    let prepared = view.prepared.get_or_init(|| Arc::new(Prepared::new(live)));
    let needed = what_if::working_bytes(prepared, live, &applied);
    let Some(_reservation) = budget.try_reserve(needed) else {
        return Err(OverBudget { needed });
    };
    let changes = what_if::pair_changes_prepared(view, live, prepared, &applied, opts);
    // What the operator changes anyway for the same subjects (the draft's replaced intents kept
    // as they are): a change the draft makes the same way is listed apart, as fixed anyway.
    let reconciled = what_if::reconcile(live, &applied, opts);
    let anyway: std::collections::HashMap<(String, String), Option<PairFacts>> =
        if reconciled.is_noop() {
            Default::default()
        } else {
            what_if::pair_changes_prepared(view, live, prepared, &reconciled, opts)
                .into_iter()
                .map(|c| (c.key, c.after))
                .collect()
        };
    let mut own = Vec::new();
    let mut also_fixed = Vec::new();
    for c in changes {
        let fixed = anyway.get(&c.key).is_some_and(|a| *a == c.after);
        let change = edge_change(c.key, c.before.as_ref(), c.after.as_ref());
        if fixed {
            also_fixed.push(change);
        } else {
            own.push(change);
        }
    }
    own.sort_by(|a, b| (a.impact, &a.source, &a.target).cmp(&(b.impact, &b.source, &b.target)));
    also_fixed
        .sort_by(|a, b| (a.impact, &a.source, &a.target).cmp(&(b.impact, &b.source, &b.target)));
    // The draft's clients' current calls that stay as they are.
    let changed: BTreeSet<(&str, &str)> = own
        .iter()
        .chain(&also_fixed)
        .map(|c| (c.source.as_str(), c.target.as_str()))
        .collect();
    let clients: BTreeSet<String> = applied
        .draft
        .iter()
        .map(|i| {
            accord_policy::WorkloadId::new(
                &i.namespace,
                &i.workload.name,
                i.workload.kind.as_deref(),
            )
            .to_string()
        })
        .collect();
    let mut unchanged = Vec::new();
    for client in &clients {
        let Some(id) = node_id(view, client) else {
            continue;
        };
        {
            for &e in view.out_edges.get(&id).into_iter().flatten() {
                let e = &view.edges[e];
                if changed.contains(&(e.source.as_str(), e.target.as_str())) {
                    continue;
                }
                let f = PairFacts {
                    state: e.state,
                    allowed: e.allowed,
                    ports: e.ports.clone(),
                    declared_ports: e.declared_ports.clone(),
                };
                let mut c = edge_change((e.source.clone(), e.target.clone()), Some(&f), Some(&f));
                c.why = "Stays as it is.".into();
                unchanged.push(c);
            }
        }
    }
    Ok(api::WhatIfResponse {
        ok,
        diagnostics: diags,
        policies_yaml,
        labels_yaml,
        changes: own,
        also_fixed,
        unchanged,
    })
}

/// The node id of `id` (`ns/name[Kind]`, or `ns/name` when one workload has that name).
pub fn node_id(view: &View, id: &str) -> Option<String> {
    if let Some(i) = view.node(id) {
        return Some(view.nodes[i].id.clone());
    }
    let prefix = format!("{}[", id.split_once('[').map_or(id, |(n, _)| n));
    let start = view
        .nodes
        .partition_point(|n| n.id.as_str() < prefix.as_str());
    let mut hits = view.nodes[start..]
        .iter()
        .take_while(|n| n.id.starts_with(&prefix));
    match (hits.next(), hits.next()) {
        (Some(n), None) => Some(n.id.clone()),
        _ => None,
    }
}

/// The short name of a workload id (`ns/name[Kind]` → `name`).
fn short(id: &str) -> &str {
    let name = id.split_once('/').map_or(id, |(_, n)| n);
    name.split_once('[').map_or(name, |(n, _)| n)
}

/// One pair's change as the API tells it.
fn edge_change(
    key: (String, String),
    before: Option<&PairFacts>,
    after: Option<&PairFacts>,
) -> api::EdgeChange {
    let why = what_if::why(before, after, short(&key.0), short(&key.1));
    api::EdgeChange {
        impact: what_if::Impact::of(before, after),
        why,
        before: before.map(|f| f.state),
        after: after.map(|f| f.state),
        ports_before: before.map(|f| f.ports.clone()).unwrap_or_default(),
        ports_after: after.map(|f| f.ports.clone()).unwrap_or_default(),
        source: key.0,
        target: key.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view of a sync pass over the demo objects.
    fn demo_view() -> View {
        let mut idx = crate::cluster::Index::default();
        idx.reset_all(super::super::demo::objects());
        super::super::sync::compute(
            std::sync::Arc::new(idx),
            &Default::default(),
            &Default::default(),
            &Default::default(),
            "test",
        )
        .view
    }

    #[test]
    fn new_call_to_a_protected_server_becomes_enforced() {
        let draft = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: search\n  namespace: storefront\nspec:\n  workload:\n    name: search\n    kind: Deployment\n  targets:\n    - kubernetes:\n        name: ledger-db.platform\n        kind: StatefulSet\n";
        let r = what_if(&demo_view(), draft);
        assert!(r.ok, "{:?}", r.diagnostics);
        let c = r
            .changes
            .iter()
            .find(|c| {
                c.source.starts_with("storefront/search")
                    && c.target.starts_with("platform/ledger-db")
            })
            .unwrap_or_else(|| panic!("{:#?}", r.changes));
        assert_eq!(c.after, Some(api::EdgeState::Enforced));
        assert!(r.policies_yaml.contains("ledger-db"), "{}", r.policies_yaml);
        assert!(
            r.labels_yaml.contains("intents.otterize.com/access-"),
            "{}",
            r.labels_yaml
        );
    }

    #[test]
    fn malformed_draft_gives_field_diagnostics() {
        let draft = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: x\n  namespace: storefront\nspec:\n  workload: 7\n";
        let r = what_if(&demo_view(), draft);
        assert!(!r.ok);
        assert!(
            r.diagnostics.iter().any(|d| d.field.contains("workload")),
            "{:?}",
            r.diagnostics
        );
    }

    #[test]
    fn non_intents_objects_are_rejected() {
        let r = what_if(
            &demo_view(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        );
        assert!(!r.ok);
        assert_eq!(r.diagnostics[0].field, "kind");
        assert_eq!(r.diagnostics[0].code, DiagnosticCode::InvalidDraft);
    }
    /// web's current intents, as in the demo, with `extra` targets appended and `drop` removed.
    fn web_draft(extra: &str, drop: &str) -> String {
        let targets = [
            "catalog",
            "search",
            "recommendations",
            "cart",
            "auth.platform",
        ]
        .into_iter()
        .filter(|t| *t != drop)
        .map(|t| format!("    - kubernetes:\n        name: {t}\n"))
        .collect::<String>();
        format!(
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: web\n  namespace: storefront\nspec:\n  workload:\n    name: web\n    kind: Deployment\n  targets:\n{targets}    - service:\n        name: checkout.checkout\n{extra}"
        )
    }

    #[test]
    fn adding_a_target_to_the_current_intents_shows_only_that_call() {
        let view = demo_view();
        let unchanged = what_if(&view, &web_draft("", ""));
        assert!(unchanged.ok, "{:?}", unchanged.diagnostics);
        assert!(
            unchanged.changes.is_empty(),
            "web's own intents change nothing of its own: {:#?}",
            unchanged.changes
        );
        let r = what_if(
            &view,
            &web_draft(
                "    - kubernetes:\n        name: payments.checkout\n        ports:\n        - port: 8443\n",
                "",
            ),
        );
        assert!(r.ok, "{:?}", r.diagnostics);
        let own: Vec<(&str, &str)> = r
            .changes
            .iter()
            .map(|c| (c.source.as_str(), c.target.as_str()))
            .collect();
        assert_eq!(
            own,
            vec![(
                "storefront/web[Deployment]",
                "checkout/payments[Deployment]"
            )],
            "{:#?}",
            r.changes
        );
        // web may reach payments today (the hand-edited policy lets all of storefront in): the
        // draft declares it, it does not newly allow it.
        let c = &r.changes[0];
        assert_eq!(c.before, Some(api::EdgeState::Undeclared));
        assert_eq!(c.after, Some(api::EdgeState::Enforced));
        // Today storefront may reach payments on every port; the generated policy admits 8443.
        assert_eq!(c.impact, api::Impact::PortsChange);
        assert_eq!(
            c.why,
            "web would declare this call; payments would let it in on TCP 8443 (All Connections today)."
        );
        // Applying also rewrites payments' hand-edited policy (storefront's other workloads lose
        // access) and restores cart's missing access label for auth (cart is a target of web,
        // so a subject): listed apart, losses first.
        let fixed: Vec<(&str, &str, api::Impact)> = r
            .also_fixed
            .iter()
            .map(|c| (c.source.as_str(), c.target.as_str(), c.impact))
            .collect();
        assert_eq!(fixed[0].2, api::Impact::LosesAccess, "{fixed:?}");
        assert!(fixed.contains(&(
            "storefront/cart[Deployment]",
            "checkout/payments[Deployment]",
            api::Impact::LosesAccess
        )));
        assert!(
            fixed.contains(&(
                "storefront/cart[Deployment]",
                "platform/auth[Deployment]",
                api::Impact::NewlyAllowed
            )),
            "{fixed:?}"
        );
        // web's other calls are listed as unchanged.
        assert!(
            r.unchanged
                .iter()
                .any(|c| c.target.starts_with("storefront/catalog")),
            "{:#?}",
            r.unchanged
        );
    }

    #[test]
    fn removing_a_target_lists_the_loss_first() {
        let r = what_if(&demo_view(), &web_draft("", "auth.platform"));
        assert!(r.ok, "{:?}", r.diagnostics);
        let first = r.changes.first().unwrap_or_else(|| panic!("{r:#?}"));
        assert_eq!(first.impact, api::Impact::LosesAccess);
        assert_eq!(
            (first.source.as_str(), first.target.as_str()),
            ("storefront/web[Deployment]", "platform/auth[Deployment]")
        );
        assert!(first.why.contains("no longer declare"), "{}", first.why);
        let mut sorted = r.changes.clone();
        sorted.sort_by_key(|c| c.impact);
        assert_eq!(sorted, r.changes, "riskiest first");
    }

    #[test]
    fn a_nonexistent_target_is_a_diagnostic_on_its_field() {
        let r = what_if(
            &demo_view(),
            &web_draft("    - kubernetes:\n        name: nosuch.platform\n", ""),
        );
        let d = r
            .diagnostics
            .iter()
            .find(|d| d.code == DiagnosticCode::TargetNotFound)
            .unwrap_or_else(|| panic!("{:?}", r.diagnostics));
        assert_eq!(d.field, "spec.targets[6].kubernetes");
    }
}
