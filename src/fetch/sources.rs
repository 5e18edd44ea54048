//! Where the local backend's official binaries are published, and how each is checked.
//!
//! A mirror keeps the same paths: with `--mirror http://host:8000`, kubectl is fetched from
//! `http://host:8000/release/v1.34.4/bin/linux/amd64/kubectl` instead of
//! `https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl`, and etcd from
//! `http://host:8000/etcd-io/etcd/releases/download/v3.6.5/...` instead of `https://github.com/...`.

use crate::tools::KUBERNETES_VERSION;

pub const ETCD_VERSION: &str = "v3.6.5";
pub const KWOK_VERSION: &str = "v0.7.0";

const K8S_ORIGIN: &str = "https://dl.k8s.io";
const GITHUB_ORIGIN: &str = "https://github.com";

/// How a download's expected digest is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// A file holding the hex SHA-512 digest (Kubernetes' `<binary>.sha512`).
    Sha512File { url: String },
    /// A `sha256sum` listing (`<hex>  <file name>` lines), looked up by file name (etcd's
    /// `SHA256SUMS`).
    Sha256Sums { url: String, entry: String },
}

impl Checksum {
    pub fn url(&self) -> &str {
        match self {
            Checksum::Sha512File { url } | Checksum::Sha256Sums { url, .. } => url,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Checksum::Sha512File { .. } => Algorithm::Sha512,
            Checksum::Sha256Sums { .. } => Algorithm::Sha256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// What a verified download turns into in the bin dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The download is the binary itself.
    Binary { name: &'static str },
    /// A .tar.gz holding binaries: (path inside the archive, name in the bin dir).
    TarGz { members: Vec<(String, &'static str)> },
}

impl Payload {
    /// The bin-dir names this payload installs.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Payload::Binary { name } => vec![name],
            Payload::TarGz { members } => members.iter().map(|(_, name)| *name).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    pub checksum: Checksum,
    pub payload: Payload,
}

/// The downloads that fill the local backend's bin dir ([`crate::tools::LOCAL_BINARIES`]), from
/// the official origins, or from `mirror` under the same paths.
pub fn downloads(mirror: Option<&str>) -> Vec<Download> {
    let origin = |official: &'static str| mirror.map(|m| m.trim_end_matches('/')).unwrap_or(official).to_string();
    let k8s = origin(K8S_ORIGIN);
    let github = origin(GITHUB_ORIGIN);
    let mut list = Vec::new();
    for name in ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"] {
        let url = format!("{k8s}/release/{KUBERNETES_VERSION}/bin/linux/amd64/{name}");
        list.push(Download {
            checksum: Checksum::Sha512File { url: format!("{url}.sha512") },
            url,
            payload: Payload::Binary { name },
        });
    }
    let etcd_dir = format!("etcd-{ETCD_VERSION}-linux-amd64");
    let release = format!("{github}/etcd-io/etcd/releases/download/{ETCD_VERSION}");
    list.push(Download {
        url: format!("{release}/{etcd_dir}.tar.gz"),
        checksum: Checksum::Sha256Sums { url: format!("{release}/SHA256SUMS"), entry: format!("{etcd_dir}.tar.gz") },
        payload: Payload::TarGz {
            members: vec![(format!("{etcd_dir}/etcd"), "etcd"), (format!("{etcd_dir}/etcdctl"), "etcdctl")],
        },
    });
    // kwok's checksum listing: the name is an assumption that could not be checked from a
    // machine without internet (see README); without it kwok is refused, never installed
    // unverified, and scripts/build-k8s.sh builds it.
    let release = format!("{github}/kubernetes-sigs/kwok/releases/download/{KWOK_VERSION}");
    list.push(Download {
        url: format!("{release}/kwok-linux-amd64"),
        checksum: Checksum::Sha256Sums { url: format!("{release}/checksums.txt"), entry: "kwok-linux-amd64".into() },
        payload: Payload::Binary { name: "kwok" },
    });
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::LOCAL_BINARIES;

    #[test]
    fn the_downloads_fill_exactly_the_local_backends_binaries() {
        let mut names: Vec<_> = downloads(None).iter().flat_map(|d| d.payload.names()).collect();
        names.sort();
        let mut expected = LOCAL_BINARIES.to_vec();
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_mirror_keeps_the_official_paths() {
        let official = downloads(None);
        let mirrored = downloads(Some("http://127.0.0.1:9/m/"));
        assert_eq!(official[3].url, "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl");
        assert_eq!(mirrored[3].url, "http://127.0.0.1:9/m/release/v1.34.4/bin/linux/amd64/kubectl");
        assert_eq!(mirrored[3].checksum.url(), "http://127.0.0.1:9/m/release/v1.34.4/bin/linux/amd64/kubectl.sha512");
        assert_eq!(
            mirrored[4].url,
            "http://127.0.0.1:9/m/etcd-io/etcd/releases/download/v3.6.5/etcd-v3.6.5-linux-amd64.tar.gz"
        );
        for (o, m) in official.iter().zip(&mirrored) {
            assert!(o.url.starts_with("https://"), "{}", o.url);
            let path = |u: &str| u.splitn(4, '/').nth(3).unwrap().to_string();
            assert_eq!(path(&o.url), path(&m.url).trim_start_matches("m/"));
        }
    }
}
