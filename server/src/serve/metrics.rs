//! Prometheus metrics of the dashboard backend (`sync_*`, `http_*`), rendered as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// (route, method, status) → (count, seconds sum).
type HttpStats = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    sync_passes: AtomicU64,
    sync_failures: AtomicU64,
    sync_changes: AtomicU64,
    /// Gauges stored as f64 bits.
    sync_last_seconds: AtomicU64,
    sync_workloads: AtomicU64,
    sync_edges: AtomicU64,
    /// 1 when part of the source is served from its last good state.
    source_degraded: AtomicU64,
    /// 1 when the last write to the database failed.
    storage_failing: AtomicU64,
    http: Mutex<HttpStats>,
}

impl Metrics {
    pub fn record_sync(&self, seconds: f64, workloads: usize, edges: usize, changes: u32) {
        self.sync_passes.fetch_add(1, Ordering::Relaxed);
        self.sync_changes
            .fetch_add(u64::from(changes), Ordering::Relaxed);
        self.sync_last_seconds
            .store(seconds.to_bits(), Ordering::Relaxed);
        self.sync_workloads
            .store(workloads as u64, Ordering::Relaxed);
        self.sync_edges.store(edges as u64, Ordering::Relaxed);
        self.storage_failing.store(0, Ordering::Relaxed);
    }

    pub fn record_sync_failure(&self) {
        self.sync_failures.fetch_add(1, Ordering::Relaxed);
        self.storage_failing.store(1, Ordering::Relaxed);
    }

    pub fn set_source_degraded(&self, degraded: bool) {
        self.source_degraded
            .store(u64::from(degraded), Ordering::Relaxed);
    }

    pub fn record_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut m = self.http.lock().expect("metrics lock");
        let e = m
            .entry((route.to_string(), method.to_string(), status))
            .or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut out,
            "sync_passes_total",
            "Sync passes completed.",
            self.sync_passes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "sync_failures_total",
            "Sync passes that failed to write.",
            self.sync_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "sync_edge_changes_total",
            "Edge changes logged.",
            self.sync_changes.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "sync_last_duration_seconds",
            "Duration of the last sync pass.",
            f64::from_bits(self.sync_last_seconds.load(Ordering::Relaxed)),
        );
        gauge(
            &mut out,
            "sync_workloads",
            "Workloads in the last pass.",
            self.sync_workloads.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "sync_edges",
            "Edges in the last pass.",
            self.sync_edges.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "sync_source_degraded",
            "1 when part of the source cannot be read and is served from its last good state.",
            self.source_degraded.load(Ordering::Relaxed) as f64,
        );
        gauge(
            &mut out,
            "sync_storage_failing",
            "1 when the last sync pass failed to write the database.",
            self.storage_failing.load(Ordering::Relaxed) as f64,
        );
        let m = self.http.lock().expect("metrics lock");
        out.push_str("# HELP http_requests_total HTTP requests by route, method and status.\n# TYPE http_requests_total counter\n");
        for ((route, method, status), (n, _)) in m.iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP http_request_duration_seconds_sum Total time spent answering, by route.\n# TYPE http_request_duration_seconds_sum counter\n");
        let mut by_route: BTreeMap<&str, f64> = BTreeMap::new();
        for ((route, _, _), (_, s)) in m.iter() {
            *by_route.entry(route).or_default() += s;
        }
        for (route, s) in by_route {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{route=\"{route}\"}} {s}"
            );
        }
        out
    }
}
