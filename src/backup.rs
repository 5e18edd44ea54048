//! Backups of node files before ckslab changes them, so nothing a learner wrote is lost.

use std::path::{Path, PathBuf};

use crate::backend::{BackendError, Result};

/// Saves `contents` as `<backups>/<node>/<path>.<unix-millis>` and returns where.
pub fn save(backups: &Path, node: &str, path: &Path, contents: &[u8]) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let relative = path.strip_prefix("/").unwrap_or(path);
    let mut target = backups.join(node).join(relative);
    let name = format!("{}.{stamp}", target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    target.set_file_name(name);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BackendError::io(format!("creating {}", parent.display()), e))?;
    }
    std::fs::write(&target, contents)
        .map_err(|e| BackendError::io(format!("writing backup {}", target.display()), e))?;
    tracing::debug!(backup = %target.display(), "backed up {}:{}", node, path.display());
    Ok(target)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backups_keep_the_node_path() {
        let dir = tempfile::tempdir().unwrap();
        let saved = super::save(
            dir.path(),
            "cp",
            std::path::Path::new("/etc/kubernetes/manifests/kube-apiserver.yaml"),
            b"old",
        )
        .unwrap();
        assert!(saved.starts_with(dir.path().join("cp/etc/kubernetes/manifests")));
        assert!(saved.file_name().unwrap().to_string_lossy().starts_with("kube-apiserver.yaml."));
        assert_eq!(std::fs::read(saved).unwrap(), b"old");
    }
}
