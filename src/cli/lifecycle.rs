//! `ckslab up`, `down`, `status`, and the hidden local supervisor entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, Spinner};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// kind only: the node image to create the cluster on, instead of the pinned upstream
    /// kindest/node (for example ckslab/kind-node:v1.34.4, which scripts/build-kind-node.sh
    /// builds offline; an image with no default CNI gets ckslab's bridge network)
    #[arg(long, env = "CKSLAB_KIND_NODE_IMAGE", value_name = "IMAGE")]
    node_image: Option<String>,
    /// kind only: images of this machine's Docker engine to load onto the nodes (repeat, or
    /// CKSLAB_KIND_LOAD_IMAGES separated by spaces or commas): for labs without a registry
    #[arg(long = "load-image", value_name = "IMAGE")]
    load_images: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: super::list::ListFormat,
}

#[derive(Debug, clap::Args)]
pub struct SupervisorArgs {
    #[arg(long)]
    cluster_dir: PathBuf,
}

pub async fn up(context: &Context, args: UpArgs) -> anyhow::Result<ExitCode> {
    let lab = match context.backend_kind().await {
        crate::backend::BackendKind::Kind => {
            let kind = crate::backend::kind::KindBackend::new(&context.home)
                .with_node_image(args.node_image)
                .with_load_images(args.load_images);
            crate::lab::Lab::new(std::sync::Arc::new(kind), &context.home)
        }
        crate::backend::BackendKind::Local => context.lab().await,
    };
    let spinner = Spinner::new(&format!("bringing up the lab cluster ({} backend)", lab.backend.name()));
    let started = std::time::Instant::now();
    lab.up(&spinner).await?;
    spinner.finish(&format!("lab cluster ready in {:.1}s", started.elapsed().as_secs_f64()));
    println!("export KUBECONFIG={}", lab.backend.kubeconfig_path().display());
    println!("node shell: {}", lab.backend.node_shell_hint(&lab.backend.control_plane()));
    Ok(ExitCode::SUCCESS)
}

pub async fn down(context: &Context, _args: DownArgs) -> anyhow::Result<ExitCode> {
    let lab = context.lab().await;
    let spinner = Spinner::new("deleting the lab cluster");
    lab.down(&spinner).await?;
    spinner.finish("lab cluster deleted");
    Ok(ExitCode::SUCCESS)
}

pub async fn status(context: &Context, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let backend = context.backend().await;
    let status = backend.status().await?;
    if args.format == super::list::ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("backend: {}", status.backend);
        if !status.exists {
            println!("no lab cluster; run `ckslab up`");
            return Ok(ExitCode::from(1));
        }
        println!("API: {}", if status.api_healthy { "healthy" } else { "DOWN" });
        if let Some(kubeconfig) = &status.kubeconfig {
            println!("kubeconfig: {}", kubeconfig.display());
        }
        println!("nodes: {}", status.nodes.join(", "));
        for component in &status.components {
            println!("  {:<26} {}", component.name, if component.running { "running" } else { "DOWN" });
            if let Some(detail) = component.detail.as_ref().filter(|_| !component.running) {
                for line in detail.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev() {
                    println!("      {line}");
                }
            }
        }
    }
    Ok(if status.exists && status.api_healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn supervise(args: SupervisorArgs) -> anyhow::Result<ExitCode> {
    crate::backend::local::supervisor::run_supervisor(args.cluster_dir).await?;
    Ok(ExitCode::SUCCESS)
}
