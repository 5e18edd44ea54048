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
        if self.checks_passed > self.checks_total || self.checks_total > 500 {
            return Err(format!("{} of {} checks passed does not add up", self.checks_passed, self.checks_total));
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
            passed: true,
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
    }
}
