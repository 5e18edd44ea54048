//! Every step that edits a node file leaves a restorable backup, on the local backend (its
//! node folders need no running cluster; the kind backend's twin is in kind_backend.rs).

mod common;

#[tokio::test]
async fn local_node_file_steps_leave_backups() {
    let (_home, backend) = common::local_node_backend();
    common::node_file_steps_leave_backups(&backend).await;
}
