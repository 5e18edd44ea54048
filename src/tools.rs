//! Where the local backend's binaries live (built by scripts/build-k8s.sh), and the versions.

use std::path::PathBuf;

pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// `$CKSLAB_BIN_DIR`, else `<cache>/ckslab/bin/<version>` where `<cache>` is `$CKSLAB_CACHE`,
/// `$XDG_CACHE_HOME` or `~/.cache`: the folder scripts/build-k8s.sh fills.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CKSLAB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("CKSLAB_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("ckslab")
    });
    cache.join("bin").join(KUBERNETES_VERSION)
}

/// The binaries the local backend needs.
pub const LOCAL_BINARIES: [&str; 7] =
    ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "etcdctl", "kwok"];
