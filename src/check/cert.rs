//! The certificate probe: PEM from a secret, a CSR or a node file, judged as x509 data.

use std::path::Path;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::parse_x509_pem;

use super::{Finding, api_error, client_or_finding};
use crate::backend::Backend;
use crate::scenario::{CertSource, CertificateProbe};

/// What the certificate says, in the terms a probe asks about.
#[derive(Debug, Default, PartialEq)]
pub struct CertFacts {
    pub common_name: Option<String>,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub usages: Vec<String>,
    pub signed_by_ca: bool,
    pub valid_hours_left: i64,
    pub public_key: Vec<u8>,
}

pub fn facts(cert_pem: &[u8], ca_pem: &[u8]) -> Result<CertFacts, String> {
    let (_, cert_pem) = parse_x509_pem(cert_pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = cert_pem.parse_x509().map_err(|e| format!("not an x509 certificate: {e}"))?;
    let (_, ca_pem) = parse_x509_pem(ca_pem).map_err(|e| format!("the CA is not PEM: {e}"))?;
    let ca = ca_pem.parse_x509().map_err(|e| format!("the CA is not x509: {e}"))?;
    let subject = cert.subject();
    let mut facts = CertFacts {
        common_name: subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(String::from),
        organizations: subject.iter_organization().filter_map(|o| o.as_str().ok()).map(String::from).collect(),
        signed_by_ca: cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok(),
        valid_hours_left: (cert.validity().not_after.timestamp() - chrono::Utc::now().timestamp()) / 3600,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        ..Default::default()
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
        match key_pem.map(rcgen::KeyPair::from_pem) {
            Some(Ok(key)) if key.public_key_raw() == facts.public_key.as_slice() => {}
            Some(Ok(_)) => problems.push("tls.key does not belong to the certificate".into()),
            Some(Err(e)) => problems.push(format!("tls.key does not parse: {e}")),
            None => problems.push("no tls.key beside the certificate".into()),
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
