//! Bad scenario files get errors that name file, line and column.

use std::path::Path;

use assert_cmd::Command;
use ckslab::scenario::{Catalog, lint::lint};

const GOOD: &str = r#"id: demo
title: Demo
domain: cluster-hardening
competencies: [rbac]
difficulty: easy
minutes: 5
requires: [api]
params:
  namespace: demo
task: Fix {{ namespace }}.
setup:
  - apply-file: ns.yaml
checks:
  - id: ns-exists
    description: the namespace exists
    object: {kind: Namespace, name: "{{ namespace }}"}
hints: [one, two, three]
solutions:
  - name: ref
    steps:
      - apply-file: ns.yaml
wrong-attempts:
  - name: nothing
    steps: []
    fails: [ns-exists]
"#;

fn write(dir: &Path, scenario: &str, files: &[(&str, &str)]) {
    let folder = dir.join("cluster-hardening/demo");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("scenario.yaml"), scenario).unwrap();
    for (name, body) in files {
        std::fs::write(folder.join(name), body).unwrap();
    }
}

fn findings(scenario: &str, files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), scenario, files);
    match Catalog::from_dir(dir.path()) {
        Ok(catalog) => lint(&catalog.scenarios[0]).into_iter().map(|f| f.to_string()).collect(),
        Err(e) => vec![e.to_string()],
    }
}

const NS: (&str, &str) = ("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: {{ namespace }}}\n");

#[test]
fn a_good_scenario_is_clean() {
    assert_eq!(findings(GOOD, &[NS]), Vec::<String>::new());
}

#[test]
fn unknown_key_is_placed() {
    let bad = GOOD.replace("minutes: 5", "minutes: 5\ntimeout: 3");
    let found = findings(&bad, &[NS]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("scenario.yaml:7:1:"), "{}", found[0]);
    assert!(found[0].contains("timeout"), "{}", found[0]);
}

#[test]
fn unknown_check_type_is_placed() {
    let bad = GOOD.replace("    object: {kind: Namespace", "    objekt: {kind: Namespace");
    let found = findings(&bad, &[NS]);
    assert!(found[0].contains("scenario.yaml:"), "{found:?}");
    assert!(found[0].contains("objekt"), "{found:?}");
}

#[test]
fn unknown_step_type_is_placed() {
    let bad = GOOD.replace("      - apply-file: ns.yaml", "      - aply: ns.yaml");
    let found = findings(&bad, &[NS]);
    assert!(found[0].contains("scenario.yaml:21:"), "{found:?}");
    assert!(found[0].contains("aply"), "{found:?}");
}

#[test]
fn undefined_param_is_placed() {
    let bad = GOOD.replace("task: Fix {{ namespace }}.", "task: Fix {{ namespace }} in {{ cluster }}.");
    let found = findings(&bad, &[NS]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("scenario.yaml:10:33: param \"cluster\" is used but not defined"), "{}", found[0]);
}

#[test]
fn undefined_param_in_a_file_names_the_file() {
    let found = findings(GOOD, &[("ns.yaml", "kind: Namespace\nmetadata: {name: {{ nmspace }}}\n")]);
    assert!(found.iter().any(|f| f.contains("ns.yaml:2:21: param \"nmspace\"")), "{found:?}");
}

#[test]
fn unknown_competency_and_check_id_and_file() {
    let bad = GOOD
        .replace("competencies: [rbac]", "competencies: [rbac, telepathy]")
        .replace("fails: [ns-exists]", "fails: [ns-exist]")
        .replace("      - apply-file: ns.yaml\nwrong", "      - apply-file: missing.yaml\nwrong");
    let found = findings(&bad, &[NS]);
    assert!(found.iter().any(|f| f.contains(":4:22: unknown competency id \"telepathy\"")), "{found:?}");
    assert!(found.iter().any(|f| f.contains(":25:13: wrong attempt names check \"ns-exist\"")), "{found:?}");
    assert!(found.iter().any(|f| f.contains("file \"missing.yaml\" is not in the scenario folder")), "{found:?}");
}

#[test]
fn probes_need_declared_capabilities() {
    let bad = GOOD.replace(
        "    object: {kind: Namespace, name: \"{{ namespace }}\"}",
        "    etcd-value: {key: /registry/namespaces/x, providers: [identity]}",
    );
    let found = findings(&bad, &[NS]);
    assert!(found.iter().any(|f| f.contains("uses etcd-value but `requires` does not list etcd")), "{found:?}");
}

#[test]
fn a_jsonpath_that_does_not_parse_is_placed_at_its_check() {
    let bad = GOOD.replace(
        "    object: {kind: Namespace, name: \"{{ namespace }}\"}",
        "    object: {kind: Namespace, name: \"{{ namespace }}\", fields: [{path: \"$.metadata.labels[?@.x ==]\", present: true}]}",
    );
    let found = findings(&bad, &[NS]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("scenario.yaml:14:5:"), "{found:?}");
    assert!(found[0].contains("check \"ns-exists\": JSONPath \"$.metadata.labels[?@.x ==]\" does not parse at character 26: expected comparable"), "{found:?}");
}

#[test]
fn a_command_names_one_place_to_run() {
    let bad = GOOD.replace("requires: [api]", "requires: [api, pod-exec, control-plane-files]").replace(
        "    object: {kind: Namespace, name: \"{{ namespace }}\"}",
        "    command: {node: control-plane, pods: {namespace: demo}, command: [id]}",
    );
    let found = findings(&bad, &[NS]);
    assert!(found.iter().any(|f| f.contains("give only one of node, pod and pods")), "{found:?}");
}

#[test]
fn the_cli_lints_a_folder_and_fails_on_problems() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &GOOD.replace("fails: [ns-exists]", "fails: [nope]"), &[NS]);
    Command::cargo_bin("ckslab")
        .unwrap()
        .args(["lint"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("wrong attempt names check \"nope\""));
    Command::cargo_bin("ckslab")
        .unwrap()
        .args(["lint"])
        .assert()
        .success()
        .stdout(predicates::str::contains("scenario(s) OK"));
}
