//! Loading scenarios from the catalog embedded in the binary, or from a folder (for authors).
//!
//! A scenario is a folder `<domain-id>/<scenario-id>/` holding `scenario.yaml` and the files
//! it uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;

use super::tree::{Entry, Node, Pos};
use super::{Located, Scenario};

#[derive(RustEmbed)]
#[folder = "scenarios/"]
struct Embedded;

const SCENARIO_FILE: &str = "scenario.yaml";

/// A scenario as written: its parsed form (templates not yet rendered), its text and files.
#[derive(Debug, Clone)]
pub struct SourceScenario {
    /// Display path of scenario.yaml, used in error messages.
    pub path: String,
    pub text: String,
    /// The scenario folder's other files, by path relative to the folder.
    pub files: BTreeMap<String, Vec<u8>>,
    pub scenario: Scenario,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub scenarios: Vec<SourceScenario>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Parse(Located),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not UTF-8 text")]
    NotText { path: String },
    #[error("no scenario with id {id:?}; `ckslab list` shows the catalog")]
    Unknown { id: String },
    #[error("{count} scenario file(s) failed to load:\n{list}")]
    Many { count: usize, list: String },
}

/// Parses one scenario.yaml text. Errors carry file, line and column, placed at the offending
/// key even where serde only knows the mapping that holds it (flattened probes and conditions).
pub fn parse(path: &str, text: &str) -> Result<Scenario, Located> {
    serde_saphyr::from_str::<Scenario>(text).map_err(|err| {
        let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        let message = first_line(&err.to_string());
        let at = |(line, column): Pos, message: String| Located { file: path.to_string(), line, column, message };
        let Some(tree) = Node::parse(text) else { return at((line, column), message) };
        if let Some((pos, shape)) = shape_problem(&tree) {
            return at(pos, shape);
        }
        if message.contains("enum Probe") {
            return at((line, column), unknown_probe_message(text, line, column));
        }
        // "unknown field `x`": serde may name the enclosing mapping; point at the key itself.
        if let Some(field) = message.split('`').nth(1).filter(|_| message.starts_with("unknown field")) {
            let key = tree.node_at((line, column)).and_then(|n| n.find_key(field)).or_else(|| tree.find_key(field));
            if let Some(key) = key {
                return at(key.key_pos, message);
            }
        }
        at((line, column), message)
    })
}

/// Fields of a check besides its probe; kept in sync with [`super::CheckSpec`] by a test.
pub const CHECK_FIELDS: [&str; 6] = ["id", "weight", "description", "hint", "settle", "requires"];

/// Every probe type, from the model's own enum.
pub fn probe_types() -> &'static [&'static str] {
    super::model::variant_names::<super::Probe>()
}

/// What a field condition and a component-flag probe may hold besides their one expectation.
const CONDITION_FIELDS: [&str; 3] = ["path", "label", "any"];
const FLAG_FIELDS: [&str; 3] = ["component", "flag", "file-fields"];

/// Mistakes serde reports at the wrong place or in its own words: a check with no probe or two,
/// a field condition or flag probe with no expectation or two, unknown keys in either.
fn shape_problem(tree: &Node) -> Option<(Pos, String)> {
    let types = probe_types();
    let mut probes: Vec<&Entry> = Vec::new();
    for check in tree.get("checks").map(Node::items).unwrap_or_default() {
        let found: Vec<&Entry> = check.value.entries().iter().filter(|e| types.contains(&e.key.as_str())).collect();
        if found.len() > 1 {
            return Some((
                found[1].key_pos,
                format!("a check has one probe; this one has `{}` and `{}`", found[0].key, found[1].key),
            ));
        }
        if found.is_empty()
            && let Some(unknown) = check.value.entries().iter().find(|e| !CHECK_FIELDS.contains(&e.key.as_str()))
        {
            return Some((
                unknown.key_pos,
                format!("a check needs one probe, one of: {}; `{}` is not a probe type", types.join(", "), unknown.key),
            ));
        }
        probes.extend(found);
    }
    while let Some(probe) = probes.pop() {
        let body = &probe.value;
        match probe.key.as_str() {
            "any-of" | "all-of" => {
                for item in body.items() {
                    let found: Vec<&Entry> = item.value.entries().iter().collect();
                    match found.iter().find(|e| !types.contains(&e.key.as_str())) {
                        Some(unknown) => {
                            return Some((
                                unknown.key_pos,
                                format!("`{}` is not a probe type; one of: {}", unknown.key, types.join(", ")),
                            ));
                        }
                        None if found.len() > 1 => {
                            return Some((
                                found[1].key_pos,
                                format!(
                                    "each entry of {} is one probe; this one has `{}` and `{}`",
                                    probe.key, found[0].key, found[1].key
                                ),
                            ));
                        }
                        None => probes.extend(found),
                    }
                }
            }
            "component-flag" => {
                let expectations = super::model::variant_names::<super::FlagExpectation>();
                if let Some(problem) = one_expectation(body, &FLAG_FIELDS, expectations, "a component-flag probe") {
                    return Some(problem);
                }
                for condition in body.get("file-fields").map(Node::items).unwrap_or_default() {
                    if let Some(problem) = condition_problem(&condition.value) {
                        return Some(problem);
                    }
                }
            }
            "object" | "objects" | "kubelet-config" | "node-file" => {
                for condition in body.get("fields").map(Node::items).unwrap_or_default() {
                    if let Some(problem) = condition_problem(&condition.value) {
                        return Some(problem);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn condition_problem(condition: &Node) -> Option<(Pos, String)> {
    let expectations = super::model::variant_names::<super::Expectation>();
    one_expectation(condition, &CONDITION_FIELDS, expectations, "a field condition")
}

/// Unknown keys, then exactly one of `expectations`, among the keys of `body`.
fn one_expectation(body: &Node, fields: &[&str], expectations: &[&str], what: &str) -> Option<(Pos, String)> {
    if let Some(unknown) =
        body.entries().iter().find(|e| !fields.contains(&e.key.as_str()) && !expectations.contains(&e.key.as_str()))
    {
        return Some((
            unknown.key_pos,
            format!(
                "unknown key `{}` in {what}; expected one of: {}, {}",
                unknown.key,
                fields.join(", "),
                expectations.join(", ")
            ),
        ));
    }
    let found: Vec<&Entry> = body.entries().iter().filter(|e| expectations.contains(&e.key.as_str())).collect();
    match found.as_slice() {
        [] if !body.entries().is_empty() => Some((
            body.entries()[0].key_pos,
            format!("{what} needs one expectation, one of: {}", expectations.join(", ")),
        )),
        [first, second, ..] => Some((
            second.key_pos,
            format!("{what} holds two expectations, `{}` and `{}`: give only one", first.key, second.key),
        )),
        _ => None,
    }
}

/// serde cannot say which key of a check was meant as its probe; the keys of that mapping can.
fn unknown_probe_message(text: &str, line: u64, column: u64) -> String {
    let types = probe_types();
    let indent = column.saturating_sub(1) as usize;
    let mut unknown = Vec::new();
    for (index, row) in text.lines().enumerate().skip(line.saturating_sub(1) as usize) {
        let body = if index + 1 == line as usize {
            row.get(indent..).unwrap_or("").trim_start_matches("- ")
        } else {
            row.get(indent..).unwrap_or("")
        };
        if index + 1 > line as usize
            && (row.len() <= indent || !row[..indent].trim().is_empty() || row[indent..].starts_with("- "))
        {
            break;
        }
        if body.starts_with(' ') {
            continue;
        }
        if let Some((key, _)) = body.split_once(':') {
            let key = key.trim();
            if !CHECK_FIELDS.contains(&key) && !types.contains(&key) {
                unknown.push(key.to_string());
            }
        }
    }
    let found = if unknown.is_empty() { "none".to_string() } else { unknown.join(", ") };
    format!("a check needs one probe, one of: {}; unknown keys here: {found}", types.join(", "))
}

/// serde-saphyr appends a source snippet to its messages; the location is reported separately.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    // serde-saphyr prefixes "error: line L column C: "; the location is reported separately.
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest.to_string(),
        _ => line.to_string(),
    }
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn embedded() -> Result<Catalog, LoadError> {
        let mut folders: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for name in Embedded::iter() {
            let Some(file) = Embedded::get(&name) else { continue };
            if let Some((folder, rest)) = split_scenario_path(&name) {
                folders.entry(folder).or_default().insert(rest, file.data.into_owned());
            }
        }
        Catalog::from_folders(folders, |folder| format!("scenarios/{folder}/{SCENARIO_FILE}"))
    }

    /// Every `*/*/scenario.yaml` below `dir`.
    pub fn from_dir(dir: &Path) -> Result<Catalog, LoadError> {
        let mut folders: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for file in walk(dir)? {
            let rel = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().replace('\\', "/");
            if let Some((folder, rest)) = split_scenario_path(&rel) {
                let data = std::fs::read(&file)
                    .map_err(|source| LoadError::Io { path: file.display().to_string(), source })?;
                folders.entry(folder).or_default().insert(rest, data);
            }
        }
        let base = dir.display().to_string();
        Catalog::from_folders(folders, |folder| format!("{base}/{folder}/{SCENARIO_FILE}"))
    }

    fn from_folders(
        folders: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
        display: impl Fn(&str) -> String,
    ) -> Result<Catalog, LoadError> {
        let mut scenarios = Vec::new();
        let mut errors = Vec::new();
        for (folder, mut files) in folders {
            let path = display(&folder);
            let Some(bytes) = files.remove(SCENARIO_FILE) else { continue };
            let Ok(text) = String::from_utf8(bytes) else {
                errors.push(format!("{path}: not UTF-8 text"));
                continue;
            };
            match parse(&path, &text) {
                Ok(scenario) => scenarios.push(SourceScenario { path, text, files, scenario }),
                Err(located) => errors.push(located.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(LoadError::Many { count: errors.len(), list: errors.join("\n") });
        }
        Ok(Catalog { scenarios })
    }

    pub fn get(&self, id: &str) -> Result<&SourceScenario, LoadError> {
        self.scenarios.iter().find(|s| s.scenario.id == id).ok_or_else(|| LoadError::Unknown { id: id.to_string() })
    }
}

/// `domain/id/rest...` -> (`domain/id`, `rest`).
fn split_scenario_path(rel: &str) -> Option<(String, String)> {
    let mut parts = rel.splitn(3, '/');
    let domain = parts.next()?;
    let id = parts.next()?;
    let rest = parts.next()?;
    Some((format!("{domain}/{id}"), rest.to_string()))
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|source| LoadError::Io { path: current.display().to_string(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Io { path: current.display().to_string(), source })?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fields_and_probe_types_cover_the_model() {
        let yaml = "id: a\ndescription: d\nnetwork-access: {from: {namespace: a}, to: {namespace: b}, port: 80, allowed: true}\n";
        let check: super::super::CheckSpec = serde_saphyr::from_str(yaml).unwrap();
        let value = serde_json::to_value(&check).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        for key in &keys {
            assert!(CHECK_FIELDS.contains(&key.as_str()) || probe_types().contains(&key.as_str()), "{key}");
        }
        for field in CHECK_FIELDS {
            assert!(keys.iter().any(|k| *k == field), "{field} is not a check field");
        }
        for probe in ["network-access", "any-of", "all-of", "object", "command"] {
            assert!(probe_types().contains(&probe), "{probe}");
        }
    }
}
