//! Dashboard benchmark, end to end through the `accord` binary: prints figures.
//!
//! 1. Sync `Spec::TEN_X` (15,000 workloads, 100,000 calls) from manifests into a fresh SQLite
//!    file: time from start to `/readyz` answering 200, and the process's peak RSS (VmHWM).
//! 2. At `Spec::LARGE` (1,500 workloads, 9,300 calls): latency of `GET /api/graph` (and a
//!    namespace-filtered graph) with 16 concurrent clients on loopback, median and p99,
//!    including the query the dashboard sends (`?state=enforced,blocked,…,open`).
//! 3. What-if (`POST /api/what-if`, one client's current intents plus one target), one at a
//!    time: median and p90 at both sizes, and the most resident memory the server held beyond
//!    its level before them; and `/api/graph` p99 while eight what-ifs run at once.
//!
//! The manifests are the synthetic cluster as Accord's operator leaves it: the generated
//! NetworkPolicies applied and the generated labels in the pod templates, so servers are
//! isolated (without policies every pair would be an `open` edge).
//!
//! 4. Drift at `Spec::TEN_X` with Accord's operator absent (the manifests without the generated
//!    policies and labels: one drift item per namespace, every declared call unprotected): the
//!    first page of `GET /api/drift` after the sync (first request, then median and max of 20),
//!    a filtered and searched page, and one item with its fix checked by the what-if engine.
//!
//! `cargo bench -p accord-server --bench sync` (release build). `ACCORD_BENCH_SPEC=large` skips
//! the TEN_X sync; `ACCORD_BENCH_SPEC=drift` runs only the drift figure; `ACCORD_BENCH_WRITE=DIR` only writes the TEN_X manifests into DIR (for
//! profiling `accord serve --manifests DIR`).

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use accord_policy::synthetic::{self, Spec};

mod support;
use support::{Server, pct, post, request, write_cluster};

fn start(manifests: &Path, db: &Path) -> Server {
    // Eight what-ifs at once (the figure below), past the default limit of two.
    Server::start(manifests, db, &[], &[("ACCORD_MAX_WHAT_IFS", "8")])
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A memory figure of `/proc/PID/status` (`VmHWM:`, `VmRSS:`) in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn sync_figure(label: &str, spec: &Spec) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let t = Instant::now();
    write_cluster(spec, &manifests);
    let prep = t.elapsed();
    let mut server = start(&manifests, &dir.path().join("accord.db"));
    let ready = server.wait_ready(Duration::from_secs(600));
    let rss = peak_rss_mib(server.child.id());
    let db = std::fs::metadata(dir.path().join("accord.db"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.path().join("accord.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "sync {label:>6}: {} workloads, {} calls: ready after {:.2} s (start + read + analyze + write), peak RSS {:.0} MiB, database {:.1} MiB (manifests written in {:.2} s)",
        spec.workloads,
        spec.calls,
        ready.as_secs_f64(),
        rss,
        db as f64 / (1024.0 * 1024.0),
        prep.as_secs_f64(),
    );
    (dir, server)
}

fn latency_figure(server: &Server, path: &str, clients: usize, per_client: usize) {
    let port = server.port;
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                let mut out = Vec::with_capacity(per_client);
                let mut bytes = 0;
                for _ in 0..per_client {
                    let t = Instant::now();
                    let (status, body) = request(&mut s, &path);
                    let len = body.len();
                    assert_eq!(status, 200);
                    bytes = len;
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
    let wall = t.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "GET {path}: {} requests from {clients} clients in {:.2} s ({:.0}/s), {:.0} KiB each: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        wall.as_secs_f64(),
        all.len() as f64 / wall.as_secs_f64(),
        bytes as f64 / 1024.0,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// A realistic draft: the first client's current intents plus one more target.
fn draft(spec: &Spec) -> String {
    let (inv, _) = accord_policy::load(&synthetic::manifests(spec));
    let intents = synthetic::draft_with_one_more_target(&inv);
    accord_policy::render::intents_yaml(std::slice::from_ref(&intents))
}

/// What-if latency, one request at a time: median and p90; and the most resident memory the
/// server held beyond what it held before (sampled every millisecond).
fn what_if_figure(label: &str, server: &Server, draft: &str, n: usize) {
    let pid = server.child.id();
    let before = status_mib(pid, "VmRSS:");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0f64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_mib(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        })
    };
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_nodelay(true).unwrap();
    // The first what-if of a pass compiles the pass's policies, which the others patch.
    let t = Instant::now();
    assert_eq!(post(&mut s, "/api/what-if", draft).0, 200);
    let first = t.elapsed();
    let after_first = status_mib(pid, "VmRSS:");
    let mut all = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let (status, len) = post(&mut s, "/api/what-if", draft);
        assert_eq!(status, 200);
        bytes = len.len();
        all.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    all.sort();
    println!(
        "POST /api/what-if {label:>6} (one client's intents plus one target): {n} requests, {:.0} KiB each: median {:.1} ms, p90 {:.1} ms, max {:.1} ms (the first, which compiles the pass's policies, {:.0} ms); resident memory {:.0} MiB before, {:+.0} MiB after the first, then at most {:.0} MiB more during the others",
        bytes as f64 / 1024.0,
        pct(&all, 0.5),
        pct(&all, 0.9),
        pct(&all, 1.0),
        first.as_secs_f64() * 1e3,
        before,
        after_first - before,
        (peak - after_first).max(0.0),
    );
}

/// `/api/graph` latency while `writers` clients post what-ifs without pause.
fn graph_under_what_ifs(server: &Server, draft: &str, writers: usize) {
    let port = server.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..writers)
        .map(|_| {
            let (stop, posted, draft) = (stop.clone(), posted.clone(), draft.to_string());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(post(&mut s, "/api/what-if", &draft).0, 200);
                    posted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut all = Vec::new();
    let t = Instant::now();
    for _ in 0..300 {
        let t = Instant::now();
        assert_eq!(request(&mut s, "/api/graph").0, 200);
        all.push(t.elapsed());
    }
    let wall = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    all.sort();
    println!(
        "GET /api/graph while {writers} clients post what-ifs ({} what-ifs in {:.2} s): {} requests: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        posted.load(std::sync::atomic::Ordering::Relaxed),
        wall.as_secs_f64(),
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0),
    );
}

/// The drift page at `spec` with the operator absent (see the module docs, 4).
fn drift_figure(label: &str, spec: &Spec) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    for s in synthetic::manifests(spec) {
        let name = Path::new(&s.path).file_name().unwrap();
        std::fs::write(manifests.join(name), s.text).unwrap();
    }
    let mut server = start(&manifests, &dir.path().join("accord.db"));
    let ready = server.wait_ready(Duration::from_secs(900));
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut timed = |path: &str| {
        let t = Instant::now();
        let (status, len) = request(&mut s, path);
        assert_eq!(status, 200, "{path}");
        (t.elapsed(), len.len())
    };
    let (first, len) = timed("/api/drift");
    let mut again: Vec<Duration> = (0..20).map(|_| timed("/api/drift").0).collect();
    again.sort();
    let (filtered, _) =
        timed("/api/drift?severity=critical,high&namespace=team-0007&q=svc&sort=edges");
    let (item, item_len) = timed("/api/drift/item?key=operator-absent/team-0007");
    println!(
        "drift {label:>6}: {} workloads, {} calls, operator absent (ready after {:.2} s): first page of /api/drift {:.0} ms ({:.0} KiB), then median {:.1} ms, max {:.1} ms; filtered page {:.1} ms; one item with its fix checked by the what-if {:.0} ms ({:.0} KiB)",
        spec.workloads,
        spec.calls,
        ready.as_secs_f64(),
        first.as_secs_f64() * 1e3,
        len as f64 / 1024.0,
        again[again.len() / 2].as_secs_f64() * 1e3,
        again.last().unwrap().as_secs_f64() * 1e3,
        filtered.as_secs_f64() * 1e3,
        item.as_secs_f64() * 1e3,
        item_len as f64 / 1024.0,
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync bench: run with `cargo bench -p accord-server --bench sync`");
        return;
    }
    // For profiling: `ACCORD_BENCH_WRITE=DIR` writes the TEN_X manifests into DIR and stops.
    if let Some(dir) = std::env::var_os("ACCORD_BENCH_WRITE") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        write_cluster(&Spec::TEN_X, dir);
        println!("wrote {}", dir.display());
        return;
    }
    if std::env::var("ACCORD_BENCH_SPEC").is_ok_and(|v| v == "drift") {
        drift_figure("TEN_X", &Spec::TEN_X);
        return;
    }
    let only_large = std::env::var("ACCORD_BENCH_SPEC").is_ok_and(|v| v == "large");
    if !only_large {
        let (_dir, server) = sync_figure("TEN_X", &Spec::TEN_X);
        what_if_figure("TEN_X", &server, &draft(&Spec::TEN_X), 20);
    }
    let (_dir, server) = sync_figure("LARGE", &Spec::LARGE);
    let large_draft = draft(&Spec::LARGE);
    what_if_figure("LARGE", &server, &large_draft, 50);
    latency_figure(&server, "/api/graph", 16, 100);
    // What the dashboard sends.
    latency_figure(
        &server,
        "/api/graph?state=enforced,blocked,unprotected,undeclared,open",
        16,
        100,
    );
    latency_figure(&server, "/api/graph?namespace=team-0007", 16, 100);
    latency_figure(&server, "/api/graph?level=namespace", 16, 50);
    graph_under_what_ifs(&server, &large_draft, 8);
    drop(server);
    if !only_large {
        drift_figure("TEN_X", &Spec::TEN_X);
    }
}
