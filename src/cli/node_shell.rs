//! `ckslab node-shell`: a shell with a node's view of its files (like ssh to the node).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Node name (default: the control-plane node)
    node: Option<String>,
    /// Run this command line on the node instead of an interactive shell, e.g.
    /// `ckslab node-shell -- ls /etc/kubernetes/manifests`
    #[arg(last = true)]
    command: Vec<String>,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let backend = context.backend().await;
    let node = args.node.unwrap_or_else(|| backend.control_plane());
    if !backend.nodes().contains(&node) {
        anyhow::bail!("no node {node:?}; nodes: {}", backend.nodes().join(", "));
    }
    let line = (!args.command.is_empty()).then(|| args.command.join(" "));
    let status = backend.shell_command(&node, line.as_deref()).status()?;
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}
