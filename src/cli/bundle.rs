//! `ckslab bundle create | verify | install`: an offline classroom in one file.

use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::bundle::{self, CreateOptions, InstallOptions, Roots};

#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
/// One file that gives a machine with no network everything ckslab needs.
///
/// Venues often have weak networks. The instructor prepares once, on a machine that has built
/// or fetched everything (ckslab fetch-binaries, and for kind scripts/build-kind-node.sh and
/// scripts/build-stand-in-images.sh), and hands out one file:
///
///   ckslab bundle create --out ckslab-classroom.tar.gz
///   sha256sum ckslab-classroom.tar.gz            # write it on the board
///
/// Each learner (USB stick, file share, no network needed):
///
///   tar xzf ckslab-classroom.tar.gz ckslab       # the program itself, a plain tar member
///   ./ckslab bundle install ckslab-classroom.tar.gz --sha256 <digest from the board>
///   ckslab up && ckslab serve
///
/// The bundle is a gzip'd tar whose first entry, ckslab-bundle.json, lists every file with its
/// size and SHA-256. `install` checks all of them before it writes anything, so a truncated or
/// altered bundle installs nothing; and it installs through hidden files renamed into place at
/// the end, so an install that fails midway leaves the caches as they were.
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Write a bundle: ckslab, the local backend's binaries, and the kind node and stand-in
    /// images when this machine has them
    Create {
        /// The bundle file to write
        #[arg(long, default_value = "ckslab-bundle.tar.gz", value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE when it is already there (only a regular file, never a device or folder)
        #[arg(long)]
        force: bool,
    },
    /// Check a bundle against its manifest without installing anything
    Verify { file: PathBuf },
    /// Verify a bundle, then install it into the caches (CKSLAB_CACHE, CKSLAB_BIN_DIR)
    Install {
        file: PathBuf,
        /// The bundle's SHA-256 as the instructor gave it (`sha256sum FILE` on their machine);
        /// any other file is refused
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
    },
}

fn bytes_bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

pub async fn run(_context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let roots = Roots::from_env();
    match args.action {
        Action::Create { out, force } => {
            let ckslab = std::env::current_exe()?;
            if cfg!(debug_assertions) {
                eprintln!(
                    "note: this is a debug build of ckslab, which reads scenarios from its source tree; \
                     bundle a release build (cargo build --release) for learners' machines"
                );
            }
            let options = CreateOptions { roots, ckslab, out, replace: force };
            let bar = bytes_bar("bundling");
            let started = std::time::Instant::now();
            let result = tokio::task::spawn_blocking(move || bundle::create(&options, &bar).map(|r| (r, bar))).await?;
            let (report, bar) = result?;
            bar.finish_and_clear();
            println!(
                "bundle: {} ({:.1} MB) in {:.1}s",
                report.out.display(),
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            for file in &report.manifest.files {
                println!("  {:<44} {:>9.1} MB  sha256 {}", file.path, file.size as f64 / 1e6, file.sha256);
            }
            for absent in &report.absent {
                println!("  not included: {absent}");
            }
            println!("sha256 of the bundle: {}", report.sha256);
            println!(
                "learners: tar xzf {0} ckslab && ./ckslab bundle install {0} --sha256 {1}",
                report.out.display(),
                report.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify { file } => {
            let bar = bytes_bar("verifying");
            let result =
                tokio::task::spawn_blocking(move || bundle::verify(&file, &roots, &bar).map(|r| (r, bar))).await?;
            let ((manifest, sha256), bar) = result?;
            bar.finish_and_clear();
            println!(
                "every file matches the manifest ({} files); sha256 of the bundle: {sha256}",
                manifest.files.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Install { file, sha256 } => {
            let options = InstallOptions { roots, expect_sha256: sha256 };
            let bar = bytes_bar("verifying");
            let result =
                tokio::task::spawn_blocking(move || bundle::install(&file, &options, &bar).map(|r| (r, bar))).await?;
            let (report, bar) = result?;
            bar.finish_and_clear();
            println!("verified {} files (sha256 of the bundle: {})", report.installed.len(), report.sha256);
            for (entry, dest) in &report.installed {
                println!("  {entry:<44} -> {}", dest.display());
            }
            println!(
                "ready offline: `ckslab up` (local backend; with a Docker engine `ckslab up --backend kind`, which loads the node and scenario images from the cache), then `ckslab serve`"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
