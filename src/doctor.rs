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
        tool("kind", "go install sigs.k8s.io/kind@v0.30.0 (kind backend only)"),
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
    let apparmor = Path::new("/sys/module/apparmor").exists();
    findings.push(Finding {
        ok: apparmor,
        name: "AppArmor (host kernel)".into(),
        detail: if apparmor { "enabled".into() } else { "not enabled: AppArmor scenarios cannot run".into() },
        fix: (!apparmor).then(|| "use a Linux host with AppArmor enabled for the AppArmor scenarios".into()),
    });
    findings
}
