//! The buttons: cluster up/down, scenario start/reset/solve run as one background operation
//! at a time (202 with the job; the page polls `/api/job`); hints; the status endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::state::{AppState, ClusterView, JobView};
use crate::doctor;
use crate::scenario::Rendered;

type Accepted = Result<(StatusCode, Json<JobView>), ApiError>;

fn accepted(view: JobView) -> Accepted {
    Ok((StatusCode::ACCEPTED, Json(view)))
}

pub async fn up(State(state): State<AppState>) -> Accepted {
    let guard = state.begin("up", format!("creating the {} lab cluster", state.lab.backend.name()), None)?;
    let view = guard.view();
    tokio::spawn(async move {
        let result = state.lab.up(&guard).await.map_err(|e| e.to_string());
        state.refresh_cluster().await;
        guard.finish(result);
    });
    accepted(view)
}

pub async fn down(State(state): State<AppState>) -> Accepted {
    let guard = state.begin("down", format!("deleting the {} lab cluster", state.lab.backend.name()), None)?;
    let view = guard.view();
    tokio::spawn(async move {
        let result = state.lab.down(&guard).await.map_err(|e| e.to_string());
        state.refresh_cluster().await;
        guard.finish(result);
    });
    accepted(view)
}

fn rendered(state: &AppState, id: &str) -> Result<Arc<Rendered>, ApiError> {
    state.rendered(id)
}

fn require_runnable(state: &AppState, rendered: &Rendered) -> Result<(), ApiError> {
    state.lab.require(&rendered.scenario).map_err(|e| ApiError::Conflict(e.to_string()))
}

/// Start: the scenario's starting point (undo, setup, break); the hint ladder starts again.
pub async fn start(State(state): State<AppState>, Path(id): Path<String>) -> Accepted {
    start_or_reset(state, id, true).await
}

/// Reset: back to how the scenario starts (as `ckslab reset`), keeping the hints revealed.
pub async fn reset(State(state): State<AppState>, Path(id): Path<String>) -> Accepted {
    start_or_reset(state, id, false).await
}

async fn start_or_reset(state: AppState, id: String, fresh: bool) -> Accepted {
    let rendered = rendered(&state, &id)?;
    require_runnable(&state, &rendered)?;
    let (kind, label) = if fresh { ("start", format!("starting {id}")) } else { ("reset", format!("resetting {id}")) };
    let guard = state.begin(kind, label, Some(id.clone()))?;
    let view = guard.view();
    tokio::spawn(async move {
        let result = state.lab.reset(&rendered, &guard).await.map_err(|e| e.to_string());
        if result.is_ok() {
            state.mark_started(&id);
            if fresh && let Err(e) = state.history().record_start(&id) {
                tracing::warn!("could not record the start of {id}: {e}");
            }
        }
        guard.finish(result);
    });
    accepted(view)
}

/// Applies the reference solution; offered only once the learner has graded an attempt.
pub async fn solve(State(state): State<AppState>, Path(id): Path<String>) -> Accepted {
    let rendered = rendered(&state, &id)?;
    if !state.history().has_attempt(&id)? {
        return Err(ApiError::Conflict(format!("check {id} at least once before applying its solution")));
    }
    let name = rendered.scenario.solutions.first().map(|s| s.name.clone()).unwrap_or_default();
    let guard = state.begin("solve", format!("applying the solution {name} of {id}"), Some(id))?;
    let view = guard.view();
    tokio::spawn(async move {
        let result = state.lab.solve(&rendered, 0, &guard).await.map_err(|e| e.to_string());
        guard.finish(result);
    });
    accepted(view)
}

#[derive(Serialize)]
pub struct Hints {
    pub revealed: usize,
    pub total: usize,
    pub hints: Vec<String>,
}

/// Reveals the next hint (recorded in the history: hints used count with each grade).
pub async fn hint(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Hints>, ApiError> {
    let rendered = rendered(&state, &id)?;
    let all = &rendered.scenario.hints;
    if all.is_empty() {
        return Ok(Json(Hints { revealed: 0, total: 0, hints: Vec::new() }));
    }
    let revealed = state.history().reveal_hint(&id, all.len())?;
    Ok(Json(Hints {
        revealed,
        total: all.len(),
        hints: all[..revealed].iter().map(|h| h.trim().to_string()).collect(),
    }))
}

#[derive(Serialize)]
pub struct ClusterAnswer {
    pub cluster: ClusterView,
    pub doctor: Option<Vec<doctor::Finding>>,
    pub job: Option<JobView>,
}

/// `GET /api/cluster`: asks the backend now (bounded) — the home page polls it.
pub async fn cluster(State(state): State<AppState>) -> Json<ClusterAnswer> {
    let cluster = state.refresh_cluster().await;
    Json(ClusterAnswer { cluster, doctor: state.doctor(), job: state.job() })
}

#[derive(Serialize)]
pub struct JobAnswer {
    pub job: Option<JobView>,
}

/// `GET /api/job`: the running (or last) operation with its progress log.
pub async fn job(State(state): State<AppState>) -> Json<JobAnswer> {
    Json(JobAnswer { job: state.job() })
}
