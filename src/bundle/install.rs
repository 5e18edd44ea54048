//! `ckslab bundle install`: check a whole bundle, then install it so that either every file is
//! in place or the caches are as they were.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::{BundleError, FileEntry, HashRead, MANIFEST, Manifest, Roots};

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub roots: Roots,
    /// The bundle file's SHA-256 as the instructor gave it; install refuses any other file.
    pub expect_sha256: Option<String>,
}

#[derive(Debug)]
pub struct InstallReport {
    pub manifest: Manifest,
    pub sha256: String,
    /// (entry, where it was installed)
    pub installed: Vec<(String, PathBuf)>,
}

fn classify(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |err| match err.kind() {
        std::io::ErrorKind::UnexpectedEof => BundleError::Truncated { path: path.into(), detail: err.to_string() },
        _ => BundleError::Corrupt { path: path.into(), detail: err.to_string() },
    }
}

type Archive = tar::Archive<flate2::read::GzDecoder<HashRead<std::io::BufReader<std::fs::File>>>>;

fn open(path: &Path, bar: &ProgressBar) -> Result<Archive, BundleError> {
    let file = std::fs::File::open(path).map_err(BundleError::io(path))?;
    bar.set_length(file.metadata().map(|m| m.len()).unwrap_or(0));
    bar.set_position(0);
    let reader = HashRead {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        count: 0,
        bar: Some(bar.clone()),
    };
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(reader)))
}

/// Reads what is left after the tar's end (so gzip's own length and CRC are checked too) and
/// returns the file's SHA-256.
fn finish(archive: Archive, path: &Path) -> Result<String, BundleError> {
    let mut gz = archive.into_inner();
    std::io::copy(&mut gz, &mut std::io::sink()).map_err(classify(path))?;
    let mut rest = gz.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(BundleError::io(path))?;
    Ok(hex::encode(rest.hasher.finalize()))
}

fn read_manifest(entry: &mut impl Read, path: &Path, roots: &Roots) -> Result<Manifest, BundleError> {
    let bad = |detail: String| BundleError::BadManifest { path: path.into(), detail };
    let mut json = Vec::new();
    entry.take(16 << 20).read_to_end(&mut json).map_err(classify(path))?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    if manifest.format != super::FORMAT {
        return Err(bad(format!("format {} (this ckslab reads format {})", manifest.format, super::FORMAT)));
    }
    if manifest.kubernetes_version != crate::tools::KUBERNETES_VERSION {
        return Err(bad(format!(
            "made for Kubernetes {}, this ckslab runs {}",
            manifest.kubernetes_version,
            crate::tools::KUBERNETES_VERSION
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for file in &manifest.files {
        if roots.resolve(&file.path).is_none() {
            return Err(bad(format!("{:?} is not a path a bundle may install", file.path)));
        }
        if !seen.insert(&file.path) {
            return Err(bad(format!("{:?} is listed twice", file.path)));
        }
        if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("{:?} has no SHA-256", file.path)));
        }
    }
    Ok(manifest)
}

/// Walks the bundle: the manifest first, then every entry, each handed to `each` (with its
/// manifest line) to read. Checks that every entry is listed, and every listed file is there
/// with its size and SHA-256. Returns the manifest and the bundle file's SHA-256.
fn walk(
    path: &Path,
    roots: &Roots,
    bar: &ProgressBar,
    mut each: impl FnMut(&FileEntry, &mut dyn Read) -> Result<(), BundleError>,
) -> Result<(Manifest, String), BundleError> {
    let mut archive = open(path, bar)?;
    let manifest;
    {
        let mut entries = archive.entries().map_err(classify(path))?;
        let first = entries
            .next()
            .ok_or_else(|| BundleError::Truncated { path: path.into(), detail: "no entries at all".into() })?;
        let mut first = first.map_err(classify(path))?;
        let name = first.path().map_err(classify(path))?.to_string_lossy().to_string();
        if name != MANIFEST {
            return Err(BundleError::BadManifest {
                path: path.into(),
                detail: format!("the first entry is {name:?}, not {MANIFEST}"),
            });
        }
        manifest = read_manifest(&mut first, path, roots)?;
        let listed: BTreeMap<&str, &FileEntry> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let mut seen = std::collections::BTreeSet::new();
        for entry in entries {
            let mut entry = entry.map_err(classify(path))?;
            let name = entry.path().map_err(classify(path))?.to_string_lossy().to_string();
            let Some(file) = listed.get(name.as_str()) else {
                return Err(BundleError::Unlisted { entry: name });
            };
            if !entry.header().entry_type().is_file() || !seen.insert(name.clone()) {
                return Err(BundleError::Corrupt {
                    path: path.into(),
                    detail: format!("{name}: not one regular file"),
                });
            }
            let mut reader = HashRead { inner: &mut entry, hasher: Sha256::new(), count: 0, bar: None };
            each(file, &mut reader)?;
            // What `each` did not read counts too.
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(classify(path))?;
            let actual = hex::encode(reader.hasher.finalize());
            if actual != file.sha256 || reader.count != file.size {
                return Err(BundleError::Tampered {
                    entry: name,
                    expected: file.sha256.clone(),
                    actual,
                    expected_size: file.size,
                    actual_size: reader.count,
                });
            }
        }
        if let Some(missing) = manifest.files.iter().find(|f| !seen.contains(&f.path)) {
            return Err(BundleError::Missing { entry: missing.path.clone() });
        }
    }
    let sha256 = finish(archive, path)?;
    Ok((manifest, sha256))
}

/// Checks a bundle without writing anything: every entry against the manifest, and the file
/// as a whole (gzip's CRC and length). Returns the manifest and the file's SHA-256.
pub fn verify(path: &Path, roots: &Roots, bar: &ProgressBar) -> Result<(Manifest, String), BundleError> {
    walk(path, roots, bar, |_, _| Ok(()))
}

/// Undo log of an install: what was staged, replaced and created, so a failure puts back the
/// caches as they were.
#[derive(Default)]
struct Transaction {
    /// (hidden staged file, destination)
    staged: Vec<(PathBuf, PathBuf)>,
    /// (destination, the hidden copy of what was there before) of files already put in place
    committed: Vec<(PathBuf, Option<PathBuf>)>,
    created_dirs: Vec<PathBuf>,
    done: bool,
}

impl Transaction {
    fn mkdirs(&mut self, dir: &Path) -> Result<(), BundleError> {
        let mut missing = Vec::new();
        let mut at = dir;
        while !at.exists() {
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            std::fs::create_dir(&dir).map_err(BundleError::io(&dir))?;
            self.created_dirs.push(dir);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), BundleError> {
        let pid = std::process::id();
        for (staged, dest) in std::mem::take(&mut self.staged) {
            let backup = if dest.exists() {
                let backup = sibling(&dest, &format!("ckslab-old-{pid}"));
                std::fs::rename(&dest, &backup).map_err(BundleError::io(&dest))?;
                Some(backup)
            } else {
                None
            };
            // Recorded before the rename, so a failed rename still restores the backup.
            self.committed.push((dest.clone(), backup));
            if let Err(err) = std::fs::rename(&staged, &dest) {
                let _ = std::fs::remove_file(&staged);
                return Err(BundleError::Io { path: dest, source: err });
            }
        }
        for (_, backup) in &self.committed {
            if let Some(backup) = backup {
                let _ = std::fs::remove_file(backup);
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for (staged, _) in &self.staged {
            let _ = std::fs::remove_file(staged);
        }
        for (dest, backup) in self.committed.iter().rev() {
            match backup {
                Some(backup) => {
                    let _ = std::fs::rename(backup, dest);
                }
                None => {
                    let _ = std::fs::remove_file(dest);
                }
            }
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{tag}"))
}

/// Verifies the bundle (nothing written), then installs every file it holds.
pub fn install(path: &Path, options: &InstallOptions, bar: &ProgressBar) -> Result<InstallReport, BundleError> {
    let roots = &options.roots;
    bar.set_message("verifying");
    let (manifest, sha256) = verify(path, roots, bar)?;
    if let Some(expected) = &options.expect_sha256
        && !expected.trim().eq_ignore_ascii_case(&sha256)
    {
        return Err(BundleError::NotTheExpectedBundle { expected: expected.trim().into(), actual: sha256 });
    }
    bar.set_message("installing");
    let mut tx = Transaction::default();
    let pid = std::process::id();
    let (again, sha_again) = walk(path, roots, bar, |file, reader| {
        let dest = roots.resolve(&file.path).expect("verified paths resolve");
        let parent = dest.parent().expect("a destination has a folder");
        tx.mkdirs(parent)?;
        let staged = sibling(&dest, &format!("ckslab-new-{pid}"));
        tx.staged.push((staged.clone(), dest));
        let mut out = std::fs::File::create(&staged).map_err(BundleError::io(&staged))?;
        std::io::copy(reader, &mut out).map_err(classify(path))?;
        out.sync_all().map_err(BundleError::io(&staged))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if file.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode)).map_err(BundleError::io(&staged))?;
        Ok(())
    })?;
    if again != manifest || sha_again != sha256 {
        return Err(BundleError::Corrupt {
            path: path.into(),
            detail: "the file changed while it was installed".into(),
        });
    }
    let installed = tx.staged.iter().map(|(_, dest)| dest.clone()).collect::<Vec<_>>();
    tx.commit()?;
    let installed = manifest.files.iter().map(|f| f.path.clone()).zip(installed).collect();
    Ok(InstallReport { manifest, sha256, installed })
}
