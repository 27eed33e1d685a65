//! The `accord` binary: the CLI, and later the operator and the dashboard backend.
//!
//! Exit status: 0 when the command succeeded and found nothing wrong, 1 when the input has
//! errors (or, for `can-reach`, when the answer is "no"), 2 on usage errors.

mod cli;
mod cluster;
mod k8s;
mod manifests;
mod metrics;
mod observed;
mod operator;
mod serve;
mod settings;

use std::process::ExitCode;

// Parsing and generating for large clusters is allocation-heavy; mimalloc is markedly faster
// than the system allocator for it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks for transparent huge pages; each first touch then zeroes 2 MiB. Syncing 15,000
/// workloads spent about a third of its time in that zeroing on a 2-core VM (`perf`), and the
/// sync bench ran 20 s with huge pages against 15 s without, at the same peak memory.
fn disable_transparent_huge_pages() {
    // A kernel without the flag only loses the speed-up.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = cli::Cli::parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("accord: {e:#}");
            ExitCode::from(2)
        }
    }
}
