//! `accord serve`: the dashboard backend (sync a source into SQLite, serve the API and the UI).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::serve::http::PublicUrl;
use crate::serve::{self, ApplyConfig, Config, Source};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories to serve (read again when they change). Without this and
    /// without `--cluster`, the bundled demo shop is served.
    #[arg(
        long,
        value_name = "PATH",
        env = "ACCORD_MANIFESTS",
        conflicts_with = "cluster"
    )]
    manifests: Vec<PathBuf>,

    /// Watch a live cluster (the kubeconfig from `--kubeconfig`, KUBECONFIG, ~/.kube/config, or
    /// the in-cluster service account).
    #[arg(long, env = "ACCORD_CLUSTER")]
    cluster: bool,

    /// The kubeconfig file of the cluster to watch (implies `--cluster`).
    #[arg(long, value_name = "FILE", env = "ACCORD_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,

    /// The SQLite database (created if missing); `:memory:` keeps it in memory. Default:
    /// $XDG_DATA_HOME/accord/accord.db or ~/.local/share/accord/accord.db.
    #[arg(long, value_name = "PATH", env = "ACCORD_DB")]
    db: Option<String>,

    /// The address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "ACCORD_LISTEN"
    )]
    listen: SocketAddr,

    /// The built frontend to serve. Default: `<dir of accord>/../site`, else
    /// `<dir of accord>/../share/accord/site`.
    #[arg(long, value_name = "DIR", env = "ACCORD_ASSETS")]
    assets: Option<PathBuf>,

    /// A URL the dashboard is reached under besides the listen address (a DNS name, a reverse
    /// proxy), e.g. `https://accord.example.com`; repeatable. Requests for any other host name
    /// are refused (421), which defeats DNS rebinding: on a loopback address only `localhost`
    /// and loopback IPs are answered, on `0.0.0.0` any IP address.
    #[arg(
        long,
        value_name = "URL",
        env = "ACCORD_PUBLIC_URL",
        value_delimiter = ','
    )]
    public_url: Vec<PublicUrl>,

    /// Allow `POST /api/drafts/{id}/apply` to apply drafts to the cluster (needs `--cluster` and
    /// a token: `--apply-token-file` or the `ACCORD_APPLY_TOKEN` environment variable). Off by
    /// default: the dashboard is read-only toward the cluster.
    #[arg(long, env = "ACCORD_ALLOW_APPLY")]
    allow_apply: bool,

    /// A file holding the bearer token that applying a draft requires (surrounding whitespace
    /// is ignored). The token can also come from the `ACCORD_APPLY_TOKEN` environment variable;
    /// it is never taken from the command line, where every user of the machine can read it.
    #[arg(long, value_name = "FILE", env = "ACCORD_APPLY_TOKEN_FILE")]
    apply_token_file: Option<PathBuf>,

    /// Refused: a token on the command line shows in `ps`.
    #[arg(long, value_name = "TOKEN", hide = true)]
    apply_token: Option<String>,

    /// What-if previews evaluated at once; further ones are answered 429 with Retry-After.
    #[arg(
        long,
        value_name = "N",
        default_value_t = serve::DEFAULT_MAX_WHAT_IFS,
        env = "ACCORD_MAX_WHAT_IFS"
    )]
    max_what_ifs: usize,

    /// Working memory (MiB) the what-if previews in flight may hold together. Each estimates
    /// its own from the cluster's size and the workloads its draft touches (at 15,000
    /// workloads, tens of MiB); one that would go beyond the budget is answered 429 with
    /// Retry-After. A what-if alone is always evaluated.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = serve::DEFAULT_WHAT_IF_MEMORY_MIB,
        env = "ACCORD_WHAT_IF_MEMORY"
    )]
    what_if_memory: usize,

    /// Close a connection that sends no request for this many seconds (idle keep-alive), or
    /// takes longer to send a request's head.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = serve::DEFAULT_READ_TIMEOUT.as_secs_f64(),
        env = "ACCORD_READ_TIMEOUT"
    )]
    read_timeout: f64,

    /// Answer a request that takes longer than this many seconds with 503 and a JSON error
    /// (the event stream excepted).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = crate::serve::http::REQUEST_TIMEOUT.as_secs_f64(),
        env = "ACCORD_REQUEST_TIMEOUT"
    )]
    request_timeout: f64,

    /// Ping the dashboards' event streams every this many seconds. A dashboard that hears
    /// nothing for about 2.7 pings shows "Offline" and reconnects: lower it to notice a silent
    /// server (or a proxy holding a dead connection) sooner, or to stay under a proxy's idle
    /// timeout.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = crate::serve::http::EVENTS_PING.as_secs_f64(),
        env = "ACCORD_EVENTS_PING"
    )]
    events_ping: f64,

    /// The namespace of the operator whose generation settings (ConfigMap
    /// `accord-operator-settings`) the drift report and the what-if use, with `--cluster`.
    #[arg(
        long,
        value_name = "NS",
        default_value = crate::settings::DEFAULT_NAMESPACE,
        env = "ACCORD_OPERATOR_NAMESPACE"
    )]
    operator_namespace: String,

    #[command(flatten)]
    generation: crate::settings::GenerationOverrides,

    /// The pod or namespace label naming the team that owns a workload (e.g. `team`): the drift
    /// report's owner of an item (its namespace without it or where the label is absent).
    #[arg(long, value_name = "LABEL", env = "ACCORD_OWNER_LABEL")]
    owner_label: Option<String>,

    /// Follow observed traffic from Hubble Relay (or one Cilium agent's Hubble server) at this
    /// address (`host:port`, `http://…` or `https://…`): who calls whom, what was dropped, and
    /// the suggested intents. Reconnects with backoff and resumes after the last flow stored.
    #[arg(
        long,
        value_name = "ADDR",
        env = "ACCORD_HUBBLE",
        conflicts_with = "flows"
    )]
    hubble: Option<String>,

    /// PEM CA bundle that signs Hubble's server certificate (turns TLS on).
    #[arg(
        long,
        value_name = "FILE",
        env = "ACCORD_HUBBLE_CA",
        requires = "hubble"
    )]
    hubble_ca: Option<PathBuf>,

    /// PEM client certificate for mutual TLS with Hubble Relay.
    #[arg(
        long,
        value_name = "FILE",
        env = "ACCORD_HUBBLE_CERT",
        requires = "hubble_key"
    )]
    hubble_cert: Option<PathBuf>,

    /// The PEM key of `--hubble-cert`.
    #[arg(
        long,
        value_name = "FILE",
        env = "ACCORD_HUBBLE_KEY",
        requires = "hubble_cert"
    )]
    hubble_key: Option<PathBuf>,

    /// The name Hubble's certificate must carry (default: the host of `--hubble`), e.g.
    /// `*.hubble-relay.cilium.io`.
    #[arg(
        long,
        value_name = "NAME",
        env = "ACCORD_HUBBLE_SERVER_NAME",
        requires = "hubble"
    )]
    hubble_server_name: Option<String>,

    /// Recorded flows to show as observed traffic: `hubble observe -o jsonpb` output or the
    /// Hubble exporter's events.log (files, directories, or `-` for standard input); repeatable.
    #[arg(long, value_name = "PATH", env = "ACCORD_FLOWS")]
    flows: Vec<PathBuf>,

    /// Forget observations last seen longer ago than this many hours (for recorded flows:
    /// before their last flow).
    #[arg(
        long,
        value_name = "HOURS",
        default_value_t = 168.0,
        env = "ACCORD_OBSERVED_RETENTION"
    )]
    observed_retention: f64,

    /// Coalesce changes arriving within this many milliseconds into one sync pass.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 200,
        env = "ACCORD_DEBOUNCE_MS"
    )]
    debounce_ms: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cluster = args.cluster || args.kubeconfig.is_some();
    let source = if cluster {
        Source::Cluster {
            kubeconfig: args.kubeconfig,
        }
    } else if !args.manifests.is_empty() {
        Source::Manifests(args.manifests)
    } else {
        Source::Demo
    };
    if args.apply_token.is_some() {
        anyhow::bail!(
            "--apply-token is refused: a token on the command line shows in `ps`; \
             use --apply-token-file FILE or the ACCORD_APPLY_TOKEN environment variable"
        );
    }
    if args.allow_apply && !cluster {
        anyhow::bail!("--allow-apply needs --cluster: the demo and manifests are read-only");
    }
    let apply = if args.allow_apply {
        let token = match &args.apply_token_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("reading the apply token from {}", file.display()))?,
            None => std::env::var("ACCORD_APPLY_TOKEN").unwrap_or_default(),
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            anyhow::bail!(
                "--allow-apply needs a token: --apply-token-file FILE or ACCORD_APPLY_TOKEN"
            );
        }
        Some(ApplyConfig { token })
    } else {
        None
    };
    let config = Config {
        source,
        db: args.db.unwrap_or_else(serve::default_db),
        listen: args.listen,
        assets: args.assets.or_else(serve::default_assets),
        apply,
        debounce: Duration::from_millis(args.debounce_ms),
        public_urls: args.public_url,
        max_what_ifs: args.max_what_ifs,
        what_if_memory: args.what_if_memory.saturating_mul(1 << 20),
        read_timeout: Duration::try_from_secs_f64(args.read_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--read-timeout must be a positive number of seconds")?,
        request_timeout: Duration::try_from_secs_f64(args.request_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--request-timeout must be a positive number of seconds")?,
        events_ping: Duration::try_from_secs_f64(args.events_ping)
            .ok()
            .filter(|d| d.as_millis() >= 100)
            .context("--events-ping must be at least 0.1 seconds")?,
        owner_label: args.owner_label,
        observed: observed_config(
            args.hubble,
            args.hubble_ca,
            args.hubble_cert,
            args.hubble_key,
            args.hubble_server_name,
            args.flows,
            args.observed_retention,
        )?,
        settings: crate::settings::Source {
            operator_namespace: cluster.then_some(args.operator_namespace),
            overrides: args.generation,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// The observed-traffic source, checked before serving (a bad address or TLS file is a usage
/// error now, not a retry loop later).
fn observed_config(
    hubble: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
    flows: Vec<PathBuf>,
    retention_hours: f64,
) -> anyhow::Result<Option<crate::observed::collector::Config>> {
    use crate::observed::{collector, hubble as h};
    let retention = Duration::try_from_secs_f64(retention_hours * 3600.0)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--observed-retention must be a positive number of hours")?;
    let source = match (hubble, flows.is_empty()) {
        (Some(address), _) => {
            let config = h::Config {
                address,
                ca,
                cert,
                key,
                server_name,
                max_backoff: Duration::from_secs(30),
            };
            config.endpoint()?;
            collector::Source::Hubble(config)
        }
        (None, false) => collector::Source::Recorded(flows),
        (None, true) => return Ok(None),
    };
    Ok(Some(collector::Config {
        source,
        retention,
        flush_every: Duration::from_secs(1),
    }))
}
