//! `accord operator`: run the operator in a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use accord_policy::GenerateOptions;

use crate::operator::webhook::{self, TlsSource};
use crate::operator::{self, Settings, leader::LeaseConfig};
use crate::settings::GenerationArgs;

/// Reconcile ClientIntents into NetworkPolicies and pod labels. Connects with the in-cluster
/// ServiceAccount, or `KUBECONFIG` / `~/.kube/config` outside a cluster.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    generation: GenerationArgs,
    /// The namespace where the leader publishes its generation settings (ConfigMap
    /// `accord-operator-settings`) for `accord serve --cluster`; the client's default namespace
    /// (the pod's own) if unset.
    #[arg(long, env = "ACCORD_SETTINGS_NAMESPACE", value_name = "NS")]
    settings_namespace: Option<String>,
    /// Watch only this namespace (repeatable, or comma-separated); all namespaces by default.
    #[arg(
        long = "watched-namespace",
        env = "ACCORD_WATCHED_NAMESPACES",
        value_delimiter = ','
    )]
    watched_namespaces: Vec<String>,
    /// Address of the Kubernetes API server, for egress to `kubernetes.default` (repeatable).
    #[arg(
        long = "api-server-ip",
        env = "ACCORD_API_SERVER_IPS",
        value_delimiter = ','
    )]
    api_server_ips: Vec<String>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ACCORD_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,
    /// Run without leader election (only one replica may then run).
    #[arg(long, env = "ACCORD_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "ACCORD_LEASE_NAME", default_value = "accord-operator")]
    lease_name: String,
    /// Namespace of the Lease; the client's default namespace (the pod's own) if unset.
    #[arg(long, env = "ACCORD_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long a lease is valid without renewal: a standby takes over this long after the
    /// leader stops renewing. Renewal happens every third of it.
    #[arg(long, env = "ACCORD_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// This replica's identity in the Lease; the hostname (the pod name) by default.
    #[arg(long, env = "ACCORD_IDENTITY")]
    identity: Option<String>,
    /// Concurrent API requests while applying changes.
    #[arg(long, env = "ACCORD_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Milliseconds to wait for more events before reconciling, so bursts become one batch.
    #[arg(long, env = "ACCORD_DEBOUNCE_MS", default_value_t = 10)]
    debounce_ms: u64,
    /// Serve the ClientIntents conversion (`/convert`) and validating (`/validate-clientintents`)
    /// webhooks over HTTPS on this address; no webhooks when unset.
    #[arg(long, env = "ACCORD_WEBHOOK_LISTEN")]
    webhook_listen: Option<SocketAddr>,
    /// PEM file of the webhooks' serving certificate (with its chain). Without it, the operator
    /// generates a CA and a certificate for `--webhook-host`, and puts the CA into the CRD's
    /// and the ValidatingWebhookConfiguration's caBundle itself.
    #[arg(long, env = "ACCORD_WEBHOOK_CERT", requires = "webhook_key")]
    webhook_cert: Option<PathBuf>,
    /// PEM file of the serving certificate's private key.
    #[arg(long, env = "ACCORD_WEBHOOK_KEY", requires = "webhook_cert")]
    webhook_key: Option<PathBuf>,
    /// A DNS name or IP address the generated certificate is valid for (repeatable, or
    /// comma-separated), e.g. `accord-operator-webhook.accord-system.svc` or `127.0.0.1`.
    #[arg(
        long = "webhook-host",
        env = "ACCORD_WEBHOOK_HOSTS",
        value_delimiter = ',',
        default_value = "accord-operator-webhook.accord-system.svc"
    )]
    webhook_hosts: Vec<String>,
    /// Base URL the API server reaches the webhooks at, such as `https://127.0.0.1:9443`, for
    /// an operator outside the cluster: the webhook configurations are patched to use this URL
    /// instead of the Service.
    #[arg(long, env = "ACCORD_WEBHOOK_URL")]
    webhook_url: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let settings_namespace = match args.settings_namespace {
            Some(ns) => ns,
            None => kube::Config::infer().await?.default_namespace,
        };
        let lease = if args.no_leader_election {
            None
        } else {
            let namespace = match args.lease_namespace {
                Some(ns) => ns,
                None => kube::Config::infer().await?.default_namespace,
            };
            let identity = args.identity.unwrap_or_else(|| {
                std::env::var("HOSTNAME")
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| format!("accord-{}", std::process::id()))
            });
            Some(LeaseConfig {
                namespace,
                name: args.lease_name,
                identity,
                duration: Duration::from_secs(args.lease_duration_seconds.max(1)),
            })
        };
        let settings = Settings {
            options: GenerateOptions {
                api_server_ips: args.api_server_ips,
                ..args.generation.options()
            },
            namespaces: args.watched_namespaces,
            metrics_listen: args.metrics_listen,
            lease,
            concurrency: args.concurrency,
            debounce: Duration::from_millis(args.debounce_ms),
            settings_namespace: Some(settings_namespace),
            webhook: args.webhook_listen.map(|listen| webhook::Config {
                listen,
                tls: match (args.webhook_cert, args.webhook_key) {
                    (Some(cert), Some(key)) => TlsSource::Files { cert, key },
                    _ => TlsSource::Generate {
                        hosts: args.webhook_hosts,
                    },
                },
                url: args.webhook_url,
            }),
        };
        match operator::run(settings).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                operator::log_fatal(&e);
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
