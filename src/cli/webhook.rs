//! `ckslab webhook image-policy`: the ImagePolicyWebhook backend scenarios use, over TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// Answer ImageReview requests: allow images from the --allow prefixes only
    ImagePolicy {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:18443")]
        listen: SocketAddr,
        /// An allowed image prefix, e.g. registry.ckslab.local/ (repeat for more)
        #[arg(long, required = true)]
        allow: Vec<String>,
        /// Serving certificate (PEM)
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM)
        #[arg(long)]
        key: PathBuf,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.kind {
        Kind::ImagePolicy { listen, allow, cert, key } => {
            let router = crate::webhook::image_policy::router(allow);
            crate::webhook::tls::serve(router, listen, &cert, &key).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
