//! `GET /api/observed`: observed callers (of one server, or all), assessed by Accord's own
//! evaluation; the window and its coverage; declared calls not observed (claimed only under full
//! coverage); and suggested intents for undeclared callers.

use std::collections::BTreeSet;
use std::sync::Arc;

use accord_api as api;
use accord_api::observed as o;
use accord_policy::observed::{self, Aggregate, Class, Key, Party, format_rfc3339, parse_rfc3339};
use accord_policy::{Evaluator, WorkloadId};
use axum::Json;
use axum::extract::{Query, State};

use super::super::SharedState;
use super::super::store::ObservedQuery;
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
    let since = match &q.since {
        Some(s) => parse_rfc3339(s)
            .ok_or_else(|| Error::BadRequest(format!("since={s:?} is not an RFC 3339 time")))?,
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
    let rows = state
        .store
        .observations(&ObservedQuery {
            since,
            server: server.as_deref(),
            class: None,
        })
        .await?;
    let view = state.view();
    let answer = tokio::task::spawn_blocking(move || {
        let mut out = o::Observed {
            window: window(&status),
            ..o::Observed::default()
        };
        let (calls, other): (Vec<_>, Vec<_>) =
            rows.iter().partition(|(k, _)| k.class == Class::Call);
        out.other = other.iter().map(|(k, a)| call(k, a)).collect();
        let Some(inv) = view.inventory.as_deref() else {
            out.calls = calls.iter().map(|(k, a)| call(k, a)).collect();
            return out;
        };
        let pairs: Vec<(&Key, &Aggregate)> = calls.iter().map(|(k, a)| (k, a)).collect();
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
        out.calls = pairs
            .iter()
            .zip(&assessed)
            .map(|((k, a), s)| o::ObservedCall {
                state: Some(s.state),
                declared: s.declared,
                allowed_now: s.allowed_now,
                allowed_when_protected: s.allowed_when_protected,
                corroborated: s.corroborated,
                ..call(k, a)
            })
            .collect();
        // Suggestions for the clients with an undeclared call here.
        let undeclared: BTreeSet<&Party> = pairs
            .iter()
            .zip(&assessed)
            .filter(|(_, s)| !s.declared)
            .map(|((k, _), _)| &k.client)
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
                draft: super::drift::form_of(&s.suggested),
            })
            .collect();
        // Declared but not observed: only for one server, and only claimed when the window
        // since `since` was observed completely.
        if let Some(server) = &server {
            let end = if status.connected {
                now_nanos()
            } else {
                status.coverage.span().map_or(0, |(_, b)| b)
            };
            let start = since.max(status.coverage.span().map_or(0, |(a, _)| a));
            out.unused_claimed =
                status.coverage.span().is_some() && status.coverage.complete(start, end);
            if out.unused_claimed {
                let seen: BTreeSet<String> =
                    pairs.iter().map(|(k, _)| k.client.to_string()).collect();
                out.unused = view
                    .in_edges
                    .get(server)
                    .into_iter()
                    .flatten()
                    .map(|&i| &view.edges[i])
                    .filter(|e| e.declared && !seen.contains(&e.source))
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
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Json(answer))
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
