//! Grading as a server-sent event stream: `checks` (what will run), one `verdict` per check as
//! soon as it finishes, then `report` (a [`crate::lab::attempt::Summary`]: score, recorded attempt),
//! or `error` when the grade is no attempt (no cluster). The grade runs in its own task holding
//! the operation slot, so it completes and is recorded even if the page goes away.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::state::{AppState, OpGuard};
use crate::scenario::Rendered;

pub type GradeStream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

#[derive(Serialize)]
struct PendingCheck<'a> {
    id: &'a str,
    description: &'a str,
    weight: u32,
}

/// The `error` event: the grade is no attempt (no cluster, or a scenario this backend cannot run).
#[derive(Serialize)]
struct GradeFailed {
    message: String,
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
        let graded = crate::lab::attempt::grade_attempt(
            &state.lab,
            &rendered,
            || Some(state.history()),
            move |verdict| {
                let _ = verdicts.send(event("verdict", verdict));
            },
        )
        .await;
        let mut attempt = match graded {
            Ok(attempt) => attempt,
            Err(err) => {
                let message = err.to_string();
                guard.finish(Err(message.clone()));
                let _ = tx.send(event("error", &GradeFailed { message }));
                return;
            }
        };
        if let Target::ExamTask { exam, index } = target {
            state.record_exam_grade(&exam, index, &attempt.report);
        }
        // Reporting to a classroom touches no cluster: it need not hold the operation slot.
        guard.finish(Ok(()));
        attempt.report_to_classroom(&state.home).await;
        let _ = tx.send(event("report", &attempt.summary));
    });
    let stream = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) }).boxed();
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /scenarios/{id}/check`.
pub async fn check(State(state): State<AppState>, Path(id): Path<String>) -> Result<GradeStream, ApiError> {
    let rendered = state.rendered(&id)?;
    let guard = state.begin("grade", format!("checking {id}"), Some(id))?;
    Ok(grade(state, rendered, guard, Target::Scenario))
}
