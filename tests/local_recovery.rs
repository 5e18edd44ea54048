//! A local cluster whose supervisor was killed (SIGKILL: no chance to clean up) is cleaned up by
//! the next `up` or `down`: its components do not outlive it, `up` brings a healthy cluster
//! back, and `down` leaves no process that mentions the cluster behind. Its own test binary
//! and data dir, since it kills the cluster under it; like tests/local_backend.rs it needs the
//! binaries (scripts/build-k8s.sh) and bwrap, and fails with the fix without them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ckslab::backend::local::LocalBackend;
use ckslab::backend::{Backend, LogProgress};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn backend(dir: &Path) -> LocalBackend {
    let b = LocalBackend::new(dir).with_owner_pid(std::process::id());
    if std::env::var_os("CKSLAB_EXE").is_some() { b } else { b.with_supervisor_exe(env!("CARGO_BIN_EXE_ckslab")) }
}

/// The pids of the supervisor's children, from its pid files.
fn child_pids(cluster_dir: &Path) -> Vec<i32> {
    std::fs::read_dir(cluster_dir.join("pids"))
        .map(|rd| rd.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    // A zombie (state Z) has exited; only its parent has not reaped it yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')).unwrap_or(false))
        .unwrap_or(false)
}

/// Live processes whose command line mentions `needle`.
fn mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

#[tokio::test]
async fn up_and_down_clean_up_after_a_killed_supervisor() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("local-recovery-tests");
    let b = backend(&dir);
    b.down(&LogProgress).await.expect("cleaning up an earlier run");
    b.up(&LogProgress).await.expect("up");
    let cluster_dir = b.cluster_dir().to_path_buf();
    let first = b.supervisor_status().expect("the supervisor reports its state").supervisor_pid as i32;
    let children = child_pids(&cluster_dir);
    assert!(children.len() >= 4, "etcd, the three control-plane components and kwok: {children:?}");

    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    // Components die with their supervisor (bwrap --die-with-parent, PR_SET_PDEATHSIG).
    let gone = wait_until(Duration::from_secs(20), || children.iter().all(|pid| !alive(*pid))).await;
    let left: Vec<i32> = children.iter().copied().filter(|pid| alive(*pid)).collect();
    assert!(gone, "components outlived their killed supervisor: {left:?}");
    let status = b.status().await.unwrap();
    assert!(!status.api_healthy, "no API once the supervisor is gone");

    // `up` notices the dead supervisor and its stale pid files, and brings the cluster back.
    let started = Instant::now();
    b.up(&LogProgress).await.expect("up after a killed supervisor");
    eprintln!("up after a killed supervisor took {:.1}s", started.elapsed().as_secs_f64());
    let second = b.supervisor_status().unwrap().supervisor_pid as i32;
    assert_ne!(first, second, "a new supervisor");
    let client = b.client().await.unwrap();
    ckslab::backend::wait_api_healthy(&client, Duration::from_secs(30)).await.expect("a healthy API again");

    // Kill it again and leave it to `down`: nothing that mentions the cluster survives.
    let children = child_pids(&cluster_dir);
    kill(Pid::from_raw(second), Signal::SIGKILL).unwrap();
    b.down(&LogProgress).await.expect("down after a killed supervisor");
    assert!(children.iter().all(|pid| !alive(*pid)), "down stops every recorded child");
    let needle = cluster_dir.display().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || mentioning(&needle).is_empty()).await,
        "processes left behind: {:?}",
        mentioning(&needle)
    );
    assert!(!cluster_dir.exists(), "down deletes the cluster it created");
}
