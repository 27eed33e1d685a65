//! A fresh namespace per test, and clients that act as a ServiceAccount in it.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tempfile::TempDir;

use crate::control_plane::{ControlPlane, shared};
use crate::wait::{DEFAULT_TIMEOUT, wait_until};

/// Every test namespace carries this label, so leftovers in an existing cluster can be found
/// with `kubectl get ns -l accord-tests/namespace`.
pub const NAMESPACE_LABEL: &str = "accord-tests/namespace";
/// `ACCORD_TEST_KEEP_NAMESPACES=1` keeps test namespaces after the test, for debugging.
pub const KEEP_NAMESPACES_ENV: &str = "ACCORD_TEST_KEEP_NAMESPACES";

/// How long service account tokens from [`TestNamespace::service_account`] are valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A namespace with a random name, deleted (best-effort) when dropped.
pub struct TestNamespace {
    name: String,
    client: Client,
    config: Config,
    kubeconfig: PathBuf,
    files: TempDir,
}

/// Credentials of a ServiceAccount, for tests of what it may and may not do.
#[derive(Clone)]
pub struct ServiceAccountCredentials {
    pub namespace: String,
    pub name: String,
    /// A bound token from the TokenRequest API.
    pub token: String,
    /// A kubeconfig file that authenticates with the token, with the namespace as default.
    pub kubeconfig: PathBuf,
    pub config: Config,
}

impl ServiceAccountCredentials {
    /// A client authenticated as the ServiceAccount.
    pub fn client(&self) -> Result<Client> {
        Client::try_from(self.config.clone()).context("building a kube client")
    }
}

impl TestNamespace {
    /// Creates a namespace on the [`shared`] control plane.
    pub async fn new() -> Result<Self> {
        Self::create(shared().await?).await
    }

    /// Creates a namespace `accord-test-<random>` and waits until kube-controller-manager
    /// has given it its `default` ServiceAccount, which Pods need to be admitted.
    pub async fn create(control_plane: &ControlPlane) -> Result<Self> {
        Self::create_with(
            control_plane.client()?,
            control_plane.config().clone(),
            control_plane.kubeconfig_path().to_owned(),
        )
        .await
    }

    async fn create_with(client: Client, config: Config, kubeconfig: PathBuf) -> Result<Self> {
        let name = random_name("accord-test");
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let test_namespace = TestNamespace {
            name,
            client,
            config,
            kubeconfig,
            files: tempfile::Builder::new().prefix("accord-ns-").tempdir()?,
        };
        let service_accounts: Api<ServiceAccount> = test_namespace.api();
        wait_until(
            "the namespace's default ServiceAccount",
            DEFAULT_TIMEOUT,
            || async { Ok(service_accounts.get_opt("default").await?) },
        )
        .await?;
        Ok(test_namespace)
    }

    /// Creates another namespace on the same control plane (or cluster) as this one.
    pub async fn another(&self) -> Result<Self> {
        Self::create_with(
            self.client.clone(),
            self.config.clone(),
            self.kubeconfig.clone(),
        )
        .await
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin client of the control plane.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A namespaced API of this namespace, as admin.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates the ServiceAccount `name` in this namespace (or reuses it) and returns
    /// credentials for it. It has only the rights that RBAC grants it, which is none until
    /// the test binds a Role.
    pub async fn service_account(&self, name: &str) -> Result<ServiceAccountCredentials> {
        let service_accounts: Api<ServiceAccount> = self.api();
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match service_accounts
            .create(&PostParams::default(), &account)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error).context(format!("creating ServiceAccount {name}")),
        }
        service_account_credentials(
            &self.client,
            &self.kubeconfig,
            &self.name,
            name,
            self.files.path(),
        )
        .await
    }

    /// A client authenticated as the ServiceAccount `name`, created if needed.
    pub async fn service_account_client(&self, name: &str) -> Result<Client> {
        self.service_account(name).await?.client()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var(KEEP_NAMESPACES_ENV).is_ok_and(|v| v == "1") {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: delete from a
        // thread with a runtime of its own. The namespace controller finishes the deletion.
        let config = self.config.clone();
        let name = self.name.clone();
        let deletion = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = Client::try_from(config)?;
                let namespaces = Api::<Namespace>::all(client);
                let params = DeleteParams::background();
                // A stopped API server must not hang the end of the test.
                let deletion = namespaces.delete(&name, &params);
                tokio::time::timeout(Duration::from_secs(10), deletion).await??;
                Ok(())
            })
        });
        let _ = deletion.join();
    }
}

/// Credentials of an existing ServiceAccount `namespace/name` (one a test did not create, such
/// as a Helm chart's): a token from the TokenRequest API, requested with `admin`, and a kubeconfig
/// written into `dir` that authenticates with it against the cluster of the `admin_kubeconfig`.
pub async fn service_account_credentials(
    admin: &Client,
    admin_kubeconfig: &Path,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> Result<ServiceAccountCredentials> {
    let service_accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_LIFETIME.as_secs() as i64),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = service_accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|status| status.token)
        .context("TokenRequest answered without a token")?;

    let kubeconfig = dir.join(format!("{namespace}.{name}.kubeconfig"));
    write_token_kubeconfig(admin_kubeconfig, &kubeconfig, namespace, name, &token)?;
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(ServiceAccountCredentials {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        token,
        kubeconfig,
        config,
    })
}

/// Copies the current context's cluster from `admin` into a new kubeconfig at `path`
/// whose user is the ServiceAccount with `token`.
fn write_token_kubeconfig(
    admin: &Path,
    path: &Path,
    namespace: &str,
    name: &str,
    token: &str,
) -> Result<()> {
    let admin = Kubeconfig::read_from(admin)?;
    let context_name = admin
        .current_context
        .clone()
        .context("admin kubeconfig without current-context")?;
    let context = admin
        .contexts
        .iter()
        .find(|context| context.name == context_name)
        .and_then(|context| context.context.clone())
        .context("admin kubeconfig without its current context")?;
    let cluster = admin
        .clusters
        .iter()
        .find(|cluster| cluster.name == context.cluster)
        .context("admin kubeconfig without the current context's cluster")?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{
            "name": user,
            "context": { "cluster": cluster.name, "user": user, "namespace": namespace },
        }],
        "current-context": user,
    });
    std::fs::write(path, serde_json::to_string_pretty(&kubeconfig)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// `prefix-` followed by 8 random hex digits (std's hasher keys are random per process; a
/// counter and the pid keep names apart within and across test binaries).
pub fn random_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash =
        RandomState::new().hash_one((std::process::id(), count, std::time::SystemTime::now()));
    format!("{prefix}-{:08x}", hash as u32)
}

#[cfg(test)]
mod tests {
    use super::random_name;

    #[test]
    fn random_names_are_valid_namespace_names_and_differ() {
        let first = random_name("accord-test");
        let second = random_name("accord-test");
        assert_ne!(first, second);
        assert_eq!(first.len(), "accord-test-".len() + 8);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{first}"
        );
    }
}
