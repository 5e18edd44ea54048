//! Small image archives in `docker save` layout (what `syft docker-archive:FILE` and
//! `docker load` read): one layer holding `/etc/os-release` and a package database (dpkg's
//! `var/lib/dpkg/status` or apk's `lib/apk/db/installed`) that lists the given packages. No
//! registry and no Docker: the bytes are made here, the same every time for the same input.

use sha2::{Digest, Sha256};

use crate::scenario::{ArchivePackage, Distro, ImageArchive};

/// The archive's bytes.
pub fn build(spec: &ImageArchive) -> std::io::Result<Vec<u8>> {
    let layer = tar_of(&layer_files(spec))?;
    let layer_digest = hex::encode(Sha256::digest(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "ckslab image-archive"}],
    });
    let config = serde_json::to_vec(&config).expect("a JSON value serializes");
    let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
    let layer_name = format!("{layer_digest}/layer.tar");
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [spec.image], "Layers": [layer_name]}]);
    let manifest = serde_json::to_vec(&manifest).expect("a JSON value serializes");
    tar_of(&[
        (format!("{layer_digest}/"), None),
        (layer_name, Some(layer)),
        (config_name, Some(config)),
        ("manifest.json".into(), Some(manifest)),
    ])
}

/// The layer's entries: folders (`None`) and files, in order.
fn layer_files(spec: &ImageArchive) -> Vec<(String, Option<Vec<u8>>)> {
    let (os_release, db_dir, db_file, db) = match spec.distro {
        Distro::Debian => (
            format!(
                "PRETTY_NAME=\"Debian GNU/Linux {r}\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"{r}\"\nID=debian\n",
                r = spec.release
            ),
            vec!["var/", "var/lib/", "var/lib/dpkg/"],
            "var/lib/dpkg/status",
            dpkg_status(&spec.packages),
        ),
        Distro::Alpine => (
            format!(
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID={r}\nPRETTY_NAME=\"Alpine Linux v{r}\"\n",
                r = spec.release
            ),
            vec!["lib/", "lib/apk/", "lib/apk/db/"],
            "lib/apk/db/installed",
            apk_installed(&spec.packages),
        ),
    };
    let mut files: Vec<(String, Option<Vec<u8>>)> =
        vec![("etc/".into(), None), ("etc/os-release".into(), Some(os_release.into_bytes()))];
    files.extend(db_dir.into_iter().map(|d| (d.to_string(), None)));
    files.push((db_file.into(), Some(db.into_bytes())));
    files
}

/// dpkg's status file: one stanza per installed package.
pub fn dpkg_status(packages: &[ArchivePackage]) -> String {
    packages
        .iter()
        .map(|p| {
            let source = p.source.as_ref().map(|s| format!("Source: {s}\n")).unwrap_or_default();
            format!(
                "Package: {}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n{source}Version: {}\nDescription: {}\n",
                p.name, p.version, p.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// apk's installed database: one record per package, a blank line after each.
pub fn apk_installed(packages: &[ArchivePackage]) -> String {
    packages
        .iter()
        .map(|p| {
            let origin = p.source.as_deref().unwrap_or(&p.name);
            format!("P:{}\nV:{}\nA:x86_64\no:{origin}\nT:{}\n\n", p.name, p.version, p.name)
        })
        .collect()
}

/// A tar of these entries, with fixed owners and times so the same input gives the same bytes.
fn tar_of(entries: &[(String, Option<Vec<u8>>)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, contents) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match contents {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, name, std::io::empty())?;
            }
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, bytes.as_slice())?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::NodeRef;
    use std::io::Read;

    fn spec(distro: Distro) -> ImageArchive {
        ImageArchive {
            node: NodeRef::ControlPlane,
            path: "/opt/images/a.tar".into(),
            image: "registry.local/shop/a:1.0".into(),
            distro,
            release: "12".into(),
            packages: vec![
                ArchivePackage {
                    name: "libssl3".into(),
                    version: "3.0.11-1~deb12u2".into(),
                    source: Some("openssl".into()),
                },
                ArchivePackage { name: "zlib1g".into(), version: "1:1.2.13.dfsg-1".into(), source: None },
            ],
        }
    }

    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (e.path().unwrap().display().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn a_debian_archive_is_docker_save_layout_with_digests_that_agree() {
        let bytes = build(&spec(Distro::Debian)).unwrap();
        assert_eq!(bytes, build(&spec(Distro::Debian)).unwrap(), "the same input gives the same bytes");
        let files = entries(&bytes);
        let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
        let manifest: serde_json::Value = serde_json::from_slice(&get("manifest.json").unwrap()).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "registry.local/shop/a:1.0");
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config_bytes = get(config_name).unwrap();
        assert_eq!(format!("{}.json", hex::encode(Sha256::digest(&config_bytes))), config_name);
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = get(layer_name).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{}", hex::encode(Sha256::digest(&layer))));
        let layer_files = entries(&layer);
        let status = &layer_files.iter().find(|(n, _)| n == "var/lib/dpkg/status").unwrap().1;
        let status = String::from_utf8(status.clone()).unwrap();
        assert!(status.starts_with("Package: libssl3\nStatus: install ok installed\n"), "{status}");
        assert!(status.contains("Source: openssl\nVersion: 3.0.11-1~deb12u2\n"), "{status}");
        assert!(status.contains("\n\nPackage: zlib1g\n"), "{status}");
        let os = &layer_files.iter().find(|(n, _)| n == "etc/os-release").unwrap().1;
        assert!(String::from_utf8_lossy(os).contains("ID=debian\n"));
    }

    #[test]
    fn an_alpine_archive_holds_the_apk_database() {
        let mut alpine = spec(Distro::Alpine);
        alpine.release = "3.20.3".into();
        let files = entries(&build(&alpine).unwrap());
        let manifest: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = entries(&files.iter().find(|(n, _)| n == layer_name).unwrap().1);
        let names: Vec<&str> = layer.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"lib/apk/db/installed") && !names.contains(&"var/lib/dpkg/status"), "{names:?}");
        let db = String::from_utf8(layer.iter().find(|(n, _)| n == "lib/apk/db/installed").unwrap().1.clone()).unwrap();
        assert_eq!(
            db,
            "P:libssl3\nV:3.0.11-1~deb12u2\nA:x86_64\no:openssl\nT:libssl3\n\nP:zlib1g\nV:1:1.2.13.dfsg-1\nA:x86_64\no:zlib1g\nT:zlib1g\n\n"
        );
    }
}
