//! Running a webhook backend as a detached `ckslab webhook ...` process that outlives the
//! command that started it, with a pid file so ckslab stops only what it started.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The ckslab executable to start (tests point `CKSLAB_EXE` at the built binary).
pub fn ckslab_exe() -> PathBuf {
    std::env::var_os("CKSLAB_EXE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| "ckslab".into())
}

fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

/// The pid in the file, if that process is alive and is our webhook.
pub fn running_pid(dir: &Path, name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(dir, name)).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains("webhook") && cmdline.contains(name)).then_some(pid)
}

/// Starts `ckslab webhook <name> args...` in the background (a no-op if it already runs).
pub fn start(dir: &Path, name: &str, args: &[String]) -> anyhow::Result<i32> {
    stop(dir, name)?;
    std::fs::create_dir_all(dir)?;
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut command = Command::new(ckslab_exe());
    command.arg("webhook").arg(name).args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own session, so it is not killed with the terminal or the test that started it.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::other)?;
            Ok(())
        });
    }
    let child = command.spawn()?;
    let pid = child.id() as i32;
    std::fs::write(pid_file(dir, name), pid.to_string())?;
    Ok(pid)
}

/// Stops the webhook if it runs; true when one was stopped.
pub fn stop(dir: &Path, name: &str) -> anyhow::Result<bool> {
    let Some(pid) = running_pid(dir, name) else {
        let _ = std::fs::remove_file(pid_file(dir, name));
        return Ok(false);
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..50 {
        if nix::sys::signal::kill(pid, None).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = std::fs::remove_file(pid_file(dir, name));
    Ok(true)
}
