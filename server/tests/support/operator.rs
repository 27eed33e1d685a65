//! Running `accord operator` against the real control plane, as the ServiceAccount that
//! `deploy/rbac.yaml` grants, and building the objects the tests need.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use accord_tests::{DEFAULT_TIMEOUT, ServiceAccountCredentials, TestNamespace, wait_until};
use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

pub const MANAGER: &str = "accord-tests";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn yaml_docs(path: &Path) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The operator that serves the ClientIntents webhooks to every test of this test binary.
///
/// The CRD's conversion webhook and the ValidatingWebhookConfiguration are cluster-wide, so one
/// `accord operator --webhook-listen` (with a generated CA, reached at `--webhook-url`) serves
/// them for all tests, in a namespace of its own that no test uses; each test still runs its
/// own operator for reconciling. It stops when the test binary ends.
pub struct Webhook {
    /// `https://127.0.0.1:PORT`, what the operator put into the webhook configurations.
    pub url: String,
    /// The namespace the webhook operator watches (its own).
    pub namespace: String,
    pub operator: Operator,
    _watchdog: accord_tests::Watchdog,
    _home: TestNamespace,
}

static WEBHOOK: tokio::sync::OnceCell<Result<Webhook, String>> = tokio::sync::OnceCell::const_new();

/// Applies the committed CRDs and the ValidatingWebhookConfiguration of `deploy/webhook.yaml`
/// once per test binary, starts the webhook operator (see [`Webhook`]) and waits until the API
/// server converts and validates ClientIntents through it.
pub async fn install_crds(ns: &TestNamespace) -> Result<&'static Webhook> {
    let started = WEBHOOK
        .get_or_init(|| async { start_webhook(ns).await.map_err(|e| format!("{e:#}")) })
        .await;
    started
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the webhook operator did not start: {e}"))
}

async fn start_webhook(ns: &TestNamespace) -> Result<Webhook> {
    let client = ns.client();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in yaml_docs(&repo().join("deploy/crds/k8s.otterize.com.yaml"))? {
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .context("CRD name")?
            .to_owned();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&doc),
        )
        .await?;
        wait_until(
            &format!("CRD {name} established"),
            DEFAULT_TIMEOUT,
            || async {
                let crd = api.get(&name).await?;
                Ok(accord_tests::condition_status(&crd, "Established")
                    .is_some_and(|s| s == "True")
                    .then_some(()))
            },
        )
        .await?;
    }
    for doc in yaml_docs(&repo().join("deploy/webhook.yaml"))? {
        if doc["kind"] == "ValidatingWebhookConfiguration" {
            apply_value(&client, &doc).await?;
        }
    }
    let home = ns.another().await?;
    let account = operator_account(&home).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let operator = Operator::start(
        &account,
        &[home.name()],
        &[
            "--webhook-listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-url",
            &url,
            "--webhook-host",
            "127.0.0.1",
        ],
    )?;
    let watchdog = accord_tests::Watchdog::start(operator.pid())?;
    let convert_url = format!("{url}/convert");
    wait_until(
        "the webhook operator to put its URL and CA into the CRD",
        DEFAULT_TIMEOUT,
        || async {
            let crd = serde_json::to_value(api.get("clientintents.k8s.otterize.com").await?)?;
            let config = &crd["spec"]["conversion"]["webhook"]["clientConfig"];
            Ok(
                (config["url"] == convert_url.as_str() && config["caBundle"].is_string())
                    .then_some(()),
            )
        },
    )
    .await
    .with_context(|| format!("webhook operator log:\n{}", operator.logs()))?;
    // The API server picks the new configuration up asynchronously: wait until a conversion
    // and a validation go through.
    let probe =
        json!({"workload": {"name": "probe"}, "targets": [{"kubernetes": {"name": "server"}}]});
    wait_until(
        "a ClientIntents conversion through the webhook",
        DEFAULT_TIMEOUT,
        || async {
            create_intents(&client, home.name(), "probe", probe.clone()).await?;
            let v1 = Api::<DynamicObject>::namespaced_with(
                client.clone(),
                home.name(),
                &intents_resource("v1alpha2"),
            );
            Ok((v1.get("probe").await?.data["spec"]["service"]["name"] == "probe").then_some(()))
        },
    )
    .await
    .with_context(|| format!("webhook operator log:\n{}", operator.logs()))?;
    Ok(Webhook {
        url,
        namespace: home.name().to_owned(),
        operator,
        _watchdog: watchdog,
        _home: home,
    })
}

/// The ClientIntents API of one version.
pub fn intents_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("k8s.otterize.com", version, "ClientIntents"),
        "clientintents",
    )
}

/// Applies `deploy/rbac.yaml` with its ServiceAccount moved into `namespace` (and the
/// cluster-scoped binding renamed for it), and returns the ServiceAccount's credentials.
pub async fn operator_account(namespace: &TestNamespace) -> Result<ServiceAccountCredentials> {
    let client = namespace.client();
    let ns = namespace.name();
    for mut doc in yaml_docs(&repo().join("deploy/rbac.yaml"))? {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        if kind == "ServiceAccount" {
            continue; // created with its token below
        }
        if doc.pointer("/metadata/namespace").is_some() {
            doc["metadata"]["namespace"] = json!(ns);
        }
        if kind == "ClusterRoleBinding" {
            doc["metadata"]["name"] = json!(format!("accord-operator-{ns}"));
        }
        if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = json!(ns);
            }
        }
        apply_value(&client, &doc).await?;
    }
    namespace.service_account("accord-operator").await
}

/// Server-side applies any object given as JSON (types Accord's tests use).
pub async fn apply_value(client: &Client, doc: &Value) -> Result<()> {
    let api_version = doc["apiVersion"].as_str().context("apiVersion")?;
    let kind = doc["kind"].as_str().context("kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClientIntents" => "clientintents",
        "ProtectedService" => "protectedservices",
        "ValidatingWebhookConfiguration" => "validatingwebhookconfigurations",
        other => anyhow::bail!("apply_value: unexpected kind {other}"),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .context("name")?;
    let api: Api<DynamicObject> = match doc.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(doc),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

pub fn intents_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("k8s.otterize.com", "v2alpha1", "ClientIntents"),
        "clientintents",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Creates ClientIntents (v2beta1 unless the document says otherwise).
pub async fn create_intents(client: &Client, ns: &str, name: &str, spec: Value) -> Result<()> {
    apply_value(
        client,
        &json!({
            "apiVersion": "k8s.otterize.com/v2beta1",
            "kind": "ClientIntents",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }),
    )
    .await
}

/// A running `accord operator`; killed when dropped.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub metrics_port: u16,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Starts the operator binary with the ServiceAccount's kubeconfig, watching `namespaces`.
    pub fn start(
        account: &ServiceAccountCredentials,
        namespaces: &[&str],
        extra: &[&str],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("accord-operator-")
            .tempdir()?;
        let log = dir.path().join("operator.log");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
        cmd.arg("operator")
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--lease-duration-seconds")
            .arg("3")
            .args(extra)
            .env("KUBECONFIG", &account.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("ACCORD_TEST_OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("ACCORD_WATCHED_NAMESPACES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        if !namespaces.is_empty() {
            cmd.arg("--watched-namespace").arg(namespaces.join(","));
        }
        let child = cmd.spawn().context("starting accord operator")?;
        Ok(Operator {
            child: Some(child),
            log,
            metrics_port,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Kills the process at once (no lease release): what a crash looks like.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path of the metrics endpoint.
    pub async fn http_get(&self, path: &str) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await?;
        let status = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    pub async fn wait_ready(&self) -> Result<()> {
        wait_until("the operator to be ready", DEFAULT_TIMEOUT, || async {
            let (status, body) = self.http_get("/metrics").await?;
            Ok((status == 200 && body.contains("reconcile_ready 1")).then_some(()))
        })
        .await
        .with_context(|| format!("operator log:\n{}", self.logs()))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- operator log ({}) ----\n{}",
                self.log.display(),
                self.logs()
            );
        }
        self.kill();
    }
}

pub fn deployment(name: &str, labels: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1", "ports": [{"containerPort": 80}]}]}
            }
        }
    }))
    .expect("valid Deployment")
}

pub fn service(name: &str, selector: Value, port: i32) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": port, "targetPort": port, "protocol": "TCP"}]}
    }))
    .expect("valid Service")
}

pub async fn create_deployment(client: &Client, ns: &str, name: &str) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.create(
        &PostParams::default(),
        &deployment(name, json!({"app": name})),
    )
    .await
    .with_context(|| format!("creating Deployment {ns}/{name}"))?;
    Ok(())
}

/// The two Deployments most tests use: `client`, which calls `server`.
pub async fn deploy_client_and_server(client: &Client, ns: &str) -> Result<()> {
    create_deployment(client, ns, "server").await?;
    create_deployment(client, ns, "client").await
}

/// The spec of ClientIntents declaring that `client` calls `server`.
pub fn client_calls_server() -> Value {
    json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server"}}]})
}

/// The pods of a Deployment (by its `app` label), once at least one exists.
pub async fn pods_of(client: &Client, ns: &str, app: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_until(&format!("pods of {ns}/{app}"), DEFAULT_TIMEOUT, || async {
        let pods = api
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await?
            .items;
        Ok((!pods.is_empty()).then_some(pods))
    })
    .await
}

/// Waits until `app` has pods and every one of them satisfies `ok`; returns them.
async fn wait_pods(
    client: &Client,
    ns: &str,
    app: &str,
    what: &str,
    ok: impl Fn(&Pod) -> bool,
) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_until(
        &format!("{what} on pods of {ns}/{app}"),
        DEFAULT_TIMEOUT,
        || async {
            let pods = api
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await?
                .items;
            Ok((!pods.is_empty() && pods.iter().all(&ok)).then_some(pods))
        },
    )
    .await
}

/// Waits until every pod of `app` has `want` among its labels (a `None` value: absent).
pub async fn wait_pod_labels(
    client: &Client,
    ns: &str,
    app: &str,
    want: &[(&str, Option<&str>)],
) -> Result<Vec<Pod>> {
    wait_pods(client, ns, app, &format!("labels {want:?}"), |p| {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        want.iter()
            .all(|(k, v)| labels.get(*k).map(String::as_str) == *v)
    })
    .await
}

/// Waits until every pod of `app` has annotation `key` set to `want` (`None`: absent).
pub async fn wait_pod_annotation(
    client: &Client,
    ns: &str,
    app: &str,
    key: &str,
    want: Option<&str>,
) -> Result<Vec<Pod>> {
    wait_pods(
        client,
        ns,
        app,
        &format!("annotation {key}={want:?}"),
        |p| {
            let annotations = p.metadata.annotations.clone().unwrap_or_default();
            annotations.get(key).map(String::as_str) == want
        },
    )
    .await
}

/// Waits until the policy exists and `check` accepts it.
pub async fn wait_policy(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&NetworkPolicy) -> bool,
) -> Result<NetworkPolicy> {
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    wait_until(
        &format!("NetworkPolicy {ns}/{name}: {what}"),
        DEFAULT_TIMEOUT,
        || async { Ok(api.get_opt(name).await?.filter(|p| check(p))) },
    )
    .await
}

pub async fn wait_policy_gone(client: &Client, ns: &str, name: &str) -> Result<()> {
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    accord_tests::wait_for_deletion(&api, name, DEFAULT_TIMEOUT).await
}

pub fn spec_json(p: &NetworkPolicy) -> Value {
    serde_json::to_value(&p.spec).unwrap_or_default()
}

/// Waits until the intents' status satisfies `check`.
pub async fn wait_status(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let api = intents_api(client, ns);
    wait_until(
        &format!("status of ClientIntents {ns}/{name}: {what}"),
        DEFAULT_TIMEOUT,
        || async {
            let obj = api.get(name).await?;
            let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
            Ok(check(&status).then_some(status))
        },
    )
    .await
}

pub fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

pub const SHORT: Duration = Duration::from_secs(3);
