//! Exam mode's pages and buttons over the exam model ([`crate::exam`]). Exams are kept in the
//! history database, so one goes on (its clock too) after `ckslab serve` restarts; every graded
//! task is also an attempt in the history.

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::sse::{self, GradeStream, Target};
use super::state::{AppState, lock, now_ms};
use crate::curriculum::Curriculum;
use crate::exam::{Exam, MAX_TASKS};
use crate::grade::Report;
use crate::lab::missing_capabilities;
use crate::scenario::Scenario;

impl AppState {
    /// Creates an exam from the runnable scenarios; `None` seed picks one at random.
    pub fn create_exam(&self, seed: Option<u64>, max_tasks: usize) -> Result<Exam, ApiError> {
        let curriculum = Curriculum::get();
        let backend = self.lab.backend.as_ref();
        let candidates: Vec<&Scenario> = self
            .catalog
            .scenarios
            .iter()
            .map(|s| &s.scenario)
            .filter(|s| missing_capabilities(s, backend).is_empty())
            .collect();
        let seed = seed.unwrap_or_else(|| rand::random::<u32>() as u64);
        let id = hex::encode(rand::random::<[u8; 6]>());
        let exam = Exam::draw(id, &candidates, curriculum, seed, max_tasks, now_ms()).ok_or_else(|| {
            ApiError::Conflict(format!(
                "no scenario of the catalog runs on the {} backend, so there is nothing to examine",
                backend.name()
            ))
        })?;
        self.save_exam(&exam);
        lock(&self.exams).insert(exam.id.clone(), exam.clone());
        tracing::info!(exam = %exam.id, seed, tasks = exam.tasks.len(), "exam created");
        Ok(exam)
    }

    /// The exam as it is now; time running out finishes it.
    pub fn exam(&self, id: &str) -> Result<Exam, ApiError> {
        let mut exams = lock(&self.exams);
        let exam = exams.get_mut(id).ok_or_else(|| ApiError::NotFound(format!("exam {id}")))?;
        if exam.expire(now_ms()) {
            self.save_exam(exam);
        }
        Ok(exam.clone())
    }

    fn update_exam<T>(&self, id: &str, change: impl FnOnce(&mut Exam) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut exams = lock(&self.exams);
        let exam = exams.get_mut(id).ok_or_else(|| ApiError::NotFound(format!("exam {id}")))?;
        let answer = change(exam)?;
        self.save_exam(exam);
        Ok(answer)
    }

    /// Writes the exam through to the history database. A failure is logged, not fatal: the
    /// exam goes on in memory.
    fn save_exam(&self, exam: &Exam) {
        if let Err(e) = self.history().save_exam(&exam.id, exam.created_ms, exam) {
            tracing::warn!(exam = %exam.id, "could not store the exam: {e}");
        }
    }

    pub(crate) fn record_exam_grade(&self, id: &str, index: usize, report: &Report) {
        let _ = self.update_exam(id, |exam| {
            exam.record_grade(index, report);
            Ok(())
        });
    }
}

fn task_index(exam: &Exam, number: usize) -> Result<usize, ApiError> {
    exam.task_index(number).ok_or_else(|| ApiError::NotFound(format!("task {number} of exam {}", exam.id)))
}

fn exam_context(exam: &Exam) -> tera::Context {
    let curriculum = Curriculum::get();
    let mut ctx = tera::Context::new();
    ctx.insert("exam", exam);
    ctx.insert("score", &exam.score());
    ctx.insert("passed", &exam.passed());
    ctx.insert("over", &exam.over_at(now_ms()));
    ctx.insert("pass_mark", &curriculum.pass_mark_percent);
    ctx.insert("exam_minutes", &curriculum.exam_minutes);
    ctx.insert("flagged", &exam.flagged());
    ctx.insert("graded", &exam.graded());
    ctx
}

pub async fn index(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let curriculum = Curriculum::get();
    let now = now_ms();
    let mut exams: Vec<Exam> = lock(&state.exams).values().cloned().collect();
    exams.sort_by_key(|e| std::cmp::Reverse(e.created_ms));
    let rows: Vec<serde_json::Value> = exams
        .iter()
        .map(|e| serde_json::json!({"exam": e, "score": e.score(), "passed": e.passed(), "over": e.over_at(now)}))
        .collect();
    let backend = state.lab.backend.as_ref();
    let runnable =
        state.catalog.scenarios.iter().filter(|s| missing_capabilities(&s.scenario, backend).is_empty()).count();
    let mut ctx = tera::Context::new();
    ctx.insert("exams", &rows);
    ctx.insert("runnable", &runnable);
    ctx.insert("pass_mark", &curriculum.pass_mark_percent);
    ctx.insert("exam_minutes", &curriculum.exam_minutes);
    ctx.insert("domains", &curriculum.domains.iter().map(|d| (d.title.clone(), d.weight)).collect::<Vec<_>>());
    ctx.insert("max_tasks", &MAX_TASKS);
    Ok(Html(state.render("exam_index.html", "exam", ctx)?))
}

#[derive(Debug, Deserialize)]
pub struct CreateExam {
    #[serde(default)]
    pub seed: Option<String>,
    #[serde(default)]
    pub tasks: Option<String>,
}

pub async fn create(State(state): State<AppState>, Form(form): Form<CreateExam>) -> Result<Response, ApiError> {
    let parse = |field: &Option<String>, name: &str| -> Result<Option<u64>, ApiError> {
        match field.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(text) => {
                text.parse().map(Some).map_err(|_| ApiError::BadRequest(format!("{name} must be a whole number")))
            }
        }
    };
    let seed = parse(&form.seed, "seed")?;
    let tasks = parse(&form.tasks, "tasks")?.map(|n| n as usize).unwrap_or(MAX_TASKS);
    let exam = state.create_exam(seed, tasks)?;
    Ok(Redirect::to(&format!("/exam/{}", exam.id)).into_response())
}

pub async fn overview(State(state): State<AppState>, Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    let exam = state.exam(&id)?;
    Ok(Html(state.render("exam.html", "exam", exam_context(&exam))?))
}

pub async fn task(
    State(state): State<AppState>,
    Path((id, number)): Path<(String, usize)>,
) -> Result<Response, ApiError> {
    let exam = state.exam(&id)?;
    let index = task_index(&exam, number)?;
    let (view, _) = state.scenario_view(&exam.tasks[index].scenario)?;
    let mut ctx = exam_context(&exam);
    ctx.insert("s", &view);
    ctx.insert("task", &exam.tasks[index]);
    ctx.insert("previous", &(index > 0).then_some(number - 1));
    ctx.insert("next", &(index + 1 < exam.tasks.len()).then_some(number + 1));
    ctx.insert("terminal", &state.terminal_view());
    Ok(super::pages::with_terminal(state.render("scenario.html", "exam", ctx)?))
}

#[derive(Serialize)]
pub struct Flag {
    pub flagged: bool,
}

/// Toggles flag-for-review.
pub async fn flag(
    State(state): State<AppState>,
    Path((id, number)): Path<(String, usize)>,
) -> Result<Json<Flag>, ApiError> {
    let exam = state.exam(&id)?;
    let index = task_index(&exam, number)?;
    let flagged = state.update_exam(&id, |exam| {
        let task = &mut exam.tasks[index];
        task.flagged = !task.flagged;
        Ok(task.flagged)
    })?;
    Ok(Json(Flag { flagged }))
}

pub async fn check(
    State(state): State<AppState>,
    Path((id, number)): Path<(String, usize)>,
) -> Result<GradeStream, ApiError> {
    let exam = state.exam(&id)?;
    let index = task_index(&exam, number)?;
    if exam.over_at(now_ms()) {
        return Err(ApiError::Conflict("the exam is over; its review shows the results".into()));
    }
    let scenario = exam.tasks[index].scenario.clone();
    let rendered = state.rendered(&scenario)?;
    let guard = state.begin("grade", format!("checking exam task {number} ({scenario})"), Some(scenario))?;
    Ok(sse::grade(state, rendered, guard, Target::ExamTask { exam: id, index }))
}

pub async fn finish(State(state): State<AppState>, Path(id): Path<String>) -> Result<Redirect, ApiError> {
    state.exam(&id)?;
    state.update_exam(&id, |exam| {
        exam.finished_ms.get_or_insert_with(now_ms);
        Ok(())
    })?;
    Ok(Redirect::to(&format!("/exam/{id}/review")))
}

pub async fn review(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let exam = state.exam(&id)?;
    if !exam.over_at(now_ms()) {
        return Ok(Redirect::to(&format!("/exam/{id}")).into_response());
    }
    Ok(Html(state.render("exam_review.html", "exam", exam_context(&exam))?).into_response())
}
