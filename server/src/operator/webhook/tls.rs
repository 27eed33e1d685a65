//! Webhook TLS: the serving certificate (user PEM files, reloaded when they change, or a
//! generated CA and certificate) and the listener that completes TLS handshakes before axum.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::k8s::{CONVERT_PATH, VALIDATE_PATH};

use super::*;

/// The serving configuration, the certificate it serves, and the PEM of the CA when Accord
/// generated it.
pub struct Tls {
    pub server: Arc<rustls::ServerConfig>,
    pub certificate: Arc<Certificate>,
    pub generated_ca: Option<String>,
}

/// The serving certificate, replaceable while the server runs (user-supplied files are read
/// again when they change, as cert-manager rotates them).
#[derive(Debug)]
pub struct Certificate {
    current: std::sync::RwLock<Arc<CertifiedKey>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Certificate {
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load `cert` and `key` again; true when they differ from what is served (and now serve).
    pub fn reload(&self, cert: &PathBuf, key: &PathBuf) -> Result<bool, Error> {
        let loaded = load_files(cert, key, &self.provider)?;
        if loaded.cert == self.current().cert {
            return Ok(false);
        }
        match self.current.write() {
            Ok(mut c) => *c = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(true)
    }
}

impl rustls::server::ResolvesServerCert for Certificate {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load_files(
    cert: &PathBuf,
    key: &PathBuf,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| Error::Read(p.clone(), e));
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate(cert.clone()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| Error::NoKey(key.clone()))?;
    Ok(CertifiedKey::from_der(chain, key_der, provider)?)
}

impl Tls {
    pub fn prepare(source: &TlsSource) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (certified, generated_ca) = match source {
            TlsSource::Files { cert, key } => (load_files(cert, key, &provider)?, None),
            TlsSource::Generate { hosts } => {
                let generated = generate(hosts)?;
                let key = PrivateKeyDer::try_from(generated.key_der)
                    .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
                let certified = CertifiedKey::from_der(vec![generated.cert_der], key, &provider)?;
                (certified, Some(generated.ca_pem))
            }
        };
        let certificate = Arc::new(Certificate {
            current: std::sync::RwLock::new(Arc::new(certified)),
            provider: provider.clone(),
        });
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        Ok(Tls {
            server: Arc::new(server),
            certificate,
            generated_ca,
        })
    }
}

/// Serve rotated certificate files: read them again every [`RELOAD_INTERVAL`].
pub async fn keep_reloading(certificate: Arc<Certificate>, cert: PathBuf, key: PathBuf) {
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        match certificate.reload(&cert, &key) {
            Ok(true) => info!(cert = %cert.display(), "serving the renewed webhook certificate"),
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, "reading the webhook certificate failed; serving the previous one")
            }
        }
    }
}

struct Generated {
    ca_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// A fresh CA, and a serving certificate it signs for `hosts` (IP addresses become IP SANs).
fn generate(hosts: &[String]) -> Result<Generated, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    if hosts.is_empty() {
        return Err(Error::NoHosts);
    }
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "accord-operator webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let dns: Vec<String> = hosts
        .iter()
        .filter(|h| h.parse::<IpAddr>().is_err())
        .cloned()
        .collect();
    let mut serving = CertificateParams::new(dns)?;
    serving.subject_alt_names.extend(
        hosts
            .iter()
            .filter_map(|h| h.parse::<IpAddr>().ok())
            .map(SanType::IpAddress),
    );
    serving
        .distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = serving.signed_by(&key, &ca)?;
    Ok(Generated {
        ca_pem: ca.pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    })
}

/// A TCP listener whose connections complete a TLS handshake (concurrently, with a timeout)
/// before axum sees them.
struct TlsListener {
    connections: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(c) => c,
            // The accept loop only ends with the process.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serve the webhooks over TLS on `listener` until the process ends.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, router: axum::Router) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "webhook listener has no address");
            return;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "webhook accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => debug!(%peer, error = %e, "webhook TLS handshake failed"),
                    Err(_) => debug!(%peer, "webhook TLS handshake timed out"),
                }
            });
        }
    });
    info!(addr = %local, "serving webhooks {CONVERT_PATH} and {VALIDATE_PATH} over HTTPS");
    let listener = TlsListener {
        connections: rx,
        local,
    };
    if let Err(e) = axum::serve(listener, router).await {
        warn!(error = %e, "webhook server stopped");
    }
}
