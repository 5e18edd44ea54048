//! The image-policy-webhook step: ckslab's ImagePolicyWebhook backend, its CA and the
//! kubeconfig the API server uses to call it.

use std::path::Path;

use super::error::{Context, StepFailure};
use crate::backend::Backend;
use crate::scenario::WebhookStep;
use crate::webhook::{image_policy, process, tls};

pub const NAME: &str = "image-policy";

pub async fn image_policy(backend: &dyn Backend, spec: &WebhookStep) -> Result<(), StepFailure> {
    let dir = backend.state_dir().join("services");
    if !spec.running {
        return process::stop(&dir, NAME).map(|_| ()).context("stopping the webhook");
    }
    let (reach, listen) = backend.host_address();
    let certs =
        tls::make_serving_certs(&[reach.clone(), "localhost".into()]).context("making the webhook's certificates")?;
    std::fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
    let cert_file = dir.join("image-policy.crt");
    let key_file = dir.join("image-policy.key");
    std::fs::write(&cert_file, &certs.cert_pem).context(format!("writing {}", cert_file.display()))?;
    std::fs::write(&key_file, &certs.key_pem).context(format!("writing {}", key_file.display()))?;
    let mut args = vec![
        "--listen".to_string(),
        format!("{listen}:{}", spec.port),
        "--cert".into(),
        cert_file.display().to_string(),
        "--key".into(),
        key_file.display().to_string(),
    ];
    for prefix in &spec.allow {
        args.push("--allow".into());
        args.push(prefix.clone());
    }
    process::start(&dir, NAME, &args).context("starting the webhook")?;
    if let Some(node_dir) = &spec.node_dir {
        let node = backend.control_plane();
        let ca_path = format!("{node_dir}/webhook-ca.crt");
        let server = format!("https://{reach}:{}{}", spec.port, image_policy::PATH);
        let kubeconf = kubeconfig(&server, &ca_path);
        backend.write_file(&node, Path::new(&ca_path), certs.ca_pem.as_bytes(), 0o644).await?;
        backend.write_file(&node, Path::new(&format!("{node_dir}/kubeconf")), kubeconf.as_bytes(), 0o600).await?;
    }
    wait_listening(&format!("{listen}:{}", spec.port)).await
}

/// The kubeconfig format ImagePolicyWebhook reads: `clusters` is the webhook service.
fn kubeconfig(server: &str, ca_path: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: image-policy-webhook\n    cluster:\n      certificate-authority: {ca_path}\n      server: {server}\nusers:\n  - name: api-server\n    user: {{}}\ncontexts:\n  - name: default\n    context:\n      cluster: image-policy-webhook\n      user: api-server\ncurrent-context: default\n"
    )
}

async fn wait_listening(addr: &str) -> Result<(), StepFailure> {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(StepFailure::timeout(format!("the webhook did not listen on {addr}"), 5))
}
