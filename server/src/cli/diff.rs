//! `accord diff`: what changes in allowed connectivity between two manifest sets, for review.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::evaluate::diff::{ChangeKind, ConnectionChange, diff};
use accord_policy::{Evaluator, Naming};
use clap::ValueEnum;

use super::{peers, report};

/// Output formats of a connectivity diff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// `+`, `-` and `~` lines.
    #[default]
    Text,
    Json,
    /// Markdown fit for a pull-request comment.
    Md,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifests before the change: a file or a directory.
    #[arg(value_name = "OLD")]
    old: PathBuf,

    /// The manifests after the change: a file or a directory.
    #[arg(value_name = "NEW")]
    new: PathBuf,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t, env = "ACCORD_DIFF_OUTPUT")]
    output: DiffFormat,

    /// Exit with status 1 when connectivity changed (as `git diff --exit-code`).
    #[arg(long, env = "ACCORD_DIFF_EXIT_CODE")]
    exit_code: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (old_inv, old_failed) = peers::load(std::slice::from_ref(&args.old))?;
    let (new_inv, new_failed) = peers::load(std::slice::from_ref(&args.new))?;
    let old_eval = Evaluator::new(&old_inv);
    let new_eval = Evaluator::new(&new_inv);
    report(old_eval.diagnostics(), false);
    report(new_eval.diagnostics(), false);
    let changes = diff(
        &old_eval.connectivity(Naming::Workload),
        &new_eval.connectivity(Naming::Workload),
    );
    let text = match args.output {
        DiffFormat::Text => text(&changes),
        DiffFormat::Md => markdown(&changes),
        DiffFormat::Json => {
            let mut s = serde_json::to_string_pretty(&changes)?;
            s.push('\n');
            s
        }
    };
    print!("{text}");
    // As git diff: 1 with --exit-code and changes; also 1 when some input could not be read.
    Ok(
        if old_failed || new_failed || (args.exit_code && !changes.is_empty()) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn counts(changes: &[ConnectionChange]) -> [usize; 3] {
    let n = |k| changes.iter().filter(|c| c.kind == k).count();
    [
        n(ChangeKind::Added),
        n(ChangeKind::Removed),
        n(ChangeKind::Changed),
    ]
}

fn text(changes: &[ConnectionChange]) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("no connectivity changes\n");
        return out;
    }
    for c in changes {
        let _ = match c.kind {
            ChangeKind::Added => writeln!(out, "+ {} => {} : {}", c.src, c.dst, c.new),
            ChangeKind::Removed => writeln!(out, "- {} => {} : {}", c.src, c.dst, c.old),
            ChangeKind::Changed => {
                writeln!(out, "~ {} => {} : {} -> {}", c.src, c.dst, c.old, c.new)
            }
        };
    }
    let [a, r, ch] = counts(changes);
    let _ = writeln!(out, "{a} added, {r} removed, {ch} changed");
    out
}

fn markdown(changes: &[ConnectionChange]) -> String {
    let mut out = String::from("### Connectivity changes\n\n");
    if changes.is_empty() {
        out.push_str("No connectivity changes.\n");
        return out;
    }
    let [a, r, ch] = counts(changes);
    let _ = writeln!(out, "**{a} added, {r} removed, {ch} changed**\n");
    out.push_str("| | source | destination | before | after |\n|---|---|---|---|---|\n");
    for c in changes {
        let (mark, before, after) = match c.kind {
            ChangeKind::Added => ("➕ added", "—".to_string(), c.new.to_string()),
            ChangeKind::Removed => ("➖ removed", c.old.to_string(), "—".to_string()),
            ChangeKind::Changed => ("✏️ changed", c.old.to_string(), c.new.to_string()),
        };
        let _ = writeln!(
            out,
            "| {mark} | `{}` | `{}` | {before} | {after} |",
            c.src, c.dst
        );
    }
    out
}
