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
fn a_jsonpath_that_does_not_parse_is_placed_at_its_path_key() {
    let bad = GOOD.replace(
        "    object: {kind: Namespace, name: \"{{ namespace }}\"}",
        "    object: {kind: Namespace, name: \"{{ namespace }}\", fields: [{path: \"$.metadata.labels[?@.x ==]\", present: true}]}",
    );
    let found = findings(&bad, &[NS]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("scenario.yaml:16:66:"), "{found:?}");
    assert!(
        found[0]
            .contains(": JSONPath \"$.metadata.labels[?@.x ==]\" does not parse at character 26: expected comparable"),
        "{found:?}"
    );
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
fn tls_and_anonymous_probes_are_checked_before_grading() {
    let cases = [
        ("    tls-handshake: {versions: [\"1.1\"], accepted: false}", "version \"1.1\" is not 1.2 or 1.3"),
        ("    tls-handshake: {versions: [], accepted: false}", "needs at least one version"),
        (
            "    tls-handshake: {versions: [\"1.2\"], cipher-suites: [TLS_RSA_WITH_RC4_128_SHA], accepted: false}",
            "cannot offer cipher suite \"TLS_RSA_WITH_RC4_128_SHA\"",
        ),
        ("    anonymous-request: {path: api/v1/pods, status: 401}", "must start with /"),
        ("    anonymous-request: {status: 418}", "status 418 is not 200, 401 or 403"),
    ];
    for (probe, message) in cases {
        let bad = GOOD.replace("    object: {kind: Namespace, name: \"{{ namespace }}\"}", probe);
        let found = findings(&bad, &[NS]);
        assert!(found.iter().any(|f| f.contains("scenario.yaml:14:") && f.contains(message)), "{probe}: {found:?}");
    }
    let good = [
        "    tls-handshake: {versions: [\"1.2\"], cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], accepted: false}",
        "    anonymous-request: {status: 401}",
        "    anonymous-grants: {}",
        "    all-of:\n      - node-write: {as-node: worker, target: worker, allowed: true}\n      - node-write: {as-node: worker, target: control-plane, allowed: false}",
    ];
    for probe in good {
        let fine = GOOD.replace("    object: {kind: Namespace, name: \"{{ namespace }}\"}", probe);
        assert_eq!(findings(&fine, &[NS]), Vec::<String>::new(), "{probe}");
    }
}

#[test]
fn answer_file_probes_are_checked_before_grading() {
    let answer = |body: &str| format!("    answer-file:\n      path: /opt/answer.txt\n      answers:\n{body}");
    let cases = [
        (answer("        - {key: identity, kind: service-account, equals: report-gen}"), "is not a ServiceAccount"),
        (answer("        - {key: pod, kind: pod, equals: web-1}"), "give its namespace"),
        (answer("        - {key: who, equals: a}\n        - {key: Who, equals: b}"), "asked twice"),
        (answer("        - {key: \"a:b\", equals: x}"), "cannot be written as `key: value`"),
        (
            "    answer-file: {path: answer.txt, answers: [{key: who, equals: x}]}".to_string(),
            "not an absolute node path",
        ),
    ];
    let requires = "requires: [api, control-plane-files]";
    for (probe, message) in cases {
        let bad = GOOD
            .replace("requires: [api]", requires)
            .replace("task: Fix {{ namespace }}.", "task: Fix {{ namespace }}; answer in /opt/answer.txt.")
            .replace("    object: {kind: Namespace, name: \"{{ namespace }}\"}", &probe);
        let found = findings(&bad, &[NS]);
        assert!(found.iter().any(|f| f.contains("scenario.yaml:14:") && f.contains(message)), "{probe}: {found:?}");
    }
    // The learner writes the answer file: the task must say where.
    let unnamed = GOOD
        .replace("requires: [api]", requires)
        .replace(
            "    object: {kind: Namespace, name: \"{{ namespace }}\"}",
            "    answer-file: {path: /opt/answer.txt, answers: [{key: who, kind: service-account, equals: a/b}]}",
        )
        .replace(
            "      - apply-file: ns.yaml\nwrong",
            "      - write-file: {path: /opt/answer.txt, content: \"who: a/b\"}\nwrong",
        );
    let found = findings(&unnamed, &[NS]);
    assert!(found.iter().any(|f| f.contains("expects /opt/answer.txt, which a solution writes")), "{found:?}");
    let named = unnamed.replace("task: Fix {{ namespace }}.", "task: Fix {{ namespace }}; answer in /opt/answer.txt.");
    assert_eq!(findings(&named, &[NS]), Vec::<String>::new());
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

// ---------------------------------------------------------------------------------------------
// A corpus of malformed scenarios: each case edits GOOD (with every capability declared, so
// only the mistake shows), may add or replace files, and names the `file:line:column: message`
// it must give, exactly once.

const PROBE: &str = "    object: {kind: Namespace, name: \"{{ namespace }}\"}";
const SETUP: &str = "  - apply-file: ns.yaml";
const ALL: &str = "requires: [api, control-plane-files, pod-exec, etcd, kubelet-config]";

struct Case {
    name: &'static str,
    edits: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static [u8])],
    folder: &'static str,
    expect: &'static str,
}

const fn case(name: &'static str, edits: &'static [(&'static str, &'static str)], expect: &'static str) -> Case {
    Case { name, edits, files: &[], folder: "cluster-hardening/demo", expect }
}

const fn with_files(
    name: &'static str,
    edits: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static [u8])],
    expect: &'static str,
) -> Case {
    Case { name, edits, files, folder: "cluster-hardening/demo", expect }
}

const fn in_folder(
    name: &'static str,
    folder: &'static str,
    edits: &'static [(&'static str, &'static str)],
    expect: &'static str,
) -> Case {
    Case { name, edits, files: &[], folder, expect }
}

const CORPUS: &[Case] = &[
    // Unknown keys are placed at the key, not at the check or step holding it.
    case(
        "unknown key in an object probe",
        &[(PROBE, "    object: {kind: Namespace, name: x, nme: y}")],
        "scenario.yaml:16:40: unknown field `nme`",
    ),
    case(
        "unknown key in a field condition",
        &[(PROBE, "    object: {kind: Namespace, name: x, fields: [{path: $.a, equals: 1, labl: z}]}")],
        "scenario.yaml:16:72: unknown key `labl` in a field condition",
    ),
    case(
        "two expectations in a field condition",
        &[(PROBE, "    object: {kind: Namespace, name: x, fields: [{path: $.a, equals: 1, matches: z}]}")],
        "scenario.yaml:16:72: a field condition holds two expectations, `equals` and `matches`: give only one",
    ),
    case(
        "no expectation in a field condition",
        &[(PROBE, "    objects: {kind: Pod, fields: [{path: $.a, any: true}]}")],
        "scenario.yaml:16:36: a field condition needs one expectation",
    ),
    case(
        "unknown key in a component-flag probe",
        &[(PROBE, "    component-flag: {component: kube-apiserver, flag: x, present: true, flgg: y}")],
        "scenario.yaml:16:73: unknown key `flgg` in a component-flag probe",
    ),
    case(
        "two expectations in a component-flag probe",
        &[(PROBE, "    component-flag: {component: kube-apiserver, flag: x, equals: a, present: true}")],
        "scenario.yaml:16:69: a component-flag probe holds two expectations, `equals` and `present`",
    ),
    case(
        "unknown key in a component-flag file field",
        &[(
            PROBE,
            "    component-flag: {component: c, flag: f, present: true, file-fields: [{path: $.a, present: true, nay: 1}]}",
        )],
        "scenario.yaml:16:101: unknown key `nay` in a field condition",
    ),
    case(
        "unknown key in a static-pod step",
        &[(SETUP, "  - static-pod: {component: kube-apiserver, set-flag: {a: b}}")],
        "scenario.yaml:12:45: unknown field `set-flag`",
    ),
    case(
        "unknown key in a static-pod volume",
        &[(
            SETUP,
            "  - static-pod: {component: etcd, add-volumes: [{name: a, host-path: /a, mount-path: /a, readonly: true}]}",
        )],
        "scenario.yaml:12:90: unknown field `readonly`",
    ),
    case(
        "two probes in one check",
        &[(
            PROBE,
            "    object: {kind: Namespace, name: x}\n    can-i: {user: u, verb: get, resource: pods, allowed: false}",
        )],
        "scenario.yaml:17:5: a check has one probe; this one has `object` and `can-i`",
    ),
    case(
        "unknown probe type lists every type",
        &[(PROBE, "    objekt: {kind: Namespace, name: x}")],
        "scenario.yaml:16:5: a check needs one probe, one of: object, objects, component-flag, kubelet-config, node-file, can-i, effective-rules, admission, etcd-value, audit-log, certificate, command, network-access, anonymous-request, anonymous-grants, node-write, tls-handshake, answer-file, firewall, server-version, any-of, all-of; `objekt` is not a probe type",
    ),
    case(
        "unknown probe type inside any-of",
        &[(PROBE, "    any-of:\n      - object: {kind: Namespace, name: x}\n      - objet: {kind: Pod, name: y}")],
        "scenario.yaml:18:9: `objet` is not a probe type",
    ),
    case(
        "unknown key in a can-i probe",
        &[(PROBE, "    can-i: {user: u, verbs: get, resource: pods, allowed: false}")],
        "scenario.yaml:16:22: unknown field `verbs`",
    ),
    case(
        "unknown key in a command probe",
        &[(PROBE, "    command: {node: control-plane, command: [id], exit: 0}")],
        "scenario.yaml:16:51: unknown field `exit`",
    ),
    case(
        "unknown key in an admission probe",
        &[(PROBE, "    admission: {object: x, allowed: false, reasons: y}")],
        "scenario.yaml:16:44: unknown field `reasons`",
    ),
    case(
        "unknown key in a probe inside all-of",
        &[(
            PROBE,
            "    all-of:\n      - can-i: {user: u, verb: get, resource: pods, allowed: false}\n      - object: {kind: Pod, name: p, nmespace: z}",
        )],
        "scenario.yaml:18:38: unknown field `nmespace`",
    ),
    case(
        "unknown key in an etcd-value probe",
        &[(PROBE, "    etcd-value: {key: /registry/x, provider: [identity]}")],
        "scenario.yaml:16:36: unknown field `provider`",
    ),
    case(
        "unknown key in a network-access endpoint",
        &[(
            PROBE,
            "    network-access: {from: {namespace: a, label: {x: y}}, to: {namespace: b}, port: 80, allowed: true}",
        )],
        "scenario.yaml:16:43: unknown field `label`",
    ),
    case(
        "unknown key in an audit-log match",
        &[(PROBE, "    audit-log: {match: {verb: get, resorce: secrets}, present: true}")],
        "scenario.yaml:16:36: unknown field `resorce`",
    ),
    case(
        "unknown key in a write-file step",
        &[(SETUP, "  - write-file: {path: /etc/x, contents: y}")],
        "scenario.yaml:12:32: unknown field `contents`",
    ),
    case(
        "unknown key in a pods-ready wait",
        &[(SETUP, "  - wait: {pods-ready: {namespace: a, selectr: b}}")],
        "scenario.yaml:12:39: unknown field `selectr`",
    ),
    // Files steps use: templates that parse, text that is text.
    with_files(
        "template syntax error in an applied file",
        &[],
        &[("ns.yaml", b"kind: Namespace\nmetadata: {name: {{ namespace }\n")],
        "ns.yaml:2:31: template does not parse",
    ),
    with_files(
        "template syntax error on a later line",
        &[],
        &[("ns.yaml", b"kind: Namespace\nmetadata:\n  name: {% if namespace %}x\n")],
        "ns.yaml:3:28: template does not parse",
    ),
    with_files(
        "template syntax error in the middle of a file",
        &[],
        &[("ns.yaml", b"kind: Namespace\nmetadata:\n  name: {{ namespace | }}\nspec: {}\n")],
        "ns.yaml:3:24: template does not parse",
    ),
    with_files(
        "template syntax error in a write-file source",
        &[(SETUP, "  - write-file: {path: /etc/x, from: conf.yaml}")],
        &[("conf.yaml", b"a: {{ namespace | }}\n")],
        "conf.yaml:1:19: template does not parse",
    ),
    with_files(
        "template syntax error in a create-missing-file file",
        &[(SETUP, "  - create-missing-file: crd.yaml")],
        &[("crd.yaml", b"kind: X\n{# unclosed comment\n")],
        "crd.yaml:2:20: template does not parse",
    ),
    with_files(
        "binary file applied",
        &[],
        &[("ns.yaml", b"kind: Namespace\n\0\x01\x02")],
        "scenario.yaml:12:17: file \"ns.yaml\" is binary or not UTF-8",
    ),
    with_files(
        "non-UTF-8 file written",
        &[(SETUP, "  - write-file: {path: /etc/x, from: blob.bin}")],
        &[("blob.bin", b"\xff\xfe\xfd")],
        "scenario.yaml:12:38: file \"blob.bin\" is binary or not UTF-8",
    ),
    with_files(
        "a file with an unknown filter",
        &[],
        &[("ns.yaml", b"kind: Namespace\nmetadata: {name: {{ namespace | shout }}}\n")],
        "scenario.yaml:12:17: file \"ns.yaml\" does not render",
    ),
    case(
        "missing file is placed at its step",
        &[(SETUP, "  - apply-file: absent.yaml")],
        "scenario.yaml:12:17: file \"absent.yaml\" is not in the scenario folder",
    ),
    // Regexes compile, wherever a probe takes one.
    case(
        "bad regex in a field condition",
        &[(PROBE, "    object: {kind: Namespace, name: x, fields: [{path: $.a, matches: \"(abc\"}]}")],
        "scenario.yaml:16:61: `matches` is not a regular expression: /(abc/: unclosed group",
    ),
    case(
        "bad regex in a component flag",
        &[(PROBE, "    component-flag: {component: etcd, flag: x, matches: \"[a-\"}")],
        "scenario.yaml:16:48: `matches` is not a regular expression",
    ),
    case(
        "bad regex in an admission reason",
        &[(PROBE, "    admission: {object: x, allowed: false, reason: \"violates (PodSecurity\"}")],
        "scenario.yaml:16:44: `reason` is not a regular expression",
    ),
    case(
        "bad regex in command output",
        &[(PROBE, "    command: {node: control-plane, command: [id], stdout-matches: \"*x\"}")],
        "scenario.yaml:16:51: `stdout-matches` is not a regular expression",
    ),
    case(
        "bad regex in command output that must not match",
        &[(PROBE, "    command: {pod: a/b, command: [id], stdout-not-matches: \"a{2,1}\"}")],
        "scenario.yaml:16:40: `stdout-not-matches` is not a regular expression",
    ),
    case(
        "bad regex inside any-of",
        &[(PROBE, "    any-of:\n      - command: {node: control-plane, command: [id], stdout-matches: \"(\"}")],
        "scenario.yaml:17:55: `stdout-matches` is not a regular expression",
    ),
    case(
        "bad regex in a component flag's file fields",
        &[(
            PROBE,
            "    component-flag: {component: c, flag: f, present: true, file-fields: [{path: $.a, matches: \"[\"}]}",
        )],
        "scenario.yaml:16:86: `matches` is not a regular expression",
    ),
    case(
        "bad regex once params are rendered",
        &[
            ("  namespace: demo", "  namespace: demo\n  pattern: \"(x\""),
            (PROBE, "    object: {kind: Namespace, name: x, fields: [{path: $.a, matches: \"{{ pattern }}\"}]}"),
        ],
        "scenario.yaml:17:61: `matches` is not a regular expression: /(x/",
    ),
    // Weights.
    case(
        "zero weight",
        &[("  - id: ns-exists\n", "  - id: ns-exists\n    weight: 0\n")],
        "scenario.yaml:15:5: weight 0 is out of range: a check weighs 1 to 100",
    ),
    case(
        "weight over the bound",
        &[("  - id: ns-exists\n", "  - id: ns-exists\n    weight: 101\n")],
        "scenario.yaml:15:5: weight 101 is out of range",
    ),
    case(
        "weights whose sum overflows",
        &[(
            "  - id: ns-exists\n",
            "  - id: other\n    weight: 4294967295\n    description: d\n    object: {kind: Namespace, name: other}\n  - id: ns-exists\n    weight: 4294967295\n",
        )],
        "scenario.yaml:15:5: weight 4294967295 is out of range: a check weighs 1 to 100",
    ),
    case(
        "all-zero weights",
        &[(
            "  - id: ns-exists\n",
            "  - id: other\n    weight: 0\n    description: d\n    object: {kind: Namespace, name: other}\n  - id: ns-exists\n    weight: 0\n",
        )],
        "scenario.yaml:19:5: weight 0 is out of range",
    ),
    // Layout and ids.
    in_folder(
        "domain folder disagrees with domain:",
        "system-hardening/demo",
        &[],
        "scenario.yaml:3:9: domain \"cluster-hardening\" differs from the folder \"system-hardening\"",
    ),
    in_folder(
        "id disagrees with its folder",
        "cluster-hardening/demo-two",
        &[],
        "scenario.yaml:1:5: id \"demo\" differs from its folder \"demo-two\"",
    ),
    in_folder(
        "id with capitals and underscore",
        "cluster-hardening/Demo_1",
        &[("id: demo", "id: Demo_1")],
        "scenario.yaml:1:5: id \"Demo_1\" is not a plain slug",
    ),
    in_folder(
        "id with a double dash",
        "cluster-hardening/demo--x",
        &[("id: demo", "id: demo--x")],
        "scenario.yaml:1:5: id \"demo--x\" is not a plain slug",
    ),
    in_folder(
        "id with a leading dash",
        "cluster-hardening/-demo",
        &[("id: demo", "id: \"-demo\"")],
        "scenario.yaml:1:5: id \"-demo\" is not a plain slug",
    ),
    in_folder(
        "id with a dot",
        "cluster-hardening/demo.v2",
        &[("id: demo", "id: demo.v2")],
        "scenario.yaml:1:5: id \"demo.v2\" is not a plain slug",
    ),
    // Network-access ports.
    case(
        "port name in capitals",
        &[(PROBE, "    network-access: {from: {namespace: a}, to: {namespace: b}, port: HTTP, allowed: true}")],
        "scenario.yaml:16:64: port \"HTTP\" is neither a port number (1-65535) nor a valid port name (IANA_SVC_NAME",
    ),
    case(
        "port zero",
        &[(PROBE, "    network-access: {from: {namespace: a}, to: {namespace: b}, port: 0, allowed: true}")],
        "scenario.yaml:16:64: port \"0\" is neither a port number",
    ),
    case(
        "port over 65535",
        &[(PROBE, "    network-access: {from: {namespace: a}, to: {namespace: b}, port: 70000, allowed: true}")],
        "scenario.yaml:16:64: port \"70000\" is neither a port number",
    ),
    case(
        "port from a param that is not a number",
        &[
            ("  namespace: demo", "  namespace: demo\n  port: \"80_a\""),
            (
                PROBE,
                "    network-access: {from: {namespace: a}, to: {namespace: b}, port: \"{{ port }}\", allowed: true}",
            ),
        ],
        "scenario.yaml:17:64: port \"80_a\" is neither a port number",
    ),
    case(
        "port name with a double dash",
        &[(PROBE, "    network-access: {from: {namespace: a}, to: {namespace: b}, port: my--port, allowed: true}")],
        "scenario.yaml:16:64: port \"my--port\" is neither a port number",
    ),
    case(
        "port name over 15 characters",
        &[(
            PROBE,
            "    network-access: {from: {namespace: a}, to: {namespace: b}, port: abcdefghijklmnop, allowed: true}",
        )],
        "scenario.yaml:16:64: port \"abcdefghijklmnop\" is neither a port number",
    ),
    case(
        "port name without a letter",
        &[(PROBE, "    network-access: {from: {namespace: a}, to: {namespace: b}, port: \"80-80\", allowed: true}")],
        "scenario.yaml:16:64: port \"80-80\" is neither a port number",
    ),
    case(
        "protocol that is not one",
        &[(
            PROBE,
            "    network-access: {from: {namespace: a}, to: {namespace: b}, port: 80, protocol: ICMP, allowed: true}",
        )],
        "scenario.yaml:16:74: protocol \"ICMP\" is not one of TCP, UDP, SCTP",
    ),
    // JSONPaths, at their path key.
    case(
        "bad JSONPath in objects",
        &[(PROBE, "    objects: {kind: Pod, fields: [{path: \"$.spec[\", present: true}]}")],
        "scenario.yaml:16:36: JSONPath \"$.spec[\" does not parse",
    ),
    case(
        "bad JSONPath in a node file",
        &[(PROBE, "    node-file: {path: /etc/x, fields: [{path: \"$..[?@.a ==]\", present: true}]}")],
        "scenario.yaml:16:41: JSONPath \"$..[?@.a ==]\" does not parse",
    ),
    case(
        "bad JSONPath in a kubelet config",
        &[(PROBE, "    kubelet-config: {fields: [{path: \"authentication.anonymous\", equals: false}]}")],
        "scenario.yaml:16:32: JSONPath \"authentication.anonymous\" does not parse",
    ),
    // node-file digests and formats.
    case(
        "digest that is not a SHA-512",
        &[(PROBE, "    node-file: {path: /opt/x, digest: {equals: abc123}}")],
        "digest \"abc123\" is not a SHA-512 in hex (128 characters)",
    ),
    case(
        "digest with both a value and a list",
        &[(PROBE, "    node-file: {path: /opt/x, digest: {equals: abc, listed-in: /opt/SUMS}}")],
        "a digest condition takes exactly one of equals and listed-in",
    ),
    case(
        "digest list on a relative path",
        &[(PROBE, "    node-file: {path: /opt/x, digest: {algorithm: sha256, listed-in: SUMS}}")],
        "digest listed-in \"SUMS\" is not an absolute node path",
    ),
    case(
        "digest of a file that must be absent",
        &[(PROBE, "    node-file: {path: /opt/x, absent: true, digest: {listed-in: /opt/SUMS}}")],
        "a file that must be absent has no digest",
    ),
    case(
        "unknown file format",
        &[(PROBE, "    node-file: {path: /etc/ssh/sshd_config, format: ssh, fields: [{path: $.a, equals: 1}]}")],
        "unknown variant `ssh`",
    ),
    case(
        "file format with no fields",
        &[(PROBE, "    node-file: {path: /etc/ssh/sshd_config, format: sshd-config}")],
        "format sshd-config is only read for fields, and there are none",
    ),
    // Templates in scenario.yaml, placed on their own line and shown once.
    case(
        "template error in the task",
        &[("task: Fix {{ namespace }}.", "task: Fix {{ namespace }.")],
        "scenario.yaml:10:24: template does not parse",
    ),
    case(
        "template error on the second line of a block task",
        &[("task: Fix {{ namespace }}.", "task: |\n  Fix the namespace.\n  Then {% if namespace %} it.")],
        "scenario.yaml:12:28: template does not parse",
    ),
    case(
        "template error in a check description",
        &[("    description: the namespace exists", "    description: the {{ namespace namespace exists")],
        "scenario.yaml:15:35: template does not parse",
    ),
    // Node paths: the task and the checks agree.
    case(
        "a task path no check reads",
        &[("task: Fix {{ namespace }}.", "task: Fix {{ namespace }} and write /etc/demo/conf.yaml.")],
        "scenario.yaml:10:37: the task names /etc/demo/conf.yaml, but no check reads it",
    ),
    case(
        "a task path from a param, in a block task",
        &[
            ("  namespace: demo", "  namespace: demo\n  file: /etc/demo/conf.yaml"),
            (
                "task: Fix {{ namespace }}.",
                "task: |\n  Fix {{ namespace }}.\n  Keep its settings in `{{ file }}` on the node.",
            ),
        ],
        "scenario.yaml:13:25: the task names /etc/demo/conf.yaml, but no check reads it",
    ),
    case(
        "a free path the task does not name",
        &[("task: Fix {{ namespace }}.", "task: Fix {{ namespace }}.\nfree-paths: [/etc/demo/conf.yaml]")],
        "scenario.yaml:11:14: free-paths lists /etc/demo/conf.yaml, which the task text does not name",
    ),
    case(
        "a free path a check reads",
        &[
            (
                "task: Fix {{ namespace }}.",
                "task: Fix {{ namespace }} in /etc/demo/conf.yaml.\nfree-paths: [/etc/demo/conf.yaml]",
            ),
            (PROBE, "    node-file: {path: /etc/demo/conf.yaml}"),
        ],
        "scenario.yaml:11:14: free-paths lists /etc/demo/conf.yaml, but check \"ns-exists\" reads that very path",
    ),
    case(
        "a check expects a file a solution writes where the task does not say",
        &[
            (PROBE, "    node-file: {path: /etc/demo/conf.yaml}"),
            (
                "      - apply-file: ns.yaml\nwrong",
                "      - write-file: {path: /etc/demo/conf.yaml, content: x}\nwrong",
            ),
        ],
        "scenario.yaml:14:5: check \"ns-exists\" expects /etc/demo/conf.yaml, which a solution writes, but the task never names it",
    ),
    case(
        "install-tool names a tool ckslab does not build",
        &[(SETUP, "  - install-tool: {tool: trivy}")],
        "scenario.yaml:12:26: no node tool is called \"trivy\"; scripts/build-tools.sh builds kubesec, syft",
    ),
    case(
        "at-least that is not a number",
        &[(
            PROBE,
            "    command: {node: control-plane, command: [kubesec, scan, /x.yaml], stdout-fields: [{path: $.score, at-least: many}]}",
        )],
        "scenario.yaml:16:103: `at-least` needs a number, got \"many\"",
    ),
    case(
        "a stdout-fields JSONPath that does not parse",
        &[(
            PROBE,
            "    command: {node: control-plane, command: [kubesec, scan, /x.yaml], stdout-fields: [{path: \"$[\", absent: true}]}",
        )],
        "JSONPath \"$[\"",
    ),
    case(
        "an image-archive of an unknown distro",
        &[(SETUP, "  - image-archive: {path: /opt/i.tar, image: a:1, distro: centos, release: \"7\", packages: []}")],
        "unknown variant `centos`",
    ),
    case(
        "template error in a hint",
        &[("hints: [one, two, three]", "hints: [one, \"{{ namespace + }}\", three]")],
        "scenario.yaml:17:30: template does not parse",
    ),
];

#[test]
fn the_malformed_corpus_gives_each_message_once_at_its_key() {
    assert!(CORPUS.len() >= 50, "{} cases", CORPUS.len());
    let base = GOOD.replace("requires: [api]", ALL);
    let mut failures = Vec::new();
    for case in CORPUS {
        let mut scenario = base.clone();
        for (from, to) in case.edits {
            assert!(scenario.contains(from), "{}: {from:?} is not in the scenario", case.name);
            scenario = scenario.replacen(from, to, 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(case.folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("scenario.yaml"), &scenario).unwrap();
        std::fs::write(folder.join(NS.0), NS.1).unwrap();
        for (name, body) in case.files {
            std::fs::write(folder.join(name), body).unwrap();
        }
        let found: Vec<String> = match Catalog::from_dir(dir.path()) {
            Ok(catalog) => lint(&catalog.scenarios[0]).into_iter().map(|f| f.to_string()).collect(),
            Err(e) => e.to_string().lines().skip(1).map(str::to_string).collect(),
        };
        let hits = found.iter().filter(|f| f.contains(case.expect)).count();
        if hits != 1 {
            failures.push(format!("{}: want {:?} once, got {found:#?}", case.name, case.expect));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), CORPUS.len(), failures.join("\n"));
}

#[test]
fn valid_probes_of_every_type_lint_clean() {
    let probes = "    any-of:\n      - network-access: {from: {namespace: a, labels: {app: x}}, to: {ip: 10.0.0.1}, port: https, protocol: TCP, allowed: false}\n      - all-of:\n          - certificate: {csr: c, common-name: x}\n          - audit-log: {match: {verb: get}, present: true}";
    let bad = GOOD.replace("requires: [api]", ALL).replace(PROBE, probes);
    assert_eq!(findings(&bad, &[NS]), Vec::<String>::new());
}

#[test]
fn task_paths_that_checks_read_or_the_task_frees_lint_clean() {
    let base = GOOD.replace("requires: [api]", ALL);
    // The path a check reads, and its folder; the manifest a component-flag probe reads.
    let read = base
        .replace(
            "task: Fix {{ namespace }}.",
            "task: Write /etc/demo/conf.yaml (in /etc/demo/) and edit /etc/kubernetes/manifests/kube-apiserver.yaml.",
        )
        .replace(
            PROBE,
            "    all-of:\n      - node-file: {path: /etc/demo/conf.yaml}\n      - component-flag: {component: kube-apiserver, flag: x, present: true}",
        );
    assert_eq!(findings(&read, &[NS]), Vec::<String>::new());
    // A path the task frees in words and in free-paths; a file the check expects that setup gives.
    let freed = base
        .replace(
            "task: Fix {{ namespace }}.",
            "task: Put it at /etc/demo/policy.yaml, say; any path will do.\nfree-paths: [/etc/demo/policy.yaml]",
        )
        .replace(SETUP, "  - write-file: {path: /etc/demo/given.yaml, content: x}")
        .replace(PROBE, "    node-file: {path: /etc/demo/given.yaml}");
    assert_eq!(findings(&freed, &[NS]), Vec::<String>::new());
}

#[test]
fn node_paths_are_found_where_a_sentence_names_them() {
    use ckslab::scenario::lint::node_paths;
    let paths = |text: &str| node_paths(text).into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    assert_eq!(paths("Write `/etc/kubernetes/audit/policy.yaml`."), ["/etc/kubernetes/audit/policy.yaml"]);
    assert_eq!(paths("logs go to /var/log/app/, then /tmp."), ["/var/log/app", "/tmp"]);
    assert_eq!(paths("mountPath == '/tmp'"), ["/tmp"]);
    // Not node paths: URLs, relative paths, API paths, and folders outside the node's own.
    assert_eq!(
        paths("see https://example.com/etc/x, ./etc/y, a/var/z, /api/v1/pods, /registry/secrets"),
        Vec::<String>::new()
    );
}

#[test]
fn lint_says_what_layout_it_expects() {
    let empty = tempfile::tempdir().unwrap();
    Command::cargo_bin("ckslab").unwrap().args(["lint"]).arg(empty.path()).assert().code(1).stderr(
        predicates::str::contains("no scenario found: lint expects a folder laid out as <domain>/<id>/scenario.yaml"),
    );
    // One scenario's own folder is one level too deep, and lint says so.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), GOOD, &[NS]);
    Command::cargo_bin("ckslab")
        .unwrap()
        .args(["lint"])
        .arg(dir.path().join("cluster-hardening/demo"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("this is one scenario's folder"));
}
