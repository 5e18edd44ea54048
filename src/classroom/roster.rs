//! The instructor's record of every report, in SQLite in the instructor's data dir (so the board
//! survives a restart of `ckslab classroom serve`), and the board computed from it.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::ProgressReport;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("classroom database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("classroom database: {0}")]
    Io(#[from] std::io::Error),
}

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &["CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        received_at TEXT NOT NULL,
        learner TEXT NOT NULL,
        scenario TEXT NOT NULL,
        score INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        hints_used INTEGER NOT NULL,
        checks_passed INTEGER NOT NULL,
        checks_total INTEGER NOT NULL
    );
    CREATE INDEX reports_learner ON reports(learner);"];

/// The database file in the instructor's classroom folder.
pub const FILE: &str = "classroom.sqlite3";

pub struct Roster {
    connection: Connection,
}

/// A learner's standing on one scenario.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub best: u32,
    pub passed: bool,
    pub attempts: u32,
    /// Hints revealed at the latest attempt.
    pub hints_used: u32,
    pub last_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LearnerRow {
    pub learner: String,
    /// By scenario id.
    pub cells: BTreeMap<String, Cell>,
    pub passed: u32,
    pub attempts: u32,
    pub last_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// Scenario ids that have at least one report, in the order given to [`Roster::board`].
    pub scenarios: Vec<String>,
    /// Most recently active first.
    pub learners: Vec<LearnerRow>,
}

impl Roster {
    pub fn open(data_dir: &Path) -> Result<Roster, RosterError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(FILE);
        // Learners' names and scores: the instructor's only, like the secrets file, from the
        // moment it exists (SQLite gives its journal the database file's mode).
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Self::from_connection(Connection::open(&path)?)
    }

    pub fn in_memory() -> Result<Roster, RosterError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut connection: Connection) -> Result<Roster, RosterError> {
        crate::store::migrate(&mut connection, MIGRATIONS)?;
        Ok(Roster { connection })
    }

    pub fn record(&self, report: &ProgressReport, received_at: &str) -> Result<(), RosterError> {
        self.connection.execute(
            "INSERT INTO reports (received_at, learner, scenario, score, passed, hints_used, checks_passed, checks_total)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                received_at,
                report.learner,
                report.scenario,
                report.score,
                report.passed,
                report.hints_used,
                report.checks_passed,
                report.checks_total
            ],
        )?;
        Ok(())
    }

    /// The board: one row per learner, one cell per scenario they were graded on. `order` lists
    /// scenario ids in catalog order; ids not in it come after, alphabetically.
    pub fn board(&self, order: &[String]) -> Result<Board, RosterError> {
        let mut statement = self
            .connection
            .prepare("SELECT learner, scenario, score, passed, hints_used, received_at FROM reports ORDER BY id")?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut learners: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
        for row in rows {
            let (learner, scenario, score, passed, hints_used, at) = row?;
            let cells = learners.entry(learner).or_default();
            let cell = cells.entry(scenario).or_insert(Cell {
                best: 0,
                passed: false,
                attempts: 0,
                hints_used: 0,
                last_at: String::new(),
            });
            cell.best = cell.best.max(score);
            cell.passed |= passed;
            cell.attempts += 1;
            cell.hints_used = hints_used;
            cell.last_at = at;
        }
        let mut seen: Vec<String> = learners.values().flat_map(|cells| cells.keys().cloned()).collect();
        seen.sort();
        seen.dedup();
        let mut scenarios: Vec<String> = order.iter().filter(|id| seen.contains(id)).cloned().collect();
        scenarios.extend(seen.into_iter().filter(|id| !order.contains(id)));
        let mut rows: Vec<LearnerRow> = learners
            .into_iter()
            .map(|(learner, cells)| LearnerRow {
                passed: cells.values().filter(|c| c.passed).count() as u32,
                attempts: cells.values().map(|c| c.attempts).sum(),
                last_at: cells.values().map(|c| c.last_at.clone()).max().unwrap_or_default(),
                learner,
                cells,
            })
            .collect();
        rows.sort_by(|a, b| b.last_at.cmp(&a.last_at).then_with(|| a.learner.cmp(&b.learner)));
        Ok(Board { scenarios, learners: rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(learner: &str, scenario: &str, score: u32) -> ProgressReport {
        ProgressReport {
            learner: learner.into(),
            scenario: scenario.into(),
            score,
            passed: score == 100,
            hints_used: 1,
            checks_passed: score / 20,
            checks_total: 5,
        }
    }

    #[test]
    fn the_board_keeps_the_best_score_counts_attempts_and_orders_by_catalog_and_activity() {
        let roster = Roster::in_memory().unwrap();
        roster.record(&report("ana", "etcd-encryption", 100), "2026-11-25T10:00:00Z").unwrap();
        roster.record(&report("ana", "etcd-encryption", 40), "2026-11-25T10:05:00Z").unwrap();
        roster.record(&report("bo", "audit-policy", 60), "2026-11-25T10:10:00Z").unwrap();
        roster.record(&report("bo", "custom-one", 20), "2026-11-25T10:11:00Z").unwrap();
        let order = vec!["audit-policy".to_string(), "etcd-encryption".to_string()];
        let board = roster.board(&order).unwrap();
        assert_eq!(board.scenarios, ["audit-policy", "etcd-encryption", "custom-one"]);
        let names: Vec<_> = board.learners.iter().map(|l| l.learner.as_str()).collect();
        assert_eq!(names, ["bo", "ana"], "most recently active first");
        let ana = &board.learners[1].cells["etcd-encryption"];
        assert_eq!((ana.best, ana.passed, ana.attempts), (100, true, 2));
        assert_eq!(ana.last_at, "2026-11-25T10:05:00Z");
        assert_eq!((board.learners[0].passed, board.learners[0].attempts), (0, 2));
    }

    #[test]
    fn the_database_is_the_instructors_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Roster::open(dir.path()).unwrap().record(&report("ana", "audit-policy", 100), "t1").unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // One made before by an older ckslab, readable by all, is tightened.
        std::fs::set_permissions(dir.path().join(FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        Roster::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_record_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        Roster::open(dir.path()).unwrap().record(&report("ana", "audit-policy", 100), "t1").unwrap();
        let board = Roster::open(dir.path()).unwrap().board(&[]).unwrap();
        assert_eq!(board.learners[0].cells["audit-policy"].best, 100);
    }
}
