//! A control plane leaves nothing behind: not when it is dropped, and not when the test
//! binary that started it is killed outright, which no destructor survives.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use accord_tests::{ControlPlane, wait_until};
use anyhow::{Context, Result, bail};

/// Set for the child test binary that [`killed_test_binary_leaves_no_processes_or_files`]
/// starts; the helper test does nothing without it.
const HELPER_ENV: &str = "ACCORD_TESTS_CLEANUP_HELPER";

/// Whether `pid` is still a live control-plane process of the instance in `dir`: every one
/// names a file of its directory in its arguments, which a reused pid would not.
fn is_running(pid: u32, dir: &Path) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let zombie = status
        .lines()
        .any(|line| line.starts_with("State:") && line.contains('Z'));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !zombie && String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
}

async fn wait_until_gone(pids: &[u32], dir: &Path) -> Result<()> {
    wait_until(
        "the processes and the directory to be gone",
        Duration::from_secs(30),
        || async {
            let gone = pids.iter().all(|pid| !is_running(*pid, dir)) && !dir.exists();
            Ok(gone.then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn dropped_control_plane_leaves_no_processes_or_files() -> Result<()> {
    if accord_tests::use_existing_cluster() {
        eprintln!("skipped: needs a local control plane");
        return Ok(());
    }
    let control_plane = ControlPlane::start().await?;
    let pids: Vec<u32> = control_plane
        .processes()
        .await
        .into_iter()
        .map(|(_, pid)| pid)
        .collect();
    let dir = control_plane
        .directory()
        .context("local control plane has a directory")?
        .to_owned();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|pid| is_running(*pid, &dir)));
    assert!(dir.join("admin.kubeconfig").is_file());
    drop(control_plane);
    wait_until_gone(&pids, &dir).await
}

#[tokio::test]
async fn killed_test_binary_leaves_no_processes_or_files() -> Result<()> {
    if accord_tests::use_existing_cluster() || std::env::var_os(HELPER_ENV).is_some() {
        return Ok(());
    }
    // Run this same test binary's helper, which starts a control plane and reports it.
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "helper_starts_a_control_plane_and_waits",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let report = tokio::task::spawn_blocking(move || -> Result<(Vec<u32>, PathBuf)> {
        for line in BufReader::new(stdout).lines() {
            if let Some(report) = line?.strip_prefix("control plane: ") {
                let (dir, pids) = report.rsplit_once(' ').context("dir and pids")?;
                let pids = pids.split(',').map(str::parse).collect::<Result<_, _>>()?;
                return Ok((pids, PathBuf::from(dir)));
            }
        }
        bail!("the helper ended without reporting its control plane")
    });
    let (pids, dir) = match tokio::time::timeout(Duration::from_secs(180), report).await {
        Ok(report) => report??,
        Err(_) => {
            let _ = child.kill();
            bail!("the helper did not report a control plane within 180 s");
        }
    };
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|pid| is_running(*pid, &dir)));

    child.kill()?; // SIGKILL: no destructor, no panic handler runs.
    child.wait()?;
    wait_until_gone(&pids, &dir).await
}

#[tokio::test]
#[ignore = "run by killed_test_binary_leaves_no_processes_or_files"]
async fn helper_starts_a_control_plane_and_waits() -> Result<()> {
    if std::env::var_os(HELPER_ENV).is_none() {
        return Ok(());
    }
    let control_plane = accord_tests::shared().await?;
    let pids: Vec<String> = control_plane
        .processes()
        .await
        .into_iter()
        .map(|(_, pid)| pid.to_string())
        .collect();
    let dir = control_plane
        .directory()
        .context("local control plane has a directory")?;
    println!("control plane: {} {}", dir.display(), pids.join(","));
    // Killed by the parent test; the sleep is not synchronisation.
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}
