//! The issue-certificate step: a key and CSR made here, a CertificateSigningRequest,
//! its approval, and the issued certificate stored as a TLS secret with the cluster CA.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Datelike;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

use super::error::{Context, StepFailure};
use crate::backend::Backend;
use crate::scenario::IssueCertificate;

pub async fn issue(backend: &dyn Backend, spec: &IssueCertificate) -> Result<(), StepFailure> {
    let client = backend.client().await?;
    let algorithm = match spec.key.as_deref().unwrap_or("ecdsa-p256") {
        "ecdsa-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        other => {
            return Err(StepFailure::Unsupported(format!(
                "key type {other} is not supported (ecdsa-p256, ecdsa-p384)"
            )));
        }
    };
    let key = KeyPair::generate_for(algorithm).context("generating the key")?;
    let mut params = CertificateParams::new(spec.dns_names.clone()).context("the DNS names")?;
    params.distinguished_name.push(DnType::CommonName, spec.common_name.clone());
    for org in &spec.organizations {
        params.distinguished_name.push(DnType::OrganizationName, org.clone());
    }
    let request = params.serialize_request(&key).context("making the certificate request")?;
    let pem = request.pem().context("encoding the certificate request")?;

    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta { name: Some(spec.csr.clone()), ..Default::default() },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.into_bytes()),
            signer_name: spec.signer.clone(),
            usages: Some(spec.usages.clone()),
            expiration_seconds: Some(86_400),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &csr).await.context(format!("creating CSR {}", spec.csr))?;
    if !spec.approve {
        return Ok(());
    }
    let mut current = api.get(&spec.csr).await.context(format!("reading CSR {}", spec.csr))?;
    current.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("ckslab".into()),
            message: Some("approved by a ckslab solution".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    api.replace_subresource("approval", &spec.csr, &PostParams::default(), &current)
        .await
        .context(format!("approving CSR {}", spec.csr))?;
    if spec.sign_with_cluster_ca {
        sign_with_cluster_ca(backend, &api, spec).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let certificate = loop {
        let csr = api.get(&spec.csr).await.context(format!("reading CSR {}", spec.csr))?;
        if let Some(cert) = csr.status.and_then(|s| s.certificate) {
            break cert;
        }
        if Instant::now() > deadline {
            return Err(StepFailure::timeout_then(
                format!("CSR {} was not signed", spec.csr),
                60,
                " (is the controller-manager's signer running?)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let Some((namespace, name)) = spec.secret.as_deref().and_then(|s| s.split_once('/')) else { return Ok(()) };
    let stored_key =
        if spec.mismatched_key { KeyPair::generate_for(algorithm).context("generating the key")? } else { key };
    let ca = cluster_ca(client.clone(), namespace).await?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), certificate),
            ("tls.key".to_string(), ByteString(stored_key.serialize_pem().into_bytes())),
            ("ca.crt".to_string(), ByteString(ca.into_bytes())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client, namespace)
        .create(&PostParams::default(), &secret)
        .await
        .context(format!("creating secret {namespace}/{name}"))?;
    Ok(())
}

const CA_CERT: &str = "/etc/kubernetes/pki/ca.crt";
const CA_KEY: &str = "/etc/kubernetes/pki/ca.key";

/// Signs the CSR's request with the cluster CA from the control-plane node (what
/// `openssl x509 -req -CA ca.crt -CAkey ca.key` does there) and writes the certificate into the
/// CSR's status, as a signer would. The usages asked for become the certificate's key usages.
async fn sign_with_cluster_ca(
    backend: &dyn Backend,
    api: &Api<CertificateSigningRequest>,
    spec: &IssueCertificate,
) -> Result<(), StepFailure> {
    let node = backend.control_plane();
    let mut pems = Vec::new();
    for path in [CA_CERT, CA_KEY] {
        let bytes = backend
            .read_file(&node, Path::new(path))
            .await?
            .ok_or_else(|| StepFailure::MissingNodeFile { node: node.clone(), path: path.into() })?;
        pems.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let key = ca_key_pair(&pems[1])?;
    let issuer = Issuer::from_ca_cert_pem(&pems[0], key).context(CA_CERT)?;

    let mut current = api.get(&spec.csr).await.context(format!("reading CSR {}", spec.csr))?;
    let request = String::from_utf8_lossy(&current.spec.request.0).into_owned();
    let mut csr = CertificateSigningRequestParams::from_pem(&request)
        .context(format!("CSR {} holds no valid request", spec.csr))?;
    let params = &mut csr.params;
    params.key_usages = Vec::new();
    params.extended_key_usages = Vec::new();
    for usage in &spec.usages {
        match usage.as_str() {
            "digital signature" => params.key_usages.push(KeyUsagePurpose::DigitalSignature),
            "key encipherment" => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
            "server auth" => params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth),
            other => return Err(StepFailure::Unsupported(format!("usage {other:?} cannot be signed here"))),
        }
    }
    // Whole days (rcgen's dates): from yesterday, so a skewed clock still sees it valid.
    let (from, to) = (chrono::Utc::now() - chrono::Duration::days(1), chrono::Utc::now() + chrono::Duration::days(2));
    params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    params.not_after = rcgen::date_time_ymd(to.year(), to.month() as u8, to.day() as u8);
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f; // a positive DER integer
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    let certificate = csr.signed_by(&issuer).context(format!("signing CSR {}", spec.csr))?;

    let status = current.status.get_or_insert_with(Default::default);
    status.certificate = Some(ByteString(certificate.pem().into_bytes()));
    api.replace_subresource("status", &spec.csr, &PostParams::default(), &current)
        .await
        .context(format!("writing the certificate into CSR {}'s status", spec.csr))?;
    Ok(())
}

/// The CA's key pair. kubeadm writes an RSA key as PKCS#1 ("RSA PRIVATE KEY"), which rcgen reads
/// only inside PKCS#8, so such a key is wrapped first.
fn ca_key_pair(pem_text: &str) -> Result<KeyPair, StepFailure> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
        .map_err(|e| StepFailure::Unsupported(format!("{CA_KEY}: not a PEM key: {e}")))?;
    let pkcs8 = match block.label.as_str() {
        "PRIVATE KEY" => block.contents,
        "RSA PRIVATE KEY" => pkcs8_from_pkcs1(&block.contents),
        other => {
            return Err(StepFailure::Unsupported(format!(
                "{CA_KEY}: a {other} block is not supported (PKCS#8 or PKCS#1 RSA keys are)"
            )));
        }
    };
    KeyPair::try_from(pkcs8.as_slice()).context(CA_KEY)
}

/// PKCS#8 PrivateKeyInfo around a PKCS#1 RSAPrivateKey: version 0, rsaEncryption, the key.
fn pkcs8_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { 1.2.840.113549.1.1.1, NULL }
    const RSA_ENCRYPTION: [u8; 15] =
        [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&RSA_ENCRYPTION);
    body.extend(der(0x04, pkcs1));
    der(0x30, &body)
}

/// One DER tag-length-value.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// The cluster CA as every namespace sees it (the kube-root-ca.crt ConfigMap).
async fn cluster_ca(client: kube::Client, namespace: &str) -> Result<String, StepFailure> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(ca) = api
            .get_opt("kube-root-ca.crt")
            .await
            .context(format!("reading {namespace}/kube-root-ca.crt"))?
            .and_then(|c| c.data)
            .and_then(|d| d.get("ca.crt").cloned())
        {
            return Ok(ca);
        }
        if Instant::now() > deadline {
            return Err(StepFailure::timeout(format!("no kube-root-ca.crt ConfigMap appeared in {namespace}"), 30));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn a_kubeadm_rsa_ca_signs_a_serving_request() {
        // kubeadm's CA: an RSA key in PKCS#1, as on a kind node.
        let key = ca_key_pair(include_str!("../../tests/fixtures/kubeadm-ca.key")).unwrap();
        let ca_pem = include_str!("../../tests/fixtures/kubeadm-ca.crt");
        let issuer = Issuer::from_ca_cert_pem(ca_pem, key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["ledger.bank.svc".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "ledger.bank.svc");
        let request = params.serialize_request(&leaf_key).unwrap().pem().unwrap();
        let mut csr = CertificateSigningRequestParams::from_pem(&request).unwrap();
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let signed = csr.signed_by(&issuer).unwrap();

        let (_, ca_der) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap();
        let (_, ca) = X509Certificate::from_der(&ca_der.contents).unwrap();
        let (_, leaf) = X509Certificate::from_der(signed.der()).unwrap();
        leaf.verify_signature(Some(ca.public_key())).expect("signed by the CA's key");
        assert_eq!(leaf.issuer(), ca.subject());
        assert!(leaf.extended_key_usage().unwrap().unwrap().value.server_auth);
        let sans = leaf.subject_alternative_name().unwrap().unwrap();
        assert!(sans.value.general_names.iter().any(|n| matches!(n, GeneralName::DNSName("ledger.bank.svc"))));
    }

    #[test]
    fn unsupported_keys_say_what_is_supported() {
        let err = ca_key_pair("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n").unwrap_err();
        assert!(matches!(err, StepFailure::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("PKCS#8 or PKCS#1 RSA"), "{err}");
    }
}
