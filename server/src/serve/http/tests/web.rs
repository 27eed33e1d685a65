//! The web layer: JSON errors, security headers, host and origin checks, the apply token,
//! the what-if limit, compression, static assets and shutdown of event streams.

use std::sync::Arc;
use std::time::Duration;

use accord_api as api;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt;

use super::super::super::store::Store;
use super::super::super::sync::View;
use super::super::super::{AppState, ApplyConfig, SharedState};
use super::super::{PublicUrl, WebConfig, router};
use super::{DRAFT, fixture, json};

async fn send(state: &SharedState, req: Request<Body>) -> Response {
    router(state.clone()).oneshot(req).await.unwrap()
}

async fn body(res: Response) -> axum::body::Bytes {
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", res.headers()))
        .to_str()
        .unwrap()
}

/// A JSON error with this status.
async fn assert_json_error(res: Response, status: StatusCode) -> api::ErrorBody {
    assert_eq!(res.status(), status);
    assert_eq!(header(&res, "content-type"), "application/json");
    let b = body(res).await;
    let e: api::ErrorBody = json(&b);
    assert!(!e.error.is_empty());
    e
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn new_draft_json() -> Vec<u8> {
    serde_json::to_vec(&api::NewDraft {
        name: "d".into(),
        yaml: DRAFT.into(),
    })
    .unwrap()
}

#[tokio::test]
async fn bad_query_and_path_values_oversized_bodies_and_wrong_methods_answer_json() {
    let f = fixture().await;
    let e = assert_json_error(
        send(&f.state, get("/api/drafts/not-a-number")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.error.contains("parse"), "{}", e.error);
    let e = assert_json_error(
        send(&f.state, get("/api/history?limit=many")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.error.contains("limit"), "{}", e.error);
    let big = vec![b'#'; super::super::BODY_LIMIT + 10];
    let req = Request::post("/api/what-if")
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from(big))
        .unwrap();
    assert_json_error(send(&f.state, req).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    let req = Request::patch("/api/graph").body(Body::empty()).unwrap();
    assert_json_error(send(&f.state, req).await, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let f = fixture().await;
    for uri in ["/api/graph", "/", "/api/nope", "/healthz"] {
        let res = send(&f.state, get(uri)).await;
        assert_eq!(header(&res, "x-content-type-options"), "nosniff", "{uri}");
        assert!(
            header(&res, "content-security-policy").contains("frame-ancestors 'none'"),
            "{uri}"
        );
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{uri}");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer", "{uri}");
    }
    let res = send(&f.state, get("/api/status")).await;
    assert_eq!(header(&res, "cache-control"), "no-store");
}

#[tokio::test]
async fn requests_for_foreign_host_names_are_refused() {
    let f = fixture().await;
    let with_host = |host: &str| {
        Request::get("/api/status")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    // A name an attacker's DNS points at 127.0.0.1 (DNS rebinding).
    let e = assert_json_error(
        send(&f.state, with_host("rebind.attacker.example:8080")).await,
        StatusCode::MISDIRECTED_REQUEST,
    )
    .await;
    assert!(e.error.contains("--public-url"), "{}", e.error);
    for ok in [
        "127.0.0.1:8080",
        "localhost:9000",
        "[::1]:8080",
        "127.0.0.1",
    ] {
        assert_eq!(
            send(&f.state, with_host(ok)).await.status(),
            StatusCode::OK,
            "{ok}"
        );
    }

    // A configured public URL adds its name.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db").to_str().unwrap())
        .await
        .unwrap();
    let mut state = AppState::new(store, "demo".into());
    state.web = WebConfig {
        listen: "0.0.0.0:8080".parse().unwrap(),
        public_urls: vec!["https://accord.example.com".parse::<PublicUrl>().unwrap()],
    };
    let state = Arc::new(state);
    assert_eq!(
        send(&state, with_host("accord.example.com")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&state, with_host("10.1.2.3:8080")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&state, with_host("other.example.com")).await.status(),
        StatusCode::MISDIRECTED_REQUEST
    );
}

#[tokio::test]
async fn cross_site_and_form_posts_change_nothing() {
    let f = fixture().await;
    let post = |origin: Option<&str>, ctype: Option<&str>, body: Vec<u8>| {
        let mut r = Request::post("/api/drafts").header(header::HOST, "127.0.0.1:8080");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        if let Some(t) = ctype {
            r = r.header(header::CONTENT_TYPE, t);
        }
        r.body(Body::from(body)).unwrap()
    };
    // A form on another site posting text/plain: refused for its origin...
    let req = post(
        Some("http://evil.example"),
        Some("text/plain"),
        new_draft_json(),
    );
    assert_json_error(send(&f.state, req).await, StatusCode::FORBIDDEN).await;
    // ... and for its content type, were the origin hidden.
    let req = post(None, Some("text/plain"), new_draft_json());
    assert_json_error(
        send(&f.state, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let req = post(None, None, new_draft_json());
    assert_json_error(
        send(&f.state, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let req = Request::post("/api/drafts")
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(new_draft_json()))
        .unwrap();
    assert_json_error(send(&f.state, req).await, StatusCode::FORBIDDEN).await;
    // A DELETE from another origin.
    let req = Request::delete("/api/drafts/1")
        .header(header::ORIGIN, "http://127.0.0.1:9999")
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    assert_json_error(send(&f.state, req).await, StatusCode::FORBIDDEN).await;
    let (_, b) = super::get(&f.state, "/api/drafts").await;
    assert!(json::<api::DraftList>(&b).drafts.is_empty());

    // The dashboard itself: same origin, JSON.
    let req = post(
        Some("http://127.0.0.1:8080"),
        Some("application/json; charset=utf-8"),
        new_draft_json(),
    );
    assert_eq!(send(&f.state, req).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_apply_token_is_checked_whatever_the_scheme_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db").to_str().unwrap())
        .await
        .unwrap();
    let mut state = AppState::new(store, "demo".into());
    state.apply = Some(ApplyConfig {
        token: "s3cret".into(),
    });
    let state = Arc::new(state);
    let apply = |auth: Option<&str>| {
        let mut r = Request::post("/api/drafts/1/apply");
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        r.body(Body::empty()).unwrap()
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Basic s3cret"),
    ] {
        let res = send(&state, apply(auth)).await;
        assert_eq!(
            header(&res, "www-authenticate"),
            "Bearer realm=\"accord\"",
            "{auth:?}"
        );
        assert_json_error(res, StatusCode::UNAUTHORIZED).await;
    }
    // The right token in any case of the scheme gets past authentication (to the missing
    // cluster source, here).
    for auth in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret"] {
        let e =
            assert_json_error(send(&state, apply(Some(auth))).await, StatusCode::FORBIDDEN).await;
        assert!(e.error.contains("cluster"), "{auth}: {}", e.error);
    }
}

#[tokio::test]
async fn what_ifs_beyond_the_limit_are_told_to_retry() {
    let f = fixture().await;
    let what_if = || {
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(DRAFT))
            .unwrap()
    };
    // Every permit taken, as by evaluations under way.
    let held = f
        .state
        .what_ifs
        .clone()
        .acquire_many_owned(super::super::super::DEFAULT_MAX_WHAT_IFS as u32)
        .await
        .unwrap();
    let res = send(&f.state, what_if()).await;
    assert_eq!(header(&res, "retry-after"), "2");
    assert_json_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    drop(held);
    assert_eq!(send(&f.state, what_if()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn what_ifs_beyond_the_memory_budget_are_told_to_retry() {
    let f = fixture().await;
    let what_if = || {
        Request::post("/api/what-if")
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(DRAFT))
            .unwrap()
    };
    let budget = f.state.what_if_memory.clone();
    assert_eq!(
        budget.limit(),
        super::super::super::DEFAULT_WHAT_IF_MEMORY_MIB << 20
    );
    // Most of the budget held, as by a large what-if under way: this one does not fit beside it.
    let held = budget.try_reserve(budget.limit() - 1024).unwrap();
    let res = send(&f.state, what_if()).await;
    assert_eq!(header(&res, "retry-after"), "2");
    let e = assert_json_error(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(e.error.contains("memory"), "{}", e.error);
    assert_eq!(budget.used(), budget.limit() - 1024);
    drop(held);
    // With the budget free, it is evaluated, and what it reserved is given back.
    assert_eq!(send(&f.state, what_if()).await.status(), StatusCode::OK);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_memory_budget_counts_what_is_in_flight() {
    let budget = super::super::super::MemoryBudget::new(100);
    let a = budget.try_reserve(60).unwrap();
    assert!(budget.try_reserve(41).is_none(), "60 + 41 > 100");
    let b = budget.try_reserve(40).unwrap();
    assert_eq!(budget.used(), 100);
    drop(a);
    assert_eq!(budget.used(), 40);
    assert!(budget.try_reserve(61).is_none());
    drop(b);
    // Alone, a what-if larger than the whole budget still runs (one at a time).
    let big = budget.try_reserve(1_000).unwrap();
    assert!(budget.try_reserve(1).is_none());
    drop(big);
    assert_eq!(budget.used(), 0);
}

#[tokio::test]
async fn json_is_compressed_for_clients_that_accept_it() {
    let f = fixture().await;
    let plain = body(send(&f.state, get("/api/graph?state=all")).await).await;
    for (accept, encoding) in [("gzip", "gzip"), ("br", "br"), ("br, gzip", "br")] {
        let req = Request::get("/api/graph?state=all")
            .header(header::ACCEPT_ENCODING, accept)
            .body(Body::empty())
            .unwrap();
        let res = send(&f.state, req).await;
        assert_eq!(header(&res, "content-encoding"), encoding);
        let compressed = body(res).await;
        assert!(compressed.len() * 3 < plain.len(), "{accept}");
    }
}

#[tokio::test]
async fn assets_use_precompressed_files_etags_and_cache_headers() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg-0123456789abcdef");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(dir.path().join("index.html"), "<html>app</html>").unwrap();
    std::fs::write(pkg.join("accord_bg.wasm"), b"\0asm plain").unwrap();
    std::fs::write(pkg.join("accord_bg.wasm.br"), b"brotli bytes").unwrap();
    let store = Store::open(":memory:").await.unwrap();
    let mut state = AppState::new(store, "demo".into());
    state.assets = Some(dir.path().to_path_buf());
    let state = Arc::new(state);

    let wasm = "/pkg-0123456789abcdef/accord_bg.wasm";
    let req = Request::get(wasm)
        .header(header::ACCEPT_ENCODING, "br")
        .body(Body::empty())
        .unwrap();
    let res = send(&state, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/wasm");
    assert_eq!(header(&res, "content-encoding"), "br");
    assert!(header(&res, "cache-control").contains("immutable"));
    let etag = header(&res, "etag").to_string();
    assert_eq!(&body(res).await[..], b"brotli bytes");
    let res = send(&state, get(wasm)).await;
    assert_eq!(&body(res).await[..], b"\0asm plain");
    let req = Request::get(wasm)
        .header(header::ACCEPT_ENCODING, "br")
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&state, req).await.status(), StatusCode::NOT_MODIFIED);

    // The page (also for client-side routes) is revalidated, never cached blindly.
    for uri in ["/", "/graph/storefront"] {
        let res = send(&state, get(uri)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "cache-control"), "no-cache", "{uri}");
        assert!(header(&res, "content-type").starts_with("text/html"));
        assert_eq!(&body(res).await[..], b"<html>app</html>");
    }
    // A missing file is a 404, not the page.
    assert_json_error(
        send(&state, get("/pkg-0123456789abcdef/missing.js")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json() {
    let f = fixture().await;
    // An inconsistent view (an edge index past the end) makes the graph query index out of
    // bounds.
    let mut view = View::default();
    view.nodes.push(api::Node {
        id: "a/a[Deployment]".into(),
        namespace: "a".into(),
        ..Default::default()
    });
    view.out_edges.insert("a/a[Deployment]".into(), vec![7]);
    f.state.set_view(view);
    let e = assert_json_error(
        send(&f.state, get("/api/graph?workload=a/a%5BDeployment%5D")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert!(e.error.contains("internal error"));
    // The server goes on answering.
    assert_eq!(
        send(&f.state, get("/healthz")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn event_streams_end_when_the_server_shuts_down() {
    let f = fixture().await;
    let res = send(&f.state, get("/api/events")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "text/event-stream");
    let reader = tokio::spawn(body(res));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished(), "the stream ended before shutdown");
    f.state.shutdown.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("the stream ended within a second of shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_deeply_nested_what_if_is_refused_quickly() {
    let f = fixture().await;
    // 100,000 levels of flow mappings in under the body limit.
    let deep = format!("a: {}1{}\n", "{a: ".repeat(100_000), "}".repeat(100_000));
    assert!(deep.len() < super::super::BODY_LIMIT);
    let t = std::time::Instant::now();
    let req = Request::post("/api/what-if")
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from(deep))
        .unwrap();
    let e = assert_json_error(send(&f.state, req).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(
        e.diagnostics
            .unwrap()
            .iter()
            .any(|d| d.message.contains("nested more than")),
    );
}

#[tokio::test]
async fn a_degraded_source_or_failing_storage_shows_in_readyz_status_and_metrics() {
    let f = fixture().await;
    let (s, b) = super::get(&f.state, "/readyz").await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"ready\n"[..]));
    f.state
        .set_source_health(super::super::super::SourceHealth {
            degraded: true,
            diagnostics: vec![api::Diagnostic::error(
                api::DiagnosticCode::Unreadable,
                &api::Origin::new("m/a.yaml", 0),
                "",
                "",
                "not UTF-8 text",
            )],
            stale: vec!["m/a.yaml".into()],
        });
    *f.state.storage_error.write().unwrap() = Some("database or disk is full".into());
    let (s, b) = super::get(&f.state, "/readyz").await;
    let text = String::from_utf8_lossy(&b);
    assert_eq!(s, StatusCode::OK, "the last good state is still served");
    assert!(
        text.contains("degraded: source") && text.contains("m/a.yaml"),
        "{text}"
    );
    assert!(
        text.contains("degraded: storage: database or disk is full"),
        "{text}"
    );
    let (_, b) = super::get(&f.state, "/api/status").await;
    let status: api::Status = json(&b);
    assert!(status.degraded);
    assert_eq!(status.stale, ["m/a.yaml"]);
    assert_eq!(
        status.storage_error.as_deref(),
        Some("database or disk is full")
    );
    assert!(
        status
            .diagnostics
            .iter()
            .any(|d| d.origin.file == "m/a.yaml")
    );
    let (_, b) = super::get(&f.state, "/metrics").await;
    assert!(String::from_utf8_lossy(&b).contains("sync_source_degraded 1"));
}

/// A small filesystem that the test fills: a tmpfs mounted by the test when it runs as root,
/// otherwise SQLite's `max_page_count` at the database's current size (the same SQLITE_FULL).
struct FullDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl FullDisk {
    fn new() -> FullDisk {
        let dir = tempfile::tempdir().unwrap();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mounted = root
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
        FullDisk { dir, mounted }
    }

    fn db(&self) -> String {
        self.dir.path().join("accord.db").display().to_string()
    }

    /// Fill the filesystem (tmpfs), or reopen the store unable to grow.
    async fn fill(&self, store: Store) -> Store {
        if self.mounted {
            let mut f = std::fs::File::create(self.dir.path().join("fill")).unwrap();
            let block = vec![0u8; 64 * 1024];
            while std::io::Write::write_all(&mut f, &block).is_ok() {}
            store
        } else {
            let pages: i64 = store.page_count().await.unwrap();
            store.close().await;
            Store::open_with_max_pages(&self.db(), pages as u64)
                .await
                .unwrap()
        }
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(self.dir.path())
                .status();
        }
    }
}

#[tokio::test]
async fn writes_on_a_full_filesystem_are_errors_never_silent_loss() {
    use super::super::super::{demo, sync::Syncer};
    use crate::cluster::Index;

    let disk = FullDisk::new();
    let store = Store::open(&disk.db()).await.unwrap();
    let mut syncer = Syncer::new(store.clone(), "demo", Default::default())
        .await
        .unwrap();
    let mut idx = Index::default();
    idx.reset_all(demo::objects());
    syncer.pass(Arc::new(idx.clone())).await.unwrap();
    let store = disk.fill(store).await;
    let state = Arc::new(AppState::new(store.clone(), "demo".into()));
    let big = serde_json::to_vec(&api::NewDraft {
        name: "big".into(),
        yaml: "#".repeat(200_000),
    })
    .unwrap();
    let post = || {
        Request::post("/api/drafts")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big.clone()))
            .unwrap()
    };
    let e = assert_json_error(
        send(&state, post()).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert!(e.error.contains("internal error"));
    assert!(store.drafts().await.unwrap().is_empty());
    // A sync pass that cannot be stored is an error, and not served.
    let mut syncer = Syncer::new(store.clone(), "demo", Default::default())
        .await
        .unwrap();
    idx.delete("NetworkPolicy", "storefront", "allow-catalog-from-anywhere");
    assert!(syncer.pass(Arc::new(idx)).await.is_err());
    if disk.mounted {
        // Room again: the same request succeeds and stays.
        std::fs::remove_file(disk.dir.path().join("fill")).unwrap();
        assert_eq!(send(&state, post()).await.status(), StatusCode::CREATED);
        assert_eq!(store.drafts().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_request_over_the_timeout_is_answered_503_with_the_json_error() {
    let mut f = fixture().await;
    // A request whose body never finishes arriving: its handler cannot answer before the limit,
    // whatever the machine's speed (a what-if on the demo can finish within a millisecond).
    Arc::get_mut(&mut f.state)
        .expect("the fixture's state has one owner")
        .request_timeout = Duration::from_millis(200);
    let never = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let req = Request::post("/api/what-if")
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(Body::from_stream(never))
        .unwrap();
    let t = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(5), send(&f.state, req))
        .await
        .expect("answered at the request timeout, not left waiting for the body");
    let e = assert_json_error(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(e.error.contains("took too long"), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn the_openapi_document_lists_the_web_layer_answers_where_they_can_occur() {
    let f = fixture().await;
    let res = send(&f.state, get("/api/openapi.json")).await;
    let doc: serde_json::Value = json(&body(res).await);
    let codes = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} not documented"))
            .keys()
            .cloned()
            .collect()
    };
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if method == "parameters" {
                continue;
            }
            assert!(
                codes(path, method).contains(&"421".to_string()),
                "{method} {path} lacks 421 (Host not ours)"
            );
        }
    }
    let what_if = codes("/api/what-if", "post");
    for code in ["403", "413", "415", "421", "429", "503"] {
        assert!(what_if.contains(&code.to_string()), "what-if lacks {code}");
    }
    for (path, method) in [("/api/drafts", "post"), ("/api/drafts/{id}", "put")] {
        assert!(
            codes(path, method).contains(&"415".to_string()),
            "{method} {path}"
        );
    }
    assert!(!codes("/api/drafts", "get").contains(&"415".to_string()));
}

#[tokio::test]
async fn graph_answers_are_compressed_once_per_pass() {
    use std::io::Read;
    let f = fixture().await;
    for uri in [
        "/api/graph",
        "/api/graph?state=all",
        "/api/graph?level=namespace",
    ] {
        let plain = body(send(&f.state, get(uri)).await).await;
        for (accept, encoding) in [("br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip")] {
            let req = || {
                Request::get(uri)
                    .header(header::ACCEPT_ENCODING, accept)
                    .body(Body::empty())
                    .unwrap()
            };
            let res = send(&f.state, req()).await;
            assert_eq!(header(&res, "content-encoding"), encoding, "{uri} {accept}");
            assert_eq!(header(&res, "vary"), "accept-encoding");
            let first = body(res).await;
            // Compressed once: the pass's cache holds these very bytes and serves them again.
            let cached = f.state.view().compressed_graphs.lock().unwrap().len();
            let again = body(send(&f.state, req()).await).await;
            assert_eq!(first, again, "{uri} {accept}");
            assert_eq!(
                f.state.view().compressed_graphs.lock().unwrap().len(),
                cached
            );
            // Compressed exactly once (the compression layer leaves it alone).
            let mut out = Vec::new();
            if encoding == "br" {
                brotli::Decompressor::new(&first[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            } else {
                flate2::read::GzDecoder::new(&first[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            assert_eq!(out, plain.to_vec(), "{uri} {accept}");
        }
    }
    assert!(f.state.view().compressed_graphs.lock().unwrap().len() >= 6);
}
