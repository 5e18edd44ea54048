//! Helpers shared by integration tests.

use std::path::Path;

use ckslab::backend::{Backend, LogProgress};
use ckslab::scenario::{Catalog, Rendered};

/// A scenario whose setup runs every step type that edits a node file: write-file over an
/// existing file, remove-file, and a static-pod edit (no wait: no API server runs in these tests).
const NODE_FILE_STEPS: &str = r#"id: node-file-steps
title: Every node file edit
domain: system-hardening
competencies: [kernel-hardening]
difficulty: easy
minutes: 1
requires: [control-plane-files]
task: edits node files
setup:
  - write-file: {path: /etc/kubernetes/learner.conf, content: "ckslab's\n", mode: 0o600}
  - remove-file: {path: /etc/kubernetes/notes.txt}
  - static-pod: {component: kube-scheduler, set-flags: {profiling: "false"}, wait: false}
checks:
  - id: c
    description: d
    node-file: {path: /etc/kubernetes/learner.conf}
hints: [a, b, c]
solutions:
  - name: s
    steps: []
"#;

const SCHEDULER: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-scheduler, namespace: kube-system}\nspec:\n  containers:\n    - name: kube-scheduler\n      image: registry.k8s.io/kube-scheduler:v1.34.4\n      command: [kube-scheduler, --profiling=true]\n";

pub fn node_file_steps() -> Rendered {
    scenario_from_yaml("system-hardening", "node-file-steps", NODE_FILE_STEPS)
}

/// One scenario, loaded and rendered as the catalog does, from its scenario.yaml text.
pub fn scenario_from_yaml(domain: &str, id: &str, yaml: &str) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(domain).join(id);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("scenario.yaml"), yaml).unwrap();
    let catalog = Catalog::from_dir(dir.path()).unwrap();
    catalog.get(id).unwrap().render(&Default::default()).unwrap()
}

/// Runs every node-file step type on `backend` over files the learner wrote, and proves each
/// one left a backup with the learner's bytes under the backend's backups folder.
pub async fn node_file_steps_leave_backups(backend: &dyn Backend) {
    let node = backend.control_plane();
    let files = [
        ("/etc/kubernetes/learner.conf", "the learner's config\n"),
        ("/etc/kubernetes/notes.txt", "the learner's notes\n"),
        ("/etc/kubernetes/manifests/kube-scheduler.yaml", SCHEDULER),
    ];
    for (path, text) in files {
        backend.put_file(&node, Path::new(path), text.as_bytes(), 0o600).await.unwrap();
    }
    let rendered = node_file_steps();
    ckslab::step::run_steps("setup", &rendered.scenario.setup, &rendered, backend, &LogProgress).await.unwrap();
    assert_eq!(backend.read_file(&node, Path::new(files[1].0)).await.unwrap(), None, "remove-file removed it");
    let scheduler = backend.read_file(&node, Path::new(files[2].0)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&scheduler).contains("--profiling=false"), "the static-pod edit took effect");
    for (path, text) in files {
        let relative = Path::new(path).strip_prefix("/").unwrap();
        let folder = backend.backups_dir().join(&node).join(relative.parent().unwrap());
        let name = relative.file_name().unwrap().to_string_lossy().into_owned();
        let saved: Vec<Vec<u8>> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("no backups folder {} for {path}: {e}", folder.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{name}.")))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(saved, vec![text.as_bytes().to_vec()], "{path}: one backup holding what the learner wrote");
    }
}
