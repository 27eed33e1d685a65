//! API errors and their JSON bodies.
//!
//! Every error answer is an `ErrorBody`: the handlers' own errors through [`Error`], and
//! everything else — axum's extractor rejections (bad query or path values, oversized bodies),
//! timeouts, unknown methods, panics — through [`json_errors`], which rewrites any non-JSON
//! error response into one.

use accord_api as api;
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::super::store;

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
    UnsupportedMediaType(String),
    /// Too many requests of one kind at once; `retry_after` in seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u32 },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `ErrorBody` response of a status and message.
pub fn error_response(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(api::ErrorBody {
            error: message,
            diagnostics: None,
        }),
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match &self {
            Error::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let mut res = match self {
            Error::Unprocessable(d) => (
                status,
                Json(api::ErrorBody {
                    error: "the draft has errors".into(),
                    diagnostics: Some(d),
                }),
            )
                .into_response(),
            e @ (Error::Store(_) | Error::Internal(_)) => {
                tracing::error!(error = %e, "internal error answering a request");
                error_response(status, "internal error; see the server log".into())
            }
            e => error_response(status, e.to_string()),
        };
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"accord\""),
            );
        }
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Error bodies at most this long are carried into the JSON message; longer ones are not
/// something a person reads.
const MAX_MESSAGE: usize = 4096;

/// Rewrite every error response that is not JSON (axum's rejections, tower-http's timeouts and
/// limits, 405s) into an `ErrorBody` with the same status and headers.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        // A 5xx's cause is for the log, not the client.
        tracing::error!(%status, body = %text, "error answering a request");
        "internal error; see the server log".to_string()
    } else if text.is_empty() {
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                "the request took too long or the server is busy; try again".to_string()
            }
            s => s.canonical_reason().unwrap_or("error").to_lowercase(),
        }
    } else {
        text
    };
    let body = serde_json::to_vec(&api::ErrorBody {
        error: message,
        diagnostics: None,
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
