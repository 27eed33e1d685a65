//! Every HTTP call of the dashboard, and the server-sent events stream. Nothing else in the app
//! touches the network.
//!
//! In: paths under `/api` of the serving `accord serve`. Out: `accord-api` types, or an error
//! message fit to show the user.

use accord_api::{
    AckRequest, ApplyResult, CurrentIntents, Draft, DraftList, DriftItem, DriftReport, ErrorBody,
    Graph, HistoryPage, NewDraft, Overview, Status, TargetOptions, WhatIfRequest, WhatIfResponse,
    WorkloadDetail,
};
use gloo_net::http::Request;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

pub type Result<T> = std::result::Result<T, String>;

/// Percent-encodes a query or path component.
pub fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// What a request answers: (ok, status, body).
type Answer = Result<(bool, u16, String)>;

/// One request, sent and read to text. Not generic and boxed, so that the request's code and
/// its future are in the WASM once rather than inlined into every call (each response type's
/// future then only waits for this one and decodes).
fn fetch(
    method: &'static str,
    url: String,
    body: Option<String>,
    bearer: Option<String>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer>>> {
    Box::pin(async move {
        let mut builder = match method {
            "POST" => Request::post(&url),
            "PUT" => Request::put(&url),
            "DELETE" => Request::delete(&url),
            _ => Request::get(&url),
        };
        if let Some(token) = bearer {
            builder = builder.header("Authorization", &format!("Bearer {token}"));
        }
        let req = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(body),
            None => builder.build(),
        };
        let resp = req
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|e| format!("cannot reach the server: {e}"))?;
        let (ok, status) = (resp.ok(), resp.status());
        let body = resp.text().await.map_err(|e| e.to_string())?;
        Ok((ok, status, body))
    })
}

/// A response's body as `T`, or the server's error message.
fn decode<T: DeserializeOwned>((ok, status, body): (bool, u16, String)) -> Result<T> {
    if ok {
        return crate::json::from_str(&body).map_err(unexpected);
    }
    Err(failure(status, &body))
}

// The error paths of `decode`, kept out of line: not generic, so in the WASM once rather than
// in every response type's copy of `decode`.

#[inline(never)]
fn unexpected(e: serde_json::Error) -> String {
    format!("unexpected response: {e}")
}

/// The server's error message, from its error body.
#[inline(never)]
fn failure(status: u16, body: &str) -> String {
    match crate::json::from_str::<ErrorBody>(body) {
        Ok(body) => body.error,
        Err(_) => format!("request failed ({status})"),
    }
}

fn get<T: DeserializeOwned>(url: &str) -> impl std::future::Future<Output = Result<T>> + use<T> {
    let answer = fetch("GET", url.to_string(), None, None);
    async move { decode(answer.await?) }
}

/// A request with a JSON body (serialized by the caller, so that this is not generic either).
fn send_json(
    method: &'static str,
    url: &str,
    body: serde_json::Result<String>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer>>> {
    match body {
        Ok(body) => fetch(method, url.to_string(), Some(body), None),
        Err(e) => {
            let e = e.to_string();
            Box::pin(async move { Err(e) })
        }
    }
}

async fn post(url: &str, body: serde_json::Result<String>) -> Answer {
    send_json("POST", url, body).await
}

/// Every workload and every edge, in all states; the view filters on the client.
pub async fn graph() -> Result<Graph> {
    get("/api/graph?state=enforced,blocked,unprotected,undeclared,open").await
}

/// Part of the graph, every state: `query` is `namespace=…` or `workload=…&depth=…` (empty:
/// the whole graph).
pub async fn graph_part(query: &str) -> Result<Graph> {
    get(&format!(
        "/api/graph?state=enforced,blocked,unprotected,undeclared,open&{query}"
    ))
    .await
}

/// Every namespace with its calls by state, worst first or by `sort` (see the API).
pub async fn overview(sort: &str) -> Result<Overview> {
    get(&format!("/api/graph/overview?sort={sort}")).await
}

/// Every workload id, for the search box.
pub async fn workload_ids() -> Result<Vec<String>> {
    get("/api/workloads").await
}

/// One workload, by id `namespace/name[Kind]`.
pub async fn workload(id: &str) -> Result<WorkloadDetail> {
    let (ns, name) = id.split_once('/').unwrap_or(("", id));
    get(&format!("/api/workloads/{}/{}", encode(ns), encode(name))).await
}

/// One synced ClientIntents or policy as YAML.
pub async fn object_yaml(kind: &str, namespace: &str, name: &str) -> Result<String> {
    let url = format!(
        "/api/object?kind={}&namespace={}&name={}",
        encode(kind),
        encode(namespace),
        encode(name)
    );
    let (ok, status, body) = fetch("GET", url, None, None).await?;
    if ok {
        return Ok(body);
    }
    decode::<String>((ok, status, body))
}

/// The side panel's observed traffic into one workload.
pub async fn observed_panel(server: &str) -> Result<accord_api::observed::ObservedPanel> {
    get(&format!("/api/observed/panel?server={}", encode(server))).await
}

/// What the graph marks of `/api/observed/edges` (only these fields are decoded: the WASM
/// stays small).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct ObservedMarks {
    #[serde(default)]
    pub summary: String,
    /// `[source->target, mark, words]`, sorted.
    #[serde(default)]
    pub marks: Vec<[String; 3]>,
    /// The same per pair of namespaces: `[srcNS->dstNS, mark, words]`, sorted.
    #[serde(default)]
    pub namespaces: Vec<[String; 3]>,
}

/// The observed dimension of the graph's edges, since an RFC 3339 time (or all); with a scope
/// (`namespace`, `workload` or `pairs_only` and its value), only what the view draws.
pub async fn observed_edges(
    since: Option<String>,
    scope: Option<(&'static str, String)>,
) -> Result<ObservedMarks> {
    let mut q = String::new();
    let (k, v) = scope.map_or(("", None), |(k, v)| (k, Some(v)));
    for (k, v) in [("since", since), (k, v)] {
        if let Some(v) = v {
            q += if q.is_empty() { "?" } else { "&" };
            q += &format!("{k}={}", encode(&v));
        }
    }
    get(&format!("/api/observed/edges{q}")).await
}

pub async fn status() -> Result<Status> {
    get("/api/status").await
}

/// One page of drift items; `query` is the query string without `?` (filters, sort, page).
pub async fn drift(query: &str) -> Result<DriftReport> {
    get(&format!("/api/drift?{query}")).await
}

/// One drift item with its fix checked by the what-if engine.
pub async fn drift_item(key: &str) -> Result<DriftItem> {
    get(&format!("/api/drift/item?key={}", encode(key))).await
}

/// Acknowledge a drift item with a reason.
pub async fn acknowledge(key: String, reason: String) -> Result<DriftItem> {
    decode(
        post(
            "/api/drift/ack",
            serde_json::to_string(&AckRequest { key, reason }),
        )
        .await?,
    )
}

pub async fn history(workload: Option<&str>) -> Result<HistoryPage> {
    match workload {
        Some(w) if !w.is_empty() => get(&format!("/api/history?workload={}", encode(w))).await,
        _ => get("/api/history").await,
    }
}

/// Evaluates a draft. A draft with errors answers 422 with its diagnostics, returned as a
/// response with `ok: false`. (What `WhatIfResponse::from_http` reads, through
/// [`crate::json`] like every other answer.)
pub async fn what_if(yaml: String) -> Result<WhatIfResponse> {
    let (_, status, body) = post(
        "/api/what-if",
        serde_json::to_string(&WhatIfRequest { yaml }),
    )
    .await?;
    if status == 422
        && let Ok(ErrorBody {
            diagnostics: Some(diagnostics),
            ..
        }) = crate::json::from_str::<ErrorBody>(&body)
    {
        return Ok(WhatIfResponse {
            ok: false,
            diagnostics,
            ..WhatIfResponse::default()
        });
    }
    decode((status == 200, status, body))
}

pub async fn drafts() -> Result<DraftList> {
    get("/api/drafts").await
}

pub async fn save_draft(draft: NewDraft) -> Result<Draft> {
    decode(post("/api/drafts", serde_json::to_string(&draft)).await?)
}

/// A saved draft, by id.
pub async fn draft(id: i64) -> Result<Draft> {
    get(&format!("/api/drafts/{id}")).await
}

pub async fn update_draft(id: i64, draft: NewDraft) -> Result<Draft> {
    decode(
        send_json(
            "PUT",
            &format!("/api/drafts/{id}"),
            serde_json::to_string(&draft),
        )
        .await?,
    )
}

pub async fn delete_draft(id: i64) -> Result<()> {
    let answer = fetch("DELETE", format!("/api/drafts/{id}"), None, None).await?;
    if answer.0 {
        return Ok(());
    }
    decode::<()>(answer)
}

/// Applies a saved draft to the cluster with the apply token.
pub async fn apply_draft(id: i64, token: &str) -> Result<ApplyResult> {
    decode(
        fetch(
            "POST",
            format!("/api/drafts/{id}/apply"),
            None,
            Some(token.to_string()),
        )
        .await?,
    )
}

/// A saved draft as the form holds it.
pub async fn draft_form(id: i64) -> Result<accord_api::DraftIntents> {
    get(&format!("/api/drafts/{id}/form")).await
}

/// A client's current ClientIntents, as the draft form starts from them.
pub async fn current_intents(client: &str) -> Result<CurrentIntents> {
    get(&format!("/api/intents?client={}", encode(client))).await
}

/// Every workload and Service a draft may target.
pub async fn targets() -> Result<TargetOptions> {
    get("/api/targets").await
}

/// The state of the event stream, as the header shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    /// The stream failed; the browser is retrying.
    Reconnecting,
    /// Retries keep failing, or nothing (not even the server's 15 s ping) arrived for 40 s.
    Offline,
}

/// Silence after which the stream is taken for dead, until the server's first ping says how
/// often it pings (15 s by default; the silence allowed is 8/3 of that).
const SILENCE_MS: f64 = 40_000.0;

fn now() -> f64 {
    js_sys::Date::now()
}

/// Subscribes to `/api/events`: calls `on_sync` on every `sync` event and `on_state` as the
/// stream opens, fails, or falls silent. A silent stream is closed and opened afresh.
pub fn subscribe(on_sync: impl Fn() + 'static, on_state: impl Fn(Link) + 'static) {
    use std::cell::Cell;
    use std::rc::Rc;
    let on_sync: Rc<dyn Fn()> = Rc::new(on_sync);
    let on_state: Rc<dyn Fn(Link)> = Rc::new(on_state);
    let last = Rc::new(Cell::new(now()));
    let silence = Rc::new(Cell::new(SILENCE_MS));
    let current: Rc<Cell<Option<web_sys::EventSource>>> = Rc::new(Cell::new(None));
    let connect = {
        let (last, current, on_state) = (last.clone(), current.clone(), on_state.clone());
        let silence = silence.clone();
        move || {
            let Ok(es) = web_sys::EventSource::new("/api/events") else {
                return;
            };
            let failures = Rc::new(Cell::new(0u32));
            let (l, s, st) = (last.clone(), on_sync.clone(), on_state.clone());
            let sync = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_| {
                l.set(now());
                s();
            });
            let _ = es.add_event_listener_with_callback("sync", sync.as_ref().unchecked_ref());
            let (l, quiet) = (last.clone(), silence.clone());
            let ping =
                Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                    l.set(now());
                    if let Some(ms) = ev.data().as_string().and_then(|d| d.parse::<u32>().ok()) {
                        quiet.set(f64::from(ms.max(750)) * 8.0 / 3.0);
                    }
                });
            let _ = es.add_event_listener_with_callback("ping", ping.as_ref().unchecked_ref());
            let (l, f) = (last.clone(), failures.clone());
            let open = Closure::<dyn Fn(web_sys::Event)>::new(move |_| {
                l.set(now());
                f.set(0);
                st(Link::Live);
            });
            es.set_onopen(Some(open.as_ref().unchecked_ref()));
            let st = on_state.clone();
            let es2 = es.clone();
            let error = Closure::<dyn Fn(web_sys::Event)>::new(move |_| {
                failures.set(failures.get() + 1);
                let closed = es2.ready_state() == web_sys::EventSource::CLOSED;
                st(if closed || failures.get() > 1 {
                    Link::Offline
                } else {
                    Link::Reconnecting
                });
            });
            es.set_onerror(Some(error.as_ref().unchecked_ref()));
            // The listeners live as long as the stream (which the page keeps).
            sync.forget();
            ping.forget();
            open.forget();
            error.forget();
            if let Some(old) = current.replace(Some(es)) {
                old.close();
            }
        }
    };
    connect();
    let watchdog = Closure::<dyn Fn()>::new(move || {
        if now() - last.get() > silence.get() {
            on_state(Link::Offline);
            last.set(now());
            connect();
        }
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            watchdog.as_ref().unchecked_ref(),
            1_000,
        );
    }
    watchdog.forget();
}
