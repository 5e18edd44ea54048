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

/// Every image a pod of a scenario really runs (setup, break, solutions, wrong attempts; not
/// the objects admission only dry-runs) has an offline stand-in, so the scenario runs on kind in
/// CI with no registry. Users pull the real images.
#[test]
fn every_image_a_scenario_runs_has_an_offline_stand_in() {
    use ckslab::scenario::Step;
    let listed = include_str!("../kind-configs/stand-in-images.txt");
    let stand_ins: Vec<&str> = listed.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let catalog = Catalog::embedded().unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for source in &catalog.scenarios {
        let rendered = source.render(&BTreeMap::new()).unwrap();
        let s = &rendered.scenario;
        let steps = s
            .setup
            .iter()
            .chain(&s.break_steps)
            .chain(s.solutions.iter().flat_map(|x| &x.steps))
            .chain(s.wrong_attempts.iter().flat_map(|x| &x.steps));
        for step in steps {
            let yaml = match step {
                Step::Apply(yaml) => yaml.clone(),
                Step::ApplyFile(name) | Step::CreateMissingFile(name) => rendered.file(name).unwrap(),
                _ => continue,
            };
            for image in images_in(&yaml) {
                seen += 1;
                if !stand_ins.contains(&image.as_str()) {
                    missing.push(format!("{}: {image}", s.id));
                }
            }
        }
    }
    assert!(seen > 5, "the walk found the scenarios' images ({seen})");
    assert!(missing.is_empty(), "no stand-in in kind-configs/stand-in-images.txt for: {missing:?}");
}

/// `image` fields of every container and init container in multi-document YAML.
fn images_in(yaml: &str) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    if matches!(key.as_str(), "containers" | "initContainers" | "ephemeralContainers") {
                        for container in child.as_array().into_iter().flatten() {
                            if let Some(image) = container["image"].as_str() {
                                out.push(image.to_string());
                            }
                        }
                    }
                    walk(child, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for doc in yaml.split("\n---") {
        if let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(doc) {
            walk(&value, &mut out);
        }
    }
    out
}
