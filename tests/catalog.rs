//! The shipped catalog loads, lints clean and renders; the CLI reads it.

use std::collections::BTreeMap;

use ckslab::scenario::{Catalog, lint::lint};

#[test]
fn every_shipped_scenario_lints_clean_and_renders() {
    let catalog = Catalog::embedded().expect("the embedded catalog loads");
    assert!(catalog.scenarios.len() >= 3, "at least the three core scenarios ship");
    for source in &catalog.scenarios {
        let findings = lint(source);
        assert!(
            findings.is_empty(),
            "{}:\n{}",
            source.path,
            findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
        );
        let rendered = source.render(&BTreeMap::new()).unwrap();
        assert!(!rendered.scenario.task.contains("{{"), "{} task still has a template", source.path);
        assert!(rendered.scenario.hints.len() >= 3, "{} needs at least three hints", source.path);
        assert!(
            rendered.scenario.solutions.len() >= 2,
            "{} needs a reference and an alternative solution",
            source.path
        );
        assert!(rendered.scenario.wrong_attempts.len() >= 2, "{} needs two wrong attempts", source.path);
    }
}

#[test]
fn every_exam_domain_has_a_scenario() {
    // Exam mode samples by domain weight; a domain without scenarios would silently shrink the exam.
    let catalog = Catalog::embedded().expect("the embedded catalog loads");
    for domain in &ckslab::curriculum::Curriculum::get().domains {
        let count = catalog
            .scenarios
            .iter()
            .filter(|s| s.render(&BTreeMap::new()).unwrap().scenario.domain == domain.id)
            .count();
        assert!(count > 0, "domain {} ({}%) has no scenario", domain.id, domain.weight);
    }
}
