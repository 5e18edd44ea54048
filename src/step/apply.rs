//! Server-side apply of YAML documents, any kind (resolved through discovery).

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::error::{Context, StepFailure};
use crate::backend::Backend;
use crate::check::api::dynamic_api;

/// The field manager ckslab applies as, so its objects are recognisable.
pub const FIELD_MANAGER: &str = "ckslab";

/// Applies every document in `yaml` in order (namespaces and CRDs first is the author's job).
pub async fn apply_yaml(backend: &dyn Backend, yaml: &str) -> Result<(), StepFailure> {
    apply_documents(backend, yaml, false).await
}

/// Creates the documents that do not exist yet and leaves existing objects alone.
pub async fn create_missing(backend: &dyn Backend, yaml: &str) -> Result<(), StepFailure> {
    apply_documents(backend, yaml, true).await
}

async fn apply_documents(backend: &dyn Backend, yaml: &str, only_missing: bool) -> Result<(), StepFailure> {
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(yaml).map_err(StepFailure::Yaml)?;
    let client = backend.client().await?;
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        let api_version = document["apiVersion"]
            .as_str()
            .ok_or_else(|| StepFailure::Unsupported("a document has no apiVersion".into()))?
            .to_string();
        let kind = document["kind"]
            .as_str()
            .ok_or_else(|| StepFailure::Unsupported("a document has no kind".into()))?
            .to_string();
        let name = document["metadata"]["name"]
            .as_str()
            .ok_or_else(|| StepFailure::Unsupported("a document has no metadata.name".into()))?
            .to_string();
        let namespace = document["metadata"]["namespace"].as_str().map(String::from);
        let (api, _) = dynamic_api(&client, &api_version, &kind, namespace.as_deref().or(Some("default")))
            .await
            .context(format!("{kind} {name}"))?;
        let object: DynamicObject = serde_json::from_value(document).context(format!("{kind} {name}"))?;
        if only_missing && api.get_opt(&name).await.context(format!("{kind} {name}"))?.is_some() {
            continue;
        }
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object))
            .await
            .context(format!("{kind} {name}"))?;
        if kind == "Namespace" && api_version == "v1" {
            wait_default_service_account(&client, &name).await?;
        }
    }
    Ok(())
}

/// Pods cannot be created in a namespace until its controller-made `default` ServiceAccount
/// exists; the next step (or a check's dry-run) should not race it. On kind the controller
/// manager loses its lease while the API server restarts (45 s there), exits, and comes back
/// under the kubelet's back-off: after a few restarts that takes more than a minute.
const SA_WAIT_SECS: u64 = 150;

async fn wait_default_service_account(client: &kube::Client, namespace: &str) -> Result<(), StepFailure> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), namespace);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(SA_WAIT_SECS);
    while api.get_opt("default").await.context(format!("reading {namespace}'s default ServiceAccount"))?.is_none() {
        if std::time::Instant::now() > deadline {
            return Err(StepFailure::timeout_then(
                format!("namespace {namespace} got no default ServiceAccount"),
                SA_WAIT_SECS,
                " (is kube-controller-manager running? `ckslab status` shows its last log lines)",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}
