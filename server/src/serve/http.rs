//! The HTTP API: `router(state)` serves the JSON API (types from `accord-api`), server-sent
//! events, health, metrics, the OpenAPI document and the built frontend.
//!
//! Graph, workload and drift answers come from the in-memory view of the last sync pass (loaded
//! from SQLite at start); history and drafts from SQLite. Errors are `ErrorBody` JSON: a useful
//! message for 4xx, a generic one for 5xx whose cause is logged.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use accord_api as api;
use accord_policy::{Evaluator, Naming, Peer, WorkloadId};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;

use super::sync::View;
use super::{SharedState, now_rfc3339, store, what_if};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the draft has errors")]
    Unprocessable(Vec<api::Diagnostic>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Error::NotFound(m) => (
                StatusCode::NOT_FOUND,
                api::ErrorBody {
                    error: m,
                    diagnostics: None,
                },
            ),
            Error::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                api::ErrorBody {
                    error: m,
                    diagnostics: None,
                },
            ),
            Error::Unprocessable(d) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                api::ErrorBody {
                    error: "the draft has errors".into(),
                    diagnostics: Some(d),
                },
            ),
            Error::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                api::ErrorBody {
                    error: m,
                    diagnostics: None,
                },
            ),
            Error::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                api::ErrorBody {
                    error: m,
                    diagnostics: None,
                },
            ),
            Error::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                api::ErrorBody {
                    error: m,
                    diagnostics: None,
                },
            ),
            e @ (Error::Store(_) | Error::Internal(_)) => {
                tracing::error!(error = %e, "internal error answering a request");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    api::ErrorBody {
                        error: "internal error; see the server log".into(),
                        diagnostics: None,
                    },
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The router of the whole backend.
pub fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/status", get(status))
        .route("/api/graph", get(graph))
        .route("/api/workloads/{namespace}/{name}", get(workload))
        .route("/api/drift", get(drift))
        .route("/api/what-if", post(post_what_if))
        .route("/api/drafts", get(list_drafts).post(create_draft))
        .route(
            "/api/drafts/{id}",
            get(get_draft).put(update_draft).delete(delete_draft),
        )
        .route("/api/drafts/{id}/export", get(export_draft))
        .route("/api/drafts/{id}/apply", post(apply_draft))
        .route("/api/history", get(history))
        .route("/api/export/intents", get(export_intents))
        .route("/api/export/policies", get(export_policies))
        .route("/api/export/graph", get(export_graph))
        .route("/api/events", get(events))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    api.fallback(static_files)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

async fn track(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "static".to_string());
    let res = next.run(req).await;
    state.metrics.record_http(
        &route,
        &method,
        res.status().as_u16(),
        t.elapsed().as_secs_f64(),
    );
    res
}

async fn api_not_found() -> Error {
    Error::NotFound("no such API endpoint; see /api/openapi.json".into())
}

async fn readyz(State(state): State<SharedState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first sync not done yet\n").into_response()
    }
}

async fn metrics(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    state.metrics.scrape(&headers)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn status(State(state): State<SharedState>) -> Json<api::Status> {
    let view = state.view();
    Json(api::Status {
        source: state.source.clone(),
        ready: state.ready.load(Ordering::Acquire),
        synced_at: view.synced_at.clone(),
        syncs: state.syncs.load(Ordering::Relaxed),
        workloads: view.nodes.len() as u32,
        edges: view.edges.len() as u32,
        diagnostics: view.diagnostics.clone(),
        apply_enabled: state.apply.is_some() && state.kube.is_some(),
        settings: view.settings.options.clone(),
        settings_source: view.settings.source.clone(),
    })
}

fn split_list(s: &Option<String>) -> Option<BTreeSet<String>> {
    s.as_ref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
}

fn parse_states(q: &Option<String>) -> Result<BTreeSet<api::EdgeState>> {
    match split_list(q) {
        None => Ok(api::EdgeState::ALL
            .into_iter()
            .filter(|s| *s != api::EdgeState::Open)
            .collect()),
        Some(set) if set.contains("all") => Ok(api::EdgeState::ALL.into_iter().collect()),
        Some(set) => set
            .iter()
            .map(|s| {
                s.parse::<api::EdgeState>()
                    .map_err(|e| Error::BadRequest(format!("{e}; or use all")))
            })
            .collect(),
    }
}

/// The graph a query selects.
pub fn select_graph(view: &View, q: &api::GraphQuery) -> Result<api::Graph> {
    let states = parse_states(&q.state)?;
    let namespaces = split_list(&q.namespace);
    let in_ns = |id: &str| match &namespaces {
        None => true,
        Some(set) => set.contains(id.split('/').next().unwrap_or("")),
    };
    let edge_ok = |i: usize| {
        let e = &view.edges[i];
        states.contains(&e.state) && (in_ns(&e.source) || in_ns(&e.target))
    };
    let mut node_ids: BTreeSet<&str> = BTreeSet::new();
    let mut edges: Vec<usize> = Vec::new();
    if let Some(root) = &q.workload {
        if view.node(root).is_none() {
            return Err(Error::NotFound(format!("no workload {root}")));
        }
        let depth = q.depth.unwrap_or(1).min(10);
        let mut seen: HashSet<&str> = HashSet::new();
        let mut queue: VecDeque<(&str, u32)> = VecDeque::new();
        seen.insert(root.as_str());
        queue.push_back((root.as_str(), 0));
        let mut edge_set: BTreeSet<usize> = BTreeSet::new();
        while let Some((id, d)) = queue.pop_front() {
            if d >= depth {
                continue;
            }
            let out = view.out_edges.get(id).into_iter().flatten();
            let inc = view.in_edges.get(id).into_iter().flatten();
            for &i in out.chain(inc) {
                if !edge_ok(i) {
                    continue;
                }
                edge_set.insert(i);
                let e = &view.edges[i];
                let other = if e.source == id { &e.target } else { &e.source };
                if seen.insert(other.as_str()) {
                    queue.push_back((other.as_str(), d + 1));
                }
            }
        }
        // Edges among the visited nodes at the border are included too.
        for &id in &seen {
            for &i in view.out_edges.get(id).into_iter().flatten() {
                if edge_ok(i) && seen.contains(view.edges[i].target.as_str()) {
                    edge_set.insert(i);
                }
            }
        }
        node_ids.extend(seen.iter().copied());
        edges.extend(edge_set);
    } else {
        for (i, _) in view.edges.iter().enumerate() {
            if edge_ok(i) {
                edges.push(i);
            }
        }
        for n in &view.nodes {
            if in_ns(&n.id) {
                node_ids.insert(n.id.as_str());
            }
        }
        for &i in &edges {
            node_ids.insert(view.edges[i].source.as_str());
            node_ids.insert(view.edges[i].target.as_str());
        }
    }
    let mut counts = api::StateCounts::default();
    let edges: Vec<api::Edge> = edges
        .into_iter()
        .map(|i| {
            counts.add(view.edges[i].state, 1);
            view.edges[i].clone()
        })
        .collect();
    let nodes = node_ids
        .into_iter()
        .filter_map(|id| view.node(id).map(|i| view.nodes[i].clone()))
        .collect();
    Ok(api::Graph {
        nodes,
        edges,
        counts,
        synced_at: view.synced_at.clone(),
    })
}

/// The graph aggregated to namespaces.
pub fn namespace_graph(view: &View, g: &api::Graph) -> api::NamespaceGraph {
    let mut nodes: BTreeMap<String, api::NamespaceNode> = BTreeMap::new();
    for n in &g.nodes {
        let e = nodes
            .entry(n.namespace.clone())
            .or_insert_with(|| api::NamespaceNode {
                id: n.namespace.clone(),
                ..Default::default()
            });
        e.workloads += 1;
    }
    let mut edges: BTreeMap<(String, String), api::StateCounts> = BTreeMap::new();
    let ns = |id: &str| id.split('/').next().unwrap_or("").to_string();
    for e in &g.edges {
        let (s, t) = (ns(&e.source), ns(&e.target));
        if let Some(n) = nodes.get_mut(&t) {
            n.counts.add(e.state, 1);
        }
        edges.entry((s, t)).or_default().add(e.state, 1);
    }
    api::NamespaceGraph {
        nodes: nodes.into_values().collect(),
        edges: edges
            .into_iter()
            .map(|((source, target), counts)| api::NamespaceEdge {
                source,
                target,
                counts,
            })
            .collect(),
        synced_at: view.synced_at.clone(),
    }
}

fn json_bytes(bytes: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

async fn graph(
    State(state): State<SharedState>,
    Query(q): Query<api::GraphQuery>,
) -> Result<Response> {
    let view = state.view();
    let level = q.level.as_deref().unwrap_or("workload");
    if level != "workload" && level != "namespace" {
        return Err(Error::BadRequest(format!(
            "unknown level {level:?}; use workload or namespace"
        )));
    }
    // The unfiltered graphs are what the dashboard asks for most: serialize each once per pass.
    let plain = q.namespace.is_none() && q.state.is_none() && q.workload.is_none();
    if plain {
        let bytes = if level == "workload" {
            view.default_graph.get_or_init(|| {
                let g = select_graph(&view, &q).unwrap_or_default();
                Bytes::from(serde_json::to_vec(&g).unwrap_or_default())
            })
        } else {
            view.namespace_graph.get_or_init(|| {
                let g = select_graph(&view, &q).unwrap_or_default();
                Bytes::from(serde_json::to_vec(&namespace_graph(&view, &g)).unwrap_or_default())
            })
        };
        return Ok(json_bytes(bytes.clone()));
    }
    // Every other query is served from the pass's cache too, once computed.
    let bytes = view.cached_graph(&q, level, || {
        let g = select_graph(&view, &q)?;
        Ok::<_, Error>(Bytes::from(if level == "namespace" {
            serde_json::to_vec(&namespace_graph(&view, &g)).unwrap_or_default()
        } else {
            serde_json::to_vec(&g).unwrap_or_default()
        }))
    })?;
    Ok(json_bytes(bytes))
}

fn rule_ref(a: &accord_policy::evaluate::Admission) -> api::RuleRef {
    api::RuleRef {
        policy: a.rule.policy.to_string(),
        direction: a.rule.direction.to_string(),
        index: a.rule.index as u32,
        ports: a.conns.to_string(),
    }
}

/// Add the evaluator's rule-level explanation to an edge's stored one.
fn explain_fully(
    evaluator: &Evaluator<'_>,
    edge: &api::Edge,
    base: &api::EdgeExplanation,
) -> api::EdgeExplanation {
    let mut x = base.clone();
    let (Some(s), Some(t)) = (
        WorkloadId::parse(&edge.source, "default"),
        WorkloadId::parse(&edge.target, "default"),
    ) else {
        return x;
    };
    if let Some(e) = evaluator.explain(&Peer::Workload(s), &Peer::Workload(t), Naming::Workload) {
        x.ingress_isolated_by = e
            .ingress
            .isolated_by
            .iter()
            .map(|p| p.to_string())
            .collect();
        x.ingress_admitted_by = e.ingress.admitted_by.iter().map(rule_ref).collect();
        x.egress_isolated_by = e.egress.isolated_by.iter().map(|p| p.to_string()).collect();
        x.egress_admitted_by = e.egress.admitted_by.iter().map(rule_ref).collect();
        x.admin = e
            .ingress
            .admin
            .iter()
            .chain(&e.egress.admin)
            .map(|a| a.to_string())
            .collect();
    }
    x
}

/// Explain at most this many edges of a workload with the evaluator; the rest keep the stored
/// explanation.
const FULL_EXPLANATIONS: usize = 200;

async fn workload(
    State(state): State<SharedState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<api::WorkloadDetail>> {
    let view = state.view();
    let id = format!("{namespace}/{name}");
    let i = view
        .node(&id)
        .or_else(|| {
            // `ns/name` without a kind: the only workload of that name.
            let prefix = format!("{id}[");
            let matches: Vec<usize> = view
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.id.starts_with(&prefix))
                .map(|(i, _)| i)
                .collect();
            (matches.len() == 1).then(|| matches[0])
        })
        .ok_or_else(|| Error::NotFound(format!("no workload {id}")))?;
    let node = view.nodes[i].clone();
    let extra = view.extras.get(i).cloned().unwrap_or_default();
    let view2 = view.clone();
    let node_id = node.id.clone();
    let (callers, callees) = tokio::task::spawn_blocking(move || {
        let view = view2;
        let evaluator = view.inventory.as_deref().map(Evaluator::new);
        let mut budget = FULL_EXPLANATIONS;
        let mut explained = |idx: &[usize]| -> Vec<api::ExplainedEdge> {
            idx.iter()
                .map(|&i| {
                    let edge = view.edges[i].clone();
                    let base = &view.explanations[i];
                    let explanation = match &evaluator {
                        Some(ev) if budget > 0 => {
                            budget -= 1;
                            explain_fully(ev, &edge, base)
                        }
                        _ => base.clone(),
                    };
                    api::ExplainedEdge { edge, explanation }
                })
                .collect()
        };
        let callers = explained(view.in_edges.get(&node_id).map_or(&[][..], |v| v));
        let callees = explained(view.out_edges.get(&node_id).map_or(&[][..], |v| v));
        (callers, callees)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    let mut declared_callers: Vec<api::ObjectRef> = callers
        .iter()
        .flat_map(|c| c.explanation.declared_by.iter().cloned())
        .collect();
    declared_callers
        .sort_by(|a, b| (&a.namespace, &a.name, &a.field).cmp(&(&b.namespace, &b.name, &b.field)));
    declared_callers.dedup();
    let drift = view
        .drift
        .iter()
        .filter(|d| {
            [&d.workload, &d.source, &d.target]
                .into_iter()
                .flatten()
                .any(|w| *w == node.id)
        })
        .cloned()
        .collect();
    Ok(Json(api::WorkloadDetail {
        node,
        callers,
        callees,
        policies: extra.policies,
        intents: extra.intents,
        declared_callers,
        drift,
        labels: extra.labels,
    }))
}

#[derive(Debug, Default, Deserialize)]
struct DriftQuery {
    namespace: Option<String>,
}

async fn drift(
    State(state): State<SharedState>,
    Query(q): Query<DriftQuery>,
) -> Json<api::DriftReport> {
    let view = state.view();
    let namespaces = split_list(&q.namespace);
    let mut groups: BTreeMap<String, Vec<api::DriftItem>> = BTreeMap::new();
    for d in &view.drift {
        if namespaces
            .as_ref()
            .is_some_and(|s| !s.contains(&d.namespace))
        {
            continue;
        }
        groups
            .entry(d.namespace.clone())
            .or_default()
            .push(d.clone());
    }
    let total = groups.values().map(Vec::len).sum::<usize>() as u32;
    Json(api::DriftReport {
        namespaces: groups
            .into_iter()
            .map(|(namespace, items)| api::NamespaceDrift { namespace, items })
            .collect(),
        total,
        synced_at: view.synced_at.clone(),
    })
}

/// A draft body: `{"yaml": "..."}` as JSON, or the YAML/JSON text itself.
fn draft_text(headers: &HeaderMap, body: &Bytes) -> Result<String> {
    let text =
        std::str::from_utf8(body).map_err(|_| Error::BadRequest("the body is not UTF-8".into()))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json && let Ok(req) = serde_json::from_str::<api::WhatIfRequest>(text) {
        return Ok(req.yaml);
    }
    Ok(text.to_string())
}

async fn post_what_if(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::WhatIfResponse>> {
    let text = draft_text(&headers, &body)?;
    let view = state.view();
    if view.inventory.is_none() {
        return Err(Error::Unavailable(
            "the first sync has not finished yet; try again shortly".into(),
        ));
    }
    let r = tokio::task::spawn_blocking(move || what_if::what_if(&view, &text))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    if !r.ok {
        return Err(Error::Unprocessable(r.diagnostics));
    }
    Ok(Json(r))
}

fn parse_new_draft(headers: &HeaderMap, body: &Bytes) -> Result<api::NewDraft> {
    let _ = headers;
    let d: api::NewDraft = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"name\", \"yaml\"}}: {e}")))?;
    if d.name.trim().is_empty() {
        return Err(Error::Unprocessable(vec![api::Diagnostic::error(
            api::DiagnosticCode::MissingField,
            &api::Origin::default(),
            "",
            "name",
            "a draft needs a name",
        )]));
    }
    Ok(d)
}

async fn list_drafts(State(state): State<SharedState>) -> Result<Json<api::DraftList>> {
    Ok(Json(api::DraftList {
        drafts: state.store.drafts().await?,
    }))
}

async fn create_draft(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Draft>)> {
    let d = parse_new_draft(&headers, &body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_draft(&d, &now_rfc3339()).await?),
    ))
}

async fn get_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
) -> Result<Json<api::Draft>> {
    state
        .store
        .draft(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))
}

async fn update_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::Draft>> {
    let d = parse_new_draft(&headers, &body)?;
    state
        .store
        .update_draft(id, &d, &now_rfc3339())
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))
}

async fn delete_draft(State(state): State<SharedState>, Path(id): Path<i64>) -> Result<StatusCode> {
    if state.store.delete_draft(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound(format!("no draft {id}")))
    }
}

fn yaml_download(text: String, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/yaml".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        text,
    )
        .into_response()
}

async fn export_draft(State(state): State<SharedState>, Path(id): Path<i64>) -> Result<Response> {
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))?;
    let safe: String = d
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(yaml_download(d.yaml, &format!("{safe}.yaml")))
}

async fn apply_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<api::ApplyResult>> {
    let (Some(apply), Some(client)) = (&state.apply, &state.kube) else {
        return Err(Error::Forbidden(
            "applying drafts is disabled; start accord serve with --cluster --allow-apply and --apply-token".into(),
        ));
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(apply.token.as_str()) {
        return Err(Error::Unauthorized(
            "a valid bearer token is required".into(),
        ));
    }
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))?;
    let (objects, diags) = what_if::parse_draft(&d.yaml);
    if diags.iter().any(|d| d.is_error()) {
        return Err(Error::Unprocessable(diags));
    }
    let ar = super::cluster::resources()
        .into_iter()
        .find(|(ar, _)| ar.kind == "ClientIntents")
        .map(|(ar, _)| ar)
        .expect("ClientIntents is watched");
    let mut applied = Vec::new();
    for (_, doc) in objects {
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("default")
            .to_string();
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), &ns, &ar);
        api.patch(
            &name,
            &kube::api::PatchParams::apply("accord-dashboard").force(),
            &kube::api::Patch::Apply(&doc),
        )
        .await
        .map_err(|e| Error::Internal(format!("applying ClientIntents {ns}/{name}: {e}")))?;
        tracing::info!(%ns, %name, draft = id, "applied draft");
        applied.push(format!("{ns}/{name}"));
    }
    Ok(Json(api::ApplyResult { applied }))
}

async fn history(
    State(state): State<SharedState>,
    Query(q): Query<api::HistoryQuery>,
) -> Result<Json<api::HistoryPage>> {
    Ok(Json(state.store.history(&q).await?))
}

async fn export_intents(State(state): State<SharedState>) -> Result<Response> {
    let view = state.view();
    let Some(index) = view.index.clone() else {
        return Err(Error::Unavailable(
            "the first sync has not finished yet".into(),
        ));
    };
    let mut out = String::new();
    for ((kind, _, _), e) in index.iter() {
        if kind != "ClientIntents" {
            continue;
        }
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(
            &serde_yaml::to_string(&e.object).map_err(|e| Error::Internal(e.to_string()))?,
        );
    }
    Ok(yaml_download(out, "intents.yaml"))
}

async fn export_policies(State(state): State<SharedState>) -> Result<Response> {
    let view = state.view();
    let Some(inv) = view.inventory.clone() else {
        return Err(Error::Unavailable(
            "the first sync has not finished yet".into(),
        ));
    };
    let text = tokio::task::spawn_blocking(move || {
        let g = accord_policy::generate(&inv, &Default::default());
        accord_policy::render::policies_yaml(&g.policies)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(yaml_download(text, "policies.yaml"))
}

async fn export_graph(State(state): State<SharedState>) -> Result<Response> {
    let view = state.view();
    let g = select_graph(
        &view,
        &api::GraphQuery {
            state: Some("all".into()),
            ..Default::default()
        },
    )?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"graph.json\"",
            ),
        ],
        Json(g),
    )
        .into_response())
}

async fn events(
    State(state): State<SharedState>,
) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>>> {
    let rx = state.events.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let event = Event::default()
                        .event("sync")
                        .json_data(&ev)
                        .unwrap_or_default();
                    return Some((Ok(event), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Accord</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Accord</h1>
<p>The dashboard has not been built. Build and run it with <code>scripts/run.sh</code>,
or point <code>accord serve --assets DIR</code> (or <code>ACCORD_ASSETS</code>) at a built frontend.</p>
<p>The API works meanwhile: <a href="/api/graph">/api/graph</a>, <a href="/api/drift">/api/drift</a>,
<a href="/api/openapi.json">/api/openapi.json</a>.</p>
</body></html>
"#;

async fn static_files(State(state): State<SharedState>, req: Request) -> Response {
    let Some(dir) = state
        .assets
        .clone()
        .filter(|d| d.join("index.html").is_file())
    else {
        return Html(NOT_BUILT).into_response();
    };
    let path = req.uri().path().trim_start_matches('/').to_string();
    // Only plain relative paths inside the assets directory.
    let safe = !path.split('/').any(|c| c == ".." || c.starts_with('.'));
    let file = dir.join(&path);
    let target = if safe && !path.is_empty() && file.is_file() {
        file
    } else {
        dir.join("index.html")
    };
    match tokio::fs::read(&target).await {
        Ok(bytes) => {
            let mime = match target.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("wasm") => "application/wasm",
                Some("css") => "text/css",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                Some("json") => "application/json",
                Some("ico") => "image/x-icon",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        Err(e) => Error::Internal(format!("reading {}: {e}", target.display())).into_response(),
    }
}

#[cfg(test)]
mod tests;
