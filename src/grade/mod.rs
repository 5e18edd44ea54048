//! The grading engine: every check of a scenario runs concurrently; each verdict is reported as
//! it finishes (the web UI streams them), and the report weighs them into a score.

pub mod report;

use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;

use crate::backend::Backend;
use crate::check::{self, Outcome, Verdict};
use crate::scenario::Scenario;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub title: String,
    pub backend: String,
    /// In the scenario's check order.
    pub verdicts: Vec<Verdict>,
    /// Weighted percentage of passing checks.
    pub score: u32,
    pub passed: bool,
    pub millis: u64,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.verdicts.iter().any(|v| v.outcome == Outcome::Error)
    }

    /// 0 when every check passed, 2 when a check could not be evaluated, else 1.
    pub fn exit_code(&self) -> i32 {
        if self.passed {
            0
        } else if self.has_errors() {
            2
        } else {
            1
        }
    }

    pub fn verdict(&self, id: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.id == id)
    }
}

/// Weighted score in percent (rounded down, so 100 means every weighted check passed).
pub fn score(verdicts: &[Verdict]) -> u32 {
    // Sums in u64: lint bounds weights, but a folder given with --scenarios need not be linted.
    let total: u64 = verdicts.iter().filter(|v| v.outcome != Outcome::Skip).map(|v| u64::from(v.weight)).sum();
    if total == 0 {
        return 0;
    }
    let passed: u64 = verdicts.iter().filter(|v| v.outcome == Outcome::Pass).map(|v| u64::from(v.weight)).sum();
    (passed * 100 / total) as u32
}

/// Grades every check concurrently; `on_verdict` sees each verdict as soon as it is known.
pub async fn grade(scenario: &Scenario, backend: &dyn Backend, mut on_verdict: impl FnMut(&Verdict)) -> Report {
    let started = Instant::now();
    let mut pending: FuturesUnordered<_> = scenario
        .checks
        .iter()
        .enumerate()
        .map(|(index, spec)| async move { (index, check::run(spec, backend).await) })
        .collect();
    let mut slots: Vec<Option<Verdict>> = vec![None; scenario.checks.len()];
    while let Some((index, verdict)) = pending.next().await {
        tracing::debug!(check = %verdict.id, outcome = verdict.outcome.as_str(), "graded");
        on_verdict(&verdict);
        slots[index] = Some(verdict);
    }
    let verdicts: Vec<Verdict> = slots.into_iter().flatten().collect();
    let passed = verdicts.iter().any(|v| v.outcome == Outcome::Pass)
        && verdicts.iter().all(|v| matches!(v.outcome, Outcome::Pass | Outcome::Skip));
    Report {
        scenario: scenario.id.clone(),
        title: scenario.title.clone(),
        backend: backend.name().to_string(),
        score: score(&verdicts),
        passed,
        verdicts,
        millis: started.elapsed().as_millis() as u64,
    }
}
