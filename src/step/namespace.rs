//! Deleting a scenario's namespace fast and for sure. The namespace controller would get there,
//! but after an API server restart its informers can back off for minutes; reset should take
//! seconds. So ckslab empties the namespace itself (what the controller does), then lets the
//! controller finish, and clears the finalizer only if it still has not.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope};

use super::error::{Context, StepFailure};

pub async fn purge(client: &kube::Client, name: &str) -> Result<(), StepFailure> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await.context(format!("reading namespace {name}"))?.is_none() {
        return Ok(());
    }
    match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => return Err(e).context(format!("deleting namespace {name}")),
    }
    let discovery = Discovery::new(client.clone()).run().await.context("discovery")?;
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() };
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(kube::discovery::verbs::DELETE_COLLECTION) {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, &resource);
            // Forbidden or gone kinds are the controller's to handle; this is a speed-up.
            let _ = api.delete_collection(&now, &ListParams::default()).await;
        }
    }
    // Let the namespace controller finish if it can: finalizing under it while it still
    // deletes content by namespace *name* lets it delete what the next setup creates in the
    // namespace of the same name (pods that never appear). Force only when it is stuck.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if namespaces.get_opt(name).await.context(format!("reading namespace {name}"))?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Empty by now; finalize it as the namespace controller would.
    if let Some(mut namespace) = namespaces.get_opt(name).await.context(format!("reading namespace {name}"))? {
        tracing::info!(namespace = name, "finalizing the emptied namespace");
        if let Some(spec) = namespace.spec.as_mut() {
            spec.finalizers = Some(vec![]);
        }
        namespaces
            .replace_subresource("finalize", name, &PostParams::default(), &namespace)
            .await
            .context(format!("finalizing namespace {name}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while namespaces.get_opt(name).await.context(format!("reading namespace {name}"))?.is_some() {
        if Instant::now() > deadline {
            return Err(StepFailure::timeout(
                format!("namespace {name} was not gone after emptying and finalizing it"),
                20,
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
