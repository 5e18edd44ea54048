//! A classroom bundle end to end: `bundle create` from this machine's binaries, `bundle install`
//! into an empty cache and home, then the installed ckslab brings up the local backend from the
//! installed binaries and proves one scenario.
//!
//! Needs the local backend's binaries (`$CKSLAB_BIN_DIR`, else the default cache: run
//! `ckslab fetch-binaries` or scripts/build-k8s.sh) and bubblewrap; fails, never skips, without
//! them. It brings up the local cluster on its fixed ports: run it under the cluster lock
//! (`flock /work/logs/local-cluster.lock cargo test --test bundle_e2e`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ckslab::tools::LOCAL_BINARIES;

const SCENARIO: &str = "rbac-least-privilege";

fn run(exe: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("CKSLAB_BIN_DIR").env_remove("CKSLAB_BACKEND").env_remove("XDG_CACHE_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    eprintln!(
        "$ ckslab {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Down<'a> {
    exe: PathBuf,
    env: Vec<(&'a str, &'a Path)>,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        run(&self.exe, &["down", "--backend", "local"], &self.env);
    }
}

#[test]
fn an_installed_bundle_brings_up_the_lab_and_proves_a_scenario() {
    let source_bin = std::env::var_os("CKSLAB_BIN_DIR").map(PathBuf::from).unwrap_or_else(ckslab::tools::bin_dir);
    for name in LOCAL_BINARIES {
        assert!(
            source_bin.join(name).is_file(),
            "{} is missing: run `ckslab fetch-binaries` or scripts/build-k8s.sh",
            source_bin.join(name).display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("class.tar.gz");
    let source_cache = dir.path().join("instructor-cache");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ckslab"));

    let started = std::time::Instant::now();
    let out = run(
        &exe,
        &["bundle", "create", "--out", bundle.to_str().unwrap()],
        &[("CKSLAB_BIN_DIR", &source_bin), ("CKSLAB_CACHE", &source_cache)],
    );
    assert!(out.status.success(), "bundle create failed");
    eprintln!("bundle created in {:.1}s", started.elapsed().as_secs_f64());

    let cache = dir.path().join("learner-cache");
    let home = dir.path().join("learner-home");
    let env = [("CKSLAB_CACHE", cache.as_path()), ("CKSLAB_HOME", home.as_path())];
    let started = std::time::Instant::now();
    let out = run(&exe, &["bundle", "install", bundle.to_str().unwrap()], &env);
    assert!(out.status.success(), "bundle install failed");
    eprintln!("bundle installed in {:.1}s", started.elapsed().as_secs_f64());
    for name in LOCAL_BINARIES {
        let installed = std::fs::read(cache.join("bin/v1.34.4").join(name)).unwrap();
        assert_eq!(installed, std::fs::read(source_bin.join(name)).unwrap(), "{name}");
    }

    // From here on only what the bundle installed: its ckslab, its binaries.
    let installed = cache.join("bin/ckslab");
    let _down = Down { exe: installed.clone(), env: env.to_vec() };
    let out = run(&installed, &["up", "--backend", "local"], &env);
    assert!(out.status.success(), "up from the installed bundle failed");
    let out = run(&installed, &["verify", SCENARIO, "--backend", "local"], &env);
    assert!(out.status.success(), "verify {SCENARIO} failed on the installed bundle");
}
