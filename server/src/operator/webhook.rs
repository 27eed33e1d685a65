//! The operator's HTTPS webhooks: ClientIntents conversion and validation.
//!
//! In: `ConversionReview` (apiextensions.k8s.io/v1) and `AdmissionReview` (admission.k8s.io/v1)
//! requests from the API server. Out: the converted objects (through
//! `accord_policy::intents::convert`), and admission decisions that name the offending field
//! (through `accord_policy::intents::parse`, the same validation the operator reports on
//! statuses). Every replica serves them, leader or not.
//!
//! TLS comes from user-supplied PEM files or from a CA generated at start (kept in memory
//! only). With a generated CA, the operator keeps it in the CA bundles of the ClientIntents
//! CRD's conversion webhook and of the ValidatingWebhookConfiguration [`VALIDATING_WEBHOOK`]:
//! each replica adds its own CA (keeping a few others, so replicas behind one Service are all
//! trusted) and re-adds it when a re-applied manifest removed it.

mod ca;
mod review;
#[cfg(test)]
mod tests;
mod tls;

pub use ca::keep_injected;
pub use review::router;
pub use tls::{Tls, keep_reloading, serve};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How many CAs a CA bundle keeps: this replica's and the most recent others'.
const MAX_BUNDLED_CAS: usize = 4;
/// How often the CA bundles are checked (and restored if a re-applied manifest removed them).
const INJECT_INTERVAL: Duration = Duration::from_secs(30);
/// How often user-supplied certificate files are checked for a renewal.
const RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhook settings (from `accord operator`'s `--webhook-*` flags).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    /// Base URL the API server reaches the webhooks at, for runs outside the cluster: the CRD
    /// and the ValidatingWebhookConfiguration then name `url` instead of the Service.
    pub url: Option<String>,
}

#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files of the serving certificate (with its chain) and its key.
    Files { cert: PathBuf, key: PathBuf },
    /// Generate a CA and a serving certificate for these DNS names and IP addresses.
    Generate { hosts: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("no PEM private key in {0}")]
    NoKey(PathBuf),
    #[error("generating the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("webhook TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error(
        "--webhook-host is needed to generate a certificate (the Service's DNS name, or 127.0.0.1)"
    )]
    NoHosts,
}
