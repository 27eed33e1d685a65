//! Certificates and keys of a local control plane, generated fresh for every instance.
//!
//! One CA signs the API server's serving certificate and the client certificates of the
//! admin and of kube-controller-manager; the API server trusts client certificates from
//! the same CA. A separate key signs service account tokens.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// The first address of the service range, which the `kubernetes` Service gets.
pub(crate) const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The range for Service cluster IPs; [`KUBERNETES_SERVICE_IP`] is its first address.
pub(crate) const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

/// Paths of the files written by [`Pki::write`].
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub ca_pem: String,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub controller_manager_cert: PathBuf,
    pub controller_manager_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
}

impl Pki {
    /// Generates every certificate and key and writes them as PEM files into `dir`.
    pub(crate) fn write(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = |name: &str| dir.join(name);

        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("accord-tests-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
        let ca_pem = ca.pem();

        let mut serving = CertificateParams::new(vec![
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])?;
        serving.subject_alt_names.extend([
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V4(KUBERNETES_SERVICE_IP)),
        ]);
        serving.distinguished_name = name("kube-apiserver", None);
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate()?;
        let serving_cert = serving.signed_by(&serving_key, &ca)?;

        let client = |common_name: &str, organization: Option<&str>| -> Result<(String, String)> {
            let mut params = CertificateParams::default();
            params.distinguished_name = name(common_name, organization);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        // system:masters is the group that the API server always authorizes fully.
        let (admin_cert, admin_key) = client("accord-tests-admin", Some("system:masters"))?;
        // The bootstrap RBAC policy binds the controller-manager's role to this user name.
        let (cm_cert, cm_key) = client("system:kube-controller-manager", None)?;

        let service_account = KeyPair::generate()?;

        let pki = Pki {
            ca_cert: file("ca.crt"),
            ca_key: file("ca.key"),
            ca_pem,
            serving_cert: file("apiserver.crt"),
            serving_key: file("apiserver.key"),
            admin_cert: file("admin.crt"),
            admin_key: file("admin.key"),
            controller_manager_cert: file("controller-manager.crt"),
            controller_manager_key: file("controller-manager.key"),
            service_account_key: file("service-account.key"),
            service_account_public_key: file("service-account.pub"),
        };
        for (path, contents) in [
            (&pki.ca_cert, pki.ca_pem.as_str()),
            (&pki.ca_key, ca_key_pem.as_str()),
            (&pki.serving_cert, serving_cert.pem().as_str()),
            (&pki.serving_key, serving_key.serialize_pem().as_str()),
            (&pki.admin_cert, admin_cert.as_str()),
            (&pki.admin_key, admin_key.as_str()),
            (&pki.controller_manager_cert, cm_cert.as_str()),
            (&pki.controller_manager_key, cm_key.as_str()),
            (
                &pki.service_account_key,
                service_account.serialize_pem().as_str(),
            ),
            (
                &pki.service_account_public_key,
                service_account.public_key_pem().as_str(),
            ),
        ] {
            std::fs::write(path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(pki)
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name.push(DnType::CommonName, common_name);
    name
}
