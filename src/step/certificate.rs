//! The issue-certificate step: a key and CSR made here, a CertificateSigningRequest,
//! its approval, and the issued certificate stored as a TLS secret with the cluster CA.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{CertificateParams, DnType, KeyPair};

use crate::backend::Backend;
use crate::scenario::IssueCertificate;

pub async fn issue(backend: &dyn Backend, spec: &IssueCertificate) -> Result<(), String> {
    let client = backend.client().await.map_err(|e| e.to_string())?;
    let algorithm = match spec.key.as_deref().unwrap_or("ecdsa-p256") {
        "ecdsa-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        other => return Err(format!("key type {other} is not supported (ecdsa-p256, ecdsa-p384)")),
    };
    let key = KeyPair::generate_for(algorithm).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(DnType::CommonName, spec.common_name.clone());
    for org in &spec.organizations {
        params.distinguished_name.push(DnType::OrganizationName, org.clone());
    }
    let request = params.serialize_request(&key).map_err(|e| e.to_string())?;
    let pem = request.pem().map_err(|e| e.to_string())?;

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
    api.create(&PostParams::default(), &csr).await.map_err(|e| format!("creating CSR {}: {e}", spec.csr))?;
    if !spec.approve {
        return Ok(());
    }
    let mut current = api.get(&spec.csr).await.map_err(|e| e.to_string())?;
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
        .map_err(|e| format!("approving CSR {}: {e}", spec.csr))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let certificate = loop {
        let csr = api.get(&spec.csr).await.map_err(|e| e.to_string())?;
        if let Some(cert) = csr.status.and_then(|s| s.certificate) {
            break cert;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "CSR {} was not signed within 60s (is the controller-manager's signer running?)",
                spec.csr
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let Some((namespace, name)) = spec.secret.as_deref().and_then(|s| s.split_once('/')) else { return Ok(()) };
    let stored_key =
        if spec.mismatched_key { KeyPair::generate_for(algorithm).map_err(|e| e.to_string())? } else { key };
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
        .map_err(|e| format!("creating secret {namespace}/{name}: {e}"))?;
    Ok(())
}

/// The cluster CA as every namespace sees it (the kube-root-ca.crt ConfigMap).
async fn cluster_ca(client: kube::Client, namespace: &str) -> Result<String, String> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(ca) = api
            .get_opt("kube-root-ca.crt")
            .await
            .map_err(|e| e.to_string())?
            .and_then(|c| c.data)
            .and_then(|d| d.get("ca.crt").cloned())
        {
            return Ok(ca);
        }
        if Instant::now() > deadline {
            return Err(format!("no kube-root-ca.crt ConfigMap in {namespace}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
