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
    let changes = changes
        .into_iter()
        .map(|c| api::EdgeChange {
            source: c.key.0,
            target: c.key.1,
            before: c.before.as_ref().map(|f| f.state),
            after: c.after.as_ref().map(|f| f.state),
            ports_before: c.before.map(|f| f.ports).unwrap_or_default(),
            ports_after: c.after.map(|f| f.ports).unwrap_or_default(),
        })
        .collect();
    Ok(api::WhatIfResponse {
        ok,
        diagnostics: diags,
        policies_yaml,
        labels_yaml,
        changes,
    })
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
}
