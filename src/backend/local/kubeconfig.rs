//! The kubeconfig files `kubeadm init` writes to `/etc/kubernetes`.
//!
//! `admin.conf` follows kubeadm 1.29+: its user is in the `kubeadm:cluster-admins` group, which
//! has power only through the `kubeadm:cluster-admins` ClusterRoleBinding that `up` creates with
//! `super-admin.conf` (group `system:masters`, which RBAC cannot take away).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::paths::CONTROL_PLANE;
use super::pki::{Ca, NodeFile};

pub const SERVER: &str = "https://127.0.0.1:6443";

pub fn render(ca_pem: &str, user: &str, cert_pem: &str, key_pem: &str) -> String {
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {SERVER}
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: {user}
  name: {user}@kubernetes
current-context: {user}@kubernetes
kind: Config
preferences: {{}}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = B64.encode(ca_pem),
        cert = B64.encode(cert_pem),
        key = B64.encode(key_pem),
    )
}

fn file(ca: &Ca, name: &str, user: &str, cn: &str, orgs: &[&str]) -> anyhow::Result<NodeFile> {
    let pair = ca.client(cn, orgs)?;
    Ok(NodeFile::new(format!("/etc/kubernetes/{name}"), render(&ca.cert_pem, user, &pair.cert, &pair.key), 0o600))
}

/// admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf, kubelet.conf.
pub fn control_plane_files(ca: &Ca) -> anyhow::Result<Vec<NodeFile>> {
    let node_user = format!("system:node:{CONTROL_PLANE}");
    Ok(vec![
        file(ca, "admin.conf", "kubernetes-admin", "kubernetes-admin", &["kubeadm:cluster-admins"])?,
        file(ca, "super-admin.conf", "kubernetes-super-admin", "kubernetes-super-admin", &["system:masters"])?,
        file(ca, "controller-manager.conf", "system:kube-controller-manager", "system:kube-controller-manager", &[])?,
        file(ca, "scheduler.conf", "system:kube-scheduler", "system:kube-scheduler", &[])?,
        file(ca, "kubelet.conf", &node_user, &node_user, &["system:nodes"])?,
    ])
}

/// A worker's kubelet.conf (kubeadm join gets it by TLS bootstrap; the result is the same).
pub fn worker_kubelet_conf(ca: &Ca, node: &str) -> anyhow::Result<NodeFile> {
    let user = format!("system:node:{node}");
    file(ca, "kubelet.conf", &user, &user, &["system:nodes"])
}
