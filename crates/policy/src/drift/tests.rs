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
        has_item(&r, DriftKind::ModifiedPolicy, |i| i.edges.iter().any(|e| {
            e.state == EdgeState::Undeclared
                && e.target.name == "payments"
                && e.source.namespace == "storefront"
        })),
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
        has_item(&r, DriftKind::MissingPolicy, |i| i
            .edges
            .iter()
            .any(
                |e| e.state == EdgeState::Unprotected && e.target.name == "notifications"
            )),
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
        assert!(!i.explanation.is_empty() && !i.advice.is_empty(), "{i:?}");
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
    // Every generated policy is missing: the operator is absent from every namespace, one
    // item each, listing the unprotected calls into it.
    let namespaces: BTreeSet<&str> = r.generated.policies.iter().map(|p| p.namespace()).collect();
    let absent: BTreeSet<&str> = r
        .items
        .iter()
        .filter(|i| i.kind == DriftKind::OperatorAbsent)
        .map(|i| i.namespace.as_str())
        .collect();
    assert_eq!(absent, namespaces);
    assert!(r.items.iter().all(|i| i.kind == DriftKind::OperatorAbsent));
    let listed: u32 = r
        .items
        .iter()
        .map(|i| {
            i.edge_counts()
                .get(&EdgeState::Unprotected)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(listed, 30);
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

// ---------------------------------------------------------------------------------------------
// Triage: severity by impact, one item per cause, fixes proven safe.

use crate::synthetic::{self, Spec};

const SMALL: Spec = Spec {
    workloads: 40,
    namespaces: 4,
    calls: 90,
    cross_namespace_percent: 30,
    service_target_percent: 20,
    seed: 11,
};

/// A NetworkPolicy that is not Accord's: it isolates `app` in `ns` and admits `callers`
/// (namespace, app) on every port.
fn hand_policy(ns: &str, name: &str, app: &str, callers: &[(String, String)]) -> String {
    let mut from = String::new();
    for (cns, capp) in callers {
        from.push_str(&format!(
            "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: {cns}\n          podSelector:\n            matchLabels:\n              app: {capp}\n"
        ));
    }
    let ingress = if callers.is_empty() {
        "  ingress: []\n".to_string()
    } else {
        format!("  ingress:\n    - from:\n{from}")
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  podSelector:\n    matchLabels:\n      app: {app}\n  policyTypes: [Ingress]\n{ingress}---\n"
    )
}

/// Hand-written policies enforcing exactly the declared calls into every server of `spec`.
fn hand_policies(spec: &Spec, only_namespace: Option<&str>) -> String {
    let (inv, _) = load(&synthetic::manifests(spec));
    let r = analyze(&inv, &GenerateOptions::default());
    let mut callers: BTreeMap<&WorkloadId, Vec<(String, String)>> = BTreeMap::new();
    for e in r.edges.iter().filter(|e| e.is_declared()) {
        callers
            .entry(&e.target)
            .or_default()
            .push((e.source.namespace.clone(), e.source.name.clone()));
    }
    callers
        .iter()
        .filter(|(s, _)| only_namespace.is_none_or(|ns| s.namespace == ns))
        .map(|(s, c)| hand_policy(&s.namespace, &format!("hand-{}", s.name), &s.name, c))
        .collect()
}

fn load_with(mut sources: Vec<Source>, extra: &str) -> Inventory {
    sources.push(Source::new("extra.yaml", extra.to_string()));
    let (inv, diags) = load(&sources);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    inv
}

fn item<'r>(r: &'r Report, key_prefix: &str) -> &'r DriftItem {
    r.items
        .iter()
        .find(|i| i.key.starts_with(key_prefix))
        .unwrap_or_else(|| {
            panic!(
                "no item {key_prefix}: {:?}",
                r.items.iter().map(|i| &i.key).collect::<Vec<_>>()
            )
        })
}

#[test]
fn severity_table_is_documented_in_architecture_md() {
    let doc = include_str!("../../../../ARCHITECTURE.md");
    let rows: Vec<String> = doc
        .lines()
        .skip_while(|l| !l.starts_with("## Drift severity"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| severity"))
        .map(str::to_string)
        .collect();
    let want: Vec<String> = SEVERITY_RULES
        .iter()
        .map(|r| format!("| {} | `{}` | {} |", r.severity.as_str(), r.id, r.when))
        .collect();
    assert_eq!(
        rows, want,
        "ARCHITECTURE.md's severity table differs from SEVERITY_RULES"
    );
    // Worst first, and every severity has a rule.
    assert!(
        SEVERITY_RULES
            .windows(2)
            .all(|w| w[0].severity >= w[1].severity)
    );
    for s in DriftSeverity::ALL {
        assert!(SEVERITY_RULES.iter().any(|r| r.severity == s), "{s:?}");
    }
}

#[test]
fn demo_is_a_few_causes_worst_first() {
    let inv = demo();
    let r = analyze(&inv, &GenerateOptions::default());
    let keys: Vec<(&str, &str)> = r
        .items
        .iter()
        .map(|i| (i.severity.as_str(), i.key.as_str()))
        .collect();
    // cart lost its access label for auth: its call is denied now.
    assert_eq!(
        keys[0],
        ("critical", "missing-label/storefront/cart[Deployment]"),
        "{keys:?}"
    );
    let cart = item(&r, "missing-label/storefront/cart");
    assert_eq!(cart.rule, "declared-call-denied");
    assert_eq!(cart.edge_counts().get(&EdgeState::Blocked), Some(&1));
    // One item for the allow-from-anywhere policy, listing its 8 undeclared callers.
    let catalog = item(&r, "undeclared/storefront/allow-catalog-from-anywhere");
    assert_eq!(catalog.edges.len(), 8);
    assert_eq!(catalog.severity, DriftSeverity::High);
    assert_eq!(catalog.rule, "over-permissive");
    // The edited payments policy: one cause for its undeclared callers.
    let payments = item(&r, "modified-policy/checkout/payments-access");
    assert!(
        payments
            .edges
            .iter()
            .any(|e| e.state == EdgeState::Undeclared && e.source.namespace == "storefront")
    );
    assert!(
        payments
            .edges
            .iter()
            .all(|e| matches!(e.state, EdgeState::Undeclared | EdgeState::Enforced))
    );
    assert_eq!(payments.rule, "over-permissive");
    assert!(
        payments
            .fix
            .as_ref()
            .is_some_and(|f| f.diff.lines().any(|l| l.starts_with('-')))
    );
    // The deleted notifications policy: its declared callers are unprotected.
    let notif = item(&r, "missing-policy/platform/notifications-access");
    assert_eq!(notif.rule, "unprotected-enforced");
    assert!(
        notif
            .edges
            .iter()
            .all(|e| e.state == EdgeState::Unprotected)
    );
    assert!(r.items.len() <= 6, "{keys:?}");
    // Sorted worst first.
    assert!(r.items.windows(2).all(|w| w[0].severity >= w[1].severity));
    // Keys are unique.
    let unique: BTreeSet<&str> = r.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(unique.len(), r.items.len());
}

#[test]
fn merged_intents_keep_the_clients_current_targets_under_the_same_name() {
    let inv = demo();
    let client = id("storefront/cart[Deployment]");
    let current = inv
        .intents
        .iter()
        .find(|i| i.namespace == "storefront" && i.workload.name == "cart")
        .expect("cart's intents");
    let ledger = id("platform/ledger-db[StatefulSet]");
    let merged = merged_intents(&inv, &client, &[&ledger]);
    assert_eq!(merged.name, current.name);
    assert_eq!(merged.targets.len(), current.targets.len() + 1);
    assert!(current.targets.iter().all(|t| merged.targets.contains(t)));
    // Every offered intents fix on the demo is a merge of that kind.
    let r = analyze(&inv, &GenerateOptions::default());
    for i in &r.items {
        let Some(f) = i.fix.as_ref().filter(|f| f.kind == FixKind::Intents) else {
            continue;
        };
        for d in &f.draft {
            if let Some(cur) = inv
                .intents
                .iter()
                .find(|c| c.namespace == d.namespace && c.name == d.name)
            {
                assert!(
                    cur.targets.iter().all(|t| d.targets.contains(t)),
                    "{} drops targets",
                    d.name
                );
            }
        }
    }
}

/// An estate whose declared calls are all enforced by hand-written policies, with Accord's
/// operator absent: one low item per namespace, nothing alarming, nothing saying "denied".
#[test]
fn calls_enforced_by_hand_written_policies_are_one_low_item_per_namespace() {
    let inv = load_with(synthetic::manifests(&SMALL), &hand_policies(&SMALL, None));
    let r = analyze(&inv, &GenerateOptions::default());
    assert!(
        r.edges
            .iter()
            .filter(|e| e.is_declared())
            .all(|e| e.state == EdgeState::Enforced)
    );
    let namespaces: BTreeSet<&str> = r.generated.policies.iter().map(|p| p.namespace()).collect();
    assert_eq!(
        r.items.len(),
        namespaces.len(),
        "{:?}",
        r.items.iter().map(|i| &i.key).collect::<Vec<_>>()
    );
    for i in &r.items {
        assert_eq!(i.kind, DriftKind::OperatorAbsent, "{}", i.key);
        assert_eq!(
            (i.severity, i.rule.as_str()),
            (DriftSeverity::Low, "output-absent"),
            "{}",
            i.key
        );
        assert!(
            i.edges
                .iter()
                .all(|e| e.state == EdgeState::Enforced && !e.denied_once_applied)
        );
        assert!(!i.explanation.contains("denied now"), "{}", i.explanation);
        assert!(i.explanation.contains("enforced"), "{}", i.explanation);
    }
}

/// The operator runs, but one server's policy is missing while a hand-written policy enforces
/// its calls, and one caller lost its access label: that call works now and will be denied
/// once the operator's policy is applied.
#[test]
fn a_call_that_the_pending_policy_would_deny_is_critical() {
    let mut inv = synthetic::applied_inventory(&SMALL);
    let r0 = analyze(&inv, &GenerateOptions::default());
    let e = r0
        .edges
        .iter()
        .find(|e| {
            e.is_declared() && e.source.namespace == e.target.namespace && e.declared_by.len() == 1
        })
        .expect("a declared call")
        .clone();
    let gen_name = format!("{}-access", e.target.name);
    inv.network_policies.retain(|p| {
        !(p.policy.namespace() == e.target.namespace
            && p.policy.metadata.name.starts_with(&gen_name))
    });
    let hand = hand_policy(
        &e.target.namespace,
        "hand",
        &e.target.name,
        &r0.edges
            .iter()
            .filter(|x| x.target == e.target && x.is_declared())
            .map(|x| (x.source.namespace.clone(), x.source.name.clone()))
            .collect::<Vec<_>>(),
    );
    let (extra, _) = load(&[Source::new("hand.yaml", hand)]);
    inv.network_policies.extend(extra.network_policies);
    for pod in inv.pods.iter_mut().filter(|p| p.workload == e.source) {
        pod.metadata.labels.retain(|k, _| {
            !k.starts_with(crate::labels::ACCESS_PREFIX)
                && !k.starts_with(crate::labels::SVC_ACCESS_PREFIX)
        });
    }
    let r = analyze(&inv, &GenerateOptions::default());
    assert_eq!(
        r.edge(&e.source, &e.target).map(|x| x.state),
        Some(EdgeState::Enforced)
    );
    let policy = r
        .items
        .iter()
        .find(|i| i.kind == DriftKind::MissingPolicy)
        .expect("the missing policy");
    assert_eq!(
        (policy.severity, policy.rule.as_str()),
        (DriftSeverity::Critical, "denied-once-applied")
    );
    assert!(
        policy
            .edges
            .iter()
            .any(|x| x.source == e.source && x.denied_once_applied)
    );
    assert_eq!(r.items[0].severity, DriftSeverity::Critical);
}

#[test]
fn an_edited_policy_with_the_same_effect_is_medium() {
    let mut inv = synthetic::applied_inventory(&SMALL);
    let p = &mut inv.network_policies[0].policy;
    let name = p.metadata.name.clone();
    let rules = p.spec.ingress.get_or_insert_with(Vec::new);
    let first = rules[0].clone();
    rules.push(first);
    let r = analyze(&inv, &GenerateOptions::default());
    assert_eq!(r.items.len(), 1, "{:?}", r.items);
    let i = &r.items[0];
    assert!(i.key.ends_with(&name));
    assert_eq!(
        (i.kind, i.severity, i.rule.as_str()),
        (
            DriftKind::ModifiedPolicy,
            DriftSeverity::Medium,
            "edited-output"
        )
    );
    // It lists the calls into its server, which stay enforced.
    assert!(
        i.edges
            .iter()
            .all(|e| e.state == EdgeState::Enforced && !e.denied_once_applied)
    );
}

#[test]
fn undeclared_access_into_a_server_no_intent_protects_is_medium() {
    let lonely = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: lonely\n  namespace: team-0000\nspec:\n  selector:\n    matchLabels:\n      app: lonely\n  template:\n    metadata:\n      labels:\n        app: lonely\n    spec:\n      containers:\n        - name: main\n          image: example/lonely:1\n---\n";
    let allow = hand_policy(
        "team-0000",
        "allow-lonely",
        "lonely",
        &[
            ("team-0000".into(), "svc-00000".into()),
            ("team-0001".into(), "svc-00001".into()),
        ],
    );
    let inv = load_with(
        synthetic::applied_manifests(&SMALL),
        &format!("{lonely}{allow}"),
    );
    let r = analyze(&inv, &GenerateOptions::default());
    assert_eq!(r.items.len(), 1, "{:?}", r.items);
    let i = item(&r, "undeclared/team-0000/allow-lonely");
    assert_eq!(
        (i.severity, i.rule.as_str()),
        (DriftSeverity::Medium, "undeclared-unmanaged")
    );
    assert_eq!(i.edges.len(), 2);
    assert!(
        i.fix
            .as_ref()
            .is_some_and(|f| f.kind == FixKind::Intents && f.draft.len() == 2)
    );
}

#[test]
fn stale_policies_and_missing_targets_are_low() {
    let stale = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: gone-access\n  namespace: team-0001\n  labels:\n    intents.otterize.com/network-policy: gone-team-0001-abcdef\nspec:\n  podSelector:\n    matchLabels:\n      app: nobody\n  policyTypes: [Ingress]\n---\n";
    let ghost = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: ghost-caller\n  namespace: team-0002\nspec:\n  workload:\n    name: svc-00002\n  targets:\n    - kubernetes:\n        name: ghost.team-0002\n---\n";
    let inv = load_with(
        synthetic::applied_manifests(&SMALL),
        &format!("{stale}{ghost}"),
    );
    let r = analyze(&inv, &GenerateOptions::default());
    let s = item(&r, "stale-policy/team-0001/gone-access");
    assert_eq!(
        (s.severity, s.rule.as_str()),
        (DriftSeverity::Low, "output-absent")
    );
    assert!(
        s.fix
            .as_ref()
            .is_some_and(|f| f.kind == FixKind::DeletePolicy)
    );
    let t = item(&r, "missing-target/team-0002/ghost-caller/");
    assert_eq!(
        (t.severity, t.rule.as_str()),
        (DriftSeverity::Low, "output-absent")
    );
    assert!(
        t.explanation.contains("team-0002/ghost"),
        "{}",
        t.explanation
    );
    assert!(t.fix.is_none());
}

#[test]
fn shadow_mode_servers_are_info_and_hand_isolation_that_denies_is_critical() {
    let opts = GenerateOptions {
        shadow: true,
        ..GenerateOptions::default()
    };
    let inv = load_with(synthetic::manifests(&SMALL), "");
    let r = analyze(&inv, &opts);
    let shadow: Vec<&DriftItem> = r
        .items
        .iter()
        .filter(|i| i.kind == DriftKind::Unprotected)
        .collect();
    assert!(!shadow.is_empty());
    for i in &shadow {
        assert_eq!(
            (i.severity, i.rule.as_str()),
            (DriftSeverity::Info, "shadow-mode"),
            "{}",
            i.key
        );
        assert!(i.edges.iter().all(|e| e.state == EdgeState::Unprotected));
    }
    // The labels the operator has not set yet change no access here.
    assert!(
        r.items.iter().all(|i| i.severity <= DriftSeverity::Low),
        "{:?}",
        r.items
    );
    // A hand-written policy isolating a server without admitting its callers denies them.
    let server = &shadow[0].workload.clone().expect("server");
    let deny = hand_policy(&server.namespace, "deny-all", &server.name, &[]);
    let inv = load_with(synthetic::manifests(&SMALL), &deny);
    let r = analyze(&inv, &opts);
    let b = item(&r, &format!("blocked/{server}"));
    assert_eq!(
        (b.severity, b.rule.as_str()),
        (DriftSeverity::Critical, "declared-call-denied")
    );
    assert!(b.edges.iter().all(|e| e.state == EdgeState::Blocked));
    assert_eq!(r.items[0].key, b.key);
}

/// Estates with every kind of drift planted: each offered fix, applied as the operator would
/// and analyzed in full, removes its item and creates no blocked or newly open edge.
fn planted(seed: u64) -> (Inventory, GenerateOptions) {
    let spec = Spec { seed, ..SMALL };
    let mut inv = synthetic::applied_inventory(&spec);
    let mut rng = seed;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) as usize) % n.max(1)
    };
    // Delete two Accord policies, edit one, strip one client's labels.
    for _ in 0..2 {
        let i = next(inv.network_policies.len());
        inv.network_policies.remove(i);
    }
    let i = next(inv.network_policies.len());
    if let Some(rules) = inv.network_policies[i].policy.spec.ingress.as_mut() {
        rules.truncate(rules.len().saturating_sub(1));
    }
    let w = inv.pods[next(inv.pods.len())].workload.clone();
    for pod in inv.pods.iter_mut().filter(|p| p.workload == w) {
        pod.metadata
            .labels
            .retain(|k, _| !k.starts_with(crate::labels::ACCESS_PREFIX));
    }
    // A hand-written policy admitting undeclared callers into an existing server, and the
    // operator absent from one namespace.
    let target = inv.pods[next(inv.pods.len())].workload.clone();
    let callers: Vec<(String, String)> = (0..3)
        .map(|_| {
            let c = &inv.pods[next(inv.pods.len())].workload;
            (c.namespace.clone(), c.name.clone())
        })
        .collect();
    let absent = format!("team-{:04}", next(spec.namespaces));
    inv.network_policies
        .retain(|p| p.policy.namespace() != absent);
    let (extra, _) = load(&[Source::new(
        "hand.yaml",
        hand_policy(&target.namespace, "allow-some", &target.name, &callers),
    )]);
    inv.network_policies.extend(extra.network_policies);
    (inv, GenerateOptions::default())
}

#[test]
fn every_offered_fix_removes_its_item_and_breaks_nothing() {
    let mut offered: BTreeMap<FixKind, usize> = BTreeMap::new();
    for seed in 1..=6 {
        let (inv, opts) = planted(seed);
        let before = analyze(&inv, &opts);
        for i in &before.items {
            let Some(check) = check_fix(&inv, &before, &before.generated, &opts, i) else {
                continue;
            };
            if !check.safe() {
                continue;
            }
            *offered
                .entry(i.fix.as_ref().expect("fix").kind)
                .or_default() += 1;
            // Applied in full, independently of the incremental check.
            let applied = fix::apply_fix(&inv, i, &opts, what_if::Generation::Full).expect("fix");
            let after = analyze(&applied.inventory(&inv), &opts);
            assert!(
                after.items.iter().all(|a| a.key != i.key),
                "seed {seed}: the fix of {} leaves it: {:?}",
                i.key,
                after.items.iter().find(|a| a.key == i.key)
            );
            let was: BTreeMap<(&WorkloadId, &WorkloadId), &EdgeReport> = before
                .edges
                .iter()
                .map(|e| ((&e.source, &e.target), e))
                .collect();
            for e in &after.edges {
                let old = was.get(&(&e.source, &e.target));
                assert!(
                    e.state != EdgeState::Blocked
                        || old.is_some_and(|o| o.state == EdgeState::Blocked),
                    "seed {seed}: the fix of {} blocks {} → {}",
                    i.key,
                    e.source,
                    e.target
                );
                let newly_open = matches!(e.state, EdgeState::Open | EdgeState::Undeclared)
                    && !old.is_some_and(|o| o.is_allowed() && o.state != EdgeState::Blocked);
                assert!(
                    !newly_open,
                    "seed {seed}: the fix of {} opens {} → {}",
                    i.key, e.source, e.target
                );
                let lost = e.state == EdgeState::Unprotected
                    && old.is_some_and(|o| o.state == EdgeState::Enforced);
                assert!(
                    !lost,
                    "seed {seed}: the fix of {} unprotects {} → {}",
                    i.key, e.source, e.target
                );
            }
        }
    }
    for kind in [
        FixKind::Intents,
        FixKind::PolicyPatch,
        FixKind::Labels,
        FixKind::Operator,
    ] {
        assert!(
            offered.get(&kind).is_some_and(|n| *n > 0),
            "no {kind:?} fix offered: {offered:?}"
        );
    }
}

#[test]
fn line_diff_marks_removed_and_added_lines() {
    assert_eq!(line_diff("a\nb\nc\n", "a\nx\nc\n"), " a\n-b\n+x\n c\n");
    assert_eq!(line_diff("", "a\n"), "+a\n");
}
