//! `accord crd`: print the CustomResourceDefinitions generated from the Rust types.

use std::process::ExitCode;

/// Print the `k8s.otterize.com` CRDs (ClientIntents, ProtectedService) as YAML. The committed
/// `deploy/crds/k8s.otterize.com.yaml` is this output; a test fails when they differ.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", crate::k8s::crds_yaml());
    Ok(ExitCode::SUCCESS)
}
