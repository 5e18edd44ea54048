//! Classroom bundles: one file an instructor makes once (`ckslab bundle create`) and hands out,
//! and that installs on a machine with no network (`ckslab bundle install`).
//!
//! A bundle is a gzip-compressed tar. Its first entry is `ckslab-bundle.json`, the manifest:
//! every other entry's path, size and SHA-256. The paths mirror the cache (`ckslab` at the top,
//! so `tar xzf bundle.tar.gz ckslab` gives a learner the program that installs the rest):
//!
//! | entry                   | installed to                                     |
//! |-------------------------|--------------------------------------------------|
//! | `ckslab`                | `<cache>/bin/ckslab`                             |
//! | `bin/v1.34.4/<name>`    | the local backend's bin dir ([`tools::bin_dir`]) |
//! | `kind/<path>`           | `<cache>/kind/<path>` (node image, kube-router, stand-ins) |
//! | `node-tools/<tool>-<version>/<tool>` | the node tools' dir ([`tools::node_tools_dir`]) |
//!
//! Install reads the whole bundle once and checks every digest before it writes anything, then
//! reads it again into hidden files beside their destinations (checking again), and only then
//! renames them into place; a failure at any point removes what it staged and puts back what
//! it replaced.

mod install;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::kind::offline::{NETPOL_ARCHIVE, NODE_ARCHIVE, UPGRADE_ARCHIVE};
use crate::tools::{self, KUBERNETES_VERSION, LOCAL_BINARIES, NODE_TOOLS};

pub use install::{InstallOptions, InstallReport, install, verify};

pub const MANIFEST: &str = "ckslab-bundle.json";
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: the bundle is cut short ({detail}); copy it again, nothing was installed", path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error("{}: not a readable ckslab bundle ({detail}); nothing was installed", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{}: the bundle's manifest is not valid: {detail}; nothing was installed", path.display())]
    BadManifest { path: PathBuf, detail: String },
    #[error(
        "{entry}: its content does not match the manifest:\n  expected sha256 {expected} ({expected_size} bytes)\n  got      sha256 {actual} ({actual_size} bytes)\nthe bundle was changed or damaged; nothing was installed"
    )]
    Tampered { entry: String, expected: String, actual: String, expected_size: u64, actual_size: u64 },
    #[error("{entry}: in the bundle but not in its manifest; nothing was installed")]
    Unlisted { entry: String },
    #[error("{entry}: listed in the manifest but missing from the bundle; nothing was installed")]
    Missing { entry: String },
    #[error(
        "the bundle's sha256 is {actual}, not the {expected} you were given: it is not the instructor's file; nothing was installed"
    )]
    NotTheExpectedBundle { expected: String, actual: String },
    #[error("{what} is missing ({}): {hint}", path.display())]
    MissingSource { what: String, path: PathBuf, hint: String },
    #[error("{} is already there; nothing was written\n  fix: choose another --out, or pass --force to replace it", path.display())]
    OutExists { path: PathBuf },
    #[error("{} is not a regular file (a device, folder or link); nothing was written\n  fix: give --out a file path", path.display())]
    OutNotAFile { path: PathBuf },
    #[error("{} changed while the bundle was being written; run `ckslab bundle create` again", path.display())]
    SourceChanged { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BundleError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
        move |source| BundleError::Io { path: path.to_path_buf(), source }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub ckslab_version: String,
    pub kubernetes_version: String,
    pub created: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub executable: bool,
}

/// Where a bundle's entries come from and go to.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The cache ([`tools::cache_dir`]): `bin/ckslab` and `kind/` live here.
    pub cache: PathBuf,
    /// The local backend's bin dir ([`tools::bin_dir`]).
    pub bin_dir: PathBuf,
    /// The tools scenarios put on a node ([`tools::node_tools_dir`]).
    pub node_tools: PathBuf,
}

impl Roots {
    pub fn from_env() -> Self {
        Roots { cache: tools::cache_dir(), bin_dir: tools::bin_dir(), node_tools: tools::node_tools_dir() }
    }

    /// The file an entry path stands for, or `None` for a path a bundle may not hold.
    pub fn resolve(&self, entry: &str) -> Option<PathBuf> {
        let parts: Vec<&str> = entry.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.starts_with(".ckslab")) {
            return None;
        }
        match parts.as_slice() {
            ["ckslab"] => Some(self.cache.join("bin/ckslab")),
            ["bin", version, name] if *version == KUBERNETES_VERSION => Some(self.bin_dir.join(name)),
            ["kind", rest @ ..] if !rest.is_empty() => Some(self.cache.join("kind").join(rest.join("/"))),
            ["node-tools", dir, name] if NODE_TOOLS.iter().any(|(n, v)| *dir == format!("{n}-{v}") && name == n) => {
                Some(self.node_tools.join(dir).join(name))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub roots: Roots,
    /// The ckslab program to put in the bundle (normally the running one).
    pub ckslab: PathBuf,
    pub out: PathBuf,
    /// Replace `out` when it is a regular file already there (`--force`).
    pub replace: bool,
}

#[derive(Debug)]
pub struct CreateReport {
    pub manifest: Manifest,
    pub out: PathBuf,
    /// The bundle file's SHA-256, for learners to compare (`--sha256`).
    pub sha256: String,
    pub bytes: u64,
    /// What was looked for and not found (optional parts, such as kind images).
    pub absent: Vec<String>,
}

/// (entry path, source file) of each file a bundle holds.
pub type Contents = Vec<(String, PathBuf)>;

/// The files a bundle made now would hold: (entry path, source file), and the optional parts
/// that are absent.
pub fn contents(options: &CreateOptions) -> Result<(Contents, Vec<String>), BundleError> {
    let roots = &options.roots;
    let mut files = vec![("ckslab".to_string(), options.ckslab.clone())];
    let mut absent = Vec::new();
    if !options.ckslab.is_file() {
        return Err(BundleError::MissingSource {
            what: "the ckslab program".into(),
            path: options.ckslab.clone(),
            hint: "build it with `cargo build --release`".into(),
        });
    }
    for name in LOCAL_BINARIES {
        let path = roots.bin_dir.join(name);
        if !path.is_file() {
            return Err(BundleError::MissingSource {
                what: format!("the local backend's {name}"),
                path,
                hint: "run `ckslab fetch-binaries` (or scripts/build-k8s.sh) first".into(),
            });
        }
        files.push((format!("bin/{KUBERNETES_VERSION}/{name}"), path));
    }
    let kind_cli = roots.bin_dir.join("kind");
    if kind_cli.is_file() {
        files.push((format!("bin/{KUBERNETES_VERSION}/kind"), kind_cli));
    } else {
        absent.push(format!("the kind CLI ({})", kind_cli.display()));
    }
    for (name, version) in NODE_TOOLS {
        match tools::node_tool_path(&roots.node_tools, name) {
            Ok(path) => files.push((format!("node-tools/{name}-{version}/{name}"), path)),
            Err(err) => absent.push(format!("the node tool {name} ({err})")),
        }
    }
    let kind = roots.cache.join("kind");
    for (archive, what, script) in [
        (NODE_ARCHIVE, "the kind node image", "build-kind-node.sh"),
        (UPGRADE_ARCHIVE, "the upgrade lab's node image", "build-kind-node.sh --upgrade-from"),
        (NETPOL_ARCHIVE, "kube-router's image", "kind-netpol.sh"),
    ] {
        let path = kind.join(archive);
        if path.is_file() {
            files.push((format!("kind/{archive}"), path));
            let inputs = kind.join(format!("{archive}.inputs"));
            if inputs.is_file() {
                files.push((format!("kind/{archive}.inputs"), inputs));
            }
        } else {
            absent.push(format!("{what} ({}; scripts/{script} makes it)", path.display()));
        }
    }
    let stand_ins = kind.join("stand-ins");
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&stand_ins) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if (name.ends_with(".tar") || name.ends_with(".tar.inputs")) && entry.path().is_file() {
                found.push((format!("kind/stand-ins/{name}"), entry.path()));
            }
        }
    }
    if found.is_empty() {
        absent.push(format!(
            "the scenario stand-in images ({}; scripts/build-stand-in-images.sh makes them)",
            stand_ins.display()
        ));
    }
    found.sort();
    files.extend(found);
    Ok((files, absent))
}

/// Writes a bundle of what [`contents`] finds to `options.out` (through a hidden file renamed
/// at the end, so a stopped run leaves no half bundle under that name).
pub fn create(options: &CreateOptions, bar: &ProgressBar) -> Result<CreateReport, BundleError> {
    // The finished bundle is renamed over `out`: only ever over a regular file, and only when
    // asked (a rename over /dev/null would replace the device).
    if let Ok(meta) = std::fs::symlink_metadata(&options.out) {
        if !meta.file_type().is_file() {
            return Err(BundleError::OutNotAFile { path: options.out.clone() });
        }
        if !options.replace {
            return Err(BundleError::OutExists { path: options.out.clone() });
        }
    }
    let (files, absent) = contents(options)?;
    let mut entries = Vec::new();
    let total: u64 = files.iter().map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    bar.set_length(total * 2);
    bar.set_message("hashing");
    for (entry, path) in &files {
        let (sha256, size) = hash_file(path, bar)?;
        let executable = is_executable(path);
        entries.push(FileEntry { path: entry.clone(), size, sha256, executable });
    }
    let manifest = Manifest {
        format: FORMAT,
        ckslab_version: env!("CARGO_PKG_VERSION").to_string(),
        kubernetes_version: KUBERNETES_VERSION.to_string(),
        created: chrono::Utc::now().to_rfc3339(),
        files: entries,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");

    let out = &options.out;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(BundleError::io(dir))?;
    let file_name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "bundle".into());
    let partial = dir.join(format!(".{file_name}.partial-{}", std::process::id()));
    let result = write_archive(&partial, &json, &files, &manifest, bar);
    let (sha256, bytes) = match result {
        Ok(done) => done,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, out).map_err(BundleError::io(out))?;
    Ok(CreateReport { manifest, out: out.clone(), sha256, bytes, absent })
}

fn write_archive(
    partial: &Path,
    json: &[u8],
    files: &[(String, PathBuf)],
    manifest: &Manifest,
    bar: &ProgressBar,
) -> Result<(String, u64), BundleError> {
    bar.set_message("compressing");
    let file = std::fs::File::create(partial).map_err(BundleError::io(partial))?;
    let hashing =
        HashWrite { inner: std::io::BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new(), count: 0 };
    let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let header = |size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    let io = BundleError::io(partial);
    tar.append_data(&mut header(json.len() as u64, 0o644), MANIFEST, json).map_err(io)?;
    for ((entry, path), listed) in files.iter().zip(&manifest.files) {
        let source = std::fs::File::open(path).map_err(BundleError::io(path))?;
        let mut reader =
            HashRead { inner: source.take(listed.size), hasher: Sha256::new(), count: 0, bar: Some(bar.clone()) };
        let mode = if listed.executable { 0o755 } else { 0o644 };
        tar.append_data(&mut header(listed.size, mode), entry, &mut reader).map_err(BundleError::io(partial))?;
        if reader.count != listed.size || hex::encode(reader.hasher.finalize()) != listed.sha256 {
            return Err(BundleError::SourceChanged { path: path.clone() });
        }
    }
    let gz = tar.into_inner().map_err(BundleError::io(partial))?;
    let mut hashing = gz.finish().map_err(BundleError::io(partial))?;
    hashing.flush().map_err(BundleError::io(partial))?;
    let file =
        hashing.inner.into_inner().map_err(|e| BundleError::Io { path: partial.into(), source: e.into_error() })?;
    file.sync_all().map_err(BundleError::io(partial))?;
    Ok((hex::encode(hashing.hasher.finalize()), hashing.count))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn hash_file(path: &Path, bar: &ProgressBar) -> Result<(String, u64), BundleError> {
    let file = std::fs::File::open(path).map_err(BundleError::io(path))?;
    let mut reader = HashRead { inner: file, hasher: Sha256::new(), count: 0, bar: Some(bar.clone()) };
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(BundleError::io(path))?;
    Ok((hex::encode(reader.hasher.finalize()), reader.count))
}

/// A reader that hashes (and counts, and reports on a bar) what passes through it.
struct HashRead<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    bar: Option<ProgressBar>,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
        Ok(n)
    }
}

struct HashWrite<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_paths_resolve_and_never_outside_the_cache() {
        let roots = Roots { cache: "/c".into(), bin_dir: "/b".into(), node_tools: "/n".into() };
        assert_eq!(roots.resolve("ckslab"), Some("/c/bin/ckslab".into()));
        assert_eq!(roots.resolve("bin/v1.34.4/etcd"), Some("/b/etcd".into()));
        assert_eq!(roots.resolve("kind/stand-ins/busybox.tar"), Some("/c/kind/stand-ins/busybox.tar".into()));
        assert_eq!(roots.resolve("node-tools/syft-v1.57.1/syft"), Some("/n/syft-v1.57.1/syft".into()));
        for bad in [
            "node-tools/syft-v1.0.0/syft",
            "node-tools/syft-v1.57.1/kubesec",
            "node-tools/evil-v1/evil",
            "node-tools/syft-v1.57.1",
            "../x",
            "kind/../../etc/passwd",
            "bin/v1.33.0/etcd",
            "bin/v1.34.4/a/b",
            "/etc/passwd",
            "kind",
            "other",
            "kind//x",
            "bin/v1.34.4/.ckslab-new",
        ] {
            assert_eq!(roots.resolve(bad), None, "{bad}");
        }
    }
}
