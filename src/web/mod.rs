//! The local web UI: `ckslab serve` on 127.0.0.1. Pages are tera templates and static files
//! compiled into the binary; every button is a thin call into the [`Lab`] and the history.
//!
//! Safety: requests must name this server in their Host header (DNS rebinding), state-changing
//! requests carry a per-process CSRF token, one cluster-changing operation runs at a time, and
//! pages show the kubeconfig's path, never its contents.

mod actions;
mod assets;
pub mod error;
pub mod exam;
mod pages;
pub mod security;
mod sse;
pub mod state;
pub mod terminal;
pub mod text;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

pub use assets::{asset, templates};
pub use error::ApiError;
pub use state::{AppState, ClusterView, JobView};

use crate::lab::Lab;
use crate::scenario::Catalog;

pub struct ServeOptions {
    pub port: u16,
    pub open_browser: bool,
    pub lab: Lab,
    pub catalog: Catalog,
    pub home: PathBuf,
    /// 127.0.0.1 unless `serve --listen` says otherwise.
    pub listen: IpAddr,
    /// A terminal pane even when `listen` is not loopback.
    pub allow_remote_terminal: bool,
}

/// Every route, behind the Host/CSRF guard.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/catalog", get(pages::catalog))
        .route("/history", get(pages::history))
        .route("/scenarios/{id}", get(pages::scenario))
        .route("/scenarios/{id}/start", post(actions::start))
        .route("/scenarios/{id}/reset", post(actions::reset))
        .route("/scenarios/{id}/solve", post(actions::solve))
        .route("/scenarios/{id}/hint", post(actions::hint))
        .route("/scenarios/{id}/check", post(sse::check))
        .route("/cluster/up", post(actions::up))
        .route("/cluster/down", post(actions::down))
        .route("/api/cluster", get(actions::cluster))
        .route("/api/job", get(actions::job))
        .route("/exam", get(exam::index).post(exam::create))
        .route("/exam/{id}", get(exam::overview))
        .route("/exam/{id}/task/{number}", get(exam::task))
        .route("/exam/{id}/task/{number}/flag", post(exam::flag))
        .route("/exam/{id}/task/{number}/check", post(exam::check))
        .route("/exam/{id}/finish", post(exam::finish))
        .route("/exam/{id}/review", get(exam::review))
        .route("/terminal/{page}", get(terminal::open))
        .route("/static/{*path}", get(assets::asset))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), security::guard))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Opens `url` in the desktop's browser; failing is fine (the URL is printed).
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let url = url.to_string();
    std::thread::spawn(move || {
        let status = std::process::Command::new(program)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Err(e) = status {
            tracing::debug!("could not run {program}: {e}");
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down the web UI");
}

/// Serves the UI on `listen`:`port` (0 picks a free port) until Ctrl-C or SIGTERM; then ends
/// every open terminal.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let address = SocketAddr::new(options.listen, options.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} (is another ckslab serve running? try --port)"))?;
    let port = listener.local_addr()?.port();
    let state = AppState::new(options.lab, options.catalog, &options.home, port)?;
    let policy = terminal::TerminalPolicy { listen: options.listen, allow_remote: options.allow_remote_terminal };
    state.set_terminal_policy(policy);
    if let Err(why) = policy.check() {
        println!("{why}");
    }
    {
        let state = state.clone();
        tokio::spawn(async move {
            // Render every scenario once now, so no page waits on it.
            for source in &state.catalog.scenarios {
                if let Err(e) = state.rendered(&source.scenario.id) {
                    tracing::warn!("{e}");
                }
            }
            state.refresh_cluster().await;
            state.refresh_doctor().await;
        });
    }
    let shown = if options.listen.is_loopback() || options.listen.is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], port))
    } else {
        SocketAddr::new(options.listen, port)
    };
    let url = format!("http://{shown}/");
    println!("ckslab web UI on {url} (Ctrl-C stops it)");
    if options.open_browser {
        open_browser(&url);
    }
    serve_on(listener, state, shutdown_signal()).await
}

/// Serves `state`'s router on `listener` until `shutdown` completes; then ends every open
/// terminal (closing its socket and killing its process group) and lets the rest drain.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stopping = state.clone();
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Upgraded connections (the terminals) would keep the server waiting: end them now.
            stopping.terminals.stop_all().await;
        })
        .await;
    state.terminals.stop_all().await;
    served?;
    Ok(())
}
