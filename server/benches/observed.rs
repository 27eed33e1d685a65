//! Observed traffic at scale, end to end through the `accord` binary: prints figures.
//!
//! For `Spec::LARGE` (1,500 workloads) and `Spec::TEN_X` (15,000), the synthetic cluster as
//! Accord's operator leaves it is served with a recording of flows: one flow for every declared
//! call, one undeclared call from every tenth client, and drops on every fiftieth declared
//! call. Once the recording is stored:
//!
//! - the first `GET /api/observed` after the observed data changed: it assesses every stored
//!   call (the inventory cloned into its protected form and evaluated), which is what every
//!   request cost before the per-pass, per-generation cache;
//! - then, cached: `GET /api/observed` (everything), `?server=` one server, `/api/observed/edges`
//!   and the drift report's first page (which merges the observed items), median and p99 with
//!   four concurrent clients.
//!
//! `cargo bench -p accord-server --bench observed` (release build). `ACCORD_BENCH_SPEC=large`
//! runs only the 1,500-workload estate.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use accord_policy::observed::format_rfc3339;
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

/// The recording: `hubble observe -o jsonpb` lines.
fn write_flows(spec: &Spec, path: &Path) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let base: i64 = 1_796_014_800_000_000_000; // 2026-12-01T05:00:00Z
    let n = spec.workloads;
    let mut lines = 0;
    let mut flow = |t: i64, c: usize, s: usize, dropped: bool| {
        let time = format_rfc3339(base + t * 1_000_000);
        let line = serde_json::json!({"flow": {
            "time": time, "verdict": if dropped { "DROPPED" } else { "FORWARDED" },
            "IP": {"source": format!("10.{}.{}.{}", c >> 16, (c >> 8) & 255, c & 255),
                   "destination": format!("10.{}.{}.{}", s >> 16, (s >> 8) & 255, s & 255),
                   "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": 40000, "destination_port": 8080, "flags": {"SYN": true}}},
            "source": endpoint(spec, c), "destination": endpoint(spec, s),
            "Type": "L3_L4", "node_name": "worker-1", "event_type": {"type": 4},
            "traffic_direction": "EGRESS", "is_reply": false
        }, "node_name": "worker-1", "time": time});
        writeln!(out, "{line}").unwrap();
    };
    for (k, (c, s, _)) in synthetic::calls(spec).into_iter().enumerate() {
        flow(k as i64, c, s, k % 50 == 0);
        lines += 1;
        if c % 10 == 0 && k % 3 == 0 {
            flow(k as i64, c, (c * 7 + 3) % n, false);
            lines += 1;
        }
    }
    lines
}

fn start(manifests: &Path, flows: &Path, db: &Path) -> Server {
    Server::start(manifests, db, &["--flows".as_ref(), flows.as_os_str()], &[])
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
        "  cached GET {path}: {} requests, {clients} clients, {:.0} KiB: median {:.1} ms, p99 {:.1} ms",
        all.len(),
        bytes as f64 / 1024.0,
        pct(&all, 0.5),
        pct(&all, 0.99),
    );
}

fn figure(label: &str, spec: &Spec) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    write_cluster(spec, &manifests);
    let flows = dir.path().join("flows.jsonl");
    let lines = write_flows(spec, &flows);
    let t = Instant::now();
    let mut server = start(&manifests, &flows, &dir.path().join("accord.db"));
    // Stored once the recording's window is, and assessed once the pass has run. The cold
    // figure runs from the first request that found both (answered late, or 503 after the
    // request timeout, while the assessment goes on) to the first answer carrying it.
    let mut started: Option<Instant> = None;
    let (cold, body) = loop {
        if let Some(status) = server.child.try_wait().ok().flatten() {
            panic!("accord serve exited: {status}");
        }
        let at = Instant::now();
        let answer = get(server.port, "/api/observed");
        if answer.as_ref().is_some_and(|(s, _)| *s == 503) || at.elapsed() > Duration::from_secs(1)
        {
            started.get_or_insert(at);
        }
        if let Some((200, body)) = answer {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let calls = v["calls"].as_array().map_or(0, Vec::len);
            if calls > 0
                && v["calls"][0]["state"].is_string()
                && v["window"]["intervals"]
                    .as_array()
                    .is_some_and(|i| !i.is_empty())
            {
                break (started.unwrap_or(at).elapsed(), v);
            }
        }
        assert!(t.elapsed() < Duration::from_secs(1800), "nothing stored");
        std::thread::sleep(Duration::from_millis(500));
    };
    let calls = body["calls"].as_array().unwrap();
    let count = |s: &str| calls.iter().filter(|c| c["state"] == s).count();
    println!(
        "observed {label:>6}: {} workloads, {lines} flows stored as {} calls ({} declared, {} undeclared, {} dropped) after {:.1} s",
        spec.workloads,
        calls.len(),
        count("declared"),
        count("undeclared"),
        count("dropped"),
        t.elapsed().as_secs_f64(),
    );
    println!(
        "  first GET /api/observed after the data changed (assesses every call; each request before the cache): {:.0} ms",
        cold.as_secs_f64() * 1e3
    );
    let (_, drift) = get(
        server.port,
        "/api/drift?kind=observed-undeclared,observed-dropped,declared-unused&per_page=1",
    )
    .unwrap();
    let drift: serde_json::Value = serde_json::from_str(&drift).unwrap();
    println!("  observed drift items: {}", drift["total"]);
    let server_id = format!(
        "{}/{}%5BDeployment%5D",
        workload(spec, 3).0,
        workload(spec, 3).1
    );
    latency(server.port, "/api/observed", 4, 10);
    latency(
        server.port,
        &format!("/api/observed?server={server_id}"),
        4,
        50,
    );
    latency(server.port, "/api/observed/edges", 4, 10);
    latency(server.port, "/api/drift", 4, 50);
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("observed bench: run with `cargo bench -p accord-server --bench observed`");
        return;
    }
    figure("LARGE", &Spec::LARGE);
    if !std::env::var("ACCORD_BENCH_SPEC").is_ok_and(|v| v == "large") {
        figure("TEN_X", &Spec::TEN_X);
    }
}
