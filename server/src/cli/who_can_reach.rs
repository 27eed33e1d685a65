//! `accord who-can-reach`: every source (workload or external range) that may connect to a
//! workload, and on which ports.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::{Evaluator, Naming, Peer};
use clap::ValueEnum;

use super::can_reach::PortArg;
use super::{peers, report};

/// Output formats of source lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SourcesFormat {
    /// `SRC : CONN`, one line per source.
    #[default]
    Text,
    Json,
    /// A markdown table.
    Md,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The destination workload: `ns/name` or `ns/name[Kind]`.
    #[arg(value_name = "DST")]
    dst: String,

    /// Manifest files or directories (searched recursively for *.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Only list sources that may use this port: `8080`, `8080/TCP`, `53/UDP`.
    #[arg(long, value_name = "PORT[/PROTO]", env = "ACCORD_PORT")]
    port: Option<PortArg>,

    /// Leave out external address ranges.
    #[arg(long, env = "ACCORD_NO_EXTERNAL")]
    no_external: bool,

    /// Output format.
    #[arg(
        short,
        long,
        value_enum,
        default_value_t,
        env = "ACCORD_WHO_CAN_REACH_OUTPUT"
    )]
    output: SourcesFormat,
    /// Treat warnings (an object the API server would accept but that breaks one of its rules
    /// on parts Accord does not read, a policy with no effect, a target that resolves to
    /// nothing) as errors: any diagnostic makes the exit status 1.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (inv, failed) = peers::load(&args.paths, args.strict)?;
    let naming = Naming::Workload;
    let dst = match peers::resolve(&args.dst, &peers::known(&inv, naming)) {
        Ok(Peer::External(_)) => anyhow::bail!("{}: the destination must be a workload", args.dst),
        Ok(p) => p,
        Err(e) => return Err(e.into()),
    };
    let eval = Evaluator::new(&inv);
    // Diagnostics of the evaluation count only with --strict.
    let eval_failed = report(eval.diagnostics(), args.strict);
    let failed = failed || (args.strict && eval_failed);
    let connectivity = eval.connectivity(naming);
    let sources: Vec<_> = connectivity
        .connections
        .iter()
        .filter(|c| c.dst == dst)
        .filter(|c| !(args.no_external && matches!(c.src, Peer::External(_))))
        .filter(|c| args.port.is_none_or(|p| c.conns.allows(p.protocol, p.port)))
        .collect();
    let mut out = String::new();
    match args.output {
        SourcesFormat::Text => {
            if sources.is_empty() {
                writeln!(out, "nothing can reach {dst}")?;
            }
            for c in &sources {
                writeln!(out, "{} : {}", c.src, c.conns)?;
            }
        }
        SourcesFormat::Md => {
            writeln!(
                out,
                "Sources that can reach `{dst}`:\n\n| source | connections |\n|--------|-------------|"
            )?;
            for c in &sources {
                writeln!(out, "| {} | {} |", c.src, c.conns)?;
            }
        }
        SourcesFormat::Json => {
            let items: Vec<serde_json::Value> = sources
                .iter()
                .map(|c| serde_json::json!({"src": c.src.to_string(), "conn": c.conns.to_string()}))
                .collect();
            out = serde_json::to_string_pretty(
                &serde_json::json!({"dst": dst.to_string(), "sources": items}),
            )?;
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
