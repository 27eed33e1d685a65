//! The operator survives a restart of the API server: its watches reconnect, it relists, and
//! changes made after the restart converge. A dedicated control plane, because restarting the
//! shared one would disturb the tests running beside it.

#[path = "support/operator.rs"]
mod support;

use accord_policy::identity::formatted;
use accord_tests::{ControlPlane, TestNamespace};
use anyhow::Result;
use kube::api::DeleteParams;
use serde_json::json;
use support::*;

#[tokio::test]
async fn operator_reconnects_and_converges_after_an_api_server_restart() -> Result<()> {
    if accord_tests::use_existing_cluster() {
        eprintln!("skipped: an existing cluster's API server cannot be restarted from here");
        return Ok(());
    }
    let control_plane = ControlPlane::start().await?;
    let ns = TestNamespace::create(&control_plane).await?;
    let client = ns.client();
    let n = ns.name();
    install_crds(&ns).await?;
    let account = operator_account(&ns).await?;
    for name in ["server", "a", "b"] {
        create_deployment(&client, n, name).await?;
    }
    let operator = Operator::start(&account, &[n], &[])?;
    let target = json!([{"kubernetes": {"name": "server"}}]);
    create_intents(
        &client,
        n,
        "a",
        json!({"workload": {"name": "a"}, "targets": target}),
    )
    .await?;
    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", n, None)
    );
    wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    wait_pod_labels(&client, n, "a", &[(access.as_str(), Some("true"))]).await?;

    control_plane.restart_api_server().await?;

    // Changes after the restart: a new client, and the first one's intents removed.
    create_intents(
        &client,
        n,
        "b",
        json!({"workload": {"name": "b"}, "targets": target}),
    )
    .await?;
    intents_api(&client, n)
        .delete("a", &DeleteParams::default())
        .await?;
    wait_pod_labels(&client, n, "b", &[(access.as_str(), Some("true"))]).await?;
    // `a` keeps its labels, marked as having no intents left (as upstream does).
    wait_pod_annotation(
        &client,
        n,
        "a",
        "intents.otterize.com/all-intents-removed",
        Some("true"),
    )
    .await?;
    wait_status(&client, n, "b", "up to date", |s| s["upToDate"] == true).await?;
    let policy = wait_policy(&client, n, "server-access", "one rule", |p| {
        spec_json(p)["ingress"].as_array().map(Vec::len) == Some(1)
    })
    .await?;
    assert!(
        policy
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("intents.otterize.com/network-policy")
    );
    // And a generated policy deleted after the restart is restored: the policy watch is back.
    let policies: kube::Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        kube::Api::namespaced(client.clone(), n);
    policies
        .delete("server-access", &DeleteParams::default())
        .await?;
    wait_policy(&client, n, "server-access", "restored", |p| {
        p.metadata.uid != policy.metadata.uid
    })
    .await?;
    drop(operator);
    Ok(())
}
