//! The HTTP API: `router(state)` serves the JSON API (types from `accord-api`), server-sent
//! events, health, metrics, the OpenAPI document and the built frontend.
//!
//! Graph, workload and drift answers come from the in-memory view of the last sync pass (loaded
//! from SQLite at start); history and drafts from SQLite. Errors are `ErrorBody` JSON: a useful
//! message for 4xx, a generic one for 5xx whose cause is logged.

mod assets;
mod drafts;
mod drift;
mod error;
mod graph;
pub(crate) mod observed;
mod security;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use accord_api as api;
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::{
    ClassifiedResponse, ClassifyResponse, MakeClassifier, NeverClassifyEos, ServerErrorsAsFailures,
    ServerErrorsFailureClass,
};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::SharedState;
pub use error::{Error, Result, error_response};
pub use graph::select_graph;
pub use security::{PublicUrl, WebConfig};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;

/// By default, a request that takes longer than this is answered 503 (server-sent events
/// excepted); `--request-timeout` sets another.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The router of the whole backend: the routes, then tower-http's layers (from the inside out):
/// body limits, JSON error bodies, the host and cross-site checks, security and cache headers,
/// compression, metrics, panic catching and request tracing.
pub fn router(state: SharedState) -> Router {
    use graph::{graph, workload};
    let api = Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/status", get(status))
        .route("/api/graph", get(graph))
        .route("/api/graph/overview", get(graph::get_overview))
        .route("/api/workloads", get(graph::workload_ids))
        .route("/api/workloads/{namespace}/{name}", get(workload))
        .route("/api/drift", get(drift::list))
        .route("/api/drift/item", get(drift::item))
        .route("/api/drift/ack", post(drift::ack).delete(drift::unack))
        .route("/api/what-if", post(drafts::post_what_if))
        .route("/api/intents", get(drafts::current_intents))
        .route("/api/targets", get(drafts::targets))
        .route(
            "/api/drafts",
            get(drafts::list_drafts).post(drafts::create_draft),
        )
        .route(
            "/api/drafts/{id}",
            get(drafts::get_draft)
                .put(drafts::update_draft)
                .delete(drafts::delete_draft),
        )
        .route("/api/drafts/{id}/export", get(drafts::export_draft))
        .route("/api/drafts/{id}/form", get(drafts::draft_form))
        .route("/api/drafts/{id}/apply", post(drafts::apply_draft))
        .route("/api/history", get(history))
        .route("/api/observed", get(observed::observed))
        .route("/api/observed/panel", get(observed::panel))
        .route("/api/observed/edges", get(observed::edges))
        .route("/api/object", get(graph::object_yaml))
        .route("/api/export/intents", get(export_intents))
        .route("/api/export/policies", get(export_policies))
        .route("/api/export/graph", get(export_graph))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(assets::assets)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout,
        ));
    // Server-sent events last as long as the tab: no timeout; they end at shutdown.
    let events = Router::new().route("/api/events", get(events));
    let header =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    api.merge(events)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::CONTENT_SECURITY_POLICY, security::CSP))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
        .layer(header(header::CACHE_CONTROL, "no-store"))
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new(ProbesAnswer))
        .with_state(state)
}

/// Request tracing's classifier: a server error is a failure, logged as an error, except the
/// answer of a health probe. `/readyz` answers 503 until the first sync ends (and while storage
/// fails, which is logged where it happens): that is the answer the prober asked for, and
/// counting it as a failure logged an error on every probe of a starting server.
#[derive(Clone, Copy)]
struct ProbesAnswer;

#[derive(Clone, Copy)]
struct Classify {
    probe: bool,
}

impl MakeClassifier for ProbesAnswer {
    type Classifier = Classify;
    type FailureClass = ServerErrorsFailureClass;
    type ClassifyEos = NeverClassifyEos<ServerErrorsFailureClass>;

    fn make_classifier<B>(&self, req: &axum::http::Request<B>) -> Classify {
        Classify {
            probe: matches!(req.uri().path(), "/readyz" | "/healthz"),
        }
    }
}

impl ClassifyResponse for Classify {
    type FailureClass = ServerErrorsFailureClass;
    type ClassifyEos = NeverClassifyEos<ServerErrorsFailureClass>;

    fn classify_response<B>(
        self,
        res: &axum::http::Response<B>,
    ) -> ClassifiedResponse<Self::FailureClass, Self::ClassifyEos> {
        if self.probe {
            ClassifiedResponse::Ready(Ok(()))
        } else {
            ServerErrorsAsFailures::new().classify_response(res)
        }
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> Self::FailureClass {
        ServerErrorsAsFailures::new().classify_error(error)
    }
}

/// A handler that panicked: a 500 with the JSON body, the panic in the log.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = %message, "a request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the server log".into(),
    )
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

/// Ready after the first sync pass. A degraded source or failing storage keeps the dashboard
/// ready (it serves the last good state) but says so, for people and probes that read bodies.
async fn readyz(State(state): State<SharedState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        let health = state.source_health();
        let storage = state.storage_error.read().expect("storage lock").clone();
        let mut text = String::new();
        if health.degraded {
            text.push_str(&format!(
                "degraded: source: {} problem(s); serving the last good state of: {}\n",
                health.diagnostics.len(),
                if health.stale.is_empty() {
                    "nothing (never read)".to_string()
                } else {
                    health.stale.join(", ")
                }
            ));
        }
        if let Some(e) = storage {
            text.push_str(&format!("degraded: storage: {e}\n"));
        }
        if text.is_empty() {
            text.push_str("ready\n");
        }
        (StatusCode::OK, text).into_response()
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
    let health = state.source_health();
    let storage_error = state.storage_error.read().expect("storage lock").clone();
    let mut diagnostics = health.diagnostics;
    diagnostics.extend(view.diagnostics.iter().cloned());
    Json(api::Status {
        source: state.source.clone(),
        ready: state.ready.load(Ordering::Acquire),
        synced_at: view.synced_at.clone(),
        syncs: state.syncs.load(Ordering::Relaxed),
        workloads: view.nodes.len() as u32,
        edges: view.edges.len() as u32,
        diagnostics,
        apply_enabled: state.apply.is_some() && state.kube.is_some(),
        degraded: health.degraded || storage_error.is_some(),
        stale: health.stale,
        storage_error,
        settings: view.settings.options.clone(),
        settings_source: view.settings.source.clone(),
    })
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

/// How often `/api/events` pings by default.
pub const EVENTS_PING: Duration = Duration::from_secs(15);

/// Server-sent events after every sync pass, until the client goes or the server shuts down
/// (a stream left open would hold a graceful shutdown forever).
async fn events(
    State(state): State<SharedState>,
) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>>> {
    let rx = state.events.subscribe();
    let mut stop = state.shutdown.subscribe();
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
    let stopped = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    // The keep-alive is an event the page sees (a comment would be invisible to it): a page
    // that hears nothing for several intervals knows the connection is gone, even when no
    // error reaches it. Its data is the interval in ms, which the page's watchdog scales its
    // patience by; the stream opens with one, so the page knows it from the start.
    let ping = state.events_ping;
    let ping_event = move || {
        Event::default()
            .event("ping")
            .data(ping.as_millis().to_string())
    };
    let first = futures::stream::once(std::future::ready(Ok(ping_event())));
    Sse::new(first.chain(stream).take_until(stopped))
        .keep_alive(KeepAlive::new().interval(ping).event(ping_event()))
}

#[cfg(test)]
mod tests;
