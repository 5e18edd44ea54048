//! Lint: everything about a scenario that can be wrong before a cluster is involved, each
//! finding placed at file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::tree::{Entry, Node, Pos};
use super::{Located, Probe, SourceScenario, locate};
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

/// Names a template binds itself: `{% for x in ... %}` (and `for k, v in`), `{% set x = ... %}`.
fn template_locals(body: &str) -> BTreeSet<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"\{%-?\s*(?:for\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s*,\s*([A-Za-z_][A-Za-z0-9_]*))?\s+in\b|set(?:_global)?\s+([A-Za-z_][A-Za-z0-9_]*)\s*=)",
        )
        .unwrap()
    });
    re.captures_iter(body)
        .flat_map(|c| [c.get(1), c.get(2), c.get(3)])
        .flatten()
        .map(|m| m.as_str().to_string())
        .collect()
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
        let locals = template_locals(body);
        for (index, line) in body.lines().enumerate() {
            for captures in template_variable().captures_iter(line) {
                let name = captures.get(1).or_else(|| captures.get(2)).expect("one group matches");
                if is_tera_builtin(name.as_str()) || defined.contains(name.as_str()) || locals.contains(name.as_str()) {
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

    // What needs the YAML's positions: the folder layout, ids, weights, the files steps use,
    // regexes, JSONPaths, ports and templates, each placed at its own key.
    let tree = Node::parse(text).unwrap_or(Node::Null);
    let context = super::render::context_for(&scenario.params);
    let before = findings.len();
    findings.extend(layout_findings(path, &tree));
    findings.extend(weight_findings(path, &tree));
    findings.extend(file_findings(source, &tree, &context, &findings[..before]));
    findings.extend(probe_findings(path, &tree, &context));
    findings.extend(tool_findings(path, &tree, &context));
    findings.extend(template_findings(path, text, &tree));

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

    // A scenario that starts on another version needs a backend that can make that cluster.
    if scenario.cluster_version.is_some() && !requires.contains(&Capability::KubernetesUpgrade) {
        let (line, column) = locate(text, "cluster-version:", 1);
        findings.push(at(
            line,
            column,
            format!("`cluster-version` needs {} in `requires`", Capability::KubernetesUpgrade),
        ));
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
                findings.extend(path_findings(source, &rendered.scenario, &tree, &context));
            }
        }
    }
    findings
}

/// Absolute node paths in a text, as (byte offset, path): `/etc/...`, `/var/...` and the other
/// top-level folders a node keeps files in, without a sentence's final dot or a folder's slash.
pub fn node_paths(text: &str) -> Vec<(usize, String)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?:^|[^\w.:/~-])(/(?:etc|var|opt|usr|root|home|run|srv|tmp|lib|mnt|data)(?:/[\w.@+-]+)*/?)")
            .expect("a regex")
    });
    re.captures_iter(text)
        .filter_map(|c| c.get(1))
        .map(|m| (m.start(), m.as_str().trim_end_matches(['.', '/']).to_string()))
        .filter(|(_, p)| !p.is_empty())
        .collect()
}

/// `path` is `folder` or inside it.
fn within(path: &str, folder: &str) -> bool {
    path == folder || path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'))
}

/// Every node path a check names: in any string of its probe (a file, a flag's expected
/// value, a command's arguments), and the static-pod manifest a component-flag probe reads.
fn check_paths(probe: &Probe) -> Vec<String> {
    let mut paths = Vec::new();
    let mut stack = vec![serde_json::to_value(probe).unwrap_or_default()];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::String(s) => paths.extend(node_paths(&s).into_iter().map(|(_, p)| p)),
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    let mut flags = vec![probe];
    while let Some(probe) = flags.pop() {
        match probe {
            Probe::AnyOf(parts) | Probe::AllOf(parts) => flags.extend(parts),
            Probe::ComponentFlag(f) => paths.push(crate::staticpod::manifest_path(&f.component).display().to_string()),
            _ => {}
        }
    }
    paths
}

/// The node files a probe expects at one fixed path (not following a flag).
fn fixed_reads(probe: &Probe) -> Vec<&str> {
    match probe {
        Probe::AnyOf(parts) | Probe::AllOf(parts) => parts.iter().flat_map(fixed_reads).collect(),
        Probe::NodeFile(f) if !f.absent => vec![f.path.as_str()],
        Probe::KubeletConfig(k) => vec![k.path.as_str()],
        Probe::AnswerFile(a) => vec![a.path.as_str()],
        Probe::Certificate(c) => match &c.source {
            super::CertSource::NodeFile(path) => vec![path.as_str()],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn written_paths<'a>(steps: impl IntoIterator<Item = &'a super::Step>) -> BTreeSet<&'a str> {
    steps
        .into_iter()
        .filter_map(|step| match step {
            super::Step::WriteFile(w) => Some(w.path.as_str()),
            _ => None,
        })
        .collect()
}

/// Task text and checks agree on node paths: every path the task names is one a check reads
/// (or a folder of one), or is listed under `free-paths`; every free path is named by the task
/// and required by no check; and a check that expects a file a solution has to write at a
/// fixed place has the task say where.
fn path_findings(
    source: &SourceScenario,
    rendered: &super::Scenario,
    tree: &Node,
    context: &tera::Context,
) -> Vec<Located> {
    let path = source.path.as_str();
    let text = source.text.as_str();
    let mut findings = Vec::new();
    let task: Vec<String> = node_paths(&rendered.task).into_iter().map(|(_, p)| p).collect();
    let reads: Vec<(&str, String)> = rendered
        .checks
        .iter()
        .flat_map(|c| check_paths(&c.probe).into_iter().map(move |p| (c.id.as_str(), p)))
        .collect();
    let free = &rendered.free_paths;
    let mut reported = BTreeSet::new();
    for named in &task {
        let read = reads.iter().any(|(_, r)| within(r, named));
        let freed = free.iter().any(|f| within(named, f.trim_end_matches('/')));
        if read || freed || !reported.insert(named.clone()) {
            continue;
        }
        findings.push(located(
            path,
            task_position(text, tree, context, named),
            format!(
                "the task names {named}, but no check reads it: check that path, or say in the task that another \
                 will do (the checks follow the component's flag) and list it under free-paths"
            ),
        ));
    }
    let free_items = tree.get("free-paths").map(Node::items).unwrap_or_default();
    for (index, freed) in free.iter().enumerate() {
        let freed = freed.trim_end_matches('/');
        let at = free_items.get(index).map(|i| i.pos).unwrap_or_else(|| locate(text, "free-paths:", 1));
        if !task.iter().any(|t| t == freed) {
            findings.push(located(path, at, format!("free-paths lists {freed}, which the task text does not name")));
        } else if let Some((id, _)) = reads.iter().find(|(_, r)| r == freed) {
            findings.push(located(
                path,
                at,
                format!(
                    "free-paths lists {freed}, but check {id:?} reads that very path: the task cannot leave it free"
                ),
            ));
        }
    }
    let given = written_paths(rendered.setup.iter().chain(&rendered.break_steps));
    let learner_writes = written_paths(rendered.solutions.iter().flat_map(|s| &s.steps));
    for check in &rendered.checks {
        for read in fixed_reads(&check.probe) {
            if learner_writes.contains(read) && !given.contains(read) && !task.iter().any(|t| within(read, t)) {
                findings.push(located(
                    path,
                    locate(text, &format!("id: {}", check.id), 1),
                    format!(
                        "check {:?} expects {read}, which a solution writes, but the task never names it: the learner cannot know where it goes",
                        check.id
                    ),
                ));
            }
        }
    }
    findings
}

/// Where in scenario.yaml's task a rendered path starts: on the line that renders to it, at
/// the literal path or the template expression that produces it.
fn task_position(text: &str, tree: &Node, context: &tera::Context, wanted: &str) -> Pos {
    let Some(task) = tree.entry("task") else { return (1, 1) };
    let lines: Vec<&str> = text.lines().collect();
    // From the `task:` line to the next top-level key (a block scalar's lines are indented).
    let first = task.key_pos.0 as usize - 1;
    let end =
        (first + 1..lines.len()).find(|&i| lines[i].starts_with(|c: char| !c.is_whitespace())).unwrap_or(lines.len());
    let range = first..end;
    for index in range {
        let raw = lines[index];
        let line = super::render::render_one(raw, context).unwrap_or_else(|_| raw.to_string());
        let Some((start, _)) = node_paths(&line).into_iter().find(|(_, p)| p == wanted) else { continue };
        let column = if let Some(at) = raw.find(wanted) {
            raw[..at].chars().count()
        } else {
            // The path begins where some `{{` expression begins once the text before renders.
            raw.match_indices("{{")
                .map(|(k, _)| k)
                .find(|&k| super::render::render_one(&raw[..k], context).is_ok_and(|before| before.len() == start))
                .map(|k| raw[..k].chars().count())
                .unwrap_or_else(|| raw.chars().take_while(|c| c.is_whitespace()).count())
        };
        return (index as u64 + 1, column as u64 + 1);
    }
    task.value_pos
}

/// Mistakes in a rendered probe that would otherwise only show when grading.
fn probe_problems(probe: &Probe) -> Vec<String> {
    match probe {
        Probe::AnyOf(parts) | Probe::AllOf(parts) => parts.iter().flat_map(probe_problems).collect(),
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
            problems
        }
        Probe::Command(c) => {
            let places = [c.node.is_some(), c.pod.is_some(), c.pods.is_some()].into_iter().filter(|p| *p).count();
            if places > 1 {
                vec!["a command runs in one place: give only one of node, pod and pods".into()]
            } else {
                Vec::new()
            }
        }
        Probe::NodeFile(f) => {
            let mut problems = Vec::new();
            if let Some(d) = &f.digest {
                let kind = crate::check::digest::name(d.algorithm);
                match (&d.equals, &d.listed_in) {
                    (Some(hex), None) if !crate::check::digest::is_hex_digest(d.algorithm, hex.trim()) => problems
                        .push(format!(
                            "digest {hex:?} is not a {kind} in hex ({} characters)",
                            crate::check::digest::hex_len(d.algorithm)
                        )),
                    (None, Some(list)) if !list.starts_with('/') => {
                        problems.push(format!("digest listed-in {list:?} is not an absolute node path"))
                    }
                    (Some(_), Some(_)) | (None, None) => {
                        problems.push("a digest condition takes exactly one of equals and listed-in".into())
                    }
                    _ => {}
                }
                if f.absent {
                    problems.push("a file that must be absent has no digest: drop absent or digest".into());
                }
            }
            if f.format != crate::scenario::FileFormat::Yaml && f.fields.is_empty() {
                let name = serde_json::to_value(f.format).ok().and_then(|v| v.as_str().map(String::from));
                problems
                    .push(format!("format {} is only read for fields, and there are none", name.unwrap_or_default()));
            }
            problems
        }
        Probe::TlsHandshake(t) => {
            let mut problems = Vec::new();
            if t.versions.is_empty() {
                problems.push("tls-handshake needs at least one version (1.2, 1.3)".to_string());
            }
            for version in &t.versions {
                if crate::check::tls::version_of(version).is_none() {
                    problems.push(format!("tls-handshake version {version:?} is not 1.2 or 1.3"));
                }
            }
            let known = crate::check::tls::known_suites();
            for suite in &t.cipher_suites {
                if !known.contains(suite) {
                    problems.push(format!(
                        "tls-handshake cannot offer cipher suite {suite:?} (it knows {})",
                        known.join(", ")
                    ));
                }
            }
            problems
        }
        Probe::AnswerFile(a) => crate::check::answer::problems(a),
        Probe::Firewall(f) => {
            let mut problems = Vec::new();
            if f.closed.is_empty() && f.open.is_empty() {
                problems.push("firewall needs ports that must be closed, open, or both".to_string());
            }
            for port in f.closed.iter().chain(&f.open) {
                if let Err(e) = port.get::<u16>() {
                    problems.push(format!("firewall port: {e}"));
                }
            }
            problems
        }
        Probe::AnonymousRequest(a) if !a.path.starts_with('/') => {
            vec![format!("anonymous-request path {:?} must start with /", a.path)]
        }
        Probe::AnonymousRequest(a) if !matches!(a.status, 200 | 401 | 403) => {
            vec![format!("anonymous-request status {} is not 200, 401 or 403", a.status)]
        }
        _ => Vec::new(),
    }
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
        Probe::NodeFile(_) | Probe::AnswerFile(_) => vec![Capability::ControlPlaneFiles],
        Probe::EtcdValue(_) => vec![Capability::Etcd],
        Probe::AuditLog(_) => vec![Capability::ControlPlaneFiles],
        Probe::Command(c) if c.pod.is_some() || c.pods.is_some() => vec![Capability::PodExec],
        Probe::Command(_) => vec![Capability::ControlPlaneFiles],
        Probe::Firewall(_) => vec![Capability::NodeOs],
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

fn located(file: &str, (line, column): Pos, message: String) -> Located {
    Located { file: file.to_string(), line, column, message }
}

/// `[a-z0-9]+(-[a-z0-9]+)*`: what scenario ids (and their folders) look like.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A container port name as Kubernetes accepts it (IANA_SVC_NAME): 1 to 15 lowercase letters,
/// digits and '-', at least one letter, no '-' at either end and no "--".
pub fn is_port_name(name: &str) -> bool {
    name.len() <= 15 && is_slug(name) && name.chars().any(|c| c.is_ascii_lowercase())
}

/// The smallest and largest weight a check may have: 0 would make a check count for nothing
/// (and all-zero weights a scenario no one can pass), and the bound keeps every sum small.
pub const WEIGHTS: std::ops::RangeInclusive<u64> = 1..=100;

/// The scenario sits at `<domain>/<id>/scenario.yaml`, its id is a slug, and both agree.
fn layout_findings(path: &str, tree: &Node) -> Vec<Located> {
    let mut findings = Vec::new();
    let mut folders = path.rsplit('/').skip(1);
    let (id_folder, domain_folder) = (folders.next(), folders.next());
    if let Some(id) = tree.entry("id")
        && let Some(value) = id.value.as_str()
    {
        if !is_slug(value) {
            findings.push(located(
                path,
                id.value_pos,
                format!("id {value:?} is not a plain slug: lowercase letters and digits in words joined by single '-'"),
            ));
        } else if let Some(folder) = id_folder
            && folder != value
        {
            findings.push(located(
                path,
                id.value_pos,
                format!("id {value:?} differs from its folder {folder:?}: a scenario lives in <domain>/<id>/"),
            ));
        }
    }
    if let Some(domain) = tree.entry("domain")
        && let Some(value) = domain.value.as_str()
        && let Some(folder) = domain_folder
        && folder != value
    {
        findings.push(located(
            path,
            domain.value_pos,
            format!("domain {value:?} differs from the folder {folder:?} the scenario is in: <domain>/<id>/"),
        ));
    }
    findings
}

fn weight_findings(path: &str, tree: &Node) -> Vec<Located> {
    let mut findings = Vec::new();
    for check in tree.get("checks").map(Node::items).unwrap_or_default() {
        if let Some(weight) = check.value.entry("weight") {
            let value = weight.value.as_str().unwrap_or_default();
            if !value.parse::<u64>().is_ok_and(|w| WEIGHTS.contains(&w)) {
                findings.push(located(
                    path,
                    weight.key_pos,
                    format!("weight {value} is out of range: a check weighs {} to {}", WEIGHTS.start(), WEIGHTS.end()),
                ));
            }
        }
    }
    findings
}

/// Every step list of the scenario: setup, break, cleanup, and each solution's and wrong
/// attempt's steps.
fn step_items(tree: &Node) -> Vec<&super::tree::Item> {
    let mut steps: Vec<_> = ["setup", "break", "cleanup"]
        .iter()
        .flat_map(|key| tree.get(key).map(Node::items).unwrap_or_default())
        .collect();
    for key in ["solutions", "wrong-attempts"] {
        for holder in tree.get(key).map(Node::items).unwrap_or_default() {
            steps.extend(holder.value.get("steps").map(Node::items).unwrap_or_default());
        }
    }
    steps
}

/// The files steps use: they exist, are text, and are templates that parse and render.
fn file_findings(source: &SourceScenario, tree: &Node, context: &tera::Context, earlier: &[Located]) -> Vec<Located> {
    let path = source.path.as_str();
    let folder = path.strip_suffix("scenario.yaml").unwrap_or(path);
    let mut findings = Vec::new();
    let mut done = BTreeSet::new();
    for step in step_items(tree) {
        for entry in step.value.entries() {
            let named = match entry.key.as_str() {
                "apply-file" | "create-missing-file" => Some(entry),
                "write-file" => entry.value.entry("from"),
                _ => None,
            };
            let Some(named) = named else { continue };
            let Some(name) = named.value.as_str() else { continue };
            if !done.insert(name.to_string()) {
                continue;
            }
            let Some(bytes) = source.files.get(name) else {
                findings.push(located(path, named.value_pos, format!("file {name:?} is not in the scenario folder")));
                continue;
            };
            let text = match std::str::from_utf8(bytes) {
                Ok(text) if !text.contains('\0') => text,
                _ => {
                    findings.push(located(
                        path,
                        named.value_pos,
                        format!("file {name:?} is binary or not UTF-8: a step's file is a text template"),
                    ));
                    continue;
                }
            };
            let file = format!("{folder}{name}");
            if let Some((at, reason)) = template_syntax_error(text) {
                findings.push(located(&file, at, format!("template does not parse: {reason}")));
                continue;
            }
            if earlier.iter().any(|f| f.file == file) {
                continue;
            }
            if let Err(message) = super::render::render_one(text, context) {
                findings.push(located(path, named.value_pos, format!("file {name:?} does not render: {message}")));
            }
        }
    }
    findings
}

/// `install-tool` names a tool ckslab builds (scripts/build-tools.sh).
fn tool_findings(path: &str, tree: &Node, context: &tera::Context) -> Vec<Located> {
    let mut findings = Vec::new();
    for step in step_items(tree) {
        let Some(tool) = step.value.entry("install-tool").and_then(|e| e.value.entry("tool")) else { continue };
        let name = tool.value.as_str().and_then(|s| super::render::render_one(s, context).ok()).unwrap_or_default();
        if crate::tools::node_tool_version(&name).is_none() {
            let known: Vec<&str> = crate::tools::NODE_TOOLS.iter().map(|(n, _)| *n).collect();
            findings.push(located(
                path,
                tool.value_pos,
                format!("no node tool is called {name:?}; scripts/build-tools.sh builds {}", known.join(", ")),
            ));
        }
    }
    findings
}

/// Where and why a template does not parse, per tera: position within the template.
fn template_syntax_error(text: &str) -> Option<(Pos, String)> {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return None;
    }
    let err = tera::Tera::default().add_raw_template("t", text).err()?;
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        message = inner.to_string();
        source = inner.source();
    }
    static AT: OnceLock<Regex> = OnceLock::new();
    let at = AT.get_or_init(|| Regex::new(r"--> (\d+):(\d+)").expect("a regex"));
    let mut pos: Pos =
        at.captures(&message).map(|c| (c[1].parse().unwrap_or(1), c[2].parse().unwrap_or(1))).unwrap_or((1, 1));
    // tera places "unexpected end" past the last line; the last line is where it is missing.
    let lines = text.lines().count() as u64;
    if pos.0 > lines && lines > 0 {
        pos = (lines, text.lines().last().unwrap_or("").chars().count() as u64 + 1);
    }
    let reason = message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(str::to_string)
        .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "));
    Some((pos, reason))
}

/// Every string of scenario.yaml (params aside) parses as a template; an error is placed on
/// the line of the template where tera stopped.
fn template_findings(path: &str, text: &str, tree: &Node) -> Vec<Located> {
    let lines: Vec<&str> = text.lines().collect();
    let mut findings = Vec::new();
    let mut stack: Vec<(&Node, Pos)> =
        tree.entries().iter().filter(|e| e.key != "params").map(|e| (&e.value, e.value_pos)).collect();
    while let Some((node, at)) = stack.pop() {
        match node {
            Node::Map(entries) => stack.extend(entries.iter().map(|e| (&e.value, e.value_pos))),
            Node::Seq(items) => stack.extend(items.iter().map(|i| (&i.value, i.pos))),
            Node::Scalar(body) => {
                let Some(((line, column), reason)) = template_syntax_error(body) else { continue };
                let row = lines.get(at.0 as usize - 1).copied().unwrap_or("");
                let start = row.chars().skip(at.1 as usize - 1).collect::<String>();
                let place = if start.starts_with('|') || start.starts_with('>') {
                    let target = at.0 + line;
                    let indent = lines
                        .get(target as usize - 1)
                        .map(|r| r.chars().take_while(|c| *c == ' ').count() as u64)
                        .unwrap_or(0);
                    (target, indent + column)
                } else if line == 1 {
                    let quoted = u64::from(start.starts_with('"') || start.starts_with('\''));
                    (at.0, at.1 + quoted + column - 1)
                } else {
                    (at.0 + line - 1, column)
                };
                findings.push(located(path, place, format!("template does not parse: {reason}")));
            }
            Node::Null => {}
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// The probes of every check (through any-of and all-of), as (type, body) entries.
fn probes(tree: &Node) -> Vec<&Entry> {
    let types = super::model::variant_names::<Probe>();
    let mut out = Vec::new();
    let mut stack: Vec<&Entry> = tree
        .get("checks")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .flat_map(|c| c.value.entries())
        .filter(|e| types.contains(&e.key.as_str()))
        .collect();
    while let Some(entry) = stack.pop() {
        if matches!(entry.key.as_str(), "any-of" | "all-of") {
            stack.extend(
                entry.value.items().iter().flat_map(|i| i.value.entries()).filter(|e| types.contains(&e.key.as_str())),
            );
        }
        out.push(entry);
    }
    out
}

/// Regexes compile, JSONPaths parse, network ports are ports: what grading would only find out
/// on a cluster, placed at the key that holds it.
fn probe_findings(path: &str, tree: &Node, context: &tera::Context) -> Vec<Located> {
    use jsonpath_rust::JsonPath;
    let mut findings = Vec::new();
    let rendered = |node: &Node| node.as_str().and_then(|s| super::render::render_one(s, context).ok());
    let regex = |entry: Option<&Entry>, findings: &mut Vec<Located>| {
        let Some(entry) = entry else { return };
        let Some(pattern) = rendered(&entry.value) else { return };
        if let Err(e) = Regex::new(&pattern) {
            let reason = e.to_string().lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or("").to_string();
            findings.push(located(
                path,
                entry.key_pos,
                format!("`{}` is not a regular expression: /{pattern}/: {reason}", entry.key),
            ));
        }
    };
    for probe in probes(tree) {
        let body = &probe.value;
        let mut conditions: Vec<&Node> = Vec::new();
        match probe.key.as_str() {
            "object" | "objects" | "kubelet-config" | "node-file" => conditions.extend(body.get("fields")),
            "component-flag" => {
                conditions.extend(body.get("file-fields"));
                regex(body.entry("matches"), &mut findings);
            }
            "admission" => regex(body.entry("reason"), &mut findings),
            "command" => {
                conditions.extend(body.get("stdout-fields"));
                regex(body.entry("stdout-matches"), &mut findings);
                regex(body.entry("stdout-not-matches"), &mut findings);
                regex(body.entry("stderr-matches"), &mut findings);
            }
            "network-access" => {
                if let Some(port) = body.entry("port") {
                    // A number, or a container port's name resolved on the destination pods.
                    let value = rendered(&port.value).unwrap_or_default();
                    let value = value.trim();
                    let ok = match value.parse::<u64>() {
                        Ok(number) => (1..=65535).contains(&number),
                        Err(_) => is_port_name(value),
                    };
                    if !ok {
                        findings.push(located(
                            path,
                            port.key_pos,
                            format!(
                                "port {value:?} is neither a port number (1-65535) nor a valid port name (IANA_SVC_NAME: \
                                 1-15 lowercase letters, digits and '-', at least one letter, no '-' at either end or twice in a row)"
                            ),
                        ));
                    }
                }
                if let Some(protocol) = body.entry("protocol") {
                    let value = rendered(&protocol.value).unwrap_or_default();
                    if !matches!(value.as_str(), "TCP" | "UDP" | "SCTP") {
                        findings.push(located(
                            path,
                            protocol.key_pos,
                            format!("protocol {value:?} is not one of TCP, UDP, SCTP"),
                        ));
                    }
                }
            }
            _ => {}
        }
        for condition in conditions.iter().flat_map(|c| c.items()) {
            regex(condition.value.entry("matches"), &mut findings);
            if let Some(bound) = condition.value.entry("at-least") {
                let value = rendered(&bound.value);
                if value.as_deref().is_none_or(|v| v.trim().parse::<f64>().is_err()) {
                    findings.push(located(
                        path,
                        bound.key_pos,
                        format!("`at-least` needs a number, got {:?}", value.unwrap_or_default()),
                    ));
                }
            }
            if let Some(entry) = condition.value.entry("path")
                && let Some(jsonpath) = rendered(&entry.value)
                && let Err(e) = serde_json::Value::Null.query(&jsonpath)
            {
                findings.push(located(
                    path,
                    entry.key_pos,
                    format!("JSONPath {jsonpath:?} {}", parse_error(&e.to_string())),
                ));
            }
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_and_set_variables_are_the_templates_own() {
        let body =
            "{% for w in workers %}{{ w }}{% endfor %}{%- for k, v in map %}{{ k }}{% endfor %}{% set n = 3 %}{{ n }}";
        let locals = template_locals(body);
        assert_eq!(locals.into_iter().collect::<Vec<_>>(), ["k", "n", "v", "w"]);
        assert!(template_locals("{{ w }}").is_empty());
    }
}
