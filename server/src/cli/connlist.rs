//! `accord connlist`: the connectivity list of any NetworkPolicies, in netpol-analyzer's format.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::evaluate::Connection;
use accord_policy::{Evaluator, Naming, Peer, WorkloadId};
use clap::ValueEnum;

use super::{peers, report};

/// Output formats of the connectivity list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// `SRC => DST : CONN`, one line per pair (netpol-analyzer's txt format).
    #[default]
    Txt,
    Json,
    /// A markdown table.
    Md,
    Csv,
    /// A Graphviz digraph.
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads
    /// standard input. Pods, workloads, Namespaces and NetworkPolicies are read; other
    /// documents are skipped.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Output format.
    #[arg(
        short,
        long,
        value_enum,
        default_value_t,
        env = "ACCORD_CONNLIST_OUTPUT"
    )]
    output: ListFormat,

    /// Only list connections from or to this workload (`ns/name`, optionally `[Kind]`).
    #[arg(long, value_name = "WORKLOAD", env = "ACCORD_FOCUS_WORKLOAD")]
    focus_workload: Option<String>,

    /// Name workloads by their root owner (e.g. the Deployment) instead of their direct
    /// controller (e.g. the ReplicaSet) as netpol-analyzer does.
    #[arg(long, env = "ACCORD_ROOT_OWNER")]
    root_owner: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (inv, failed) = peers::load(&args.paths)?;
    let naming = if args.root_owner {
        Naming::Workload
    } else {
        Naming::DirectOwner
    };
    let eval = Evaluator::new(&inv);
    report(eval.diagnostics(), false);
    let connectivity = eval.connectivity(naming);
    let mut connections = connectivity.connections;
    if let Some(focus) = &args.focus_workload {
        let Some(id) = WorkloadId::parse(focus, "default").filter(|_| focus.contains('/')) else {
            anyhow::bail!("--focus-workload {focus:?}: write ns/name or ns/name[Kind]");
        };
        if !connectivity.workloads.iter().any(|w| id.matches(w)) {
            // Reuse the resolver for its error message with close matches.
            peers::resolve(focus, &connectivity.workloads)?;
        }
        let hit = |p: &Peer| p.workload().is_some_and(|w| id.matches(w));
        connections.retain(|c| hit(&c.src) || hit(&c.dst));
    }
    // The txt format sorts lines as text, as netpol-analyzer does.
    let mut rows: Vec<(String, String, &Connection)> = connections
        .iter()
        .map(|c| (c.src.to_string(), c.dst.to_string(), c))
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    print!("{}", format_rows(&rows, args.output)?);
    // The list is printed either way; the status says some input could not be read.
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn format_rows(
    rows: &[(String, String, &Connection)],
    format: ListFormat,
) -> anyhow::Result<String> {
    let mut out = String::new();
    match format {
        ListFormat::Txt => {
            for (src, dst, c) in rows {
                writeln!(out, "{src} => {dst} : {}", c.conns)?;
            }
        }
        ListFormat::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(src, dst, c)| serde_json::json!({"src": src, "dst": dst, "conn": c.conns.to_string()}))
                .collect();
            out = serde_json::to_string_pretty(&items)?;
            out.push('\n');
        }
        ListFormat::Md => {
            out.push_str("| src | dst | conn |\n|-----|-----|------|\n");
            for (src, dst, c) in rows {
                writeln!(out, "| {src} | {dst} | {} |", c.conns)?;
            }
        }
        ListFormat::Csv => {
            out.push_str("src,dst,conn\n");
            for (src, dst, c) in rows {
                writeln!(
                    out,
                    "{},{},{}",
                    csv_field(src),
                    csv_field(dst),
                    csv_field(&c.conns.to_string())
                )?;
            }
        }
        ListFormat::Dot => {
            out.push_str("digraph {\n");
            let mut nodes: Vec<&String> = rows.iter().flat_map(|(s, d, _)| [s, d]).collect();
            nodes.sort();
            nodes.dedup();
            for n in nodes {
                let shape = if n.ends_with("[External]") {
                    "box"
                } else {
                    "ellipse"
                };
                writeln!(out, "  {n:?} [shape={shape}]")?;
            }
            for (src, dst, c) in rows {
                writeln!(
                    out,
                    "  {src:?} -> {dst:?} [label={:?}]",
                    c.conns.to_string()
                )?;
            }
            out.push_str("}\n");
        }
    }
    Ok(out)
}
