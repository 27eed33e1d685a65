//! What the dashboard benches share: an `accord serve` child process, the synthetic estate
//! written as manifests, and HTTP/1.1 on a kept-alive connection (std only, so the figures
//! include nothing but the server's own work). Each bench uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use accord_policy::synthetic::{self, Spec};

/// Writes the synthetic cluster as Accord's operator leaves it (generated policies applied,
/// generated labels in the pod templates) into `dir`.
pub fn write_cluster(spec: &Spec, dir: &Path) {
    for s in synthetic::applied_manifests(spec) {
        let name = Path::new(&s.path).file_name().unwrap();
        std::fs::write(dir.join(name), s.text).unwrap();
    }
}

/// A running `accord serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `accord serve --manifests MANIFESTS --db DB --listen 127.0.0.1:PORT ARGS…` with `envs`.
    pub fn start(manifests: &Path, db: &Path, args: &[&OsStr], envs: &[(&str, &str)]) -> Server {
        Server::start_with(manifests, db, args, envs, Stdio::inherit())
    }

    /// As [`Server::start`], with this standard input (`Stdio::piped()`: write to
    /// `child.stdin`).
    pub fn start_with(
        manifests: &Path,
        db: &Path,
        args: &[&OsStr],
        envs: &[(&str, &str)],
        stdin: Stdio,
    ) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["serve", "--manifests"])
            .arg(manifests)
            .arg("--db")
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start accord serve");
        Server { child, port }
    }

    /// Waits until `/readyz` answers 200; returns how long that took.
    pub fn wait_ready(&mut self, limit: Duration) -> Duration {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("accord serve exited: {status}");
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
                && request(&mut s, "/readyz").0 == 200
            {
                return t.elapsed();
            }
            assert!(t.elapsed() < limit, "not ready after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One GET on a kept-alive connection: the status and the body.
pub fn request(stream: &mut TcpStream, path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    response(stream)
}

/// A POST of a YAML body on a kept-alive connection: the status and the body.
pub fn post(stream: &mut TcpStream, path: &str, body: &str) -> (u16, String) {
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    response(stream)
}

fn response(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `p` quantile of sorted durations, in milliseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}
