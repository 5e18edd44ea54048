//! Whether a Docker engine is there for a real-container test, and how such a test reports
//! when it cannot run: as ignored (SKIPPED, with the reason), never as passed. Where CI
//! provides an engine it sets CKSLAB_REQUIRE_ENGINE=1, and then a missing engine fails.

use ckslab::backend::kind::docker_engine_available;

/// `Err(reason)` when no engine can be had here.
pub async fn engine() -> Result<(), String> {
    if docker_engine_available().await {
        return Ok(());
    }
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "the default socket".into());
    Err(format!("no Docker engine answers `docker info` at {host}; scripts/docker-engine.sh start runs one for tests"))
}

/// Runs `trials`, each marked ignored (with `reason` printed) when `reason` is set, unless
/// CKSLAB_REQUIRE_ENGINE says the engine must be there.
pub fn run(mut trials: Vec<libtest_mimic::Trial>, reason: Option<String>) -> std::process::ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    // One cluster at a time: they share the names and the network.
    args.test_threads = Some(1);
    if let Some(reason) = reason {
        if std::env::var("CKSLAB_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            eprintln!("FAILED: CKSLAB_REQUIRE_ENGINE=1 but {reason}");
            return std::process::ExitCode::FAILURE;
        }
        for trial in &trials {
            eprintln!("SKIPPED {}: {reason}", trial.name());
        }
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// The node image the tests use (set by scripts/test.sh from scripts/build-kind-node.sh).
pub fn node_image() -> Option<String> {
    std::env::var("CKSLAB_KIND_NODE_IMAGE").ok().filter(|s| !s.is_empty())
}

/// Why a test that needs the engine and ckslab's node image cannot run here, if it cannot.
pub fn unavailable(runtime: &tokio::runtime::Runtime) -> Option<String> {
    runtime.block_on(engine()).err().or_else(|| {
        node_image()
            .is_none()
            .then(|| "CKSLAB_KIND_NODE_IMAGE is not set (scripts/build-kind-node.sh prints it)".into())
    })
}
