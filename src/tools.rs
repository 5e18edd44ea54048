//! Where the local backend's binaries live (fetched by `ckslab fetch-binaries` or built by
//! scripts/build-k8s.sh), their version and their names: the one source the local backend,
//! `doctor` and kubectl lookups read.

use std::ffi::OsString;
use std::path::PathBuf;

pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// The binaries the local backend needs (`ckslab fetch-binaries`, `scripts/build-k8s.sh`).
pub const LOCAL_BINARIES: [&str; 7] =
    ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "etcdctl", "kwok"];

/// The tools a scenario can put on a node's PATH (`install-tool`), with the version
/// scripts/build-tools.sh builds: each lives at `<node tools dir>/<name>-<version>/<name>`.
pub const NODE_TOOLS: [(&str, &str); 2] = [("kubesec", "v2.14.2"), ("syft", "v1.57.1")];

/// `$CKSLAB_NODE_TOOLS_DIR`, else `<cache>/node-tools`: the folder scripts/build-tools.sh fills.
pub fn node_tools_dir() -> PathBuf {
    node_tools_dir_from(|name| std::env::var_os(name), dirs::home_dir())
}

pub fn node_tools_dir_from(env: impl Fn(&str) -> Option<OsString>, home: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = env("CKSLAB_NODE_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    cache_dir_from(env, home).join("node-tools")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeToolError {
    #[error("no node tool is called {name:?}; ckslab has {}", NODE_TOOLS.map(|(n, _)| n).join(", "))]
    Unknown { name: String },
    #[error("{name} {version} is not built (no {})\n  fix: run scripts/build-tools.sh (or point CKSLAB_NODE_TOOLS_DIR at its folder)", path.display())]
    NotBuilt { name: String, version: &'static str, path: PathBuf },
}

/// The version ckslab pins for a node tool, `None` for a name it does not know.
pub fn node_tool_version(name: &str) -> Option<&'static str> {
    NODE_TOOLS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Where the built binary of a node tool is, under `dir`; an error says how to build it.
pub fn node_tool_path(dir: &std::path::Path, name: &str) -> Result<PathBuf, NodeToolError> {
    let version = node_tool_version(name).ok_or_else(|| NodeToolError::Unknown { name: name.into() })?;
    let path = dir.join(format!("{name}-{version}")).join(name);
    if path.is_file() { Ok(path) } else { Err(NodeToolError::NotBuilt { name: name.into(), version, path }) }
}

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

    #[test]
    fn node_tools_live_in_the_cache_under_their_version_and_a_missing_one_names_the_script() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(node_tools_dir_from(env(&[]), home.clone()), PathBuf::from("/home/u/.cache/ckslab/node-tools"));
        assert_eq!(node_tools_dir_from(env(&[("CKSLAB_CACHE", "/c")]), home.clone()), PathBuf::from("/c/node-tools"));
        assert_eq!(node_tools_dir_from(env(&[("CKSLAB_NODE_TOOLS_DIR", "/t")]), home), PathBuf::from("/t"));

        let dir = tempfile::tempdir().unwrap();
        let missing = node_tool_path(dir.path(), "kubesec").unwrap_err();
        assert!(matches!(missing, NodeToolError::NotBuilt { .. }), "{missing:?}");
        assert!(missing.to_string().contains("fix: run scripts/build-tools.sh"), "{missing}");
        assert!(missing.to_string().starts_with("kubesec v2.14.2 is not built (no "), "{missing}");
        let unknown = node_tool_path(dir.path(), "trivy").unwrap_err();
        assert_eq!(unknown.to_string(), "no node tool is called \"trivy\"; ckslab has kubesec, syft");

        let built = dir.path().join("syft-v1.57.1/syft");
        std::fs::create_dir_all(built.parent().unwrap()).unwrap();
        std::fs::write(&built, b"#!").unwrap();
        assert_eq!(node_tool_path(dir.path(), "syft").unwrap(), built);
    }

    #[test]
    fn the_build_script_builds_the_versions_ckslab_looks_for() {
        let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-tools.sh")).unwrap();
        for (name, version) in NODE_TOOLS {
            let line = format!("{}_VERSION={version}\n", name.to_uppercase());
            assert!(script.contains(&line), "scripts/build-tools.sh has no {line:?}");
            assert!(script.contains(&format!("build {name} ")), "scripts/build-tools.sh does not build {name}");
        }
    }
}
