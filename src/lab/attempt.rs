//! A graded attempt: the one path from "grade this" to what a grade leaves behind, shared by
//! `ckslab grade` and the web UI's check stream.
//!
//! [`grade_attempt`] refuses a scenario the backend cannot run, grades, refuses a grade made while
//! no cluster exists (it is no attempt: not recorded, not reported), and records the attempt in
//! the history. [`Attempt::report_to_classroom`] then reports it to the learner's classroom, once
//! the caller has shown the result (an unreachable classroom may take seconds to time out).

use std::ops::Deref;
use std::path::Path;

use serde::Serialize;

use super::{Lab, LabError};
use crate::backend::BackendError;
use crate::check::Verdict;
use crate::grade::Report;
use crate::history::History;
use crate::scenario::Rendered;

/// What a graded attempt tells the learner (the web UI's `report` event).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub score: u32,
    pub passed: bool,
    pub millis: u64,
    pub hints_used: u32,
    pub best: Option<u32>,
    /// The attempt's row in the history; `None` when it could not be recorded.
    pub attempt: Option<i64>,
    /// Set when the learner joined a classroom and the report did not reach it.
    pub classroom_problem: Option<String>,
}

/// A grade that counts: recorded in the history, to be reported to the classroom.
#[must_use = "an attempt is reported to the classroom with report_to_classroom"]
#[derive(Debug)]
pub struct Attempt {
    pub report: Report,
    pub summary: Summary,
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The backend lacks what the scenario needs: nothing was graded.
    #[error(transparent)]
    Unsupported(LabError),
    /// No cluster exists: the checks ran (and say so) but the grade is no attempt.
    #[error("{source}\n  this grade is not an attempt: it was neither recorded nor reported to a classroom")]
    NoCluster {
        /// What the checks said, for a caller that shows them.
        report: Box<Report>,
        #[source]
        source: BackendError,
    },
}

/// Grades `rendered` as an attempt; see the module doc. `history` opens the history (or `None`
/// when it cannot be opened: the grade still counts, it is only not recorded); it is held only
/// while recording, never across an await.
pub async fn grade_attempt<H: Deref<Target = History>>(
    lab: &Lab,
    rendered: &Rendered,
    history: impl FnOnce() -> Option<H>,
    on_verdict: impl FnMut(&Verdict),
) -> Result<Attempt, AttemptError> {
    lab.require(&rendered.scenario).map_err(AttemptError::Unsupported)?;
    let report = lab.grade(rendered, on_verdict).await;
    if !lab.backend.has_cluster().await {
        let source = BackendError::NoCluster { backend: lab.backend.name().to_string() };
        return Err(AttemptError::NoCluster { report: Box::new(report), source });
    }
    let summary = {
        let history = history();
        record(history.as_deref(), &report)
    };
    tracing::info!(scenario = %report.scenario, score = report.score, "graded in {}ms", report.millis);
    Ok(Attempt { report, summary })
}

fn record(history: Option<&History>, report: &Report) -> Summary {
    let mut summary = Summary {
        scenario: report.scenario.clone(),
        score: report.score,
        passed: report.passed,
        millis: report.millis,
        hints_used: 0,
        best: None,
        attempt: None,
        classroom_problem: None,
    };
    if let Some(history) = history {
        summary.attempt =
            history.record_grade(report).inspect_err(|e| tracing::warn!("could not record the attempt: {e}")).ok();
        summary.hints_used = history.hints_revealed(&report.scenario).unwrap_or(0);
        summary.best = history.best_score(&report.scenario).ok().flatten();
    }
    summary
}

impl Attempt {
    /// Reports the attempt if this learner joined a classroom (the data dir says); what went
    /// wrong, if anything, lands in `summary.classroom_problem`.
    pub async fn report_to_classroom(&mut self, data_dir: &Path) {
        self.summary.classroom_problem =
            crate::classroom::client::report_if_joined(data_dir, &self.report, self.summary.hints_used).await;
    }
}
