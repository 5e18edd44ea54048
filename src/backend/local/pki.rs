//! The control plane's PKI, laid out as `kubeadm init` writes `/etc/kubernetes/pki`.
//!
//! Keys are ECDSA P-256 (kubeadm's `encryptionAlgorithm: ECDSA-P256`): rcgen on ring cannot
//! generate RSA keys, and every component accepts EC keys, service-account signing included.

use chrono::{Datelike, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

use super::paths::CONTROL_PLANE;

/// A file to write on a node: absolute node path, contents, permission bits.
#[derive(Debug, Clone)]
pub struct NodeFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl NodeFile {
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        NodeFile { path: path.into(), contents: contents.into(), mode }
    }
}

/// A PEM certificate and its PEM (PKCS#8) key.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

pub struct Ca {
    pub cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

enum Usage {
    Server,
    Client,
    ServerClient,
}

fn validity(params: &mut CertificateParams, years: i32) {
    // A day back so a skewed clock does not make fresh certs "not yet valid".
    let from = Utc::now() - Duration::days(1);
    params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    params.not_after = rcgen::date_time_ymd(from.year() + years, from.month() as u8, from.day().min(28) as u8);
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive DER integer
    SerialNumber::from_slice(&bytes)
}

fn dn(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

impl Ca {
    pub fn new(cn: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(cn, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyCertSign];
        params.serial_number = Some(serial());
        validity(&mut params, 10);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Ca { cert_pem: cert.pem(), key_pem, issuer: Issuer::new(params, key) })
    }

    fn issue(&self, cn: &str, orgs: &[&str], sans: &[&str], usage: Usage) -> anyhow::Result<Pair> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = dn(cn, orgs);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerClient => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        validity(&mut params, 1);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pair { cert: cert.pem(), key: key.serialize_pem() })
    }

    /// A client certificate for a kubeconfig user.
    pub fn client(&self, cn: &str, orgs: &[&str]) -> anyhow::Result<Pair> {
        self.issue(cn, orgs, &[], Usage::Client)
    }

    fn files(&self, base: &str, out: &mut Vec<NodeFile>) {
        out.push(NodeFile::new(format!("{base}.crt"), self.cert_pem.clone(), 0o644));
        out.push(NodeFile::new(format!("{base}.key"), self.key_pem.clone(), 0o600));
    }
}

fn pair_files(base: &str, pair: Pair, out: &mut Vec<NodeFile>) {
    out.push(NodeFile::new(format!("{base}.crt"), pair.cert, 0o644));
    out.push(NodeFile::new(format!("{base}.key"), pair.key, 0o600));
}

pub struct Pki {
    pub ca: Ca,
    pub files: Vec<NodeFile>,
}

/// Everything under the control plane's `/etc/kubernetes/pki`.
pub fn generate() -> anyhow::Result<Pki> {
    const PKI: &str = "/etc/kubernetes/pki";
    let mut files = Vec::new();

    let ca = Ca::new("kubernetes")?;
    ca.files(&format!("{PKI}/ca"), &mut files);
    let apiserver_sans = [
        CONTROL_PLANE,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "10.96.0.1",
        "127.0.0.1",
    ];
    pair_files(
        &format!("{PKI}/apiserver"),
        ca.issue("kube-apiserver", &[], &apiserver_sans, Usage::Server)?,
        &mut files,
    );
    pair_files(
        &format!("{PKI}/apiserver-kubelet-client"),
        ca.issue("kube-apiserver-kubelet-client", &["kubeadm:cluster-admins"], &[], Usage::Client)?,
        &mut files,
    );

    let front = Ca::new("front-proxy-ca")?;
    front.files(&format!("{PKI}/front-proxy-ca"), &mut files);
    pair_files(
        &format!("{PKI}/front-proxy-client"),
        front.issue("front-proxy-client", &[], &[], Usage::Client)?,
        &mut files,
    );

    let sa = KeyPair::generate()?;
    files.push(NodeFile::new(format!("{PKI}/sa.key"), sa.serialize_pem(), 0o600));
    files.push(NodeFile::new(format!("{PKI}/sa.pub"), sa.public_key_pem(), 0o600));

    let etcd = Ca::new("etcd-ca")?;
    etcd.files(&format!("{PKI}/etcd/ca"), &mut files);
    let etcd_sans = [CONTROL_PLANE, "localhost", "127.0.0.1", "::1"];
    pair_files(
        &format!("{PKI}/etcd/server"),
        etcd.issue(CONTROL_PLANE, &[], &etcd_sans, Usage::ServerClient)?,
        &mut files,
    );
    pair_files(
        &format!("{PKI}/etcd/peer"),
        etcd.issue(CONTROL_PLANE, &[], &etcd_sans, Usage::ServerClient)?,
        &mut files,
    );
    pair_files(
        &format!("{PKI}/etcd/healthcheck-client"),
        etcd.issue("kube-etcd-healthcheck-client", &[], &[], Usage::Client)?,
        &mut files,
    );
    pair_files(
        &format!("{PKI}/apiserver-etcd-client"),
        etcd.issue("kube-apiserver-etcd-client", &[], &[], Usage::Client)?,
        &mut files,
    );

    Ok(Pki { ca, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_cert_is_signed_by_ca_with_sans() {
        let pki = generate().unwrap();
        let get = |p: &str| pki.files.iter().find(|f| f.path == p).unwrap().contents.clone();
        let ca_pem = get("/etc/kubernetes/pki/ca.crt");
        let api_pem = get("/etc/kubernetes/pki/apiserver.crt");
        let (_, ca) = x509_parser::pem::parse_x509_pem(&ca_pem).unwrap();
        let (_, api) = x509_parser::pem::parse_x509_pem(&api_pem).unwrap();
        let ca = ca.parse_x509().unwrap();
        let api = api.parse_x509().unwrap();
        api.verify_signature(Some(ca.public_key())).unwrap();
        let sans = api.subject_alternative_name().unwrap().unwrap();
        let text = format!("{:?}", sans.value.general_names);
        assert!(text.contains("kubernetes.default.svc.cluster.local"), "{text}");
        assert!(text.contains("10.96.0.1") || text.contains("[10, 96, 0, 1]"), "{text}");
    }
}
