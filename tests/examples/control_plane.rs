//! Starts a local control plane and keeps it running until Ctrl-C (or SIGTERM), for
//! trying things by hand: `cargo run -p accord-tests --example control_plane`, then
//! `export KUBECONFIG=<printed path>` in another shell.

use accord_tests::ControlPlane;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let control_plane = ControlPlane::start().await?;
    println!("KUBECONFIG={}", control_plane.kubeconfig_path().display());
    println!("server: {}", control_plane.server_url());
    for (name, pid) in control_plane.processes().await {
        println!("{name}: pid {pid}");
    }
    println!("Ctrl-C stops it.");
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    drop(control_plane);
    Ok(())
}
