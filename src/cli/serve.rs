//! `ckslab serve`: the web UI on 127.0.0.1 (or `--listen`), with a terminal pane on loopback.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on
    #[arg(long, default_value_t = 7878)]
    port: u16,
    /// Address to listen on. The web UI has no login: anyone who reaches it can run the lab's
    /// buttons. Pages are then also accepted at http://<ADDRESS>:<port>/ (0.0.0.0 and :: accept
    /// only 127.0.0.1 and localhost)
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Give the scenario and exam pages their terminal pane even when --listen is not a loopback
    /// address. The pane is a shell as you, with cluster-admin on the lab, for anyone who can open
    /// the page: only on a network you trust
    #[arg(long)]
    allow_remote_terminal: bool,
    /// Do not open a browser
    #[arg(long)]
    no_open: bool,
    /// Bring the lab cluster up first if it is not running
    #[arg(long)]
    up: bool,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = context.lab().await;
    if args.up {
        let spinner = super::Spinner::new("bringing up the lab cluster");
        lab.up(&spinner).await?;
        spinner.finish("lab cluster ready");
    }
    let catalog = context.catalog()?;
    crate::web::serve(crate::web::ServeOptions {
        port: args.port,
        open_browser: !args.no_open,
        lab,
        catalog,
        home: context.home.clone(),
        listen: args.listen,
        allow_remote_terminal: args.allow_remote_terminal,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
