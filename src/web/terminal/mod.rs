//! The terminal pane of the scenario page and exam mode: a shell in a PTY behind a WebSocket at
//! `GET /terminal/{page}`.
//!
//! A shell reachable from a web page is guarded more than any other route. The upgrade request
//! must:
//! - pass the Host check (the router's guard, as every request);
//! - come from a page of this server (an `Origin` header naming it; a missing one is refused);
//! - carry the per-process CSRF token, as the WebSocket subprotocol `csrf.<token>` (browsers
//!   cannot set other headers on a WebSocket, and a query string would end up in logs);
//! - name a page id the server issued when it rendered that page, with no terminal open on it
//!   (one terminal per page);
//! - reach a server listening on loopback, unless `serve --allow-remote-terminal` was given.
//!
//! The shell's process group is killed when its socket closes, and every open terminal's when the
//! server stops.

mod session;
pub mod shell;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::state::{AppState, lock};

/// The subprotocol the page asks for and the server answers with.
pub const PROTOCOL: &str = "ckslab-terminal";
/// The prefix of the subprotocol that carries the CSRF token.
pub const TOKEN_PROTOCOL_PREFIX: &str = "csrf.";
/// Page ids kept at most; the oldest without a terminal are forgotten first.
const MAX_PAGES: usize = 256;

/// When the terminal may run: `serve` on loopback, or the user said so.
#[derive(Debug, Clone, Copy)]
pub struct TerminalPolicy {
    pub listen: IpAddr,
    pub allow_remote: bool,
}

impl Default for TerminalPolicy {
    fn default() -> Self {
        TerminalPolicy { listen: IpAddr::V4(Ipv4Addr::LOCALHOST), allow_remote: false }
    }
}

impl TerminalPolicy {
    /// `Err` says why the terminal is off.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.is_loopback() || self.allow_remote {
            Ok(())
        } else {
            Err(format!(
                "the terminal is off: ckslab serve listens on {}, not loopback; \
                 restart it with --allow-remote-terminal to give everyone who reaches it a shell",
                self.listen
            ))
        }
    }
}

/// What a page needs to open its terminal.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalView {
    /// `None` when the terminal is off (then `off` says why).
    pub page: Option<String>,
    pub off: Option<String>,
    pub node: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Idle,
    Live,
}

/// The page ids issued, which of them has a terminal open, and the stop signal for all of them.
pub struct Terminals {
    pages: Mutex<Pages>,
    stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Pages {
    slots: HashMap<String, Slot>,
    order: VecDeque<String>,
    /// Process groups of the open terminals, for the server's stop.
    groups: HashMap<String, i32>,
}

impl Default for Terminals {
    fn default() -> Self {
        Terminals { pages: Mutex::new(Pages::default()), stop: tokio::sync::watch::channel(false).0 }
    }
}

impl Terminals {
    /// A new page id, for one rendered page.
    pub fn issue(&self) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let mut pages = lock(&self.pages);
        while pages.slots.len() >= MAX_PAGES {
            let Some(position) = pages.order.iter().position(|p| pages.slots.get(p) != Some(&Slot::Live)) else {
                break;
            };
            if let Some(old) = pages.order.remove(position) {
                pages.slots.remove(&old);
            }
        }
        pages.slots.insert(id.clone(), Slot::Idle);
        pages.order.push_back(id.clone());
        id
    }

    /// Marks the page's terminal open, or says why it cannot be.
    fn mark_live(&self, page: &str) -> Result<(), ApiError> {
        let mut pages = lock(&self.pages);
        match pages.slots.get_mut(page) {
            None => Err(ApiError::NotFound(format!("terminal page {page}; reload the page"))),
            Some(Slot::Live) => Err(ApiError::Conflict(
                "this page already has a terminal open (one per page); use that one, or reload the page".into(),
            )),
            Some(slot) => {
                *slot = Slot::Live;
                Ok(())
            }
        }
    }

    fn release(&self, page: &str) {
        let mut pages = lock(&self.pages);
        pages.groups.remove(page);
        if let Some(slot) = pages.slots.get_mut(page) {
            *slot = Slot::Idle;
        }
    }

    /// How many terminals are open now.
    pub fn open_count(&self) -> usize {
        lock(&self.pages).slots.values().filter(|s| **s == Slot::Live).count()
    }

    /// Ends every open terminal (the server is stopping): each session tells its page why, closes
    /// its socket and kills its processes; any still open after 2 s are killed here.
    pub async fn stop_all(&self) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while !lock(&self.pages).groups.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let groups: Vec<i32> = lock(&self.pages).groups.values().copied().collect();
        for pgid in &groups {
            session::GroupKiller::new(*pgid).kill_now();
        }
        if !groups.is_empty() {
            tracing::info!(count = groups.len(), "killed the open terminals' processes");
        }
    }
}

/// A page's open terminal: frees the page when dropped (the socket closed, or the upgrade never
/// happened).
struct Claim {
    state: AppState,
    page: String,
}

impl Claim {
    fn new(state: &AppState, page: &str) -> Result<Claim, ApiError> {
        state.terminals.mark_live(page)?;
        Ok(Claim { state: state.clone(), page: page.to_string() })
    }

    fn record_group(&self, pgid: i32) {
        lock(&self.state.terminals.pages).groups.insert(self.page.clone(), pgid);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.state.terminals.release(&self.page);
    }
}

impl AppState {
    /// The terminal for a page being rendered: a fresh page id, or why there is none.
    pub fn terminal_view(&self) -> TerminalView {
        let node = self.lab.backend.control_plane();
        match self.terminal_policy().check() {
            Ok(()) => TerminalView { page: Some(self.terminals.issue()), off: None, node },
            Err(why) => TerminalView { page: None, off: Some(why), node },
        }
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The guards of the upgrade request, in order; the Host check ran before (the router's guard).
fn admit(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    state.terminal_policy().check().map_err(ApiError::Forbidden)?;
    match header_str(headers, header::ORIGIN) {
        None => return Err(ApiError::Forbidden("a terminal needs an Origin header naming this server".into())),
        Some(origin) if !state.origin_allowed(origin) => {
            return Err(ApiError::Forbidden(format!("cross-origin terminal request from {origin}")));
        }
        Some(_) => {}
    }
    let token = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(TOKEN_PROTOCOL_PREFIX));
    match token {
        None => Err(ApiError::Forbidden("missing CSRF token; reload the page".into())),
        Some(token) if !crate::ui::constant_time_eq(token.as_bytes(), state.csrf_token().as_bytes()) => {
            Err(ApiError::Forbidden("wrong CSRF token; reload the page".into()))
        }
        Some(_) => Ok(()),
    }
}

/// `GET /terminal/{page}`: the WebSocket upgrade.
pub async fn open(
    State(state): State<AppState>,
    Path(page): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if let Err(err) = admit(&state, &headers) {
        tracing::warn!(%page, "terminal refused: {err}");
        return Err(err);
    }
    // Claimed now, so a second request for the page is refused while this one is upgrading.
    let claim = Claim::new(&state, &page).inspect_err(|err| tracing::warn!(%page, "terminal refused: {err}"))?;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(upgrade.protocols([PROTOCOL]).on_failed_upgrade(|e| tracing::warn!("terminal upgrade failed: {e}")).on_upgrade(
        move |socket| async move {
            let spec =
                match shell::prepare(claim.state.lab.backend.as_ref(), &claim.state.home, &crate::tools::bin_dir()) {
                    Ok(spec) => spec,
                    Err(e) => {
                        tracing::error!("writing the terminal's rcfile: {e}");
                        return;
                    }
                };
            let shell = match tokio::task::spawn_blocking(move || session::spawn(&spec)).await {
                Ok(Ok(shell)) => shell,
                Ok(Err(e)) => {
                    tracing::error!("{e}");
                    return;
                }
                Err(e) => {
                    tracing::error!("starting the terminal: {e}");
                    return;
                }
            };
            claim.record_group(shell.killer.pgid());
            let stop = claim.state.terminals.stop.subscribe();
            session::bridge(socket, shell, stop).await;
            drop(claim);
        },
    ))
}
