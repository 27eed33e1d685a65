//! `accord diff`: what changes between two manifest sets, for review: the allowed connectivity
//! (any policies), and the state of every declared call (enforced, blocked, unprotected), the
//! latter through the core's one comparison of two analyses (`drift::changes`), the same the
//! dashboard's history and what-if use.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use accord_policy::drift::changes::{PairChange, PairFacts, changes as pair_changes};
use accord_policy::drift::{self, Report};
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

    /// Exit with status 1 when connectivity or a declared call's state changed (as
    /// `git diff --exit-code`).
    #[arg(long, env = "ACCORD_DIFF_EXIT_CODE")]
    exit_code: bool,

    /// The settings the declared calls' policies are generated with (as for `accord render`).
    #[command(flatten)]
    generation: crate::settings::GenerationArgs,
    /// Treat warnings (an object the API server would accept but that breaks one of its rules
    /// on parts Accord does not read, a policy with no effect, a target that resolves to
    /// nothing) as errors: any diagnostic makes the exit status 1.
    #[arg(long, env = "ACCORD_STRICT")]
    strict: bool,
}

/// A declared call (on either side) whose state changed: (source, target) and both sides.
type CallChange = PairChange<(String, String)>;

/// Declared calls whose state changes between two analyses.
fn declared_call_changes(old: &Report, new: &Report) -> Vec<CallChange> {
    let facts = |r: &Report| {
        r.edges
            .iter()
            .filter(|e| e.is_declared())
            .map(|e| {
                (
                    (e.source.to_string(), e.target.to_string()),
                    PairFacts::of(e),
                )
            })
            .collect::<Vec<_>>()
    };
    pair_changes(facts(old), facts(new))
}

fn state_of(f: &Option<PairFacts>) -> &'static str {
    f.as_ref().map_or("not declared", |f| f.state.as_str())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (old_inv, old_failed) = peers::load(std::slice::from_ref(&args.old), args.strict)?;
    let (new_inv, new_failed) = peers::load(std::slice::from_ref(&args.new), args.strict)?;
    let old_eval = Evaluator::new(&old_inv);
    let new_eval = Evaluator::new(&new_inv);
    // Diagnostics of the evaluations count only with --strict.
    let old_eval_failed = report(old_eval.diagnostics(), args.strict);
    let old_failed = old_failed || (args.strict && old_eval_failed);
    let new_eval_failed = report(new_eval.diagnostics(), args.strict);
    let new_failed = new_failed || (args.strict && new_eval_failed);
    let changes = diff(
        &old_eval.connectivity(Naming::Workload),
        &new_eval.connectivity(Naming::Workload),
    );
    let opts = args.generation.options();
    let calls = declared_call_changes(
        &drift::analyze(&old_inv, &opts),
        &drift::analyze(&new_inv, &opts),
    );
    let text = match args.output {
        DiffFormat::Text => text(&changes, &calls),
        DiffFormat::Md => markdown(&changes, &calls),
        DiffFormat::Json => {
            let calls: Vec<serde_json::Value> = calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "source": c.key.0,
                        "target": c.key.1,
                        "change": c.kind,
                        "before": c.before,
                        "after": c.after,
                    })
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "connections": changes,
                "declaredCalls": calls,
            }))?;
            s.push('\n');
            s
        }
    };
    print!("{text}");
    // As git diff: 1 with --exit-code and changes; also 1 when some input could not be read.
    let changed = !changes.is_empty() || !calls.is_empty();
    Ok(if old_failed || new_failed || (args.exit_code && changed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn counts(changes: &[ConnectionChange]) -> [usize; 3] {
    let n = |k| changes.iter().filter(|c| c.kind == k).count();
    [
        n(ChangeKind::Added),
        n(ChangeKind::Removed),
        n(ChangeKind::Changed),
    ]
}

fn text(changes: &[ConnectionChange], calls: &[CallChange]) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        out.push_str("no connectivity changes\n");
    } else {
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
    }
    if !calls.is_empty() {
        out.push_str("declared calls:\n");
        for c in calls {
            let _ = writeln!(
                out,
                "! {} => {} : {} -> {} ({})",
                c.key.0,
                c.key.1,
                state_of(&c.before),
                state_of(&c.after),
                c.kind.as_str()
            );
        }
    }
    out
}

fn markdown(changes: &[ConnectionChange], calls: &[CallChange]) -> String {
    let mut out = String::from("### Connectivity changes\n\n");
    if changes.is_empty() {
        out.push_str("No connectivity changes.\n");
    } else {
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
    }
    if !calls.is_empty() {
        out.push_str("\n### Declared calls whose state changes\n\n");
        out.push_str("| source | destination | before | after |\n|---|---|---|---|\n");
        for c in calls {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                c.key.0,
                c.key.1,
                state_of(&c.before),
                state_of(&c.after)
            );
        }
    }
    out
}
