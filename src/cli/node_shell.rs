//! `ckslab node-shell`: a shell with a node's view of its files (like ssh to the node).

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Node name (default: the control-plane node)
    node: Option<String>,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let backend_kind = context.backend_kind().await;
    let backend = context.backend().await;
    let node = args.node.unwrap_or_else(|| backend.control_plane());
    if !backend.nodes().contains(&node) {
        anyhow::bail!("no node {node:?}; nodes: {}", backend.nodes().join(", "));
    }
    let status = match backend_kind {
        crate::backend::BackendKind::Local => {
            crate::backend::local::LocalBackend::new(&context.home).shell_command(&node).status()?
        }
        crate::backend::BackendKind::Kind => {
            std::process::Command::new("docker").args(["exec", "-it", &node, "bash"]).status()?
        }
    };
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}
