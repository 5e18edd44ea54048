//! The pages: home (the cluster), catalog, scenario, history. Each handler reads what it needs
//! (never waiting on the cluster) and renders one template.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::state::AppState;
use super::text;
use crate::curriculum::Curriculum;
use crate::history::Attempt;
use crate::lab::missing_capabilities;
use crate::scenario::{KubectlCommand, Rendered, SourceScenario, StaticPodEdit, Step};

type Page = Result<Html<String>, ApiError>;

fn context() -> tera::Context {
    tera::Context::new()
}

pub fn difficulty(scenario: &crate::scenario::Scenario) -> String {
    format!("{:?}", scenario.difficulty).to_lowercase()
}

pub async fn home(State(state): State<AppState>) -> Page {
    let mut ctx = context();
    let backend = state.lab.backend.as_ref();
    ctx.insert("cluster", &state.cluster());
    ctx.insert("doctor", &state.doctor());
    ctx.insert("kubeconfig", &backend.kubeconfig_path().display().to_string());
    ctx.insert("node_shell", &backend.node_shell_hint(&backend.control_plane()));
    ctx.insert("scenario_count", &state.catalog.scenarios.len());
    let runnable =
        state.catalog.scenarios.iter().filter(|s| missing_capabilities(&s.scenario, backend).is_empty()).count();
    ctx.insert("runnable_count", &runnable);
    let capabilities: Vec<&str> = backend.capabilities().iter().map(|c| c.as_str()).collect();
    ctx.insert("capabilities", &capabilities);
    // Shown without the join token: it is the classroom's secret, not this page's.
    let classroom = crate::classroom::client::Membership::load(&state.home)
        .ok()
        .flatten()
        .map(|m| serde_json::json!({"classroom": m.classroom, "url": m.url, "learner": m.learner}));
    ctx.insert("classroom", &classroom);
    Ok(Html(state.render("home.html", "home", ctx)?))
}

#[derive(Serialize)]
struct CatalogDomain {
    id: String,
    title: String,
    weight: u32,
    competencies: Vec<CompetencyView>,
    scenarios: Vec<CatalogEntry>,
}

#[derive(Serialize)]
pub struct CompetencyView {
    pub id: String,
    pub title: String,
    /// Some scenario of the catalog practises it.
    pub covered: bool,
}

#[derive(Serialize)]
struct CatalogEntry {
    id: String,
    title: String,
    difficulty: String,
    minutes: u32,
    competencies: Vec<String>,
    runnable: bool,
    missing: Vec<String>,
    best: Option<u32>,
}

/// Competency titles by id (domains and legacy).
pub fn competency_title(id: &str) -> String {
    let curriculum = Curriculum::get();
    curriculum
        .domains
        .iter()
        .flat_map(|d| &d.competencies)
        .chain(&curriculum.legacy)
        .find(|c| c.id == id)
        .map(|c| c.title.clone())
        .unwrap_or_else(|| id.to_string())
}

pub async fn catalog(State(state): State<AppState>) -> Page {
    let curriculum = Curriculum::get();
    let backend = state.lab.backend.as_ref();
    let history = state.history();
    let entry = |s: &SourceScenario| -> Result<CatalogEntry, ApiError> {
        let missing = missing_capabilities(&s.scenario, backend);
        Ok(CatalogEntry {
            id: s.scenario.id.clone(),
            title: s.scenario.title.clone(),
            difficulty: difficulty(&s.scenario),
            minutes: s.scenario.minutes,
            competencies: s.scenario.competencies.iter().map(|c| competency_title(c)).collect(),
            runnable: missing.is_empty(),
            missing: missing.iter().map(|c| c.as_str().to_string()).collect(),
            best: history.best_score(&s.scenario.id)?,
        })
    };
    let mut domains = Vec::new();
    for domain in &curriculum.domains {
        let sources: Vec<&SourceScenario> =
            state.catalog.scenarios.iter().filter(|s| s.scenario.domain == domain.id).collect();
        let competencies = domain
            .competencies
            .iter()
            .map(|c| CompetencyView {
                id: c.id.clone(),
                title: c.title.clone(),
                covered: sources.iter().any(|s| s.scenario.competencies.contains(&c.id)),
            })
            .collect();
        domains.push(CatalogDomain {
            id: domain.id.clone(),
            title: domain.title.clone(),
            weight: domain.weight,
            competencies,
            scenarios: sources.into_iter().map(entry).collect::<Result<_, _>>()?,
        });
    }
    let others: Vec<&SourceScenario> =
        state.catalog.scenarios.iter().filter(|s| curriculum.domain(&s.scenario.domain).is_none()).collect();
    if !others.is_empty() {
        domains.push(CatalogDomain {
            id: "other".into(),
            title: "Other".into(),
            weight: 0,
            competencies: Vec::new(),
            scenarios: others.into_iter().map(entry).collect::<Result<_, _>>()?,
        });
    }
    drop(history);
    let mut ctx = context();
    ctx.insert("domains", &domains);
    ctx.insert("scenario_count", &state.catalog.scenarios.len());
    Ok(Html(state.render("catalog.html", "catalog", ctx)?))
}

#[derive(Serialize)]
pub struct ScenarioView {
    pub id: String,
    pub title: String,
    pub domain_id: String,
    pub domain_title: String,
    pub domain_weight: u32,
    pub difficulty: String,
    pub minutes: u32,
    pub competencies: Vec<String>,
    pub requires: Vec<String>,
    pub missing: Vec<String>,
    pub runnable: bool,
    pub task_html: String,
    pub hint_total: usize,
    /// The hints revealed so far (the ladder), as safe HTML.
    pub hints: Vec<String>,
    pub has_attempt: bool,
    pub best: Option<u32>,
    pub attempts: Vec<Attempt>,
    /// Only after at least one graded attempt.
    pub solutions: Vec<SolutionView>,
    pub kubeconfig: String,
    pub node_shell: String,
    pub started_ms: Option<i64>,
}

#[derive(Serialize)]
pub struct SolutionView {
    pub name: String,
    pub description: String,
    pub steps: Vec<StepView>,
}

#[derive(Serialize)]
pub struct StepView {
    pub what: String,
    pub detail: Option<String>,
}

fn static_pod_detail(edit: &StaticPodEdit) -> String {
    let mut lines = vec![format!("# /etc/kubernetes/manifests/{}.yaml", edit.component)];
    for (flag, value) in &edit.set_flags {
        lines.push(format!("set     --{flag}={value}"));
    }
    for flag in &edit.remove_flags {
        lines.push(format!("remove  --{flag}"));
    }
    for volume in &edit.add_volumes {
        lines.push(format!(
            "mount   {} at {} (hostPath {}{})",
            volume.name,
            volume.mount_path,
            volume.host_path,
            if volume.read_only { ", read-only" } else { "" }
        ));
    }
    for volume in &edit.remove_volumes {
        lines.push(format!("unmount {volume}"));
    }
    lines.join("\n")
}

/// What a step does, with the text a learner would type or apply.
pub fn step_view(step: &Step, rendered: &Rendered) -> StepView {
    let detail = match step {
        Step::Apply(yaml) => Some(yaml.trim_end().to_string()),
        Step::ApplyFile(name) => rendered.file(name).ok().map(|t| t.trim_end().to_string()),
        Step::WriteFile(w) => match (&w.content, &w.from) {
            (Some(content), _) => Some(format!("# {} (mode {:o})\n{}", w.path, w.mode, content.trim_end())),
            (None, Some(name)) => {
                rendered.file(name).ok().map(|t| format!("# {} (mode {:o})\n{}", w.path, w.mode, t.trim_end()))
            }
            _ => None,
        },
        Step::StaticPod(edit) => Some(static_pod_detail(edit)),
        Step::Run(run) => Some(run.command.join(" ")),
        Step::Kubectl(KubectlCommand::Full { args, stdin: Some(stdin), .. }) => {
            Some(format!("kubectl {} <<'EOF'\n{}\nEOF", args.join(" "), stdin.trim_end()))
        }
        _ => None,
    };
    StepView { what: crate::step::describe(step), detail }
}

impl AppState {
    pub fn scenario_view(&self, id: &str) -> Result<(ScenarioView, Arc<Rendered>), ApiError> {
        let rendered = self.rendered(id)?;
        let s = &rendered.scenario;
        let curriculum = Curriculum::get();
        let domain = curriculum.domain(&s.domain);
        let backend = self.lab.backend.as_ref();
        let missing = missing_capabilities(s, backend);
        let history = self.history();
        let has_attempt = history.has_attempt(id)?;
        let revealed = (history.hints_revealed(id)? as usize).min(s.hints.len());
        let solutions = if has_attempt {
            s.solutions
                .iter()
                .map(|solution| SolutionView {
                    name: solution.name.clone(),
                    description: solution.description.clone(),
                    steps: solution.steps.iter().map(|step| step_view(step, &rendered)).collect(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let view = ScenarioView {
            id: s.id.clone(),
            title: s.title.clone(),
            domain_id: s.domain.clone(),
            domain_title: domain.map(|d| d.title.clone()).unwrap_or_else(|| s.domain.clone()),
            domain_weight: domain.map(|d| d.weight).unwrap_or(0),
            difficulty: difficulty(s),
            minutes: s.minutes,
            competencies: s.competencies.iter().map(|c| competency_title(c)).collect(),
            requires: s.requires.iter().map(|c| c.as_str().to_string()).collect(),
            missing: missing.iter().map(|c| c.as_str().to_string()).collect(),
            runnable: missing.is_empty(),
            task_html: text::render(&s.task),
            hint_total: s.hints.len(),
            hints: s.hints[..revealed].iter().map(|h| text::inline(h.trim())).collect(),
            has_attempt,
            best: history.best_score(id)?,
            attempts: history.attempts(Some(id), 5)?,
            solutions,
            kubeconfig: backend.kubeconfig_path().display().to_string(),
            node_shell: backend.node_shell_hint(&backend.control_plane()),
            started_ms: self.started_ms(id),
        };
        drop(history);
        Ok((view, rendered))
    }
}

/// A page with a terminal pane, with the CSP that xterm.js needs.
pub fn with_terminal(html: String) -> Response {
    ([(header::CONTENT_SECURITY_POLICY, super::security::TERMINAL_CSP)], Html(html)).into_response()
}

pub async fn scenario(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (view, _) = state.scenario_view(&id)?;
    let mut ctx = context();
    ctx.insert("s", &view);
    ctx.insert("terminal", &state.terminal_view());
    Ok(with_terminal(state.render("scenario.html", "catalog", ctx)?))
}

#[derive(Serialize)]
struct HistoryRow {
    #[serde(flatten)]
    attempt: Attempt,
    title: String,
}

pub async fn history(State(state): State<AppState>) -> Page {
    let attempts = state.history().attempts(None, 1000)?;
    let passed: std::collections::BTreeSet<&str> =
        attempts.iter().filter(|a| a.passed).map(|a| a.scenario.as_str()).collect();
    let tried: std::collections::BTreeSet<&str> = attempts.iter().map(|a| a.scenario.as_str()).collect();
    let mut ctx = context();
    ctx.insert("passed_count", &passed.len());
    ctx.insert("tried_count", &tried.len());
    let rows: Vec<HistoryRow> = attempts
        .iter()
        .map(|a| HistoryRow {
            title: state.catalog.get(&a.scenario).map(|s| s.scenario.title.clone()).unwrap_or_default(),
            attempt: a.clone(),
        })
        .collect();
    ctx.insert("attempts", &rows);
    Ok(Html(state.render("history.html", "history", ctx)?))
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}
