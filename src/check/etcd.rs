//! The etcd-value probe: how an object is really stored, read from etcd's raw bytes.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};

use super::{Finding, Outcome, api_error, client_or_finding};
use crate::backend::Backend;
use crate::scenario::EtcdValueProbe;

/// The provider that wrote these bytes: `aescbc`, `kms`, ... or `identity` for plaintext.
pub fn stored_provider(bytes: &[u8]) -> String {
    match bytes.strip_prefix(b"k8s:enc:") {
        Some(rest) => {
            let name: Vec<u8> = rest.iter().take_while(|b| **b != b':').copied().collect();
            String::from_utf8_lossy(&name).into_owned()
        }
        None => "identity".into(),
    }
}

fn judge(key: &str, bytes: &[u8], providers: &[String]) -> Finding {
    let provider = stored_provider(bytes);
    let expected = format!("stored with one of: {}", providers.join(", "));
    let observed = if provider == "identity" {
        format!("{key} is stored in plaintext")
    } else {
        let head: String =
            String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).chars().filter(|c| !c.is_control()).collect();
        format!("{key} is stored encrypted by {provider} ({head}…)")
    };
    Finding::passed_if(providers.contains(&provider), observed, expected)
}

pub async fn etcd_value(probe: &EtcdValueProbe, backend: &dyn Backend) -> Finding {
    if let Some(namespace) = &probe.new_secret_in {
        return new_secret(namespace, &probe.providers, backend).await;
    }
    let keys = match (&probe.key, &probe.prefix) {
        (Some(key), _) => vec![key.clone()],
        (None, Some(prefix)) => match keys_under(prefix, backend).await {
            Ok(keys) => keys,
            Err(f) => return f,
        },
        (None, None) => return Finding::error("the probe names neither key, prefix nor new-secret-in", "a key"),
    };
    if keys.is_empty() {
        return Finding::fail(
            format!("no objects under {}", probe.prefix.clone().unwrap_or_default()),
            "at least one object",
        );
    }
    let mut observed = Vec::new();
    for key in &keys {
        let finding = match backend.etcd_get(key).await {
            Ok(Some(bytes)) => judge(key, &bytes, &probe.providers),
            Ok(None) => Finding::fail(format!("etcd has no key {key}"), format!("{key} to exist")),
            Err(e) => Finding::error(format!("reading {key} from etcd: {e}"), "etcd readable"),
        };
        if finding.outcome != Outcome::Pass {
            return finding;
        }
        observed.push(finding.observed);
    }
    Finding::pass(observed.join("; "), format!("stored with one of: {}", probe.providers.join(", ")))
}

/// Secrets the probe creates carry this prefix; listings skip them (checks run concurrently).
const PROBE_PREFIX: &str = "ckslab-probe-";

/// Creates a fresh secret, reads how etcd stores it, and deletes it again.
async fn new_secret(namespace: &str, providers: &[String], backend: &dyn Backend) -> Finding {
    use kube::api::{DeleteParams, PostParams};
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let name = format!("{PROBE_PREFIX}{:08x}", rand::random::<u32>());
    let api: Api<Secret> = Api::namespaced(client, namespace);
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some(name.clone()), ..Default::default() },
        string_data: Some([("probe".to_string(), "written by ckslab grade".to_string())].into()),
        ..Default::default()
    };
    if let Err(e) = api.create(&PostParams::default(), &secret).await {
        return api_error(e, backend, &format!("creating a new secret in {namespace}")).await;
    }
    let key = format!("/registry/secrets/{namespace}/{name}");
    let finding = match backend.etcd_get(&key).await {
        Ok(Some(bytes)) => {
            let f = judge(&key, &bytes, providers);
            Finding { observed: f.observed.replace(&key, &format!("a new secret ({key})")), ..f }
        }
        Ok(None) => Finding::error(format!("etcd has no key {key} right after creating it"), "the new secret in etcd"),
        Err(e) => Finding::error(format!("reading {key} from etcd: {e}"), "etcd readable"),
    };
    let _ = api.delete(&name, &DeleteParams::default()).await;
    finding
}

/// `/registry/<secrets|configmaps>/<namespace>/` -> the keys of every such object now present.
async fn keys_under(prefix: &str, backend: &dyn Backend) -> Result<Vec<String>, Finding> {
    let parts: Vec<&str> = prefix.trim_matches('/').split('/').collect();
    let [registry, resource, namespace] = parts.as_slice() else {
        return Err(Finding::error(
            format!("prefix {prefix} is not /registry/<resource>/<namespace>/"),
            "a namespace prefix",
        ));
    };
    if *registry != "registry" {
        return Err(Finding::error(format!("prefix {prefix} is not under /registry"), "a /registry prefix"));
    }
    let client = client_or_finding(backend).await?;
    let params = ListParams::default();
    let names: Result<Vec<String>, kube::Error> = match *resource {
        "secrets" => Api::<Secret>::namespaced(client, namespace)
            .list(&params)
            .await
            .map(|l| l.items.into_iter().filter_map(|s| s.metadata.name).collect()),
        "configmaps" => Api::<ConfigMap>::namespaced(client, namespace)
            .list(&params)
            .await
            .map(|l| l.items.into_iter().filter_map(|c| c.metadata.name).collect()),
        other => return Err(Finding::error(format!("prefixes of {other} are not supported"), "secrets or configmaps")),
    };
    let names = match names {
        Ok(n) => n,
        Err(e) => return Err(api_error(e, backend, &format!("listing {resource} in {namespace}")).await),
    };
    // kube-root-ca.crt is written by a controller, not the learner: it says nothing about them.
    Ok(names
        .into_iter()
        .filter(|n| n != "kube-root-ca.crt" && !n.starts_with(PROBE_PREFIX))
        .map(|n| format!("/registry/{resource}/{namespace}/{n}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_read_from_the_prefix() {
        assert_eq!(stored_provider(b"k8s:enc:aescbc:v1:key1:\x01\x02"), "aescbc");
        assert_eq!(stored_provider(b"k8s:enc:kms:v2:kms-plugin:abc"), "kms");
        assert_eq!(stored_provider(b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret"), "identity");
        let ok = judge("/registry/secrets/a/b", b"k8s:enc:secretbox:v1:k:xx", &["aescbc".into(), "secretbox".into()]);
        assert_eq!(ok.outcome, Outcome::Pass);
        let plain = judge("/registry/secrets/a/b", b"k8s\x00plain", &["aescbc".into()]);
        assert_eq!(plain.outcome, Outcome::Fail);
        assert!(plain.observed.contains("plaintext"));
    }
}
