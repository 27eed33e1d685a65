//! A Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager,
//! or an existing cluster named by `KUBECONFIG`.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tempfile::TempDir;
use tokio::sync::{Mutex, OnceCell};

use crate::binaries::Binaries;
use crate::pki::{Pki, SERVICE_CLUSTER_IP_RANGE};
use crate::process::{DirReaper, Process};

/// With `KUBECONFIG` set, `ACCORD_TEST_USE_EXISTING_CLUSTER=1` makes [`shared`] use that
/// cluster instead of starting one.
pub const USE_EXISTING_CLUSTER_ENV: &str = "ACCORD_TEST_USE_EXISTING_CLUSTER";
/// `ACCORD_TEST_KEEP_DIR=1` keeps a local control plane's directory (certificates,
/// kubeconfigs, logs, etcd data) after it stops, for debugging.
pub const KEEP_DIR_ENV: &str = "ACCORD_TEST_KEEP_DIR";

/// How long a start of etcd or kube-apiserver may take before it counts as failed. Cold
/// starts on a busy two-core machine take several seconds.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long kube-controller-manager may take to create the `default` ServiceAccount.
const CONTROLLER_MANAGER_TIMEOUT: Duration = Duration::from_secs(90);
/// How many times a start is retried when a port picked as free was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// A running control plane, or an existing cluster. Dropping a local one stops its
/// processes and removes its directory; the processes also die with the test binary.
#[derive(Debug)]
pub struct ControlPlane {
    kubeconfig: PathBuf,
    server_url: String,
    config: Config,
    local: Option<Local>,
}

/// The processes and files of a control plane started by this crate. Fields drop in
/// order: the controller-manager stops first, etcd last, then the directory goes.
#[derive(Debug)]
struct Local {
    controller_manager: Process,
    api_server: Mutex<Option<Process>>,
    etcd: Process,
    api_server_args: Vec<String>,
    binaries: Binaries,
    pki: Pki,
    _reaper: Option<DirReaper>,
    dir: Directory,
}

#[derive(Debug)]
enum Directory {
    Temporary(TempDir),
    Kept(PathBuf),
}

impl Directory {
    fn path(&self) -> &Path {
        match self {
            Directory::Temporary(dir) => dir.path(),
            Directory::Kept(path) => path,
        }
    }
}

static SHARED: OnceCell<Result<ControlPlane, String>> = OnceCell::const_new();

/// Whether [`shared`] uses an existing cluster (`KUBECONFIG` set and
/// `ACCORD_TEST_USE_EXISTING_CLUSTER=1`). Tests that need a local control plane, such as
/// API server restarts, skip themselves when this is true.
pub fn use_existing_cluster() -> bool {
    std::env::var(USE_EXISTING_CLUSTER_ENV).is_ok_and(|v| v == "1")
        && std::env::var_os("KUBECONFIG").is_some()
}

/// The control plane shared by all tests of this test binary, started on first use.
///
/// With `KUBECONFIG` set and `ACCORD_TEST_USE_EXISTING_CLUSTER=1`, it is that cluster
/// instead. A failed start is remembered, so later tests fail fast with the same error.
pub async fn shared() -> Result<&'static ControlPlane> {
    let result = SHARED
        .get_or_init(|| async {
            let started = if use_existing_cluster() {
                ControlPlane::existing().await
            } else {
                ControlPlane::start().await
            };
            started.map_err(|error| format!("{error:#}"))
        })
        .await;
    result
        .as_ref()
        .map_err(|error| anyhow!("the shared control plane did not start: {error}"))
}

impl ControlPlane {
    /// Starts a dedicated control plane on free loopback ports, in its own temporary
    /// directory. Returns once `/readyz` answers and kube-controller-manager has created the
    /// `default` ServiceAccount of the `default` namespace.
    pub async fn start() -> Result<Self> {
        let binaries = tokio::task::spawn_blocking(Binaries::locate).await??;
        let started = Instant::now();
        let dir = tempfile::Builder::new().prefix("accord-k8s-").tempdir()?;
        let dir = if std::env::var(KEEP_DIR_ENV).is_ok_and(|v| v == "1") {
            Directory::Kept(dir.keep())
        } else {
            Directory::Temporary(dir)
        };
        let root = dir.path().to_owned();
        let reaper = match &dir {
            Directory::Temporary(_) => Some(DirReaper::start(&root)?),
            Directory::Kept(_) => None,
        };
        let pki = Pki::write(&root.join("pki"))?;

        let (etcd, etcd_url) = start_etcd(&binaries, &root).await?;

        let mut attempt = 0;
        let (api_server, api_server_args, port, config) = loop {
            attempt += 1;
            let port = free_port()?;
            let args = api_server_args(&pki, &etcd_url, port);
            let mut process = spawn_api_server(&binaries, &args, &root)?;
            let config = admin_config(&root, &pki, port).await?;
            match wait_ready(&mut process, &config).await {
                Ok(()) => break (process, args, port, config),
                Err(_) if attempt < PORT_ATTEMPTS && port_taken(&process) => continue,
                Err(error) => return Err(error),
            }
        };
        let kubeconfig = root.join("admin.kubeconfig");

        let cm_kubeconfig = root.join("controller-manager.kubeconfig");
        write_kubeconfig(
            &cm_kubeconfig,
            port,
            &pki.ca_cert,
            "system:kube-controller-manager",
            &pki.controller_manager_cert,
            &pki.controller_manager_key,
        )?;
        let controller_manager = start_controller_manager(&binaries, &pki, &cm_kubeconfig, &root)?;

        let local = Local {
            controller_manager,
            api_server: Mutex::new(Some(api_server)),
            etcd,
            api_server_args,
            binaries,
            pki,
            _reaper: reaper,
            dir,
        };
        let mut control_plane = ControlPlane {
            kubeconfig,
            server_url: server_url(port),
            config,
            local: Some(local),
        };
        control_plane.wait_for_controller_manager().await?;
        eprintln!(
            "accord-tests: control plane ready at {} in {:.1} s ({})",
            control_plane.server_url,
            started.elapsed().as_secs_f64(),
            root.display()
        );
        Ok(control_plane)
    }

    /// Uses the cluster of `$KUBECONFIG` (its current context) as it is.
    pub async fn existing() -> Result<Self> {
        let paths = std::env::var_os("KUBECONFIG").context("KUBECONFIG is not set")?;
        let kubeconfig = std::env::split_paths(&paths)
            .next()
            .context("KUBECONFIG names no file")?;
        let config = Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .context("loading KUBECONFIG")?;
        Ok(ControlPlane {
            kubeconfig,
            server_url: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            config,
            local: None,
        })
    }

    /// Whether this is an existing cluster rather than one started by this crate.
    pub fn is_existing_cluster(&self) -> bool {
        self.local.is_none()
    }

    /// A kubeconfig file with admin rights (group `system:masters` for a local control plane).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, such as `https://127.0.0.1:40123`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The PEM file of the CA that signed the API server's certificate (local control plane).
    pub fn ca_certificate_path(&self) -> Option<&Path> {
        self.local.as_ref().map(|local| local.pki.ca_cert.as_path())
    }

    /// The PEM text of that CA (local control plane).
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.local.as_ref().map(|local| local.pki.ca_pem.as_str())
    }

    /// The directory of a local control plane: certificates, kubeconfigs, `*.log`, etcd data.
    pub fn directory(&self) -> Option<&Path> {
        self.local.as_ref().map(|local| local.dir.path())
    }

    /// The admin client configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new admin client. Make one per test: a client is bound to the tokio runtime that
    /// created it, and each `#[tokio::test]` has its own.
    pub fn client(&self) -> Result<Client> {
        Client::try_from(self.config.clone()).context("building a kube client")
    }

    /// Process names and ids (`etcd`, `kube-apiserver`, `kube-controller-manager`) of a local
    /// control plane; the API server is missing while stopped.
    pub async fn processes(&self) -> Vec<(String, u32)> {
        let Some(local) = &self.local else {
            return Vec::new();
        };
        let mut processes = vec![(local.etcd.name().to_owned(), local.etcd.pid())];
        if let Some(api_server) = local.api_server.lock().await.as_ref() {
            processes.push((api_server.name().to_owned(), api_server.pid()));
        }
        processes.push((
            local.controller_manager.name().to_owned(),
            local.controller_manager.pid(),
        ));
        processes
    }

    /// Stops the API server gracefully (SIGTERM, as a rolling update would: open watches
    /// are ended, then the process exits, in about a second) and waits until it exited.
    /// etcd and kube-controller-manager keep running.
    pub async fn stop_api_server(&self) -> Result<()> {
        self.end_api_server(Duration::from_secs(30)).await
    }

    /// Kills the API server (SIGKILL, as a crash or an OOM kill would): connections drop
    /// without a goodbye. etcd and kube-controller-manager keep running.
    pub async fn kill_api_server(&self) -> Result<()> {
        self.end_api_server(Duration::ZERO).await
    }

    async fn end_api_server(&self, grace: Duration) -> Result<()> {
        let local = self.local_only("stop the API server")?;
        let process = local.api_server.lock().await.take();
        if let Some(mut process) = process {
            tokio::task::spawn_blocking(move || process.stop(grace)).await?;
        }
        Ok(())
    }

    /// Starts the API server again with the same port, certificates and etcd, and waits
    /// until it is ready. Does nothing if it is running.
    pub async fn start_api_server(&self) -> Result<()> {
        let local = self.local_only("start the API server")?;
        let mut slot = local.api_server.lock().await;
        if slot
            .as_mut()
            .is_some_and(|process| process.exited().is_none())
        {
            return Ok(());
        }
        let mut process =
            spawn_api_server(&local.binaries, &local.api_server_args, local.dir.path())?;
        wait_ready(&mut process, &self.config).await?;
        *slot = Some(process);
        Ok(())
    }

    /// [`stop_api_server`](Self::stop_api_server) then [`start_api_server`](Self::start_api_server).
    pub async fn restart_api_server(&self) -> Result<()> {
        self.stop_api_server().await?;
        self.start_api_server().await
    }

    fn local_only(&self, what: &str) -> Result<&Local> {
        self.local
            .as_ref()
            .with_context(|| format!("cannot {what} of an existing cluster"))
    }

    async fn wait_for_controller_manager(&mut self) -> Result<()> {
        let client = self.client()?;
        let service_accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
        let deadline = Instant::now() + CONTROLLER_MANAGER_TIMEOUT;
        loop {
            if service_accounts.get_opt("default").await?.is_some() {
                return Ok(());
            }
            let local = self.local.as_mut().context("not a local control plane")?;
            if let Some(status) = local.controller_manager.exited() {
                bail!(
                    "kube-controller-manager exited with {status}:\n{}",
                    local.controller_manager.log_tail(30)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-controller-manager created no default ServiceAccount within {:?}:\n{}",
                    CONTROLLER_MANAGER_TIMEOUT,
                    local.controller_manager.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn start_etcd(binaries: &Binaries, root: &Path) -> Result<(Process, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = root.join("etcd");
        let mut command = Command::new(&binaries.etcd);
        command.args([
            "--name=accord-tests".to_owned(),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=accord-tests={peer_url}"),
            "--initial-cluster-state=new".to_owned(),
            // A test cluster's data is disposable: trade durability for speed.
            "--unsafe-no-fsync=true".to_owned(),
            "--log-level=warn".to_owned(),
        ]);
        let mut process = Process::spawn("etcd", command, &root.join("etcd.log"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, client_port)).is_ok() {
                return Ok((process, client_url));
            }
            if let Some(status) = process.exited() {
                if attempt < PORT_ATTEMPTS && port_taken(&process) {
                    let _ = std::fs::remove_dir_all(&data);
                    break;
                }
                bail!("etcd exited with {status}:\n{}", process.log_tail(30));
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd did not listen within {START_TIMEOUT:?}:\n{}",
                    process.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn api_server_args(pki: &Pki, etcd_url: &str, port: u16) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--tls-cert-file={}", path(&pki.serving_cert)),
        format!("--tls-private-key-file={}", path(&pki.serving_key)),
        format!("--client-ca-file={}", path(&pki.ca_cert)),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!(
            "--service-account-key-file={}",
            path(&pki.service_account_public_key)
        ),
        format!(
            "--service-account-signing-key-file={}",
            path(&pki.service_account_key)
        ),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        "--authorization-mode=Node,RBAC".to_owned(),
        // The endpoint reconciler would publish 127.0.0.1 as the `kubernetes` Service's
        // endpoint, which validation rejects every 10 s. Pods cannot reach a loopback
        // address anyway, so that Service has no endpoints here.
        "--endpoint-reconciler-type=none".to_owned(),
        "--allow-privileged=true".to_owned(),
        // Priority and fairness adds start-up work that a test cluster does not need.
        "--enable-priority-and-fairness=false".to_owned(),
        // On SIGTERM, end open watches and wait at most 2 s for them. Without it, HTTP/2
        // connections carrying watches hold the shutdown for the full 60 s timeout.
        "--shutdown-watch-termination-grace-period=2s".to_owned(),
        "--profiling=false".to_owned(),
        "--v=1".to_owned(),
    ]
}

fn spawn_api_server(binaries: &Binaries, args: &[String], root: &Path) -> Result<Process> {
    let mut command = Command::new(&binaries.kube_apiserver);
    command.args(args);
    Process::spawn("kube-apiserver", command, &root.join("kube-apiserver.log"))
}

fn start_controller_manager(
    binaries: &Binaries,
    pki: &Pki,
    kubeconfig: &Path,
    root: &Path,
) -> Result<Process> {
    let path = |p: &Path| p.display().to_string();
    let mut command = Command::new(&binaries.kube_controller_manager);
    command.args([
        format!("--kubeconfig={}", path(kubeconfig)),
        format!("--authentication-kubeconfig={}", path(kubeconfig)),
        format!("--authorization-kubeconfig={}", path(kubeconfig)),
        format!(
            "--service-account-private-key-file={}",
            path(&pki.service_account_key)
        ),
        format!("--root-ca-file={}", path(&pki.ca_cert)),
        format!("--cluster-signing-cert-file={}", path(&pki.ca_cert)),
        format!("--cluster-signing-key-file={}", path(&pki.ca_key)),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        // Each controller gets its own ServiceAccount and so its own RBAC rights, as in a
        // real cluster.
        "--use-service-account-credentials=true".to_owned(),
        "--controllers=*".to_owned(),
        "--leader-elect=false".to_owned(),
        // No HTTPS endpoint: nothing scrapes it, and a fixed default port would collide
        // between parallel control planes.
        "--secure-port=0".to_owned(),
        "--profiling=false".to_owned(),
        "--v=1".to_owned(),
    ]);
    Process::spawn(
        "kube-controller-manager",
        command,
        &root.join("kube-controller-manager.log"),
    )
}

/// Polls `/readyz` until it answers `ok`, failing early if the process exits.
async fn wait_ready(process: &mut Process, config: &Config) -> Result<()> {
    let mut config = config.clone();
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    let client = Client::try_from(config)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let request = http::Request::get("/readyz").body(Vec::new())?;
        let last_error = match client.request_text(request).await {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => body,
            Err(error) => error.to_string(),
        };
        if let Some(status) = process.exited() {
            bail!(
                "{} exited with {status}:\n{}",
                process.name(),
                process.log_tail(30)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} was not ready within {START_TIMEOUT:?} (last answer: {last_error}):\n{}",
                process.name(),
                process.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn port_taken(process: &Process) -> bool {
    process.log_tail(50).contains("address already in use")
}

/// A port that was free a moment ago. Another process may take it before the server
/// binds, so starts retry with a new port when the log says so.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn server_url(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

async fn admin_config(root: &Path, pki: &Pki, port: u16) -> Result<Config> {
    let path = root.join("admin.kubeconfig");
    write_kubeconfig(
        &path,
        port,
        &pki.ca_cert,
        "accord-tests-admin",
        &pki.admin_cert,
        &pki.admin_key,
    )?;
    let kubeconfig = Kubeconfig::read_from(&path)?;
    Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}

/// Writes a kubeconfig (as JSON, which is YAML too) that refers to the PEM files by path.
fn write_kubeconfig(
    path: &Path,
    port: u16,
    ca: &Path,
    user: &str,
    cert: &Path,
    key: &Path,
) -> Result<()> {
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "accord-tests",
            "cluster": { "server": server_url(port), "certificate-authority": ca },
        }],
        "users": [{
            "name": user,
            "user": { "client-certificate": cert, "client-key": key },
        }],
        "contexts": [{
            "name": "accord-tests",
            "context": { "cluster": "accord-tests", "user": user, "namespace": "default" },
        }],
        "current-context": "accord-tests",
    });
    std::fs::write(path, serde_json::to_string_pretty(&kubeconfig)?)
        .with_context(|| format!("writing {}", path.display()))
}
