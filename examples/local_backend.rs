//! Measures the local backend: `up` to a ready API (binaries cached), and the API server's
//! return to health after a manifest edit.
//!
//!   cargo run --example local_backend [DATA_DIR] [--keep]
//!
//! DATA_DIR defaults to a fresh temp folder; the cluster is brought down at the end. The example
//! is its own supervisor executable (it answers `__local-supervisor --cluster-dir DIR`), so it
//! does not depend on the `ckslab` binary's CLI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ckslab::backend::local::{self, LocalBackend};
use ckslab::backend::{Backend, LogProgress, Progress, wait_api_healthy};

struct Timed(Instant);

impl Progress for Timed {
    fn step(&self, message: &str) {
        println!("  [{:>5.1}s] {message}", self.0.elapsed().as_secs_f64());
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(local::SUPERVISOR_SUBCOMMAND) {
        let dir = args.get(3).filter(|_| args[2] == "--cluster-dir").expect("--cluster-dir DIR");
        return local::run_supervisor(PathBuf::from(dir)).await;
    }
    let tmp;
    let keep = args.iter().any(|a| a == "--keep");
    let args: Vec<String> = args.into_iter().filter(|a| a != "--keep").collect();
    let data_dir: PathBuf = match args.get(1) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = std::env::temp_dir().join(format!("ckslab-bench-{}", std::process::id()));
            tmp.clone()
        }
    };
    let backend = LocalBackend::new(&data_dir).with_supervisor_exe(std::env::current_exe()?);
    backend.down(&LogProgress).await?;

    println!("up (cold data dir, cached binaries):");
    let start = Instant::now();
    backend.up(&Timed(start)).await?;
    let up = start.elapsed();
    println!("up: {:.1}s", up.as_secs_f64());

    let client = backend.client().await?;
    let manifest = Path::new("/etc/kubernetes/manifests/kube-apiserver.yaml");
    let cp = backend.control_plane();
    let original = backend.read_file(&cp, manifest).await?.expect("apiserver manifest");
    let text = String::from_utf8(original.clone())?;
    let edited =
        text.replacen("    - --allow-privileged=true\n", "    - --allow-privileged=true\n    - --profiling=false\n", 1);

    let mut edits = Vec::new();
    for (label, body) in [("edit (--profiling=false)", edited.as_bytes()), ("restore", original.as_slice())] {
        let start = Instant::now();
        backend.write_file(&cp, manifest, body, 0o600).await?;
        backend.wait_component_synced("kube-apiserver", Duration::from_secs(10)).await?;
        let restarted = start.elapsed();
        wait_api_healthy(&client, Duration::from_secs(60)).await?;
        let healthy = start.elapsed();
        println!(
            "{label}: supervisor restarted kube-apiserver after {:.2}s, /readyz ok after {:.1}s",
            restarted.as_secs_f64(),
            healthy.as_secs_f64()
        );
        edits.push(healthy);
    }

    println!(
        "\nsummary: up {:.1}s (target < 20s); apiserver back after manifest edit {:.1}s / {:.1}s (target < 10s)",
        up.as_secs_f64(),
        edits[0].as_secs_f64(),
        edits[1].as_secs_f64()
    );
    if keep {
        println!("kept the cluster in {}", data_dir.display());
        return Ok(());
    }
    let start = Instant::now();
    backend.down(&LogProgress).await?;
    println!("down: {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}
