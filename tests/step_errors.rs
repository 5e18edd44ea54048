//! A failed step says which step, what was applied before it, and why, with the cause typed
//! (callers and logs can tell a missing file from a refused request or a timeout).

mod common;

use std::error::Error as _;
use std::path::Path;

use ckslab::backend::{Backend, LogProgress};
use ckslab::step::StepFailure;

/// A write, then an edit of a manifest that is not there.
const TWO_STEPS: &str = r#"  - write-file: {path: /etc/kubernetes/first.conf, content: "one\n"}
  - static-pod: {component: kube-controller-manager, set-flags: {profiling: "false"}, wait: false}
"#;

#[tokio::test]
async fn a_failed_step_names_what_was_applied_and_keeps_its_cause_typed() {
    let (_home, backend) = common::local_node_backend();
    let rendered = common::node_steps_scenario("two-steps", "/etc/kubernetes/first.conf", TWO_STEPS);

    let err = ckslab::step::run_steps("setup", &rendered.scenario.setup, &rendered, &backend, &LogProgress)
        .await
        .unwrap_err();
    assert_eq!((err.phase.as_str(), err.index), ("setup", 2));
    assert_eq!(err.applied, vec!["write /etc/kubernetes/first.conf".to_string()]);
    match err.cause.as_ref() {
        StepFailure::MissingNodeFile { path, .. } => {
            assert_eq!(path, "/etc/kubernetes/manifests/kube-controller-manager.yaml")
        }
        other => panic!("expected a missing manifest, got {other:?}"),
    }
    let source = err.source().expect("the cause is the error's source");
    assert!(source.downcast_ref::<StepFailure>().is_some());
    let text = err.to_string();
    assert!(text.starts_with("setup step 2 (edit kube-controller-manager manifest) failed: "), "{text}");
    assert!(text.contains("applied before it:\n    - write /etc/kubernetes/first.conf"), "{text}");
    // What was applied stays applied: the report is the truth.
    let first = backend.read_file(&backend.control_plane(), Path::new("/etc/kubernetes/first.conf")).await.unwrap();
    assert_eq!(first.as_deref(), Some(b"one\n".as_slice()));
}
