//! Helpers shared by integration tests.
// Each test crate compiles this module and uses part of it.
#![allow(dead_code)]

pub mod fake_backend;

use std::path::Path;

use ckslab::backend::{Backend, LogProgress};
use ckslab::scenario::{Catalog, Rendered};

/// The setup steps of a scenario that runs every step type that edits a node file: write-file
/// over an existing file, remove-file, and a static-pod edit (no wait: no API server runs in
/// these tests).
const NODE_FILE_STEPS: &str = r#"  - write-file: {path: /etc/kubernetes/learner.conf, content: "ckslab's\n", mode: 0o600}
  - remove-file: {path: /etc/kubernetes/notes.txt}
  - static-pod: {component: kube-scheduler, set-flags: {profiling: "false"}, wait: false}
"#;

const SCHEDULER: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-scheduler, namespace: kube-system}\nspec:\n  containers:\n    - name: kube-scheduler\n      image: registry.k8s.io/kube-scheduler:v1.34.4\n      command: [kube-scheduler, --profiling=true]\n";

pub fn node_file_steps() -> Rendered {
    node_steps_scenario("node-file-steps", "/etc/kubernetes/learner.conf", NODE_FILE_STEPS)
}

/// A minimal scenario whose setup is `setup` (YAML list items) and whose one check reads
/// `checked_path`, rendered as the catalog renders it.
pub fn node_steps_scenario(id: &str, checked_path: &str, setup: &str) -> Rendered {
    let yaml = format!(
        "id: {id}\ntitle: Node file steps\ndomain: system-hardening\ncompetencies: [kernel-hardening]\n\
         difficulty: easy\nminutes: 1\nrequires: [control-plane-files]\ntask: edits node files\n\
         setup:\n{setup}checks:\n  - id: c\n    description: d\n    node-file: {{path: {checked_path}}}\n\
         hints: [a, b, c]\nsolutions:\n  - name: s\n    steps: []\n"
    );
    scenario_from_yaml("system-hardening", id, &yaml)
}

/// A local backend in a fresh home whose control-plane node has its manifests folder, for
/// step tests that need node files and no running cluster. Keep the TempDir alive.
pub fn local_node_backend() -> (tempfile::TempDir, ckslab::backend::local::LocalBackend) {
    let home = tempfile::tempdir().unwrap();
    let backend = ckslab::backend::local::LocalBackend::new(home.path());
    let root = backend.node_root(&backend.control_plane()).unwrap();
    std::fs::create_dir_all(root.join("etc/kubernetes/manifests")).unwrap();
    (home, backend)
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
