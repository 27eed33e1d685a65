//! Prometheus metrics of the dashboard backend (`sync_*`, `http_*`).
//!
//! Exposed (counters carry `_total`): `sync_passes_total`, `sync_failures_total`,
//! `sync_edge_changes_total`, `sync_duration_seconds` (a histogram of whole passes),
//! `sync_phase_duration_seconds{phase}` (inventory, analysis, comparison, write), the gauges
//! `sync_last_duration_seconds`, `sync_workloads` and `sync_edges`;
//! `http_requests_total{route, method, status}` and `http_request_duration_seconds{route,
//! method, status_class}`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How long each phase of a sync pass took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Phases {
    /// Building the core's inventory from the index.
    pub inventory: Duration,
    /// The core's drift analysis.
    pub analysis: Duration,
    /// Comparing with the stored pass (objects, edges, the change log).
    pub comparison: Duration,
    /// The SQLite transaction.
    pub write: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: String,
    method: String,
    /// `2xx`, `4xx`, …: few enough series per route for a histogram.
    status_class: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    passes: Counter,
    failures: Counter,
    changes: Counter,
    duration: Histogram,
    phases: Histograms<PhaseLabels>,
    last_seconds: Gauge<f64, AtomicU64>,
    workloads: Gauge,
    edges: Gauge,
    /// 1 when part of the source is served from its last good state.
    source_degraded: Gauge,
    /// 1 when the last sync pass could not be written to the database.
    storage_failing: Gauge,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<LatencyLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            passes: Counter::default(),
            failures: Counter::default(),
            changes: Counter::default(),
            duration: Histogram::new(crate::metrics::PASS_BUCKETS),
            phases: Family::new_with_constructor(|| Histogram::new(crate::metrics::PASS_BUCKETS)),
            last_seconds: Gauge::default(),
            workloads: Gauge::default(),
            edges: Gauge::default(),
            source_degraded: Gauge::default(),
            storage_failing: Gauge::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(crate::metrics::REQUEST_BUCKETS)
            }),
        };
        let r = &mut m.registry;
        r.register("sync_passes", "Sync passes completed", m.passes.clone());
        r.register(
            "sync_failures",
            "Sync passes that failed to write",
            m.failures.clone(),
        );
        r.register(
            "sync_edge_changes",
            "Edge changes logged",
            m.changes.clone(),
        );
        r.register(
            "sync_duration_seconds",
            "Duration of a completed sync pass",
            m.duration.clone(),
        );
        r.register(
            "sync_phase_duration_seconds",
            "Duration of each phase of a completed sync pass",
            m.phases.clone(),
        );
        r.register(
            "sync_last_duration_seconds",
            "Duration of the last sync pass",
            m.last_seconds.clone(),
        );
        r.register(
            "sync_workloads",
            "Workloads in the last pass",
            m.workloads.clone(),
        );
        r.register("sync_edges", "Edges in the last pass", m.edges.clone());
        r.register(
            "sync_source_degraded",
            "1 when part of the source cannot be read and is served from its last good state",
            m.source_degraded.clone(),
        );
        r.register(
            "sync_storage_failing",
            "1 when the last sync pass could not be written to the database",
            m.storage_failing.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head), by route, method and status class",
            m.latency.clone(),
        );
        m
    }
}

impl Metrics {
    /// A completed pass: its duration and phases, what it found and how many edges changed.
    pub fn record_sync(
        &self,
        seconds: f64,
        phases: &Phases,
        workloads: usize,
        edges: usize,
        changes: u32,
    ) {
        self.passes.inc();
        self.changes.inc_by(u64::from(changes));
        self.duration.observe(seconds);
        for (phase, d) in [
            ("inventory", phases.inventory),
            ("analysis", phases.analysis),
            ("comparison", phases.comparison),
            ("write", phases.write),
        ] {
            self.phases
                .get_or_create(&PhaseLabels { phase })
                .observe(d.as_secs_f64());
        }
        self.last_seconds.set(seconds);
        self.workloads.set(workloads as i64);
        self.edges.set(edges as i64);
        self.storage_failing.set(0);
    }

    pub fn set_source_degraded(&self, degraded: bool) {
        self.source_degraded.set(i64::from(degraded));
    }

    pub fn record_sync_failure(&self) {
        self.failures.inc();
        self.storage_failing.set(1);
    }

    pub fn record_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        let status_class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.latency
            .get_or_create(&LatencyLabels {
                route: route.to_string(),
                method: method.to_string(),
                status_class,
            })
            .observe(seconds);
    }

    /// The metrics in the Prometheus text format.
    #[cfg(test)]
    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }

    /// The response to a scrape of `/metrics`.
    pub fn scrape(&self, headers: &HeaderMap) -> Response {
        crate::metrics::scrape(&self.registry, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_sync_and_http_metrics_with_histograms() {
        let m = Metrics::default();
        let phases = Phases {
            inventory: Duration::from_millis(20),
            analysis: Duration::from_millis(300),
            comparison: Duration::from_millis(3),
            write: Duration::from_millis(40),
        };
        m.record_sync(0.4, &phases, 12, 30, 5);
        m.record_sync_failure();
        m.record_http("/api/graph", "GET", 200, 0.004);
        m.record_http("/api/graph", "GET", 200, 0.02);
        m.record_http("/api/what-if", "POST", 422, 0.002);
        let text = m.render();
        for line in [
            "sync_passes_total 1\n",
            "sync_failures_total 1\n",
            "sync_edge_changes_total 5\n",
            "sync_workloads 12\n",
            "sync_edges 30\n",
            "sync_last_duration_seconds 0.4\n",
            "# TYPE sync_duration_seconds histogram\n",
            "sync_duration_seconds_bucket{le=\"0.5\"} 1\n",
            "sync_duration_seconds_bucket{le=\"0.25\"} 0\n",
            "sync_phase_duration_seconds_bucket{phase=\"analysis\",le=\"0.25\"} 0\n",
            "sync_phase_duration_seconds_bucket{phase=\"analysis\",le=\"0.5\"} 1\n",
            "sync_phase_duration_seconds_count{phase=\"write\"} 1\n",
            "sync_phase_duration_seconds_count{phase=\"inventory\"} 1\n",
            "sync_phase_duration_seconds_count{phase=\"comparison\"} 1\n",
            "http_requests_total{route=\"/api/graph\",method=\"GET\",status=\"200\"} 2\n",
            "http_requests_total{route=\"/api/what-if\",method=\"POST\",status=\"422\"} 1\n",
            "# TYPE http_request_duration_seconds histogram\n",
            "http_request_duration_seconds_bucket{route=\"/api/graph\",method=\"GET\",status_class=\"2xx\",le=\"0.005\"} 1\n",
            "http_request_duration_seconds_bucket{route=\"/api/graph\",method=\"GET\",status_class=\"2xx\",le=\"0.025\"} 2\n",
            "http_request_duration_seconds_count{route=\"/api/what-if\",method=\"POST\",status_class=\"4xx\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }
}
