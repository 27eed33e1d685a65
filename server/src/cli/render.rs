//! `accord render`: intents and inventory manifests in, NetworkPolicies or pod labels out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::{GenerateOptions, render};

use super::{Format, report};
use crate::manifests;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads
    /// standard input. ClientIntents of every k8s.otterize.com version are read, along with the
    /// Namespaces, workloads, Pods, Services and ProtectedServices they refer to.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Print the pod label changes per workload instead of the NetworkPolicies.
    #[arg(long, env = "ACCORD_LABELS")]
    labels: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t, env = "ACCORD_OUTPUT")]
    output: Format,

    /// Also generate egress rules for clients (DNS is allowed as well).
    #[arg(long, env = "ACCORD_EGRESS")]
    egress: bool,

    /// Write ingress and egress into separate `-ingress` / `-egress` policies instead of one
    /// `-access` policy per workload.
    #[arg(long, env = "ACCORD_SEPARATE_POLICIES")]
    separate_policies: bool,

    /// Shadow mode: only protect servers in an enforced namespace or named by a ProtectedService.
    #[arg(long, env = "ACCORD_SHADOW")]
    shadow: bool,

    /// A namespace whose servers are protected in shadow mode (repeatable, or comma-separated).
    #[arg(
        long = "enforced-namespace",
        value_name = "NS",
        value_delimiter = ',',
        env = "ACCORD_ENFORCED_NAMESPACES",
        requires = "shadow"
    )]
    enforced_namespaces: Vec<String>,

    /// Treat warnings (such as a target that resolves to nothing) as errors for the exit status.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reading = manifests::read_named(&args.paths)?;
    let (inv, mut diagnostics) = manifests::load(&reading.sources);
    diagnostics.splice(0..0, reading.diagnostics);
    let opts = GenerateOptions {
        egress: args.egress,
        separate_policies: args.separate_policies,
        shadow: args.shadow,
        enforced_namespaces: args.enforced_namespaces.into_iter().collect(),
        api_server_ips: Vec::new(),
    };
    let generated = accord_policy::generate(&inv, &opts);
    diagnostics.extend(generated.diagnostics.iter().cloned());
    let text = if args.labels {
        let desired = generated.pod_labels(&inv);
        let current: BTreeMap<_, _> = inv
            .pods
            .iter()
            .map(|p| (&p.workload, &p.metadata.labels))
            .collect();
        let ids = inv.workload_ids();
        let changes = render::label_changes(&desired, |id| current.get(id).copied(), ids);
        match args.output {
            Format::Yaml => render::label_changes_yaml(&changes)?,
            Format::Json => render::label_changes_json(&changes)?,
        }
    } else {
        match args.output {
            Format::Yaml => render::policies_yaml(&generated.policies)?,
            Format::Json => render::policies_json(&generated.policies)?,
        }
    };
    print!("{text}");
    let failed = report(&diagnostics, args.strict);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
