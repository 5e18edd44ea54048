//! Every step that edits a node file leaves a restorable backup, on the local backend (its
//! node folders need no running cluster; the kind backend's twin is in kind_backend.rs).

mod common;

use ckslab::backend::Backend;
use ckslab::backend::local::LocalBackend;

#[tokio::test]
async fn local_node_file_steps_leave_backups() {
    let home = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(home.path());
    let root = backend.node_root(&backend.control_plane()).unwrap();
    std::fs::create_dir_all(root.join("etc/kubernetes/manifests")).unwrap();
    common::node_file_steps_leave_backups(&backend).await;
}
