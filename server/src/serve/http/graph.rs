//! Graph queries: the access graph (whole, filtered, around a workload, per namespace), one
//! workload with its explained edges, and the drift report.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use accord_api as api;
use accord_policy::{Evaluator, Naming, Peer, WorkloadId};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::super::SharedState;
use super::super::sync::View;
use super::{Error, Result};

/// A comma-separated query value as a set (empty items dropped); `None` when absent.
pub(super) fn split_list(s: &Option<String>) -> Option<BTreeSet<String>> {
    s.as_ref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
}

fn parse_states(q: &Option<String>) -> Result<BTreeSet<api::EdgeState>> {
    api::filter::parse_states(q.as_deref()).map_err(Error::BadRequest)
}

/// The graph a query selects.
pub fn select_graph(view: &View, q: &api::GraphQuery) -> Result<api::Graph> {
    // The one edge filter, shared with the dashboard's view.
    let filter = api::filter::EdgeFilter {
        states: parse_states(&q.state)?,
        namespaces: split_list(&q.namespace).unwrap_or_default(),
    };
    let in_ns = |id: &str| filter.in_namespaces(id);
    let edge_ok = |i: usize| filter.keeps(&view.edges[i]);
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
    for e in &g.edges {
        if let Some(n) = nodes.get_mut(api::filter::namespace_of(&e.target)) {
            n.counts.add(e.state, 1);
        }
    }
    let edges = api::filter::namespace_pairs(&g.edges);
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

fn row<'a, 'v>(
    rows: &'a mut BTreeMap<&'v str, api::NamespaceSummary>,
    ns: &'v str,
) -> &'a mut api::NamespaceSummary {
    rows.entry(ns).or_insert_with(|| api::NamespaceSummary {
        namespace: ns.to_string(),
        ..Default::default()
    })
}

/// Every namespace with its calls by state, worst first (see [`api::NamespaceSummary::badness`]).
pub fn overview(view: &View) -> api::Overview {
    let mut rows: BTreeMap<&str, api::NamespaceSummary> = BTreeMap::new();
    let mut peers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for n in &view.nodes {
        row(&mut rows, &n.namespace).workloads += 1;
    }
    let mut calls = api::StateCounts::default();
    for e in &view.edges {
        calls.add(e.state, 1);
        let (s, t) = (
            api::filter::namespace_of(&e.source),
            api::filter::namespace_of(&e.target),
        );
        if s == t {
            row(&mut rows, s).internal.add(e.state, 1);
        } else {
            row(&mut rows, s).outbound.add(e.state, 1);
            row(&mut rows, t).inbound.add(e.state, 1);
            peers.entry(s).or_default().insert(t);
            peers.entry(t).or_default().insert(s);
        }
    }
    let mut namespaces: Vec<api::NamespaceSummary> = rows
        .into_iter()
        .map(|(ns, mut r)| {
            r.peers = peers.get(ns).map_or(0, |p| p.len() as u32);
            r
        })
        .collect();
    namespaces.sort_by(|a, b| {
        b.badness()
            .cmp(&a.badness())
            .then_with(|| a.namespace.cmp(&b.namespace))
    });
    api::Overview {
        namespaces,
        workloads: view.nodes.len() as u32,
        calls,
        synced_at: view.synced_at.clone(),
    }
}

pub(super) async fn get_overview(
    State(state): State<SharedState>,
    Query(q): Query<api::OverviewQuery>,
) -> Result<Json<api::Overview>> {
    let mut o = overview(&state.view());
    let sort = q.sort.as_deref().unwrap_or("worst");
    let key: fn(&api::NamespaceSummary) -> u32 = match sort {
        "worst" => return Ok(Json(o)),
        "internal" => |n| n.internal.total(),
        "workloads" => |n| n.workloads,
        "peers" => |n| n.peers,
        "blocked" => |n| n.all().blocked,
        "unprotected" => |n| n.all().unprotected,
        "undeclared" => |n| n.all().undeclared,
        "open" => |n| n.all().open,
        "enforced" => |n| n.all().enforced,
        _ => {
            return Err(Error::BadRequest(format!(
                "unknown sort {sort:?}; use worst, a state, internal, workloads or peers"
            )));
        }
    };
    // Stable: ties keep the worst-first order.
    o.namespaces.sort_by_key(|n| std::cmp::Reverse(key(n)));
    Ok(Json(o))
}

/// Every workload id, sorted: what the dashboard's search completes from.
pub(super) async fn workload_ids(State(state): State<SharedState>) -> Json<Vec<String>> {
    let view = state.view();
    let mut ids: Vec<String> = view.nodes.iter().map(|n| n.id.clone()).collect();
    ids.sort();
    Json(ids)
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

/// The encoding to send a graph answer in, of those the client accepts: brotli, else gzip
/// (`None`: uncompressed).
fn graph_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepts = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let token = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            token.eq_ignore_ascii_case(name) && !refused
        })
    };
    ["br", "gzip"].into_iter().find(|e| accepts(e))
}

fn compress(bytes: &[u8], encoding: &str) -> Bytes {
    use std::io::Write;
    let mut out = Vec::with_capacity(bytes.len() / 8);
    if encoding == "br" {
        // Quality 5: within a few percent of the best size for JSON, at a fraction of the time.
        let mut w = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
        let _ = w.write_all(bytes);
        drop(w);
    } else {
        let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
        let _ = w.write_all(bytes);
        let _ = w.finish();
    }
    Bytes::from(out)
}

/// A graph answer: compressed once per pass for each encoding (tower-http's compression layer
/// leaves a response that has a `Content-Encoding` alone).
fn graph_response(
    view: &View,
    key: String,
    bytes: Bytes,
    encoding: Option<&'static str>,
) -> Response {
    let Some(encoding) = encoding else {
        return json_bytes(bytes);
    };
    let body = view.compressed_graph(key, encoding, || compress(&bytes, encoding));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_ENCODING, HeaderValue::from_static(encoding)),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn graph(
    State(state): State<SharedState>,
    Query(q): Query<api::GraphQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let encoding = graph_encoding(&headers);
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
        let key = format!("plain|{level}");
        return Ok(graph_response(&view, key, bytes.clone(), encoding));
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
    let key = super::super::sync::graph_key(&q, level);
    Ok(graph_response(&view, key, bytes, encoding))
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

/// A workload's name as a developer says it: `cart`, or `platform/auth` from another namespace.
fn said(id: &str, from_ns: &str) -> String {
    let ns = api::filter::namespace_of(id);
    let rest = id.split_once('/').map_or(id, |(_, r)| r);
    let name = rest.split_once('[').map_or(rest, |(n, _)| n);
    if ns == from_ns {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn names(list: &[String]) -> String {
    list.join(", ")
}

/// The first sentence of a text.
fn first_sentence(s: &str) -> &str {
    s.find(". ").map_or(s, |i| &s[..=i])
}

/// What happens to a call and why, in a developer's words; `cause` is the drift item behind it.
pub fn in_words(e: &api::Edge, x: &api::EdgeExplanation, cause: Option<&api::DriftItem>) -> String {
    let ns = api::filter::namespace_of(&e.source);
    let (client, server) = (said(&e.source, ns), said(&e.target, ns));
    let declared_in = x
        .declared_by
        .first()
        .map(|d| format!("{}/{}", d.namespace, d.name))
        .unwrap_or_default();
    let admitted: Vec<String> = x
        .ingress_admitted_by
        .iter()
        .map(|r| r.policy.clone())
        .collect();
    let mut s = match e.state {
        api::EdgeState::Enforced => format!(
            "{client} may call {server} ({}): its intents {declared_in} declare it and {} let it in.",
            e.ports,
            if admitted.is_empty() {
                "the server's policies".to_string()
            } else {
                names(&admitted)
            }
        ),
        api::EdgeState::Blocked => format!(
            "{client} cannot call {server}, although its intents {declared_in} declare it: {server} only admits the clients its policies ({}) select, and {client} is not one of them.",
            names(&x.ingress_isolated_by)
        ),
        api::EdgeState::Unprotected => format!(
            "{client} calls {server} as its intents {declared_in} declare, but no policy isolates {server}: any pod can call it."
        ),
        api::EdgeState::Undeclared => format!(
            "{client} can call {server} ({}) although no intents declare it{}.",
            e.ports,
            if admitted.is_empty() {
                String::new()
            } else {
                format!(": {} let it in", names(&admitted))
            }
        ),
        api::EdgeState::Open => format!(
            "Nothing declares {client} → {server} and no policy isolates {server}: the cluster allows it by default."
        ),
    };
    if let Some(c) = cause {
        s.push_str(" Why: ");
        s.push_str(first_sentence(&c.explanation));
    }
    s
}

/// The drift item whose edges include this call (the worst, when several do).
fn cause_of<'a>(drift: &'a [api::DriftItem], e: &api::Edge) -> Option<&'a api::DriftItem> {
    drift
        .iter()
        .filter(|d| {
            d.edges
                .iter()
                .any(|a| a.source == e.source && a.target == e.target)
        })
        .max_by_key(|d| d.severity)
}

/// Explain at most this many edges of a workload/// Explain at most this many edges of a workload with the evaluator; the rest keep the stored
/// explanation.
const FULL_EXPLANATIONS: usize = 200;

pub(super) async fn workload(
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
        // The pass's compiled policies when it kept them (compiling costs a whole pass's worth).
        let evaluator = view
            .inventory
            .as_deref()
            .map(|inv| match view.prepared.get() {
                Some(prepared) => prepared.evaluator(inv),
                None => Evaluator::new(inv),
            });
        let mut budget = FULL_EXPLANATIONS;
        let mut explained = |idx: &[usize]| -> Vec<api::ExplainedEdge> {
            idx.iter()
                .map(|&i| {
                    let edge = view.edges[i].clone();
                    let base = &view.explanations[i];
                    let mut explanation = match &evaluator {
                        Some(ev) if budget > 0 => {
                            budget -= 1;
                            explain_fully(ev, &edge, base)
                        }
                        _ => base.clone(),
                    };
                    let cause = cause_of(&view.drift, &edge);
                    explanation.in_words = in_words(&edge, &explanation, cause);
                    explanation.cause = cause.map(|c| c.key.clone());
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
        .filter(|d| super::super::sync::drift_item_workloads(d).contains(node.id.as_str()))
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

/// The kinds `GET /api/object` shows: the ones a why-chain names. Any other kind (a Secret a
/// manifest tree happens to hold, say) is not found, whatever the index holds.
const SHOWN_KINDS: &[&str] = &[
    "ClientIntents",
    "NetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
];

#[derive(serde::Deserialize)]
pub(super) struct ObjectQuery {
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
}

/// `GET /api/object?kind=…&namespace=…&name=…`: one stored ClientIntents or policy as YAML,
/// as the last sync pass saw it.
pub(super) async fn object_yaml(
    State(state): State<SharedState>,
    Query(q): Query<ObjectQuery>,
) -> Result<Response> {
    let view = state.view();
    let Some(index) = view.index.as_deref() else {
        return Err(Error::Unavailable(
            "the first sync has not finished yet; try again shortly".into(),
        ));
    };
    let not_found = || {
        Error::NotFound(format!(
            "no {} {}/{} among the synced policies and intents",
            q.kind, q.namespace, q.name
        ))
    };
    if !SHOWN_KINDS.contains(&q.kind.as_str()) {
        return Err(not_found());
    }
    let object = index
        .get(&q.kind, &q.namespace, &q.name)
        .ok_or_else(not_found)?;
    let text = serde_yaml::to_string(object).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        )],
        text,
    )
        .into_response())
}
