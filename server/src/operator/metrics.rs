//! Prometheus metrics (`reconcile_*`) and the `/metrics`, `/healthz`, `/readyz` endpoints.
//!
//! The endpoints are served by a few lines of HTTP/1.1 on a Tokio listener: three fixed GET
//! routes do not justify a web framework in the operator.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Metrics {
    /// Reconcile batches run.
    pub reconcile_batches: AtomicU64,
    /// Subjects (servers and clients) reconciled.
    pub reconcile_subjects: AtomicU64,
    /// Total time spent reconciling, in microseconds.
    pub reconcile_micros: AtomicU64,
    /// API requests made by reconciles, by kind of write.
    pub requests_apply_policy: AtomicU64,
    pub requests_delete_policy: AtomicU64,
    pub requests_patch_pod: AtomicU64,
    pub requests_patch_status: AtomicU64,
    pub requests_finalizer: AtomicU64,
    pub requests_event: AtomicU64,
    /// Requests that failed.
    pub reconcile_errors: AtomicU64,
    /// ClientIntents that could not be used (invalid).
    pub invalid_intents: AtomicU64,
    /// Every watch has listed once and the first full reconcile is done.
    pub ready: AtomicBool,
    /// This replica holds the lease.
    pub leader: AtomicBool,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, labels: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{labels} {value}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "reconcile_batches_total",
            "Reconcile batches run.",
            "",
            get(&self.reconcile_batches),
        );
        counter(
            "reconcile_subjects_total",
            "Subjects (servers and clients) reconciled.",
            "",
            get(&self.reconcile_subjects),
        );
        counter(
            "reconcile_errors_total",
            "API requests of reconciles that failed.",
            "",
            get(&self.reconcile_errors),
        );
        counter(
            "reconcile_invalid_intents_total",
            "ClientIntents found invalid.",
            "",
            get(&self.invalid_intents),
        );
        let mut requests = String::from(
            "# HELP reconcile_api_requests_total API requests made by reconciles.\n# TYPE reconcile_api_requests_total counter\n",
        );
        for (op, v) in [
            ("apply_policy", &self.requests_apply_policy),
            ("delete_policy", &self.requests_delete_policy),
            ("patch_pod", &self.requests_patch_pod),
            ("patch_status", &self.requests_patch_status),
            ("finalizer", &self.requests_finalizer),
            ("event", &self.requests_event),
        ] {
            let _ = writeln!(
                requests,
                "reconcile_api_requests_total{{op=\"{op}\"}} {}",
                get(v)
            );
        }
        let _ = writeln!(
            out,
            "# HELP reconcile_duration_seconds_total Time spent reconciling, including API requests.\n# TYPE reconcile_duration_seconds_total counter\nreconcile_duration_seconds_total {:.6}",
            get(&self.reconcile_micros) as f64 / 1e6
        );
        out.push_str(&requests);
        let _ = writeln!(
            out,
            "# HELP reconcile_leader Whether this replica holds the lease.\n# TYPE reconcile_leader gauge\nreconcile_leader {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP reconcile_ready Whether the first full reconcile is done.\n# TYPE reconcile_ready gauge\nreconcile_ready {}",
            u8::from(self.ready.load(Ordering::Relaxed))
        );
        out
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let Ok(n) = stream.read(&mut buf).await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.render()),
                "/healthz" => ("200 OK", "ok\n".to_string()),
                // A standby replica is ready too: it is healthy and waiting for the lease.
                "/readyz"
                    if metrics.ready.load(Ordering::Relaxed)
                        || !metrics.leader.load(Ordering::Relaxed) =>
                {
                    ("200 OK", "ok\n".to_string())
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "initial sync in progress\n".to_string(),
                ),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
