use super::*;
use crate::load::{Source, load};

/// The bundled demo shop (`assets/demo/`), with its planted drift.
fn demo() -> Inventory {
    macro_rules! src {
        ($path:literal) => {
            Source::new(
                $path,
                include_str!(concat!("../../../../assets/demo/", $path)),
            )
        };
    }
    let sources = vec![
        src!("namespaces.yaml"),
        src!("checkout/intents/checkout.yaml"),
        src!("checkout/intents/orders.yaml"),
        src!("checkout/intents/payments.yaml"),
        src!("checkout/intents/shipping.yaml"),
        src!("checkout/policies.yaml"),
        src!("checkout/workloads.yaml"),
        src!("platform/intents/auth.yaml"),
        src!("platform/policies.yaml"),
        src!("platform/protected.yaml"),
        src!("platform/workloads.yaml"),
        src!("storefront/intents/cart.yaml"),
        src!("storefront/intents/recommendations.yaml"),
        src!("storefront/intents/search.yaml"),
        src!("storefront/intents/web.yaml"),
        src!("storefront/policies.yaml"),
        src!("storefront/workloads.yaml"),
    ];
    let (inv, diags) = load(&sources);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    inv
}

fn id(s: &str) -> WorkloadId {
    WorkloadId::parse(s, "default").unwrap()
}

fn has_item(r: &Report, kind: DriftKind, pred: impl Fn(&DriftItem) -> bool) -> bool {
    r.items.iter().any(|i| i.kind == kind && pred(i))
}

fn obj_named(i: &DriftItem, ns: &str, name: &str) -> bool {
    i.object
        .as_ref()
        .is_some_and(|o| o.namespace == ns && o.name == name)
}

#[test]
fn state_table_matches_the_design() {
    assert_eq!(EdgeState::of(true, true, true), Some(EdgeState::Enforced));
    assert_eq!(EdgeState::of(true, false, true), Some(EdgeState::Blocked));
    assert_eq!(
        EdgeState::of(true, true, false),
        Some(EdgeState::Unprotected)
    );
    assert_eq!(
        EdgeState::of(false, true, true),
        Some(EdgeState::Undeclared)
    );
    assert_eq!(EdgeState::of(false, true, false), Some(EdgeState::Open));
    assert_eq!(EdgeState::of(false, false, true), None);
}

#[test]
fn demo_shows_every_planted_drift() {
    let r = analyze(&demo(), &GenerateOptions::default());
    let dump = || {
        r.items
            .iter()
            .map(|i| {
                format!(
                    "{} {:?} {:?}->{:?} {:?}",
                    i.kind.as_str(),
                    i.workload.as_ref().map(|w| w.to_string()),
                    i.source.as_ref().map(|w| w.to_string()),
                    i.target.as_ref().map(|w| w.to_string()),
                    i.object.as_ref().map(|o| o.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    // payments-access edited by hand: storefront may call payments, undeclared.
    assert!(
        has_item(&r, DriftKind::ModifiedPolicy, |i| obj_named(
            i,
            "checkout",
            "payments-access"
        )),
        "{}",
        dump()
    );
    assert!(
        has_item(&r, DriftKind::Undeclared, |i| {
            i.target.as_ref().is_some_and(|t| t.name == "payments")
                && i.source
                    .as_ref()
                    .is_some_and(|s| s.namespace == "storefront")
        }),
        "{}",
        dump()
    );
    // notifications-access deleted: missing policy, notifications unprotected.
    assert!(
        has_item(&r, DriftKind::MissingPolicy, |i| obj_named(
            i,
            "platform",
            "notifications-access"
        )),
        "{}",
        dump()
    );
    assert!(
        has_item(&r, DriftKind::Unprotected, |i| i
            .target
            .as_ref()
            .is_some_and(|t| t.name == "notifications")),
        "{}",
        dump()
    );
    // allow-catalog-from-anywhere: undeclared callers of catalog from other namespaces.
    assert!(
        has_item(&r, DriftKind::Undeclared, |i| {
            i.target.as_ref().is_some_and(|t| t.name == "catalog")
                && i.source
                    .as_ref()
                    .is_some_and(|s| s.namespace != "storefront")
        }),
        "{}",
        dump()
    );
    // allow-backup-to-ledger: the backup job reaches the ledger undeclared.
    assert!(
        has_item(&r, DriftKind::Undeclared, |i| {
            i.target.as_ref().is_some_and(|t| t.name == "ledger-db")
                && i.source.as_ref().is_some_and(|s| s.name == "ledger-backup")
        }),
        "{}",
        dump()
    );
    // cart lost its access label for auth: missing label, blocked call.
    assert!(
        has_item(&r, DriftKind::MissingLabel, |i| i
            .workload
            .as_ref()
            .is_some_and(|w| w.name == "cart")),
        "{}",
        dump()
    );
    let blocked = r
        .edges
        .iter()
        .find(|e| e.source.name == "cart" && e.target.name == "auth")
        .expect("cart → auth edge");
    assert_eq!(blocked.state, EdgeState::Blocked, "{}", blocked.summary);
    assert!(
        blocked.declared_by[0].intents.kind == "ClientIntents"
            && blocked.declared_by[0].intents.field.starts_with("spec."),
        "{:?}",
        blocked.declared_by
    );
    // default-deny-ingress isolates every pod in checkout: no checkout workload is open.
    assert!(
        r.edges
            .iter()
            .filter(|e| e.target.namespace == "checkout")
            .all(|e| e.state != EdgeState::Open && e.state != EdgeState::Unprotected),
        "{}",
        dump()
    );
    // Every drift item carries an explanation and a fix.
    for i in &r.items {
        assert!(!i.explanation.is_empty() && !i.fix.is_empty(), "{i:?}");
    }
}

#[test]
fn demo_edges_are_declared_enforced_where_accord_generated_the_policy() {
    let r = analyze(&demo(), &GenerateOptions::default());
    let e = r
        .edge(
            &id("checkout/checkout[Deployment]"),
            &id("checkout/payments[Deployment]"),
        )
        .expect("checkout → payments");
    assert_eq!(e.state, EdgeState::Enforced, "{}", e.summary);
    assert!(e.is_declared() && e.is_allowed());
    assert!(!e.ingress_isolated_by.is_empty());
    // Edges are sorted and unique.
    assert!(
        r.edges
            .windows(2)
            .all(|w| (&w[0].source, &w[0].target) < (&w[1].source, &w[1].target))
    );
}

#[test]
fn inventory_without_policies_has_only_unprotected_and_open_edges() {
    let sources = crate::synthetic::manifests(&crate::synthetic::Spec {
        workloads: 20,
        namespaces: 2,
        calls: 30,
        ..crate::synthetic::Spec::LARGE
    });
    let (inv, _) = load(&sources);
    let r = analyze(&inv, &GenerateOptions::default());
    assert!(
        r.edges
            .iter()
            .all(|e| matches!(e.state, EdgeState::Unprotected | EdgeState::Open))
    );
    let declared = r.edges.iter().filter(|e| e.is_declared()).count();
    assert_eq!(declared, 30);
    // Every generated policy is missing.
    let missing = r
        .items
        .iter()
        .filter(|i| i.kind == DriftKind::MissingPolicy)
        .count();
    assert_eq!(missing, r.generated.policies.len());
}

#[test]
fn applying_generated_policies_and_labels_enforces_every_declared_call() {
    let sources = crate::synthetic::manifests(&crate::synthetic::Spec {
        workloads: 30,
        namespaces: 3,
        calls: 60,
        ..crate::synthetic::Spec::LARGE
    });
    let (mut inv, _) = load(&sources);
    let g = generate(&inv, &GenerateOptions::default());
    crate::generate::apply_pod_labels(&mut inv, &g);
    for p in &g.policies {
        inv.network_policies.push(crate::inventory::PolicyObject {
            origin: Origin::new("generated", 0),
            policy: p.clone(),
        });
    }
    let r = analyze(&inv, &GenerateOptions::default());
    for e in r.edges.iter().filter(|e| e.is_declared()) {
        assert_eq!(e.state, EdgeState::Enforced, "{}", e.summary);
    }
    assert!(
        r.items.iter().all(|i| i.kind != DriftKind::ModifiedPolicy
            && i.kind != DriftKind::MissingPolicy
            && i.kind != DriftKind::MissingLabel),
        "{:?}",
        r.items
    );
    assert!(r.edges.iter().all(|e| e.state != EdgeState::Undeclared));
}
