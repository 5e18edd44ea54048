use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ckslab::cli::Cli::parse();
    // The local supervisor's output is its log file; it should say what it does.
    let supervising = matches!(cli.command, ckslab::cli::Command::LocalSupervisor(_));
    let filter = match cli.verbose {
        0 if supervising => "info",
        0 => "warn,kube_client=off",
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
