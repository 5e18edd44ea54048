//! Making data readable again before the original API server manifest comes back.
//!
//! A learner's EncryptionConfiguration may cover Secrets, ConfigMaps, `*.*`, anything. Objects
//! written under it stay encrypted in etcd after the flag is gone, and the restored API server
//! cannot read them ("identity transformer tried to read encrypted data"): the lab is broken for
//! the next scenario. So, before the baseline manifest is restored, the API server is run once
//! with the same config but `identity` first (writes plaintext, still reads every key), and every
//! object of every resource the config covered is rewritten.

use std::path::Path;

use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, verbs};
use serde_json::{Value, json};

use crate::backend::{Backend, Progress};
use crate::staticpod::{Manifest, manifest_path};
use crate::step;

/// Annotation whose change makes the kubelet (or the local supervisor) restart the API server
/// so it reads the config file again: the file may be mounted alone, so ckslab edits it in place.
const RESTART_ANNOTATION: &str = "ckslab.io/reread-encryption-config";

#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error(
        "{0}\n  the cluster may hold objects the original API server cannot read;\n  fix: `ckslab down && ckslab up` rebuilds the lab cluster"
    )]
    Unrecoverable(String),
    #[error(
        "restarting the API server with the identity-first copy: {0}\n  the cluster may hold objects the original API server cannot read;\n  fix: `ckslab down && ckslab up` rebuilds the lab cluster"
    )]
    Restart(#[source] Box<step::StepFailure>),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

/// The learner's encryption config, where the API server reads it.
struct InForce {
    /// The node file behind the flag's path.
    host_path: String,
    bytes: Vec<u8>,
    mode: u32,
    config: Value,
}

/// The `resources[].resources` patterns of an EncryptionConfiguration (`secrets`,
/// `deployments.apps`, `*.apps`, `*.`, `*.*`).
pub fn covered_patterns(config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in config["resources"].as_array().into_iter().flatten() {
        for name in rule["resources"].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Whether `resource` (plural) of API `group` ("" for core) matches one pattern.
pub fn pattern_covers(pattern: &str, group: &str, resource: &str) -> bool {
    match pattern.split_once('.') {
        None => group.is_empty() && pattern == resource,
        Some(("*", "*")) => true,
        Some(("*", g)) => g == group,
        Some((r, g)) => r == resource && g == group,
    }
}

/// The same config, with `identity` first in every rule: new writes are plaintext, and every
/// provider the learner listed can still read what it wrote.
pub fn identity_first(config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(rules) = out["resources"].as_array_mut() {
        for rule in rules {
            let mut providers = vec![json!({"identity": {}})];
            for provider in rule["providers"].as_array().into_iter().flatten() {
                if provider.get("identity").is_none() {
                    providers.push(provider.clone());
                }
            }
            rule["providers"] = Value::Array(providers);
        }
    }
    out
}

fn parse_config(text: &str) -> Option<Value> {
    if text.trim_start().starts_with('{') { serde_json::from_str(text).ok() } else { serde_saphyr::from_str(text).ok() }
}

async fn in_force(backend: &dyn Backend, current: &Manifest) -> Result<Option<InForce>, DecryptError> {
    let Some(value) = current.flag("encryption-provider-config").and_then(|f| f.value) else { return Ok(None) };
    let Some(host_path) = current.host_path_for(&value) else { return Ok(None) };
    let node = backend.control_plane();
    let Some(bytes) = backend.read_file(&node, Path::new(&host_path)).await? else { return Ok(None) };
    let Some(config) = parse_config(&String::from_utf8_lossy(&bytes)) else { return Ok(None) };
    let mode = backend.stat_file(&node, Path::new(&host_path)).await?.map_or(0o600, |s| s.mode);
    Ok(Some(InForce { host_path, bytes, mode, config }))
}

/// Called with the manifest about to be replaced by `baseline`. Leaves every object the
/// learner's encryption config covered stored in plaintext, then puts the learner's file back
/// as it was, and returns the resource patterns that config covered (for [`check_readable`]
/// after the restore). Does nothing, and returns none, when no encryption config is in force
/// or the baseline keeps it. With the API server down (say, a flag without its volume) it
/// wrote nothing under that config since; what it wrote before cannot be reached, and the
/// readability check after the restore says so if that happened.
pub async fn decrypt_before_restore(
    backend: &dyn Backend,
    current_text: &str,
    baseline_text: &str,
    api_up: bool,
    progress: &dyn Progress,
) -> Result<Vec<String>, DecryptError> {
    let path = manifest_path("kube-apiserver").display().to_string();
    let Ok(current) = Manifest::parse(&path, current_text) else { return Ok(Vec::new()) };
    let baseline_flag = Manifest::parse(&path, baseline_text).ok().and_then(|m| m.flag("encryption-provider-config"));
    if baseline_flag.is_some() && baseline_flag == current.flag("encryption-provider-config") {
        return Ok(Vec::new());
    }
    let Some(learner) = in_force(backend, &current).await? else { return Ok(Vec::new()) };
    let patterns = covered_patterns(&learner.config);
    if patterns.is_empty() || !api_up {
        if !patterns.is_empty() {
            tracing::info!("API server down under an encryption config; restoring without rewriting");
        }
        return Ok(patterns);
    }
    let client = backend.client().await?;
    let node = backend.control_plane();
    progress.step(&format!("making what {} encrypted readable: identity first", learner.host_path));
    let transitional = serde_json::to_string_pretty(&identity_first(&learner.config)).expect("JSON serializes");
    backend.write_file(&node, Path::new(&learner.host_path), transitional.as_bytes(), 0o600).await?;
    let mut restarted = current.clone();
    let stamp = chrono::Utc::now().timestamp_millis().to_string();
    restarted.pod["metadata"]["annotations"][RESTART_ANNOTATION] = json!(stamp);
    let result = async {
        step::write_manifest_and_wait(backend, "kube-apiserver", &restarted.to_yaml(), Some(true))
            .await
            .map_err(|e| DecryptError::Restart(Box::new(e)))?;
        progress.step(&format!("rewriting every object covered by {}", patterns.join(", ")));
        rewrite_covered(&client, &patterns).await
    }
    .await;
    // The learner's file goes back as it was, whatever happened.
    backend.write_file(&node, Path::new(&learner.host_path), &learner.bytes, learner.mode).await?;
    result.map(|()| patterns)
}

/// Rewrites (get, then replace) every object of every listable, updatable resource a pattern
/// covers, so each is stored again under the provider that is first now.
pub async fn rewrite_covered(client: &kube::Client, patterns: &[String]) -> Result<(), DecryptError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| DecryptError::Unrecoverable(format!("API discovery failed: {e}")))?;
    let mut failures = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || !caps.supports_operation(verbs::UPDATE) {
                continue;
            }
            if !patterns.iter().any(|p| pattern_covers(p, &resource.group, &resource.plural)) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let list = match api.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(e) => {
                    failures.push(format!("listing {}: {e}", resource.plural));
                    continue;
                }
            };
            for object in list.items {
                let name = object.metadata.name.clone().unwrap_or_default();
                // List items carry no apiVersion and kind; a replace needs them.
                let mut object = object;
                object.types = Some(kube::api::TypeMeta {
                    api_version: resource.api_version.clone(),
                    kind: resource.kind.clone(),
                });
                let api: Api<DynamicObject> = match object.metadata.namespace.as_deref() {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                    None => Api::all_with(client.clone(), &resource),
                };
                if let Err(e) = replace_fresh(&api, &name, object).await {
                    // Events come and go; a vanished object needs no rewrite.
                    if !matches!(&e, kube::Error::Api(s) if s.code == 404) && resource.plural != "events" {
                        failures.push(format!("{} {name}: {e}", resource.plural));
                    }
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        failures.truncate(5);
        Err(DecryptError::Unrecoverable(format!("could not rewrite: {}", failures.join("; "))))
    }
}

async fn replace_fresh(api: &Api<DynamicObject>, name: &str, object: DynamicObject) -> Result<(), kube::Error> {
    match api.replace(name, &PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        // Changed since the list (a controller wrote it): that write already used the new order.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// After a restore: every resource the learner's config covered must list again. A list
/// fails as a whole when one object cannot be decrypted.
pub async fn check_readable(client: &kube::Client, patterns: &[String]) -> Result<(), DecryptError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| DecryptError::Unrecoverable(format!("API discovery failed: {e}")))?;
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let covered = patterns.iter().any(|p| pattern_covers(p, &resource.group, &resource.plural));
            if !covered || !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            if let Err(e) = api.list(&ListParams::default()).await {
                return Err(DecryptError::Unrecoverable(format!(
                    "{} cannot be read back after restoring the original API server: {e}",
                    resource.plural
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_as_the_api_server_reads_them() {
        assert!(pattern_covers("secrets", "", "secrets"));
        assert!(!pattern_covers("secrets", "apps", "secrets"));
        assert!(pattern_covers("deployments.apps", "apps", "deployments"));
        assert!(!pattern_covers("deployments.apps", "", "deployments"));
        assert!(pattern_covers("*.apps", "apps", "statefulsets"));
        assert!(!pattern_covers("*.apps", "", "configmaps"));
        assert!(pattern_covers("*.", "", "configmaps"));
        assert!(!pattern_covers("*.", "apps", "deployments"));
        assert!(pattern_covers("*.*", "rbac.authorization.k8s.io", "roles"));
        assert!(pattern_covers("*.*", "", "secrets"));
    }

    #[test]
    fn identity_goes_first_and_every_key_stays_for_reading() {
        let config: Value = serde_saphyr::from_str(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets, configmaps]\n    providers:\n      - aescbc: {keys: [{name: k1, secret: c2VjcmV0}]}\n      - identity: {}\n  - resources: ['*.*']\n    providers:\n      - secretbox: {keys: [{name: k2, secret: c2VjcmV0}]}\n",
        )
        .unwrap();
        assert_eq!(covered_patterns(&config), ["secrets", "configmaps", "*.*"]);
        let out = identity_first(&config);
        let first = &out["resources"][0]["providers"];
        assert_eq!(first.as_array().unwrap().len(), 2, "identity is not listed twice: {first}");
        assert!(first[0].get("identity").is_some());
        assert_eq!(first[1]["aescbc"]["keys"][0]["name"], "k1");
        let second = &out["resources"][1]["providers"];
        assert!(second[0].get("identity").is_some());
        assert_eq!(second[1]["secretbox"]["keys"][0]["name"], "k2");
    }
}
