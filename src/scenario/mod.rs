//! Scenarios: the format ([`model`]), the catalog loader ([`load`]), param rendering
//! ([`render`]) and lint ([`lint`]).

pub mod lint;
pub mod load;
pub mod model;
pub mod render;
pub mod tree;

use std::fmt;

pub use load::{Catalog, SourceScenario};
pub use model::*;
pub use render::Rendered;

/// A problem at a place in a scenario file. Displayed as `file:line:column: message`, the form
/// editors and CI annotations understand.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for Located {}

/// 1-based line and column of the first occurrence of `needle` in `text` at or after line
/// `from_line`, or (1, 1) when it is not there. Used to place errors found after parsing.
pub fn locate(text: &str, needle: &str, from_line: u64) -> (u64, u64) {
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if number < from_line {
            continue;
        }
        if let Some(col) = line.find(needle) {
            return (number, line[..col].chars().count() as u64 + 1);
        }
    }
    (from_line.max(1), 1)
}
