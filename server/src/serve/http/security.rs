//! Web security: which `Host` names are served (DNS rebinding), cross-site requests refused on
//! state-changing methods, the security headers of every response, and the apply token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::super::SharedState;
use super::error::error_response;

/// The Content-Security-Policy of every response. The dashboard is a module script plus WASM
/// (`'wasm-unsafe-eval'` lets it compile); Leptos sets `style` attributes, hence inline styles;
/// the favicon is a `data:` URL.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the dashboard is reached: the listen address and the public URLs it is served under.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub listen: SocketAddr,
    pub public_urls: Vec<PublicUrl>,
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_urls: Vec::new(),
        }
    }
}

/// A URL the dashboard is served under (behind a proxy or a DNS name), as `--public-url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    pub scheme: String,
    /// Lowercase, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for PublicUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<PublicUrl, String> {
        let uri: Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        let scheme = uri
            .scheme_str()
            .map(str::to_ascii_lowercase)
            .filter(|s| s == "http" || s == "https")
            .ok_or_else(|| format!("{s:?}: the public URL must start with http:// or https://"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{s:?}: the public URL needs a host"))?;
        Ok(PublicUrl {
            port: authority
                .port_u16()
                .unwrap_or(default_port(&scheme).unwrap_or(80)),
            host: bare_host(authority.host()),
            scheme,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A host name lowercased, without IPv6 brackets or a trailing dot.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl WebConfig {
    /// Whether a request for `host` (and `port`, when the request named one) is ours. IP
    /// addresses are checked against the listen address (any port: port forwards change it);
    /// names must be `localhost` on a loopback listener or a public URL's host. DNS rebinding
    /// needs a name that an attacker controls, and such a name is refused here.
    pub fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        let host = bare_host(host);
        let listen = self.listen.ip();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return listen.is_unspecified()
                || ip == listen
                || (listen.is_loopback() && ip.is_loopback());
        }
        if self
            .public_urls
            .iter()
            .any(|u| u.host == host && port.is_none_or(|p| p == u.port))
        {
            return true;
        }
        (host == "localhost" || host.ends_with(".localhost"))
            && (listen.is_loopback() || listen.is_unspecified())
    }
}

/// The authority a request was sent to: its `Host` header, or the URI's (HTTP/2).
fn request_authority(req: &Request) -> Option<Authority> {
    match req.headers().get(header::HOST) {
        Some(v) => v.to_str().ok()?.parse().ok(),
        None => req.uri().authority().cloned(),
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether a browser's `Origin` is the request's own (scheme-default ports compared) or a
/// public URL's.
fn origin_allowed(web: &WebConfig, origin: &str, authority: Option<&Authority>) -> bool {
    let Ok(uri) = origin.parse::<Uri>() else {
        return false;
    };
    let (Some(scheme), Some(o)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    let Some(default) = default_port(&scheme) else {
        return false;
    };
    let (host, port) = (bare_host(o.host()), o.port_u16().unwrap_or(default));
    let same = authority
        .is_some_and(|a| bare_host(a.host()) == host && a.port_u16().unwrap_or(default) == port);
    same || web
        .public_urls
        .iter()
        .any(|u| u.scheme == scheme && u.host == host && u.port == port)
}

/// Refuse requests for hosts that are not ours, and state-changing requests that a browser
/// sends from another site.
pub async fn guard(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let authority = request_authority(&req);
    if req.headers().contains_key(header::HOST) && authority.is_none() {
        return error_response(StatusCode::BAD_REQUEST, "malformed Host header".into());
    }
    if let Some(a) = &authority
        && !state.web.host_allowed(a.host(), a.port_u16())
    {
        tracing::warn!(host = %a, "refused a request for a host that is not ours");
        return error_response(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer for host {a:?}; if it is reached under that name, \
                 start accord serve with --public-url"
            ),
        );
    }
    if is_state_changing(req.method()) {
        let headers = req.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        let bad_origin = headers.get(header::ORIGIN).is_some_and(|o| {
            o.to_str()
                .map_or(true, |o| !origin_allowed(&state.web, o, authority.as_ref()))
        });
        if cross_site || bad_origin {
            return error_response(
                StatusCode::FORBIDDEN,
                "cross-site requests may not change anything".into(),
            );
        }
    }
    next.run(req).await
}

/// Whether `Authorization` carries `Bearer <expected>` (scheme in any case), compared in
/// constant time.
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes()))
}

/// The content type of a request without parameters, lowercased.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(listen: &str, public: &[&str]) -> WebConfig {
        WebConfig {
            listen: listen.parse().unwrap(),
            public_urls: public.iter().map(|u| u.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn loopback_listener_answers_loopback_addresses_and_localhost_only() {
        let w = web("127.0.0.1:8080", &[]);
        assert!(w.host_allowed("127.0.0.1", Some(8080)));
        assert!(w.host_allowed("127.0.0.1", Some(9000)));
        assert!(w.host_allowed("[::1]", None));
        assert!(w.host_allowed("LOCALHOST", Some(8080)));
        assert!(!w.host_allowed("attacker.example", Some(8080)));
        assert!(!w.host_allowed("10.0.0.1", None));
    }

    #[test]
    fn public_urls_add_their_host_and_port() {
        let w = web("0.0.0.0:8080", &["https://Accord.Example.com/"]);
        assert!(w.host_allowed("accord.example.com", None));
        assert!(w.host_allowed("accord.example.com.", Some(443)));
        assert!(!w.host_allowed("accord.example.com", Some(8443)));
        assert!(w.host_allowed("10.1.2.3", Some(8080)));
        assert!(!w.host_allowed("other.example.com", None));
        assert!("ftp://x".parse::<PublicUrl>().is_err());
        assert!("/relative".parse::<PublicUrl>().is_err());
    }

    #[test]
    fn origins_must_be_the_request_host_or_a_public_url() {
        let w = web("127.0.0.1:8080", &["https://accord.example.com"]);
        let a: Authority = "127.0.0.1:8080".parse().unwrap();
        assert!(origin_allowed(&w, "http://127.0.0.1:8080", Some(&a)));
        assert!(!origin_allowed(&w, "http://127.0.0.1:9999", Some(&a)));
        assert!(!origin_allowed(&w, "http://evil.example", Some(&a)));
        assert!(!origin_allowed(&w, "null", Some(&a)));
        assert!(origin_allowed(&w, "https://accord.example.com", Some(&a)));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_exact() {
        let mut h = HeaderMap::new();
        for (value, ok) in [
            ("Bearer s3cret", true),
            ("bearer s3cret", true),
            ("BEARER  s3cret ", true),
            ("Bearer s3cre", false),
            ("Bearer s3cret2", false),
            ("Basic s3cret", false),
            ("s3cret", false),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_matches(&h, "s3cret"), ok, "{value}");
        }
    }
}
