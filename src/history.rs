//! Learner history in SQLite (attempts, grades, hints revealed), in the data dir. Survives
//! restarts; schema changes are numbered migrations run at open.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::grade::Report;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("history database: {0}")]
    Io(#[from] std::io::Error),
    #[error("history database: {0}")]
    Json(String),
}

pub type Result<T> = std::result::Result<T, HistoryError>;

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        scenario TEXT NOT NULL,
        backend TEXT NOT NULL,
        graded_at TEXT NOT NULL,
        score INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        hints_used INTEGER NOT NULL,
        report TEXT NOT NULL
    );
    CREATE INDEX attempts_scenario ON attempts(scenario);
    CREATE TABLE hints (scenario TEXT PRIMARY KEY, revealed INTEGER NOT NULL);",
    "CREATE TABLE starts (id INTEGER PRIMARY KEY, scenario TEXT NOT NULL, started_at TEXT NOT NULL);",
    // An exam as JSON: its tasks, flags, grades and clock, so it goes on after a restart.
    "CREATE TABLE exams (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, body TEXT NOT NULL);",
];

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub id: i64,
    pub scenario: String,
    pub backend: String,
    pub graded_at: String,
    pub score: u32,
    pub passed: bool,
    pub hints_used: u32,
}

pub struct History {
    connection: Connection,
}

impl History {
    pub fn open(data_dir: &Path) -> Result<History> {
        std::fs::create_dir_all(data_dir)?;
        Self::from_connection(Connection::open(data_dir.join("history.sqlite3"))?)
    }

    pub fn in_memory() -> Result<History> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut connection: Connection) -> Result<History> {
        crate::store::migrate(&mut connection, MIGRATIONS)?;
        Ok(History { connection })
    }

    pub fn schema_version(&self) -> Result<usize> {
        Ok(self.connection.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn hints_revealed(&self, scenario: &str) -> Result<u32> {
        Ok(self
            .connection
            .query_row("SELECT revealed FROM hints WHERE scenario = ?1", [scenario], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Reveals one more hint (up to `available`) and returns how many are now revealed.
    pub fn reveal_hint(&self, scenario: &str, available: usize) -> Result<usize> {
        let next = (self.hints_revealed(scenario)? as usize + 1).min(available);
        self.connection.execute(
            "INSERT INTO hints (scenario, revealed) VALUES (?1, ?2)
             ON CONFLICT(scenario) DO UPDATE SET revealed = excluded.revealed",
            params![scenario, next as u32],
        )?;
        Ok(next)
    }

    /// A new start: the hint ladder starts again.
    pub fn record_start(&self, scenario: &str) -> Result<()> {
        self.connection
            .execute("INSERT INTO starts (scenario, started_at) VALUES (?1, ?2)", params![scenario, now()])?;
        self.connection.execute("DELETE FROM hints WHERE scenario = ?1", [scenario])?;
        Ok(())
    }

    /// Records a graded attempt (on the backend the report names).
    pub fn record_grade(&self, report: &Report) -> Result<i64> {
        let hints = self.hints_revealed(&report.scenario)?;
        self.connection.execute(
            "INSERT INTO attempts (scenario, backend, graded_at, score, passed, hints_used, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                report.scenario,
                report.backend,
                now(),
                report.score,
                report.passed,
                hints,
                serde_json::to_string(report).unwrap_or_default()
            ],
        )?;
        Ok(self.connection.last_insert_rowid())
    }

    pub fn best_score(&self, scenario: &str) -> Result<Option<u32>> {
        Ok(self
            .connection
            .query_row("SELECT MAX(score) FROM attempts WHERE scenario = ?1", [scenario], |r| r.get(0))?)
    }

    /// Newest first.
    pub fn attempts(&self, scenario: Option<&str>, limit: usize) -> Result<Vec<Attempt>> {
        let mut statement = self.connection.prepare(
            "SELECT id, scenario, backend, graded_at, score, passed, hints_used FROM attempts
             WHERE (?1 IS NULL OR scenario = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![scenario, limit as i64], |r| {
            Ok(Attempt {
                id: r.get(0)?,
                scenario: r.get(1)?,
                backend: r.get(2)?,
                graded_at: r.get(3)?,
                score: r.get(4)?,
                passed: r.get(5)?,
                hints_used: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Stores an exam (any serializable shape; the web UI owns it) under its id.
    pub fn save_exam<T: Serialize>(&self, id: &str, created_ms: i64, exam: &T) -> Result<()> {
        let body = serde_json::to_string(exam).map_err(|e| HistoryError::Json(e.to_string()))?;
        self.connection.execute(
            "INSERT INTO exams (id, created_ms, body) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            params![id, created_ms, body],
        )?;
        Ok(())
    }

    /// Every stored exam, newest first; one that no longer parses is left out (and logged).
    pub fn exams<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>> {
        let mut statement = self.connection.prepare("SELECT id, body FROM exams ORDER BY created_ms DESC")?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut exams = Vec::new();
        for row in rows {
            let (id, body) = row?;
            match serde_json::from_str(&body) {
                Ok(exam) => exams.push(exam),
                Err(e) => tracing::warn!(exam = %id, "a stored exam does not parse, left out: {e}"),
            }
        }
        Ok(exams)
    }

    pub fn has_attempt(&self, scenario: &str) -> Result<bool> {
        Ok(self
            .connection
            .query_row("SELECT COUNT(*) FROM attempts WHERE scenario = ?1", [scenario], |r| r.get::<_, i64>(0))?
            > 0)
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(score: u32) -> Report {
        Report {
            scenario: "s".into(),
            title: "S".into(),
            backend: "local".into(),
            verdicts: vec![],
            score,
            passed: score == 100,
            millis: 1,
        }
    }

    #[test]
    fn history_survives_reopening_and_counts_hints() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = History::open(dir.path()).unwrap();
            assert_eq!(h.schema_version().unwrap(), MIGRATIONS.len());
            assert_eq!(h.reveal_hint("s", 2).unwrap(), 1);
            assert_eq!(h.reveal_hint("s", 2).unwrap(), 2);
            assert_eq!(h.reveal_hint("s", 2).unwrap(), 2, "never past the last hint");
            h.record_grade(&report(40)).unwrap();
            h.record_grade(&report(100)).unwrap();
        }
        let h = History::open(dir.path()).unwrap();
        assert_eq!(h.best_score("s").unwrap(), Some(100));
        let attempts = h.attempts(Some("s"), 10).unwrap();
        assert_eq!(attempts.len(), 2);
        assert!(attempts[0].passed && attempts[0].hints_used == 2);
        assert_eq!(attempts[0].backend, "local", "the backend the report names");
        h.record_start("s").unwrap();
        assert_eq!(h.hints_revealed("s").unwrap(), 0);
        assert_eq!(h.best_score("other").unwrap(), None);
    }
}
