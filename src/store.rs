//! Small pieces of local persistence shared by the history, the classroom roster and saved
//! secrets: SQLite schemas that move forward by numbered migrations, and files only their owner
//! may read.

use std::path::Path;

use rusqlite::Connection;

/// Brings `connection` to the newest schema: each migration runs once, in order, in its own
/// transaction, and `PRAGMA user_version` records how far it got.
pub fn migrate(connection: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: usize = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, migration) in migrations.iter().enumerate().skip(version) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Writes `contents` to `path` (creating its folder) readable and writable by the owner only,
/// from the moment the file exists: it holds a token or a key.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_each_and_in_order() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection, &["CREATE TABLE a (x INTEGER);"]).unwrap();
        connection.execute("INSERT INTO a VALUES (1)", []).unwrap();
        // Reopening with one more migration runs only the new one; the data stays.
        migrate(&mut connection, &["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;"]).unwrap();
        let version: usize = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let rows: i64 = connection.query_row("SELECT count(*) FROM a WHERE y IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!((version, rows), (2, 1));
    }

    #[test]
    fn private_files_are_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.json");
        write_private(&path, b"{}").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
