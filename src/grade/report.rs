//! Report formats: a terminal table, JSON, and JUnit XML.

use std::time::Duration;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::check::{Outcome, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
    Junit,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => serde_json::to_string_pretty(report).expect("reports serialize"),
        Format::Junit => junit(std::slice::from_ref(report), "ckslab grade"),
    }
}

fn outcome_cell(outcome: Outcome) -> Cell {
    match outcome {
        Outcome::Pass => Cell::new("PASS").fg(Color::Green),
        Outcome::Fail => Cell::new("FAIL").fg(Color::Red),
        Outcome::Error => Cell::new("ERROR").fg(Color::Yellow),
        Outcome::Skip => Cell::new("SKIP").fg(Color::DarkGrey),
    }
}

fn table(report: &Report) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(vec!["", "check", "weight", "observed / expected"]);
    for verdict in &report.verdicts {
        let mut detail = verdict.observed.clone();
        if !matches!(verdict.outcome, Outcome::Pass | Outcome::Skip) {
            detail.push_str(&format!("\nexpected: {}", verdict.expected));
            if let Some(hint) = &verdict.hint {
                detail.push_str(&format!("\nlook at: {hint}"));
            }
        }
        table.add_row(vec![
            outcome_cell(verdict.outcome),
            Cell::new(format!("{}\n{}", verdict.id, verdict.description)),
            Cell::new(verdict.weight),
            Cell::new(detail),
        ]);
    }
    let verdict_line = if report.passed {
        "PASSED".to_string()
    } else if report.has_errors() {
        "NOT PASSED (some checks could not be evaluated)".to_string()
    } else {
        "NOT PASSED".to_string()
    };
    format!(
        "{} ({}) on {}\n{table}\nscore {}% — {verdict_line} in {} ms\n",
        report.title, report.scenario, report.backend, report.score, report.millis
    )
}

fn test_case(verdict: &Verdict) -> TestCase {
    let status = match verdict.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(verdict.observed.clone());
            status
        }
        outcome => {
            let kind = if outcome == Outcome::Fail { NonSuccessKind::Failure } else { NonSuccessKind::Error };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_message(format!("observed: {}; expected: {}", verdict.observed, verdict.expected));
            if let Some(hint) = &verdict.hint {
                status.set_description(format!("look at: {hint}"));
            }
            status
        }
    };
    let mut case = TestCase::new(verdict.id.clone(), status);
    case.set_classname(verdict.probe).set_time(Duration::from_millis(verdict.millis));
    case
}

/// One test suite per report, one test case per check.
pub fn junit(reports: &[Report], name: &str) -> String {
    let mut junit = JunitReport::new(name);
    for report in reports {
        let mut suite = TestSuite::new(report.scenario.clone());
        suite.add_test_cases(report.verdicts.iter().map(test_case));
        suite.set_time(Duration::from_millis(report.millis));
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("JUnit XML serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(id: &str, outcome: Outcome, weight: u32) -> Verdict {
        Verdict {
            id: id.into(),
            description: format!("{id} description"),
            weight,
            probe: "object",
            outcome,
            observed: format!("{id} observed"),
            expected: format!("{id} expected"),
            hint: Some(format!("{id} hint")),
            millis: 3,
        }
    }

    fn report() -> Report {
        let verdicts = vec![verdict("a", Outcome::Pass, 3), verdict("b", Outcome::Fail, 1)];
        Report {
            scenario: "demo".into(),
            title: "Demo".into(),
            backend: "local".into(),
            score: super::super::score(&verdicts),
            passed: false,
            verdicts,
            millis: 7,
        }
    }

    #[test]
    fn score_is_weighted() {
        assert_eq!(report().score, 75);
        assert_eq!(report().exit_code(), 1);
    }

    #[test]
    fn table_shows_expected_and_hint_only_for_failures() {
        let text = render(&report(), Format::Table);
        assert!(text.contains("b expected") && text.contains("b hint"), "{text}");
        assert!(!text.contains("a hint"), "{text}");
        assert!(text.contains("score 75%"), "{text}");
    }

    #[test]
    fn json_and_junit_carry_every_verdict() {
        let json: serde_json::Value = serde_json::from_str(&render(&report(), Format::Json)).unwrap();
        assert_eq!(json["verdicts"][1]["outcome"], "fail");
        assert_eq!(json["score"], 75);
        let xml = render(&report(), Format::Junit);
        assert!(xml.contains("<testsuite name=\"demo\" tests=\"2\""), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("observed: b observed; expected: b expected"), "{xml}");
    }
}
