//! `ckslab serve`: the web UI on 127.0.0.1.

use std::process::ExitCode;

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (127.0.0.1 only)
    #[arg(long, default_value_t = 7878)]
    port: u16,
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
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
