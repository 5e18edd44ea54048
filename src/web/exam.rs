//! Exam mode: tasks sampled by the curriculum's domain weights from the scenarios this backend
//! can run (deterministic for a seed), one countdown, flags for review, a weighted score
//! against the pass mark. Exams are kept in the history database, so one goes on (its clock
//! too) after `ckslab serve` restarts; every graded task is also an attempt in the history.

use std::collections::BTreeMap;

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rand::SeedableRng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::sse::{self, GradeStream, Target};
use super::state::{AppState, lock, now_ms};
use crate::curriculum::{Curriculum, Domain};
use crate::grade::Report;
use crate::lab::missing_capabilities;
use crate::scenario::Scenario;

/// The most tasks an exam has (the real exam has 15 to 20 in two hours).
pub const MAX_TASKS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exam {
    pub id: String,
    pub seed: u64,
    pub created_ms: i64,
    pub deadline_ms: i64,
    pub finished_ms: Option<i64>,
    pub tasks: Vec<ExamTask>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExamTask {
    /// 1-based, as shown.
    pub number: usize,
    pub scenario: String,
    pub title: String,
    pub domain: String,
    pub domain_title: String,
    pub minutes: u32,
    /// Share of the exam score, in percent (all tasks add up to 100).
    pub weight: f64,
    pub flagged: bool,
    /// The last grade of this task during the exam.
    pub score: Option<u32>,
    pub passed: bool,
    /// weight × score: what the task adds to the exam score.
    pub points: f64,
    pub checks: u32,
}

impl Exam {
    pub fn over_at(&self, now: i64) -> bool {
        self.finished_ms.is_some() || now >= self.deadline_ms
    }

    /// The weighted score in percent (ungraded tasks count as 0), rounded down.
    pub fn score(&self) -> u32 {
        let total: f64 = self.tasks.iter().map(|t| t.weight).sum();
        if total <= 0.0 {
            return 0;
        }
        let earned: f64 = self.tasks.iter().map(|t| t.weight * t.score.unwrap_or(0) as f64 / 100.0).sum();
        ((earned / total) * 100.0 + 1e-9).floor() as u32
    }

    pub fn passed(&self) -> bool {
        self.score() >= Curriculum::get().pass_mark_percent
    }
}

/// Picks scenarios: a domain by weight (among domains with scenarios left), then a scenario of
/// it, until the minutes fill the exam or `max_tasks` are chosen. Same seed, same exam.
pub fn sample<'a>(
    candidates: &[&'a Scenario],
    domains: &[Domain],
    seed: u64,
    budget_minutes: u32,
    max_tasks: usize,
) -> Vec<&'a Scenario> {
    let mut pools: Vec<(u32, Vec<&'a Scenario>)> = domains
        .iter()
        .map(|d| {
            let mut pool: Vec<&Scenario> = candidates.iter().copied().filter(|s| s.domain == d.id).collect();
            pool.sort_by(|a, b| a.id.cmp(&b.id));
            (d.weight.max(1), pool)
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    let mut minutes = 0;
    while chosen.len() < max_tasks && minutes < budget_minutes {
        let open: Vec<usize> = (0..pools.len()).filter(|&i| !pools[i].1.is_empty()).collect();
        if open.is_empty() {
            break;
        }
        let Ok(pick) = WeightedIndex::new(open.iter().map(|&i| pools[i].0)) else { break };
        let pool = &mut pools[open[pick.sample(&mut rng)]].1;
        let index = rand::Rng::random_range(&mut rng, 0..pool.len());
        let scenario = pool.remove(index);
        minutes += scenario.minutes;
        chosen.push(scenario);
    }
    chosen
}

/// Each task's share: its domain's weight split among the exam's tasks of that domain,
/// normalised to 100 over the domains the exam covers.
fn weigh(tasks: &mut [ExamTask], domains: &[Domain]) {
    let mut per_domain: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks.iter() {
        *per_domain.entry(task.domain.clone()).or_default() += 1;
    }
    let weight_of = |id: &str| domains.iter().find(|d| d.id == id).map(|d| d.weight.max(1)).unwrap_or(1) as f64;
    let total: f64 = per_domain.keys().map(|d| weight_of(d)).sum();
    for task in tasks.iter_mut() {
        task.weight = weight_of(&task.domain) / per_domain[&task.domain] as f64 / total * 100.0;
    }
}

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
        let chosen =
            sample(&candidates, &curriculum.domains, seed, curriculum.exam_minutes, max_tasks.clamp(1, MAX_TASKS));
        if chosen.is_empty() {
            return Err(ApiError::Conflict(format!(
                "no scenario of the catalog runs on the {} backend, so there is nothing to examine",
                backend.name()
            )));
        }
        let mut tasks: Vec<ExamTask> = chosen
            .iter()
            .enumerate()
            .map(|(index, s)| ExamTask {
                number: index + 1,
                scenario: s.id.clone(),
                title: s.title.clone(),
                domain: s.domain.clone(),
                domain_title: curriculum.domain(&s.domain).map(|d| d.title.clone()).unwrap_or_else(|| s.domain.clone()),
                minutes: s.minutes,
                weight: 0.0,
                flagged: false,
                score: None,
                passed: false,
                points: 0.0,
                checks: s.checks.len() as u32,
            })
            .collect();
        weigh(&mut tasks, &curriculum.domains);
        let created = now_ms();
        let exam = Exam {
            id: hex::encode(rand::random::<[u8; 6]>()),
            seed,
            created_ms: created,
            deadline_ms: created + curriculum.exam_minutes as i64 * 60_000,
            finished_ms: None,
            tasks,
        };
        self.save_exam(&exam);
        lock(&self.exams).insert(exam.id.clone(), exam.clone());
        tracing::info!(exam = %exam.id, seed, tasks = exam.tasks.len(), "exam created");
        Ok(exam)
    }

    /// The exam as it is now; time running out finishes it.
    pub fn exam(&self, id: &str) -> Result<Exam, ApiError> {
        let mut exams = lock(&self.exams);
        let exam = exams.get_mut(id).ok_or_else(|| ApiError::NotFound(format!("exam {id}")))?;
        if exam.finished_ms.is_none() && now_ms() >= exam.deadline_ms {
            exam.finished_ms = Some(exam.deadline_ms);
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
            if let Some(task) = exam.tasks.get_mut(index) {
                task.score = Some(report.score);
                task.passed = report.passed;
                task.points = task.weight * report.score as f64 / 100.0;
            }
            Ok(())
        });
    }
}

fn task_index(exam: &Exam, number: usize) -> Result<usize, ApiError> {
    if number >= 1 && number <= exam.tasks.len() {
        Ok(number - 1)
    } else {
        Err(ApiError::NotFound(format!("task {number} of exam {}", exam.id)))
    }
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
    ctx.insert("flagged", &exam.tasks.iter().filter(|t| t.flagged).count());
    ctx.insert("graded", &exam.tasks.iter().filter(|t| t.score.is_some()).count());
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
) -> Result<Html<String>, ApiError> {
    let exam = state.exam(&id)?;
    let index = task_index(&exam, number)?;
    let (view, _) = state.scenario_view(&exam.tasks[index].scenario)?;
    let mut ctx = exam_context(&exam);
    ctx.insert("s", &view);
    ctx.insert("task", &exam.tasks[index]);
    ctx.insert("previous", &(index > 0).then_some(number - 1));
    ctx.insert("next", &(index + 1 < exam.tasks.len()).then_some(number + 1));
    Ok(Html(state.render("scenario.html", "exam", ctx)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(id: &str, domain: &str, minutes: u32) -> Scenario {
        serde_saphyr::from_str(&format!(
            "id: {id}\ntitle: T\ndomain: {domain}\ncompetencies: []\ndifficulty: easy\nminutes: {minutes}\ntask: x\nchecks: []\nsolutions: []\n"
        ))
        .unwrap()
    }

    #[test]
    fn sampling_is_deterministic_and_fills_the_time() {
        let domains = &Curriculum::get().domains;
        let all: Vec<Scenario> =
            (0..30).map(|i| scenario(&format!("s{i:02}"), &domains[i % domains.len()].id, 10)).collect();
        let refs: Vec<&Scenario> = all.iter().collect();
        let a: Vec<&str> = sample(&refs, domains, 7, 120, 16).iter().map(|s| s.id.as_str()).collect();
        let b: Vec<&str> = sample(&refs, domains, 7, 120, 16).iter().map(|s| s.id.as_str()).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 12, "12 tasks of 10 minutes fill 120 minutes");
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len(), "no scenario twice");
        let few = sample(&refs[..3], domains, 7, 120, 16);
        assert_eq!(few.len(), 3, "runs out of scenarios");
    }

    #[test]
    fn weights_follow_the_domains_and_add_up() {
        let domains = &Curriculum::get().domains;
        let mut tasks: Vec<ExamTask> = [&domains[0], &domains[0], &domains[1]]
            .iter()
            .enumerate()
            .map(|(i, d)| ExamTask {
                number: i + 1,
                scenario: format!("s{i}"),
                title: String::new(),
                domain: d.id.clone(),
                domain_title: String::new(),
                minutes: 10,
                weight: 0.0,
                flagged: false,
                score: None,
                passed: false,
                points: 0.0,
                checks: 1,
            })
            .collect();
        weigh(&mut tasks, domains);
        let total: f64 = tasks.iter().map(|t| t.weight).sum();
        assert!((total - 100.0).abs() < 1e-6);
        let (w0, w1) = (domains[0].weight as f64, domains[1].weight as f64);
        assert!((tasks[0].weight - w0 / 2.0 / (w0 + w1) * 100.0).abs() < 1e-6);
        tasks[2].score = Some(100);
        let exam = Exam { id: "e".into(), seed: 1, created_ms: 0, deadline_ms: i64::MAX, finished_ms: None, tasks };
        assert_eq!(exam.score(), (w1 / (w0 + w1) * 100.0).floor() as u32);
    }
}
