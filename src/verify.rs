//! Verify: a scenario proves itself. From the broken state grading must fail; from the broken
//! state each solution must make it pass; each wrong attempt must fail the checks it names.

use std::time::{Duration, Instant};

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::backend::Progress;
use crate::check::Outcome;
use crate::grade::Report;
use crate::lab::{Lab, missing_capabilities};
use crate::scenario::{Rendered, Step};

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `broken state fails`, `solution <name> passes`, `wrong attempt <name> fails <checks>`.
    pub name: String,
    pub ok: bool,
    /// Why it did not hold (or was skipped).
    pub detail: String,
    pub skipped: bool,
    pub millis: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub cases: Vec<Case>,
}

impl ScenarioResult {
    pub fn ok(&self) -> bool {
        self.cases.iter().all(|c| c.ok || c.skipped)
    }
}

fn summary(report: &Report) -> String {
    report
        .verdicts
        .iter()
        .map(|v| {
            format!(
                "{}={}{}",
                v.id,
                v.outcome.as_str(),
                if v.outcome == Outcome::Pass { String::new() } else { format!(" ({})", v.observed) }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// From the starting point (undo, setup, break), apply `steps` and grade.
async fn attempt(
    lab: &Lab,
    rendered: &Rendered,
    steps: &[Step],
    phase: &str,
    progress: &dyn Progress,
) -> Result<Report, String> {
    lab.reset(rendered, progress).await.map_err(|e| format!("starting the scenario: {e}"))?;
    crate::step::run_steps(phase, steps, rendered, lab.backend.as_ref(), progress).await.map_err(|e| e.to_string())?;
    Ok(lab.grade(rendered, |_| {}).await)
}

pub async fn verify(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> ScenarioResult {
    let scenario = &rendered.scenario;
    let mut cases = Vec::new();
    let missing = missing_capabilities(scenario, lab.backend.as_ref());
    if !missing.is_empty() {
        let detail = crate::backend::lacks_message(lab.backend.name(), &missing);
        cases.push(Case { name: "runs on this backend".into(), ok: false, detail, skipped: true, millis: 0 });
        return ScenarioResult { scenario: scenario.id.clone(), cases };
    }

    let started = Instant::now();
    let broken = attempt(lab, rendered, &[], "broken", progress).await;
    cases.push(match broken {
        Ok(report) => Case {
            name: "broken state fails".into(),
            ok: !report.passed,
            detail: if report.passed {
                format!("every check passed before any fix: {}", summary(&report))
            } else {
                summary(&report)
            },
            skipped: false,
            millis: started.elapsed().as_millis() as u64,
        },
        Err(detail) => Case {
            name: "broken state fails".into(),
            ok: false,
            detail,
            skipped: false,
            millis: started.elapsed().as_millis() as u64,
        },
    });

    for solution in &scenario.solutions {
        let started = Instant::now();
        progress.step(&format!("{}: solution {}", scenario.id, solution.name));
        let name = format!("solution {} passes", solution.name);
        let case = match attempt(lab, rendered, &solution.steps, &format!("solution {}", solution.name), progress).await
        {
            Ok(report) => Case {
                name,
                ok: report.passed,
                detail: summary(&report),
                skipped: false,
                millis: started.elapsed().as_millis() as u64,
            },
            Err(detail) => {
                Case { name, ok: false, detail, skipped: false, millis: started.elapsed().as_millis() as u64 }
            }
        };
        cases.push(case);
    }

    for wrong in &scenario.wrong_attempts {
        let started = Instant::now();
        progress.step(&format!("{}: wrong attempt {}", scenario.id, wrong.name));
        let name = format!("wrong attempt {} fails {}", wrong.name, wrong.fails.join(", "));
        let case = match attempt(lab, rendered, &wrong.steps, &format!("wrong attempt {}", wrong.name), progress).await
        {
            Ok(report) => {
                let survivors: Vec<&str> = wrong
                    .fails
                    .iter()
                    .filter(|id| report.verdict(id).is_none_or(|v| v.outcome == Outcome::Pass))
                    .map(String::as_str)
                    .collect();
                let detail = if survivors.is_empty() {
                    summary(&report)
                } else {
                    format!("these checks passed but must not: {}; {}", survivors.join(", "), summary(&report))
                };
                Case {
                    name,
                    ok: survivors.is_empty(),
                    detail,
                    skipped: false,
                    millis: started.elapsed().as_millis() as u64,
                }
            }
            Err(detail) => {
                Case { name, ok: false, detail, skipped: false, millis: started.elapsed().as_millis() as u64 }
            }
        };
        cases.push(case);
    }

    // Leave the cluster as it was found.
    cases.extend(undo_afterwards(lab, rendered, progress).await);
    ScenarioResult { scenario: scenario.id.clone(), cases }
}

pub fn junit(results: &[ScenarioResult]) -> String {
    let mut report = JunitReport::new("ckslab verify");
    for result in results {
        let mut suite = TestSuite::new(result.scenario.clone());
        for case in &result.cases {
            let status = if case.skipped {
                let mut s = TestCaseStatus::skipped();
                s.set_message(case.detail.clone());
                s
            } else if case.ok {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(case.detail.clone());
                s
            };
            let mut test = TestCase::new(case.name.clone(), status);
            test.set_classname(result.scenario.clone()).set_time(Duration::from_millis(case.millis));
            suite.add_test_case(test);
        }
        report.add_test_suite(suite);
    }
    report.to_string().expect("JUnit XML serializes")
}

/// Moving on: on one cluster, start and solve every scenario in `order`, then in reverse
/// order, with no reset between them but the one each start does; then start each one, apply
/// each of its wrong attempts and move on. Every start must succeed and every solved grade
/// must pass: what one scenario (or a near miss of it) leaves behind never breaks the next.
pub async fn chain(lab: &Lab, order: &[Rendered], progress: &dyn Progress) -> ScenarioResult {
    let runnable: Vec<&Rendered> =
        order.iter().filter(|r| missing_capabilities(&r.scenario, lab.backend.as_ref()).is_empty()).collect();
    let mut cases = Vec::new();
    let mut previous = String::from("a fresh cluster");
    let forward = runnable.iter().copied();
    let backward = runnable.iter().rev().copied();
    for (pass, rendered) in forward.map(|r| ("in catalog order", r)).chain(backward.map(|r| ("in reverse order", r))) {
        let id = &rendered.scenario.id;
        let started = Instant::now();
        progress.step(&format!("chain {pass}: {id} after {previous}"));
        let name = format!("{pass}: {id} starts and its solution passes after {previous}");
        let outcome = solve_and_grade(lab, rendered, progress).await;
        let millis = started.elapsed().as_millis() as u64;
        cases.push(match outcome {
            Ok(report) if report.passed => Case { name, ok: true, detail: String::new(), skipped: false, millis },
            Ok(report) => Case { name, ok: false, detail: summary(&report), skipped: false, millis },
            Err(detail) => Case { name, ok: false, detail, skipped: false, millis },
        });
        previous = id.clone();
    }
    for rendered in &runnable {
        for wrong in &rendered.scenario.wrong_attempts {
            let id = &rendered.scenario.id;
            let started = Instant::now();
            let name = format!("wrong attempts: {id} starts after {previous}");
            progress.step(&format!("chain: {id} ({}) after {previous}", wrong.name));
            let outcome = async {
                lab.reset(rendered, progress).await.map_err(|e| format!("starting: {e}"))?;
                let phase = format!("wrong attempt {}", wrong.name);
                crate::step::run_steps(&phase, &wrong.steps, rendered, lab.backend.as_ref(), progress)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            let millis = started.elapsed().as_millis() as u64;
            cases.push(Case {
                name,
                ok: outcome.is_ok(),
                detail: outcome.err().unwrap_or_default(),
                skipped: false,
                millis,
            });
            previous = format!("{id} wrong attempt {}", wrong.name);
        }
    }
    // The last one goes the way any scenario goes when the next starts.
    if let Some(last) = lab.active() {
        cases.extend(undo_afterwards(lab, &last, progress).await);
    }
    ScenarioResult { scenario: "moving-on chain".into(), cases }
}

/// Undoes `rendered` after a proof; a failure is a failed case.
async fn undo_afterwards(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> Option<Case> {
    let e = lab.undo(rendered, progress).await.err()?;
    Some(Case { name: "reset afterwards".into(), ok: false, detail: e.to_string(), skipped: false, millis: 0 })
}

async fn solve_and_grade(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> Result<Report, String> {
    lab.reset(rendered, progress).await.map_err(|e| format!("starting: {e}"))?;
    lab.solve(rendered, 0, progress).await.map_err(|e| format!("solving: {e}"))?;
    Ok(lab.grade(rendered, |_| {}).await)
}
