//! What-if: a draft of ClientIntents evaluated against the current inventory.
//!
//! Both sides are compared as the operator would leave the cluster: Accord's own policies
//! replaced by what generation produces and the generated labels on the pods. So the changes
//! listed are those the draft causes, not the drift that already exists.

use std::collections::BTreeSet;

use accord_api as api;
use accord_policy::drift::changes::{PairFacts, changes};
use accord_policy::drift::{self, EdgeReport};
use accord_policy::inventory::PolicyObject;
use accord_policy::{DiagnosticCode, GenerateOptions, Inventory, Origin, Source, labels};

use super::index::{Index, key_of};

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

/// The inventory as the operator would leave it: generated policies and labels in place.
fn reconciled(mut inv: Inventory, opts: &GenerateOptions) -> Inventory {
    let generated = accord_policy::generate(&inv, opts);
    accord_policy::apply_pod_labels(&mut inv, &generated);
    inv.network_policies.retain(|p| {
        !p.policy
            .metadata
            .labels
            .contains_key(labels::NETWORK_POLICY)
    });
    inv.network_policies
        .extend(generated.policies.into_iter().map(|policy| PolicyObject {
            origin: Origin::new("generated", 0),
            policy,
        }));
    inv
}

/// The facts of each edge of an analysis, by (source, target).
fn facts(edges: &[EdgeReport]) -> impl Iterator<Item = ((String, String), PairFacts)> + '_ {
    edges.iter().map(|e| {
        (
            (e.source.to_string(), e.target.to_string()),
            PairFacts::of(e),
        )
    })
}

/// Evaluate `text` (ClientIntents YAML or JSON) against the objects of `index`, generating with
/// `opts` (the settings the sync pass uses).
pub fn what_if(index: &Index, opts: &GenerateOptions, text: &str) -> api::WhatIfResponse {
    let (objects, mut diags) = parse_draft(text);
    let (before_inv, _) = index.inventory();
    let mut after_index = index.clone();
    let mut draft_objects = BTreeSet::new();
    let mut draft_clients = BTreeSet::new();
    for (origin, doc) in objects {
        // The draft's own parse diagnostics; the same object parses again in the inventory.
        if let Some(i) = accord_policy::intents::parse(&origin, &doc, &mut diags) {
            draft_objects.insert(i.object_name());
            draft_clients.insert((i.namespace.clone(), i.workload.name.clone()));
        }
        after_index.apply(origin, doc);
    }
    let (after_inv, _) = after_index.inventory();
    let before_gen = accord_policy::generate(&before_inv, opts);
    let after_gen = accord_policy::generate(&after_inv, opts);
    // Generation's diagnostics about the draft's own objects (a target that resolves to
    // nothing, a duplicate of another ClientIntents): matched by object, not by file.
    diags.extend(
        after_gen
            .diagnostics
            .iter()
            .filter(|d| draft_objects.contains(&d.object))
            .cloned(),
    );
    let ok = !diags.iter().any(|d| d.is_error());
    if !ok {
        return api::WhatIfResponse {
            ok,
            diagnostics: diags,
            ..Default::default()
        };
    }

    // Policies that are new or different after the draft.
    let before_policies: BTreeSet<String> = before_gen
        .policies
        .iter()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .collect();
    let changed: Vec<_> = after_gen
        .policies
        .iter()
        .filter(|p| !before_policies.contains(&serde_json::to_string(p).unwrap_or_default()))
        .cloned()
        .collect();
    let policies_yaml = accord_policy::render::policies_yaml(&changed).unwrap_or_default();
    let mut labels_yaml = String::new();
    for id in after_inv.workload_ids() {
        if !draft_clients.contains(&(id.namespace.clone(), id.name.clone())) {
            continue;
        }
        let want = after_gen.labels_for(id);
        let had = before_gen.labels_for(id);
        if want == had {
            continue;
        }
        labels_yaml.push_str(&format!("{id}:\n"));
        for (k, v) in &want {
            if had.get(k) != Some(v) {
                labels_yaml.push_str(&format!("  {k}: \"{v}\"\n"));
            }
        }
        for k in had.keys().filter(|k| !want.contains_key(*k)) {
            labels_yaml.push_str(&format!("  {k}: null\n"));
        }
    }

    let before = drift::analyze(&reconciled(before_inv, opts), opts);
    let after = drift::analyze(&reconciled(after_inv, opts), opts);
    let changes = changes(facts(&before.edges), facts(&after.edges))
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
    api::WhatIfResponse {
        ok,
        diagnostics: diags,
        policies_yaml,
        labels_yaml,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_index() -> Index {
        let mut idx = Index::default();
        idx.reset_all(super::super::demo::objects());
        idx
    }

    #[test]
    fn new_call_to_a_protected_server_becomes_enforced() {
        let draft = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: search\n  namespace: storefront\nspec:\n  workload:\n    name: search\n    kind: Deployment\n  targets:\n    - kubernetes:\n        name: ledger-db.platform\n        kind: StatefulSet\n";
        let r = what_if(&demo_index(), &GenerateOptions::default(), draft);
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
        let r = what_if(&demo_index(), &GenerateOptions::default(), draft);
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
            &demo_index(),
            &GenerateOptions::default(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        );
        assert!(!r.ok);
        assert_eq!(r.diagnostics[0].field, "kind");
        assert_eq!(r.diagnostics[0].code, DiagnosticCode::InvalidDraft);
    }
}
