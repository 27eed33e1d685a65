//! `accord render`: intents and inventory manifests in, NetworkPolicies or pod labels out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::render;

use super::{Format, report};
use crate::manifests;
use crate::settings::GenerationArgs;

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

    #[command(flatten)]
    generation: GenerationArgs,

    /// Treat warnings (such as a target that resolves to nothing) as errors for the exit status.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reading = manifests::read_named(&args.paths)?;
    let (inv, mut diagnostics) = manifests::load(&reading.sources);
    diagnostics.splice(0..0, reading.diagnostics);
    let opts = args.generation.options();
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
