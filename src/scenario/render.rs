//! Rendering a scenario from its params: one tera context for the task text, every step, every
//! check and every file the scenario applies, so task and checks cannot disagree.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Scenario, SourceScenario};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}: rendering {what}: {message}")]
    Template { file: String, what: String, message: String },
    #[error("{file}: no file {name:?} in the scenario folder")]
    MissingFile { file: String, name: String },
    #[error("{file}: {name} is not UTF-8 text")]
    NotText { file: String, name: String },
    #[error("{file}: after rendering: {message}")]
    Shape { file: String, message: String },
}

/// A scenario with its params applied everywhere.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub path: String,
    pub scenario: Scenario,
    files: BTreeMap<String, Vec<u8>>,
    context: tera::Context,
}

impl SourceScenario {
    /// Renders with the scenario's params; `overrides` replace some (e.g. a classroom's
    /// per-learner namespace).
    pub fn render(&self, overrides: &BTreeMap<String, Value>) -> Result<Rendered, RenderError> {
        let mut params = self.scenario.params.clone();
        params.extend(overrides.clone());
        let context = context_for(&params);
        let mut value = serde_json::to_value(&self.scenario)
            .map_err(|e| RenderError::Shape { file: self.path.clone(), message: e.to_string() })?;
        render_strings(&mut value, &context, &self.path, "")?;
        let mut scenario: Scenario = serde_json::from_value(value)
            .map_err(|e| RenderError::Shape { file: self.path.clone(), message: e.to_string() })?;
        scenario.params = params;
        Ok(Rendered { path: self.path.clone(), scenario, files: self.files.clone(), context })
    }
}

impl Rendered {
    /// A file of the scenario folder, rendered with the params.
    pub fn file(&self, name: &str) -> Result<String, RenderError> {
        let bytes = self
            .files
            .get(name)
            .ok_or_else(|| RenderError::MissingFile { file: self.path.clone(), name: name.to_string() })?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| RenderError::NotText { file: self.path.clone(), name: name.to_string() })?;
        render_one(text, &self.context).map_err(|message| RenderError::Template {
            file: self.path.clone(),
            what: name.to_string(),
            message,
        })
    }
}

pub(crate) fn context_for(params: &BTreeMap<String, Value>) -> tera::Context {
    let mut context = tera::Context::new();
    for (name, value) in params {
        context.insert(name, value);
    }
    context
}

/// Renders one template string. Plain strings are returned as they are (most are plain).
pub fn render_one(template: &str, context: &tera::Context) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") && !template.contains("{#") {
        return Ok(template.to_string());
    }
    tera::Tera::one_off(template, context, false).map_err(|err| {
        // tera nests the useful part ("Variable `x` not found") in its source chain.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(inner) = source {
            message = inner.to_string();
            source = inner.source();
        }
        message
    })
}

fn render_strings(value: &mut Value, context: &tera::Context, file: &str, at: &str) -> Result<(), RenderError> {
    match value {
        Value::String(text) => {
            *text = render_one(text, context).map_err(|message| RenderError::Template {
                file: file.to_string(),
                what: if at.is_empty() { "a string".into() } else { at.to_string() },
                message,
            })?;
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                render_strings(item, context, file, &format!("{at}[{index}]"))?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if at.is_empty() && key == "params" {
                    continue;
                }
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                render_strings(item, context, file, &path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A rendered scenario as it is kept on disk while it is the lab's active one: what was
/// started is what gets undone, even if the catalog changed since.
#[derive(serde::Serialize, serde::Deserialize)]
struct RenderedRecord {
    path: String,
    scenario: Scenario,
    /// The scenario folder's files, base64.
    files: BTreeMap<String, String>,
}

impl Rendered {
    pub fn to_json(&self) -> String {
        use base64::Engine;
        let files =
            self.files.iter().map(|(k, v)| (k.clone(), base64::engine::general_purpose::STANDARD.encode(v))).collect();
        let record = RenderedRecord { path: self.path.clone(), scenario: self.scenario.clone(), files };
        serde_json::to_string(&record).expect("a rendered scenario serializes")
    }

    pub fn from_json(text: &str) -> Result<Rendered, String> {
        use base64::Engine;
        let record: RenderedRecord = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut files = BTreeMap::new();
        for (name, data) in record.files {
            files.insert(name, base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| e.to_string())?);
        }
        let context = context_for(&record.scenario.params);
        Ok(Rendered { path: record.path, scenario: record.scenario, files, context })
    }
}
