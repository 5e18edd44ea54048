//! `ckslab fetch-binaries`: the official binaries for the local backend, verified.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::fetch::{self, FetchOptions};
use crate::tools;

#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
/// Download the local backend's binaries (kube-apiserver, kube-controller-manager,
/// kube-scheduler, kubectl, etcd, etcdctl, kwok) from their official releases and verify each
/// against the checksum its publisher puts beside it, before anything is installed.
///
/// Checking a download against its published digest is itself a CKS skill; by hand it is:
///
///   curl -LO https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl
///   curl -LO https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl.sha512
///   echo "$(cat kubectl.sha512)  kubectl" | sha512sum --check
///
/// ckslab does the same for each binary and prints what it compared. A digest that does not
/// match installs nothing at all; a binary whose checksum cannot be fetched is left out (then
/// scripts/build-k8s.sh builds only what is still missing, from the Go module proxy).
///
/// Examples:
///
///   ckslab fetch-binaries                                  # from dl.k8s.io and GitHub
///   ckslab fetch-binaries --mirror http://10.0.0.5:8000    # a classroom mirror, same paths
pub struct Args {
    /// Fetch from a mirror with the official layout (<mirror>/release/v1.34.4/bin/linux/amd64/
    /// kubectl, <mirror>/etcd-io/etcd/releases/download/v3.6.5/..., ...)
    #[arg(long, env = "CKSLAB_MIRROR", value_name = "URL")]
    mirror: Option<String>,
    /// Fetch again binaries the bin dir already has
    #[arg(long)]
    force: bool,
    /// Seconds the server may send nothing before a download counts as stalled
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    timeout: u64,
}

pub async fn run(_context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let bin_dir = tools::bin_dir();
    let mut options = FetchOptions::new(bin_dir.clone(), args.mirror);
    options.force = args.force;
    options.read_timeout = Duration::from_secs(args.timeout.max(1));
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let result = fetch::fetch(&options, &bar).await;
    bar.finish_and_clear();
    let report = result?;
    println!("bin dir: {}", bin_dir.display());
    for name in &report.cached {
        println!("  {name:<24} already there (--force fetches it again)");
    }
    for v in &report.installed {
        println!("  {:<24} {} {}  = {}", v.name, v.algorithm, v.digest, v.checksum_url);
        println!("  {:<24} from {} ({:.1} MB): verified, installed", "", v.url, v.bytes as f64 / 1e6);
    }
    if report.failed.is_empty() {
        println!("every binary is verified: `ckslab up --backend local` runs on them");
        return Ok(ExitCode::SUCCESS);
    }
    for (names, err) in &report.failed {
        eprintln!("  {}: NOT installed: {err}", names.join(", "));
    }
    eprintln!("scripts/build-k8s.sh builds what is missing from the Go module proxy (it keeps the verified ones)");
    Ok(ExitCode::from(2))
}
