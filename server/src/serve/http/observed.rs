//! `GET /api/observed`: observed callers (of one server, or all), assessed by Accord's own
//! evaluation; the window and its coverage; declared calls not observed (claimed only under full
//! coverage); and suggested intents for undeclared callers.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use accord_api as api;
use accord_api::observed as o;
use accord_policy::observed::{self, Aggregate, Class, Key, Party, format_rfc3339, parse_rfc3339};
use accord_policy::{Evaluator, WorkloadId};
use axum::Json;
use axum::extract::{Query, State};

use super::super::SharedState;
use super::super::store::ObservedQuery;
use super::super::sync::View;
use super::error::{Error, Result};

fn time(t: i64) -> String {
    format_rfc3339(t)
}

fn now_nanos() -> i64 {
    crate::observed::hubble::now_nanos()
}

fn call(k: &Key, a: &Aggregate) -> o::ObservedCall {
    o::ObservedCall {
        class: k.class.as_str().to_string(),
        client: k.client.to_string(),
        server: k.server.to_string(),
        protocol: k.protocol.as_str().to_string(),
        port: k.port,
        count: a.count,
        forwarded: a.forwarded,
        dropped: a.dropped,
        audit: a.audit,
        first_seen: time(a.first_seen),
        last_seen: time(a.last_seen),
        ..o::ObservedCall::default()
    }
}

pub(super) async fn observed(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::Observed>> {
    compute(&state, &q, false).await.map(Json)
}

/// `GET /api/observed/panel?server=…`: the same, as the side panel's lines.
pub(super) async fn panel(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::ObservedPanel>> {
    if q.server.is_none() {
        return Err(Error::BadRequest("server= is required".into()));
    }
    let o = compute(&state, &q, false).await?;
    Ok(Json(panel_of(o)))
}

/// `GET /api/observed/edges?since=…`: every observed call between workloads, per edge.
pub(super) async fn edges(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::ObservedEdges>> {
    if q.server.is_some() {
        return Err(Error::BadRequest(
            "server= is not a filter of the edges; use /api/observed".into(),
        ));
    }
    let o = compute(&state, &q, true).await?;
    Ok(Json(edges_of(o)))
}

fn edges_of(o: o::Observed) -> o::ObservedEdges {
    use std::collections::BTreeMap;
    let rank = |s: o::ObservedState| match s {
        o::ObservedState::Dropped => 2,
        o::ObservedState::Undeclared => 1,
        o::ObservedState::Declared => 0,
    };
    /// An edge so far, and its ports by protocol.
    type Building = (o::ObservedEdge, BTreeMap<String, Vec<u16>>);
    let mut by_edge: BTreeMap<(String, String), Building> = BTreeMap::new();
    for c in o.calls {
        let (Some(state), true, true) = (c.state, c.client.contains('/'), c.server.contains('/'))
        else {
            continue;
        };
        let entry = by_edge
            .entry((c.client.clone(), c.server.clone()))
            .or_insert_with(|| {
                (
                    o::ObservedEdge {
                        source: c.client.clone(),
                        target: c.server.clone(),
                        state,
                        ports: String::new(),
                        count: 0,
                        dropped: 0,
                        last_seen: String::new(),
                        note: String::new(),
                    },
                    BTreeMap::new(),
                )
            });
        let (e, ports) = entry;
        if rank(state) > rank(e.state) {
            e.state = state;
        }
        e.count += c.count;
        e.dropped += c.dropped;
        if c.last_seen > e.last_seen {
            e.last_seen = c.last_seen.clone();
        }
        ports.entry(c.protocol.clone()).or_default().push(c.port);
        if c.state == Some(o::ObservedState::Undeclared) && c.allowed_when_protected == Some(false)
        {
            e.note = "blocked once the server is protected".into();
        }
    }
    let edges: Vec<o::ObservedEdge> = by_edge
        .into_values()
        .map(|(mut e, ports)| {
            e.ports = ports
                .into_iter()
                .map(|(proto, mut list)| {
                    list.sort_unstable();
                    list.dedup();
                    let list: Vec<String> = list.iter().map(u16::to_string).collect();
                    format!("{proto} {}", list.join(","))
                })
                .collect::<Vec<_>>()
                .join("; ");
            let what = match e.state {
                o::ObservedState::Declared => "declared".to_string(),
                o::ObservedState::Undeclared if e.note.is_empty() => {
                    "undeclared, allowed".to_string()
                }
                o::ObservedState::Undeclared => format!("undeclared: {}", e.note),
                o::ObservedState::Dropped => format!("{} dropped now", e.dropped),
            };
            e.note = format!(
                "observed {} flows {}, last {} UTC · {what}",
                e.count,
                e.ports,
                day_time(&e.last_seen)
            );
            e
        })
        .collect();
    let summary = panel_of(o::Observed {
        window: o.window.clone(),
        ..o::Observed::default()
    })
    .window;
    let unused = if o.unused_claimed {
        o.unused
    } else {
        Vec::new()
    };
    let mut marks: Vec<[String; 3]> = edges
        .iter()
        .map(|e: &o::ObservedEdge| {
            [
                format!("{}->{}", e.source, e.target),
                e.state.as_str().to_string(),
                e.note.clone(),
            ]
        })
        .chain(unused.iter().map(|u| {
            [
                format!("{}->{}", u.client, u.server),
                "unused".to_string(),
                format!("declared {}, not observed", u.ports),
            ]
        }))
        .collect();
    marks.sort();
    o::ObservedEdges {
        window: o.window,
        edges,
        unused,
        summary,
        marks,
        namespaces: Vec::new(),
    }
}

fn day_time(t: &str) -> String {
    t.get(..19).unwrap_or(t).replace('T', " ")
}

fn panel_of(o: o::Observed) -> o::ObservedPanel {
    let w = &o.window;
    if w.source.is_empty() {
        return o::ObservedPanel::default();
    }
    let mut window = match (&w.from, &w.to) {
        (Some(f), Some(t)) => format!(
            "Observed {} – {} UTC ({}), {} events lost. ",
            day_time(f),
            day_time(t),
            w.source,
            w.lost_events
        ),
        _ => format!("Nothing observed yet ({}). ", w.source),
    };
    window += &match &w.complete_since {
        Some(t) => format!("Complete since {} UTC.", day_time(t)),
        None => "Not complete: the collector is disconnected or events were lost.".to_string(),
    };
    let callers = o
        .calls
        .iter()
        .map(|c| {
            let state = c.state.map(|s| s.as_str()).unwrap_or_default();
            let what = match c.state {
                Some(o::ObservedState::Declared) => "declared".to_string(),
                Some(o::ObservedState::Undeclared) => {
                    if c.allowed_when_protected == Some(false) {
                        "undeclared: blocked once protected".to_string()
                    } else {
                        "undeclared".to_string()
                    }
                }
                Some(o::ObservedState::Dropped) => format!("{} dropped now", c.dropped),
                None => String::new(),
            };
            [
                format!(
                    "{} {}/{} · {} flows · last {} · {what}",
                    c.client,
                    c.protocol,
                    c.port,
                    c.count,
                    day_time(&c.last_seen)
                ),
                state.to_string(),
            ]
        })
        .collect();
    let mut notes = Vec::new();
    if !o.other.is_empty() {
        let n: u64 = o.other.iter().map(|c| c.count).sum();
        notes.push(format!(
            "Also {n} flows of kubelet probes, DNS or host-network pods (not calls)."
        ));
    }
    if o.unused_claimed {
        notes.push(if o.unused.is_empty() {
            "Every declared caller was observed.".to_string()
        } else {
            format!(
                "Declared but not observed: {}.",
                o.unused
                    .iter()
                    .map(|u| u.client.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    let suggestions = o
        .suggestions
        .into_iter()
        .map(|s| o::PanelSuggestion {
            label: format!(
                "Suggested intents for {}: adds {}",
                s.client,
                s.added.join(", ")
            ),
            draft: s.draft,
            yaml: s.yaml,
        })
        .collect();
    o::ObservedPanel {
        window,
        callers,
        notes,
        suggestions,
    }
}

/// Every stored observation assessed once per sync pass and observed-data generation (the
/// protected inventory is a clone of the whole estate and its evaluation is the expensive part),
/// with the observed drift items computed from them. Requests filter it.
pub struct Assessed {
    view: Weak<View>,
    generation: u64,
    /// Every stored observation, sorted by key.
    rows: Vec<(Key, Aggregate)>,
    /// Parallel to `rows`: the assessment of each call (`None` for other classes, and for
    /// everything before the first sync).
    assessed: Vec<Option<observed::Assessment>>,
    /// The observed drift items, worst first, with their owners (parallel).
    pub drift: Vec<api::DriftItem>,
    pub drift_core: Vec<accord_policy::drift::DriftItem>,
    pub drift_owners: Vec<String>,
}

/// The cache of [`Assessed`]: one at a time, computed by one request while others wait.
pub type AssessedCache = tokio::sync::Mutex<Option<Arc<Assessed>>>;

/// The assessed observations for the current view and observed data, from the cache when both
/// are unchanged.
pub(crate) async fn assessed(state: &SharedState) -> Result<Arc<Assessed>> {
    // In a task of its own: a request that times out or goes away does not abandon the
    // assessment (the next request finds it cached instead of starting it again).
    let state = state.clone();
    tokio::spawn(async move { assess_cached(&state).await })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

async fn assess_cached(state: &SharedState) -> Result<Arc<Assessed>> {
    let mut cache = state.observed_cache.lock().await;
    let view = state.view();
    let status = state.observed.read().expect("observed status lock").clone();
    if let Some(c) = cache.as_ref()
        && c.generation == status.generation
        && Weak::ptr_eq(&c.view, &Arc::downgrade(&view))
    {
        return Ok(c.clone());
    }
    let rows = state.store.observations(&ObservedQuery::default()).await?;
    let owner_label = state.owner_label.clone();
    let out = tokio::task::spawn_blocking(move || assess_all(view, status, rows, owner_label))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let out = Arc::new(out);
    *cache = Some(out.clone());
    Ok(out)
}

fn assess_all(
    view: Arc<View>,
    status: crate::observed::collector::Status,
    rows: Vec<(Key, Aggregate)>,
    owner_label: Option<String>,
) -> Assessed {
    let mut out = Assessed {
        view: Arc::downgrade(&view),
        generation: status.generation,
        assessed: vec![None; rows.len()],
        rows: Vec::new(),
        drift: Vec::new(),
        drift_core: Vec::new(),
        drift_owners: Vec::new(),
    };
    let calls: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].0.class == Class::Call)
        .collect();
    // Nothing to assess (no collector, nothing observed yet): no evaluation at all.
    let (Some(inv), false) = (view.inventory.as_deref(), calls.is_empty()) else {
        out.rows = rows;
        return out;
    };
    let pairs: Vec<(&Key, &Aggregate)> = calls.iter().map(|&i| (&rows[i].0, &rows[i].1)).collect();
    let keys: Vec<&Key> = pairs.iter().map(|(k, _)| *k).collect();
    let prepared = view
        .prepared
        .get_or_init(|| Arc::new(accord_policy::evaluate::Prepared::new(inv)));
    let now = observed::allowed(&prepared.evaluator(inv), &keys);
    let later = match view.generated.as_deref() {
        Some(generated) => {
            let servers: BTreeSet<WorkloadId> = keys
                .iter()
                .filter_map(|k| k.server.workload().cloned())
                .collect();
            let protected = observed::protected_inventory(inv, generated, &servers);
            observed::allowed(&Evaluator::new(&protected), &keys)
        }
        None => vec![None; keys.len()],
    };
    let assessed = observed::assess(&pairs, inv, &now, &later);

    // The drift items.
    let with: Vec<(&Key, &Aggregate, &observed::Assessment)> = pairs
        .iter()
        .zip(&assessed)
        .map(|((k, a), s)| (*k, *a, s))
        .collect();
    let suggestions = observed::suggest(pairs.iter().copied(), inv, 0);
    let parse = |s: &str| WorkloadId::parse(s, "default");
    let declared: Vec<observed::DeclaredEdge> = view
        .edges
        .iter()
        .filter(|e| e.declared)
        .filter_map(|e| {
            Some(observed::DeclaredEdge {
                client: parse(&e.source)?,
                server: parse(&e.target)?,
                state: e.state,
            })
        })
        .collect();
    let edge_state = |c: &WorkloadId, s: &WorkloadId| {
        let (c, s) = (c.to_string(), s.to_string());
        view.in_edges
            .get(&s)
            .into_iter()
            .flatten()
            .map(|&i| &view.edges[i])
            .find(|e| e.source == c)
            .map(|e| e.state)
    };
    let end = if status.connected {
        now_nanos()
    } else {
        status.coverage.span().map_or(0, |(_, b)| b)
    };
    let complete_window = status
        .coverage
        .span()
        .and_then(|_| status.coverage.complete_since(end))
        .filter(|&from| from < end)
        .map(|from| (from, end));
    let items = observed::drift_items(&observed::ObservedInput {
        calls: &with,
        edge_state: &edge_state,
        suggestions: &suggestions,
        declared: &declared,
        complete_window,
    });
    for (core, first) in items {
        let mut d = crate::serve::sync::drift_item_to_api(&core);
        d.first_seen = Some(time(first));
        out.drift.push(d);
        out.drift_core.push(core);
    }
    out.drift_owners = super::drift::owners_of(&view, owner_label.as_deref(), &out.drift);
    for (i, s) in calls.into_iter().zip(assessed) {
        out.assessed[i] = Some(s);
    }
    out.rows = rows;
    out
}

/// `every_unused`: without a server, list declared calls not observed between all workloads
/// (the graph's edges) rather than none.
async fn compute(
    state: &SharedState,
    q: &o::ObservedQuery,
    every_unused: bool,
) -> Result<o::Observed> {
    let since = match &q.since {
        Some(s) => parse_rfc3339(s)
            .or_else(|| ago(s, now_nanos()))
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "since={s:?} is neither an RFC 3339 time nor hours or days ago (1h, 7d)"
                ))
            })?,
        None => 0,
    };
    let server = match &q.server {
        Some(s) => Some(
            WorkloadId::parse(s, "default")
                .filter(|_| s.contains('/'))
                .ok_or_else(|| Error::BadRequest(format!("server={s:?} is not ns/name[Kind]")))?
                .to_string(),
        ),
        None => None,
    };
    let status = state.observed.read().expect("observed status lock").clone();
    let all = assessed(state).await?;
    let view = state.view();
    tokio::task::spawn_blocking(move || {
        let mut out = o::Observed {
            window: window(&status),
            ..o::Observed::default()
        };
        let chosen: Vec<usize> = (0..all.rows.len())
            .filter(|&i| {
                let (k, a) = &all.rows[i];
                a.last_seen >= since && server.as_deref().is_none_or(|s| k.server.to_string() == s)
            })
            .collect();
        let (calls, other): (Vec<usize>, Vec<usize>) = chosen
            .into_iter()
            .partition(|&i| all.rows[i].0.class == Class::Call);
        out.other = other
            .iter()
            .map(|&i| call(&all.rows[i].0, &all.rows[i].1))
            .collect();
        let inv = view.inventory.as_deref();
        let pairs: Vec<(&Key, &Aggregate)> = calls
            .iter()
            .map(|&i| (&all.rows[i].0, &all.rows[i].1))
            .collect();
        out.calls = calls
            .iter()
            .map(|&i| {
                let (k, a) = &all.rows[i];
                match &all.assessed[i] {
                    Some(s) => o::ObservedCall {
                        state: Some(s.state),
                        declared: s.declared,
                        allowed_now: s.allowed_now,
                        allowed_when_protected: s.allowed_when_protected,
                        corroborated: s.corroborated,
                        ..call(k, a)
                    },
                    None => call(k, a),
                }
            })
            .collect();
        let Some(inv) = inv else {
            return out;
        };
        // Suggestions for the clients with an undeclared call here.
        let undeclared: BTreeSet<&Party> = calls
            .iter()
            .filter(|&&i| all.assessed[i].as_ref().is_some_and(|s| !s.declared))
            .map(|&i| &all.rows[i].0.client)
            .collect();
        out.suggestions = observed::suggest(pairs.iter().copied(), inv, since)
            .into_iter()
            .filter(|s| {
                undeclared.contains(&Party::Workload {
                    workload: s.client.clone(),
                })
            })
            .map(|s| o::ObservedSuggestion {
                client: s.client.to_string(),
                merged_with: s
                    .current
                    .as_ref()
                    .map(|c| format!("{}/{}", c.namespace, c.name)),
                added: s
                    .added
                    .iter()
                    .map(|a| format!("{} {}/{}", a.server, a.protocol.as_str(), a.port))
                    .collect(),
                yaml: accord_policy::render::intents_yaml(std::slice::from_ref(&s.suggested)),
                diff: accord_policy::drift::line_diff(
                    &s.current
                        .as_ref()
                        .map(|c| accord_policy::render::intents_yaml(std::slice::from_ref(c)))
                        .unwrap_or_default(),
                    &accord_policy::render::intents_yaml(std::slice::from_ref(&s.suggested)),
                ),
                draft: super::drift::form_of(&s.suggested),
            })
            .collect();
        // Declared but not observed: only for one server (or every workload pair when asked),
        // and only claimed when the window since `since` was observed completely.
        if server.is_some() || every_unused {
            let end = if status.connected {
                now_nanos()
            } else {
                status.coverage.span().map_or(0, |(_, b)| b)
            };
            let start = since.max(status.coverage.span().map_or(0, |(a, _)| a));
            // A window after the observed span was not observed at all.
            out.unused_claimed = status.coverage.span().is_some()
                && start < end
                && status.coverage.complete(start, end);
            if out.unused_claimed {
                let seen: BTreeSet<(String, String)> = pairs
                    .iter()
                    .map(|(k, _)| (k.client.to_string(), k.server.to_string()))
                    .collect();
                let edges: Vec<&api::Edge> = match &server {
                    Some(server) => view
                        .in_edges
                        .get(server)
                        .into_iter()
                        .flatten()
                        .map(|&i| &view.edges[i])
                        .collect(),
                    None => view
                        .edges
                        .iter()
                        .filter(|e| e.source.contains('/') && e.target.contains('/'))
                        .collect(),
                };
                out.unused = edges
                    .into_iter()
                    .filter(|e| e.declared && !seen.contains(&(e.source.clone(), e.target.clone())))
                    .map(|e: &api::Edge| o::DeclaredUnused {
                        client: e.source.clone(),
                        server: e.target.clone(),
                        ports: e.declared_ports.clone(),
                    })
                    .collect();
            }
        }
        out
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

/// `since` as a time back from `now` (ns): `1h`, `24h`, `7d`.
fn ago(s: &str, now: i64) -> Option<i64> {
    const HOUR: i64 = 3_600_000_000_000;
    let (n, unit) = match s.strip_suffix('h') {
        Some(n) => (n, HOUR),
        None => (s.strip_suffix('d')?, 24 * HOUR),
    };
    let n: i64 = n.parse().ok().filter(|n| (1..=3660).contains(n))?;
    Some(now - n * unit)
}

fn window(s: &crate::observed::collector::Status) -> o::ObservedWindow {
    let span = s.coverage.span();
    let end = if s.connected {
        now_nanos()
    } else {
        span.map_or(0, |(_, b)| b)
    };
    o::ObservedWindow {
        source: s.source.clone(),
        connected: s.connected,
        from: span.map(|(a, _)| time(a)),
        to: span.map(|_| time(end)),
        complete_since: span.and_then(|_| s.coverage.complete_since(end)).map(time),
        intervals: s
            .coverage
            .intervals
            .iter()
            .map(|&(a, b)| [time(a), time(b)])
            .collect(),
        lost_events: s.coverage.lost_total(),
        error: s.last_error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn since_may_be_hours_or_days_back_from_now() {
        let now = 10 * 86_400_000_000_000;
        assert_eq!(ago("1h", now), Some(now - 3_600_000_000_000));
        assert_eq!(ago("7d", now), Some(3 * 86_400_000_000_000));
        assert_eq!(ago("0h", now), None);
        assert_eq!(ago("forever", now), None);
        assert_eq!(ago("h", now), None);
    }
}
