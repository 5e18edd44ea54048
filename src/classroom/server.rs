//! `ckslab classroom serve`: the instructor's board and the endpoint learners report to. It
//! listens on the room's network, so every route but the static files needs a secret: the join
//! token to report, the instructor key to read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::ProgressReport;
use super::roster::{Roster, RosterError};

#[derive(Debug, thiserror::Error)]
pub enum ClassroomError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    BadReport(String),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("template: {0:?}")]
    Template(#[from] tera::Error),
}

impl IntoResponse for ClassroomError {
    fn into_response(self) -> Response {
        let status = match &self {
            ClassroomError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ClassroomError::BadReport(_) => StatusCode::BAD_REQUEST,
            ClassroomError::Roster(_) | ClassroomError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(%status, "{self}");
        }
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.to_string()).into_response()
    }
}

/// The join token and instructor key, kept in the instructor's data dir so a restarted server
/// still accepts the learners who joined.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct Secrets {
    pub join_token: String,
    pub instructor_key: String,
}

impl Secrets {
    pub fn load_or_create(dir: &Path, renew: bool) -> anyhow::Result<Secrets> {
        use anyhow::Context as _;
        let path = dir.join("secrets.json");
        if !renew && let Ok(bytes) = std::fs::read(&path) {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{} (start with --new-tokens to replace it)", path.display()));
        }
        // The join token is typed by learners: short; the key guards the board: long.
        let secrets =
            Secrets { join_token: hex::encode(rand::random::<[u8; 6]>()), instructor_key: crate::ui::new_token() };
        crate::store::write_private(&path, &serde_json::to_vec_pretty(&secrets)?)
            .with_context(|| path.display().to_string())?;
        Ok(secrets)
    }
}

pub struct ClassroomConfig {
    /// Shown on the board and to learners when they join.
    pub name: String,
    pub join_token: String,
    pub instructor_key: String,
    /// The address learners use (printed in the join command).
    pub public_url: String,
    /// Scenario ids and titles in catalog order.
    pub scenarios: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct ClassroomState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClassroomConfig,
    roster: Mutex<Roster>,
    templates: tera::Tera,
}

impl ClassroomState {
    pub fn new(config: ClassroomConfig, roster: Roster) -> anyhow::Result<ClassroomState> {
        let templates = crate::ui::templates()?;
        Ok(ClassroomState { inner: Arc::new(Inner { config, roster: Mutex::new(roster), templates }) })
    }

    fn roster(&self) -> std::sync::MutexGuard<'_, Roster> {
        self.inner.roster.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn order(&self) -> Vec<String> {
        self.inner.config.scenarios.iter().map(|(id, _)| id.clone()).collect()
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    crate::ui::constant_time_eq(a.as_bytes(), b.as_bytes())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

impl ClassroomState {
    fn require_join_token(&self, headers: &HeaderMap) -> Result<(), ClassroomError> {
        match bearer(headers) {
            Some(token) if constant_time_eq(token, &self.inner.config.join_token) => Ok(()),
            _ => {
                Err(ClassroomError::Unauthorized("this classroom needs its join token (Authorization: Bearer <token>)"))
            }
        }
    }

    fn require_instructor(&self, headers: &HeaderMap, query: &KeyQuery) -> Result<(), ClassroomError> {
        let given = query.key.as_deref().or_else(|| bearer(headers));
        match given {
            Some(key) if constant_time_eq(key, &self.inner.config.instructor_key) => Ok(()),
            _ => Err(ClassroomError::Unauthorized(
                "the board needs the instructor key: open the address `ckslab classroom serve` printed",
            )),
        }
    }
}

/// A request that carries the instructor key (`?key=` or a bearer token); handlers that take
/// it run only for the instructor.
struct Instructor;

impl axum::extract::FromRequestParts<ClassroomState> for Instructor {
    type Rejection = ClassroomError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ClassroomState,
    ) -> Result<Self, Self::Rejection> {
        let query = Query::<KeyQuery>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or(KeyQuery { key: None });
        state.require_instructor(&parts.headers, &query)?;
        Ok(Instructor)
    }
}

/// Every route of the classroom server.
pub fn router(state: ClassroomState) -> Router {
    Router::new()
        .route("/", get(board_page))
        .route("/api/board", get(board_json))
        .route("/api/join", get(join))
        .route("/api/reports", post(report))
        .route("/static/{*path}", get(crate::ui::asset))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// `GET /api/join`: lets `ckslab classroom join` check the address and token before saving them.
async fn join(
    State(state): State<ClassroomState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ClassroomError> {
    state.require_join_token(&headers)?;
    Ok(Json(serde_json::json!({"classroom": state.inner.config.name})))
}

/// `POST /api/reports`: one graded attempt.
async fn report(
    State(state): State<ClassroomState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ClassroomError> {
    state.require_join_token(&headers)?;
    let report: ProgressReport =
        serde_json::from_slice(&body).map_err(|e| ClassroomError::BadReport(format!("not a progress report: {e}")))?;
    report.validate().map_err(ClassroomError::BadReport)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    state.roster().record(&report, &now)?;
    tracing::info!(learner = %report.learner, scenario = %report.scenario, score = report.score, "report");
    Ok((StatusCode::CREATED, Json(serde_json::json!({"recorded": true}))))
}

/// `GET /api/board?key=`: the board as JSON, for scripts.
async fn board_json(State(state): State<ClassroomState>, _: Instructor) -> Result<Response, ClassroomError> {
    let board = state.roster().board(&state.order())?;
    // Asked for with the instructor key: never cached, never sniffed into something else.
    let headers = [(header::CACHE_CONTROL, "no-store"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")];
    Ok((headers, Json(board)).into_response())
}

/// `GET /?key=`: the board page; it refreshes itself.
async fn board_page(State(state): State<ClassroomState>, _: Instructor) -> Result<Response, ClassroomError> {
    let board = state.roster().board(&state.order())?;
    let config = &state.inner.config;
    let titles: BTreeMap<&str, &str> = config.scenarios.iter().map(|(id, t)| (id.as_str(), t.as_str())).collect();
    let mut context = tera::Context::new();
    context.insert("name", &config.name);
    context.insert("board", &board);
    context.insert("titles", &titles);
    context.insert("join_url", &config.public_url);
    context.insert("join_token", &config.join_token);
    let html = state.inner.templates.render("classroom.html", &context)?;
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    // The address holds the key: keep it out of Referer headers and caches.
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Serves the classroom on `listen` until Ctrl-C; prints the join command and the board address.
pub async fn serve(listen: SocketAddr, mut config: ClassroomConfig, data_dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen} (try --listen)"))?;
    let bound = listener.local_addr()?;
    if config.public_url.is_empty() {
        config.public_url = format!("http://{bound}");
    }
    let roster = Roster::open(data_dir)?;
    println!("classroom {:?} on {}", config.name, config.public_url);
    println!(
        "learners join with:\n  ckslab classroom join {} --token {} --name \"<your name>\"",
        config.public_url, config.join_token
    );
    println!(
        "board (instructor only, keep this address to yourself):\n  {}/?key={}",
        config.public_url, config.instructor_key
    );
    let state = ClassroomState::new(config, roster)?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
