//! Classroom bundles: create, verify, install; and every bad bundle refused with the caches left
//! as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckslab::bundle::{self, BundleError, CreateOptions, InstallOptions, Roots};
use ckslab::tools::LOCAL_BINARIES;
use indicatif::ProgressBar;

struct Fixture {
    _dir: tempfile::TempDir,
    source: Roots,
    ckslab: PathBuf,
    bundle: PathBuf,
    target: Roots,
}

fn write(path: &Path, data: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A source cache with every local binary and one stand-in image, and an empty target cache.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let source = Roots {
        cache: dir.path().join("src-cache"),
        bin_dir: dir.path().join("src-cache/bin/v1.34.4"),
        node_tools: dir.path().join("src-cache/node-tools"),
    };
    for name in LOCAL_BINARIES {
        // Big enough to span many gzip blocks.
        let data: Vec<u8> = format!("{name} ").bytes().cycle().take(200_000).collect();
        write(&source.bin_dir.join(name), &data, 0o755);
    }
    write(&source.cache.join("kind/stand-ins/busybox_latest.tar"), b"a docker save archive", 0o644);
    write(&source.cache.join("kind/stand-ins/busybox_latest.tar.inputs"), b"key\n", 0o644);
    write(&source.cache.join("kind/images/ckslab_kube-router_v2.1.0.tar"), b"kube-router's archive", 0o644);
    // The upgrade lab's node image, without the default one: each is looked for on its own.
    write(&source.cache.join("kind/kind-node-v1.33.13.tar"), b"the upgrade node image", 0o644);
    // One node tool of two (kubesec is not built).
    write(&source.node_tools.join("syft-v1.57.1/syft"), b"#!/bin/sh\necho syft\n", 0o755);
    let ckslab = dir.path().join("ckslab-build/ckslab");
    write(&ckslab, b"#!/bin/sh\necho ckslab\n", 0o755);
    let target = Roots {
        cache: dir.path().join("dst-cache"),
        bin_dir: dir.path().join("dst-cache/bin/v1.34.4"),
        node_tools: dir.path().join("dst-cache/node-tools"),
    };
    let bundle = dir.path().join("out/class.tar.gz");
    Fixture { _dir: dir, source, ckslab, bundle, target }
}

fn create(f: &Fixture) -> bundle::CreateReport {
    let options =
        CreateOptions { roots: f.source.clone(), ckslab: f.ckslab.clone(), out: f.bundle.clone(), replace: false };
    bundle::create(&options, &ProgressBar::hidden()).unwrap()
}

fn install(f: &Fixture, bundle: &Path) -> Result<bundle::InstallReport, BundleError> {
    let options = InstallOptions { roots: f.target.clone(), expect_sha256: None };
    bundle::install(bundle, &options, &ProgressBar::hidden())
}

/// Every file under `root` (hidden ones too) with its content.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(dir) = std::fs::read_dir(at) else { return };
        for entry in dir.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The bundle's entries, unpacked (manifest first).
fn unpack(bundle: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let file = std::fs::File::open(bundle).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        let mode = entry.header().mode().unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.push((path, data, mode));
    }
    out
}

fn repack(entries: &[(String, Vec<u8>, u32)], to: &Path) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        tar.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn a_bundle_installs_every_file_where_the_caches_expect_it() {
    let f = fixture();
    let report = create(&f);
    assert!(report.absent.iter().any(|a| a.contains("kind node image")), "{:?}", report.absent);
    assert!(!report.absent.iter().any(|a| a.contains("upgrade")), "{:?}", report.absent);
    assert!(report.absent.iter().any(|a| a.contains("node tool kubesec")), "{:?}", report.absent);
    let entries = unpack(&f.bundle);
    assert_eq!(entries[0].0, bundle::MANIFEST, "the manifest comes first");
    assert_eq!(entries[1].0, "ckslab", "then the program, a plain member learners can extract");
    let manifest: bundle::Manifest = serde_json::from_slice(&entries[0].1).unwrap();
    assert_eq!(manifest, report.manifest);
    // ckslab, the local binaries, syft, kube-router, the upgrade node image, a stand-in and its .inputs
    assert_eq!(manifest.files.len(), 1 + LOCAL_BINARIES.len() + 5);
    use sha2::Digest;
    let file_sha = hex::encode(sha2::Sha256::digest(std::fs::read(&f.bundle).unwrap()));
    assert_eq!(report.sha256, file_sha, "the digest learners compare is sha256sum's");

    let options = InstallOptions { roots: f.target.clone(), expect_sha256: Some(file_sha.to_uppercase()) };
    let installed = bundle::install(&f.bundle, &options, &ProgressBar::hidden()).unwrap();
    assert_eq!(installed.installed.len(), manifest.files.len());
    for name in LOCAL_BINARIES {
        let dest = f.target.bin_dir.join(name);
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(f.source.bin_dir.join(name)).unwrap(), "{name}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o755);
    }
    assert_eq!(std::fs::read(f.target.cache.join("bin/ckslab")).unwrap(), std::fs::read(&f.ckslab).unwrap());
    assert_eq!(
        std::fs::read(f.target.cache.join("kind/stand-ins/busybox_latest.tar")).unwrap(),
        b"a docker save archive"
    );
    assert_eq!(
        std::fs::read(f.target.cache.join("kind/images/ckslab_kube-router_v2.1.0.tar")).unwrap(),
        b"kube-router's archive"
    );
    assert_eq!(std::fs::read(f.target.cache.join("kind/kind-node-v1.33.13.tar")).unwrap(), b"the upgrade node image");
    let syft = f.target.node_tools.join("syft-v1.57.1/syft");
    assert_eq!(std::fs::read(&syft).unwrap(), b"#!/bin/sh\necho syft\n");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&syft).unwrap().permissions().mode() & 0o777, 0o755, "node tools stay executable");
    }
    assert!(!tree(&f.target.cache).keys().any(|k| k.contains("/.") || k.starts_with('.')), "no hidden leftovers");

    // Installing again replaces in place (a newer bundle over an older one).
    install(&f, &f.bundle).unwrap();
}

#[test]
fn a_bundle_needs_the_local_binaries() {
    let f = fixture();
    std::fs::remove_file(f.source.bin_dir.join("etcd")).unwrap();
    let options =
        CreateOptions { roots: f.source.clone(), ckslab: f.ckslab.clone(), out: f.bundle.clone(), replace: false };
    let err = bundle::create(&options, &ProgressBar::hidden()).unwrap_err();
    assert!(err.to_string().contains("ckslab fetch-binaries"), "{err}");
    assert!(!f.bundle.exists() && !f.bundle.parent().unwrap().exists());
}

#[test]
fn a_tampered_file_is_refused_and_nothing_is_written() {
    let f = fixture();
    create(&f);
    let mut entries = unpack(&f.bundle);
    let kubectl = entries.iter_mut().find(|e| e.0 == "bin/v1.34.4/kubectl").unwrap();
    kubectl.1[100] ^= 1;
    let tampered = f.bundle.with_file_name("tampered.tar.gz");
    repack(&entries, &tampered);
    let err = install(&f, &tampered).unwrap_err();
    match &err {
        BundleError::Tampered { entry, .. } => assert_eq!(entry, "bin/v1.34.4/kubectl"),
        other => panic!("expected Tampered, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was installed"));
    assert!(!f.target.cache.exists(), "nothing written: {:?}", tree(&f.target.cache).keys());
}

#[test]
fn an_added_or_removed_file_is_refused() {
    let f = fixture();
    create(&f);
    let entries = unpack(&f.bundle);
    let mut added = entries.clone();
    added.push(("kind/stand-ins/evil.tar".into(), b"x".to_vec(), 0o644));
    let path = f.bundle.with_file_name("added.tar.gz");
    repack(&added, &path);
    assert!(matches!(install(&f, &path), Err(BundleError::Unlisted { entry }) if entry == "kind/stand-ins/evil.tar"));

    let removed: Vec<_> = entries.iter().filter(|e| e.0 != "bin/v1.34.4/etcd").cloned().collect();
    repack(&removed, &path);
    assert!(matches!(install(&f, &path), Err(BundleError::Missing { entry }) if entry == "bin/v1.34.4/etcd"));

    // A manifest that points outside the cache.
    let mut escaping = entries.clone();
    let mut manifest: bundle::Manifest = serde_json::from_slice(&escaping[0].1).unwrap();
    manifest.files[1].path = "bin/v1.34.4/../../../../etc/cron.d/x".into();
    escaping[0].1 = serde_json::to_vec(&manifest).unwrap();
    repack(&escaping, &path);
    let err = install(&f, &path).unwrap_err();
    assert!(matches!(err, BundleError::BadManifest { .. }), "{err:?}");
    assert!(!f.target.cache.exists());
}

#[test]
fn a_truncated_or_damaged_bundle_is_refused_and_nothing_is_written() {
    let f = fixture();
    create(&f);
    let data = std::fs::read(&f.bundle).unwrap();
    let path = f.bundle.with_file_name("cut.tar.gz");
    for cut in [data.len() - 4, data.len() / 2, 10] {
        std::fs::write(&path, &data[..cut]).unwrap();
        let err = install(&f, &path).unwrap_err();
        assert!(matches!(err, BundleError::Truncated { .. } | BundleError::Corrupt { .. }), "cut at {cut}: {err:?}");
        assert!(!f.target.cache.exists(), "cut at {cut}: nothing written");
    }
    std::fs::write(&path, &data[..data.len() / 2]).unwrap();
    assert!(matches!(install(&f, &path), Err(BundleError::Truncated { .. })));

    let mut flipped = data.clone();
    let at = flipped.len() * 2 / 3;
    flipped[at] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = install(&f, &path).unwrap_err();
    assert!(
        matches!(err, BundleError::Corrupt { .. } | BundleError::Tampered { .. } | BundleError::Truncated { .. }),
        "{err:?}"
    );
    assert!(!f.target.cache.exists());
}

#[test]
fn not_the_instructors_bundle_is_refused() {
    let f = fixture();
    create(&f);
    let options = InstallOptions { roots: f.target.clone(), expect_sha256: Some("ab".repeat(32)) };
    let err = bundle::install(&f.bundle, &options, &ProgressBar::hidden()).unwrap_err();
    assert!(matches!(err, BundleError::NotTheExpectedBundle { .. }), "{err:?}");
    assert!(!f.target.cache.exists());
}

#[test]
fn an_install_that_fails_midway_leaves_the_caches_as_they_were() {
    let f = fixture();
    create(&f);
    // The target already has an older kube-apiserver, and `kind` is a file, so the stand-ins
    // (after every binary in the bundle's order) cannot be written.
    write(&f.target.bin_dir.join("kube-apiserver"), b"the old one", 0o755);
    write(&f.target.cache.join("kind"), b"not a folder", 0o644);
    let before = tree(&f.target.cache);
    let err = install(&f, &f.bundle).unwrap_err();
    assert!(matches!(err, BundleError::Io { .. }), "{err:?}");
    assert_eq!(tree(&f.target.cache), before, "the cache is as it was: no new, hidden or replaced file");
}

#[test]
fn create_replaces_only_a_regular_file_and_only_when_asked() {
    let f = fixture();
    let with = |out: &Path, replace: bool| CreateOptions {
        roots: f.source.clone(),
        ckslab: f.ckslab.clone(),
        out: out.to_path_buf(),
        replace,
    };
    write(&f.bundle, b"last week's bundle", 0o644);
    let err = bundle::create(&with(&f.bundle, false), &ProgressBar::hidden()).unwrap_err();
    assert!(matches!(err, BundleError::OutExists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(&f.bundle).unwrap(), b"last week's bundle", "left as it was");
    bundle::create(&with(&f.bundle, true), &ProgressBar::hidden()).unwrap();
    assert_ne!(std::fs::read(&f.bundle).unwrap(), b"last week's bundle", "replaced when asked");

    // A folder, or a link (to /dev/null, say), is never renamed over, even with --force.
    let dir = f.bundle.with_file_name("a-folder");
    std::fs::create_dir_all(&dir).unwrap();
    let link = f.bundle.with_file_name("a-link");
    std::os::unix::fs::symlink(&f.bundle, &link).unwrap();
    for out in [&dir, &link] {
        let err = bundle::create(&with(out, true), &ProgressBar::hidden()).unwrap_err();
        assert!(matches!(err, BundleError::OutNotAFile { .. }), "{}: {err}", out.display());
    }
    assert!(dir.is_dir() && std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let leftovers: Vec<_> = std::fs::read_dir(f.bundle.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no partial file left: {leftovers:?}");
}
