//! The Helm chart (`charts/accord`): `helm lint`, `helm template` snapshots of the main value
//! combinations, the schema rejecting bad values, the CRDs and the operator's RBAC equal to
//! `deploy/`, and the chart installed with `helm install` into the real control plane, where
//! the operator and the dashboard run as the chart's ServiceAccounts (tokens from the
//! TokenRequest API; there is no kubelet, so each runs as a local `accord` process with the
//! settings of the Deployment the chart created), converge and serve the demo, and survive
//! `helm upgrade` and `helm uninstall` as the chart's README says. Also the binary as a kubectl
//! plugin (`kubectl accord …` through kubectl's own plugin lookup) and its shell completions.
//!
//! helm and kubectl come from `tests/helm/build.sh` (built once from the Go module proxy, cached
//! under `~/.cache/accord`), or from `ACCORD_TEST_HELM` (with kubectl beside it).
//!
//! Size: one test binary, sharing one helm build and one installed release across its tests.

#[path = "support/operator.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use accord_api as api;
use accord_tests::{
    DEFAULT_TIMEOUT, ServiceAccountCredentials, service_account_credentials, wait_until,
};
use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde_json::{Value, json};

/// The namespace the chart must be installed in (the CRD names the webhook Service there).
const NAMESPACE: &str = "accord-system";
const RELEASE: &str = "accord";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn chart() -> PathBuf {
    repo().join("charts/accord")
}

/// The helm binary: `$ACCORD_TEST_HELM`, else what `tests/helm/build.sh` builds (once).
fn helm_binary() -> Result<PathBuf> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("ACCORD_TEST_HELM") {
            return Ok(PathBuf::from(path));
        }
        let script = repo().join("tests/helm/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed with {}", script.display(), out.status));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout.lines().last().unwrap_or_default().trim();
        Ok(PathBuf::from(path))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// helm with its state in a directory of its own (nothing in the user's home) and without the
/// user's KUBECONFIG; `kubeconfig` names the cluster for commands that talk to one.
fn helm(args: &[&str], kubeconfig: Option<&Path>) -> Result<Output> {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("accord-helm-")
            .tempdir()
            .expect("a temporary directory")
    });
    let mut cmd = Command::new(helm_binary()?);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .stdin(Stdio::null());
    if let Some(kubeconfig) = kubeconfig {
        cmd.arg("--kubeconfig").arg(kubeconfig);
    }
    cmd.output().context("running helm")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn values_file(name: &str) -> String {
    chart()
        .join("ci")
        .join(format!("{name}-values.yaml"))
        .display()
        .to_string()
}

/// `helm template` of the chart into accord-system with `extra` arguments.
fn template(extra: &[&str]) -> Result<String> {
    let chart = chart().display().to_string();
    let mut args = vec!["template", RELEASE, &chart, "--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    let out = helm(&args, None)?;
    ensure!(
        out.status.success(),
        "helm {args:?} failed:\n{}",
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

fn yaml_docs(text: &str) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// The main value combinations: the defaults and each file in `charts/accord/ci/`.
const COMBINATIONS: &[&str] = &[
    "operator-settings",
    "cert-manager",
    "cert-manager-self-signed",
    "dashboard",
    "operator-only",
    "existing-secret",
];

#[test]
fn chart_lints_clean_with_every_value_combination() -> Result<()> {
    let chart = chart().display().to_string();
    let mut runs = vec![vec![]];
    for name in COMBINATIONS {
        runs.push(vec!["--values".to_string(), values_file(name)]);
    }
    for extra in runs {
        let mut args = vec!["lint", "--strict", &chart, "--namespace", NAMESPACE];
        args.extend(extra.iter().map(String::as_str));
        let out = helm(&args, None)?;
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "helm {args:?}:\n{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{stdout}"
        );
    }
    Ok(())
}

/// A generated apply token differs on every render; the snapshot shows where it goes.
fn redact_token(rendered: &str) -> String {
    rendered
        .split("\n---\n")
        .map(|doc| {
            if !(doc.contains("kind: Secret") && doc.contains("name: accord-dashboard-apply-token"))
            {
                return doc.to_owned();
            }
            doc.lines()
                .map(|line| match line.split_once(": ") {
                    Some(("  token", _)) => "  token: [random, 40 characters]",
                    _ => line,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
fn chart_renders_the_main_value_combinations() -> Result<()> {
    insta::assert_snapshot!("template_defaults", template(&[])?);
    for name in COMBINATIONS {
        let rendered = redact_token(&template(&["--values", &values_file(name)])?);
        insta::assert_snapshot!(format!("template_{}", name.replace('-', "_")), rendered);
    }
    Ok(())
}

#[test]
fn every_operator_setting_reaches_the_operator_as_its_variable() -> Result<()> {
    let docs = yaml_docs(&template(&["--values", &values_file("operator-settings")])?)?;
    let deployment = find(&docs, "Deployment", "accord-operator").context("operator")?;
    let env: BTreeMap<String, String> =
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .context("env")?
            .iter()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_owned(),
                    e["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
    let want = [
        ("ACCORD_EGRESS", "true"),
        ("ACCORD_SEPARATE_POLICIES", "true"),
        ("ACCORD_SHADOW", "true"),
        ("ACCORD_ENFORCED_NAMESPACES", "checkout,platform"),
        ("ACCORD_WATCHED_NAMESPACES", "storefront,checkout,platform"),
        ("ACCORD_API_SERVER_IPS", "10.0.0.1,10.0.0.2"),
        ("ACCORD_CONCURRENCY", "8"),
        ("ACCORD_DEBOUNCE_MS", "50"),
        ("ACCORD_NO_LEADER_ELECTION", "true"),
        ("RUST_LOG", "info,accord=debug"),
        ("TZ", "UTC"),
    ];
    for (k, v) in want {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k} in {env:#?}");
    }
    // Each variable is one that `accord operator` reads (its --help names them).
    let help = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["operator", "--help"])
        .output()?;
    // Help wraps lines: compare with the whitespace collapsed.
    let help = text(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for k in env.keys().filter(|k| k.starts_with("ACCORD_")) {
        assert!(
            help.contains(&format!("[env: {k}")),
            "{k} unknown to accord operator"
        );
    }
    // One replica without leader election: no PodDisruptionBudget (it would block drains).
    assert!(find(&docs, "PodDisruptionBudget", "accord-operator").is_none());
    Ok(())
}

#[test]
fn bad_values_fail_before_anything_is_installed() -> Result<()> {
    let chart = chart().display().to_string();
    // helm names the value's path and what is wrong with it.
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "operator.shadow=yes"],
            "at '/operator/shadow': got string, want boolean",
        ),
        (
            &["--set", "operator.replicas=0"],
            "at '/operator/replicas': minimum: got 0, want 1",
        ),
        (
            &["--set", "operator.webhooks.certificates=vault"],
            "at '/operator/webhooks/certificates': value must be one of 'generated', 'certManager'",
        ),
        (
            &["--set", "operator.egres=true"],
            "at '/operator': additional properties 'egres' not allowed",
        ),
        (
            &["--set", "operator.watchedNamespaces={Not_A_Namespace}"],
            "at '/operator/watchedNamespaces/0': 'Not_A_Namespace' does not match pattern",
        ),
        (
            &["--set", "dashboard.service.type=Internal"],
            "at '/dashboard/service/type': value must be one of",
        ),
        (
            &["--set", "operator.leaderElection.enabled=false"],
            "operator.replicas > 1 needs operator.leaderElection.enabled",
        ),
    ];
    for (extra, names) in cases {
        let mut args = vec!["template", RELEASE, &chart, "--namespace", NAMESPACE];
        args.extend_from_slice(extra);
        let out = helm(&args, None)?;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "helm {args:?} succeeded");
        assert!(stderr.contains(names), "helm {args:?}: {stderr}");
    }
    // Another namespace than the one the CRD's conversion webhook names.
    let out = helm(
        &["template", RELEASE, &chart, "--namespace", "default"],
        None,
    )?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("install Accord into the namespace accord-system"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn chart_crds_are_the_generated_ones() -> Result<()> {
    let generated = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("crd")
        .output()?;
    assert!(generated.status.success());
    let chart_crds = std::fs::read(chart().join("crds/k8s.otterize.com.yaml"))?;
    let deploy_crds = std::fs::read(repo().join("deploy/crds/k8s.otterize.com.yaml"))?;
    assert!(
        chart_crds == generated.stdout && chart_crds == deploy_crds,
        "charts/accord/crds/ is stale: run `accord crd > charts/accord/crds/k8s.otterize.com.yaml`"
    );
    let names: Vec<String> = std::fs::read_dir(chart().join("crds"))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    assert_eq!(names, ["k8s.otterize.com.yaml"]);
    Ok(())
}

#[test]
fn chart_rbac_grants_what_deploy_rbac_grants_and_the_dashboard_only_reads() -> Result<()> {
    let deploy = yaml_docs(&std::fs::read_to_string(repo().join("deploy/rbac.yaml"))?)?;
    for values in [None, Some("operator-settings"), Some("cert-manager")] {
        let extra = values
            .map(|v| vec!["--values".to_owned(), values_file(v)])
            .unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let rendered = yaml_docs(&template(&extra)?)?;
        for (kind, name) in [
            ("ClusterRole", "accord-operator"),
            ("Role", "accord-operator-leader-election"),
            ("Role", "accord-operator-settings"),
        ] {
            let want = &find(&deploy, kind, name).context(name)?["rules"];
            let got = &find(&rendered, kind, name).context(name)?["rules"];
            assert_eq!(got, want, "{kind} {name} ({values:?})");
        }
        for (kind, name) in [
            ("ClusterRoleBinding", "accord-operator"),
            ("RoleBinding", "accord-operator-leader-election"),
            ("RoleBinding", "accord-operator-settings"),
        ] {
            let want = find(&deploy, kind, name).context(name)?;
            let got = find(&rendered, kind, name).context(name)?;
            assert_eq!(got["roleRef"], want["roleRef"]);
            assert_eq!(got["subjects"], want["subjects"]);
        }
    }
    // Nothing in deploy/rbac.yaml is missing from the chart.
    let rendered = yaml_docs(&template(&[])?)?;
    for doc in &deploy {
        let (kind, name) = (
            doc["kind"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default(),
        );
        assert!(
            find(&rendered, kind, name).is_some(),
            "{kind} {name} of deploy/rbac.yaml is not in the chart"
        );
    }
    let dashboard = find(&rendered, "ClusterRole", "accord-dashboard").context("dashboard")?;
    for rule in dashboard["rules"].as_array().context("rules")? {
        assert_eq!(rule["verbs"], json!(["get", "list", "watch"]), "{rule}");
    }
    let settings = find(&rendered, "Role", "accord-dashboard-settings").context("settings")?;
    assert_eq!(
        settings["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["accord-operator-settings"], "verbs": ["get", "list", "watch"]}])
    );
    assert!(find(&rendered, "ClusterRole", "accord-dashboard-apply").is_none());
    let apply = yaml_docs(&template(&["--values", &values_file("dashboard")])?)?;
    let rules = &find(&apply, "ClusterRole", "accord-dashboard-apply").context("apply")?["rules"];
    assert_eq!(
        rules,
        &json!([{"apiGroups": ["k8s.otterize.com"], "resources": ["clientintents"], "verbs": ["create", "patch"]}])
    );
    Ok(())
}

#[test]
fn kubectl_plugin_name_shows_in_help_and_completions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let plugin = dir.path().join("kubectl-accord");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_accord"), &plugin)?;
    let out = Command::new(&plugin).args(["render", "--help"]).output()?;
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("Usage: kubectl accord render [OPTIONS]"),
        "{help}"
    );
    let out = Command::new(&plugin).args(["render", "--bogus"]).output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage: kubectl accord render"));

    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("--help")
        .output()?;
    assert!(
        text(&out.stdout).contains("Usage: accord [OPTIONS] <COMMAND>")
            || text(&out.stdout).contains("Usage: accord <COMMAND>"),
        "{}",
        text(&out.stdout)
    );

    for (shell, marker) in [
        ("bash", "complete -F _accord"),
        ("zsh", "#compdef accord"),
        ("fish", "complete -c accord"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["completions", shell])
            .output()?;
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["render", "connlist", "serve", "operator", "completions"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = Command::new(&plugin)
        .args(["completions", "bash"])
        .output()?;
    let script = text(&out.stdout);
    assert!(
        script
            .lines()
            .any(|l| l.trim_start().starts_with("complete -F") && l.ends_with(" kubectl-accord")),
        "{script}"
    );

    // Through kubectl's own plugin lookup (kubectl from tests/helm/build.sh, beside helm).
    let kubectl = helm_binary()?.with_file_name("kubectl");
    let path = std::env::join_paths(std::iter::once(dir.path().to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let kubectl = |args: &[&str]| {
        Command::new(&kubectl)
            .args(args)
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env_remove("KUBECONFIG")
            .output()
    };
    let out = kubectl(&["plugin", "list"])?;
    assert!(
        text(&out.stdout).contains(&plugin.display().to_string()),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let demo = repo().join("assets/demo").display().to_string();
    let out = kubectl(&["accord", "render", &demo])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let direct = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["render", &demo])
        .output()?;
    assert_eq!(text(&out.stdout), text(&direct.stdout));
    let out = kubectl(&["accord", "can-reach", "--help"])?;
    assert!(
        text(&out.stdout).contains("Usage: kubectl accord can-reach"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

// ---- The chart on the real control plane ----

/// A local `accord` process standing in for a pod of one of the chart's Deployments.
struct LocalPod {
    child: Option<Child>,
    log: PathBuf,
}

impl LocalPod {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LocalPod {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.logs());
        }
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the container of the chart's Deployment `name` as a local process: its args, and its
/// environment with `valueFrom` resolved as the kubelet would (the pod's namespace and name, a
/// Secret's key), authenticated as `account`; `overrides` replace what only a pod can use
/// (listen addresses, the mounted volume's path, the webhook's in-cluster name).
async fn run_like_pod(
    client: &Client,
    name: &str,
    account: &ServiceAccountCredentials,
    overrides: &[(&str, String)],
    dir: &Path,
) -> Result<LocalPod> {
    let deployment: Deployment = Api::namespaced(client.clone(), NAMESPACE).get(name).await?;
    let spec = deployment
        .spec
        .context("spec")?
        .template
        .spec
        .context("pod spec")?;
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(account.name.as_str())
    );
    let container = &spec.containers[0];
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    match field.field_path.as_str() {
                        "metadata.namespace" => NAMESPACE.to_owned(),
                        "metadata.name" => format!("{name}-local-0"),
                        other => bail!("unexpected fieldRef {other}"),
                    }
                } else if let Some(key) = &from.secret_key_ref {
                    let secret: Secret = Api::namespaced(client.clone(), NAMESPACE)
                        .get(&key.name)
                        .await?;
                    let bytes = secret
                        .data
                        .and_then(|d| d.get(&key.key).cloned())
                        .with_context(|| format!("key {} of Secret {}", key.key, key.name))?;
                    String::from_utf8(bytes.0)?
                } else {
                    bail!("unexpected valueFrom in {}", var.name)
                }
            }
            (None, None) => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
    for (k, v) in overrides {
        env.insert((*k).to_owned(), v.clone());
    }
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.args(container.args.iter().flatten())
        .env("KUBECONFIG", &account.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    for (k, _) in std::env::vars() {
        if k.starts_with("ACCORD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(&env);
    let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    Ok(LocalPod {
        child: Some(child),
        log,
    })
}

fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    http(port, "GET", path, &[], "")
}

/// One HTTP/1.1 request on loopback; the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    )?;
    for (name, value) in headers {
        write!(s, "{name}: {value}\r\n")?;
    }
    write!(s, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP head")?;
    Ok((
        head.get(9..12).context("status")?.parse()?,
        body.to_string(),
    ))
}

/// Every object of the demo (`assets/demo`), without the uids and owner references of the
/// snapshot it was taken from (they name objects of another cluster).
fn demo_objects() -> Result<Vec<Value>> {
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("assets/demo")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        for mut doc in yaml_docs(&std::fs::read_to_string(&file)?)? {
            let meta = doc["metadata"].as_object_mut().context("metadata")?;
            meta.remove("uid");
            meta.remove("ownerReferences");
            out.push(doc);
        }
    }
    Ok(out)
}

/// Server-side applies any object, finding its resource through discovery.
async fn apply(client: &Client, doc: &Value) -> Result<()> {
    let api_version = doc["apiVersion"].as_str().context("apiVersion")?;
    let kind = doc["kind"].as_str().context("kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (ar, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .with_context(|| format!("discovering {api_version} {kind}"))?;
    let name = doc["metadata"]["name"].as_str().context("name")?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            doc["metadata"]["namespace"].as_str().unwrap_or("default"),
            &ar,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply(support::MANAGER).force(),
        &Patch::Apply(doc),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

/// The NetworkPolicies `accord render` generates for the demo with the operator's settings.
fn rendered_demo_policies() -> Result<Vec<Value>> {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["render", "-o", "json"])
        .arg(repo().join("assets/demo"))
        .output()?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(match v {
        Value::Array(items) => items,
        Value::Object(ref o) if o.contains_key("items") => {
            o["items"].as_array().cloned().unwrap_or_default()
        }
        other => vec![other],
    })
}

/// Whether every field of `want` has the same value in `got` (which may have more: defaults).
/// An empty list in `want` matches an absent field (the API server drops `ingress: []`).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, wv)| match g.get(k) {
            Some(gv) => contains(gv, wv),
            None => wv.as_array().is_some_and(Vec::is_empty),
        }),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(gv, wv)| contains(gv, wv))
        }
        _ => got == want,
    }
}

fn intents_resource() -> ApiResource {
    support::intents_resource("v2alpha1")
}

async fn uid<K>(api: &Api<K>, name: &str) -> Result<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get(name)
        .await
        .with_context(|| format!("getting {name}"))?
        .meta()
        .uid
        .clone()
        .context("uid")
}

const DEMO_NAMESPACES: [&str; 3] = ["storefront", "checkout", "platform"];

/// Waits until the live policies carry what `accord render` generates for the demo, the
/// intents report being up to date, and storefront/cart's pods got back the access label the
/// demo took from them.
async fn wait_converged(client: &Client, operator: &LocalPod) -> Result<()> {
    let rendered = rendered_demo_policies()?;
    ensure!(
        rendered.len() > 5,
        "render gave {} policies",
        rendered.len()
    );
    wait_until(
        "the operator to converge the demo",
        Duration::from_secs(120),
        || async {
            // Not yet converged: an error naming what differs (the timeout reports the last).
            for want in &rendered {
                let ns = want["metadata"]["namespace"].as_str().context("ns")?;
                let name = want["metadata"]["name"].as_str().context("name")?;
                let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
                let live = api
                    .get_opt(name)
                    .await?
                    .with_context(|| format!("NetworkPolicy {ns}/{name} missing"))?;
                let live = serde_json::to_value(&live)?;
                ensure!(
                    contains(&live["spec"], &want["spec"])
                        && contains(&live["metadata"]["labels"], &want["metadata"]["labels"]),
                    "NetworkPolicy {ns}/{name} is {live:#} but should carry {want:#}"
                );
            }
            for ns in DEMO_NAMESPACES {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), ns, &intents_resource());
                for intents in api.list(&ListParams::default()).await? {
                    ensure!(
                        intents.data["status"]["upToDate"] == true,
                        "ClientIntents {ns}/{} not up to date: {:#}",
                        intents.metadata.name.as_deref().unwrap_or_default(),
                        intents.data["status"]
                    );
                }
            }
            let pods: Api<Pod> = Api::namespaced(client.clone(), "storefront");
            let cart = pods
                .list(&ListParams::default().labels("app=cart"))
                .await?
                .items;
            let labelled = !cart.is_empty()
                && cart.iter().all(|p| {
                    p.metadata.labels.as_ref().is_some_and(|l| {
                        l.get("intents.otterize.com/access-auth-platform-af1fbb")
                            .is_some_and(|v| v == "true")
                    })
                });
            ensure!(
                labelled,
                "storefront/cart's pods lack the access label for auth"
            );
            Ok(Some(()))
        },
    )
    .await
    .with_context(|| format!("operator log:\n{}", operator.logs()))
}

/// The demo's workloads, as the dashboard names them.
fn demo_workloads() -> Result<BTreeSet<String>> {
    Ok(demo_objects()?
        .iter()
        .filter(|d| {
            ["Deployment", "StatefulSet", "CronJob"].contains(&d["kind"].as_str().unwrap_or(""))
        })
        .map(|d| {
            format!(
                "{}/{}[{}]",
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default(),
                d["kind"].as_str().unwrap_or_default()
            )
        })
        .collect())
}

fn graph(port: u16) -> Result<api::Graph> {
    let (status, body) = http_get(port, "/api/graph?state=all")?;
    ensure!(status == 200, "/api/graph: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

fn edge_state(graph: &api::Graph, source: &str, target: &str) -> Option<api::EdgeState> {
    graph
        .edges
        .iter()
        .find(|e| e.source == source && e.target == target)
        .map(|e| e.state)
}

/// The dashboard serves every demo workload, and the call the demo had broken (cart lost its
/// label for auth) as the operator fixed it.
async fn wait_served(port: u16, dashboard: &LocalPod) -> Result<api::Graph> {
    let workloads = demo_workloads()?;
    ensure!(workloads.len() == 13, "{workloads:?}");
    wait_until(
        "the dashboard to serve the converged demo",
        Duration::from_secs(120),
        || async {
            let (code, body) = http_get(port, "/api/status")?;
            let status: api::Status = serde_json::from_str(&body)?;
            if code != 200 || !status.ready || status.source != "cluster" {
                return Ok(None);
            }
            let graph = graph(port)?;
            let nodes: BTreeSet<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
            let cart = edge_state(
                &graph,
                "storefront/cart[Deployment]",
                "platform/auth[Deployment]",
            );
            Ok((status.workloads as usize >= workloads.len()
                && workloads.is_subset(&nodes)
                && cart == Some(api::EdgeState::Enforced))
            .then_some(graph))
        },
    )
    .await
    .with_context(|| format!("dashboard log:\n{}", dashboard.logs()))
}

struct Running {
    operator: LocalPod,
    dashboard: LocalPod,
    dashboard_port: u16,
}

/// Starts the operator and the dashboard from the installed Deployments, as their
/// ServiceAccounts, with the dashboard's database at `db` (the claim's stand-in).
async fn start_both(
    client: &Client,
    operator_account: &ServiceAccountCredentials,
    dashboard_account: &ServiceAccountCredentials,
    db: &Path,
    dir: &Path,
) -> Result<Running> {
    let webhook_port = free_port()?;
    let metrics_port = free_port()?;
    let operator = run_like_pod(
        client,
        "accord-operator",
        operator_account,
        &[
            ("ACCORD_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}")),
            ("ACCORD_WEBHOOK_LISTEN", format!("127.0.0.1:{webhook_port}")),
            ("ACCORD_WEBHOOK_HOSTS", "127.0.0.1".into()),
            // The API server cannot reach a Service without pods: the operator points the
            // webhooks at its local address instead (as in the operator tests).
            (
                "ACCORD_WEBHOOK_URL",
                format!("https://127.0.0.1:{webhook_port}"),
            ),
        ],
        dir,
    )
    .await?;
    wait_until("the operator to lead", DEFAULT_TIMEOUT, || async {
        let Ok((status, body)) = http_get(metrics_port, "/metrics") else {
            return Ok(None);
        };
        Ok((status == 200 && body.contains("reconcile_ready 1")).then_some(()))
    })
    .await
    .with_context(|| format!("operator log:\n{}", operator.logs()))?;
    let dashboard_port = free_port()?;
    let dashboard = run_like_pod(
        client,
        "accord-dashboard",
        dashboard_account,
        &[
            ("ACCORD_LISTEN", format!("127.0.0.1:{dashboard_port}")),
            ("ACCORD_DB", db.display().to_string()),
        ],
        dir,
    )
    .await?;
    Ok(Running {
        operator,
        dashboard,
        dashboard_port,
    })
}

/// Waits until a ClientIntents in a non-stored version can be read: the API server converts
/// through the operator's webhook.
async fn wait_conversion(client: &Client, operator: &LocalPod) -> Result<()> {
    let v1 = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "storefront",
        &support::intents_resource("v1alpha2"),
    );
    wait_until(
        "ClientIntents conversion through the operator",
        DEFAULT_TIMEOUT,
        || async { Ok(v1.list(&ListParams::default()).await.ok().map(|_| ())) },
    )
    .await
    .with_context(|| format!("operator log:\n{}", operator.logs()))
}

/// Puts the chart's Service reference back into the ValidatingWebhookConfiguration in place
/// of the local operator's URL, keeping the CA bundle the operator added; returns the bundle.
async fn restore_service_reference(webhooks: &Api<DynamicObject>) -> Result<Value> {
    let vwc = webhooks.get("accord-operator").await?;
    let mut list = vwc.data["webhooks"].clone();
    let config = &mut list[0]["clientConfig"];
    let ca_bundle = config["caBundle"].clone();
    ensure!(ca_bundle.is_string(), "no CA bundle in {config}");
    *config = json!({
        "caBundle": ca_bundle,
        "service": {
            "namespace": NAMESPACE,
            "name": "accord-operator-webhook",
            "path": "/validate-clientintents",
            "port": 443,
        },
    });
    webhooks
        .patch(
            "accord-operator",
            &PatchParams::default(),
            &Patch::Merge(json!({"webhooks": list})),
        )
        .await?;
    Ok(ca_bundle)
}

#[tokio::test]
async fn installed_chart_converges_and_serves_the_demo_and_survives_upgrade_and_uninstall()
-> Result<()> {
    let plane = accord_tests::shared().await?;
    let client = plane.client()?;
    let kubeconfig = plane.kubeconfig_path();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    ensure!(
        namespaces.get_opt(NAMESPACE).await?.is_none(),
        "{NAMESPACE} exists already: this test installs the chart there and will not touch an existing installation"
    );
    let dir = tempfile::Builder::new().prefix("accord-chart-").tempdir()?;
    let chart = chart().display().to_string();

    // Install with the dashboard's apply enabled (the token from the chart's Secret).
    let install = [
        "install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "dashboard.apply.enabled=true",
        "--set",
        "operator.leaderElection.leaseDurationSeconds=3",
    ];
    let out = helm(&install, Some(kubeconfig))?;
    ensure!(
        out.status.success(),
        "helm install:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("kubectl delete validatingwebhookconfiguration accord-operator")
    );

    // The CRDs came from crds/.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "clientintents.k8s.otterize.com",
        "protectedservices.k8s.otterize.com",
    ] {
        wait_until(&format!("{name} established"), DEFAULT_TIMEOUT, || async {
            let crd = crds.get(name).await?;
            Ok(accord_tests::condition_status(&crd, "Established")
                .is_some_and(|s| s == "True")
                .then_some(()))
        })
        .await?;
    }
    let crd_uid = uid(&crds, "clientintents.k8s.otterize.com").await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let pvc_uid = uid(&pvcs, "accord-dashboard-db").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let token = secrets
        .get("accord-dashboard-apply-token")
        .await?
        .data
        .and_then(|d| d.get("token").cloned())
        .context("apply token")?;
    assert_eq!(token.0.len(), 40);

    // The chart's ServiceAccounts, with tokens from the API.
    let operator_account = service_account_credentials(
        &client,
        kubeconfig,
        NAMESPACE,
        "accord-operator",
        dir.path(),
    )
    .await?;
    let dashboard_account = service_account_credentials(
        &client,
        kubeconfig,
        NAMESPACE,
        "accord-dashboard",
        dir.path(),
    )
    .await?;
    // The dashboard's role reads and never writes.
    let as_dashboard = dashboard_account.client()?;
    let policies_as_dashboard: Api<NetworkPolicy> = Api::namespaced(as_dashboard, "default");
    policies_as_dashboard.list(&ListParams::default()).await?;
    let denied = policies_as_dashboard
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "x"}, "spec": {"podSelector": {}}}),
            )?,
        )
        .await;
    assert!(
        matches!(&denied, Err(kube::Error::Api(s)) if s.code == 403),
        "{denied:?}"
    );

    // The demo: namespaces and workloads first, intents once the webhooks answer.
    let demo = demo_objects()?;
    let is = |d: &Value, kinds: &[&str]| kinds.contains(&d["kind"].as_str().unwrap_or(""));
    for doc in demo.iter().filter(|d| is(d, &["Namespace"])) {
        apply(&client, doc).await?;
    }
    for doc in demo
        .iter()
        .filter(|d| !is(d, &["Namespace", "ClientIntents", "ProtectedService"]))
    {
        apply(&client, doc).await?;
    }
    let db = dir.path().join("accord.db");
    let mut running = start_both(
        &client,
        &operator_account,
        &dashboard_account,
        &db,
        dir.path(),
    )
    .await?;
    let intents_count = demo.iter().filter(|d| is(d, &["ClientIntents"])).count();
    for doc in demo
        .iter()
        .filter(|d| is(d, &["ClientIntents", "ProtectedService"]))
    {
        wait_until(
            "the webhooks to admit the demo",
            DEFAULT_TIMEOUT,
            || async { Ok(apply(&client, doc).await.ok()) },
        )
        .await
        .with_context(|| format!("operator log:\n{}", running.operator.logs()))?;
    }
    wait_conversion(&client, &running.operator).await?;
    wait_converged(&client, &running.operator).await?;
    let before = wait_served(running.dashboard_port, &running.dashboard).await?;
    // The dashboard answers to its Service's DNS name (the chart passes it as a public URL) and
    // refuses a name it does not know (DNS rebinding).
    let by_name = |host: &str| -> Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", running.dashboard_port))?;
        write!(
            s,
            "GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf)
            .get(9..12)
            .context("status")?
            .parse()?)
    };
    assert_eq!(by_name("accord-dashboard.accord-system.svc")?, 200);
    assert_eq!(by_name("rebound.example.com")?, 421);

    // The apply token reached the dashboard: status says applying is on.
    let (_, body) = http_get(running.dashboard_port, "/api/status")?;
    let status: api::Status = serde_json::from_str(&body)?;
    assert!(status.apply_enabled, "{body}");
    // The operator published its settings and the dashboard, with its role, reads them.
    wait_until(
        "the dashboard to use the operator's published settings",
        DEFAULT_TIMEOUT,
        || async {
            let (_, body) = http_get(running.dashboard_port, "/api/status")?;
            let status: api::Status = serde_json::from_str(&body)?;
            ensure!(
                status.settings_source.contains(
                    "published by the operator in ConfigMap accord-system/accord-operator-settings"
                ),
                "settings: {}",
                status.settings_source
            );
            Ok(Some(()))
        },
    )
    .await
    .with_context(|| format!("dashboard log:\n{}", running.dashboard.logs()))?;
    let (_, body) = http_get(running.dashboard_port, "/api/history?limit=1000")?;
    let history_before: api::HistoryPage = serde_json::from_str(&body)?;
    assert!(!history_before.entries.is_empty());

    // Upgrade: a changed setting reaches the Deployment; the claim, the token, the CRDs and the
    // generated policies stay the same objects.
    let notifications: Api<NetworkPolicy> = Api::namespaced(client.clone(), "platform");
    let policy_uid = uid(&notifications, "notifications-access").await?;
    let webhooks: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            "validatingwebhookconfigurations",
        ),
    );
    // In a cluster the operator only adds its CA to the webhook configurations; here it also
    // pointed them at its local URL. Stop it and put the Service back, as a cluster has it.
    running.operator.stop();
    let ca_bundle = restore_service_reference(&webhooks).await?;
    let upgrade = [
        "upgrade",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "operator.concurrency=16",
    ];
    let out = helm(&upgrade, Some(kubeconfig))?;
    ensure!(out.status.success(), "helm upgrade:\n{}", text(&out.stderr));
    let operator_deployment: Deployment = Api::namespaced(client.clone(), NAMESPACE)
        .get("accord-operator")
        .await?;
    let env = serde_json::to_value(&operator_deployment.spec)?;
    assert!(
        env["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!({"name": "ACCORD_CONCURRENCY", "value": "16"}))),
        "{env}"
    );
    assert_eq!(uid(&pvcs, "accord-dashboard-db").await?, pvc_uid);
    assert_eq!(uid(&crds, "clientintents.k8s.otterize.com").await?, crd_uid);
    let token_after = secrets
        .get("accord-dashboard-apply-token")
        .await?
        .data
        .and_then(|d| d.get("token").cloned())
        .context("apply token")?;
    assert_eq!(token_after, token, "the apply token changed on upgrade");

    // helm's three-way merge keeps the CA the operator added.
    let vwc = webhooks.get("accord-operator").await?;
    assert_eq!(
        vwc.data["webhooks"][0]["clientConfig"]["caBundle"], ca_bundle,
        "helm upgrade dropped the operator's CA bundle"
    );

    // The pods roll: new processes from the upgraded Deployments, on the same database.
    running.dashboard.stop();
    let running = start_both(
        &client,
        &operator_account,
        &dashboard_account,
        &db,
        dir.path(),
    )
    .await?;
    wait_conversion(&client, &running.operator).await?;
    wait_converged(&client, &running.operator).await?;
    let after = wait_served(running.dashboard_port, &running.dashboard).await?;
    assert_eq!(
        uid(&notifications, "notifications-access").await?,
        policy_uid
    );
    assert_eq!(before.nodes.len(), after.nodes.len());
    // The database survived: every edge keeps the time it was first seen, and the history.
    for edge in &before.edges {
        let kept = after
            .edges
            .iter()
            .find(|e| e.source == edge.source && e.target == edge.target)
            .with_context(|| format!("edge {} → {} after upgrade", edge.source, edge.target))?;
        assert_eq!(
            kept.first_seen, edge.first_seen,
            "{} → {}",
            edge.source, edge.target
        );
    }
    let (_, body) = http_get(running.dashboard_port, "/api/history?limit=1000")?;
    let history_after: api::HistoryPage = serde_json::from_str(&body)?;
    for entry in &history_before.entries {
        assert!(
            history_after.entries.contains(entry),
            "history lost on upgrade: {entry:?}"
        );
    }

    // Applying a draft: only with the token from the chart's Secret, and the dashboard's apply
    // role suffices to create the ClientIntents, which the operator then takes up.
    let token = String::from_utf8(token.0)?;
    let draft = json!({"name": "catalog calls auth", "yaml": "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: catalog, namespace: storefront}\nspec:\n  workload: {name: catalog}\n  targets:\n    - kubernetes: {name: auth.platform}\n"});
    let port = running.dashboard_port;
    let json_type = ("Content-Type", "application/json");
    let (code, body) = http(
        port,
        "POST",
        "/api/drafts",
        &[json_type],
        &draft.to_string(),
    )?;
    assert_eq!(code, 201, "{body}");
    let draft: api::Draft = serde_json::from_str(&body)?;
    let apply_path = format!("/api/drafts/{}/apply", draft.id);
    let (code, _) = http(
        port,
        "POST",
        &apply_path,
        &[("Authorization", "Bearer wrong")],
        "",
    )?;
    assert_eq!(code, 401);
    let bearer = format!("Bearer {token}");
    let (code, body) = http(port, "POST", &apply_path, &[("Authorization", &bearer)], "")?;
    assert_eq!(code, 200, "{body}");
    let result: api::ApplyResult = serde_json::from_str(&body)?;
    assert_eq!(result.applied, ["storefront/catalog"]);
    support::wait_status(&client, "storefront", "catalog", "up to date", |s| {
        s["upToDate"] == true
    })
    .await
    .with_context(|| format!("operator log:\n{}", running.operator.logs()))?;

    // Uninstall in the documented order: the webhook, then the release.
    webhooks
        .delete("accord-operator", &Default::default())
        .await?;
    let Running {
        mut operator,
        mut dashboard,
        ..
    } = running;
    operator.stop();
    dashboard.stop();
    let out = helm(
        &["uninstall", RELEASE, "--namespace", NAMESPACE],
        Some(kubeconfig),
    )?;
    ensure!(
        out.status.success(),
        "helm uninstall:\n{}",
        text(&out.stderr)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    for name in ["accord-operator", "accord-dashboard"] {
        accord_tests::wait_for_deletion(&deployments, name, DEFAULT_TIMEOUT).await?;
    }
    assert!(webhooks.get_opt("accord-operator").await?.is_none());
    // What stays: the CRDs, the intents, the generated policies, the database's claim.
    assert_eq!(uid(&crds, "clientintents.k8s.otterize.com").await?, crd_uid);
    assert_eq!(uid(&pvcs, "accord-dashboard-db").await?, pvc_uid);
    assert_eq!(
        uid(&notifications, "notifications-access").await?,
        policy_uid
    );
    let mut stored = 0;
    for ns in DEMO_NAMESPACES {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &intents_resource());
        stored += api.list(&ListParams::default()).await?.items.len();
    }
    assert_eq!(stored, intents_count + 1);
    // With the webhook gone first, ClientIntents stay writable in the stored version without
    // the operator (a validating webhook nobody serves would reject this with Fail).
    let stored_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "storefront", &intents_resource());
    let first = stored_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .next()
        .context("an intents")?;
    stored_api
        .patch(
            first.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"after-uninstall": "yes"}}})),
        )
        .await
        .context("writing ClientIntents after uninstall")?;
    Ok(())
}
