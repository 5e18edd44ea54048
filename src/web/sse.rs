//! Grading as a server-sent event stream: `checks` (what will run), one `verdict` per check as
//! soon as it finishes, then `report` (score, recorded attempt). The grade runs in its own task
//! holding the operation slot, so it completes and is recorded even if the page goes away.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::state::{AppState, OpGuard};
use crate::grade::Report;
use crate::scenario::Rendered;

pub type GradeStream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

#[derive(Serialize)]
struct PendingCheck<'a> {
    id: &'a str,
    description: &'a str,
    weight: u32,
}

/// The `report` event.
#[derive(Serialize)]
pub struct Summary {
    pub scenario: String,
    pub score: u32,
    pub passed: bool,
    pub millis: u64,
    pub hints_used: u32,
    pub best: Option<u32>,
    pub attempt: Option<i64>,
    /// Set when the learner joined a classroom and the report did not reach it.
    pub classroom_problem: Option<String>,
}

/// Where a finished report goes besides the history.
pub enum Target {
    Scenario,
    ExamTask { exam: String, index: usize },
}

fn event(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

/// Starts grading `rendered` under `guard` and returns the stream of its events.
pub fn grade(state: AppState, rendered: Arc<Rendered>, guard: OpGuard, target: Target) -> GradeStream {
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let checks: Vec<PendingCheck> = rendered
        .scenario
        .checks
        .iter()
        .map(|c| PendingCheck { id: &c.id, description: &c.description, weight: c.weight })
        .collect();
    let _ = tx.send(event("checks", &checks));
    tokio::spawn(async move {
        let verdicts = tx.clone();
        let report = state
            .lab
            .grade(&rendered, move |verdict| {
                let _ = verdicts.send(event("verdict", verdict));
            })
            .await;
        let mut summary = record(&state, &report, target);
        // Reporting to a classroom touches no cluster: it need not hold the operation slot.
        guard.finish(Ok(()));
        summary.classroom_problem =
            crate::classroom::client::report_if_joined(&state.home, &report, summary.hints_used).await;
        let _ = tx.send(event("report", &summary));
    });
    let stream = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) }).boxed();
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn record(state: &AppState, report: &Report, target: Target) -> Summary {
    let backend = state.lab.backend.name();
    let history = state.history();
    let attempt =
        history.record_grade(report, backend).inspect_err(|e| tracing::warn!("could not record the attempt: {e}")).ok();
    let summary = Summary {
        scenario: report.scenario.clone(),
        score: report.score,
        passed: report.passed,
        millis: report.millis,
        hints_used: history.hints_revealed(&report.scenario).unwrap_or(0),
        best: history.best_score(&report.scenario).ok().flatten(),
        attempt,
        classroom_problem: None,
    };
    drop(history);
    if let Target::ExamTask { exam, index } = target {
        state.record_exam_grade(&exam, index, report);
    }
    tracing::info!(scenario = %report.scenario, score = report.score, "graded in {}ms", report.millis);
    summary
}

/// `POST /scenarios/{id}/check`.
pub async fn check(State(state): State<AppState>, Path(id): Path<String>) -> Result<GradeStream, ApiError> {
    let rendered = state.rendered(&id)?;
    let guard = state.begin("grade", format!("checking {id}"), Some(id))?;
    Ok(grade(state, rendered, guard, Target::Scenario))
}
