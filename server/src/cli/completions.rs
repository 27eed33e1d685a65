//! `accord completions`: shell completion scripts generated from the command-line definition.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// Where each shell looks for the script, shown after `accord completions --help`.
pub const INSTALL_HELP: &str = "\
Install the script where the shell looks for completions, e.g.:
  accord completions bash > ~/.local/share/bash-completion/completions/accord
  accord completions zsh > \"${fpath[1]}/_accord\"
  accord completions fish > ~/.config/fish/completions/accord.fish
The script completes the name it was generated under: run `kubectl-accord completions bash` for
the kubectl plugin's executable.";

/// Print a completion script for SHELL to standard output, for the program's name as invoked
/// (`accord`, or `kubectl-accord` when installed as a kubectl plugin).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh or fish (also elvish and powershell).
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = super::program_name(std::env::args_os().next().as_deref());
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
