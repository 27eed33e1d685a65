//! Prometheus exposition shared by the operator (`reconcile_*`) and `accord serve` (`sync_*`,
//! `http_*`): the scrape response and the bucket layouts of their latency histograms.
//!
//! Metrics are `prometheus-client` counters, gauges and histograms registered in a [`Registry`];
//! nothing here formats exposition text by hand. A counter is registered without its `_total`
//! suffix, which the encoder adds.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds, in seconds, for request latencies: 1 ms to 10 s.
pub const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds, in seconds, for reconcile batches and sync passes and their phases: 1 ms to
/// 2 min (a cold start at 15,000 workloads takes tens of seconds).
pub const PASS_BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The registry in the Prometheus text format (version 0.0.4), for tests.
#[cfg(test)]
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, and every registered metric encodes.
    prometheus_text::encode(&mut out, registry).expect("metrics encode into a String");
    out
}

/// The response to a scrape: OpenMetrics when the `Accept` header asks for it (as Prometheus
/// does), else the Prometheus text format that curl and older scrapers read.
pub fn scrape(registry: &Registry, headers: &HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let mut body = String::new();
    let (content_type, encoded) = if openmetrics {
        (OPENMETRICS, text::encode(&mut body, registry))
    } else {
        (
            prometheus_text::CONTENT_TYPE,
            prometheus_text::encode(&mut body, registry),
        )
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::Histogram;

    fn registry() -> Registry {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        counter.inc();
        registry.register("things", "Things done.", counter);
        let histogram = Histogram::new(REQUEST_BUCKETS);
        histogram.observe(0.003);
        registry.register("thing_duration_seconds", "Time per thing.", histogram);
        registry
    }

    #[tokio::test]
    async fn scrapes_in_the_format_the_scraper_asks_for() {
        let registry = registry();
        let body = |res: Response| async {
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .expect("a body");
            String::from_utf8(bytes.to_vec()).expect("UTF-8")
        };

        let plain = scrape(&registry, &HeaderMap::new());
        assert_eq!(
            plain.headers()[header::CONTENT_TYPE],
            prometheus_text::CONTENT_TYPE
        );
        let text = body(plain).await;
        assert!(
            text.contains("# TYPE things_total counter\nthings_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("thing_duration_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("thing_duration_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");

        let mut accept = HeaderMap::new();
        accept.insert(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
                .parse()
                .expect("a header value"),
        );
        let open = scrape(&registry, &accept);
        assert_eq!(open.headers()[header::CONTENT_TYPE], OPENMETRICS);
        let text = body(open).await;
        assert!(text.contains("things_total 1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
