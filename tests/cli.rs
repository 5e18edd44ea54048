//! The command line, end to end without a cluster.

use assert_cmd::Command;
use predicates::prelude::*;

fn ckslab(home: &std::path::Path) -> Command {
    let mut command = Command::cargo_bin("ckslab").unwrap();
    command.env("CKSLAB_HOME", home).env("CKSLAB_BACKEND", "local").env_remove("CKSLAB_SCENARIOS");
    command
}

#[test]
fn help_teaches_a_first_session() {
    let home = tempfile::tempdir().unwrap();
    ckslab(home.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("ckslab start etcd-encryption"))
        .stdout(predicate::str::contains("verify"))
        .stdout(predicate::str::contains("ckslab classroom join <url>"));
}

#[test]
fn list_groups_the_catalog_by_domain_with_weights() {
    let home = tempfile::tempdir().unwrap();
    let out = ckslab(home.path()).args(["list", "--format", "json"]).assert().success().get_output().stdout.clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let domains = json["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 6);
    let total: u64 = domains.iter().map(|d| d["weight"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    let hardening = domains.iter().find(|d| d["id"] == "cluster-hardening").unwrap();
    let rbac = hardening["scenarios"].as_array().unwrap().iter().find(|s| s["id"] == "rbac-least-privilege").unwrap();
    assert_eq!(rbac["runnable"], true);
}

#[test]
fn show_renders_the_task_from_params() {
    let home = tempfile::tempdir().unwrap();
    ckslab(home.path())
        .args(["show", "etcd-encryption"])
        .assert()
        .success()
        .stdout(predicate::str::contains("/etc/kubernetes/enc/enc.yaml"))
        .stdout(predicate::str::contains("{{").not());
    ckslab(home.path())
        .args(["show", "no-such-scenario"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no scenario with id \"no-such-scenario\""));
}

#[test]
fn grade_without_a_cluster_is_an_error_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let out = ckslab(home.path())
        .args(["grade", "psa-restricted-namespace", "--format", "json"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for verdict in json["verdicts"].as_array().unwrap() {
        assert_eq!(verdict["outcome"], "error");
        assert!(verdict["observed"].as_str().unwrap().contains("ckslab up --backend local"), "{verdict}");
    }
}

#[test]
fn hints_are_revealed_one_at_a_time_and_remembered() {
    let home = tempfile::tempdir().unwrap();
    ckslab(home.path())
        .args(["hint", "rbac-least-privilege"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hint 1/3").and(predicate::str::contains("hint 2/3").not()));
    ckslab(home.path())
        .args(["hint", "rbac-least-privilege"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hint 2/3").and(predicate::str::contains("hint 3/3").not()));
    ckslab(home.path())
        .args(["hint", "rbac-least-privilege", "--all"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hint 3/3"));
}

#[test]
fn junit_output_is_xml_per_check() {
    let home = tempfile::tempdir().unwrap();
    ckslab(home.path())
        .args(["grade", "rbac-least-privilege", "--format", "junit"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("<testsuite name=\"rbac-least-privilege\" tests=\"7\""))
        .stdout(predicate::str::contains("<error"));
}

#[test]
fn doctor_reports_findings_as_json() {
    let home = tempfile::tempdir().unwrap();
    let out = ckslab(home.path()).args(["doctor", "--format", "json"]).assert().success().get_output().stdout.clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["backend"], "local");
    assert!(json["findings"].as_array().unwrap().iter().any(|f| f["name"] == "docker engine"));
    assert!(json["scenarios"].as_array().unwrap().len() >= 6);
}

#[test]
fn a_grade_without_a_cluster_is_no_attempt_and_never_reaches_the_classroom() {
    let home = tempfile::tempdir().unwrap();
    // A joined classroom that would see any report: nothing may connect to it.
    let classroom = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let membership = ckslab::classroom::client::Membership {
        url: format!("http://{}", classroom.local_addr().unwrap()),
        token: "t0k".into(),
        learner: "Ana".into(),
        classroom: "room".into(),
    };
    membership.save(home.path()).unwrap();
    ckslab(home.path())
        .args(["grade", "rbac-least-privilege", "--format", "json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no ckslab cluster is running on the local backend"))
        .stderr(predicate::str::contains("not an attempt"))
        .stderr(predicate::str::contains("reported to your classroom").not());
    classroom.set_nonblocking(true).unwrap();
    assert_eq!(
        classroom.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the grade was reported to the classroom"
    );
    let history = ckslab::history::History::open(home.path()).unwrap();
    assert!(history.attempts(None, 10).unwrap().is_empty(), "the grade was recorded as an attempt");
}
