//! The API objects `kubeadm init`/`join` and the kubelets would have created: the
//! `kubeadm:cluster-admins` binding and the two Node objects (which kwok then keeps Ready).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::PostParams;

use super::paths::{CONTROL_PLANE, NODES};
use crate::backend::{BackendError, Result};
use crate::tools::KUBERNETES_VERSION;

async fn create_if_missing<K>(api: &Api<K>, obj: &K) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn node_object(name: &str) -> Node {
    let cp = name == CONTROL_PLANE;
    let mut labels = serde_json::json!({
        "beta.kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    });
    if cp {
        labels["node-role.kubernetes.io/control-plane"] = "".into();
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "".into();
    }
    let taints = if cp {
        serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    } else {
        serde_json::json!([])
    };
    let resources = serde_json::json!({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                // kwok manages only nodes with this annotation (see the supervisor's kwok flags).
                "kwok.x-k8s.io/node": "fake",
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"taints": taints},
        // Node status may be set on create; kwok keeps the conditions fresh afterwards.
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {
                "architecture": arch(),
                "bootID": "",
                "containerRuntimeVersion": "containerd://2.1.4",
                "kernelVersion": "",
                "kubeProxyVersion": "",
                "kubeletVersion": KUBERNETES_VERSION,
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "ckslab local (kwok)",
                "systemUUID": "",
            },
        },
    }))
    .expect("static node object")
}

/// Creates what is missing; safe to run on every `up`.
pub async fn ensure_objects(client: &kube::Client) -> Result<()> {
    let crb: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:cluster-admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}],
    }))
    .expect("static binding");
    create_if_missing(&Api::<ClusterRoleBinding>::all(client.clone()), &crb).await?;
    let nodes = Api::<Node>::all(client.clone());
    for name in NODES {
        create_if_missing(&nodes, &node_object(name)).await?;
    }
    Ok(())
}

/// The controller manager creates `default/default` once it runs; pods cannot be created before.
pub async fn wait_default_service_account(client: &kube::Client, timeout: Duration) -> Result<()> {
    let api = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = api.get_opt("default").await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(BackendError::Timeout {
                what: "the default ServiceAccount did not appear".into(),
                secs: timeout.as_secs(),
                then: ": is kube-controller-manager running? (ckslab status)".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
