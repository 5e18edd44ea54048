//! What this machine offers ckslab: tools on PATH, the Docker engine, the local backend's
//! binaries. Shared by `ckslab doctor` and the web UI's home page.

use std::path::Path;

use serde::Serialize;

use crate::backend::kind::docker_engine_available;
use crate::tools::{LOCAL_BINARIES, bin_dir};

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub ok: bool,
    pub name: String,
    pub detail: String,
    pub fix: Option<String>,
}

fn on_path(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).map(|p| p.display().to_string())
}

fn tool(name: &str, fix: &str) -> Finding {
    match on_path(name) {
        Some(path) => Finding { ok: true, name: name.into(), detail: path, fix: None },
        None => Finding { ok: false, name: name.into(), detail: "not on PATH".into(), fix: Some(fix.into()) },
    }
}

/// kind on PATH, else the one in the cache's bin dir (a classroom bundle's), which the kind
/// backend runs in that case.
fn kind_cli() -> Finding {
    let cached = bin_dir().join("kind");
    let mut finding =
        tool("kind", "go install sigs.k8s.io/kind@v0.33.0, or scripts/build-kind-node.sh (kind backend only)");
    if !finding.ok && cached.is_file() {
        finding =
            Finding { ok: true, name: "kind".into(), detail: format!("{} (not on PATH)", cached.display()), fix: None };
    }
    finding
}

pub async fn examine() -> Vec<Finding> {
    let engine = docker_engine_available().await;
    let mut findings = vec![
        Finding {
            ok: engine,
            name: "docker engine".into(),
            detail: if engine {
                "answers `docker info`".into()
            } else {
                "no engine answers (kind backend unavailable)".into()
            },
            fix: (!engine)
                .then(|| "install and start Docker for the kind backend; the local backend works without it".into()),
        },
        kind_cli(),
        tool("bwrap", "apt-get install bubblewrap (local backend)"),
    ];
    let dir = bin_dir();
    let missing: Vec<&str> = LOCAL_BINARIES.iter().copied().filter(|b| !Path::new(&dir).join(b).is_file()).collect();
    findings.push(Finding {
        ok: missing.is_empty(),
        name: "local backend binaries".into(),
        detail: if missing.is_empty() {
            dir.display().to_string()
        } else {
            format!("missing in {}: {}", dir.display(), missing.join(", "))
        },
        fix: (!missing.is_empty())
            .then(|| "scripts/build-k8s.sh (needs Go; about 10 minutes once), or set CKSLAB_BIN_DIR".into()),
    });
    let kubectl =
        on_path("kubectl").or_else(|| dir.join("kubectl").is_file().then(|| dir.join("kubectl").display().to_string()));
    findings.push(Finding {
        ok: kubectl.is_some(),
        name: "kubectl".into(),
        detail: kubectl.unwrap_or_else(|| "not found".into()),
        fix: Some(format!("add {} to PATH, or install kubectl", dir.display()))
            .filter(|_| on_path("kubectl").is_none()),
    });
    if engine {
        findings.push(privileged_containers().await);
    }
    findings.push(kind_network_policy());
    findings.push(kind_upgrade());
    findings.push(kind_sandbox());
    let apparmor = Path::new("/sys/module/apparmor").exists();
    findings.push(Finding {
        ok: apparmor,
        name: "AppArmor (host kernel)".into(),
        detail: if apparmor { "enabled".into() } else { "not enabled: AppArmor scenarios cannot run".into() },
        fix: (!apparmor).then(|| "use a Linux host with AppArmor enabled for the AppArmor scenarios".into()),
    });
    findings
}

/// Capabilities the kernel knows that this process's bounding set lacks (e.g. CAP_SYS_RESOURCE
/// in some VMs and CI sandboxes).
pub fn missing_bounding_caps(status: &str, last_cap: u32) -> Vec<u32> {
    let Some(hex) = status.lines().find_map(|l| l.strip_prefix("CapBnd:")) else { return Vec::new() };
    let Ok(bits) = u64::from_str_radix(hex.trim(), 16) else { return Vec::new() };
    (0..=last_cap.min(63)).filter(|bit| bits & (1 << bit) == 0).collect()
}

/// kind nodes are privileged containers. Docker before 23 grants a privileged container every
/// capability the kernel knows, so where the bounding set is short runc fails with "unable
/// to apply caps: operation not permitted".
async fn privileged_containers() -> Finding {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let last_cap =
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40);
    let missing = missing_bounding_caps(&status, last_cap);
    let name = "privileged containers (kind nodes)".to_string();
    let image = std::env::var("CKSLAB_KIND_NODE_IMAGE").unwrap_or_else(|_| "ckslab/kind-node:v1.34.4".into());
    let probe = tokio::process::Command::new("docker")
        .args(["run", "--rm", "--privileged", "--entrypoint", "true", &image])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), probe).await;
    let (ok, detail) = match out {
        Ok(Ok(out)) if out.status.success() => (true, format!("a privileged container starts ({image})")),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("No such image") || stderr.contains("Unable to find image") {
                (true, format!("not tried: no local image {image} to try it with"))
            } else {
                (false, format!("`docker run --privileged` fails: {}", stderr.trim().lines().last().unwrap_or("")))
            }
        }
        _ => (false, "`docker run --privileged` did not finish within 30s".into()),
    };
    let fix = (!ok).then(|| {
        if missing.is_empty() {
            "check the engine's log (journalctl -u docker) for why runc refuses".to_string()
        } else {
            format!(
                "this host's capability bounding set lacks capabilities {missing:?} that Docker grants privileged containers: use Docker 23 or newer (it grants only the bounding set), or run dockerd with a runtime that drops them (scripts/docker-engine.sh does, for tests)"
            )
        }
    });
    Finding { ok, name, detail, fix }
}

/// Whether NetworkPolicy is enforced on the kind cluster, and why not.
fn kind_network_policy() -> Finding {
    use crate::backend::{Backend, Capability};
    let kind = crate::backend::kind::KindBackend::new(&crate::backend::data_dir());
    let enforced = kind.capabilities().contains(&Capability::NetworkPolicy);
    Finding {
        ok: enforced,
        name: "NetworkPolicy on kind".into(),
        detail: if enforced {
            "enforced (kindnetd, or kube-router on ckslab's offline image)".into()
        } else {
            "not enforced: the bridge network of ckslab's offline node image does not enforce NetworkPolicy and no kube-router image was found; network-policy checks still grade the policies as data".into()
        },
        fix: (!enforced).then(|| "scripts/kind-netpol.sh builds the kube-router image; `ckslab down && ckslab up --backend kind` then deploys it".into()),
    }
}

/// Whether the upgrade lab can run: its node image (an older version) is in the cache.
fn kind_upgrade() -> Finding {
    use crate::backend::kind::offline::{UPGRADE_ARCHIVE, UPGRADE_FROM};
    use crate::backend::{Backend, Capability};
    let kind = crate::backend::kind::KindBackend::new(&crate::backend::data_dir());
    let ok = kind.capabilities().contains(&Capability::KubernetesUpgrade);
    let archive = crate::tools::cache_dir().join("kind").join(UPGRADE_ARCHIVE);
    Finding {
        ok,
        name: "upgrade lab on kind".into(),
        detail: if ok {
            format!("a fresh cluster at {UPGRADE_FROM} can be made from {}", archive.display())
        } else {
            format!("no {} (the node image of a {UPGRADE_FROM} cluster): kubeadm-upgrade cannot run", archive.display())
        },
        fix: (!ok).then(|| "scripts/build-kind-node.sh --upgrade-from builds it (seven more Kubernetes binaries, about 10 min), or install a classroom bundle that has it".into()),
    }
}

/// Whether pods can run sandboxed (gVisor) on the kind cluster, and why not.
fn kind_sandbox() -> Finding {
    use crate::backend::{Backend, Capability};
    let kind = crate::backend::kind::KindBackend::new(&crate::backend::data_dir());
    let ok = kind.capabilities().contains(&Capability::SandboxRuntime);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let short = !missing_bounding_caps(&status, 40).is_empty();
    let cgroup_v1 = !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut why = vec!["the nodes' containerd has no runsc handler".to_string()];
    if short {
        why.push("this host lacks CAP_SYS_RESOURCE, which gVisor's shim needs to set its OOM score".into());
    }
    if cgroup_v1 {
        why.push("on this cgroup v1 host runsc under runc cannot set up the pod's cgroups inside a kind node".into());
    }
    Finding {
        ok,
        name: "gVisor sandbox on kind".into(),
        detail: if ok { "runsc handler present".into() } else { format!("not available: {}", why.join("; ")) },
        fix: (!ok).then(|| "install runsc and a containerd `runsc` handler in the nodes (kind-configs/README.md) on a host with a full capability set and cgroup v2".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_short_bounding_set_is_found() {
        let full = "Name:\tx\nCapBnd:\t000001ffffffffff\n";
        assert!(super::missing_bounding_caps(full, 40).is_empty());
        // CAP_SYS_RESOURCE is 24.
        let short = "CapBnd:\t000001fffeffffff\n";
        assert_eq!(super::missing_bounding_caps(short, 40), vec![24]);
    }
}
