//! `ckslab fetch-binaries`: download the official Kubernetes, etcd and kwok binaries the local
//! backend runs, verify each against the digest its publisher put beside it, and only then move
//! it into the bin dir ([`crate::tools::bin_dir`]).
//!
//! Nothing half-written or unverified ever lands in the bin dir: every download goes to a
//! hidden file in that folder, is hashed while it streams, and is renamed into place only after
//! every download of the run was checked. A digest that does not match stops the whole run with
//! nothing installed (a mirror or proxy that changes one file may change others). A download
//! that cannot be checked (no checksum published, a server error, a stall) is reported and left
//! out; the others are installed, and `scripts/build-k8s.sh` builds only what is still missing.

pub mod sources;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256, Sha512};

pub use sources::{Algorithm, Checksum, Download, Payload};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{url}: the download does not match its published checksum ({checksum_url}):\n  expected {algorithm} {expected}\n  got      {algorithm} {actual}\nnothing was installed: the file was changed on the way (a mirror, a proxy) or corrupted"
    )]
    Tampered { url: String, checksum_url: String, algorithm: &'static str, expected: String, actual: String },
    #[error("{url}: no checksum to verify it against ({reason}); an unverifiable binary is never installed")]
    MissingChecksum { url: String, reason: String },
    #[error("{url}: the server sent nothing for {secs}s (stalled); try again later, or use --mirror")]
    Stalled { url: String, secs: u64 },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: the archive has no {member}")]
    MissingMember { url: String, member: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
        move |source| FetchError::Io { path: path.to_path_buf(), source }
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// A server with the official layout to fetch from instead (see [`sources`]).
    pub mirror: Option<String>,
    /// Where the binaries go.
    pub bin_dir: PathBuf,
    /// Fetch binaries the bin dir already has too.
    pub force: bool,
    pub connect_timeout: Duration,
    /// How long the server may send nothing before the download counts as stalled.
    pub read_timeout: Duration,
}

impl FetchOptions {
    pub fn new(bin_dir: PathBuf, mirror: Option<String>) -> Self {
        FetchOptions {
            mirror,
            bin_dir,
            force: false,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// One binary that was checked and installed.
#[derive(Debug, Clone)]
pub struct Verified {
    pub name: String,
    pub url: String,
    pub checksum_url: String,
    pub algorithm: &'static str,
    /// The digest of the download (for an archive, of the archive), equal to the published one.
    pub digest: String,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct FetchReport {
    pub installed: Vec<Verified>,
    /// Binaries the bin dir already had (not fetched again without `force`).
    pub cached: Vec<String>,
    /// Downloads left out, with why; their binaries were not installed.
    pub failed: Vec<(Vec<String>, FetchError)>,
}

/// Removes the run's hidden files (stage) if the run ends before they are renamed.
struct Staged(Vec<PathBuf>);

impl Drop for Staged {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Fetches and verifies what the bin dir lacks (everything with `force`), reporting each step
/// on `bar`. `Err` only for a digest mismatch or a local I/O error: then nothing was installed.
pub async fn fetch(options: &FetchOptions, bar: &ProgressBar) -> Result<FetchReport, FetchError> {
    let client = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .user_agent(concat!("ckslab/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| FetchError::Http { url: String::new(), source })?;
    std::fs::create_dir_all(&options.bin_dir).map_err(FetchError::io(&options.bin_dir))?;
    let mut report = FetchReport::default();
    let mut staged = Staged(Vec::new());
    let mut ready: Vec<(PathBuf, PathBuf, Verified)> = Vec::new();
    for download in sources::downloads(options.mirror.as_deref()) {
        let names = download.payload.names();
        if !options.force && names.iter().all(|n| is_executable(&options.bin_dir.join(n))) {
            report.cached.extend(names.iter().map(|n| n.to_string()));
            continue;
        }
        match fetch_one(&client, &download, options, bar, &mut staged).await {
            Ok(outputs) => ready.extend(outputs),
            Err(err @ (FetchError::Tampered { .. } | FetchError::Io { .. })) => return Err(err),
            Err(err) => report.failed.push((names.iter().map(|n| n.to_string()).collect(), err)),
        }
    }
    for (staged_path, final_path, verified) in ready {
        std::fs::rename(&staged_path, &final_path).map_err(FetchError::io(&final_path))?;
        report.installed.push(verified);
    }
    Ok(report)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn hidden(bin_dir: &Path, name: &str) -> PathBuf {
    bin_dir.join(format!(".{name}.fetch-{}", std::process::id()))
}

/// Downloads one entry, verifies it, and stages its binaries: (staged file, final path, record).
async fn fetch_one(
    client: &reqwest::Client,
    download: &Download,
    options: &FetchOptions,
    bar: &ProgressBar,
    staged: &mut Staged,
) -> Result<Vec<(PathBuf, PathBuf, Verified)>, FetchError> {
    let expected = published_digest(client, &download.checksum, options).await?;
    let algorithm = download.checksum.algorithm();
    let file_name = download.url.rsplit('/').next().unwrap_or("download").to_string();
    let target = hidden(&options.bin_dir, &file_name);
    staged.0.push(target.clone());
    let (actual, bytes) = stream_to(client, &download.url, &target, algorithm, options, bar).await?;
    if actual != expected {
        return Err(FetchError::Tampered {
            url: download.url.clone(),
            checksum_url: download.checksum.url().to_string(),
            algorithm: algorithm.name(),
            expected,
            actual,
        });
    }
    let record = |name: &str| Verified {
        name: name.to_string(),
        url: download.url.clone(),
        checksum_url: download.checksum.url().to_string(),
        algorithm: algorithm.name(),
        digest: actual.clone(),
        bytes,
    };
    match &download.payload {
        Payload::Binary { name } => {
            set_executable(&target)?;
            Ok(vec![(target, options.bin_dir.join(name), record(name))])
        }
        Payload::TarGz { members } => {
            let mut out = Vec::new();
            for (member, name) in members {
                let path = hidden(&options.bin_dir, name);
                staged.0.push(path.clone());
                extract_member(&target, member, &path).map_err(|err| match err {
                    Some(err) => FetchError::Io { path: path.clone(), source: err },
                    None => FetchError::MissingMember { url: download.url.clone(), member: member.clone() },
                })?;
                set_executable(&path)?;
                out.push((path, options.bin_dir.join(name), record(name)));
            }
            Ok(out)
        }
    }
}

fn set_executable(path: &Path) -> Result<(), FetchError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(FetchError::io(path))
}

/// Copies `member` of the .tar.gz `archive` to `to`; `Err(None)` when the archive has no such
/// regular file.
fn extract_member(archive: &Path, member: &str, to: &Path) -> Result<(), Option<std::io::Error>> {
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
        if path == member && entry.header().entry_type().is_file() {
            let mut out = std::fs::File::create(to)?;
            std::io::copy(&mut entry, &mut out)?;
            out.sync_all()?;
            return Ok(());
        }
    }
    Err(None)
}

fn map_send_error(url: &str, err: reqwest::Error, options: &FetchOptions) -> FetchError {
    if err.is_timeout() {
        FetchError::Stalled { url: url.to_string(), secs: options.read_timeout.as_secs().max(1) }
    } else {
        FetchError::Http { url: url.to_string(), source: err }
    }
}

async fn get(client: &reqwest::Client, url: &str, options: &FetchOptions) -> Result<reqwest::Response, FetchError> {
    let response = client.get(url).send().await.map_err(|e| map_send_error(url, e, options))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status { url: url.to_string(), status: status.as_u16() });
    }
    Ok(response)
}

/// The digest the publisher gives for a download, as lowercase hex.
async fn published_digest(
    client: &reqwest::Client,
    checksum: &Checksum,
    options: &FetchOptions,
) -> Result<String, FetchError> {
    let url = checksum.url();
    let missing = |reason: String| FetchError::MissingChecksum { url: url.to_string(), reason };
    let mut response = match get(client, url, options).await {
        Err(FetchError::Status { status: 404, .. }) => return Err(missing("HTTP 404".into())),
        other => other?,
    };
    let mut text = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| map_send_error(url, e, options))? {
        text.extend_from_slice(&chunk);
        if text.len() > 1 << 20 {
            return Err(missing("the checksum file is larger than 1 MiB".into()));
        }
    }
    let text = String::from_utf8_lossy(&text);
    parse_digest(checksum, &text).ok_or_else(|| match checksum {
        Checksum::Sha512File { .. } => missing("the file holds no SHA-512 digest".into()),
        Checksum::Sha256Sums { entry, .. } => missing(format!("it lists no SHA-256 for {entry}")),
    })
}

/// The digest in a checksum file's text: the first word of a `.sha512` file, or the line naming
/// the entry in a `sha256sum` listing (`<hex>  <name>` or `<hex> *<name>`).
pub fn parse_digest(checksum: &Checksum, text: &str) -> Option<String> {
    let algorithm = checksum.algorithm();
    let valid = |hex: &str| hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let hex = match checksum {
        Checksum::Sha512File { .. } => text.split_whitespace().next()?,
        Checksum::Sha256Sums { entry, .. } => text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            let hex = words.next()?;
            let name = words.next()?.trim_start_matches('*');
            (name == entry || name.rsplit('/').next() == Some(entry)).then_some(hex)
        })?,
    };
    valid(hex).then(|| hex.to_ascii_lowercase())
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Streams `url` into `target`, hashing as it goes; returns (hex digest, bytes).
async fn stream_to(
    client: &reqwest::Client,
    url: &str,
    target: &Path,
    algorithm: Algorithm,
    options: &FetchOptions,
    bar: &ProgressBar,
) -> Result<(String, u64), FetchError> {
    let mut response = get(client, url, options).await?;
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    bar.set_length(response.content_length().unwrap_or(0));
    bar.set_position(0);
    bar.set_message(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(target).map_err(FetchError::io(target))?);
    let mut hasher = Hasher::new(algorithm);
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| map_send_error(url, e, options))? {
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(FetchError::io(target))?;
        bytes += chunk.len() as u64;
        bar.set_position(bytes);
    }
    let file = file.into_inner().map_err(|e| FetchError::Io { path: target.to_path_buf(), source: e.into_error() })?;
    file.sync_all().map_err(FetchError::io(target))?;
    Ok((hasher.hex(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_from_both_published_formats() {
        let sha512 = Checksum::Sha512File { url: String::new() };
        let hex = "a".repeat(128);
        assert_eq!(parse_digest(&sha512, &format!("{hex}\n")), Some(hex.clone()));
        assert_eq!(parse_digest(&sha512, &format!("{}  kubectl\n", hex.to_uppercase())), Some(hex));
        assert_eq!(parse_digest(&sha512, "not a digest"), None);
        assert_eq!(parse_digest(&sha512, &"b".repeat(64)), None, "a SHA-256 is not a SHA-512");

        let sums = Checksum::Sha256Sums { url: String::new(), entry: "etcd.tar.gz".into() };
        let (a, b) = ("1".repeat(64), "2".repeat(64));
        let text = format!("{a}  etcd-other.tar.gz\n{b} *etcd.tar.gz\n");
        assert_eq!(parse_digest(&sums, &text), Some(b));
        assert_eq!(parse_digest(&sums, &format!("{a}  other\n")), None);
    }
}
