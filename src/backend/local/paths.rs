//! Where the local cluster keeps its files, whether the binaries (`crate::tools`) are there,
//! and how a node's absolute paths map into its node root.

use std::path::{Component, Path, PathBuf};

use crate::backend::{BackendError, Result};
use crate::tools::{LOCAL_BINARIES, bin_dir};

pub const CONTROL_PLANE: &str = "ckslab-control-plane";
pub const WORKER: &str = "ckslab-worker";
pub const NODES: [&str; 2] = [CONTROL_PLANE, WORKER];

/// Where the binaries dir is bound inside every sandbox, so `command[0]` of a manifest resolves
/// through PATH as it would in the component's image.
pub const SANDBOX_BIN: &str = "/ckslab/bin";
pub const SANDBOX_PATH: &str = "/ckslab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything under `data_dir/local`.
#[derive(Debug, Clone)]
pub struct ClusterPaths {
    pub dir: PathBuf,
}

impl ClusterPaths {
    pub fn new(cluster_dir: PathBuf) -> Self {
        ClusterPaths { dir: cluster_dir }
    }

    /// Written first at creation; `down` deletes `dir` only when it is there.
    pub fn marker(&self) -> PathBuf {
        self.dir.join(".ckslab-cluster")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.dir.join("supervisor.pid")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    /// One pid file per child process the supervisor started (bwrap or kwok), so a later
    /// `up`/`down` can clean up after a supervisor that was killed.
    pub fn pids_dir(&self) -> PathBuf {
        self.dir.join("pids")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn kwok_home(&self) -> PathBuf {
        self.dir.join("kwok")
    }
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }
    pub fn node_root(&self, node: &str) -> PathBuf {
        self.nodes_dir().join(node)
    }
    pub fn manifests_dir(&self) -> PathBuf {
        self.node_root(CONTROL_PLANE).join("etc/kubernetes/manifests")
    }
    /// A control-plane node file, by its absolute node path.
    pub fn cp_file(&self, node_path: &str) -> PathBuf {
        self.node_root(CONTROL_PLANE).join(node_path.trim_start_matches('/'))
    }
    /// The log of a static pod's container: `var/log/pods/kube-system_<pod>-<node>/<container>/<n>.log`
    /// in the control-plane node root, `n` counting the starts (the newest is the current one).
    pub fn pod_log_dir(&self, pod: &str, container: &str) -> PathBuf {
        self.node_root(CONTROL_PLANE)
            .join("var/log/pods")
            .join(format!("kube-system_{pod}-{CONTROL_PLANE}"))
            .join(container)
    }
}

pub fn known_node(node: &str) -> Result<()> {
    if NODES.contains(&node) { Ok(()) } else { Err(BackendError::UnknownNode(node.to_string())) }
}

/// Maps an absolute node path into `root`. `..` is resolved lexically and may not climb above the
/// node's `/`: the node root is the node's whole world.
pub fn resolve_in_root(root: &Path, node_path: &Path) -> Result<PathBuf> {
    if !node_path.is_absolute() {
        return Err(BackendError::RelativeNodePath(node_path.to_path_buf()));
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in node_path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(BackendError::NodePathEscapes(node_path.to_path_buf()));
                }
            }
            Component::Prefix(_) => unreachable!("no path prefixes on unix"),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    Ok(out)
}

/// Checks that every binary and bwrap are there, with the fix when not.
pub fn check_tools() -> Result<PathBuf> {
    check_tools_in(bin_dir())
}

fn check_tools_in(dir: PathBuf) -> Result<PathBuf> {
    let missing: Vec<&str> = LOCAL_BINARIES.iter().copied().filter(|b| !is_executable(&dir.join(b))).collect();
    if !missing.is_empty() {
        return Err(BackendError::MissingTool {
            tool: missing.join(", "),
            detail: format!("not found in {}", dir.display()),
            fix: format!(
                "run `ckslab fetch-binaries` (verified official downloads) or scripts/build-k8s.sh (from Go \
                 modules), or set CKSLAB_BIN_DIR to a folder with {}",
                LOCAL_BINARIES.join(", ")
            ),
        });
    }
    bwrap_path()?;
    Ok(dir)
}

pub fn bwrap_path() -> Result<PathBuf> {
    find_on_path("bwrap").ok_or_else(|| BackendError::MissingTool {
        tool: "bwrap".into(),
        detail: "bubblewrap runs each control-plane component with its node's view of the files".into(),
        fix: "apt-get install bubblewrap".into(),
    })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_root() {
        let root = Path::new("/r");
        assert_eq!(resolve_in_root(root, Path::new("/etc/kubernetes/x")).unwrap(), Path::new("/r/etc/kubernetes/x"));
        assert_eq!(resolve_in_root(root, Path::new("/etc/../var/./log")).unwrap(), Path::new("/r/var/log"));
        assert!(resolve_in_root(root, Path::new("/../etc")).is_err());
        assert!(resolve_in_root(root, Path::new("/etc/../../x")).is_err());
        assert!(resolve_in_root(root, Path::new("etc")).is_err());
        let escapes = resolve_in_root(root, Path::new("/etc/../../x")).unwrap_err();
        assert!(matches!(escapes, BackendError::NodePathEscapes(_)), "{escapes:?}");
        assert_eq!(escapes.to_string(), "node path /etc/../../x climbs above the node's /");
        let relative = resolve_in_root(root, Path::new("etc")).unwrap_err();
        assert!(matches!(relative, BackendError::RelativeNodePath(_)), "{relative:?}");
        assert_eq!(relative.to_string(), "node paths must be absolute, got etc");
    }

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let dir = tempfile::tempdir().unwrap();
        match check_tools_in(dir.path().to_path_buf()) {
            Err(BackendError::MissingTool { tool, fix, .. }) => {
                assert!(tool.contains("kube-apiserver") && tool.contains("kwok"), "{tool}");
                assert!(fix.contains("scripts/build-k8s.sh") && fix.contains("CKSLAB_BIN_DIR"), "{fix}");
            }
            other => panic!("expected MissingTool, got {other:?}"),
        }
    }
}
