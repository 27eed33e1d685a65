//! The built frontend: files from the assets directory through tower-http's `ServeDir` (MIME
//! types, ETags, ranges, the `.br`/`.gz` files scripts/build-frontend.sh writes beside each one),
//! `index.html` for client-side routes, and cache headers: content-hashed names are immutable,
//! everything else is revalidated.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use super::super::SharedState;

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

/// Cache-Control of files whose name carries their content's hash.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether a path names a content-hashed file or directory: a segment `NAME-HASH[.EXT]` with a
/// hash of at least 16 hex digits, as scripts/build-frontend.sh writes them.
pub fn is_content_hashed(path: &str) -> bool {
    path.split('/').any(|seg| {
        let stem = seg.split('.').next().unwrap_or("");
        stem.rsplit_once('-').is_some_and(|(name, hash)| {
            !name.is_empty() && hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
        })
    })
}

pub async fn assets(State(state): State<SharedState>, req: Request) -> Response {
    let Some(dir) = state
        .assets
        .clone()
        .filter(|d| d.join("index.html").is_file())
    else {
        let mut res = Html(NOT_BUILT).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return res;
    };
    let path = req.uri().path().to_string();
    // A client-side route (a path whose last segment has no extension) gets the app's page; a
    // missing file is a 404, not the page in its place.
    let is_route = !path.rsplit('/').next().unwrap_or("").contains('.');
    let files = ServeDir::new(&dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true);
    let index = ServeFile::new(dir.join("index.html"))
        .precompressed_br()
        .precompressed_gzip();
    let mut res = if is_route {
        match files.fallback(index).oneshot(req).await {
            Ok(res) => res.map(Body::new),
            Err(e) => match e {},
        }
    } else {
        match files.oneshot(req).await {
            Ok(res) => res.map(Body::new),
            Err(e) => match e {},
        }
    };
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        let cache = if is_content_hashed(&path) {
            IMMUTABLE
        } else {
            "no-cache"
        };
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_content_hashed("/pkg-0123456789abcdef/accord_bg.wasm"));
        assert!(is_content_hashed("/style-0123456789abcdef.css"));
        assert!(!is_content_hashed("/style.css"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/pkg-12/accord.js"));
        assert!(!is_content_hashed("/graph/storefront-deployment"));
    }
}
