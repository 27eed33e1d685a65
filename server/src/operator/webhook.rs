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

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accord_policy::Origin;
use accord_policy::diagnostic::Diagnostic;
use accord_policy::intents::{self, convert};
use axum::Json;
use axum::extract::State as AxumState;
use axum::routing::post;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::k8s::{CLIENT_INTENTS_CRD, CONVERT_PATH, VALIDATE_PATH, VALIDATING_WEBHOOK};

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

// ---- HTTP ----

/// The webhook routes. `client` reads sibling ClientIntents for the duplicate check.
pub fn router(client: Client) -> axum::Router {
    axum::Router::new()
        .route(
            CONVERT_PATH,
            post(|Json(review): Json<Value>| async move { Json(review_conversion(&review)) }),
        )
        .route(VALIDATE_PATH, post(validate))
        .with_state(client)
}

async fn validate(AxumState(client): AxumState<Client>, Json(review): Json<Value>) -> Json<Value> {
    let namespace = review
        .pointer("/request/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    // Others in the namespace, in the storage version (reading it needs no conversion).
    let api = Api::<DynamicObject>::namespaced_with(
        client,
        &namespace,
        &crate::k8s::client_intents_resource(),
    );
    let siblings = match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect(),
        Err(e) => {
            // The operator reports duplicates on the status too; a failed list must not block
            // every write.
            warn!(ns = %namespace, error = %e, "listing ClientIntents for the duplicate check failed");
            Vec::new()
        }
    };
    Json(review_admission(&review, &siblings))
}

/// Answer a `ConversionReview`: every object converted to `desiredAPIVersion`, or a failure
/// naming the first object that could not be.
pub fn review_conversion(review: &Value) -> Value {
    let request = &review["request"];
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let objects = request["objects"].as_array().cloned().unwrap_or_default();
    let converted: Result<Vec<Value>, String> = objects
        .iter()
        .map(|o| {
            convert::convert(o, desired).map_err(|e| {
                let name = o.pointer("/metadata/name").and_then(Value::as_str);
                format!("ClientIntents {}: {e}", name.unwrap_or("?"))
            })
        })
        .collect();
    let response = match converted {
        Ok(objects) => json!({
            "uid": uid,
            "convertedObjects": objects,
            "result": {"status": "Success"},
        }),
        Err(message) => {
            warn!(%message, "conversion failed");
            json!({
                "uid": uid,
                "convertedObjects": [],
                "result": {"status": "Failure", "message": message},
            })
        }
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response,
    })
}

/// Answer an `AdmissionReview` for ClientIntents: deny what upstream rejects (see
/// `accord_policy::intents`) and a second ClientIntents for the same workload, naming the field.
/// `siblings` are the ClientIntents of the namespace (any version).
pub fn review_admission(review: &Value, siblings: &[Value]) -> Value {
    let request = &review["request"];
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    let problems = admission_problems(request, siblings);
    let response = if problems.is_empty() {
        json!({"uid": uid, "allowed": true})
    } else {
        let message = problems.join("; ");
        debug!(%message, "denied ClientIntents");
        json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 422, "reason": "Invalid", "message": message},
        })
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

fn admission_problems(request: &Value, siblings: &[Value]) -> Vec<String> {
    let object = &request["object"];
    if request["operation"] == "DELETE" || !object.is_object() {
        return Vec::new();
    }
    // Objects being deleted must be able to lose their finalizers; an update that leaves the
    // spec alone (finalizers, labels) is allowed even for intents that predate validation.
    if object.pointer("/metadata/deletionTimestamp").is_some()
        || (request["operation"] == "UPDATE" && request["oldObject"]["spec"] == object["spec"])
    {
        return Vec::new();
    }
    let mut diags = Vec::new();
    let parsed = intents::parse(&Origin::default(), object, &mut diags);
    let mut problems: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d: &Diagnostic| format!("{}: {}", d.field, d.message))
        .collect();
    let Some(parsed) = parsed else {
        return problems;
    };
    let workload_field = if object["spec"].get("service").is_some() {
        "spec.service.name"
    } else {
        "spec.workload.name"
    };
    for other in siblings {
        if other.pointer("/metadata/name") == object.pointer("/metadata/name")
            || other.pointer("/metadata/deletionTimestamp").is_some()
        {
            continue;
        }
        let Some(o) = intents::parse(&Origin::default(), other, &mut Vec::new()) else {
            continue;
        };
        if o.workload == parsed.workload {
            problems.push(format!(
                "{workload_field}: ClientIntents {} already declares the calls of workload {:?}{}; \
                 a workload has at most one ClientIntents",
                o.name,
                parsed.workload.name,
                parsed
                    .workload
                    .kind
                    .as_deref()
                    .map(|k| format!(" (kind {k})"))
                    .unwrap_or_default(),
            ));
        }
    }
    problems
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

// ---- CA bundles ----

/// The PEM certificates of a bundle, each normalized to end with a newline.
fn pem_blocks(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter_map(|b| {
            let start = b.find("-----BEGIN CERTIFICATE-----")?;
            b.ends_with(END).then(|| format!("{}\n", &b[start..]))
        })
        .collect()
}

/// `ca` first, then the most recent others of `current`: a bundle that trusts every replica.
pub fn merged_bundle(current: &[u8], ca: &str) -> Vec<u8> {
    let ours = pem_blocks(ca);
    let mut out = ours.clone();
    for block in pem_blocks(&String::from_utf8_lossy(current)) {
        if out.len() >= MAX_BUNDLED_CAS.max(ours.len()) {
            break;
        }
        if !out.contains(&block) {
            out.push(block);
        }
    }
    out.concat().into_bytes()
}

/// The client configuration a webhook should have: `caBundle` (when Accord generated the CA)
/// and `url` (when given), as a JSON merge patch of `clientConfig`, or `None` when `current`
/// already has it.
fn client_config_patch(
    current: Option<&Value>,
    ca: Option<&str>,
    url: Option<&str>,
) -> Option<Value> {
    let current = current.cloned().unwrap_or(json!({}));
    let mut patch = serde_json::Map::new();
    if let Some(ca) = ca {
        let have: Vec<u8> = current
            .get("caBundle")
            .cloned()
            .and_then(|b| serde_json::from_value::<ByteString>(b).ok())
            .map(|b| b.0)
            .unwrap_or_default();
        if !pem_blocks(&String::from_utf8_lossy(&have)).contains(&pem_blocks(ca)[0]) {
            let bundle = ByteString(merged_bundle(&have, ca));
            patch.insert(
                "caBundle".into(),
                serde_json::to_value(bundle).unwrap_or_default(),
            );
        }
    }
    if let Some(url) = url
        && (current.get("url").and_then(Value::as_str) != Some(url)
            || current.get("service").is_some())
    {
        patch.insert("url".into(), json!(url));
        patch.insert("service".into(), Value::Null);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Keep this replica's CA (and `url`) in the conversion webhook of the ClientIntents CRD and in
/// the ValidatingWebhookConfiguration, checking every [`INJECT_INTERVAL`]. Runs until the
/// process ends; a missing object or a conflict is retried.
pub async fn keep_injected(client: Client, ca: Option<String>, base_url: Option<String>) {
    if ca.is_none() && base_url.is_none() {
        return;
    }
    let base = base_url.map(|u| u.trim_end_matches('/').to_string());
    let convert_url = base.as_ref().map(|b| format!("{b}{CONVERT_PATH}"));
    let validate_url = base.as_ref().map(|b| format!("{b}{VALIDATE_PATH}"));
    let mut interval = Duration::from_secs(1);
    loop {
        let crd = inject_crd(&client, ca.as_deref(), convert_url.as_deref()).await;
        let vwc = inject_validating(&client, ca.as_deref(), validate_url.as_deref()).await;
        for (what, r) in [("CRD conversion", &crd), ("validating webhook", &vwc)] {
            if let Err(e) = r {
                warn!(error = %e, "keeping the {what} CA bundle failed; retrying");
            }
        }
        // Retry soon until both are in place, then only check now and then.
        interval = if crd.is_ok() && vwc.is_ok() {
            INJECT_INTERVAL
        } else {
            (interval * 2).min(INJECT_INTERVAL)
        };
        tokio::time::sleep(interval).await;
    }
}

async fn inject_crd(client: &Client, ca: Option<&str>, url: Option<&str>) -> kube::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api.get(CLIENT_INTENTS_CRD).await?;
    let current = crd
        .spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| serde_json::to_value(c).ok());
    let Some(patch) = client_config_patch(current.as_ref(), ca, url) else {
        return Ok(());
    };
    // Guarded by the resourceVersion: another replica's CA added meanwhile is not lost.
    let body = json!({
        "metadata": {"resourceVersion": crd.metadata.resource_version},
        "spec": {"conversion": {
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": patch},
        }},
    });
    api.patch(
        CLIENT_INTENTS_CRD,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await?;
    info!("CA bundle of the ClientIntents conversion webhook updated");
    Ok(())
}

async fn inject_validating(
    client: &Client,
    ca: Option<&str>,
    url: Option<&str>,
) -> kube::Result<()> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = api.get(VALIDATING_WEBHOOK).await?;
    let mut webhooks: Vec<Value> = vwc
        .webhooks
        .iter()
        .flatten()
        .filter_map(|w| serde_json::to_value(w).ok())
        .collect();
    let mut changed = false;
    for w in &mut webhooks {
        if let Some(patch) = client_config_patch(w.get("clientConfig"), ca, url) {
            let config = w.get_mut("clientConfig").and_then(Value::as_object_mut);
            if let (Some(config), Value::Object(patch)) = (config, patch) {
                for (k, v) in patch {
                    if v.is_null() {
                        config.remove(&k);
                    } else {
                        config.insert(k, v);
                    }
                }
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(());
    }
    // A merge patch replaces the list as a whole; the resourceVersion guards it.
    let body = json!({
        "metadata": {"resourceVersion": vwc.metadata.resource_version},
        "webhooks": webhooks,
    });
    api.patch(
        VALIDATING_WEBHOOK,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await?;
    info!("CA bundle of the validating webhook updated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(desired: &str, objects: Value) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": "705ab4f5", "desiredAPIVersion": desired, "objects": objects},
        })
    }

    #[test]
    fn conversion_review_answers_with_the_uid_and_converted_objects() {
        let r = review_conversion(&review(
            "k8s.otterize.com/v2beta1",
            json!([{
                "apiVersion": "k8s.otterize.com/v1alpha2", "kind": "ClientIntents",
                "metadata": {"name": "client-intents", "namespace": "ns"},
                "spec": {"service": {"name": "client"}, "calls": [{"name": "server"}]},
            }]),
        ));
        assert_eq!(r["kind"], "ConversionReview");
        assert_eq!(r["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(r["response"]["uid"], "705ab4f5");
        assert_eq!(r["response"]["result"]["status"], "Success");
        assert_eq!(
            r["response"]["convertedObjects"][0]["spec"],
            json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server"}}]})
        );
        assert_eq!(
            r["response"]["convertedObjects"][0]["apiVersion"],
            "k8s.otterize.com/v2beta1"
        );
    }

    #[test]
    fn conversion_review_fails_for_an_unknown_version_naming_the_object() {
        let r = review_conversion(&review(
            "k8s.otterize.com/v9",
            json!([{"apiVersion": "k8s.otterize.com/v2beta1", "metadata": {"name": "x"}, "spec": {}}]),
        ));
        assert_eq!(r["response"]["uid"], "705ab4f5");
        assert_eq!(r["response"]["result"]["status"], "Failure");
        let message = r["response"]["result"]["message"].as_str().unwrap();
        assert!(message.contains("ClientIntents x"), "{message}");
        assert_eq!(r["response"]["convertedObjects"], json!([]));
    }

    fn admission(operation: &str, object: Value, old: Value) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u", "operation": operation, "namespace": "ns", "object": object, "oldObject": old},
        })
    }

    fn intents(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents", "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    }

    #[test]
    fn admission_denies_a_target_with_two_keys_naming_the_field() {
        let bad = intents(
            "c",
            json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "a"}, "service": {"name": "b"}}]}),
        );
        let r = review_admission(&admission("CREATE", bad, Value::Null), &[]);
        assert_eq!(r["kind"], "AdmissionReview");
        assert_eq!(r["response"]["uid"], "u");
        assert_eq!(r["response"]["allowed"], false);
        let message = r["response"]["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("spec.targets[0]:"), "{message}");
    }

    #[test]
    fn admission_denies_each_upstream_rejection_by_field() {
        for (spec, field) in [
            (json!({"workload": {"name": "a.b"}}), "spec.workload.name"),
            (
                json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "s", "http": [{"methods": ["GET"]}]}}]}),
                "spec.targets[0].kubernetes.http[0].path",
            ),
            (
                json!({"workload": {"name": "c"}, "targets": [{"internet": {"ports": [443]}}]}),
                "spec.targets[0].internet",
            ),
        ] {
            let r = review_admission(&admission("CREATE", intents("c", spec), Value::Null), &[]);
            assert_eq!(r["response"]["allowed"], false, "{field}");
            let message = r["response"]["status"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{message}");
        }
    }

    #[test]
    fn admission_denies_a_second_intents_for_the_same_workload() {
        let spec = json!({"workload": {"name": "c"}, "targets": [{"kubernetes": {"name": "s"}}]});
        let existing = intents("first", spec.clone());
        let r = review_admission(
            &admission("CREATE", intents("second", spec.clone()), Value::Null),
            std::slice::from_ref(&existing),
        );
        assert_eq!(r["response"]["allowed"], false);
        let message = r["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("spec.workload.name:") && message.contains("first"),
            "{message}"
        );
        // The object itself, updated, is no duplicate; another kind is another workload.
        let r = review_admission(
            &admission("UPDATE", existing.clone(), Value::Null),
            std::slice::from_ref(&existing),
        );
        assert_eq!(r["response"]["allowed"], true);
        let other_kind = intents(
            "third",
            json!({"workload": {"name": "c", "kind": "StatefulSet"}}),
        );
        let r = review_admission(&admission("CREATE", other_kind, Value::Null), &[existing]);
        assert_eq!(r["response"]["allowed"], true);
    }

    #[test]
    fn admission_allows_valid_intents_deletions_and_spec_preserving_updates() {
        let good = intents(
            "c",
            json!({"workload": {"name": "c"}, "targets": [{"service": {"name": "s"}}]}),
        );
        assert_eq!(
            review_admission(&admission("CREATE", good, Value::Null), &[])["response"]["allowed"],
            true
        );
        let bad = intents("c", json!({"workload": {"name": "a.b"}}));
        assert_eq!(
            review_admission(&admission("DELETE", Value::Null, bad.clone()), &[])["response"]["allowed"],
            true
        );
        let mut with_finalizer = bad.clone();
        with_finalizer["metadata"]["finalizers"] = json!(["x"]);
        assert_eq!(
            review_admission(&admission("UPDATE", with_finalizer, bad.clone()), &[])["response"]["allowed"],
            true
        );
    }

    #[test]
    fn admission_reads_v1_objects_and_names_their_fields() {
        let v1 = json!({"apiVersion": "k8s.otterize.com/v1alpha2", "kind": "ClientIntents",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"service": {"name": "c"}, "calls": [{"name": "s", "type": "carrier-pigeon"}]}});
        let r = review_admission(&admission("CREATE", v1, Value::Null), &[]);
        assert_eq!(r["response"]["allowed"], false);
        let message = r["response"]["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("spec.calls[0].type:"), "{message}");
        // HTTP resources need a path in v1 too, under each version's own field name.
        for (version, key) in [("v1alpha2", "resources"), ("v1beta1", "HTTPResources")] {
            let v1 = json!({"apiVersion": format!("k8s.otterize.com/{version}"), "kind": "ClientIntents",
                "metadata": {"name": "c", "namespace": "ns"},
                "spec": {"service": {"name": "c"}, "calls": [{"name": "s", key: [{"methods": ["GET"]}]}]}});
            let r = review_admission(&admission("CREATE", v1, Value::Null), &[]);
            let message = r["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(
                message.starts_with(&format!("spec.calls[0].{key}[0].path:")),
                "{version}: {message}"
            );
        }
    }

    #[test]
    fn bundles_keep_our_ca_first_and_a_few_others() {
        let ca = |n: u8| format!("-----BEGIN CERTIFICATE-----\nQ{n}\n-----END CERTIFICATE-----\n");
        let current: String = (1..=6).map(ca).collect();
        let merged = String::from_utf8(merged_bundle(current.as_bytes(), &ca(9))).unwrap();
        assert_eq!(pem_blocks(&merged), vec![ca(9), ca(1), ca(2), ca(3)]);
        // Already present: no patch; absent: a patch with the merged bundle.
        let have =
            json!({"caBundle": serde_json::to_value(ByteString(merged.into_bytes())).unwrap()});
        assert_eq!(client_config_patch(Some(&have), Some(&ca(9)), None), None);
        let patch = client_config_patch(
            Some(&have),
            Some(&ca(7)),
            Some("https://127.0.0.1:9443/convert"),
        )
        .expect("a patch");
        assert_eq!(patch["url"], "https://127.0.0.1:9443/convert");
        assert_eq!(patch["service"], Value::Null);
        let bundle: ByteString = serde_json::from_value(patch["caBundle"].clone()).unwrap();
        assert_eq!(pem_blocks(&String::from_utf8(bundle.0).unwrap())[0], ca(7));
    }

    #[test]
    fn renewed_certificate_files_are_served_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let write = |name: &str| {
            let k = rcgen::KeyPair::generate().unwrap();
            let c = rcgen::CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .self_signed(&k)
                .unwrap();
            std::fs::write(&cert, c.pem()).unwrap();
            std::fs::write(&key, k.serialize_pem()).unwrap();
        };
        write("first.example");
        let tls = Tls::prepare(&TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .expect("loads the files");
        assert!(tls.generated_ca.is_none());
        let before = tls.certificate.current();
        assert!(
            !tls.certificate.reload(&cert, &key).unwrap(),
            "unchanged files"
        );
        write("second.example");
        assert!(tls.certificate.reload(&cert, &key).unwrap());
        assert_ne!(tls.certificate.current().cert, before.cert);
        // A broken file keeps the last good certificate.
        std::fs::write(&key, "not a key").unwrap();
        assert!(matches!(
            tls.certificate.reload(&cert, &key),
            Err(Error::NoKey(_))
        ));
        assert_ne!(tls.certificate.current().cert, before.cert);
    }

    #[tokio::test]
    async fn generated_certificate_serves_conversion_over_tls_trusted_by_its_ca() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tls = Tls::prepare(&TlsSource::Generate {
            hosts: vec![
                "accord-operator-webhook.accord-system.svc".into(),
                "127.0.0.1".into(),
            ],
        })
        .expect("generated");
        let ca = tls.generated_ca.clone().expect("a CA");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Conversion needs no API server; the client only has to exist for the router.
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        tokio::spawn(serve(listener, tls.server.clone(), router(client)));

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = connector
            .connect(name, tcp)
            .await
            .expect("the handshake verifies against the generated CA");
        let body = review(
            "k8s.otterize.com/v1alpha2",
            json!([{"apiVersion": "k8s.otterize.com/v2alpha1", "kind": "ClientIntents",
                "metadata": {"name": "c", "namespace": "ns"},
                "spec": {"workload": {"name": "c"}, "targets": [{"service": {"name": "s"}}]}}]),
        )
        .to_string();
        let request = format!(
            "POST {CONVERT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let json: Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(
            json["response"]["convertedObjects"][0]["spec"],
            json!({"service": {"name": "c"}, "calls": [{"name": "svc:s"}]})
        );
        assert!(matches!(
            Tls::prepare(&TlsSource::Generate { hosts: vec![] }),
            Err(Error::NoHosts)
        ));
    }
}
