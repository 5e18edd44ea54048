//! Server-side apply of YAML documents, any kind (resolved through discovery).

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use crate::backend::Backend;
use crate::check::api::dynamic_api;

/// The field manager ckslab applies as, so its objects are recognisable.
pub const FIELD_MANAGER: &str = "ckslab";

/// Applies every document in `yaml` in order (namespaces and CRDs first is the author's job).
pub async fn apply_yaml(backend: &dyn Backend, yaml: &str) -> Result<(), String> {
    apply_documents(backend, yaml, false).await
}

/// Creates the documents that do not exist yet and leaves existing objects alone.
pub async fn create_missing(backend: &dyn Backend, yaml: &str) -> Result<(), String> {
    apply_documents(backend, yaml, true).await
}

async fn apply_documents(backend: &dyn Backend, yaml: &str, only_missing: bool) -> Result<(), String> {
    let documents: Vec<Value> =
        serde_saphyr::from_str_multiple(yaml).map_err(|e| format!("the manifest does not parse: {e}"))?;
    let client = backend.client().await.map_err(|e| e.to_string())?;
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        let api_version = document["apiVersion"].as_str().ok_or("a document has no apiVersion")?.to_string();
        let kind = document["kind"].as_str().ok_or("a document has no kind")?.to_string();
        let name = document["metadata"]["name"].as_str().ok_or("a document has no metadata.name")?.to_string();
        let namespace = document["metadata"]["namespace"].as_str().map(String::from);
        let (api, _) = dynamic_api(&client, &api_version, &kind, namespace.as_deref().or(Some("default")))
            .await
            .map_err(|e| format!("{kind} {name}: {e}"))?;
        let object: DynamicObject = serde_json::from_value(document).map_err(|e| format!("{kind} {name}: {e}"))?;
        if only_missing && api.get_opt(&name).await.map_err(|e| format!("{kind} {name}: {e}"))?.is_some() {
            continue;
        }
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await.map_err(
            |e| match e {
                kube::Error::Api(status) => format!("{kind} {name}: {}", status.message),
                other => format!("{kind} {name}: {other}"),
            },
        )?;
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

async fn wait_default_service_account(client: &kube::Client, namespace: &str) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), namespace);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(SA_WAIT_SECS);
    while api.get_opt("default").await.map_err(|e| e.to_string())?.is_none() {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "namespace {namespace} got no default ServiceAccount within {SA_WAIT_SECS}s (is kube-controller-manager running? `ckslab status` shows its last log lines)"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}
