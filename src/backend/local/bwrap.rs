//! bubblewrap command lines: a static pod's container view, and a node's view for exec/shell.
//!
//! Both start from an empty root (bwrap's tmpfs) with the host's system folders read-only, as a
//! container image would provide them, and add only what the node or pod would see. The network
//! is the host's: static pods are hostNetwork, and the nodes share 127.0.0.1.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::paths::{CONTROL_PLANE, SANDBOX_BIN, SANDBOX_PATH};

const SYSTEM_DIRS: [&str; 7] = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"];

/// One bind mount: a host path shown at `dest` inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub dest: String,
    pub read_only: bool,
}

#[derive(Default)]
pub struct Args(Vec<OsString>);

impl Args {
    fn push(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(OsString::from));
    }
    fn push_path(&mut self, flag: &str, src: &Path, dest: &str) {
        self.0.push(flag.into());
        self.0.push(src.into());
        self.0.push(dest.into());
    }
    pub fn into_vec(self) -> Vec<OsString> {
        self.0
    }
}

/// The system folders bound read-only (real folders) or recreated (merged-/usr symlinks).
fn system(args: &mut Args) {
    for dir in SYSTEM_DIRS {
        let p = Path::new(dir);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    args.0.extend(["--symlink".into(), target.into_os_string(), OsString::from(dir)]);
                }
            }
            Ok(m) if m.is_dir() => args.push_path("--ro-bind", p, dir),
            _ => {}
        }
    }
    args.push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
}

/// A mount point under a read-only system folder must already exist on the host: bwrap cannot
/// create it there. (kubeadm's flexvolume dir under /usr/libexec is the usual case.)
pub fn mountable(dest: &str) -> bool {
    let under_system = SYSTEM_DIRS.iter().any(|d| Path::new(dest).starts_with(d) && Path::new(d).is_dir());
    !under_system || Path::new(dest).exists()
}

fn common(args: &mut Args, bin_dir: &Path, node: &str) {
    args.push(&["--die-with-parent", "--unshare-uts", "--hostname", node, "--unshare-ipc"]);
    system(args);
    args.push_path("--ro-bind", bin_dir, SANDBOX_BIN);
    args.push(&["--clearenv", "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOSTNAME", node]);
}

/// A static pod container: its own volumes and nothing else of the node. Binds are applied
/// shallowest first, so `/etc/kubernetes/pki/etcd` lands inside `/etc/kubernetes/pki`.
pub fn container_args(
    bin_dir: &Path,
    node: &str,
    binds: &[Bind],
    env: &[(String, String)],
    argv: &[String],
) -> Vec<OsString> {
    let mut args = Args::default();
    common(&mut args, bin_dir, node);
    // What a container runtime injects into a hostNetwork pod.
    for f in ["/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"] {
        args.push_path("--ro-bind-try", Path::new(f), f);
    }
    let mut binds: Vec<&Bind> = binds.iter().collect();
    binds.sort_by_key(|b| Path::new(&b.dest).components().count());
    for b in binds {
        args.push_path(if b.read_only { "--ro-bind" } else { "--bind" }, &b.source, &b.dest);
    }
    for (k, v) in env {
        args.push(&["--setenv", k, v]);
    }
    args.push(&["--chdir", "/", "--"]);
    args.0.extend(argv.iter().map(OsString::from));
    args.into_vec()
}

/// The entries of the node's own /etc besides kubernetes (bound on its own), sorted.
fn own_etc_entries(node_root: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(node_root.join("etc")) else { return Vec::new() };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kubernetes" && !n.starts_with(".ckslab-tmp"))
        .collect();
    names.sort();
    names
}

/// The node's view for `exec` and `node-shell`: the host's /etc (read-only, so editors and
/// shells work) with the node's /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd, /var/log,
/// /opt and /usr/local/bin (when the node has one) bound writable over it, and whatever else the node's own /etc holds.
pub fn node_args(bin_dir: &Path, node_root: &Path, node: &str) -> Vec<OsString> {
    let mut args = Args::default();
    common(&mut args, bin_dir, node);
    args.push(&["--cap-add", "ALL", "--tmpfs", "/root", "--tmpfs", "/run", "--setenv", "HOME", "/root"]);
    if let Ok(term) = std::env::var("TERM") {
        args.push(&["--setenv", "TERM", &term]);
    }
    if node == CONTROL_PLANE {
        args.push(&["--setenv", "KUBECONFIG", "/etc/kubernetes/admin.conf"]);
    }
    if let Ok(rd) = std::fs::read_dir("/etc") {
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if name == "kubernetes" {
                continue;
            }
            let host = e.path();
            let dest = host.to_string_lossy().into_owned();
            match e.file_type() {
                Ok(t) if t.is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&host) {
                        args.0.extend(["--symlink".into(), target.into_os_string(), dest.into()]);
                    }
                }
                Ok(_) => args.push_path("--ro-bind-try", &host, &dest),
                Err(_) => {}
            }
        }
    }
    // usr/local/bin holds the tools a scenario installed (kubesec, syft): once it exists it is
    // the node's, in place of the host's.
    for dir in ["etc/kubernetes", "var/lib/kubelet", "var/lib/etcd", "var/log", "opt", "usr/local/bin"] {
        let src = node_root.join(dir);
        let dest = format!("/{dir}");
        if src.is_dir() && mountable(&dest) {
            args.push_path("--bind", &src, &dest);
        }
    }
    // Files a scenario put in the node's own /etc (sshd_config, sudoers.d) are what the checks
    // read, so the learner must see and edit those, never the host's: each shadows the host's
    // read-only entry of the same name.
    for name in own_etc_entries(node_root) {
        args.push_path("--bind", &node_root.join("etc").join(&name), &format!("/etc/{name}"));
    }
    args.push(&["--chdir", "/"]);
    args.into_vec()
}
