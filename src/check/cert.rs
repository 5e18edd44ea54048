//! The certificate probe: PEM from a secret, a CSR or a node file, judged as x509 data.

use std::path::Path;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::{Finding, api_error, client_or_finding};
use crate::backend::Backend;
use crate::scenario::{CertSource, CertificateProbe};

/// What the certificate says, in the terms a probe asks about.
#[derive(Debug, PartialEq)]
pub struct CertFacts {
    pub common_name: Option<String>,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub usages: Vec<String>,
    pub signed_by_ca: bool,
    pub valid_hours_left: i64,
    pub public_key: Result<super::keys::PublicKey, String>,
}

/// The first CERTIFICATE block of a PEM text (other blocks before it are skipped, as
/// `tls.X509KeyPair` does); the leaf of a chain.
fn first_certificate(pem_text: &[u8]) -> Result<x509_parser::pem::Pem, String> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem_text) {
        match block {
            Ok(block) if block.label == "CERTIFICATE" => return Ok(block),
            Ok(_) => continue,
            Err(e) => return Err(format!("not a PEM certificate: {e}")),
        }
    }
    Err("not a PEM certificate: no CERTIFICATE block".into())
}

pub fn facts(cert_pem: &[u8], ca_pem: &[u8]) -> Result<CertFacts, String> {
    let cert_pem = first_certificate(cert_pem)?;
    let cert = cert_pem.parse_x509().map_err(|e| format!("not an x509 certificate: {e}"))?;
    let ca_pem = first_certificate(ca_pem).map_err(|e| format!("the CA: {e}"))?;
    let ca = ca_pem.parse_x509().map_err(|e| format!("the CA is not x509: {e}"))?;
    let subject = cert.subject();
    let mut facts = CertFacts {
        common_name: subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(String::from),
        organizations: subject.iter_organization().filter_map(|o| o.as_str().ok()).map(String::from).collect(),
        signed_by_ca: cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok(),
        valid_hours_left: (cert.validity().not_after.timestamp() - chrono::Utc::now().timestamp()) / 3600,
        public_key: super::keys::certificate_key(
            cert.public_key().algorithm.algorithm.as_bytes(),
            cert.public_key().algorithm.parameters.as_ref().map(|p| p.data),
            &cert.public_key().subject_public_key.data,
        ),
        dns_names: Vec::new(),
        usages: Vec::new(),
    };
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => facts.dns_names.push(dns.to_string()),
                        GeneralName::IPAddress(ip) if ip.len() == 4 => {
                            facts.dns_names.push(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]))
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                if eku.client_auth {
                    facts.usages.push("client-auth".into());
                }
                if eku.server_auth {
                    facts.usages.push("server-auth".into());
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

pub fn judge(facts: &CertFacts, probe: &CertificateProbe, key_pem: Option<&str>) -> Finding {
    let mut wants = vec![format!("signed by {}", probe.ca)];
    let mut problems = Vec::new();
    if !facts.signed_by_ca {
        problems.push(format!("not signed by {}", probe.ca));
    }
    if let Some(cn) = &probe.common_name {
        wants.push(format!("CN={cn}"));
        if facts.common_name.as_deref() != Some(cn.as_str()) {
            problems.push(format!("CN is {}", facts.common_name.as_deref().unwrap_or("missing")));
        }
    }
    for org in &probe.organizations {
        wants.push(format!("O={org}"));
        if !facts.organizations.contains(org) {
            problems.push(format!("O is [{}]", facts.organizations.join(", ")));
        }
    }
    for dns in &probe.dns_names {
        wants.push(format!("SAN {dns}"));
        if !facts.dns_names.contains(dns) {
            problems.push(format!("SANs are [{}]", facts.dns_names.join(", ")));
        }
    }
    for usage in &probe.usages {
        wants.push(format!("usage {usage}"));
        if !facts.usages.contains(usage) {
            problems.push(format!("extended usages are [{}]", facts.usages.join(", ")));
        }
    }
    if let Some(hours) = probe.min_valid_hours {
        wants.push(format!("valid for {hours}h more"));
        if facts.valid_hours_left < hours as i64 {
            problems.push(format!("expires in {}h", facts.valid_hours_left));
        }
    }
    if probe.key_matches {
        wants.push("tls.key matching the certificate".into());
        match (key_pem.map(|k| super::keys::public_key_of(k.as_bytes())), &facts.public_key) {
            (Some(Ok(key)), Ok(cert_key)) if key == *cert_key => {}
            (Some(Ok(_)), Ok(_)) => problems.push("tls.key does not belong to the certificate".into()),
            (Some(Err(e)), _) => problems.push(format!("tls.key does not parse: {e}")),
            (Some(Ok(_)), Err(e)) => problems.push(e.clone()),
            (None, _) => problems.push("no tls.key beside the certificate".into()),
        }
    }
    problems.dedup();
    let summary = format!(
        "CN={} O=[{}] SANs=[{}] usages=[{}]",
        facts.common_name.as_deref().unwrap_or("-"),
        facts.organizations.join(","),
        facts.dns_names.join(","),
        facts.usages.join(",")
    );
    if problems.is_empty() {
        Finding::pass(summary, wants.join(", "))
    } else {
        Finding::fail(format!("{}; {summary}", problems.join("; ")), wants.join(", "))
    }
}

pub async fn certificate(probe: &CertificateProbe, backend: &dyn Backend) -> Finding {
    let node = backend.control_plane();
    let ca = match backend.read_file(&node, Path::new(&probe.ca)).await {
        Ok(Some(ca)) => ca,
        Ok(None) => return Finding::error(format!("{} does not exist on {node}", probe.ca), "the cluster CA"),
        Err(e) => return Finding::error(format!("reading {}: {e}", probe.ca), "the cluster CA"),
    };
    let (cert, key, place) = match &probe.source {
        CertSource::NodeFile(path) => match backend.read_file(&node, Path::new(path)).await {
            Ok(Some(pem)) => (pem, None, format!("{node}:{path}")),
            Ok(None) => return Finding::fail(format!("{path} does not exist on {node}"), "a certificate file"),
            Err(e) => return Finding::error(format!("reading {path}: {e}"), "a certificate file"),
        },
        CertSource::Secret(secret) => {
            let client = match client_or_finding(backend).await {
                Ok(c) => c,
                Err(f) => return f,
            };
            let place = format!("secret {}/{}", secret.namespace, secret.name);
            let found = match Api::<Secret>::namespaced(client, &secret.namespace).get_opt(&secret.name).await {
                Ok(found) => found,
                Err(e) => return api_error(e, backend, &format!("reading {place}")).await,
            };
            let Some(found) = found else {
                return Finding::fail(format!("{place} does not exist"), format!("{place} with {}", secret.key));
            };
            let data = found.data.unwrap_or_default();
            let Some(cert) = data.get(&secret.key) else {
                return Finding::fail(
                    format!("{place} has no key {}", secret.key),
                    format!("{place} with {}", secret.key),
                );
            };
            let key = data.get("tls.key").map(|k| String::from_utf8_lossy(&k.0).into_owned());
            (cert.0.clone(), key, place)
        }
        CertSource::Csr(name) => {
            let client = match client_or_finding(backend).await {
                Ok(c) => c,
                Err(f) => return f,
            };
            let place = format!("CSR {name}");
            let found = match Api::<CertificateSigningRequest>::all(client).get_opt(name).await {
                Ok(found) => found,
                Err(e) => return api_error(e, backend, &format!("reading {place}")).await,
            };
            let Some(csr) = found else {
                return Finding::fail(format!("{place} does not exist"), format!("{place} approved and issued"));
            };
            match csr.status.and_then(|s| s.certificate) {
                Some(cert) => (cert.0, None, place),
                None => {
                    return Finding::fail(
                        format!("{place} has no issued certificate (approved?)"),
                        format!("{place} approved and issued"),
                    );
                }
            }
        }
    };
    match facts(&cert, &ca) {
        Ok(facts) => {
            let finding = judge(&facts, probe, key.as_deref());
            Finding { observed: format!("{place}: {}", finding.observed), ..finding }
        }
        Err(e) => Finding::fail(format!("{place}: {e}"), "a PEM certificate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

    fn ca() -> (rcgen::Certificate, rcgen::Issuer<'static, KeyPair>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "kubernetes");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(params, key))
    }

    fn leaf(issuer: &rcgen::Issuer<'static, KeyPair>, cn: &str) -> (String, KeyPair) {
        let mut params = CertificateParams::new(vec!["api.demo.svc".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, issuer).unwrap().pem(), key)
    }

    fn probe() -> CertificateProbe {
        CertificateProbe {
            source: CertSource::NodeFile("/x".into()),
            ca: "/etc/kubernetes/pki/ca.crt".into(),
            common_name: Some("api".into()),
            organizations: vec![],
            dns_names: vec!["api.demo.svc".into()],
            usages: vec!["server-auth".into()],
            min_valid_hours: Some(1),
            key_matches: true,
        }
    }

    #[test]
    fn a_certificate_from_the_ca_with_the_right_names_passes() {
        let (ca_cert, issuer) = ca();
        let (pem, key) = leaf(&issuer, "api");
        let facts = facts(pem.as_bytes(), ca_cert.pem().as_bytes()).unwrap();
        assert!(facts.signed_by_ca);
        assert_eq!(judge(&facts, &probe(), Some(&key.serialize_pem())).outcome, Outcome::Pass);
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/", $name))
        };
    }

    fn key_verdict(cert: &str, key: &str) -> Finding {
        // (self-signed; x509-parser cannot verify every curve's signature, and only the key counts here)
        let facts = CertFacts { signed_by_ca: true, ..facts(cert.as_bytes(), cert.as_bytes()).unwrap() };
        let probe =
            CertificateProbe { common_name: None, dns_names: vec![], usages: vec![], min_valid_hours: None, ..probe() };
        judge(&facts, &probe, Some(key))
    }

    /// Every key shape Go's tls.X509KeyPair (and so `kubectl create secret tls`) accepts.
    #[test]
    fn keys_match_in_every_format_kubectl_accepts() {
        let rsa = fixture!("rsa-pkcs1.crt");
        let p256 = fixture!("ec-p256-sec1.crt");
        let relabelled = fixture!("rsa-pkcs8.key").replace("PRIVATE KEY", "RSA PRIVATE KEY");
        let key_then_chain = format!("{}{}", fixture!("rsa-pkcs1.key"), rsa);
        let cases: Vec<(&str, &str, String)> = vec![
            ("PKCS#1 RSA", rsa, fixture!("rsa-pkcs1.key").into()),
            ("PKCS#8 RSA", rsa, fixture!("rsa-pkcs8.key").into()),
            ("PKCS#8 under an RSA PRIVATE KEY label", rsa, relabelled),
            ("a key followed by certificates", rsa, key_then_chain),
            ("SEC1 P-256", p256, fixture!("ec-p256-sec1.key").into()),
            ("EC PARAMETERS then SEC1 P-256", p256, fixture!("ec-p256-sec1-with-params.key").into()),
            ("PKCS#8 P-256", p256, fixture!("ec-p256-pkcs8.key").into()),
            ("SEC1 P-384", fixture!("ec-p384-sec1.crt"), fixture!("ec-p384-sec1.key").into()),
            ("SEC1 P-521", fixture!("ec-p521-sec1.crt"), fixture!("ec-p521-sec1.key").into()),
            ("PKCS#8 Ed25519", fixture!("ed25519-pkcs8.crt"), fixture!("ed25519-pkcs8.key").into()),
        ];
        for (what, cert, key) in cases {
            let verdict = key_verdict(cert, &key);
            assert_eq!(verdict.outcome, Outcome::Pass, "{what}: {}", verdict.observed);
        }
        // The leaf is the first certificate of a chain, whatever comes before it.
        let chain = format!("{}{}", fixture!("rsa-pkcs1.crt"), fixture!("ec-p256-sec1.crt"));
        assert_eq!(key_verdict(&chain, fixture!("rsa-pkcs1.key")).outcome, Outcome::Pass);
        // rcgen's own PKCS#8 output.
        let (_, issuer) = ca();
        let (pem, key) = leaf(&issuer, "api");
        assert_eq!(key_verdict(&pem, &key.serialize_pem()).outcome, Outcome::Pass);
    }

    #[test]
    fn keys_of_another_certificate_or_unreadable_keys_fail() {
        let rsa = fixture!("rsa-pkcs1.crt");
        let p256 = fixture!("ec-p256-sec1.crt");
        let cases: Vec<(&str, &str, &str, &str)> = vec![
            ("another RSA key", rsa, fixture!("other-rsa.key"), "does not belong"),
            ("another EC key", p256, fixture!("other-ec.key"), "does not belong"),
            ("an EC key for an RSA certificate", rsa, fixture!("ec-p256-sec1.key"), "does not belong"),
            ("the P-384 key for the P-256 certificate", p256, fixture!("ec-p384-sec1.key"), "does not belong"),
            ("an encrypted key", rsa, fixture!("rsa-encrypted.key"), "is not an unencrypted"),
            ("a certificate instead of a key", rsa, rsa, "no PRIVATE KEY block (found CERTIFICATE)"),
            (
                "only EC parameters",
                p256,
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
                "no PRIVATE KEY block",
            ),
            ("no PEM", rsa, "not a key", "no PEM block"),
        ];
        for (what, cert, key, says) in cases {
            let verdict = key_verdict(cert, key);
            assert_eq!(verdict.outcome, Outcome::Fail, "{what}: {}", verdict.observed);
            assert!(verdict.observed.contains(says), "{what}: {}", verdict.observed);
        }
        // A SEC1 key whose public part was swapped for the certificate's is caught: the public
        // part is derived from the private one, not believed.
        use base64::Engine;
        let der = |pem: &str| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD.decode(body).unwrap()
        };
        let own = der(fixture!("ec-p256-sec1.key"));
        let mut forged = der(fixture!("other-ec.key"));
        // (the uncompressed point is the last 65 bytes of both)
        let at = forged.len() - 65;
        forged[at..].copy_from_slice(&own[own.len() - 65..]);
        let forged = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(forged)
        );
        let verdict = key_verdict(p256, &forged);
        assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.observed);
        assert!(verdict.observed.contains("does not belong to its private part"), "{}", verdict.observed);
    }

    #[test]
    fn near_misses_fail_and_say_why() {
        let (ca_cert, issuer) = ca();
        let (other_ca, other_issuer) = ca();
        let (pem, key) = leaf(&other_issuer, "api");
        let f = facts(pem.as_bytes(), ca_cert.pem().as_bytes()).unwrap();
        let verdict = judge(&f, &probe(), Some(&key.serialize_pem()));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.observed.contains("not signed by"), "{}", verdict.observed);
        let _ = other_ca;
        let (pem, _) = leaf(&issuer, "wrong");
        let f = facts(pem.as_bytes(), ca_cert.pem().as_bytes()).unwrap();
        let stranger = KeyPair::generate().unwrap();
        let verdict = judge(&f, &probe(), Some(&stranger.serialize_pem()));
        assert!(verdict.observed.contains("CN is wrong"), "{}", verdict.observed);
        assert!(verdict.observed.contains("does not belong"), "{}", verdict.observed);
    }
}
