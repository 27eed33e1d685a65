//! Benchmark: ingest Hubble flows into the observed-traffic aggregates, printing figures.
//!
//! `cargo bench -p accord-policy --bench observed` classifies and aggregates decoded flows for a
//! 1,500-workload estate (calls between workloads, external peers, kubelet probes, DNS and
//! replies in the proportions a cluster shows), on one thread, and reports flows per second and
//! the resident memory after 1, 2 and 4 million flows: it stays flat, bounded by the distinct
//! keys, whatever the number of flows.

mod support;

use std::time::Instant;

use accord_policy::observed::{
    Endpoint, EndpointWorkload, Flow, FlowType, IpHistory, L4, Observations, TcpFlags,
    TrafficDirection, Verdict,
};

const S: i64 = 1_000_000_000;

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn ep(ns: usize, w: usize) -> Endpoint {
    Endpoint {
        identity: 10_000 + (ns * 10 + w) as u32,
        namespace: format!("ns-{ns:03}"),
        labels: vec![format!("k8s:app=svc-{w}")],
        pod_name: format!("svc-{w}-6c9f7d-x2k4p"),
        workloads: vec![EndpointWorkload {
            name: format!("svc-{w}"),
            kind: "Deployment".into(),
        }],
    }
}

fn tcp(port: u16, reply: bool) -> Option<L4> {
    Some(L4::Tcp {
        source_port: 40_000,
        destination_port: port,
        flags: Some(TcpFlags {
            syn: true,
            ack: reply,
            ..TcpFlags::default()
        }),
    })
}

fn ip(ns: usize, w: usize) -> String {
    format!("10.1.{ns}.{w}")
}

/// A pool of distinct flows: 1,500 workloads (150 namespaces × 10), each calling 6 others
/// (one across namespaces) on two ports, each call reported at both ends as Hubble does (at the
/// client's endpoint leaving, at the server's arriving), one external name, probed by its node,
/// resolving names; and the replies of its calls.
fn pool() -> Vec<Flow> {
    let mut out = Vec::new();
    let base = Flow {
        verdict: Verdict::Forwarded,
        flow_type: FlowType::L3L4,
        source_ip: "10.0.0.1".into(),
        destination_ip: "10.0.0.2".into(),
        is_reply: Some(false),
        ..Flow::default()
    };
    let host = Endpoint {
        identity: 1,
        labels: vec!["reserved:host".into()],
        ..Endpoint::default()
    };
    let world = Endpoint {
        identity: 2,
        labels: vec!["reserved:world".into()],
        ..Endpoint::default()
    };
    let mut dns = ep(0, 0);
    dns.namespace = "kube-system".into();
    dns.labels = vec!["k8s:k8s-app=kube-dns".into()];
    for ns in 0..150 {
        for w in 0..10 {
            for k in 1..=6 {
                let (tns, tw) = if k == 6 {
                    ((ns + 1) % 150, w)
                } else {
                    (ns, (w + k) % 10)
                };
                for port in [8080, 9090] {
                    for direction in [TrafficDirection::Egress, TrafficDirection::Ingress] {
                        out.push(Flow {
                            source: Some(ep(ns, w)),
                            destination: Some(ep(tns, tw)),
                            source_ip: ip(ns, w),
                            destination_ip: ip(tns, tw),
                            l4: tcp(port, false),
                            traffic_direction: direction,
                            ..base.clone()
                        });
                    }
                    out.push(Flow {
                        source: Some(ep(tns, tw)),
                        destination: Some(ep(ns, w)),
                        l4: tcp(40_000, true),
                        is_reply: Some(true),
                        ..base.clone()
                    });
                }
            }
            out.push(Flow {
                source: Some(host.clone()),
                destination: Some(ep(ns, w)),
                l4: tcp(8080, false),
                ..base.clone()
            });
            out.push(Flow {
                source: Some(ep(ns, w)),
                destination: Some(dns.clone()),
                l4: Some(L4::Udp {
                    source_port: 5353,
                    destination_port: 53,
                }),
                ..base.clone()
            });
            out.push(Flow {
                source: Some(ep(ns, w)),
                destination: Some(world.clone()),
                destination_names: vec![format!("api-{}.example.com", w % 5)],
                l4: tcp(443, false),
                ..base.clone()
            });
        }
    }
    out
}

fn main() {
    support::disable_transparent_huge_pages();
    let mut flows = pool();
    let ips = IpHistory::new();
    let mut obs = Observations::new();
    let rss_start = rss_mib();
    println!(
        "observed ingest: {} distinct flows in the pool (1,500 workloads), one thread",
        flows.len()
    );
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>10}",
        "flows", "flows/s", "keys", "waiting", "RSS MiB"
    );
    let len = flows.len();
    let mut total = 0usize;
    let mut t = 1_700_000_000 * S;
    for target in [1_000_000usize, 2_000_000, 4_000_000] {
        let started = Instant::now();
        let n = target - total;
        for i in 0..n {
            let f = &mut flows[(total + i) % len];
            t += 1000;
            f.time = t;
            // Each connection from its own port; both ends' reports share it.
            if let Some(L4::Tcp { source_port, .. }) = &mut f.l4
                && f.is_reply == Some(false)
            {
                let n = total + i - usize::from(f.traffic_direction == TrafficDirection::Ingress);
                *source_port = 32_768 + (n % 28_000) as u16;
            }
            obs.ingest(f, &ips);
        }
        total = target;
        let secs = support::ms(started.elapsed()) / 1000.0;
        println!(
            "{:>10} {:>12.0} {:>10} {:>10} {:>10.1}",
            total,
            n as f64 / secs,
            obs.len(),
            obs.waiting(),
            rss_mib()
        );
    }
    let s = obs.skipped;
    obs.settle();
    println!(
        "calls counted: {}; reports of a call already counted: {}; replies skipped: {}; resident memory {:+.1} MiB over the run, peak {:.1} MiB (pool included)",
        obs.sorted().iter().map(|(_, a)| a.count).sum::<u64>(),
        obs.skipped.same_call,
        s.replies,
        rss_mib() - rss_start,
        support::peak_rss_mib()
    );
}
