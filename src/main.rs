use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ckslab::cli::Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info,ckslab=info",
        _ => "debug,hyper=info,tower=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CKSLAB_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(ckslab::cli::run(cli))
}
