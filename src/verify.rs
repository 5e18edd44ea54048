//! Verify: a scenario proves itself. From the broken state grading must fail; from the broken
//! state each solution must make it pass; each wrong attempt must fail the checks it names.

use std::time::{Duration, Instant};

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::backend::Progress;
use crate::check::Outcome;
use crate::grade::Report;
use crate::lab::{Lab, missing_capabilities};
use crate::scenario::{Rendered, Scenario, Solution, Step, WrongAttempt};

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `broken state fails`, `solution <name> passes`, `wrong attempt <name> fails <checks>`.
    pub name: String,
    pub ok: bool,
    /// Why it did not hold (or was skipped).
    pub detail: String,
    pub skipped: bool,
    pub millis: u64,
    /// Checks the backend could not run in this case (they need a capability it lacks), each
    /// as `id (why)`: a proof on this backend says nothing about them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_checks: Vec<String>,
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

impl Case {
    /// A case that ran, with no check skipped.
    fn ran(name: String, ok: bool, detail: String, millis: u64) -> Case {
        Case { name, ok, detail, skipped: false, millis, skipped_checks: Vec::new() }
    }
}

/// The checks a report skipped, each as `id (why)`.
fn skipped_checks(report: &Report) -> Vec<String> {
    report
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Skip)
        .map(|v| format!("{} ({})", v.id, v.observed))
        .collect()
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

/// What a proof leaves on the cluster when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Afterwards {
    /// Undo the scenario: the cluster is as it was found.
    Undo,
    /// Leave the reference solution applied, so that the next proof starts by moving on from
    /// a solved scenario, the way a learner does.
    LeaveSolved,
}

/// One case of a scenario's proof.
#[derive(Debug, Clone, Copy)]
pub enum Planned<'a> {
    Broken,
    Wrong(&'a WrongAttempt),
    /// A solution and its index (0 is the reference).
    Solution(usize, &'a Solution),
}

/// The order of a scenario's cases: broken state, each wrong attempt, each alternative
/// solution, then the reference. Ending on the reference is what lets the next proof start by
/// moving on from a solved scenario ([`Afterwards::LeaveSolved`]).
pub fn plan(scenario: &Scenario) -> Vec<Planned<'_>> {
    let mut cases = vec![Planned::Broken];
    cases.extend(scenario.wrong_attempts.iter().map(Planned::Wrong));
    cases.extend(scenario.solutions.iter().enumerate().skip(1).map(|(i, s)| Planned::Solution(i, s)));
    cases.extend(scenario.solutions.first().map(|s| Planned::Solution(0, s)));
    cases
}

/// Proves one scenario, each case from a fresh start, in the order of [`plan`].
pub async fn verify(lab: &Lab, rendered: &Rendered, progress: &dyn Progress, afterwards: Afterwards) -> ScenarioResult {
    let scenario = &rendered.scenario;
    let mut cases = Vec::new();
    let missing = missing_capabilities(scenario, lab.backend.as_ref());
    if !missing.is_empty() {
        let detail = crate::backend::lacks_message(lab.backend.name(), &missing);
        cases.push(Case { skipped: true, ..Case::ran("runs on this backend".into(), false, detail, 0) });
        return ScenarioResult { scenario: scenario.id.clone(), cases };
    }
    for planned in plan(scenario) {
        let started = Instant::now();
        let (name, steps, phase): (String, &[Step], String) = match planned {
            Planned::Broken => ("broken state fails".into(), &[], "broken".into()),
            Planned::Wrong(w) => (
                format!("wrong attempt {} fails {}", w.name, w.fails.join(", ")),
                &w.steps,
                format!("wrong attempt {}", w.name),
            ),
            Planned::Solution(i, s) => (
                format!("solution {} passes{}", s.name, if i == 0 { " (the reference)" } else { "" }),
                &s.steps,
                format!("solution {}", s.name),
            ),
        };
        if !matches!(planned, Planned::Broken) {
            progress.step(&format!("{}: {phase}", scenario.id));
        }
        let (ok, detail, skipped_checks) = match attempt(lab, rendered, steps, &phase, progress).await {
            Err(detail) => (false, detail, Vec::new()),
            Ok(report) => {
                let (ok, detail) = judge(planned, &report);
                (ok, detail, skipped_checks(&report))
            }
        };
        let millis = started.elapsed().as_millis() as u64;
        cases.push(Case { skipped_checks, ..Case::ran(name, ok, detail, millis) });
    }
    if afterwards == Afterwards::Undo {
        cases.extend(undo_afterwards(lab, rendered, progress).await);
    }
    ScenarioResult { scenario: scenario.id.clone(), cases }
}

/// Whether a graded case holds, and what to say about it.
fn judge(planned: Planned<'_>, report: &Report) -> (bool, String) {
    match planned {
        Planned::Broken if report.passed => (false, format!("every check passed before any fix: {}", summary(report))),
        Planned::Broken => (true, summary(report)),
        Planned::Solution(..) => (report.passed, summary(report)),
        Planned::Wrong(wrong) => {
            let survivors: Vec<&str> = wrong
                .fails
                .iter()
                .filter(|id| report.verdict(id).is_none_or(|v| v.outcome == Outcome::Pass))
                .map(String::as_str)
                .collect();
            if survivors.is_empty() {
                (true, summary(report))
            } else {
                (false, format!("these checks passed but must not: {}; {}", survivors.join(", "), summary(report)))
            }
        }
    }
}

/// Proves every scenario in `order` on one cluster and, with them, moving on.
///
/// In catalog order each scenario is proven by [`verify`] with no undo in between, so each
/// one starts by moving on from the one before it, solved (its reference solution is the
/// last case), and every case within a scenario starts by undoing a wrong attempt or a
/// solution of it. With `reverse`, every scenario is then started and solved again in reverse
/// order, each after the one that follows it in the catalog, solved. Every start must succeed
/// and every solved grade must pass: what one scenario leaves behind never breaks the next.
/// The cluster is left as it was found.
pub async fn verify_all(
    lab: &Lab,
    order: &[Rendered],
    reverse: bool,
    progress: &dyn Progress,
    mut on_result: impl FnMut(&ScenarioResult),
) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for rendered in order {
        let result = verify(lab, rendered, progress, Afterwards::LeaveSolved).await;
        on_result(&result);
        results.push(result);
    }
    if reverse {
        let result = reverse_pass(lab, order, progress).await;
        on_result(&result);
        results.push(result);
    }
    // The last one goes the way any scenario goes when the next starts.
    if let Some(last) = lab.active()
        && let Some(case) = undo_afterwards(lab, &last, progress).await
    {
        let result = ScenarioResult { scenario: "reset afterwards".into(), cases: vec![case] };
        on_result(&result);
        results.push(result);
    }
    results
}

/// Starts and solves each runnable scenario in reverse order, each after the next one solved.
async fn reverse_pass(lab: &Lab, order: &[Rendered], progress: &dyn Progress) -> ScenarioResult {
    let runnable: Vec<&Rendered> =
        order.iter().filter(|r| missing_capabilities(&r.scenario, lab.backend.as_ref()).is_empty()).collect();
    let mut cases = Vec::new();
    let Some((last, rest)) = runnable.split_last() else {
        return ScenarioResult { scenario: "moving-on chain".into(), cases };
    };
    let mut previous = format!("{} solved", last.scenario.id);
    for rendered in rest.iter().rev() {
        let id = &rendered.scenario.id;
        let started = Instant::now();
        progress.step(&format!("moving on in reverse order: {id} after {previous}"));
        let name = format!("in reverse order: {id} starts and its solution passes after {previous}");
        let outcome = solve_and_grade(lab, rendered, progress).await;
        let millis = started.elapsed().as_millis() as u64;
        cases.push(match outcome {
            Ok(report) if report.passed => Case::ran(name, true, String::new(), millis),
            Ok(report) => Case::ran(name, false, summary(&report), millis),
            Err(detail) => Case::ran(name, false, detail, millis),
        });
        previous = format!("{id} solved");
    }
    ScenarioResult { scenario: "moving-on chain".into(), cases }
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

/// Undoes `rendered` after a proof; a failure is a failed case.
async fn undo_afterwards(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> Option<Case> {
    let e = lab.undo(rendered, progress).await.err()?;
    Some(Case::ran("reset afterwards".into(), false, e.to_string(), 0))
}

async fn solve_and_grade(lab: &Lab, rendered: &Rendered, progress: &dyn Progress) -> Result<Report, String> {
    lab.reset(rendered, progress).await.map_err(|e| format!("starting: {e}"))?;
    lab.solve(rendered, 0, progress).await.map_err(|e| format!("solving: {e}"))?;
    Ok(lab.grade(rendered, |_| {}).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(solutions: &[&str], wrong: &[&str]) -> Scenario {
        let mut yaml = String::from(
            "id: s\ntitle: t\ndomain: cluster-setup\ncompetencies: [rbac]\ndifficulty: easy\nminutes: 1\ntask: t\nchecks: []\n",
        );
        let solutions: Vec<String> = solutions.iter().map(|n| format!("{{name: {n}, steps: []}}")).collect();
        let wrong: Vec<String> = wrong.iter().map(|n| format!("{{name: {n}, steps: [], fails: [c]}}")).collect();
        yaml.push_str(&format!("solutions: [{}]\nwrong-attempts: [{}]\n", solutions.join(", "), wrong.join(", ")));
        serde_saphyr::from_str(&yaml).expect("a minimal scenario")
    }

    fn names(plan: &[Planned<'_>]) -> Vec<String> {
        plan.iter()
            .map(|p| match p {
                Planned::Broken => "broken".to_string(),
                Planned::Wrong(w) => format!("wrong {}", w.name),
                Planned::Solution(i, s) => format!("solution {i} {}", s.name),
            })
            .collect()
    }

    #[test]
    fn a_proof_ends_on_the_reference_solution() {
        let s = scenario(&["reference", "alt1", "alt2"], &["w1", "w2"]);
        assert_eq!(
            names(&plan(&s)),
            ["broken", "wrong w1", "wrong w2", "solution 1 alt1", "solution 2 alt2", "solution 0 reference"]
        );
        let only = scenario(&["reference"], &[]);
        assert_eq!(names(&plan(&only)), ["broken", "solution 0 reference"]);
    }
}
