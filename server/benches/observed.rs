//! Observed traffic at scale, end to end through the `accord` binary: prints figures.
//!
//! For `Spec::LARGE` (1,500 workloads) and `Spec::TEN_X` (15,000), the synthetic cluster as
//! Accord's operator leaves it is served with flows on standard input (`--flows -`): a
//! recording with one flow for every declared call, one undeclared call from every tenth client
//! and drops on every fiftieth declared call; then 1,000 flows a second (every tenth a call not
//! seen before), so the collector writes every second while the figures are taken:
//!
//! - when the first assessment answered, and how long it took;
//! - median and p99 of the drift report's first page, the observed edges of one namespace and
//!   the observed callers of one server (four concurrent clients), and of the whole estate's
//!   observed edges and observed calls (fewer: their answers are megabytes);
//! - the background assessments the answers showed meanwhile: how long they took, how often an
//!   answer said a newer one was under way, and the oldest shown.
//!
//! `cargo bench -p accord-server --bench observed` (release build). `ACCORD_BENCH_SPEC=large`
//! runs only the 1,500-workload estate, `ACCORD_BENCH_SPEC=tenx` only the 15,000 one.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use accord_policy::observed::{format_rfc3339, parse_rfc3339};
use accord_policy::synthetic::{self, Spec};

mod support;
use support::{Server, pct, request, write_cluster};

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(request(&mut s, path))
}

/// Workload `i` of the synthetic estate: namespace and name.
fn workload(spec: &Spec, i: usize) -> (String, String) {
    (
        format!("team-{:04}", i % spec.namespaces.max(1)),
        format!("svc-{i:05}"),
    )
}

fn endpoint(spec: &Spec, i: usize) -> serde_json::Value {
    let (ns, name) = workload(spec, i);
    serde_json::json!({
        "ID": i, "identity": 20000 + i, "namespace": ns,
        "labels": [format!("k8s:app={name}")],
        "pod_name": format!("{name}-0"),
        "workloads": [{"name": name, "kind": "Deployment"}]
    })
}

const BASE: i64 = 1_796_014_800_000_000_000; // 2026-12-01T05:00:00Z

/// One `hubble observe -o jsonpb` line: client `c` calls server `s` on `port` at `BASE + t` ms.
fn flow_line(spec: &Spec, t: i64, c: usize, s: usize, port: u16, dropped: bool) -> String {
    let time = format_rfc3339(BASE + t * 1_000_000);
    serde_json::json!({"flow": {
        "time": time, "verdict": if dropped { "DROPPED" } else { "FORWARDED" },
        "IP": {"source": format!("10.{}.{}.{}", c >> 16, (c >> 8) & 255, c & 255),
               "destination": format!("10.{}.{}.{}", s >> 16, (s >> 8) & 255, s & 255),
               "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 40000, "destination_port": port, "flags": {"SYN": true}}},
        "source": endpoint(spec, c), "destination": endpoint(spec, s),
        "Type": "L3_L4", "node_name": "worker-1", "event_type": {"type": 4},
        "traffic_direction": "EGRESS", "is_reply": false
    }, "node_name": "worker-1", "time": time})
    .to_string()
}

/// The recording: one flow for every declared call (every fiftieth dropped) and an undeclared
/// call from every tenth client. Returns the lines.
fn recording(spec: &Spec) -> Vec<String> {
    let n = spec.workloads;
    let mut out = Vec::new();
    for (k, (c, s, _)) in synthetic::calls(spec).into_iter().enumerate() {
        out.push(flow_line(spec, k as i64, c, s, 8080, k % 50 == 0));
        if c % 10 == 0 && k % 3 == 0 {
            out.push(flow_line(spec, k as i64, c, (c * 7 + 3) % n, 8080, false));
        }
    }
    out
}

/// `accord serve --flows -`: the recording, then a collector that keeps writing (1,000 flows a
/// second through standard input, the declared calls again and every tenth a call not seen
/// before) until `stop`.
fn start(spec: &Spec, manifests: &Path, db: &Path, stop: Arc<AtomicBool>) -> (Server, usize) {
    // `ACCORD_BENCH_LOG=accord=debug` shows where assessments spend their time.
    let log = std::env::var("ACCORD_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let mut server = Server::start_with(
        manifests,
        db,
        &["--flows".as_ref(), "-".as_ref()],
        &[("RUST_LOG", &log)],
        Stdio::piped(),
    );
    let mut stdin = server.child.stdin.take().unwrap();
    let lines = recording(spec);
    let count = lines.len();
    let spec = *spec;
    std::thread::spawn(move || {
        let mut out = std::io::BufWriter::new(&mut stdin);
        for l in &lines {
            writeln!(out, "{l}").unwrap();
        }
        out.flush().unwrap();
        drop(out);
        let calls = synthetic::calls(&spec);
        let n = spec.workloads;
        let mut t = count as i64;
        let mut j = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let mut batch = String::new();
            for _ in 0..100 {
                let (c, s, _) = calls[j % calls.len()];
                let line = if j.is_multiple_of(10) {
                    let port = 10_000 + (j / 10 % 50_000) as u16;
                    flow_line(&spec, t, c, (c * 7 + 3) % n, port, false)
                } else {
                    flow_line(&spec, t, c, s, 8080, false)
                };
                batch.push_str(&line);
                batch.push('\n');
                j += 1;
                t += 1;
            }
            if stdin.write_all(batch.as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (server, count)
}

fn latency(port: u16, path: &str, clients: usize, per_client: usize) {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                let mut out = Vec::new();
                let mut bytes = 0;
                for _ in 0..per_client {
                    let t = Instant::now();
                    let (status, body) = request(&mut s, &path);
                    assert_eq!(status, 200, "{body}");
                    bytes = body.len();
                    out.push(t.elapsed());
                }
                (out, bytes)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut bytes = 0;
    for h in handles {
        let (v, b) = h.join().unwrap();
        all.extend(v);
        bytes = b;
    }
    all.sort();
    println!(
        "  GET {path}: {} requests, {clients} clients, {:.0} KiB: median {:.1} ms, p99 {:.1} ms",
        all.len(),
        bytes as f64 / 1024.0,
        pct(&all, 0.5),
        pct(&all, 0.99),
    );
}

/// The assessments answers showed while `stop` was unset, sampled every 250 ms: (finished at,
/// took ms, assessing, age in seconds when sampled).
fn sample_assessments(port: u16, stop: Arc<AtomicBool>) -> Vec<(String, u64, bool, f64)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some((200, body)) = get(port, "/api/drift?per_page=1") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let a = &v["observed"];
            if let (Some(at), Some(took)) = (a["at"].as_str(), a["took_ms"].as_u64()) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as i64;
                let age = (now - parse_rfc3339(at).unwrap_or(now)) as f64 / 1e9;
                out.push((at.to_string(), took, a["assessing"] == true, age));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    out
}

fn figure(label: &str, spec: &Spec) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    write_cluster(spec, &manifests);
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (mut server, lines) = start(
        spec,
        &manifests,
        &dir.path().join("accord.db"),
        stop.clone(),
    );
    let scoped = format!("/api/observed/edges?namespace={}", workload(spec, 3).0);
    // The first assessment: the pass has run and the recording is stored and assessed.
    let first = loop {
        if let Some(status) = server.child.try_wait().ok().flatten() {
            panic!("accord serve exited: {status}");
        }
        if let Some((200, body)) = get(server.port, &scoped) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["marks"].as_array().is_some_and(|m| !m.is_empty())
                && v["edges"].as_array().is_some_and(|e| e.len() > 1)
            {
                break v;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(1800), "nothing assessed");
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "observed {label:>6}: {} workloads, {lines} flows recorded then 1,000 flows/s written on; first assessment answered after {:.1} s (it took {} ms); {} namespace pairs",
        spec.workloads,
        t.elapsed().as_secs_f64(),
        first["window"]["assessment"]["took_ms"],
        first["namespaces"].as_array().map_or(0, Vec::len),
    );
    let sampling = {
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let s = stop.clone();
        (
            stop,
            std::thread::spawn(move || sample_assessments(port, s)),
        )
    };
    let server_id = format!(
        "{}/{}%5BDeployment%5D",
        workload(spec, 3).0,
        workload(spec, 3).1
    );
    latency(server.port, "/api/drift", 4, 50);
    latency(server.port, &scoped, 4, 50);
    latency(
        server.port,
        &format!("/api/observed?server={server_id}"),
        4,
        50,
    );
    latency(server.port, "/api/observed/edges", 2, 3);
    latency(server.port, "/api/observed", 1, 3);
    latency(server.port, "/api/drift", 4, 50);
    sampling.0.store(true, Ordering::Relaxed);
    let samples = sampling.1.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut took: Vec<(String, u64)> = samples.iter().map(|s| (s.0.clone(), s.1)).collect();
    took.sort();
    took.dedup();
    let mut ms: Vec<u64> = took.iter().map(|t| t.1).collect();
    ms.sort_unstable();
    let assessing = samples.iter().filter(|s| s.2).count();
    let oldest = samples.iter().map(|s| s.3).fold(0.0, f64::max);
    println!(
        "  background assessments while the collector wrote: {} seen over {} samples, took {} ms (min) / {} ms (median) / {} ms (max); answers said a newer one was under way in {assessing} samples; the oldest shown was {oldest:.1} s old",
        ms.len(),
        samples.len(),
        ms.first().copied().unwrap_or(0),
        ms.get(ms.len() / 2).copied().unwrap_or(0),
        ms.last().copied().unwrap_or(0),
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("observed bench: run with `cargo bench -p accord-server --bench observed`");
        return;
    }
    let only = std::env::var("ACCORD_BENCH_SPEC").unwrap_or_default();
    if only != "tenx" {
        figure("LARGE", &Spec::LARGE);
    }
    if only != "large" {
        figure("TEN_X", &Spec::TEN_X);
    }
}
