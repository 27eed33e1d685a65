//! `accord connlist`: the connectivity list of any NetworkPolicies, in netpol-analyzer's format.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::BTreeMap;

use accord_policy::evaluate::{Connection, Network};
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
    /// standard input. Pods, workloads, Namespaces, Services, NetworkPolicies, (Baseline)
    /// AdminNetworkPolicies, Ingresses, Routes and primary (Cluster)UserDefinedNetworks are read;
    /// other documents are skipped.
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

    /// Name workloads by their root owner (e.g. the Deployment) rather than by their direct
    /// controller (e.g. the ReplicaSet), which is what netpol-analyzer prints.
    #[arg(long, env = "ACCORD_ROOT_OWNER")]
    root_owner: bool,
    /// Treat warnings (an object the API server would accept but that breaks one of its rules
    /// on parts Accord does not read, a policy with no effect, a target that resolves to
    /// nothing) as errors: any diagnostic makes the exit status 1.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (inv, failed) = peers::load(&args.paths, args.strict)?;
    let naming = if args.root_owner {
        Naming::Workload
    } else {
        Naming::DirectOwner
    };
    let eval = Evaluator::new(&inv);
    // Diagnostics of the evaluation count only with --strict.
    let eval_failed = report(eval.diagnostics(), args.strict);
    let failed = failed || (args.strict && eval_failed);
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
    // Workloads in a user-defined network print as `ns[udn]/name[Kind]` (CUDN ones plainly).
    let name = |p: &Peer| match p.workload().and_then(|w| connectivity.networks.get(w)) {
        Some(Network::Udn(_)) => {
            let w = p.workload().expect("a workload");
            format!(
                "{}[udn]/{}",
                w.namespace,
                &p.to_string()[w.namespace.len() + 1..]
            )
        }
        _ => p.to_string(),
    };
    // The txt format sorts lines as text, as netpol-analyzer does.
    let mut rows: Vec<(String, String, &Connection)> = connections
        .iter()
        .map(|c| (name(&c.src), name(&c.dst), c))
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    if inv.primary_networks.is_empty() || args.output != ListFormat::Txt {
        print!("{}", format_rows(&rows, args.output)?);
    } else {
        print!("{}", sections(&rows, &connectivity.networks)?);
    }
    // The list is printed either way; the status says some input could not be read.
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The txt format with primary user-defined networks: one section per network, as
/// netpol-analyzer prints it, the pod network first.
fn sections(
    rows: &[(String, String, &Connection)],
    networks: &BTreeMap<WorkloadId, Network>,
) -> anyhow::Result<String> {
    let network_of = |c: &Connection| {
        [&c.src, &c.dst]
            .into_iter()
            .find_map(|p| p.workload())
            .and_then(|w| networks.get(w))
            .cloned()
            .unwrap_or(Network::Pod)
    };
    let mut by_network: BTreeMap<Network, Vec<(String, String, &Connection)>> = BTreeMap::new();
    by_network.insert(Network::Pod, Vec::new());
    for n in networks.values() {
        by_network.entry(n.clone()).or_default();
    }
    for (s, d, c) in rows {
        by_network
            .entry(network_of(c))
            .or_default()
            .push((s.clone(), d.clone(), c));
    }
    let mut out = String::new();
    for (i, (network, rows)) in by_network.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        writeln!(
            out,
            "Permitted connectivity analyzed in {}:",
            network.title()
        )?;
        if rows.is_empty() && *network == Network::Pod {
            writeln!(
                out,
                "all input workloads are configured with (C)UDN as their primary network interface"
            )?;
        }
        out.push_str(&format_rows(rows, ListFormat::Txt)?);
    }
    Ok(out)
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
