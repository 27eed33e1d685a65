//! The API server can be restarted under a running client, as the operator's reconnect
//! test needs. A dedicated control plane: restarting the shared one would disturb the
//! tests running beside it.

use std::time::{Duration, Instant};

use accord_tests::{ControlPlane, DEFAULT_TIMEOUT, TestNamespace, wait_until};
use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name }, "data": { "k": "v" } }))
        .expect("valid ConfigMap")
}

#[tokio::test]
async fn api_server_restarts_on_the_same_port_and_watchers_resume() -> Result<()> {
    if accord_tests::use_existing_cluster() {
        eprintln!("skipped: an existing cluster's API server cannot be restarted from here");
        return Ok(());
    }
    let control_plane = ControlPlane::start().await?;
    let namespace = TestNamespace::create(&control_plane).await?;
    let config_maps = namespace.api::<ConfigMap>();
    config_maps
        .create(&PostParams::default(), &config_map("before"))
        .await?;

    // A watcher started before the restart, like the operator's, feeds a channel.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = config_maps.clone();
    let watch = tokio::spawn(async move {
        let mut objects = watcher(watched, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(object) = objects.next().await {
            if let Ok(object) = object {
                let _ = seen_tx.send(object.metadata.name.unwrap_or_default());
            }
        }
    });
    wait_until(
        "the watcher to see the first ConfigMap",
        DEFAULT_TIMEOUT,
        || {
            let seen = seen_rx.try_recv().ok();
            async move { Ok(seen.filter(|name| name == "before")) }
        },
    )
    .await?;

    let url = control_plane.server_url().to_owned();
    let pids_before = control_plane.processes().await;
    let stopping = Instant::now();
    control_plane.stop_api_server().await?;
    eprintln!(
        "API server stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    assert!(
        config_maps.list(&ListParams::default()).await.is_err(),
        "requests must fail while the API server is stopped"
    );
    let started = Instant::now();
    control_plane.start_api_server().await?;
    eprintln!(
        "API server back in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let pids_after = control_plane.processes().await;
    assert_eq!(control_plane.server_url(), url);
    let api_server_pid = |pids: &[(String, u32)]| {
        pids.iter()
            .find(|(name, _)| name == "kube-apiserver")
            .map(|p| p.1)
    };
    assert_ne!(
        api_server_pid(&pids_before),
        api_server_pid(&pids_after),
        "a new process"
    );
    assert_eq!(pids_before.len(), 3);
    assert_eq!(pids_after.len(), 3);

    // State lives in etcd, so it survived; the old client reconnects by itself.
    let before = config_maps
        .get("before")
        .await
        .context("reading after the restart")?;
    assert_eq!(
        before
            .data
            .and_then(|data| data.get("k").cloned())
            .as_deref(),
        Some("v")
    );
    config_maps
        .create(&PostParams::default(), &config_map("after"))
        .await?;
    wait_until(
        "the watcher to resume and see a ConfigMap made after the restart",
        DEFAULT_TIMEOUT,
        || {
            let mut names = Vec::new();
            while let Ok(name) = seen_rx.try_recv() {
                names.push(name);
            }
            async move { Ok(names.iter().any(|name| name == "after").then_some(())) }
        },
    )
    .await?;

    // restart_api_server does both steps.
    let restarting = Instant::now();
    control_plane.restart_api_server().await?;
    eprintln!(
        "API server restarted in {:.1} s",
        restarting.elapsed().as_secs_f64()
    );
    config_maps
        .create(&PostParams::default(), &config_map("after-restart-2"))
        .await?;

    // After a crash (SIGKILL, no goodbye to clients) the same holds.
    control_plane.kill_api_server().await?;
    control_plane.start_api_server().await?;
    config_maps
        .create(&PostParams::default(), &config_map("after-kill"))
        .await?;
    wait_until(
        "the watcher to resume after a crash",
        DEFAULT_TIMEOUT,
        || {
            let mut names = Vec::new();
            while let Ok(name) = seen_rx.try_recv() {
                names.push(name);
            }
            async move { Ok(names.iter().any(|name| name == "after-kill").then_some(())) }
        },
    )
    .await?;
    watch.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), watch).await;
    Ok(())
}
