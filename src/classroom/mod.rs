//! Instructor-led classroom. The instructor runs `ckslab classroom serve` on the room's network;
//! each learner runs `ckslab classroom join <url> --token <join token> --name <name>` once, and
//! from then on every grade (CLI or web UI) is also reported to the instructor, whose board shows
//! each learner's best score per scenario, attempts, hints used and last activity.
//!
//! Two secrets keep it honest: the join token lets a learner add reports (nothing else), and the
//! instructor key lets the instructor read the board. A report that cannot be delivered is logged
//! and never fails a grade.

pub mod client;
pub mod roster;
pub mod server;

use serde::{Deserialize, Serialize};

/// More checks than any scenario has.
pub const MAX_CHECKS: u32 = 500;
/// More hints than any scenario has.
pub const MAX_HINTS: u32 = 50;

/// One graded attempt, as a learner's ckslab sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProgressReport {
    pub learner: String,
    pub scenario: String,
    pub score: u32,
    pub passed: bool,
    pub hints_used: u32,
    /// Checks passed of checks graded (skipped checks do not count).
    pub checks_passed: u32,
    pub checks_total: u32,
}

impl ProgressReport {
    pub fn from_report(learner: &str, report: &crate::grade::Report, hints_used: u32) -> ProgressReport {
        use crate::check::Outcome;
        let graded: Vec<_> = report.verdicts.iter().filter(|v| v.outcome != Outcome::Skip).collect();
        ProgressReport {
            learner: learner.to_string(),
            scenario: report.scenario.clone(),
            score: report.score,
            passed: report.passed,
            hints_used,
            checks_passed: graded.iter().filter(|v| v.outcome == Outcome::Pass).count() as u32,
            checks_total: graded.len() as u32,
        }
    }

    /// What the server accepts; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        validate_learner(&self.learner)?;
        let id_ok = !self.scenario.is_empty()
            && self.scenario.len() <= 64
            && self.scenario.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(format!("scenario id {:?} is not a scenario id", self.scenario));
        }
        if self.score > 100 {
            return Err(format!("score {} is over 100", self.score));
        }
        if self.checks_passed > self.checks_total || self.checks_total > MAX_CHECKS {
            return Err(format!("{} of {} checks passed does not add up", self.checks_passed, self.checks_total));
        }
        if self.hints_used > MAX_HINTS {
            return Err(format!("{} hints used is more than a scenario has (at most {MAX_HINTS})", self.hints_used));
        }
        // A grade passes when every graded check passed, which is a score of 100 (weights are at
        // least 1): anything else contradicts itself.
        let all_passed = self.checks_total > 0 && self.checks_passed == self.checks_total;
        if self.passed != (self.score == 100) {
            return Err(format!(
                "a report that {} with score {} contradicts itself (a pass is a score of 100)",
                if self.passed { "passed" } else { "failed" },
                self.score
            ));
        }
        if self.passed != all_passed {
            return Err(format!(
                "a report that {} with {} of {} checks passed contradicts itself",
                if self.passed { "passed" } else { "failed" },
                self.checks_passed,
                self.checks_total
            ));
        }
        if self.score > 0 && self.checks_passed == 0 {
            return Err(format!("score {} with no check passed contradicts itself", self.score));
        }
        Ok(())
    }
}

/// Names show on the instructor's board: short, printable, no markup.
pub fn validate_learner(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 40 || trimmed != name {
        return Err(format!("learner name {name:?} must be 1 to 40 characters without leading or trailing spaces"));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-')) {
        return Err(format!("learner name {name:?} may hold letters, digits, spaces, '.', '_' and '-' only"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ProgressReport {
        ProgressReport {
            learner: "Ana M.".into(),
            scenario: "etcd-encryption".into(),
            score: 80,
            passed: false,
            hints_used: 1,
            checks_passed: 4,
            checks_total: 5,
        }
    }

    #[test]
    fn reports_are_checked_before_they_reach_the_board() {
        assert_eq!(report().validate(), Ok(()));
        let bad = |f: fn(&mut ProgressReport)| {
            let mut r = report();
            f(&mut r);
            r.validate().unwrap_err()
        };
        assert!(bad(|r| r.learner = "<script>".into()).contains("letters, digits"));
        assert!(bad(|r| r.learner = " ana".into()).contains("1 to 40 characters"));
        assert!(bad(|r| r.learner = "a".repeat(41)).contains("1 to 40 characters"));
        assert!(bad(|r| r.scenario = "../etc".into()).contains("not a scenario id"));
        assert!(bad(|r| r.score = 101).contains("over 100"));
        assert!(bad(|r| r.checks_passed = 6).contains("does not add up"));
        assert!(bad(|r| r.checks_total = 501).contains("does not add up"));
        assert!(bad(|r| r.hints_used = 51).contains("more than a scenario has"));
        assert!(bad(|r| r.passed = true).contains("passed with score 80 contradicts itself"));
        assert!(bad(|r| r.score = 100).contains("failed with score 100 contradicts itself"));
        assert!(bad(|r| r.checks_passed = 5).contains("failed with 5 of 5 checks passed"));
        assert!(
            bad(|r| {
                r.checks_passed = 0;
            })
            .contains("no check passed")
        );
        let mut pass = report();
        (pass.score, pass.passed, pass.checks_passed) = (100, true, 5);
        assert_eq!(pass.validate(), Ok(()));
    }
}
