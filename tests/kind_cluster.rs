//! The kind backend against a real kind cluster: up, prove one scenario, down. It needs a
//! Docker engine and the `kind` CLI; where either is missing (as on our CI machine, which has
//! no Docker engine) it says so on stderr and in the test output, and passes without running.
//! `tests/kind_backend.rs` covers the same plumbing against recording fakes everywhere.

use assert_cmd::Command;
use ckslab::backend::kind::docker_engine_available;

#[tokio::test]
async fn kind_up_verify_down() {
    if !docker_engine_available().await {
        eprintln!(
            "SKIPPED kind_up_verify_down: no Docker engine answers `docker info`; run on a machine with Docker to exercise kind for real"
        );
        return;
    }
    if which("kind").is_none() {
        eprintln!("SKIPPED kind_up_verify_down: `kind` is not on PATH (go install sigs.k8s.io/kind@v0.30.0)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let ckslab = || {
        let mut cmd = Command::cargo_bin("ckslab").unwrap();
        cmd.env("CKSLAB_HOME", home.path()).env("CKSLAB_BACKEND", "kind");
        cmd
    };
    let up = ckslab().args(["up", "--backend", "kind"]).timeout(std::time::Duration::from_secs(600)).output().unwrap();
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    let verify = ckslab().args(["verify", "rbac-least-privilege"]).output().unwrap();
    let down = ckslab().arg("down").output().unwrap();
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(tool)).find(|p| p.is_file()))
}
