//! The operator's Prometheus metrics (`reconcile_*`), and its `/metrics`, `/healthz` and
//! `/readyz`, served by axum.
//!
//! Exposed (counters carry `_total`): `reconcile_batches_total`, `reconcile_subjects_total`,
//! `reconcile_duration_seconds` (a histogram of batch durations, API requests included),
//! `reconcile_api_requests_total{op}`, `reconcile_errors_total{op, code}` (failed requests by
//! kind of write and [`ErrorCode`]), `reconcile_invalid_intents_total`, and the gauges
//! `reconcile_leader` and `reconcile_ready`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::state::Write;

/// The kind of API request a reconcile makes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Op {
    ApplyPolicy,
    DeletePolicy,
    PatchPod,
    PatchStatus,
    Finalizer,
    Event,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::ApplyPolicy,
        Op::DeletePolicy,
        Op::PatchPod,
        Op::PatchStatus,
        Op::Finalizer,
        Op::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::ApplyPolicy => "apply_policy",
            Op::DeletePolicy => "delete_policy",
            Op::PatchPod => "patch_pod",
            Op::PatchStatus => "patch_status",
            Op::Finalizer => "finalizer",
            Op::Event => "event",
        }
    }

    pub fn of(write: &Write) -> Op {
        match write {
            Write::ApplyPolicy { .. } => Op::ApplyPolicy,
            Write::DeletePolicy { .. } => Op::DeletePolicy,
            Write::PatchPodLabels { .. } => Op::PatchPod,
            Write::PatchStatus { .. } => Op::PatchStatus,
        }
    }
}

impl EncodeLabelValue for Op {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// Why an API request failed, as a metric label: from the API server's status code (and
/// reason), or from the transport.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ErrorCode {
    /// 409: the object changed meanwhile (a guarded patch) or the field is owned elsewhere.
    Conflict,
    /// 401 or 403: the operator's RBAC does not allow the request.
    Forbidden,
    /// 400 or 422: the API server (or an admission webhook) refused the object.
    Invalid,
    /// 404 or 410.
    NotFound,
    /// 429: the API server's priority and fairness throttled the request.
    Throttled,
    /// 408, 504, a server-side timeout, or a client-side one.
    Timeout,
    /// Any other 5xx.
    ServerError,
    /// The connection failed (refused, reset, TLS).
    Transport,
    Other,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Conflict => "conflict",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ServerError => "server_error",
            ErrorCode::Transport => "transport",
            ErrorCode::Other => "other",
        }
    }

    pub fn of(error: &kube::Error) -> ErrorCode {
        match error {
            kube::Error::Api(status) => match (status.code, status.reason.as_str()) {
                (_, "Timeout" | "ServerTimeout") | (408 | 504, _) => ErrorCode::Timeout,
                (409, _) => ErrorCode::Conflict,
                (401 | 403, _) => ErrorCode::Forbidden,
                (400 | 422, _) => ErrorCode::Invalid,
                (404 | 410, _) => ErrorCode::NotFound,
                (429, _) => ErrorCode::Throttled,
                (500..=599, _) => ErrorCode::ServerError,
                _ => ErrorCode::Other,
            },
            kube::Error::HyperError(e) if e.is_timeout() => ErrorCode::Timeout,
            kube::Error::HyperError(_) | kube::Error::Service(_) if timed_out(error) => {
                ErrorCode::Timeout
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::RustlsTls(_) => {
                ErrorCode::Transport
            }
            _ => ErrorCode::Other,
        }
    }
}

/// Whether an I/O timeout is among an error's causes (kube's client times out connects and
/// reads with `std::io::ErrorKind::TimedOut`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

impl EncodeLabelValue for ErrorCode {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: Op,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    op: Op,
    code: ErrorCode,
}

pub struct Metrics {
    registry: Registry,
    batches: Counter,
    subjects: Counter,
    duration: Histogram,
    requests: Family<OpLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    invalid_intents: Counter,
    leader: Gauge,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            batches: Counter::default(),
            subjects: Counter::default(),
            duration: Histogram::new(crate::metrics::PASS_BUCKETS),
            requests: Family::default(),
            errors: Family::default(),
            invalid_intents: Counter::default(),
            leader: Gauge::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        let registry = &mut m.registry;
        registry.register(
            "reconcile_batches",
            "Reconcile batches run",
            m.batches.clone(),
        );
        registry.register(
            "reconcile_subjects",
            "Subjects (servers and clients) reconciled",
            m.subjects.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile batch, including its API requests",
            m.duration.clone(),
        );
        registry.register(
            "reconcile_api_requests",
            "API requests made by reconciles, by kind of write",
            m.requests.clone(),
        );
        registry.register(
            "reconcile_errors",
            "API requests of reconciles that failed, by kind of write and error code",
            m.errors.clone(),
        );
        registry.register(
            "reconcile_invalid_intents",
            "ClientIntents found invalid",
            m.invalid_intents.clone(),
        );
        registry.register(
            "reconcile_leader",
            "Whether this replica holds the lease",
            m.leader.clone(),
        );
        registry.register(
            "reconcile_ready",
            "Whether the first full reconcile is done",
            m.ready.clone(),
        );
        // Every kind of request shows from the start, at 0 (a standby's are all 0).
        for op in Op::ALL {
            let _ = m.requests.get_or_create(&OpLabels { op });
        }
        m
    }
}

impl Metrics {
    /// One API request of kind `op` is being made.
    pub fn request(&self, op: Op) {
        self.requests.get_or_create(&OpLabels { op }).inc();
    }

    /// An API request of kind `op` failed.
    pub fn error(&self, op: Op, error: &kube::Error) {
        let code = ErrorCode::of(error);
        self.errors.get_or_create(&ErrorLabels { op, code }).inc();
    }

    /// A reconcile batch of `subjects` subjects took `elapsed`.
    pub fn batch(&self, subjects: usize, elapsed: Duration) {
        self.batches.inc();
        self.subjects.inc_by(subjects as u64);
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn invalid_intents(&self) {
        self.invalid_intents.inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Ready for traffic: the first full reconcile is done, or this replica is a standby (it is
    /// healthy and waits for the lease).
    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1 || self.leader.get() == 0
    }

    /// The metrics in the Prometheus text format.
    #[cfg(test)]
    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    crate::metrics::scrape(&metrics.registry, &headers)
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> Response {
    if metrics.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "initial sync in progress\n",
        )
            .into_response()
    }
}

/// Serve [`router`] until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    if let Err(e) = axum::serve(listener, router(metrics)).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use kube::core::Status;
    use tower::ServiceExt;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("refused", reason).with_code(code)))
    }

    #[test]
    fn error_codes_follow_the_status() {
        for (code, reason, want) in [
            (409, "Conflict", "conflict"),
            (403, "Forbidden", "forbidden"),
            (422, "Invalid", "invalid"),
            (404, "NotFound", "not_found"),
            (429, "TooManyRequests", "throttled"),
            (504, "Timeout", "timeout"),
            (500, "ServerTimeout", "timeout"),
            (500, "InternalError", "server_error"),
            (418, "Teapot", "other"),
        ] {
            assert_eq!(
                ErrorCode::of(&api_error(code, reason)).as_str(),
                want,
                "{code} {reason}"
            );
        }
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        assert_eq!(
            ErrorCode::of(&kube::Error::Service(Box::new(io))),
            ErrorCode::Timeout
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            ErrorCode::of(&kube::Error::Service(Box::new(refused))),
            ErrorCode::Transport
        );
    }

    #[test]
    fn exposes_every_name_readers_rely_on() {
        let m = Metrics::default();
        m.set_leader(true);
        m.request(Op::ApplyPolicy);
        m.error(Op::ApplyPolicy, &api_error(409, "Conflict"));
        m.error(Op::PatchStatus, &api_error(422, "Invalid"));
        m.batch(3, Duration::from_millis(30));
        let text = m.render();
        for line in [
            "reconcile_batches_total 1\n",
            "reconcile_subjects_total 3\n",
            "reconcile_api_requests_total{op=\"apply_policy\"} 1\n",
            // Kinds not used yet show at 0 (the leader election test reads a standby's).
            "reconcile_api_requests_total{op=\"delete_policy\"} 0\n",
            "reconcile_errors_total{op=\"apply_policy\",code=\"conflict\"} 1\n",
            "reconcile_errors_total{op=\"patch_status\",code=\"invalid\"} 1\n",
            "reconcile_invalid_intents_total 0\n",
            "# TYPE reconcile_duration_seconds histogram\n",
            "reconcile_duration_seconds_bucket{le=\"0.025\"} 0\n",
            "reconcile_duration_seconds_bucket{le=\"0.05\"} 1\n",
            "reconcile_duration_seconds_count 1\n",
            "reconcile_leader 1\n",
            "reconcile_ready 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness_with_axum() {
        let metrics = Arc::new(Metrics::default());
        let get = |path: &'static str| {
            let app = router(metrics.clone());
            async move {
                let res = app
                    .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
                    .await
                    .expect("an answer");
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .expect("a body");
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(get("/healthz").await.0, StatusCode::OK);
        // A standby is ready; a leader only after its first full reconcile.
        assert_eq!(get("/readyz").await.0, StatusCode::OK);
        metrics.set_leader(true);
        assert_eq!(get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        metrics.set_ready(true);
        assert_eq!(get("/readyz").await.0, StatusCode::OK);
        let (status, body) = get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("reconcile_ready 1\n"), "{body}");
        assert_eq!(get("/nope").await.0, StatusCode::NOT_FOUND);
    }
}
