//! The images an offline machine keeps as `docker save` archives in the cache: ckslab's node
//! image, kube-router and the scenarios' stand-ins (made by scripts/build-kind-node.sh,
//! kind-netpol.sh and build-stand-in-images.sh, or installed from a classroom bundle). With
//! them `ckslab up --backend kind` needs no registry and no environment variable: it uses the
//! node image, loads into the engine whatever it lacks, and puts the stand-ins on the nodes.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The node image scripts/build-kind-node.sh makes, and its archive under `<cache>/kind`.
pub const NODE_IMAGE: &str = "ckslab/kind-node:v1.34.4";
pub const NODE_ARCHIVE: &str = "kind-node-v1.34.4.tar";
/// The version the upgrade lab starts at, on `ckslab/kind-node:v1.33.13` (its archive
/// `kind-node-v1.33.13.tar`; scripts/build-kind-node.sh --upgrade-from).
pub const UPGRADE_FROM: &str = "v1.33.13";
pub const UPGRADE_ARCHIVE: &str = "kind-node-v1.33.13.tar";
/// etcd's image tag on a cluster made at an older version: the default version's, which that
/// node image carries (kubeadm keeps a set imageTag across `kubeadm upgrade apply`).
pub const UPGRADE_ETCD_TAG: &str = "3.6.5-0";

/// ckslab's node image for Kubernetes `version`.
pub fn node_image_at(version: &str) -> String {
    format!("{}:{version}", super::OFFLINE_IMAGE_PREFIX)
}
/// kube-router's archive (scripts/kind-netpol.sh), under `<cache>/kind`.
pub const NETPOL_ARCHIVE: &str = "images/ckslab_kube-router_v2.1.0.tar";
/// The stand-in images' folder (scripts/build-stand-in-images.sh), under `<cache>/kind`.
pub const STAND_INS: &str = "stand-ins";

/// What `<cache>/kind` holds.
#[derive(Debug, Clone)]
pub struct CachedImages {
    kind_dir: PathBuf,
}

impl CachedImages {
    pub fn new(kind_dir: PathBuf) -> Self {
        CachedImages { kind_dir }
    }

    /// The node image's archive, when there is one.
    pub fn node(&self) -> Option<PathBuf> {
        Some(self.kind_dir.join(NODE_ARCHIVE)).filter(|p| p.is_file())
    }

    /// The archive of ckslab's node image `image` (`ckslab/kind-node:<version>` is saved as
    /// `kind-node-<version>.tar`), when there is one.
    pub fn node_archive(&self, image: &str) -> Option<PathBuf> {
        let version = image.strip_prefix(super::OFFLINE_IMAGE_PREFIX)?.strip_prefix(':')?;
        Some(self.kind_dir.join(format!("kind-node-{version}.tar"))).filter(|p| p.is_file())
    }

    /// kube-router's archive, when there is one.
    pub fn netpol(&self) -> Option<PathBuf> {
        Some(self.kind_dir.join(NETPOL_ARCHIVE)).filter(|p| p.is_file())
    }

    /// Each stand-in archive with the image names it holds (read from the archive itself, since
    /// its file name loses the `/` and `:` of the name), sorted by name. An archive that cannot
    /// be read is left out with a warning: the scenario that needs it says so when it runs.
    pub fn stand_ins(&self) -> Vec<(String, PathBuf)> {
        let Ok(dir) = std::fs::read_dir(self.kind_dir.join(STAND_INS)) else { return Vec::new() };
        let mut found = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "tar") || !path.is_file() {
                continue;
            }
            match repo_tags(&path) {
                Ok(tags) => found.extend(tags.into_iter().map(|t| (t, path.clone()))),
                Err(err) => tracing::warn!("{}: not a readable image archive: {err}", path.display()),
            }
        }
        found.sort();
        found
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("its manifest.json is not a `docker save` manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    #[error("it holds no manifest.json")]
    NoManifest,
}

#[derive(serde::Deserialize)]
struct SavedImage {
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

/// The image names a `docker save` archive holds (its manifest.json's RepoTags).
pub fn repo_tags(archive: &Path) -> Result<Vec<String>, ArchiveError> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive)?);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() != "manifest.json" {
            continue;
        }
        let mut text = Vec::new();
        entry.read_to_end(&mut text)?;
        let images: Vec<SavedImage> = serde_json::from_slice(&text)?;
        return Ok(images.into_iter().flat_map(|i| i.repo_tags.unwrap_or_default()).collect());
    }
    Err(ArchiveError::NoManifest)
}

/// `program` on PATH, else `fallback` when that file exists, else `program` (so running it
/// fails with the missing-tool error that says how to get it).
pub fn find_program(program: &str, path: Option<&std::ffi::OsStr>, fallback: &Path) -> PathBuf {
    let on_path = path.and_then(|p| std::env::split_paths(p).map(|dir| dir.join(program)).find(|p| p.is_file()));
    match on_path {
        Some(_) => PathBuf::from(program),
        None if fallback.is_file() => fallback.to_path_buf(),
        None => PathBuf::from(program),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(path: &Path, manifest: &str) {
        let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
        for (name, data) in [("blobs/sha256/abc", "layer".as_bytes()), ("manifest.json", manifest.as_bytes())] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, data).unwrap();
        }
        tar.finish().unwrap();
    }

    #[test]
    fn stand_ins_are_named_by_what_their_archives_hold() {
        let dir = tempfile::tempdir().unwrap();
        let stand_ins = dir.path().join(STAND_INS);
        std::fs::create_dir_all(&stand_ins).unwrap();
        saved(&stand_ins.join("registry.local_team_app_v1.tar"), r#"[{"RepoTags":["registry.local/team/app:v1"]}]"#);
        saved(
            &stand_ins.join("busybox_latest.tar"),
            r#"[{"Config":"x","RepoTags":["busybox:latest","busybox:1.36"]}]"#,
        );
        std::fs::write(stand_ins.join("junk.tar"), b"not a tar at all").unwrap();
        std::fs::write(stand_ins.join("busybox_latest.tar.inputs"), b"key\n").unwrap();
        saved(&stand_ins.join("untagged.tar"), r#"[{"RepoTags":null}]"#);

        let cached = CachedImages::new(dir.path().to_path_buf());
        let names: Vec<String> = cached.stand_ins().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["busybox:1.36", "busybox:latest", "registry.local/team/app:v1"]);
        assert!(cached.node().is_none() && cached.netpol().is_none());
        std::fs::write(dir.path().join(NODE_ARCHIVE), b"x").unwrap();
        assert_eq!(cached.node(), Some(dir.path().join(NODE_ARCHIVE)));
    }

    #[test]
    fn an_archive_without_a_manifest_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_cksum();
        tar.append_data(&mut h, "index.json", &b"x"[..]).unwrap();
        tar.finish().unwrap();
        drop(tar);
        assert!(matches!(repo_tags(&path), Err(ArchiveError::NoManifest)));
    }

    #[test]
    fn a_program_on_path_wins_over_the_cached_one() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = dir.path().join("path");
        let cached = dir.path().join("cache/kind");
        std::fs::create_dir_all(&on_path).unwrap();
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        let path = std::env::join_paths([&on_path]).unwrap();
        assert_eq!(find_program("kind", Some(&path), &cached), PathBuf::from("kind"));
        std::fs::write(&cached, b"#!/bin/sh\n").unwrap();
        assert_eq!(find_program("kind", Some(&path), &cached), cached);
        std::fs::write(on_path.join("kind"), b"#!/bin/sh\n").unwrap();
        assert_eq!(find_program("kind", Some(&path), &cached), PathBuf::from("kind"));
    }
}
