//! `accord serve`: the dashboard backend (sync a source into SQLite, serve the API and the UI).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

    /// Allow `POST /api/drafts/{id}/apply` to apply drafts to the cluster (needs `--cluster` and
    /// `--apply-token`). Off by default: the dashboard is read-only toward the cluster.
    #[arg(long, env = "ACCORD_ALLOW_APPLY", requires = "apply_token")]
    allow_apply: bool,

    /// The bearer token that applying a draft requires.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ACCORD_APPLY_TOKEN",
        hide_env_values = true
    )]
    apply_token: Option<String>,

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
    if args.allow_apply && !cluster {
        anyhow::bail!("--allow-apply needs --cluster: the demo and manifests are read-only");
    }
    let config = Config {
        source,
        db: args.db.unwrap_or_else(serve::default_db),
        listen: args.listen,
        assets: args.assets.or_else(serve::default_assets),
        apply: args
            .allow_apply
            .then(|| args.apply_token.map(|token| ApplyConfig { token }))
            .flatten(),
        debounce: Duration::from_millis(args.debounce_ms),
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
