//! Command-line interface: one `Args` struct per subcommand.

mod can_reach;
mod completions;
mod connlist;
mod crd;
mod diff;
mod operator;
mod peers;
mod render;
mod serve;
mod suggest;
mod who_can_reach;

use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitCode;

use accord_policy::Diagnostic;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Accord: zero-trust between Kubernetes workloads, declared by each client team as
/// `ClientIntents` (the k8s.otterize.com API).
#[derive(Debug, Parser)]
#[command(name = "accord", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render the NetworkPolicies (or pod labels) that the intents in the given manifests produce.
    Render(render::Args),
    /// List the connections that the NetworkPolicies in the given manifests allow, in
    /// netpol-analyzer's connectivity-list format.
    Connlist(connlist::Args),
    /// Answer whether SRC may connect to DST under the NetworkPolicies in the manifests, and
    /// explain which policies isolate them and which rules admit the connection. Exit status 0
    /// means allowed, 1 denied (with --strict, also: the manifests have warnings or errors), 2 a
    /// usage error or an unknown workload.
    CanReach(can_reach::Args),
    /// List every source (workload or external range) that may connect to a workload, with
    /// the ports it may use.
    WhoCanReach(who_can_reach::Args),
    /// Compare the connectivity two manifest sets allow: connections added, removed, changed.
    Diff(diff::Args),
    /// Serve the dashboard: sync the demo, a manifest tree or a live cluster into SQLite and
    /// serve the access graph, drift, what-if, drafts and history over HTTP.
    Serve(serve::Args),
    /// Suggest ClientIntents from observed traffic: per client, what it was observed calling in
    /// recorded Hubble flows, merged with its current intents (one ClientIntents per client).
    Suggest(suggest::Args),
    /// Run the operator: reconcile ClientIntents into NetworkPolicies and pod labels.
    Operator(operator::Args),
    /// Print the k8s.otterize.com CustomResourceDefinitions generated from Accord's types.
    Crd(crd::Args),
    /// Print a shell completion script (bash, zsh or fish) for this program.
    #[command(after_help = completions::INSTALL_HELP)]
    Completions(completions::Args),
}

/// The executable's file name as invoked (`accord`, or `kubectl-accord` as a kubectl plugin);
/// `accord` when argv\[0\] has none.
pub fn program_name(argv0: Option<&OsStr>) -> String {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(OsStr::to_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("accord")
        .to_owned()
}

/// How help and usage name the program: `kubectl accord` when it runs as a kubectl plugin
/// (kubectl executes `kubectl-accord` with the rest of the command line), else its file name.
pub fn display_name(program: &str) -> String {
    match program.strip_prefix("kubectl-") {
        Some(plugin) => format!("kubectl {plugin}"),
        None => program.to_owned(),
    }
}

impl Cli {
    /// Parses the process's arguments, naming the program as it was invoked (see
    /// [`display_name`]); exits with a usage error (status 2) or the help text.
    pub fn parse_args() -> Self {
        let args: Vec<_> = std::env::args_os().collect();
        let name = display_name(&program_name(args.first().map(|a| a.as_os_str())));
        let mut matches = Self::command().bin_name(name).get_matches_from(args);
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
    }

    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Render(args) => render::run(args),
            Command::Connlist(args) => connlist::run(args),
            Command::CanReach(args) => can_reach::run(args),
            Command::WhoCanReach(args) => who_can_reach::run(args),
            Command::Diff(args) => diff::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Suggest(args) => suggest::run(args),
            Command::Operator(args) => operator::run(args),
            Command::Crd(args) => crd::run(args),
            Command::Completions(args) => completions::run(args),
        }
    }
}

/// Output formats of policy-producing commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

/// Print diagnostics to standard error; return whether any counts as an error.
pub fn report(diagnostics: &[Diagnostic], strict: bool) -> bool {
    for d in diagnostics {
        eprintln!("{d}");
    }
    diagnostics.iter().any(|d| strict || d.is_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubectl_plugin_is_named_as_kubectl_shows_it() {
        let plugin = program_name(Some(OsStr::new("/usr/local/bin/kubectl-accord")));
        assert_eq!(plugin, "kubectl-accord");
        assert_eq!(display_name(&plugin), "kubectl accord");
        let plain = program_name(Some(OsStr::new("target/debug/accord")));
        assert_eq!(display_name(&plain), "accord");
        assert_eq!(program_name(None), "accord");
    }

    #[test]
    fn help_of_a_subcommand_shows_the_plugin_usage() {
        let help = Cli::command()
            .bin_name("kubectl accord")
            .try_get_matches_from(["kubectl-accord", "render", "--help"])
            .unwrap_err()
            .to_string();
        assert!(
            help.contains("Usage: kubectl accord render [OPTIONS]"),
            "{help}"
        );
    }
}
