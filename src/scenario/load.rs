//! Loading scenarios from the catalog embedded in the binary, or from a folder (for authors).
//!
//! A scenario is a folder `<domain-id>/<scenario-id>/` holding `scenario.yaml` and the files
//! it uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;

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

/// Parses one scenario.yaml text. Errors carry file, line and column.
pub fn parse(path: &str, text: &str) -> Result<Scenario, Located> {
    serde_saphyr::from_str::<Scenario>(text).map_err(|err| {
        let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        let mut message = first_line(&err.to_string());
        if message.contains("enum Probe") {
            message = unknown_probe_message(text, line, column);
        }
        Located { file: path.to_string(), line, column, message }
    })
}

const CHECK_FIELDS: [&str; 5] = ["id", "weight", "description", "hint", "settle"];
pub const PROBE_TYPES: [&str; 11] = [
    "object",
    "objects",
    "component-flag",
    "kubelet-config",
    "node-file",
    "can-i",
    "admission",
    "etcd-value",
    "audit-log",
    "certificate",
    "command",
];

/// serde cannot say which key of a check was meant as its probe; the keys of that mapping can.
fn unknown_probe_message(text: &str, line: u64, column: u64) -> String {
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
            if !CHECK_FIELDS.contains(&key) && !PROBE_TYPES.contains(&key) {
                unknown.push(key.to_string());
            }
        }
    }
    let found = if unknown.is_empty() { "none".to_string() } else { unknown.join(", ") };
    format!("a check needs one probe, one of: {}; unknown keys here: {found}", PROBE_TYPES.join(", "))
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
