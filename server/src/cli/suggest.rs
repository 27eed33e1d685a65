//! `accord suggest`: recorded Hubble flows + manifests in, per client the ClientIntents that
//! would declare what it was observed calling, merged with its current intents.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::observed::{self, IpHistory, Observations, format_rfc3339, parse_rfc3339};
use accord_policy::render;

use super::report;
use crate::manifests;
use crate::observed::recorded;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recorded flows: `hubble observe -o jsonpb` output or the Hubble exporter's events.log
    /// (files, directories searched for *.json, *.jsonl, *.log and their .gz, or `-` for
    /// standard input). Repeat the flag for several.
    #[arg(long, required = true, value_name = "PATH", env = "ACCORD_FLOWS")]
    flows: Vec<PathBuf>,

    /// Manifest files or directories: the current ClientIntents (suggestions are merged with
    /// them) and the workloads, Pods and Services they refer to. Pods with `status.podIP` give
    /// the IP history that names flows without workload fields.
    #[arg(value_name = "MANIFESTS")]
    paths: Vec<PathBuf>,

    /// Only observations last seen at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", env = "ACCORD_SINCE", value_parser = parse_time)]
    since: Option<i64>,

    /// Print every observation (calls, host probes, DNS, host-network, unresolved) as a table
    /// instead of the suggestions. CALLS counts connections, each once although Hubble reports
    /// it at both ends; FWD, DROP and AUDIT split them by their final verdict.
    #[arg(long, env = "ACCORD_OBSERVATIONS")]
    observations: bool,

    /// Print each suggestion as a line diff from the client's current ClientIntents (`-`, `+`,
    /// ` ` before every line) instead of the whole merged ClientIntents.
    #[arg(long, env = "ACCORD_SUGGEST_DIFF", conflicts_with = "observations")]
    diff: bool,

    /// Treat warnings in the manifests as errors for the exit status.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reading = manifests::read_named(&args.paths)?;
    let (inv, mut diagnostics) = manifests::load(&reading.sources);
    diagnostics.splice(0..0, reading.diagnostics);
    let failed = report(&diagnostics, args.strict);
    let ips = IpHistory::from_manifests(&reading.sources, &inv);
    let obs = recorded::observe(&args.flows, &ips)?;
    let since = args.since.unwrap_or(i64::MIN);
    let text = if args.observations {
        observations_table(&obs, since)
    } else {
        let suggestions = observed::suggest(obs.sorted(), &inv, since);
        if suggestions.is_empty() {
            eprintln!("nothing to suggest: every observed call is declared");
        }
        suggestions_yaml(&obs, &suggestions, args.diff)
    };
    print!("{text}");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn time(t: i64) -> String {
    if t == 0 {
        "-".to_string()
    } else {
        format_rfc3339(t)
    }
}

fn window(obs: &Observations) -> String {
    match obs.coverage.span() {
        Some((a, b)) => format!(
            "{} to {}, {} events lost",
            time(a),
            time(b),
            obs.coverage.lost_total()
        ),
        None => "no flows".to_string(),
    }
}

/// One ClientIntents per client, each introduced by comments listing what it adds.
pub fn suggestions_yaml(
    obs: &Observations,
    suggestions: &[observed::Suggestion],
    diff: bool,
) -> String {
    let mut out = String::new();
    for (i, s) in suggestions.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let merged = match &s.current {
            Some(ci) => format!("merged with ClientIntents {}/{}", ci.namespace, ci.name),
            None => "no current ClientIntents".to_string(),
        };
        let _ = writeln!(
            out,
            "# Suggested for {} from observed traffic ({merged}); review before applying.",
            s.client
        );
        let _ = writeln!(out, "# Observed {}.", window(obs));
        for a in &s.added {
            let _ = writeln!(
                out,
                "#   + {} {}/{}: {} ({} dropped), last seen {}",
                a.server,
                a.protocol.as_str(),
                a.port,
                observed::calls_in_words(a.aggregate.count),
                a.aggregate.dropped,
                time(a.aggregate.last_seen)
            );
        }
        let suggested = render::intents_yaml(std::slice::from_ref(&s.suggested));
        if diff {
            let current = s
                .current
                .as_ref()
                .map(|c| render::intents_yaml(std::slice::from_ref(c)))
                .unwrap_or_default();
            out.push_str(&accord_policy::drift::line_diff(&current, &suggested));
        } else {
            out.push_str(&suggested);
        }
    }
    out
}

/// Every observation, calls first, as aligned columns.
pub fn observations_table(obs: &Observations, since: i64) -> String {
    let mut rows = vec![
        [
            "CLASS", "CLIENT", "SERVER", "PORT", "CALLS", "FWD", "DROP", "AUDIT", "FIRST", "LAST",
        ]
        .map(str::to_string),
    ];
    for (k, a) in obs.sorted() {
        if a.last_seen < since {
            continue;
        }
        rows.push([
            k.class.as_str().to_string(),
            k.client.to_string(),
            k.server.to_string(),
            format!("{}/{}", k.protocol.as_str(), k.port),
            a.count.to_string(),
            a.forwarded.to_string(),
            a.dropped.to_string(),
            a.audit.to_string(),
            time(a.first_seen),
            time(a.last_seen),
        ]);
    }
    let widths: Vec<usize> = (0..10)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let s = obs.skipped;
    let _ = writeln!(
        out,
        "\nwindow: {}\nnot counted: {} replies, {} reports of calls already counted (their other end or a later segment), {} L7/socket events, {} without direction, {} without ports, {} reserved",
        window(obs),
        s.replies,
        s.same_call,
        s.not_l3l4,
        s.no_direction,
        s.no_port,
        s.reserved
    );
    out
}
