//! Command-line interface: one `Args` struct per subcommand.

mod can_reach;
mod connlist;
mod crd;
mod diff;
mod operator;
mod peers;
mod render;
mod serve;
mod who_can_reach;

use std::process::ExitCode;

use accord_policy::Diagnostic;
use clap::{Parser, Subcommand, ValueEnum};

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
    /// means allowed, 1 denied, 2 a usage error or an unknown workload.
    CanReach(can_reach::Args),
    /// List every source (workload or external range) that may connect to a workload, with
    /// the ports it may use.
    WhoCanReach(who_can_reach::Args),
    /// Compare the connectivity two manifest sets allow: connections added, removed, changed.
    Diff(diff::Args),
    /// Serve the dashboard: sync the demo, a manifest tree or a live cluster into SQLite and
    /// serve the access graph, drift, what-if, drafts and history over HTTP.
    Serve(serve::Args),
    /// Run the operator: reconcile ClientIntents into NetworkPolicies and pod labels.
    Operator(operator::Args),
    /// Print the k8s.otterize.com CustomResourceDefinitions generated from Accord's types.
    Crd(crd::Args),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Render(args) => render::run(args),
            Command::Connlist(args) => connlist::run(args),
            Command::CanReach(args) => can_reach::run(args),
            Command::WhoCanReach(args) => who_can_reach::run(args),
            Command::Diff(args) => diff::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Operator(args) => operator::run(args),
            Command::Crd(args) => crd::run(args),
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
