//! One shell in a PTY, bridged to one WebSocket: binary frames carry the terminal's bytes both
//! ways; a text frame `{"cols":N,"rows":N}` resizes. The shell leads its own session and process
//! group (portable-pty calls setsid), and that whole group is killed when the socket closes, the
//! shell exits, or the server stops.

use std::io::{Read, Write};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::shell::ShellSpec;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("opening a PTY: {0}")]
    Pty(String),
    #[error("starting {program}: {message}")]
    Spawn { program: String, message: String },
}

#[derive(Debug, Deserialize)]
struct Resize {
    cols: u16,
    rows: u16,
}

/// The live processes of session `sid`, from /proc (`pid (comm) state ppid pgrp session ...`).
pub fn session_members(sid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // comm may hold spaces and parentheses: the fields start after the last ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            (fields.len() > 3 && fields[0] != "Z" && fields[3].parse() == Ok(sid)).then_some(pid)
        })
        .collect()
}

/// Kills the shell's session when dropped, whatever ends it (the socket closing, the shell
/// exiting, an error, the server's stop). The shell leads a session of its own, and bash's job
/// control puts each job in a process group of its own within it, so this kills the shell's
/// process group and every process of its session. A process that made a session of its own
/// (`setsid`, or the local cluster's supervisor that `ckslab up` starts) is meant to outlive the
/// terminal, and does.
pub struct GroupKiller {
    pgid: Pid,
}

impl GroupKiller {
    pub fn new(pgid: i32) -> GroupKiller {
        GroupKiller { pgid: Pid::from_raw(pgid) }
    }

    pub fn pgid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// SIGHUP (as a closing terminal sends), then SIGKILL for whatever ignores it, to the group
    /// and to each member of the session, until none is left (a member may fork meanwhile).
    pub fn kill_now(&self) {
        let _ = killpg(self.pgid, Signal::SIGHUP);
        let _ = killpg(self.pgid, Signal::SIGKILL);
        for _ in 0..10 {
            let members = session_members(self.pgid.as_raw());
            if members.is_empty() {
                break;
            }
            for pid in members {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill_now();
        tracing::info!(pgid = self.pgid.as_raw(), "terminal closed; its processes are killed");
    }
}

/// A running shell: its PTY's master side, its output, its input, and its process group.
pub struct Shell {
    master: Box<dyn MasterPty + Send>,
    output: mpsc::Receiver<Vec<u8>>,
    input: std::sync::mpsc::Sender<Vec<u8>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pub killer: GroupKiller,
}

/// Starts `spec` in a new PTY of 80x24 (the page resizes it at once).
pub fn spawn(spec: &ShellSpec) -> Result<Shell, SessionError> {
    let pty = native_pty_system()
        .openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 })
        .map_err(|e| SessionError::Pty(e.to_string()))?;
    let mut command = CommandBuilder::new(&spec.program);
    command.args(&spec.args);
    for (key, value) in &spec.env {
        command.env(key, value);
    }
    command.cwd(&spec.cwd);
    let child = pty
        .slave
        .spawn_command(command)
        .map_err(|e| SessionError::Spawn { program: spec.program.display().to_string(), message: e.to_string() })?;
    // Only the child holds the slave now: when the shell's group is gone, reads see EOF.
    drop(pty.slave);
    let pid = child.process_id().ok_or_else(|| SessionError::Spawn {
        program: spec.program.display().to_string(),
        message: "the child has no process id".into(),
    })?;
    let killer = GroupKiller::new(pid as i32);
    let mut reader = pty.master.try_clone_reader().map_err(|e| SessionError::Pty(e.to_string()))?;
    let mut writer = pty.master.take_writer().map_err(|e| SessionError::Pty(e.to_string()))?;
    let (out_tx, output) = mpsc::channel::<Vec<u8>>(64);
    std::thread::Builder::new()
        .name(format!("pty-read-{pid}"))
        .spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out_tx.blocking_send(buffer[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        })
        .map_err(|e| SessionError::Pty(e.to_string()))?;
    let (input, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name(format!("pty-write-{pid}"))
        .spawn(move || {
            while let Ok(bytes) = in_rx.recv() {
                if writer.write_all(&bytes).and_then(|_| writer.flush()).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| SessionError::Pty(e.to_string()))?;
    tracing::info!(pid, program = %spec.program.display(), "terminal started");
    Ok(Shell { master: pty.master, output, input, child, killer })
}

/// Resolves once the server says it is stopping (or is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Bridges `shell` and `socket` until one side ends or `stop` fires; then kills the group and
/// reaps the shell.
pub async fn bridge(mut socket: WebSocket, shell: Shell, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Shell { master, mut output, input, mut child, killer } = shell;
    let reason = loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if input.send(bytes.to_vec()).is_err() {
                        break "the shell stopped reading";
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Resize>(text.as_str()) {
                    Ok(size) if size.cols > 0 && size.rows > 0 => {
                        let _ = master.resize(PtySize { rows: size.rows, cols: size.cols, pixel_width: 0, pixel_height: 0 });
                    }
                    _ => tracing::debug!("ignoring a terminal control message: {text}"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the page closed the terminal",
                Some(Ok(_)) => {}
            },
            bytes = output.recv() => match bytes {
                Some(bytes) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break "the page went away";
                    }
                }
                None => {
                    let frame = CloseFrame { code: 1000, reason: "the shell exited".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break "the shell exited";
                }
            },
            () = stopped(&mut stop) => {
                let frame = CloseFrame { code: 1001, reason: "ckslab serve is stopping".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                break "the server is stopping";
            }
        }
    };
    tracing::info!(pgid = killer.pgid(), "ending the terminal: {reason}");
    drop(killer);
    drop(input);
    // Reap the shell (it is ours); bounded, as a process stuck in the kernel may take a moment.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || {
            let _ = child.wait();
        }),
    )
    .await;
}
