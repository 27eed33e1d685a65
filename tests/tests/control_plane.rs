//! Smoke tests that the control plane is a real Kubernetes: controllers run, validation,
//! authentication and RBAC are enforced, and CRDs are served and watched.

use accord_tests::{
    DEFAULT_TIMEOUT, TestNamespace, random_name, shared, wait_for_object, wait_until,
};
use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::wait::conditions;
use kube::{Api, ResourceExt};
use serde_json::json;

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("test fixture matches its type")
}

fn owned_by(meta: &kube::api::ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|owner| owner.uid == uid && owner.controller == Some(true))
}

#[tokio::test]
async fn deployment_creates_replica_set_and_pods() -> Result<()> {
    let namespace = TestNamespace::new().await?;
    let deployments = namespace.api::<Deployment>();
    let deployment: Deployment = from_json(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                // No node exists, so the image is never pulled.
                "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1" }] },
            },
        },
    }));
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let deployment_uid = created.uid().context("created Deployment has a uid")?;

    let replica_sets = namespace.api::<ReplicaSet>();
    let replica_set = wait_until(
        "a ReplicaSet owned by the Deployment",
        DEFAULT_TIMEOUT,
        || async {
            let list = replica_sets
                .list(&ListParams::default().labels("app=web"))
                .await?;
            Ok(list
                .items
                .into_iter()
                .find(|rs| owned_by(&rs.metadata, &deployment_uid)))
        },
    )
    .await?;
    assert_eq!(
        replica_set.spec.as_ref().and_then(|spec| spec.replicas),
        Some(2)
    );
    let replica_set_uid = replica_set.uid().context("ReplicaSet has a uid")?;

    let pods = namespace.api::<Pod>();
    let owned_pods = wait_until(
        "two Pods owned by the ReplicaSet",
        DEFAULT_TIMEOUT,
        || async {
            let list = pods.list(&ListParams::default().labels("app=web")).await?;
            let owned: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|pod| owned_by(&pod.metadata, &replica_set_uid))
                .collect();
            Ok((owned.len() == 2).then_some(owned))
        },
    )
    .await?;
    for pod in &owned_pods {
        let spec = pod.spec.as_ref().context("Pod has a spec")?;
        // The pod-template-hash label and the default ServiceAccount come from the
        // controllers and admission, not from this test.
        assert!(
            pod.labels().contains_key("pod-template-hash"),
            "{:?}",
            pod.labels()
        );
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        assert_eq!(
            spec.node_name, None,
            "no scheduler and no nodes, so Pods stay unscheduled"
        );
        assert_eq!(
            pod.status
                .as_ref()
                .and_then(|status| status.phase.as_deref()),
            Some("Pending")
        );
    }

    let deployment = wait_for_object(
        &deployments,
        "web",
        DEFAULT_TIMEOUT,
        |deployment: Option<&Deployment>| {
            deployment
                .and_then(|d| d.status.as_ref())
                .and_then(|status| status.replicas)
                == Some(2)
        },
    )
    .await?;
    let status = deployment.status.context("Deployment has a status")?;
    assert_eq!(status.unavailable_replicas, Some(2));
    Ok(())
}

#[tokio::test]
async fn api_server_rejects_invalid_network_policy() -> Result<()> {
    let namespace = TestNamespace::new().await?;
    let policies = namespace.api::<NetworkPolicy>();
    let policy: NetworkPolicy = from_json(json!({
        "metadata": { "name": "bad-port" },
        "spec": {
            "podSelector": {},
            "ingress": [{ "ports": [{ "protocol": "TCP", "port": 70000 }] }],
        },
    }));
    let error = match policies.create(&PostParams::default(), &policy).await {
        Ok(_) => bail!("the API server accepted port 70000"),
        Err(kube::Error::Api(status)) => status,
        Err(error) => return Err(error.into()),
    };
    assert_eq!(error.code, 422, "{error:?}");
    assert_eq!(error.reason, "Invalid", "{error:?}");
    assert!(
        error.message.contains("spec.ingress[0].ports[0].port"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("between 1 and 65535"),
        "{}",
        error.message
    );
    assert!(policies.get_opt("bad-port").await?.is_none());

    // The same policy with a valid port is accepted, so the rejection was about the port.
    let mut valid = policy.clone();
    valid.metadata.name = Some("good-port".to_owned());
    let ports = valid
        .spec
        .as_mut()
        .and_then(|spec| spec.ingress.as_mut())
        .and_then(|ingress| ingress[0].ports.as_mut())
        .context("fixture has a port")?;
    ports[0].port = Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080));
    policies.create(&PostParams::default(), &valid).await?;
    Ok(())
}

#[tokio::test]
async fn service_account_without_rights_is_forbidden() -> Result<()> {
    let namespace = TestNamespace::new().await?;
    let account = namespace.service_account("reader").await?;
    let as_reader: Api<Pod> = Api::namespaced(account.client()?, namespace.name());

    let error = match as_reader.list(&ListParams::default()).await {
        Ok(_) => bail!("a ServiceAccount without any Role listed Pods"),
        Err(kube::Error::Api(status)) => status,
        Err(error) => return Err(error.into()),
    };
    assert_eq!(error.code, 403, "{error:?}");
    assert_eq!(error.reason, "Forbidden", "{error:?}");
    let user = format!("system:serviceaccount:{}:reader", namespace.name());
    assert!(error.message.contains(&user), "{}", error.message);

    // Granting a Role makes the same request succeed, so the 403 came from RBAC and the
    // token authenticates.
    let role: Role = from_json(json!({
        "metadata": { "name": "pod-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }],
    }));
    namespace
        .api::<Role>()
        .create(&PostParams::default(), &role)
        .await?;
    let binding: RoleBinding = from_json(json!({
        "metadata": { "name": "reader-reads-pods" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader" },
        "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": namespace.name() }],
    }));
    namespace
        .api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    wait_until(
        "the RoleBinding to take effect",
        DEFAULT_TIMEOUT,
        || async { Ok(as_reader.list(&ListParams::default()).await.ok()) },
    )
    .await?;

    // The Role is namespaced: other namespaces and other verbs stay forbidden.
    let elsewhere: Api<Pod> = Api::namespaced(account.client()?, "kube-system");
    let error = elsewhere
        .list(&ListParams::default())
        .await
        .expect_err("kube-system is off limits");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 403),
        "{error:?}"
    );
    let pod: Pod = from_json(json!({
        "metadata": { "name": "p" },
        "spec": { "containers": [{ "name": "c", "image": "registry.invalid/c:1" }] },
    }));
    let error = as_reader
        .create(&PostParams::default(), &pod)
        .await
        .expect_err("create is not granted");
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 403),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unauthenticated_requests_are_rejected() -> Result<()> {
    let control_plane = shared().await?;
    let mut config = control_plane.config().clone();
    config.auth_info = kube::config::AuthInfo::default();
    let anonymous: Api<Namespace> = Api::all(kube::Client::try_from(config)?);
    let error = anonymous
        .list(&ListParams::default())
        .await
        .expect_err("anonymous may not list namespaces");
    // Anonymous requests are authenticated as system:anonymous, which RBAC forbids.
    assert!(
        matches!(&error, kube::Error::Api(status) if status.code == 403),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn custom_resource_definition_is_established_served_and_watched() -> Result<()> {
    let namespace = TestNamespace::new().await?;
    let client = namespace.client();
    // CRDs are cluster-wide: a random group keeps tests (and reruns against an existing
    // cluster) apart.
    let group = format!("{}.accord-tests.invalid", random_name("g"));
    let crd: CustomResourceDefinition = from_json(json!({
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": { "size": { "type": "integer", "minimum": 1 } },
                    } },
                } },
            }],
        },
    }));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_name = crd.name_any();
    crds.create(&PostParams::default(), &crd).await?;
    let established = wait_for_object(
        &crds,
        &crd_name,
        DEFAULT_TIMEOUT,
        conditions::is_crd_established(),
    )
    .await;
    let result = exercise_widgets(&client, &group, namespace.name()).await;
    let _ = crds.delete(&crd_name, &DeleteParams::default()).await;
    established?;
    result
}

async fn exercise_widgets(client: &kube::Client, group: &str, namespace: &str) -> Result<()> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);

    // Watch from the list's resourceVersion, so the creation below arrives as ADDED.
    let list = wait_until(
        "the Widget resource to be served",
        DEFAULT_TIMEOUT,
        || async { Ok(widgets.list(&ListParams::default()).await.ok()) },
    )
    .await?;
    assert!(list.items.is_empty());
    let version = list
        .metadata
        .resource_version
        .context("list has a resourceVersion")?;
    let mut events = widgets
        .watch(&WatchParams::default().timeout(60), &version)
        .await?
        .boxed();

    let widget = DynamicObject::new("small", &resource).data(json!({ "spec": { "size": 3 } }));
    widgets.create(&PostParams::default(), &widget).await?;
    let added = tokio::time::timeout(DEFAULT_TIMEOUT, async {
        while let Some(event) = events.try_next().await? {
            match event {
                WatchEvent::Added(object) => return Ok(object),
                WatchEvent::Bookmark(_) => continue,
                other => bail!("expected ADDED, got {other:?}"),
            }
        }
        bail!("the watch ended before ADDED")
    })
    .await
    .context("timed out waiting for ADDED")??;
    assert_eq!(added.metadata.name.as_deref(), Some("small"));
    assert_eq!(added.data["spec"]["size"], json!(3));

    // The CRD's schema is enforced by the API server.
    let invalid = DynamicObject::new("zero", &resource).data(json!({ "spec": { "size": 0 } }));
    match widgets.create(&PostParams::default(), &invalid).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("spec.size"), "{}", status.message);
        }
        other => bail!("size 0 should violate minimum 1, got {other:?}"),
    }
    assert!(widgets.get_opt("zero").await?.is_none());
    Ok(())
}
