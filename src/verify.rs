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

/// From a fresh start (reset, setup, break), apply `steps` and grade.
async fn attempt(
    lab: &Lab,
    rendered: &Rendered,
    steps: &[Step],
    phase: &str,
    progress: &dyn Progress,
) -> Result<Report, String> {
    lab.start(rendered, progress).await.map_err(|e| format!("starting the scenario: {e}"))?;
    crate::step::run_steps(phase, steps, rendered, lab.backend.as_ref(), progress).await.map_err(|e| e.to_string())?;
    Ok(lab.grade(rendered, |_| {}).await)
}

pub async fn verify(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> ScenarioResult {
    let scenario = &rendered.scenario;
    let mut cases = Vec::new();
    let missing = missing_capabilities(scenario, lab.backend.as_ref());
    if !missing.is_empty() {
        let detail = format!(
            "the {} backend lacks {}",
            lab.backend.name(),
            missing.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        );
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
    if let Err(e) = lab.reset(rendered, progress).await {
        cases.push(Case {
            name: "reset afterwards".into(),
            ok: false,
            detail: e.to_string(),
            skipped: false,
            millis: 0,
        });
    }
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
