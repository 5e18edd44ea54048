//! What every handler shares: the lab, the catalog, the history, the templates, the CSRF token,
//! and the one cluster-changing operation that may run at a time.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::ApiError;
use crate::backend::{ClusterStatus, Progress};
use crate::doctor;
use crate::exam::Exam;
use crate::history::History;
use crate::lab::Lab;
use crate::scenario::{Catalog, Rendered};

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub lab: Lab,
    pub catalog: Catalog,
    pub home: PathBuf,
    pub port: u16,
    csrf_token: String,
    templates: tera::Tera,
    history: Mutex<History>,
    ops: Mutex<Ops>,
    cluster: Mutex<Option<ClusterView>>,
    doctor: Mutex<Option<Vec<doctor::Finding>>>,
    /// When each scenario was last made ready (epoch ms), for the task timer.
    started: Mutex<HashMap<String, i64>>,
    pub(crate) exams: Mutex<HashMap<String, Exam>>,
    /// Scenarios rendered with their params, once each (params do not change while serving).
    rendered: Mutex<HashMap<String, Arc<Rendered>>>,
    /// The terminal panes' pages and open shells.
    pub terminals: super::terminal::Terminals,
    terminal_policy: Mutex<super::terminal::TerminalPolicy>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Locks a mutex, ignoring poisoning (a panicked handler must not take the UI down).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl AppState {
    /// The state for a server on 127.0.0.1:`port`, with the history under `home`.
    pub fn new(lab: Lab, catalog: Catalog, home: &Path, port: u16) -> anyhow::Result<AppState> {
        let history = History::open(home)?;
        AppState::with_history(lab, catalog, home, port, history)
    }

    pub fn with_history(
        lab: Lab,
        catalog: Catalog,
        home: &Path,
        port: u16,
        history: History,
    ) -> anyhow::Result<AppState> {
        let exams: Vec<Exam> = history.exams()?;
        let exams = exams.into_iter().map(|e| (e.id.clone(), e)).collect();
        Ok(AppState(Arc::new(Inner {
            lab,
            catalog,
            home: home.to_path_buf(),
            port,
            csrf_token: super::security::new_token(),
            templates: super::assets::templates()?,
            history: Mutex::new(history),
            ops: Mutex::new(Ops::default()),
            cluster: Mutex::new(None),
            doctor: Mutex::new(None),
            started: Mutex::new(HashMap::new()),
            exams: Mutex::new(exams),
            rendered: Mutex::new(HashMap::new()),
            terminals: Default::default(),
            terminal_policy: Mutex::new(Default::default()),
        })))
    }

    /// A scenario of the catalog rendered with its params (cached).
    pub fn rendered(&self, id: &str) -> Result<Arc<Rendered>, ApiError> {
        if let Some(rendered) = lock(&self.rendered).get(id) {
            return Ok(rendered.clone());
        }
        let rendered = Arc::new(self.catalog.get(id)?.render(&std::collections::BTreeMap::new())?);
        lock(&self.rendered).insert(id.to_string(), rendered.clone());
        Ok(rendered)
    }

    /// Where `serve` listens and whether the user allowed a terminal off loopback.
    pub fn terminal_policy(&self) -> super::terminal::TerminalPolicy {
        *lock(&self.terminal_policy)
    }

    pub fn set_terminal_policy(&self, policy: super::terminal::TerminalPolicy) {
        *lock(&self.terminal_policy) = policy;
    }

    /// The per-process token every state-changing request must carry.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    pub fn history(&self) -> MutexGuard<'_, History> {
        lock(&self.history)
    }

    /// Renders a template with the fields every page needs (CSRF token, backend, nav).
    pub fn render(&self, template: &str, nav: &str, mut context: tera::Context) -> Result<String, ApiError> {
        context.insert("csrf_token", &self.csrf_token);
        context.insert("backend", self.lab.backend.name());
        context.insert("nav", nav);
        context.insert("job", &self.job());
        Ok(self.templates.render(template, &context)?)
    }

    pub fn doctor(&self) -> Option<Vec<doctor::Finding>> {
        lock(&self.doctor).clone()
    }

    pub fn set_doctor(&self, findings: Vec<doctor::Finding>) {
        *lock(&self.doctor) = Some(findings);
    }

    /// Runs the doctor's examination and keeps the findings for the home page.
    pub async fn refresh_doctor(&self) {
        let findings = doctor::examine().await;
        self.set_doctor(findings);
    }

    /// The last known cluster state (the home page shows it without waiting on the backend).
    pub fn cluster(&self) -> Option<ClusterView> {
        lock(&self.cluster).clone()
    }

    /// Asks the backend for its status now (bounded), and keeps the answer.
    pub async fn refresh_cluster(&self) -> ClusterView {
        let view = match tokio::time::timeout(Duration::from_secs(10), self.lab.backend.status()).await {
            Ok(Ok(status)) => ClusterView { status: Some(status), error: None, checked_ms: now_ms() },
            Ok(Err(e)) => ClusterView { status: None, error: Some(e.to_string()), checked_ms: now_ms() },
            Err(_) => ClusterView {
                status: None,
                error: Some("the backend did not report its status within 10s".into()),
                checked_ms: now_ms(),
            },
        };
        *lock(&self.cluster) = Some(view.clone());
        view
    }

    pub fn started_ms(&self, scenario: &str) -> Option<i64> {
        lock(&self.started).get(scenario).copied()
    }

    pub fn mark_started(&self, scenario: &str) {
        lock(&self.started).insert(scenario.to_string(), now_ms());
    }

    /// Claims the single operation slot, or says what holds it (409 busy).
    pub fn begin(&self, kind: &'static str, label: String, scenario: Option<String>) -> Result<OpGuard, ApiError> {
        let mut ops = lock(&self.ops);
        if let Some(current) = &ops.current {
            return Err(ApiError::Busy(format!(
                "{} (running for {}s); wait for it to finish",
                current.view.label,
                current.started.elapsed().as_secs()
            )));
        }
        ops.next += 1;
        let id = ops.next;
        tracing::info!(id, kind, "{label}");
        ops.current = Some(Job {
            view: JobView {
                id,
                kind,
                label,
                scenario,
                running: true,
                ok: None,
                error: None,
                steps: Vec::new(),
                seconds: 0,
                started_ms: now_ms(),
                finished_ms: None,
            },
            started: Instant::now(),
        });
        Ok(OpGuard { state: self.clone(), id, finished: false })
    }

    /// The running operation, else the last one that finished.
    pub fn job(&self) -> Option<JobView> {
        let ops = lock(&self.ops);
        ops.current.as_ref().or(ops.last.as_ref()).map(Job::snapshot)
    }

    pub fn is_busy(&self) -> bool {
        lock(&self.ops).current.is_some()
    }
}

/// The cluster as the home page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub status: Option<ClusterStatus>,
    pub error: Option<String>,
    pub checked_ms: i64,
}

/// One operation (up, down, start, reset, solve, grade) as the pages see it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: u64,
    pub kind: &'static str,
    pub label: String,
    pub scenario: Option<String>,
    pub running: bool,
    pub ok: Option<bool>,
    pub error: Option<String>,
    /// Progress messages, oldest first.
    pub steps: Vec<String>,
    pub seconds: u64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}

struct Job {
    view: JobView,
    started: Instant,
}

impl Job {
    fn snapshot(&self) -> JobView {
        let mut view = self.view.clone();
        if view.running {
            view.seconds = self.started.elapsed().as_secs();
        }
        view
    }
}

#[derive(Default)]
struct Ops {
    next: u64,
    current: Option<Job>,
    last: Option<Job>,
}

/// Holds the operation slot; progress goes to the job's log. Finishing (or dropping) frees it.
pub struct OpGuard {
    state: AppState,
    id: u64,
    finished: bool,
}

impl OpGuard {
    pub fn view(&self) -> JobView {
        let ops = lock(&self.state.ops);
        ops.current.as_ref().filter(|j| j.view.id == self.id).map(Job::snapshot).expect("the guard's job is current")
    }

    pub fn finish(mut self, result: Result<(), String>) {
        self.close(result);
    }

    fn close(&mut self, result: Result<(), String>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let mut ops = lock(&self.state.ops);
        let Some(mut job) = ops.current.take_if(|j| j.view.id == self.id) else { return };
        job.view.running = false;
        job.view.seconds = job.started.elapsed().as_secs();
        job.view.finished_ms = Some(now_ms());
        match result {
            Ok(()) => {
                tracing::info!(id = self.id, "{} finished in {}s", job.view.label, job.view.seconds);
                job.view.ok = Some(true);
            }
            Err(message) => {
                tracing::warn!(id = self.id, "{} failed: {message}", job.view.label);
                job.view.ok = Some(false);
                job.view.error = Some(message);
            }
        }
        ops.last = Some(job);
    }
}

impl Progress for OpGuard {
    fn step(&self, message: &str) {
        tracing::info!(id = self.id, "{message}");
        let mut ops = lock(&self.state.ops);
        if let Some(job) = ops.current.as_mut().filter(|j| j.view.id == self.id) {
            job.view.steps.push(message.to_string());
        }
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        self.close(Err("the operation was interrupted".into()));
    }
}
