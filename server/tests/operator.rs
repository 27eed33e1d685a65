//! The operator against a real control plane (kube-apiserver, etcd, kube-controller-manager),
//! running as the ServiceAccount `deploy/rbac.yaml` grants. Each test works in namespaces of
//! its own with an operator of its own that watches only them.
//!
//! Size: one test binary, so that its tests share one control plane and one webhook operator
//! (each file under server/tests/ starts its own).

#[path = "support/operator.rs"]
mod support;

use accord_policy::identity::formatted;
use accord_tests::{DEFAULT_TIMEOUT, TestNamespace, wait_until};
use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::*;

async fn setup(
    extra_namespaces: usize,
) -> Result<(
    TestNamespace,
    Vec<TestNamespace>,
    accord_tests::ServiceAccountCredentials,
)> {
    let ns = TestNamespace::new().await?;
    install_crds(&ns).await?;
    let account = operator_account(&ns).await?;
    let mut others = Vec::new();
    for _ in 0..extra_namespaces {
        others.push(TestNamespace::new().await?);
    }
    Ok((ns, others, account))
}

/// The worked example of otterize-compat.md, in its own namespace name so that every hash is
/// the documented one.
#[tokio::test]
async fn worked_example_gives_the_upstream_policy_and_pod_labels() -> Result<()> {
    let (home, _, account) = setup(0).await?;
    let client = home.client();
    let ns = "otterize-tutorial-npol";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    wait_until(
        "the tutorial namespace to be free",
        DEFAULT_TIMEOUT,
        || async { Ok(namespaces.get_opt(ns).await?.is_none().then_some(())) },
    )
    .await?;
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let _cleanup = NamespaceGuard(client.clone(), ns.to_owned());
    wait_until("the default ServiceAccount", DEFAULT_TIMEOUT, || async {
        Ok(
            Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), ns)
                .get_opt("default")
                .await?,
        )
    })
    .await?;
    create_deployment(&client, ns, "client").await?;
    create_deployment(&client, ns, "server").await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let server = services
        .create(
            &PostParams::default(),
            &service("server", json!({"app": "server"}), 80),
        )
        .await?;
    let operator = Operator::start(&account, &[ns], &[])?;
    create_intents(
        &client,
        ns,
        "client",
        json!({"workload": {"name": "client"}, "targets": [{"service": {"name": "server"}}]}),
    )
    .await?;

    let policy = wait_policy(&client, ns, "server-service-access", "exists", |_| true).await?;
    assert_eq!(
        policy.metadata.labels.clone().unwrap_or_default(),
        [(
            "intents.otterize.com/network-policy".to_owned(),
            "server-otterize-tutorial-n-servi-7dac8c".to_owned()
        )]
        .into()
    );
    let owners = policy.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (
            owners[0].api_version.as_str(),
            owners[0].kind.as_str(),
            owners[0].name.as_str()
        ),
        ("v1", "Service", "server")
    );
    assert_eq!(Some(&owners[0].uid), server.metadata.uid.as_ref());
    assert_eq!(
        spec_json(&policy),
        json!({
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "ports": [{"port": 80, "protocol": "TCP"}],
                "from": [{
                    "podSelector": {"matchLabels": {"intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c": "true"}},
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                }],
            }],
        })
    );
    let pods = wait_pod_labels(
        &client,
        ns,
        "client",
        &[
            (
                "intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c",
                Some("true"),
            ),
            (
                "intents.otterize.com/client",
                Some("client-otterize-tutorial-np-699302"),
            ),
            (
                "intents.otterize.com/service",
                Some("client-otterize-tutorial-np-699302"),
            ),
            ("intents.otterize.com/owner-kind", Some("Deployment")),
        ],
    )
    .await?;
    let managed: Vec<String> = pods[0]
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k.starts_with("intents.otterize.com/"))
        .collect();
    assert_eq!(
        managed.len(),
        4,
        "exactly the documented labels: {managed:?}"
    );

    let status = wait_status(&client, ns, "client", "up to date", |s| {
        s["upToDate"] == true
    })
    .await?;
    assert_eq!(
        condition(&status, "Valid").context("Valid")?["status"],
        "True"
    );
    assert_eq!(
        condition(&status, "PoliciesApplied").context("PoliciesApplied")?["status"],
        "True"
    );
    assert_eq!(status["observedGeneration"], 1);
    let intents = intents_api(&client, ns).get("client").await?;
    assert!(
        intents
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"intents.otterize.com/accord-operator".to_owned())
    );

    // Deleting the intents removes the policy; the client keeps its labels and is marked as
    // having no intents left (as upstream does); the finalizer lets the intents go.
    intents_api(&client, ns)
        .delete("client", &DeleteParams::default())
        .await?;
    wait_policy_gone(&client, ns, "server-service-access").await?;
    wait_pod_annotation(
        &client,
        ns,
        "client",
        "intents.otterize.com/all-intents-removed",
        Some("true"),
    )
    .await?;
    wait_pod_labels(
        &client,
        ns,
        "client",
        &[
            (
                "intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c",
                Some("true"),
            ),
            (
                "intents.otterize.com/client",
                Some("client-otterize-tutorial-np-699302"),
            ),
        ],
    )
    .await?;
    let intents = intents_api(&client, ns);
    wait_until("the intents to be finalized", DEFAULT_TIMEOUT, || async {
        Ok(intents.get_opt("client").await?.is_none().then_some(()))
    })
    .await?;
    drop(operator);
    Ok(())
}

struct NamespaceGuard(Client, String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let (client, name) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    Api::<Namespace>::all(client).delete(&name, &DeleteParams::background()),
                )
                .await;
            });
            Some(())
        })
        .join();
    }
}

/// Clients in two namespaces share one policy with a rule per namespace; removing one client's
/// intents keeps the policy and removes that client's labels; removing the last deletes it.
#[tokio::test]
async fn policy_follows_its_clients_until_none_remain() -> Result<()> {
    let (a, others, account) = setup(1).await?;
    let b = &others[0];
    let client = a.client();
    let (na, nb) = (a.name(), b.name());
    create_deployment(&client, na, "server").await?;
    create_deployment(&client, na, "client-a").await?;
    create_deployment(&client, nb, "client-b").await?;
    let _operator = Operator::start(&account, &[na, nb], &[])?;
    let target = json!([{"kubernetes": {"name": format!("server.{na}"), "kind": "Deployment"}}]);
    create_intents(
        &client,
        na,
        "client-a",
        json!({"workload": {"name": "client-a"}, "targets": target}),
    )
    .await?;
    create_intents(
        &client,
        nb,
        "client-b",
        json!({"workload": {"name": "client-b"}, "targets": target}),
    )
    .await?;

    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", na, Some("Deployment"))
    );
    let rule = |ns: &str| {
        json!({"from": [{
            "podSelector": {"matchLabels": {access.clone(): "true"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        }]})
    };
    let two_rules = {
        let mut rules = vec![rule(na), rule(nb)];
        rules.sort_by_key(|r| r.to_string());
        rules
    };
    let policy = wait_policy(&client, na, "server-deployment-access", "two rules", |p| {
        let mut rules = spec_json(p)["ingress"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        rules.sort_by_key(|r| r.to_string());
        rules == two_rules
    })
    .await?;
    assert_eq!(
        spec_json(&policy)["podSelector"],
        json!({"matchLabels": {"intents.otterize.com/owner-kind": "Deployment", "intents.otterize.com/service": formatted("server", na, None)}})
    );
    wait_pod_labels(&client, nb, "client-b", &[(access.as_str(), Some("true"))]).await?;
    wait_pod_labels(&client, na, "client-a", &[(access.as_str(), Some("true"))]).await?;
    wait_pod_labels(
        &client,
        na,
        "server",
        &[("intents.otterize.com/owner-kind", Some("Deployment"))],
    )
    .await?;

    intents_api(&client, nb)
        .delete("client-b", &DeleteParams::default())
        .await?;
    wait_policy(&client, na, "server-deployment-access", "one rule", |p| {
        spec_json(p)["ingress"] == json!([rule(na)])
    })
    .await?;
    // client-b keeps its labels (the rule for its namespace is gone, so they admit nothing).
    wait_pod_annotation(
        &client,
        nb,
        "client-b",
        "intents.otterize.com/all-intents-removed",
        Some("true"),
    )
    .await?;
    wait_pod_labels(&client, nb, "client-b", &[(access.as_str(), Some("true"))]).await?;
    wait_pod_labels(&client, na, "client-a", &[(access.as_str(), Some("true"))]).await?;

    intents_api(&client, na)
        .delete("client-a", &DeleteParams::default())
        .await?;
    wait_policy_gone(&client, na, "server-deployment-access").await?;
    wait_pod_annotation(
        &client,
        na,
        "client-a",
        "intents.otterize.com/all-intents-removed",
        Some("true"),
    )
    .await?;
    Ok(())
}

/// A generated policy edited or deleted by hand is restored; a policy without the ownership
/// label is never touched, even when it has a generated policy's name pattern.
#[tokio::test]
async fn hand_edited_policy_is_restored_and_foreign_policy_left_alone() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    let foreign: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "other-access", "labels": {"team": "platform"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
    }))?;
    let foreign = policies.create(&PostParams::default(), &foreign).await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    let original = wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    let original_spec = spec_json(&original);
    assert_eq!(
        original_spec["podSelector"],
        json!({"matchLabels": {"intents.otterize.com/service": formatted("server", n, None)}})
    );

    // An edit by another field manager is undone.
    let edit = json!({"spec": {"ingress": [{"from": [{"podSelector": {}}]}]}});
    policies
        .patch(
            "server-access",
            &PatchParams::default(),
            &Patch::Merge(&edit),
        )
        .await?;
    wait_policy(&client, n, "server-access", "restored after an edit", |p| {
        spec_json(p) == original_spec
    })
    .await?;

    // A deletion is undone.
    policies
        .delete("server-access", &DeleteParams::default())
        .await?;
    wait_policy(
        &client,
        n,
        "server-access",
        "recreated after deletion",
        |p| spec_json(p) == original_spec && p.metadata.uid != original.metadata.uid,
    )
    .await?;

    // The foreign policy was never written to.
    let now = policies.get("other-access").await?;
    assert_eq!(
        now.metadata.resource_version,
        foreign.metadata.resource_version
    );
    intents_api(&client, n)
        .delete("client", &DeleteParams::default())
        .await?;
    wait_policy_gone(&client, n, "server-access").await?;
    assert!(
        policies.get_opt("other-access").await?.is_some(),
        "the foreign policy must survive"
    );
    Ok(())
}

/// Deleting and recreating the server's Deployment changes nothing on the client side, and
/// the policy stays in place throughout.
#[tokio::test]
async fn server_redeploy_keeps_client_access() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", n, None)
    );
    let service_label = formatted("server", n, None);
    let policy = wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    let client_pods =
        wait_pod_labels(&client, n, "client", &[(access.as_str(), Some("true"))]).await?;
    wait_pod_labels(
        &client,
        n,
        "server",
        &[("intents.otterize.com/service", Some(service_label.as_str()))],
    )
    .await?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
    deployments
        .delete("server", &DeleteParams::foreground())
        .await?;
    accord_tests::wait_for_deletion(&deployments, "server", DEFAULT_TIMEOUT).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    wait_until("the server's pods to go", DEFAULT_TIMEOUT, || async {
        Ok(pods
            .list(&ListParams::default().labels("app=server"))
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await?;
    create_deployment(&client, n, "server").await?;
    let new_server = wait_pod_labels(
        &client,
        n,
        "server",
        &[("intents.otterize.com/service", Some(service_label.as_str()))],
    )
    .await?;
    assert!(
        new_server
            .iter()
            .all(|p| !client_pods.iter().any(|c| c.metadata.uid == p.metadata.uid))
    );

    let after = Api::<NetworkPolicy>::namespaced(client.clone(), n)
        .get("server-access")
        .await?;
    assert_eq!(
        after.metadata.uid, policy.metadata.uid,
        "the policy was never removed"
    );
    assert_eq!(
        after.metadata.resource_version, policy.metadata.resource_version,
        "nor rewritten"
    );
    let client_after = pods
        .list(&ListParams::default().labels("app=client"))
        .await?
        .items;
    assert_eq!(
        client_after
            .iter()
            .map(|p| (p.metadata.uid.clone(), p.metadata.labels.clone()))
            .collect::<Vec<_>>(),
        client_pods
            .iter()
            .map(|p| (p.metadata.uid.clone(), p.metadata.labels.clone()))
            .collect::<Vec<_>>(),
        "client pods unchanged"
    );
    Ok(())
}

/// Invalid intents: the schema rejects a missing workload name naming the field; what the
/// schema admits but upstream rejects is reported on the status, naming the field.
#[tokio::test]
async fn invalid_intents_are_rejected_or_reported_by_field() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    let rejected = create_intents(
        &client,
        n,
        "nameless",
        json!({"workload": {}, "targets": []}),
    )
    .await;
    let message = format!(
        "{:#}",
        rejected.expect_err("the API server must reject a nameless workload")
    );
    assert!(message.contains("spec.workload.name"), "{message}");

    let _operator = Operator::start(&account, &[n], &[])?;
    // The validating webhook rejects such intents (see
    // `invalid_intents_are_rejected_at_create_time_naming_the_field`); in a namespace that opts
    // out of validation they are admitted, and the operator reports them on the status.
    Api::<Namespace>::all(client.clone())
        .patch(
            n,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"intents.otterize.com/accord-validation": "disabled"}}})),
        )
        .await?;
    wait_until(
        "the API server to admit invalid intents in the opted-out namespace",
        DEFAULT_TIMEOUT,
        || async {
            create_intents(
                &client,
                n,
                "two-keys",
                json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "a"}, "service": {"name": "b"}}]}),
            )
            .await?;
            Ok(Some(()))
        },
    )
    .await?;
    let status = wait_status(&client, n, "two-keys", "reported invalid", |s| {
        condition(s, "Valid").is_some_and(|c| c["status"] == "False")
    })
    .await?;
    let valid = condition(&status, "Valid").context("Valid")?;
    assert_eq!(valid["reason"], "InvalidIntents");
    assert!(
        valid["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.targets[0]"),
        "{valid}"
    );
    assert_eq!(status["upToDate"], false);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), n);
    let event = wait_until(
        "a Warning event on the invalid intents",
        DEFAULT_TIMEOUT,
        || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("two-keys")
                        && e.type_.as_deref() == Some("Warning")
                }))
        },
    )
    .await?;
    assert_eq!(event.reason.as_deref(), Some("InvalidIntents"));
    assert!(event.note.unwrap_or_default().contains("spec.targets[0]"));

    create_intents(
        &client,
        n,
        "missing-target",
        json!({"workload": {"name": "other"}, "targets": [{"service": {"name": "nowhere"}}]}),
    )
    .await?;
    let status = wait_status(&client, n, "missing-target", "target not found", |s| {
        condition(s, "TargetsResolved").is_some_and(|c| c["status"] == "False")
    })
    .await?;
    let resolved = condition(&status, "TargetsResolved").context("TargetsResolved")?;
    assert_eq!(resolved["reason"], "TargetNotFound");
    assert!(
        resolved["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.targets[0].service"),
        "{resolved}"
    );
    Ok(())
}

/// Two replicas: one holds the lease and acts; when it dies, the other takes over.
#[tokio::test]
async fn standby_replica_takes_over_when_the_leader_dies() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let mut first = Operator::start(&account, &[n], &["--identity", "first"])?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), n);
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt("accord-operator")
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity),
        )
    };
    wait_until("the first replica to lead", DEFAULT_TIMEOUT, || async {
        Ok(holder().await?.filter(|h| h == "first"))
    })
    .await?;
    let second = Operator::start(&account, &[n], &["--identity", "second"])?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    wait_policy(&client, n, "server-access", "applied by the leader", |_| {
        true
    })
    .await?;
    let (_, metrics) = second.http_get("/metrics").await?;
    assert!(
        metrics.contains("reconcile_leader 0"),
        "the standby must not lead:\n{metrics}"
    );
    assert!(
        metrics.contains("reconcile_api_requests_total{op=\"apply_policy\"} 0"),
        "the standby must not write:\n{metrics}"
    );

    first.kill();
    wait_until(
        "the second replica to take over",
        DEFAULT_TIMEOUT,
        || async { Ok(holder().await?.filter(|h| h == "second")) },
    )
    .await?;
    create_deployment(&client, n, "late").await?;
    create_intents(
        &client,
        n,
        "late",
        json!({"workload": {"name": "late"}, "targets": [{"kubernetes": {"name": "client"}}]}),
    )
    .await?;
    wait_policy(
        &client,
        n,
        "client-access",
        "applied by the new leader",
        |_| true,
    )
    .await?;
    let (_, metrics) = second.http_get("/metrics").await?;
    assert!(metrics.contains("reconcile_leader 1"), "{metrics}");
    Ok(())
}

/// /healthz, /readyz and /metrics answer.
#[tokio::test]
async fn serves_health_and_metrics() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let operator = Operator::start(&account, &[ns.name()], &[])?;
    operator.wait_ready().await?;
    assert_eq!(operator.http_get("/healthz").await?.0, 200);
    assert_eq!(operator.http_get("/readyz").await?.0, 200);
    let (_, body) = operator.http_get("/metrics").await?;
    for name in [
        "reconcile_batches_total",
        "reconcile_api_requests_total{op=\"apply_policy\"}",
        "reconcile_duration_seconds_bucket{le=",
        "reconcile_duration_seconds_count",
        "reconcile_leader 1",
        "reconcile_ready 1",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    Ok(())
}

/// A write the API server refuses is reported on the status, counted by kind of write and
/// error code on `/metrics`, and retried until it goes through: a ResourceQuota allowing no
/// NetworkPolicies makes every policy apply Forbidden until it is lifted.
#[tokio::test]
async fn refused_writes_are_counted_by_error_code_reported_and_retried() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), n);
    quotas
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "no-policies"},
                "spec": {"hard": {"count/networkpolicies.networking.k8s.io": "0"}},
            }))?,
        )
        .await?;
    let operator = Operator::start(&account, &[n], &[])?;
    operator.wait_ready().await?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    let status = wait_status(&client, n, "client", "the refused apply reported", |s| {
        condition(s, "PoliciesApplied").is_some_and(|c| c["status"] == "False")
    })
    .await?;
    let applied = condition(&status, "PoliciesApplied").context("PoliciesApplied")?;
    assert_eq!(applied["reason"], "ApplyFailed");
    assert_eq!(status["upToDate"], false);
    let forbidden = |body: &str| -> f64 {
        body.lines()
            .filter(|l| {
                l.starts_with("reconcile_errors_total{op=\"apply_policy\",code=\"forbidden\"}")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (_, metrics) = operator.http_get("/metrics").await?;
    assert!(forbidden(&metrics) >= 1.0, "{metrics}");

    quotas
        .delete("no-policies", &DeleteParams::default())
        .await?;
    wait_policy(&client, n, "server-access", "applied once allowed", |_| {
        true
    })
    .await?;
    wait_status(&client, n, "client", "up to date after the retry", |s| {
        s["upToDate"] == true
            && condition(s, "PoliciesApplied").is_some_and(|c| c["status"] == "True")
    })
    .await?;
    Ok(())
}

/// Shadow mode: pods are labelled but no policy is enforced until a ProtectedService names the
/// server, which then also gets its default-deny policy.
#[tokio::test]
async fn shadow_mode_enforces_only_protected_servers() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    for name in ["server", "other", "client"] {
        create_deployment(&client, n, name).await?;
    }
    let _operator = Operator::start(&account, &[n], &["--shadow"])?;
    create_intents(
        &client,
        n,
        "client",
        json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server"}}, {"kubernetes": {"name": "other"}}]}),
    )
    .await?;
    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", n, None)
    );
    wait_pod_labels(&client, n, "client", &[(access.as_str(), Some("true"))]).await?;
    wait_status(&client, n, "client", "up to date", |s| {
        s["upToDate"] == true
    })
    .await?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    assert!(
        policies
            .list(&ListParams::default())
            .await?
            .items
            .is_empty(),
        "shadow mode enforces nothing unprotected"
    );

    apply_value(
        &client,
        &json!({
            "apiVersion": "k8s.otterize.com/v2alpha1",
            "kind": "ProtectedService",
            "metadata": {"name": "protect-server", "namespace": n},
            "spec": {"name": "server"},
        }),
    )
    .await?;
    wait_policy(
        &client,
        n,
        "server-access",
        "enforced once protected",
        |_| true,
    )
    .await?;
    let deny = wait_policy(&client, n, "default-deny-server", "default deny", |_| true).await?;
    assert_eq!(
        spec_json(&deny),
        json!({"podSelector": {"matchLabels": {"intents.otterize.com/service": formatted("server", n, None)}}, "policyTypes": ["Ingress"]})
    );
    assert_eq!(
        deny.metadata.labels.clone().unwrap_or_default(),
        [
            (
                "intents.otterize.com/network-policy".to_string(),
                formatted("server", n, None)
            ),
            (
                "intents.otterize.com/network-policy-service-default-deny".to_string(),
                "true".to_string()
            ),
        ]
        .into()
    );
    assert!(
        policies.get_opt("other-access").await?.is_none(),
        "the unprotected server stays open"
    );
    Ok(())
}

/// The smallest v1alpha2 file of otterize-compat.md, exactly as people write it.
const SMALLEST_V1ALPHA2: &str = "\
apiVersion: k8s.otterize.com/v1alpha2
kind: ClientIntents
metadata:
  name: client-intents
spec:
  service:
    name: client
  calls:
    - name: server
";

/// A v1alpha2 file applied as it is: the API server converts it through the operator's
/// webhook for storage, the operator enforces it, and it reads back in both shapes.
#[tokio::test]
async fn v1alpha2_intents_are_converted_by_the_webhook_and_enforced() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let webhook = install_crds(&ns).await?;
    let client = ns.client();
    let n = ns.name();

    // The webhook operator generated a CA and put it, with its URL, into the CRD and the
    // ValidatingWebhookConfiguration.
    let crd = serde_json::to_value(
        Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(client.clone())
            .get("clientintents.k8s.otterize.com")
            .await?,
    )?;
    let conversion = &crd["spec"]["conversion"];
    assert_eq!(conversion["strategy"], "Webhook");
    assert_eq!(
        conversion["webhook"]["clientConfig"]["url"],
        format!("{}/convert", webhook.url)
    );
    assert!(conversion["webhook"]["clientConfig"]["service"].is_null());
    let vwc = serde_json::to_value(
        Api::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>::all(
            client.clone(),
        )
        .get("accord-operator")
        .await?,
    )?;
    let config = &vwc["webhooks"][0]["clientConfig"];
    assert_eq!(
        config["url"],
        format!("{}/validate-clientintents", webhook.url)
    );
    assert_eq!(
        config["caBundle"],
        conversion["webhook"]["clientConfig"]["caBundle"]
    );

    deploy_client_and_server(&client, n).await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    let doc: serde_json::Value = serde_yaml::from_str(SMALLEST_V1ALPHA2)?;
    let v1alpha2 = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        n,
        &intents_resource("v1alpha2"),
    );
    v1alpha2
        .create(
            &PostParams::default(),
            &serde_json::from_value(doc.clone())?,
        )
        .await
        .context("creating the v1alpha2 file as it is")?;

    let server = formatted("server", n, None);
    let access = format!("intents.otterize.com/access-{server}");
    let policy = wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    assert_eq!(
        spec_json(&policy),
        json!({
            "podSelector": {"matchLabels": {"intents.otterize.com/service": server}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{
                "podSelector": {"matchLabels": {access.clone(): "true"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}},
            }]}],
        })
    );
    wait_pod_labels(
        &client,
        n,
        "client",
        &[
            (access.as_str(), Some("true")),
            (
                "intents.otterize.com/client",
                Some(formatted("client", n, None).as_str()),
            ),
        ],
    )
    .await?;
    wait_status(&client, n, "client-intents", "up to date", |s| {
        s["upToDate"] == true
    })
    .await?;

    // Read back in the v2 shape, and in the shape it was written in.
    let v2beta1 = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        n,
        &intents_resource("v2beta1"),
    );
    let as_v2 = v2beta1.get("client-intents").await?;
    assert_eq!(as_v2.data["spec"], client_calls_server());
    assert!(
        as_v2.metadata.annotations.unwrap_or_default().is_empty(),
        "a lossless conversion needs no annotation"
    );
    let as_v1 = v1alpha2.get("client-intents").await?;
    assert_eq!(as_v1.data["spec"], doc["spec"]);
    assert_eq!(
        as_v1.types.as_ref().map(|t| t.api_version.as_str()),
        Some("k8s.otterize.com/v1alpha2")
    );

    // A form v2 cannot express (an explicit `type: http`) survives the round trip too.
    let explicit = json!({
        "apiVersion": "k8s.otterize.com/v1alpha2",
        "kind": "ClientIntents",
        "metadata": {"name": "explicit"},
        "spec": {"service": {"name": "other"}, "calls": [{"name": "server", "type": "http"}]},
    });
    v1alpha2
        .create(
            &PostParams::default(),
            &serde_json::from_value(explicit.clone())?,
        )
        .await?;
    assert_eq!(
        v2beta1.get("explicit").await?.data["spec"]["targets"],
        json!([{"kubernetes": {"name": "server"}}])
    );
    assert_eq!(
        v1alpha2.get("explicit").await?.data["spec"],
        explicit["spec"]
    );
    Ok(())
}

/// What upstream rejects is rejected by the API server at create time, through the operator's
/// validating webhook, with the field named; nothing is stored.
#[tokio::test]
async fn invalid_intents_are_rejected_at_create_time_naming_the_field() -> Result<()> {
    let (ns, _, _account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    let rejection = |r: Result<()>| -> String {
        format!(
            "{:#}",
            r.expect_err("the API server must reject these intents")
        )
    };

    let message = rejection(
        create_intents(
            &client,
            n,
            "two-keys",
            json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "a"}, "service": {"name": "b"}}]}),
        )
        .await,
    );
    assert!(
        message.contains("denied the request")
            && message.contains("spec.targets[0]: a target must set exactly one key"),
        "{message}"
    );

    let message = rejection(
        apply_value(
            &client,
            &json!({
                "apiVersion": "k8s.otterize.com/v1alpha2",
                "kind": "ClientIntents",
                "metadata": {"name": "dotted", "namespace": n},
                "spec": {"service": {"name": "client.other"}, "calls": [{"name": "server"}]},
            }),
        )
        .await,
    );
    assert!(message.contains("spec.service.name"), "{message}");

    let message = rejection(
        create_intents(
            &client,
            n,
            "no-path",
            json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server", "http": [{"methods": ["GET"]}]}}]}),
        )
        .await,
    );
    assert!(
        message.contains("spec.targets[0].kubernetes.http[0].path"),
        "{message}"
    );

    // One ClientIntents per workload.
    create_intents(&client, n, "first", client_calls_server()).await?;
    let message = rejection(
        create_intents(
            &client,
            n,
            "second",
            json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "other"}}]}),
        )
        .await,
    );
    assert!(
        message.contains("spec.workload.name") && message.contains("first"),
        "{message}"
    );

    let stored: Vec<String> = intents_api(&client, n)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(stored, ["first"]);
    Ok(())
}

/// Deleting intents removes only Accord's finalizer: another controller's stays (the removal is
/// guarded by the resourceVersion, so one added meanwhile is not lost either).
#[tokio::test]
async fn deleting_intents_keeps_other_controllers_finalizers() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    let intents = intents_api(&client, n);
    let ours = "intents.otterize.com/accord-operator";
    let current = wait_until("Accord's finalizer", DEFAULT_TIMEOUT, || async {
        let o = intents.get("client").await?;
        Ok(o.metadata
            .finalizers
            .clone()
            .filter(|f| f.iter().any(|f| f == ours)))
    })
    .await?;
    let mut with_foreign = current.clone();
    with_foreign.push("example.com/keep".to_owned());
    intents
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": with_foreign}})),
        )
        .await?;
    wait_policy(&client, n, "server-access", "exists", |_| true).await?;

    intents.delete("client", &DeleteParams::default()).await?;
    wait_policy_gone(&client, n, "server-access").await?;
    let left = wait_until(
        "Accord's finalizer to be removed and the other one kept",
        DEFAULT_TIMEOUT,
        || async {
            let o = intents.get("client").await?;
            let f = o.metadata.finalizers.clone().unwrap_or_default();
            Ok((!f.iter().any(|f| f == ours)).then_some(f))
        },
    )
    .await?;
    assert_eq!(left, ["example.com/keep"]);
    intents
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    wait_until("the intents to be gone", DEFAULT_TIMEOUT, || async {
        Ok(intents.get_opt("client").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

/// Deployment `api.v2` (identity `api_v2`) and a bare pod with the longest name a pod may have:
/// their policies are named as upstream names them where that name is valid (`api.v2-access`),
/// and validly otherwise, so the API server accepts every one and the servers are protected.
#[tokio::test]
async fn dotted_and_longest_workload_names_get_policies_the_api_server_accepts() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    create_deployment(&client, n, "client").await?;
    create_deployment(&client, n, "api.v2").await?;
    let long = "p".repeat(253);
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": long, "labels": {"app": "long"}},
            "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
        }))?,
    )
    .await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    create_intents(
        &client,
        n,
        "client",
        json!({"workload": {"name": "client"}, "targets": [
            {"kubernetes": {"name": "api_v2"}},
            {"kubernetes": {"name": "api_v2", "kind": "Deployment"}},
            {"kubernetes": {"name": long, "kind": "Pod"}},
        ]}),
    )
    .await?;
    let service = formatted("api_v2", n, None);
    let legacy = wait_policy(&client, n, "api.v2-access", "exists", |_| true).await?;
    assert_eq!(
        spec_json(&legacy)["podSelector"],
        json!({"matchLabels": {"intents.otterize.com/service": service}})
    );
    let by_kind = wait_policy(&client, n, "api.v2-deployment-access", "exists", |_| true).await?;
    assert_eq!(
        spec_json(&by_kind)["podSelector"],
        json!({"matchLabels": {"intents.otterize.com/owner-kind": "Deployment", "intents.otterize.com/service": service}})
    );
    let long_name = accord_policy::generate::object_name("", &format!("{long}-pod"), "-access");
    assert!(long_name.len() <= 253, "{long_name}");
    let long_policy = wait_policy(&client, n, &long_name, "exists", |_| true).await?;
    assert_eq!(
        spec_json(&long_policy)["podSelector"],
        json!({"matchLabels": {"intents.otterize.com/owner-kind": "Pod", "intents.otterize.com/service": formatted(&long, n, None)}})
    );
    // The protected pods carry what the policies select on, and nothing is left to retry.
    wait_pod_labels(
        &client,
        n,
        "api.v2",
        &[
            ("intents.otterize.com/service", Some(service.as_str())),
            ("intents.otterize.com/owner-kind", Some("Deployment")),
        ],
    )
    .await?;
    let status = wait_status(&client, n, "client", "up to date", |s| {
        s["upToDate"] == true
    })
    .await?;
    assert_eq!(
        condition(&status, "PoliciesApplied").context("PoliciesApplied")?["status"],
        "True"
    );
    Ok(())
}

/// Every pending or running pod gets its identity labels whether intents name it or not; a pod
/// named by the override annotation gets an empty owner kind (as upstream does).
#[tokio::test]
async fn every_pod_gets_its_service_and_owner_kind_labels() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    create_deployment(&client, n, "idle").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {
                "name": "legacy-1",
                "labels": {"app": "legacy"},
                "annotations": {"intents.otterize.com/workload-name": "legacy"},
            },
            "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
        }))?,
    )
    .await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    wait_pod_labels(
        &client,
        n,
        "idle",
        &[
            (
                "intents.otterize.com/service",
                Some(formatted("idle", n, None).as_str()),
            ),
            ("intents.otterize.com/owner-kind", Some("Deployment")),
            ("intents.otterize.com/client", None),
        ],
    )
    .await?;
    wait_pod_labels(
        &client,
        n,
        "legacy",
        &[
            (
                "intents.otterize.com/service",
                Some(formatted("legacy", n, None).as_str()),
            ),
            ("intents.otterize.com/owner-kind", Some("")),
        ],
    )
    .await?;
    Ok(())
}

/// A protected server exposed by a NodePort Service and by an Ingress gets an
/// `external-access-to-<Service>` policy per Service, owned by it, so that it stays reachable
/// from outside the cluster; removing the Ingress removes its policy.
#[tokio::test]
async fn exposed_servers_get_external_access_policies() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), n);
    let public = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "server-public"},
                "spec": {"type": "NodePort", "selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            }))?,
        )
        .await?;
    services
        .create(
            &PostParams::default(),
            &service("server", json!({"app": "server"}), 80),
        )
        .await?;
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(client.clone(), n);
    ingresses
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "server", "port": {"number": 80}}}}]}}]},
            }))?,
        )
        .await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    create_intents(&client, n, "client", client_calls_server()).await?;
    wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    let external = wait_policy(
        &client,
        n,
        "external-access-to-server-public",
        "exists",
        |_| true,
    )
    .await?;
    assert_eq!(
        spec_json(&external),
        json!({
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
        })
    );
    let labels = external.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("intents.otterize.com/network-policy-external-traffic"),
        Some(&formatted("server", n, None))
    );
    let owner = &external
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), Some(&owner.uid)),
        ("Service", "server-public", public.metadata.uid.as_ref())
    );
    wait_policy(&client, n, "external-access-to-server", "exists", |_| true).await?;

    // The Ingress goes: so does the policy it needed; the NodePort one stays.
    ingresses.delete("web", &DeleteParams::default()).await?;
    wait_policy_gone(&client, n, "external-access-to-server").await?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    assert!(
        policies
            .get_opt("external-access-to-server-public")
            .await?
            .is_some()
    );
    Ok(())
}

/// A cluster converged by the upstream operator (its policy, pod labels and finalizer, made by
/// hand as it leaves them) is taken over with no moment where the declared call is denied: the
/// policy is updated in place and never deleted, the client's access label never leaves its
/// pods, and the upstream finalizer is replaced by Accord's.
#[tokio::test]
async fn takes_over_a_cluster_converged_by_the_upstream_operator() -> Result<()> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    use std::sync::{Arc, Mutex};

    const UPSTREAM_FINALIZER: &str = "intents.otterize.com/svc-network-policy-finalizer";
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    deploy_client_and_server(&client, n).await?;
    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", n, None)
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    for app in ["client", "server"] {
        let mut labels = json!({
            "intents.otterize.com/service": formatted(app, n, None),
            "intents.otterize.com/owner-kind": "Deployment",
        });
        if app == "client" {
            labels["intents.otterize.com/client"] = json!(formatted("client", n, None));
            labels[access.as_str()] = json!("true");
        }
        for pod in pods_of(&client, n, app).await? {
            pods.patch_metadata(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labels}})),
            )
            .await?;
        }
    }
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    let upstream = policies
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "server-access", "labels": {"intents.otterize.com/network-policy": formatted("server", n, None)}},
                "spec": {
                    "podSelector": {"matchLabels": {"intents.otterize.com/service": formatted("server", n, None)}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{
                        "podSelector": {"matchLabels": {access.as_str(): "true"}},
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}},
                    }]}],
                },
            }))?,
        )
        .await?;
    apply_value(
        &client,
        &json!({
            "apiVersion": "k8s.otterize.com/v2beta1",
            "kind": "ClientIntents",
            "metadata": {"name": "client", "namespace": n, "finalizers": [UPSTREAM_FINALIZER]},
            "spec": client_calls_server(),
        }),
    )
    .await?;

    // Every state of the client's pods and every policy deletion from now on.
    let pod_states: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    let record_pods = {
        let states = pod_states.clone();
        let access = access.clone();
        let mut events = watcher::watcher(
            pods.clone(),
            watcher::Config::default().labels("app=client"),
        )
        .boxed();
        tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = event {
                    let labels = p.metadata.labels.unwrap_or_default();
                    states
                        .lock()
                        .expect("lock")
                        .push(labels.get(&access).cloned());
                }
            }
        })
    };
    let record_policies = {
        let deleted = deleted.clone();
        let mut events = watcher::watcher(policies.clone(), watcher::Config::default()).boxed();
        tokio::spawn(async move {
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Delete(p) = event {
                    deleted
                        .lock()
                        .expect("lock")
                        .push(p.metadata.name.unwrap_or_default());
                }
            }
        })
    };

    let _operator = Operator::start(&account, &[n], &[])?;
    let intents = intents_api(&client, n);
    wait_until(
        "Accord's finalizer in place of upstream's",
        DEFAULT_TIMEOUT,
        || async {
            let f = intents
                .get("client")
                .await?
                .metadata
                .finalizers
                .unwrap_or_default();
            Ok((f == ["intents.otterize.com/accord-operator"]).then_some(()))
        },
    )
    .await?;
    wait_status(&client, n, "client", "up to date", |s| {
        s["upToDate"] == true
    })
    .await?;
    let now = policies.get("server-access").await?;
    assert_eq!(now.metadata.uid, upstream.metadata.uid, "updated in place");
    assert_eq!(spec_json(&now), spec_json(&upstream));
    record_pods.abort();
    record_policies.abort();
    let states = pod_states.lock().expect("lock").clone();
    assert!(!states.is_empty());
    assert!(
        states.iter().all(|s| s.as_deref() == Some("true")),
        "the client lost its access label at some moment: {states:?}"
    );
    assert_eq!(*deleted.lock().expect("lock"), Vec::<String>::new());

    // Deleting the intents now needs Accord alone.
    intents.delete("client", &DeleteParams::default()).await?;
    wait_until("the intents to be finalized", DEFAULT_TIMEOUT, || async {
        Ok(intents.get_opt("client").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

/// A server that names its callers in the `intents.otterize.com/called-by` pod annotation gets
/// the policy admitting them, and the callers get their access labels, with no ClientIntents.
#[tokio::test]
async fn a_server_naming_its_callers_by_annotation_admits_them() -> Result<()> {
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    create_deployment(&client, n, "client").await?;
    let mut server = deployment("server", json!({"app": "server"}));
    if let Some(meta) = server
        .spec
        .as_mut()
        .and_then(|s| s.template.metadata.as_mut())
    {
        meta.annotations = Some(
            [(
                "intents.otterize.com/called-by".to_string(),
                "client".to_string(),
            )]
            .into(),
        );
    }
    Api::<Deployment>::namespaced(client.clone(), n)
        .create(&PostParams::default(), &server)
        .await?;
    let _operator = Operator::start(&account, &[n], &[])?;
    let access = format!(
        "intents.otterize.com/access-{}",
        formatted("server", n, None)
    );
    let policy = wait_policy(&client, n, "server-access", "exists", |_| true).await?;
    assert_eq!(
        spec_json(&policy)["ingress"],
        json!([{"from": [{
            "podSelector": {"matchLabels": {access.as_str(): "true"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}},
        }]}])
    );
    wait_pod_labels(
        &client,
        n,
        "client",
        &[
            (access.as_str(), Some("true")),
            (
                "intents.otterize.com/client",
                Some(formatted("client", n, None).as_str()),
            ),
        ],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_orphaned_policy_whose_delete_is_refused_is_retried_until_gone() -> Result<()> {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let (ns, _, account) = setup(0).await?;
    let client = ns.client();
    let n = ns.name();
    // A policy carrying Accord's ownership label that no intents want: the operator deletes it
    // at start.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    let orphan = |name: &str| -> Result<NetworkPolicy> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"intents.otterize.com/network-policy": "gone"}},
            "spec": {"podSelector": {"matchLabels": {"app": "gone"}}, "policyTypes": ["Ingress"]},
        }))?)
    };
    policies
        .create(&PostParams::default(), &orphan("gone-access")?)
        .await?;
    // The API server refuses every NetworkPolicy deletion in this namespace for now.
    let name = format!("no-policy-deletes-{n}");
    let vaps: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    vaps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                    "operations": ["DELETE"], "resources": ["networkpolicies"],
                }]},
                "validations": [{"expression": "false", "message": "deletes are paused"}],
            },
        }))?,
    )
    .await?;
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}},
                },
            }))?,
        )
        .await?;
    // Wait until the refusal is in force (admission policies take effect shortly after): a
    // probe's delete must be refused by admission, not merely fail because an earlier attempt,
    // made before the policy took effect, already deleted it.
    wait_until("deletes to be refused", DEFAULT_TIMEOUT, || async {
        if policies.get_opt("probe").await?.is_none() {
            policies
                .create(&PostParams::default(), &orphan("probe")?)
                .await?;
        }
        Ok(
            match policies.delete("probe", &DeleteParams::default()).await {
                Err(kube::Error::Api(e)) if e.code != 404 => Some(()),
                _ => None,
            },
        )
    })
    .await?;

    let operator = Operator::start(&account, &[n], &[])?;
    operator.wait_ready().await?;
    let refused = |body: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with("reconcile_errors_total{op=\"delete_policy\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    wait_until(
        "the refused delete to be counted",
        DEFAULT_TIMEOUT,
        || async {
            let (_, metrics) = operator.http_get("/metrics").await?;
            Ok((refused(&metrics) >= 1.0).then_some(()))
        },
    )
    .await
    .with_context(|| operator.logs())?;
    assert!(policies.get_opt("gone-access").await?.is_some());

    // Once deletes are allowed again, the retry removes it (the result was once ignored, so the
    // orphan stayed forever).
    bindings.delete(&name, &DeleteParams::default()).await?;
    vaps.delete(&name, &DeleteParams::default()).await?;
    wait_until("the orphan to be deleted", DEFAULT_TIMEOUT, || async {
        Ok(policies
            .get_opt("gone-access")
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .with_context(|| operator.logs())?;
    Ok(())
}
