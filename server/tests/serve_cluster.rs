//! `accord serve --kubeconfig` against the real control plane: objects created, changed and
//! deleted in a test namespace show up as edges and change-log entries.

#[path = "support/operator.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use accord_api as api;
use accord_tests::{DEFAULT_TIMEOUT, TestNamespace, wait_until};
use anyhow::{Context, Result};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::*;

struct Serve {
    child: Child,
    port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    Ok((
        head.get(9..12).context("status")?.parse()?,
        body.to_string(),
    ))
}

async fn edge_state(port: u16, ns: &str, source: &str, target: &str) -> Option<api::EdgeState> {
    let (_, body) = get(port, &format!("/api/graph?namespace={ns}&state=all")).ok()?;
    let g: api::Graph = serde_json::from_str(&body).ok()?;
    g.edges
        .iter()
        .find(|e| e.source == source && e.target == target)
        .map(|e| e.state)
}

async fn wait_state(
    port: u16,
    ns: &str,
    source: &str,
    target: &str,
    want: Option<api::EdgeState>,
) -> Result<()> {
    wait_until(
        &format!("{source} → {target} to be {want:?}"),
        Duration::from_secs(60),
        || async move { Ok((edge_state(port, ns, source, target).await == want).then_some(())) },
    )
    .await
}

impl Serve {
    /// `accord serve` against the shared control plane (as its admin), with `extra` arguments,
    /// once it answers `/readyz`.
    async fn start(db: &std::path::Path, extra: &[&str]) -> Result<Serve> {
        Serve::start_on(accord_tests::shared().await?, db, extra).await
    }

    async fn start_on(
        plane: &accord_tests::ControlPlane,
        db: &std::path::Path,
        extra: &[&str],
    ) -> Result<Serve> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["serve", "--kubeconfig"])
            .arg(plane.kubeconfig_path())
            .arg("--db")
            .arg(db)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--debounce-ms",
                "100",
            ])
            .args(extra)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let serve = Serve { child, port };
        wait_until("readyz", Duration::from_secs(60), || async {
            Ok((get(serve.port, "/readyz").ok().map(|r| r.0) == Some(200)).then_some(()))
        })
        .await?;
        Ok(serve)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (status, body) = get(self.port, path)?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }
}

#[tokio::test]
async fn the_dashboard_compares_with_the_settings_the_operator_publishes() -> Result<()> {
    let ns = TestNamespace::new().await?;
    let client = ns.client();
    install_crds(&ns).await?;
    let n = ns.name();
    let account = operator_account(&ns).await?;
    let operator = Operator::start(
        &account,
        &[n],
        &[
            "--egress",
            "--separate-policies",
            "--shadow",
            "--enforced-namespace",
            n,
            "--settings-namespace",
            n,
        ],
    )?;
    operator.wait_ready().await?;
    deploy_client_and_server(&client, n).await?;
    // The server is exposed by an Ingress: the operator writes an external-access policy for
    // it, which the dashboard expects only if it reads Ingresses as the operator does (the
    // one watch set).
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), n)
        .create(
            &PostParams::default(),
            &service("server", json!({"app": "server"}), 80),
        )
        .await?;
    Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), n)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "server", "port": {"number": 80}}}}]}}]},
            }))?,
        )
        .await?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    // Converged: the server's ingress and external-access policies exist (separate policies;
    // in shadow mode no egress is written, as upstream does) and the client has pods.
    let policies: Api<NetworkPolicy> = ns.api();
    wait_until("the operator's policies", DEFAULT_TIMEOUT, || async {
        let names: Vec<String> = policies
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let want = ["server-ingress", "external-access-to-server"];
        Ok(want
            .iter()
            .all(|w| names.iter().any(|n| n == w))
            .then_some(()))
    })
    .await
    .with_context(|| operator.logs())?;
    pods_of(&client, n, "client").await?;

    let dir = tempfile::tempdir()?;
    let serve = Serve::start(&dir.path().join("accord.db"), &["--operator-namespace", n]).await?;
    let drift_path = format!("/api/drift?namespace={n}");
    wait_until(
        "no drift in the namespace",
        Duration::from_secs(60),
        || async {
            let report: api::DriftReport = serve.json(&drift_path)?;
            Ok((report.total == 0).then_some(()))
        },
    )
    .await
    .with_context(|| format!("{:#?}", serve.json::<api::DriftReport>(&drift_path)))?;
    let status: api::Status = serve.json("/api/status")?;
    assert!(status.settings.egress && status.settings.separate_policies && status.settings.shadow);
    assert_eq!(
        status.settings.enforced_namespaces,
        [n.to_string()].into_iter().collect()
    );
    assert!(
        status
            .settings_source
            .contains(&format!("ConfigMap {n}/accord-operator-settings")),
        "{}",
        status.settings_source
    );
    let c = format!("{n}/client[Deployment]");
    let s = format!("{n}/server[Deployment]");
    assert_eq!(
        edge_state(serve.port, n, &c, &s).await,
        Some(api::EdgeState::Enforced)
    );

    // The same cluster compared with the defaults (flags override the published settings) is
    // full of drift that is only a difference of settings: what the dashboard showed before it
    // read the operator's settings.
    let dir2 = tempfile::tempdir()?;
    let defaults = Serve::start(
        &dir2.path().join("accord.db"),
        &[
            "--operator-namespace",
            n,
            "--egress=false",
            "--separate-policies=false",
            "--shadow=false",
        ],
    )
    .await?;
    let report: api::DriftReport = defaults.json(&drift_path)?;
    assert!(report.total > 0, "{report:#?}");
    let status: api::Status = defaults.json("/api/status")?;
    assert!(!status.settings.egress);
    assert!(
        status
            .settings_source
            .ends_with("overridden by accord serve's flags")
    );
    Ok(())
}

/// The API server goes away: the dashboard keeps serving the last state it saw, says it is
/// degraded and why (in `/api/status` and `/readyz`), and recovers when the API server is back,
/// without a mass revoke in the history. A dedicated control plane, because stopping the shared
/// one would disturb the tests beside it.
#[tokio::test]
async fn a_lost_api_server_is_reported_and_the_last_state_kept() -> Result<()> {
    if accord_tests::use_existing_cluster() {
        eprintln!("skipped: an existing cluster's API server cannot be stopped from here");
        return Ok(());
    }
    let plane = accord_tests::ControlPlane::start().await?;
    let ns = TestNamespace::create(&plane).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let dir = tempfile::tempdir()?;
    let serve = Serve::start_on(&plane, &dir.path().join("accord.db"), &[]).await?;
    let (c, s) = (
        format!("{n}/client[Deployment]"),
        format!("{n}/server[Deployment]"),
    );
    wait_state(serve.port, n, &c, &s, Some(api::EdgeState::Open)).await?;
    let status: api::Status = serve.json("/api/status")?;
    assert!(!status.degraded, "{status:#?}");

    plane.stop_api_server().await?;
    wait_until(
        "the source to be degraded",
        Duration::from_secs(60),
        || async {
            let status: api::Status = serve.json("/api/status")?;
            Ok(status.degraded.then_some(status))
        },
    )
    .await
    .map(|status| {
        assert!(
            status
                .diagnostics
                .iter()
                .any(|d| d.origin.file == "cluster:Pod" && d.message.contains("cannot watch")),
            "{:#?}",
            status.diagnostics
        );
        assert!(
            status.stale.iter().any(|k| k == "cluster:Pod"),
            "{:?}",
            status.stale
        );
    })?;
    let (code, text) = get(serve.port, "/readyz")?;
    assert_eq!(code, 200, "{text}");
    assert!(text.starts_with("degraded: source:"), "{text}");
    // The last state is still served.
    assert_eq!(
        edge_state(serve.port, n, &c, &s).await,
        Some(api::EdgeState::Open)
    );

    plane.start_api_server().await?;
    wait_until("the source to recover", Duration::from_secs(90), || async {
        let status: api::Status = serve.json("/api/status")?;
        Ok((!status.degraded).then_some(()))
    })
    .await?;
    assert_eq!(get(serve.port, "/readyz")?.1, "ready\n");
    assert_eq!(
        edge_state(serve.port, n, &c, &s).await,
        Some(api::EdgeState::Open)
    );
    // No edge was revoked and granted again on the way.
    let (_, body) = get(serve.port, "/api/history")?;
    assert!(!body.contains("\"revoked\""), "{body}");
    Ok(())
}

#[tokio::test]
async fn cluster_objects_become_edges_and_history() -> Result<()> {
    let ns = TestNamespace::new().await?;
    let client = ns.client();
    install_crds(&ns).await?;
    let dir = tempfile::tempdir()?;
    let serve = Serve::start(&dir.path().join("accord.db"), &[]).await?;
    let port = serve.port;

    let n = ns.name();
    create_deployment(&client, n, "server").await?;
    create_deployment(&client, n, "client").await?;
    let (c, s) = (
        format!("{n}/client[Deployment]"),
        format!("{n}/server[Deployment]"),
    );
    // No policy: the pair is open.
    wait_state(port, n, &c, &s, Some(api::EdgeState::Open)).await?;

    // Declared, nothing isolates the server: unprotected.
    create_intents(
        &client,
        n,
        "client",
        json!({"workload": {"name": "client", "kind": "Deployment"}, "targets": [{"kubernetes": {"name": "server", "kind": "Deployment"}}]}),
    )
    .await?;
    wait_state(port, n, &c, &s, Some(api::EdgeState::Unprotected)).await?;

    // A policy isolating the server that admits nobody: blocked, logged as revoked by it.
    let policies: Api<NetworkPolicy> = ns.api();
    let deny: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "deny-server"},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]}
    }))?;
    policies.create(&PostParams::default(), &deny).await?;
    wait_state(port, n, &c, &s, Some(api::EdgeState::Blocked)).await?;
    let path = format!(
        "/api/history?workload={}",
        s.replace('[', "%5B").replace(']', "%5D")
    );
    let (_, body) = get(port, &path)?;
    let page: api::HistoryPage = serde_json::from_str(&body)?;
    let revoked = page
        .entries
        .iter()
        .find(|e| e.source == c && e.change == api::ChangeKind::Revoked)
        .with_context(|| format!("{page:#?}"))?;
    assert!(
        revoked
            .by
            .iter()
            .any(|b| b == &format!("NetworkPolicy {n}/deny-server")),
        "{:?}",
        revoked.by
    );

    // Deleting the policy grants the access again.
    policies
        .delete("deny-server", &DeleteParams::default())
        .await?;
    wait_state(port, n, &c, &s, Some(api::EdgeState::Unprotected)).await?;
    let (_, body) = get(port, &path)?;
    let page: api::HistoryPage = serde_json::from_str(&body)?;
    assert!(
        page.entries.iter().any(|e| e.source == c
            && e.change == api::ChangeKind::Granted
            && e.after == Some(api::EdgeState::Unprotected)),
        "{page:#?}"
    );

    // Deleting the intents: undeclared again, so open.
    intents_api(&client, n)
        .delete("client", &DeleteParams::default())
        .await?;
    wait_state(port, n, &c, &s, Some(api::EdgeState::Open)).await?;
    Ok(())
}

/// A flow as `hubble observe -o jsonpb` prints it, between two addresses with no workload
/// fields (what the IP history resolves).
fn bare_flow(time: &str, src: &str, dst: &str, port: u16) -> String {
    json!({"flow": {
        "time": time, "verdict": "FORWARDED",
        "IP": {"source": src, "destination": dst, "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": 40100, "destination_port": port, "flags": {"SYN": true}}},
        "source": {"ID": 1, "identity": 30001, "labels": []},
        "destination": {"ID": 2, "identity": 30002, "labels": []},
        "Type": "L3_L4", "node_name": "worker-1", "event_type": {"type": 4},
        "traffic_direction": "EGRESS", "is_reply": false
    }, "node_name": "worker-1", "time": time})
    .to_string()
}

#[tokio::test]
async fn flows_without_workload_fields_resolve_through_the_live_pods_addresses() -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    let ns = TestNamespace::new().await?;
    let client = ns.client();
    let n = ns.name();
    create_deployment(&client, n, "server").await?;
    create_deployment(&client, n, "client").await?;
    // No kubelet runs: the test gives the pods their addresses through the status subresource.
    let pods: Api<Pod> = ns.api();
    let mut address = std::collections::BTreeMap::new();
    for (app, ip) in [("server", "10.77.0.1"), ("client", "10.77.0.2")] {
        let pod = pods_of(&client, n, app).await?.remove(0);
        let name = pod.metadata.name.clone().context("pod name")?;
        pods.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})),
        )
        .await
        .with_context(|| format!("setting {name}'s address"))?;
        address.insert(app, ip);
    }

    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let plane = accord_tests::shared().await?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--kubeconfig"])
        .arg(plane.kubeconfig_path())
        .arg("--db")
        .arg(dir.path().join("accord.db"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--debounce-ms",
            "100",
        ])
        .args(["--flows", "-"])
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let serve = Serve { child, port };
    let (c, s) = (
        format!("{n}/client[Deployment]"),
        format!("{n}/server[Deployment]"),
    );
    wait_state(port, n, &c, &s, Some(api::EdgeState::Open)).await?;
    // The pass has named the pods' workloads; the IP history follows within a second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64;
    let time = accord_policy::observed::format_rfc3339(now);
    writeln!(
        stdin,
        "{}",
        bare_flow(&time, address["client"], address["server"], 8080)
    )?;
    drop(stdin);

    let path = format!(
        "/api/observed?server={}",
        s.replace('[', "%5B").replace(']', "%5D")
    );
    let observed: serde_json::Value =
        wait_until("the flow to be stored", Duration::from_secs(60), || async {
            let v: serde_json::Value = serve.json(&path)?;
            Ok(v["calls"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
                .then_some(v))
        })
        .await?;
    let calls = observed["calls"].as_array().context("calls")?;
    assert_eq!(calls.len(), 1, "{observed:#}");
    assert_eq!(calls[0]["client"], c.as_str(), "{observed:#}");
    assert_eq!(calls[0]["port"], 8080);
    // Nothing was left unresolved.
    let all: serde_json::Value = serve.json("/api/observed")?;
    assert!(
        all["other"]
            .as_array()
            .context("other")?
            .iter()
            .all(|o| o["class"] != "unresolved"),
        "{all:#}"
    );
    Ok(())
}
