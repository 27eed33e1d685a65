//! HTTP tests through `router(state).oneshot(request)`, each on a fresh SQLite file synced from
//! the demo.

use std::sync::Arc;

use accord_api as api;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::super::store::Store;
use super::super::sync::Syncer;
use super::super::{AppState, SharedState, demo};
use super::router;
use crate::cluster::Index;

struct Fixture {
    _dir: tempfile::TempDir,
    state: SharedState,
}

async fn fixture() -> Fixture {
    let (dir, state) = synced(|_| {}, demo::objects()).await;
    Fixture { _dir: dir, state }
}

/// `objects` synced once into a fresh database, served by a state `configure` adjusted.
pub(super) async fn synced(
    configure: impl FnOnce(&mut AppState),
    objects: Vec<(accord_policy::Origin, serde_json::Value)>,
) -> (tempfile::TempDir, SharedState) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("accord.db").to_str().unwrap())
        .await
        .unwrap();
    let mut state = AppState::new(store.clone(), "demo".into());
    configure(&mut state);
    let state = Arc::new(state);
    let mut syncer = Syncer::new(store, "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    idx.reset_all(objects);
    state.publish(syncer.pass(Arc::new(idx)).await.unwrap());
    (dir, state)
}

async fn call(state: &SharedState, req: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let res = router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body)
}

async fn get(state: &SharedState, uri: &str) -> (StatusCode, axum::body::Bytes) {
    call(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn json<T: serde::de::DeserializeOwned>(b: &[u8]) -> T {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

#[tokio::test]
async fn graph_hides_open_edges_by_default_and_filters_by_state_and_namespace() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/graph").await;
    assert_eq!(s, StatusCode::OK);
    let g: api::Graph = json(&b);
    assert_eq!(g.nodes.len(), 13);
    assert!(g.edges.iter().all(|e| e.state != api::EdgeState::Open));
    assert!(g.counts.blocked >= 1 && g.counts.undeclared >= 1 && g.counts.enforced >= 1);

    let (_, b) = get(&f.state, "/api/graph?state=blocked").await;
    let g: api::Graph = json(&b);
    assert!(!g.edges.is_empty());
    assert!(g.edges.iter().all(|e| e.state == api::EdgeState::Blocked));

    let (_, b) = get(&f.state, "/api/graph?namespace=platform&state=all").await;
    let g: api::Graph = json(&b);
    assert!(
        g.edges
            .iter()
            .all(|e| e.source.starts_with("platform/") || e.target.starts_with("platform/"))
    );

    let (s, b) = get(&f.state, "/api/graph?state=bogus").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let e: api::ErrorBody = json(&b);
    assert!(e.error.contains("bogus"));
}

#[tokio::test]
async fn graph_neighbourhood_and_namespace_level() {
    let f = fixture().await;
    let (s, b) = get(
        &f.state,
        "/api/graph?workload=storefront/cart%5BDeployment%5D&depth=1",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let g: api::Graph = json(&b);
    assert!(
        g.nodes
            .iter()
            .any(|n| n.id == "storefront/cart[Deployment]")
    );
    assert!(g.edges.iter().all(|e| {
        g.nodes.iter().any(|n| n.id == e.source) && g.nodes.iter().any(|n| n.id == e.target)
    }));
    assert!(g.nodes.len() < 13);

    let (s, _) = get(&f.state, "/api/graph?workload=nope/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, b) = get(&f.state, "/api/graph?level=namespace").await;
    assert_eq!(s, StatusCode::OK);
    let g: api::NamespaceGraph = json(&b);
    assert_eq!(
        g.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["checkout", "platform", "storefront"]
    );
    assert!(
        g.edges
            .iter()
            .any(|e| e.source == "storefront" && e.target == "checkout")
    );
}

#[tokio::test]
async fn workload_detail_explains_edges_with_rules() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/workloads/storefront/cart%5BDeployment%5D").await;
    assert_eq!(s, StatusCode::OK);
    let d: api::WorkloadDetail = json(&b);
    assert_eq!(d.node.id, "storefront/cart[Deployment]");
    let blocked = d
        .callees
        .iter()
        .find(|c| c.edge.target == "platform/auth[Deployment]")
        .expect("cart → auth");
    assert_eq!(blocked.edge.state, api::EdgeState::Blocked);
    assert!(!blocked.explanation.declared_by.is_empty());
    assert!(!blocked.explanation.ingress_isolated_by.is_empty());
    assert!(
        d.drift
            .iter()
            .any(|i| i.kind == api::DriftKind::MissingLabel)
    );
    assert!(!d.intents.is_empty());
    let enforced = d
        .callers
        .iter()
        .find(|c| c.edge.state == api::EdgeState::Enforced)
        .expect("an enforced caller");
    assert!(!enforced.explanation.ingress_admitted_by.is_empty());

    // Without the kind, the only workload of that name.
    let (s, _) = get(&f.state, "/api/workloads/storefront/cart").await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = get(&f.state, "/api/workloads/storefront/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let e: api::ErrorBody = json(&b);
    assert!(e.error.contains("storefront/nope"));
}

async fn drift(state: &SharedState, query: &str) -> api::DriftReport {
    let (s, b) = get(state, &format!("/api/drift{query}")).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    json(&b)
}

#[tokio::test]
async fn drift_report_is_worst_first_one_item_per_cause_paged_filtered_and_sorted() {
    let f = fixture().await;
    let all = drift(&f.state, "?per_page=100").await;
    assert!(all.total >= 5 && all.total <= 8, "{:#?}", all.items);
    // Criticals first: cart's missing access label denies its call to auth.
    assert_eq!(all.items[0].severity, api::DriftSeverity::Critical);
    assert_eq!(
        all.items[0].key,
        "missing-label/storefront/cart[Deployment]"
    );
    assert!(all.items.windows(2).all(|w| w[0].severity >= w[1].severity));
    // One cause for the allow-from-anywhere policy, with its affected edges counted.
    let catalog = all
        .items
        .iter()
        .find(|i| i.key == "undeclared/storefront/allow-catalog-from-anywhere")
        .expect("the catalog policy's item");
    assert_eq!(
        catalog.edge_counts.get(&api::EdgeState::Undeclared),
        Some(&8)
    );
    assert_eq!(catalog.edges.len(), 8);
    assert_eq!(catalog.fix.kind, Some(api::FixKind::Intents));
    assert!(
        catalog.fix.yaml.is_empty(),
        "lists leave the fix's YAML to the item endpoint"
    );
    // The summary: how bad, where, since when, who owns it.
    let sum = &all.summary;
    assert_eq!(sum.by_severity.values().sum::<u32>(), all.total);
    assert_eq!(sum.by_severity.get(&api::DriftSeverity::Critical), Some(&1));
    assert!(sum.worst_since.is_some());
    assert_eq!(sum.namespaces[0].worst, Some(api::DriftSeverity::Critical));
    assert!(
        all.items
            .iter()
            .all(|i| i.first_seen.is_some() && i.owner == i.namespace)
    );

    // Paging.
    let p1 = drift(&f.state, "?per_page=2").await;
    let p2 = drift(&f.state, "?per_page=2&page=2").await;
    assert_eq!((p1.items.len(), p1.total, p2.page), (2, all.total, 2));
    assert_eq!(p2.items[0].key, all.items[2].key);
    // Filters: severity, kind, namespace, search.
    let high = drift(&f.state, "?severity=critical,high").await;
    assert!(
        high.items
            .iter()
            .all(|i| i.severity >= api::DriftSeverity::High)
    );
    let critical = drift(&f.state, "?severity=critical").await;
    assert_eq!(critical.total, 1);
    let labels = drift(&f.state, "?kind=missing-label").await;
    assert_eq!(labels.total, 1);
    let platform = drift(&f.state, "?namespace=platform").await;
    assert!(platform.total >= 1 && platform.total < all.total);
    let search = drift(&f.state, "?q=allow-backup").await;
    assert_eq!(search.total, 1, "{:#?}", search.items);
    assert_eq!(
        search.items[0].key,
        "undeclared/platform/allow-backup-to-ledger"
    );
    // Sorting, and a reversed one.
    let by_edges = drift(&f.state, "?sort=edges&per_page=100").await;
    assert!(
        by_edges
            .items
            .windows(2)
            .all(|w| w[0].edges.len() >= w[1].edges.len())
    );
    let mild_first = drift(&f.state, "?sort=-severity&per_page=100").await;
    assert_eq!(
        mild_first.items.last().map(|i| &i.key),
        all.items.first().map(|i| &i.key)
    );
    // Bad values are 400s that say why.
    for q in ["?severity=warning", "?kind=nope", "?sort=colour"] {
        let (s, b) = get(&f.state, &format!("/api/drift{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        let e: api::ErrorBody = json(&b);
        assert!(!e.error.is_empty());
    }
}

#[tokio::test]
async fn drift_owner_comes_from_the_configured_label() {
    let (_dir, state) = synced(|s| s.owner_label = Some("team".into()), demo::objects()).await;
    let r = drift(&state, "?per_page=100").await;
    let cart = r
        .items
        .iter()
        .find(|i| i.namespace == "storefront")
        .expect("a storefront item");
    assert_eq!(cart.owner, "web-team");
    assert!(r.summary.owners.iter().any(|o| o.name == "platform-team"));
    let only = drift(&state, "?owner=payments-team").await;
    assert!(only.total >= 1 && only.items.iter().all(|i| i.owner == "payments-team"));
}

#[tokio::test]
async fn a_drift_fix_is_offered_once_the_what_if_shows_it_safe_and_resolves_the_item() {
    let f = fixture().await;
    let key = "undeclared/storefront/allow-catalog-from-anywhere";
    let (s, b) = get(&f.state, &format!("/api/drift/item?key={key}")).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let item: api::DriftItem = json(&b);
    let verdict = item.fix.verdict.clone().expect("checked");
    assert!(
        verdict.safe
            && verdict.resolved
            && verdict.blocked.is_empty()
            && verdict.newly_open.is_empty(),
        "{verdict:?}"
    );
    assert_eq!(item.fix.kind, Some(api::FixKind::Intents));
    // Merged ClientIntents: the checkout client's intents keep their name and current targets.
    assert!(
        item.fix.draft.contains("kind: ClientIntents"),
        "{}",
        item.fix.draft
    );
    assert!(
        item.fix.draft.contains("name: checkout"),
        "{}",
        item.fix.draft
    );
    assert!(
        item.fix.draft.contains("name: payments"),
        "current targets kept: {}",
        item.fix.draft
    );
    assert!(
        item.fix.draft.contains("name: catalog"),
        "{}",
        item.fix.draft
    );
    // The draft form holds each client's merged intents whole: auth's, and checkout's with its
    // internet target as a row of its own (never dropped: a draft that replaced it would delete
    // a declared call).
    let auth = item
        .fix
        .forms
        .iter()
        .find(|f| f.client.starts_with("platform/auth"))
        .expect("auth's intents as a form");
    assert!(auth.targets.iter().any(|t| t.name == "catalog"));
    assert!(auth.targets.len() >= 2, "{auth:?}");
    let checkout = item
        .fix
        .forms
        .iter()
        .find(|f| f.client.starts_with("checkout/checkout"))
        .expect("checkout's intents as a form");
    assert!(
        checkout
            .targets
            .iter()
            .any(|t| t.internet && t.name == "203.0.113.10" && t.ports == "443"),
        "{checkout:?}"
    );
    // Evaluated through the what-if endpoint, the draft makes the catalog calls enforced.
    let body = serde_json::to_vec(&api::WhatIfRequest {
        yaml: item.fix.draft.clone(),
    })
    .unwrap();
    let (s, b) = call(
        &f.state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let w: api::WhatIfResponse = json(&b);
    for e in item.edges.iter() {
        let c = w
            .changes
            .iter()
            .find(|c| c.source == e.source && c.target == e.target)
            .unwrap_or_else(|| panic!("{} → {} unchanged", e.source, e.target));
        assert_eq!(c.after, Some(api::EdgeState::Enforced));
    }
    // A policy patch is shown as a diff against the live policy.
    let (_, b) = get(
        &f.state,
        "/api/drift/item?key=modified-policy/checkout/payments-access",
    )
    .await;
    let patch: api::DriftItem = json(&b);
    assert_eq!(patch.fix.kind, Some(api::FixKind::PolicyPatch));
    // The hand-added rule admitting storefront is what the patch removes.
    let removed: Vec<&str> = patch
        .fix
        .diff
        .lines()
        .filter(|l| l.starts_with('-'))
        .collect();
    assert!(
        removed.iter().any(|l| l.contains("storefront")),
        "{}",
        patch.fix.diff
    );
    assert!(
        patch
            .fix
            .diff
            .lines()
            .any(|l| l.starts_with(' ') && l.contains("payments-access"))
    );
    // Unknown items are 404s.
    let (s, _) = get(&f.state, "/api/drift/item?key=nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn post_json(
    state: &SharedState,
    uri: &str,
    body: &impl serde::Serialize,
) -> (StatusCode, axum::body::Bytes) {
    call(
        state,
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_acknowledged_item_stays_acknowledged_across_resyncs_until_its_cause_goes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accord.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let state = Arc::new(AppState::new(store.clone(), "demo".into()));
    let mut syncer = Syncer::new(store.clone(), "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    idx.reset_all(demo::objects());
    let idx = Arc::new(idx);
    state.publish(syncer.pass(idx.clone()).await.unwrap());
    let key = "undeclared/platform/allow-backup-to-ledger";
    let before = drift(&state, "").await;

    let (s, _) = post_json(
        &state,
        "/api/drift/ack",
        &api::AckRequest {
            key: key.into(),
            reason: "  ".into(),
        },
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post_json(
        &state,
        "/api/drift/ack",
        &api::AckRequest {
            key: "nope".into(),
            reason: "x".into(),
        },
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = post_json(
        &state,
        "/api/drift/ack",
        &api::AckRequest {
            key: key.into(),
            reason: "nightly backup, approved by the DBA team".into(),
        },
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let acked: api::DriftItem = json(&b);
    assert_eq!(
        acked.acknowledged.as_ref().map(|a| a.reason.as_str()),
        Some("nightly backup, approved by the DBA team")
    );

    // Hidden by default, listed on request, counted in the summary.
    let after = drift(&state, "").await;
    assert_eq!(after.total, before.total - 1);
    assert_eq!(after.summary.acknowledged, 1);
    let with = drift(&state, "?acknowledged=true&per_page=100").await;
    assert_eq!(with.total, before.total);
    assert!(
        with.items
            .iter()
            .find(|i| i.key == key)
            .is_some_and(|i| i.acknowledged.is_some())
    );

    // A resync (same cause) and a restart (acknowledgements read back from SQLite) keep it.
    state.publish(syncer.pass(idx.clone()).await.unwrap());
    *state.acks.write().unwrap() = store.drift_acks().await.unwrap();
    assert_eq!(drift(&state, "").await.total, before.total - 1);
    let restarted = Arc::new(AppState::new(store.clone(), "demo".into()));
    *restarted.acks.write().unwrap() = store.drift_acks().await.unwrap();
    restarted.publish(syncer.pass(idx.clone()).await.unwrap());
    assert_eq!(drift(&restarted, "").await.summary.acknowledged, 1);

    // The cause goes (the policy is deleted): the acknowledgement goes with it.
    let mut objects = demo::objects();
    objects.retain(|(_, o)| o["metadata"]["name"] != "allow-backup-to-ledger");
    let mut changed = Index::default();
    changed.reset_all(objects);
    state.publish(syncer.pass(Arc::new(changed)).await.unwrap());
    assert!(store.drift_acks().await.unwrap().is_empty());

    // Withdrawing an acknowledgement that is not there is a 404.
    let (s, _) = call(
        &state,
        Request::delete(format!("/api/drift/ack?key={key}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

const DRAFT: &str = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata:\n  name: search\n  namespace: storefront\nspec:\n  workload:\n    name: search\n    kind: Deployment\n  targets:\n    - kubernetes:\n        name: ledger-db.platform\n        kind: StatefulSet\n";

#[tokio::test]
async fn what_if_reports_changed_edges_and_rejects_bad_drafts() {
    let f = fixture().await;
    let body = serde_json::to_vec(&api::WhatIfRequest { yaml: DRAFT.into() }).unwrap();
    let (s, b) = call(
        &f.state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let r: api::WhatIfResponse = json(&b);
    assert!(r.ok);
    assert!(
        r.changes
            .iter()
            .any(|c| c.source == "storefront/search[Deployment]"
                && c.target == "platform/ledger-db[StatefulSet]"
                && c.after == Some(api::EdgeState::Enforced))
    );

    // Raw YAML works too; a malformed draft is a 422 with field-level diagnostics.
    let (s, b) = call(
        &f.state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(
                DRAFT.replace("name: search\n    kind", "name: 12\n    kind: ["),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let e: api::ErrorBody = json(&b);
    assert!(!e.diagnostics.unwrap().is_empty());

    let (s, b) = call(
        &f.state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(
                DRAFT
                    .replace("    kind: Deployment\n  targets", "  targets")
                    .replace("  workload:\n    name: search\n", "  workload: {}\n"),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let e: api::ErrorBody = json(&b);
    assert!(
        e.diagnostics
            .unwrap()
            .iter()
            .any(|d| d.field.starts_with("spec.workload"))
    );
    // The dashboard reads the 422 answer through the same function, and keeps the draft's
    // diagnostics with their codes (it once read a what-if response and lost them).
    let read = api::WhatIfResponse::from_http(s.as_u16(), std::str::from_utf8(&b).unwrap())
        .expect("a 422 answer is a what-if response with ok: false");
    assert!(!read.ok);
    assert!(
        read.diagnostics
            .iter()
            .any(|d| d.code == api::DiagnosticCode::MissingField
                && d.field.starts_with("spec.workload")),
        "{:?}",
        read.diagnostics
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let f = fixture().await;
    let big = "#".repeat(super::BODY_LIMIT + 10);
    let (s, _) = call(
        &f.state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn drafts_are_saved_listed_fetched_exported_and_deleted() {
    let f = fixture().await;
    let new = serde_json::to_vec(&api::NewDraft {
        name: "search to ledger".into(),
        yaml: DRAFT.into(),
    })
    .unwrap();
    let (s, b) = call(
        &f.state,
        Request::post("/api/drafts")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(new))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let d: api::Draft = json(&b);
    let (_, b) = get(&f.state, "/api/drafts").await;
    let list: api::DraftList = json(&b);
    assert_eq!(list.drafts.len(), 1);
    let (s, b) = get(&f.state, &format!("/api/drafts/{}", d.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json::<api::Draft>(&b).yaml, DRAFT);
    let (s, b) = get(&f.state, &format!("/api/drafts/{}/export", d.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&b[..], DRAFT.as_bytes());
    // Applying is off for the demo.
    let (s, _) = call(
        &f.state,
        Request::post(format!("/api/drafts/{}/apply", d.id))
            .header(header::AUTHORIZATION, "Bearer x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &f.state,
        Request::delete(format!("/api/drafts/{}", d.id))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = get(&f.state, &format!("/api/drafts/{}", d.id)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &f.state,
        Request::post("/api/drafts")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"name\": \"\", \"yaml\": \"\"}"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn overview_ranks_namespaces_worst_first_and_counts_each_call_once() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/graph/overview").await;
    assert_eq!(s, StatusCode::OK);
    let o: api::Overview = json(&b);
    let (_, g) = get(
        &f.state,
        "/api/graph?state=enforced,blocked,unprotected,undeclared,open",
    )
    .await;
    let g: api::Graph = json(&g);
    assert_eq!(o.workloads as usize, g.nodes.len());
    assert_eq!(o.calls.total() as usize, g.edges.len());
    // Each call counted once as internal or outbound, and once as internal or inbound.
    let out: u32 = o
        .namespaces
        .iter()
        .map(|n| n.internal.total() + n.outbound.total())
        .sum();
    let inc: u32 = o
        .namespaces
        .iter()
        .map(|n| n.internal.total() + n.inbound.total())
        .sum();
    assert_eq!((out as usize, inc as usize), (g.edges.len(), g.edges.len()));
    assert!(
        o.namespaces
            .windows(2)
            .all(|w| w[0].badness() >= w[1].badness()),
        "worst first: {:?}",
        o.namespaces
            .iter()
            .map(|n| (&n.namespace, n.badness()))
            .collect::<Vec<_>>()
    );
    // The demo's blocked call (storefront/cart → platform/auth) puts a namespace with a blocked
    // call at the top.
    assert!(o.namespaces[0].all().blocked > 0, "{:?}", o.namespaces[0]);
    let platform = o
        .namespaces
        .iter()
        .find(|n| n.namespace == "platform")
        .unwrap();
    assert!(platform.inbound.blocked > 0 && platform.peers > 0);
    let (_, b) = get(&f.state, "/api/workloads").await;
    let ids: Vec<String> = json(&b);
    assert_eq!(ids.len(), g.nodes.len());
    assert!(ids.contains(&"storefront/cart[Deployment]".to_string()));
}

#[tokio::test]
async fn a_blocked_call_is_explained_in_plain_words_with_its_cause() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/workloads/storefront/cart").await;
    assert_eq!(s, StatusCode::OK);
    let d: api::WorkloadDetail = json(&b);
    let e = d
        .callees
        .iter()
        .find(|e| e.edge.target == "platform/auth[Deployment]")
        .expect("cart → auth");
    let x = &e.explanation;
    assert!(
        x.in_words.starts_with(
            "cart cannot call platform/auth, although its intents storefront/cart declare it"
        ),
        "{}",
        x.in_words
    );
    assert!(
        x.in_words
            .contains("Why: The pods of storefront/cart[Deployment] lack the access label"),
        "{}",
        x.in_words
    );
    assert_eq!(
        x.cause.as_deref(),
        Some("missing-label/storefront/cart[Deployment]")
    );
    // The policy-level wording is still there for the detail.
    assert!(x.summary.contains("spec.targets"));
    // An enforced call says who lets it in.
    let ok = d
        .callees
        .iter()
        .find(|e| e.edge.state == api::EdgeState::Enforced)
        .expect("an enforced call");
    assert!(
        ok.explanation.in_words.contains(" may call "),
        "{}",
        ok.explanation.in_words
    );
}

#[tokio::test]
async fn the_first_sync_is_one_initial_sync_entry_not_one_per_edge() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/history?limit=5").await;
    assert_eq!(s, StatusCode::OK);
    let p: api::HistoryPage = json(&b);
    assert_eq!(p.entries.len(), 1, "{:?}", p.entries);
    let e = &p.entries[0];
    assert_eq!(e.change, api::ChangeKind::InitialSync);
    assert!(e.source.is_empty() && e.target.is_empty());
    let (_, g) = get(
        &f.state,
        "/api/graph?state=enforced,blocked,unprotected,undeclared,open",
    )
    .await;
    let g: api::Graph = json(&g);
    assert_eq!(e.by, vec![format!("{} calls found", g.edges.len())]);
    assert!(p.next_before.is_none());
    // No per-edge entries: a workload's history starts empty.
    let (_, b) = get(
        &f.state,
        "/api/history?workload=storefront/cart%5BDeployment%5D",
    )
    .await;
    let p: api::HistoryPage = json(&b);
    assert!(p.entries.is_empty(), "{:?}", p.entries);
}

#[tokio::test]
async fn exports_health_metrics_and_openapi() {
    let f = fixture().await;
    let (s, b) = get(&f.state, "/api/export/intents").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("kind: ClientIntents"));
    let (s, b) = get(&f.state, "/api/export/policies").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("kind: NetworkPolicy"));
    let (s, b) = get(&f.state, "/api/export/graph").await;
    assert_eq!(s, StatusCode::OK);
    let g: api::Graph = json(&b);
    // The export is the whole graph, open edges included, and its counts add up.
    let (_, all) = get(&f.state, "/api/graph?state=all").await;
    let all: api::Graph = json(&all);
    assert_eq!(g.edges, all.edges);
    let open = g
        .edges
        .iter()
        .filter(|e| e.state == api::EdgeState::Open)
        .count();
    assert!(open > 0, "the demo has default-allow edges");
    assert_eq!(g.counts.open as usize, open);
    assert_eq!(g.counts.total() as usize, g.edges.len());
    assert_eq!(get(&f.state, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&f.state, "/readyz").await.0, StatusCode::OK);
    let (_, b) = get(&f.state, "/metrics").await;
    let text = String::from_utf8_lossy(&b);
    assert!(text.contains("sync_passes_total 1"), "{text}");
    let (s, b) = get(&f.state, "/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = json(&b);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/graph",
        "/api/graph/overview",
        "/api/workloads",
        "/api/workloads/{namespace}/{name}",
        "/api/drift",
        "/api/drift/item",
        "/api/drift/ack",
        "/api/what-if",
        "/api/intents",
        "/api/targets",
        "/api/drafts",
        "/api/drafts/{id}",
        "/api/drafts/{id}/export",
        "/api/drafts/{id}/apply",
        "/api/history",
        "/api/object",
        "/api/export/intents",
        "/api/export/policies",
        "/api/export/graph",
        "/api/events",
        "/api/status",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} not documented");
    }
    let (s, b) = get(&f.state, "/api/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(json::<api::ErrorBody>(&b).error.contains("openapi"));
}

#[tokio::test]
async fn not_ready_before_the_first_sync_and_placeholder_page_without_assets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db").to_str().unwrap())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(store, "demo".into()));
    assert_eq!(
        get(&state, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (s, b) = get(&state, "/some/client/route").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&b).contains("scripts/run.sh"));
    let (s, _) = call(
        &state,
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(DRAFT))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn assets_are_served_with_index_html_for_client_routes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<html>app</html>").unwrap();
    std::fs::write(dir.path().join("app.js"), "js").unwrap();
    let store = Store::open(":memory:").await.unwrap();
    let mut state = AppState::new(store, "demo".into());
    state.assets = Some(dir.path().to_path_buf());
    let state = Arc::new(state);
    let (s, b) = get(&state, "/app.js").await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"js"[..]));
    let (s, b) = get(&state, "/graph/storefront").await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"<html>app</html>"[..]));
    let (_, b) = get(&state, "/../../etc/passwd").await;
    assert_eq!(&b[..], b"<html>app</html>");
}

#[tokio::test]
async fn a_second_pass_logs_granted_and_revoked_access_by_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("accord.db").to_str().unwrap())
        .await
        .unwrap();
    let mut syncer = Syncer::new(store.clone(), "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    idx.reset_all(demo::objects());
    syncer.pass(Arc::new(idx.clone())).await.unwrap();
    // Delete the hand-written policy that lets every namespace call the catalog.
    idx.delete("NetworkPolicy", "storefront", "allow-catalog-from-anywhere");
    let outcome = syncer.pass(Arc::new(idx)).await.unwrap();
    assert!(outcome.changed > 0);
    let page = store
        .history(&api::HistoryQuery {
            workload: Some("storefront/catalog[Deployment]".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let revoked = page
        .entries
        .iter()
        .find(|e| {
            e.change == api::ChangeKind::Revoked && e.source == "platform/ledger-backup[CronJob]"
        })
        .unwrap_or_else(|| panic!("{:#?}", page.entries));
    assert!(
        revoked
            .by
            .iter()
            .any(|b| b == "NetworkPolicy storefront/allow-catalog-from-anywhere"),
        "{:?}",
        revoked.by
    );
    // A restarted syncer reads the stored edges: an identical pass changes nothing.
    let mut again = Syncer::new(store.clone(), "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    idx.reset_all(demo::objects());
    idx.delete("NetworkPolicy", "storefront", "allow-catalog-from-anywhere");
    let outcome = again.pass(Arc::new(idx)).await.unwrap();
    assert_eq!(outcome.changed, 0);
}

#[tokio::test]
async fn metrics_time_requests_by_route_and_sync_phases_as_histograms() {
    let f = fixture().await;
    assert_eq!(
        get(&f.state, "/api/workloads/storefront/cart").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&f.state, "/api/graph?state=bogus").await.0,
        StatusCode::BAD_REQUEST
    );
    let res = router(f.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    for line in [
        // The matched route, not the path: one series per route.
        "http_requests_total{route=\"/api/workloads/{namespace}/{name}\",method=\"GET\",status=\"200\"} 1\n",
        "http_requests_total{route=\"/api/graph\",method=\"GET\",status=\"400\"} 1\n",
        "http_request_duration_seconds_count{route=\"/api/workloads/{namespace}/{name}\",method=\"GET\",status_class=\"2xx\"} 1\n",
        "http_request_duration_seconds_bucket{route=\"/api/graph\",method=\"GET\",status_class=\"4xx\",le=\"+Inf\"} 1\n",
        "sync_duration_seconds_count 1\n",
        "sync_phase_duration_seconds_count{phase=\"analysis\"} 1\n",
        "sync_phase_duration_seconds_count{phase=\"write\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }

    // Prometheus asks for OpenMetrics and gets it.
    let res = router(f.state.clone())
        .oneshot(
            Request::get("/metrics")
                .header(header::ACCEPT, "application/openmetrics-text;version=1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).ends_with("# EOF\n"));
}
mod web;

#[test]
fn a_probe_answering_not_ready_is_not_logged_as_a_server_failure() {
    use tower_http::classify::{ClassifiedResponse, ClassifyResponse, MakeClassifier};
    let failed = |path: &str, status: StatusCode| {
        let req = Request::get(path).body(()).unwrap();
        let res = axum::http::Response::builder()
            .status(status)
            .body(())
            .unwrap();
        match super::ProbesAnswer
            .make_classifier(&req)
            .classify_response(&res)
        {
            ClassifiedResponse::Ready(r) => r.is_err(),
            ClassifiedResponse::RequiresEos(_) => unreachable!("every response is classified"),
        }
    };
    assert!(!failed("/readyz", StatusCode::SERVICE_UNAVAILABLE));
    assert!(!failed("/healthz", StatusCode::OK));
    assert!(failed("/api/graph", StatusCode::SERVICE_UNAVAILABLE));
    assert!(failed("/api/what-if", StatusCode::INTERNAL_SERVER_ERROR));
    assert!(!failed("/api/graph", StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn one_stored_policy_or_intents_as_yaml_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("accord.db").to_str().unwrap())
        .await
        .unwrap();
    let state = Arc::new(AppState::new(store.clone(), "demo".into()));
    let mut syncer = Syncer::new(store, "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    let mut objects = demo::objects();
    // A Secret in the source (a manifest tree may hold one): never served.
    objects.push((
        accord_policy::Origin::default(),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "checkout"}, "data": {"password": "aHVudGVyMg=="}}),
    ));
    idx.reset_all(objects);
    assert!(idx.get("Secret", "checkout", "db").is_some());
    state.publish(syncer.pass(Arc::new(idx)).await.unwrap());

    let res = router(state.clone())
        .oneshot(
            Request::get("/api/object?kind=ClientIntents&namespace=checkout&name=payments")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/yaml");
    let b = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains("kind: ClientIntents")
            && text.contains("name: payments")
            && text.contains("namespace: checkout")
            && text.contains("ledger-db.platform"),
        "{text}"
    );
    let (s, b) = get(
        &state,
        "/api/object?kind=NetworkPolicy&namespace=platform&name=auth-access",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains("kind: NetworkPolicy") && text.contains("name: auth-access"),
        "{text}"
    );

    for uri in [
        "/api/object?kind=NetworkPolicy&namespace=platform&name=no-such-policy",
        "/api/object?kind=ClientIntents&namespace=platform&name=payments",
        "/api/object?kind=Secret&namespace=checkout&name=db",
    ] {
        let (s, b) = get(&state, uri).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
        let body = String::from_utf8_lossy(&b);
        assert!(!body.contains("aHVudGVyMg"), "{body}");
        assert!(json::<api::ErrorBody>(&b).error.contains("no "), "{body}");
    }
    let (s, _) = get(&state, "/api/object?kind=ClientIntents&name=payments").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
