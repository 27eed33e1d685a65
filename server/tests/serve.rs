//! `accord serve` as a process: killed with SIGKILL in the middle of a sync pass, it leaves a
//! consistent database, and a restart completes the sync. Also: a manifest change shows up as
//! an edge change in the history.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use accord_policy::synthetic::{self, Spec};
use anyhow::{Context, Result, bail};
use sqlx::Connection;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(manifests: &Path, db: &Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--manifests"])
        .arg(manifests)
        .arg("--db")
        .arg(db)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--debounce-ms",
            "50",
        ])
        .env("RUST_LOG", "info,sqlx=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start accord serve");
    Server { child, port }
}

/// GET `path`; returns status and body.
fn get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP head")?;
    let status = head.get(9..12).context("no status")?.parse()?;
    Ok((status, body.to_string()))
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let t = Instant::now();
    loop {
        if f().unwrap_or(false) {
            return Ok(());
        }
        if t.elapsed() > timeout {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_manifests(dir: &Path, spec: &Spec) {
    for s in synthetic::manifests(spec) {
        let name = Path::new(&s.path).file_name().unwrap();
        std::fs::write(dir.join(name), s.text).unwrap();
    }
}

async fn db_counts(db: &Path) -> Result<(String, i64, i64, i64)> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?;
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs")
        .fetch_one(&mut conn)
        .await?;
    let edges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM edges")
        .fetch_one(&mut conn)
        .await?;
    let recorded: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(edges), 0) FROM (SELECT edges FROM sync_runs ORDER BY id DESC LIMIT 1)")
        .fetch_one(&mut conn)
        .await?;
    Ok((integrity, runs, edges, recorded))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_sync_leaves_a_consistent_database_that_a_restart_completes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests)?;
    // No NetworkPolicies: every pair is an edge (declared ones unprotected, the rest open), so
    // a pass has ~10,000 edges to write.
    let spec = Spec {
        workloads: 100,
        namespaces: 10,
        calls: 500,
        ..Spec::LARGE
    };
    write_manifests(&manifests, &spec);
    let db = dir.path().join("accord.db");

    // Kill the server as soon as it logs that a pass started.
    let mut server = start(&manifests, &db);
    let stderr = server.child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .context("accord serve ended before syncing")??;
        if line.contains("sync pass starting") {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    server.child.wait()?;

    // Either the pass committed entirely or not at all.
    let (integrity, runs, edges, recorded) = db_counts(&db).await?;
    assert_eq!(integrity, "ok");
    assert!(runs <= 1, "{runs} runs");
    assert_eq!(edges, if runs == 0 { 0 } else { recorded });

    // A restart syncs to completion.
    let server = start(&manifests, &db);
    let port = server.port;
    wait_for("readyz", Duration::from_secs(120), || {
        Ok(get(port, "/readyz")?.0 == 200)
    })?;
    let (_, status) = get(port, "/api/status")?;
    let status: accord_api::Status = serde_json::from_str(&status)?;
    let (integrity, runs_after, edges, recorded) = db_counts(&db).await?;
    assert_eq!(integrity, "ok");
    assert_eq!(runs_after, runs + 1);
    assert_eq!(edges, i64::from(status.edges));
    assert_eq!(edges, recorded);
    assert!(edges >= 9_000, "{edges} edges");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_change_shows_up_as_an_edge_change_in_the_history() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests)?;
    let spec = Spec {
        workloads: 20,
        namespaces: 2,
        calls: 30,
        ..Spec::LARGE
    };
    write_manifests(&manifests, &spec);
    let server = start(&manifests, &dir.path().join("accord.db"));
    let port = server.port;
    wait_for("readyz", Duration::from_secs(60), || {
        Ok(get(port, "/readyz")?.0 == 200)
    })?;
    let (_, g) = get(port, "/api/graph?state=unprotected")?;
    let g: accord_api::Graph = serde_json::from_str(&g)?;
    let edge = g.edges.first().context("an unprotected edge")?.clone();
    let target = accord_policy::WorkloadId::parse(&edge.target, "default").unwrap();

    // Protect the target with a policy that admits nobody: the declared call becomes blocked.
    std::fs::write(
        manifests.join("deny.yaml"),
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-{name}\n  namespace: {ns}\nspec:\n  podSelector:\n    matchLabels:\n      app: {name}\n  policyTypes: [Ingress]\n",
            name = target.name,
            ns = target.namespace
        ),
    )?;
    let path = format!(
        "/api/history?workload={}",
        edge.target.replace('[', "%5B").replace(']', "%5D")
    );
    let mut page = accord_api::HistoryPage::default();
    wait_for("the change in the history", Duration::from_secs(30), || {
        let (_, body) = get(port, &path)?;
        page = serde_json::from_str(&body)?;
        Ok(page
            .entries
            .iter()
            .any(|e| e.source == edge.source && e.change == accord_api::ChangeKind::Revoked))
    })?;
    let e = page
        .entries
        .iter()
        .find(|e| e.source == edge.source && e.change == accord_api::ChangeKind::Revoked)
        .unwrap();
    assert_eq!(e.before, Some(accord_api::EdgeState::Unprotected));
    assert_eq!(e.after, Some(accord_api::EdgeState::Blocked));
    assert!(
        e.by.iter()
            .any(|b| b == &format!("NetworkPolicy {}/deny-{}", target.namespace, target.name)),
        "{:?}",
        e.by
    );
    Ok(())
}

/// The demo on an in-memory database, with a short read timeout.
fn start_demo(read_timeout: &str) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--db", ":memory:", "--read-timeout", read_timeout])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start accord serve");
    Server { child, port }
}

/// Open `/api/events` and read until the response head arrived.
fn open_event_stream(port: u16) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            bail!("the event stream closed before its head");
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    Ok(s)
}

#[test]
fn sigterm_stops_the_server_within_a_second_while_event_streams_are_open() -> Result<()> {
    let mut server = start_demo("30");
    let port = server.port;
    wait_for("readyz", Duration::from_secs(60), || {
        Ok(get(port, "/readyz")?.0 == 200)
    })?;
    // Two dashboard tabs listening.
    let _tabs = [open_event_stream(port)?, open_event_stream(port)?];
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM failed");
    let signalled = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait()? {
            break exit;
        }
        if signalled.elapsed() > Duration::from_secs(5) {
            bail!("accord serve still running 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = signalled.elapsed();
    assert!(exit.success(), "{exit}");
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    Ok(())
}

#[test]
fn idle_connections_are_closed_after_the_read_timeout() -> Result<()> {
    let server = start_demo("1");
    let port = server.port;
    wait_for("healthz", Duration::from_secs(60), || {
        Ok(get(port, "/healthz")?.0 == 200)
    })?;
    // A client that connects and never sends a request.
    let mut idle = TcpStream::connect(("127.0.0.1", port))?;
    idle.set_read_timeout(Some(Duration::from_secs(10)))?;
    let t = Instant::now();
    let mut buf = [0u8; 256];
    // The server closes it: end of stream (or a reset), not our 10 s read timeout.
    match idle.read(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => bail!("the idle connection stayed open: {e}"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    Ok(())
}
