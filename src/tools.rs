//! Where the local backend's binaries live (fetched by `ckslab fetch-binaries` or built by
//! scripts/build-k8s.sh), their version and their names: the one source the local backend,
//! `doctor` and kubectl lookups read.

use std::ffi::OsString;
use std::path::PathBuf;

pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// The binaries the local backend needs (`ckslab fetch-binaries`, `scripts/build-k8s.sh`).
pub const LOCAL_BINARIES: [&str; 7] =
    ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "etcdctl", "kwok"];

/// `$CKSLAB_BIN_DIR`, else `<cache>/bin/<version>` where `<cache>` is [`cache_dir`]: the folder
/// scripts/build-k8s.sh and `ckslab fetch-binaries` fill.
pub fn bin_dir() -> PathBuf {
    bin_dir_from(|name| std::env::var_os(name), dirs::home_dir())
}

/// `$CKSLAB_CACHE`, else `$XDG_CACHE_HOME/ckslab` or `~/.cache/ckslab`: where the local backend's
/// binaries (`bin/<version>`) and the kind node and stand-in images (`kind/`) are kept.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name), dirs::home_dir())
}

/// [`bin_dir`] over a given environment and home. An empty `XDG_CACHE_HOME` counts as unset,
/// as the XDG Base Directory spec says.
pub fn bin_dir_from(env: impl Fn(&str) -> Option<OsString>, home: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = env("CKSLAB_BIN_DIR") {
        return PathBuf::from(dir);
    }
    cache_dir_from(env, home).join("bin").join(KUBERNETES_VERSION)
}

/// [`cache_dir`] over a given environment and home.
pub fn cache_dir_from(env: impl Fn(&str) -> Option<OsString>, home: Option<PathBuf>) -> PathBuf {
    match env("CKSLAB_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => match env("XDG_CACHE_HOME") {
            Some(xdg) if !xdg.is_empty() => PathBuf::from(xdg).join("ckslab"),
            _ => home.unwrap_or_else(std::env::temp_dir).join(".cache/ckslab"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn an_empty_xdg_cache_home_counts_as_unset() {
        let home = Some(PathBuf::from("/home/u"));
        let expected = PathBuf::from(format!("/home/u/.cache/ckslab/bin/{KUBERNETES_VERSION}"));
        assert_eq!(bin_dir_from(env(&[("XDG_CACHE_HOME", "")]), home.clone()), expected);
        assert_eq!(bin_dir_from(env(&[]), home.clone()), expected);
        assert_eq!(
            bin_dir_from(env(&[("XDG_CACHE_HOME", "/x")]), home.clone()),
            PathBuf::from(format!("/x/ckslab/bin/{KUBERNETES_VERSION}"))
        );
        assert_eq!(
            bin_dir_from(env(&[("CKSLAB_CACHE", "/c"), ("XDG_CACHE_HOME", "/x")]), home.clone()),
            PathBuf::from(format!("/c/bin/{KUBERNETES_VERSION}"))
        );
        assert_eq!(bin_dir_from(env(&[("CKSLAB_BIN_DIR", "/b")]), home), PathBuf::from("/b"));
    }
}
