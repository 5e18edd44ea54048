//! Lint: everything about a scenario that can be wrong before a cluster is involved, each
//! finding placed at file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Located, Probe, SourceScenario, Step, locate};
use crate::backend::Capability;
use crate::curriculum::Curriculum;

/// Positions of the fields lint reasons about (everything else is ignored in this view).
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct SpanView {
    domain: Option<Spanned<String>>,
    competencies: Vec<Spanned<String>>,
    checks: Vec<CheckView>,
    wrong_attempts: Vec<WrongView>,
    solutions: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct CheckView {
    id: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WrongView {
    fails: Vec<Spanned<String>>,
}

fn template_variable() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // The first identifier of every {{ ... }} or {% if/for ... %} expression.
    RE.get_or_init(|| {
        Regex::new(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)|\{%-?\s*(?:if|elif)\s+(?:not\s+)?([A-Za-z_][A-Za-z0-9_]*)")
            .unwrap()
    })
}

/// All findings for one scenario; empty when it is clean.
pub fn lint(source: &SourceScenario) -> Vec<Located> {
    let mut findings = Vec::new();
    let path = source.path.as_str();
    let text = source.text.as_str();
    let scenario = &source.scenario;
    let at = |line: u64, column: u64, message: String| Located { file: path.to_string(), line, column, message };
    let view: SpanView = serde_saphyr::from_str(text).unwrap_or_default();
    let curriculum = Curriculum::get();

    // Curriculum ids.
    match curriculum.domain(&scenario.domain) {
        None => {
            let (line, column) = view
                .domain
                .as_ref()
                .map(|d| (d.referenced.line(), d.referenced.column()))
                .unwrap_or_else(|| locate(text, "domain:", 1));
            let known: Vec<_> = curriculum.domains.iter().map(|d| d.id.as_str()).collect();
            findings.push(at(
                line,
                column,
                format!("unknown domain {:?}; known: {}", scenario.domain, known.join(", ")),
            ));
        }
        Some(domain) => {
            for competency in &view.competencies {
                let id = competency.value.as_str();
                if !curriculum.knows_competency(id) {
                    findings.push(at(
                        competency.referenced.line(),
                        competency.referenced.column(),
                        format!("unknown competency id {id:?}"),
                    ));
                } else if !domain.competencies.iter().any(|c| c.id == id)
                    && !curriculum.legacy.iter().any(|c| c.id == id)
                {
                    findings.push(at(
                        competency.referenced.line(),
                        competency.referenced.column(),
                        format!("competency {id:?} belongs to another domain than {:?}", domain.id),
                    ));
                }
            }
        }
    }

    // Check ids: unique, and wrong attempts name existing ones.
    let mut seen = BTreeSet::new();
    for check in &view.checks {
        if !seen.insert(check.id.value.clone()) {
            findings.push(at(
                check.id.referenced.line(),
                check.id.referenced.column(),
                format!("duplicate check id {:?}", check.id.value),
            ));
        }
    }
    for attempt in &view.wrong_attempts {
        for name in &attempt.fails {
            if !seen.contains(&name.value) {
                findings.push(at(
                    name.referenced.line(),
                    name.referenced.column(),
                    format!("wrong attempt names check {:?}, which the scenario does not define", name.value),
                ));
            }
        }
    }
    for (index, attempt) in scenario.wrong_attempts.iter().enumerate() {
        if attempt.fails.is_empty() {
            let (line, column) = locate(text, &attempt.name, 1);
            findings.push(at(
                line,
                column,
                format!("wrong attempt #{} ({}) names no check it must fail", index + 1, attempt.name),
            ));
        }
    }
    if view.solutions.is_empty() {
        let (line, column) = locate(text, "solutions:", 1);
        findings.push(at(line, column, "a scenario needs at least one solution (the first is the reference)".into()));
    }
    if scenario.checks.is_empty() {
        let (line, column) = locate(text, "checks:", 1);
        findings.push(at(line, column, "a scenario needs at least one check".into()));
    }

    // Params used in templates are defined.
    let defined: BTreeSet<&str> = scenario.params.keys().map(String::as_str).collect();
    let report_undefined = |file: &str, body: &str, findings: &mut Vec<Located>| {
        for (index, line) in body.lines().enumerate() {
            for captures in template_variable().captures_iter(line) {
                let name = captures.get(1).or_else(|| captures.get(2)).expect("one group matches");
                if is_tera_builtin(name.as_str()) || defined.contains(name.as_str()) {
                    continue;
                }
                findings.push(Located {
                    file: file.to_string(),
                    line: index as u64 + 1,
                    column: line[..name.start()].chars().count() as u64 + 1,
                    message: format!("param {:?} is used but not defined under params", name.as_str()),
                });
            }
        }
    };
    report_undefined(path, text, &mut findings);
    let folder = path.strip_suffix("scenario.yaml").unwrap_or(path);
    for (name, bytes) in &source.files {
        if let Ok(body) = std::str::from_utf8(bytes) {
            report_undefined(&format!("{folder}{name}"), body, &mut findings);
        }
    }

    // Files the steps name exist.
    for name in referenced_files(scenario) {
        if !source.files.contains_key(&name) {
            let (line, column) = locate(text, &name, 1);
            findings.push(at(line, column, format!("file {name:?} is not in the scenario folder")));
        }
    }

    // Probes need capabilities the scenario declares, so `requires` stays honest.
    let requires: BTreeSet<Capability> = scenario.requires.iter().copied().collect();
    for check in &scenario.checks {
        for needed in probe_needs(&check.probe) {
            if !requires.contains(&needed) && !check.requires.contains(&needed) {
                let (line, column) = locate(text, &format!("id: {}", check.id), 1);
                findings.push(at(
                    line,
                    column,
                    format!(
                        "check {:?} uses {} but `requires` does not list {needed}",
                        check.id,
                        check.probe.type_name()
                    ),
                ));
            }
        }
    }

    // Everything renders (catches template syntax errors the regex cannot see), and what the
    // checks say once rendered makes sense: JSONPaths parse, a command has one place to run.
    if findings.is_empty() {
        match source.render(&BTreeMap::new()) {
            Err(err) => findings.push(at(1, 1, err.to_string())),
            Ok(rendered) => {
                for check in &rendered.scenario.checks {
                    for problem in probe_problems(&check.probe) {
                        let (line, column) = locate(text, &format!("id: {}", check.id), 1);
                        findings.push(at(line, column, format!("check {:?}: {problem}", check.id)));
                    }
                }
            }
        }
    }
    findings
}

/// Mistakes in a rendered probe that would otherwise only show when grading.
fn probe_problems(probe: &Probe) -> Vec<String> {
    use jsonpath_rust::JsonPath;
    let conditions: &[super::FieldCondition] = match probe {
        Probe::Object(p) => &p.fields,
        Probe::Objects(p) => &p.fields,
        Probe::ComponentFlag(p) => &p.file_fields,
        Probe::KubeletConfig(p) => &p.fields,
        Probe::NodeFile(p) => &p.fields,
        Probe::AnyOf(parts) | Probe::AllOf(parts) => return parts.iter().flat_map(probe_problems).collect(),
        Probe::NetworkAccess(n) => {
            let one = [n.from.is_some(), n.to.is_some(), n.port.is_some(), n.allowed.is_some()];
            let flows = [n.namespace.is_some(), n.only.is_some()];
            let mut problems = Vec::new();
            match (one.iter().any(|x| *x), flows.iter().any(|x| *x)) {
                (true, true) => problems.push(
                    "network-access checks one connection (from, to, port, allowed) or a namespace's flows (namespace, only), not both".into(),
                ),
                (true, false) if !one.iter().all(|x| *x) => {
                    problems.push("network-access for one connection needs from, to, port and allowed".into())
                }
                (false, true) if !flows.iter().all(|x| *x) => {
                    problems.push("network-access for a namespace's flows needs namespace and only".into())
                }
                (false, false) => problems.push(
                    "network-access needs from, to, port and allowed, or namespace and only".into(),
                ),
                _ => {}
            }
            for flow in n.only.iter().flatten() {
                for end in [&flow.from, &flow.to] {
                    if end.namespace.is_some() == end.ip.is_some() {
                        problems
                            .push("a flow endpoint is a pod (namespace, labels) or an ip, not both or neither".into());
                    }
                }
                if flow.port.name().is_none() && flow.port.get::<u16>().is_err() {
                    problems.push(format!("flow port {:?} is not a port number or name", flow.port));
                }
            }
            return problems;
        }
        Probe::Command(c) => {
            let places = [c.node.is_some(), c.pod.is_some(), c.pods.is_some()].into_iter().filter(|p| *p).count();
            return if places > 1 {
                vec!["a command runs in one place: give only one of node, pod and pods".into()]
            } else {
                Vec::new()
            };
        }
        _ => &[],
    };
    conditions
        .iter()
        .filter_map(|c| {
            serde_json::Value::Null
                .query(&c.path)
                .err()
                .map(|e| format!("JSONPath {:?} {}", c.path, parse_error(&e.to_string())))
        })
        .collect()
}

/// The JSONPath parser reports a multi-line diagram; a lint line wants "where: what".
fn parse_error(message: &str) -> String {
    let column = Regex::new(r"--> \d+:(\d+)").ok().and_then(|re| re.captures(message)).map(|c| c[1].to_string());
    let reason = message.lines().rev().find_map(|l| l.trim().strip_prefix("= ")).map(str::to_string);
    match (column, reason) {
        (Some(column), Some(reason)) => format!("does not parse at character {column}: {reason}"),
        _ => format!("does not parse: {}", message.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}

fn is_tera_builtin(name: &str) -> bool {
    matches!(name, "loop" | "true" | "false" | "__tera_context")
}

/// The capabilities a probe cannot work without.
pub fn probe_needs(probe: &Probe) -> Vec<Capability> {
    match probe {
        Probe::ComponentFlag(_) => vec![Capability::ControlPlaneFiles],
        Probe::KubeletConfig(_) => vec![Capability::KubeletConfig],
        Probe::NodeFile(_) => vec![Capability::ControlPlaneFiles],
        Probe::EtcdValue(_) => vec![Capability::Etcd],
        Probe::AuditLog(_) => vec![Capability::ControlPlaneFiles],
        Probe::Command(c) if c.pod.is_some() || c.pods.is_some() => vec![Capability::PodExec],
        Probe::Command(_) => vec![Capability::ControlPlaneFiles],
        // Each alternative may need something else; what all of them need is what counts.
        Probe::AllOf(parts) => {
            let mut all: Vec<Capability> = parts.iter().flat_map(probe_needs).collect();
            all.sort();
            all.dedup();
            all
        }
        Probe::AnyOf(alternatives) => {
            let mut common: Option<Vec<Capability>> = None;
            for alternative in alternatives {
                let needs = probe_needs(alternative);
                common = Some(match common {
                    None => needs,
                    Some(so_far) => so_far.into_iter().filter(|c| needs.contains(c)).collect(),
                });
            }
            common.unwrap_or_default()
        }
        _ => vec![Capability::Api],
    }
}

fn referenced_files(scenario: &super::Scenario) -> BTreeSet<String> {
    let steps = scenario
        .setup
        .iter()
        .chain(&scenario.break_steps)
        .chain(&scenario.cleanup)
        .chain(scenario.solutions.iter().flat_map(|s| &s.steps))
        .chain(scenario.wrong_attempts.iter().flat_map(|w| &w.steps));
    let mut names = BTreeSet::new();
    for step in steps {
        match step {
            Step::ApplyFile(name) | Step::CreateMissingFile(name) => {
                names.insert(name.clone());
            }
            Step::WriteFile(write) => {
                if let Some(name) = &write.from {
                    names.insert(name.clone());
                }
            }
            _ => {}
        }
    }
    names
}
