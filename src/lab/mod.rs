//! The lab: what the CLI and the web UI both do with a scenario on a cluster (reset to its
//! starting point, undo, solve, grade), over any backend.
//!
//! Undo restores the control-plane manifests recorded when the cluster came up (the
//! baseline), then runs the scenario's cleanup steps: seconds, not a new cluster. Reset is
//! undo, then the scenario's setup and break: where the learner starts (`ckslab start` and
//! `ckslab reset` both end there; a start also restarts the hint ladder).
//!
//! The lab remembers the scenario started last (as it was rendered). Resetting another one
//! first undoes that one, so moving on never inherits the last scenario's state (an API server
//! flag, encrypted data, a namespace).
//!
//! A scenario that starts on another Kubernetes version (`cluster-version`, an upgrade) cannot
//! be undone that way: each of its starts is a fresh cluster at that version, and undoing it,
//! or starting any other scenario after it, is a fresh cluster at the default version.

pub mod attempt;
pub mod encryption;

use std::path::{Path, PathBuf};

use crate::backend::{Backend, CONTROL_PLANE_COMPONENTS, Capability, Progress, SharedBackend};
use crate::check::Verdict;
use crate::grade::{self, Report};
use crate::scenario::{Rendered, Scenario};
use crate::staticpod::manifest_path;
use crate::step::{self, StepError};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("{scenario} cannot run here: {}{}", crate::backend::lacks_message(backend, missing), if *.backend == "local" { "; use the kind backend (Docker) for it" } else { "" })]
    Unsupported { scenario: String, backend: &'static str, missing: Vec<Capability> },
    #[error(transparent)]
    Decrypt(#[from] encryption::DecryptError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("restoring the original {component} manifest: {source}")]
    Restore {
        component: &'static str,
        #[source]
        source: Box<step::StepFailure>,
    },
    #[error("{scenario} has no solution #{index} (it has {count})")]
    NoSuchSolution { scenario: String, index: usize, count: usize },
}

/// `map_err(io("writing", &path))`: an I/O failure on one of the lab's own files.
fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.to_path_buf();
    move |source| LabError::Io { what, path, source }
}

pub struct Lab {
    pub backend: SharedBackend,
    data_dir: PathBuf,
}

/// The capabilities a scenario needs that a backend lacks.
pub fn missing_capabilities(scenario: &Scenario, backend: &dyn Backend) -> Vec<Capability> {
    let offered = backend.capabilities();
    scenario.requires.iter().copied().filter(|c| !offered.contains(c)).collect()
}

impl Lab {
    pub fn new(backend: SharedBackend, data_dir: &Path) -> Self {
        Lab { backend, data_dir: data_dir.to_path_buf() }
    }

    fn baseline_dir(&self) -> PathBuf {
        self.data_dir.join("baseline").join(self.backend.name())
    }

    pub async fn up(&self, progress: &dyn Progress) -> Result<(), LabError> {
        self.backend.up(progress).await?;
        self.record_baseline(false).await
    }

    pub async fn down(&self, progress: &dyn Progress) -> Result<(), LabError> {
        self.stop_services();
        self.backend.down(progress).await?;
        self.set_active(None)?;
        let dir = self.baseline_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        }
        Ok(())
    }

    /// Webhook backends ckslab started for scenarios go with the cluster.
    fn stop_services(&self) {
        let services = self.backend.state_dir().join("services");
        let _ = crate::webhook::process::stop(&services, crate::step::WEBHOOK_NAME);
    }

    /// A fresh cluster at `version` (`None`: the default), with no scenario active and the
    /// new cluster's manifests as the baseline.
    async fn recreate(&self, version: Option<&str>, progress: &dyn Progress) -> Result<(), LabError> {
        self.stop_services();
        self.backend.recreate(version, progress).await?;
        self.set_active(None)?;
        self.record_baseline(true).await
    }

    /// Records the control-plane manifests as they are now (unless recorded already).
    async fn record_baseline(&self, overwrite: bool) -> Result<(), LabError> {
        let dir = self.baseline_dir();
        if dir.exists() && !overwrite {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let node = self.backend.control_plane();
        for component in CONTROL_PLANE_COMPONENTS {
            if let Some(bytes) = self.backend.read_file(&node, &manifest_path(component)).await? {
                let path = dir.join(format!("{component}.yaml"));
                std::fs::write(&path, bytes).map_err(io("writing the baseline", &path))?;
            }
        }
        Ok(())
    }

    /// Puts every changed control-plane manifest back as it was when the cluster came up.
    async fn restore_baseline(&self, progress: &dyn Progress) -> Result<(), LabError> {
        let dir = self.baseline_dir();
        if !dir.exists() {
            return self.record_baseline(false).await;
        }
        let node = self.backend.control_plane();
        // etcd first: the API server needs it.
        let mut order = CONTROL_PLANE_COMPONENTS;
        order.sort_by_key(|c| *c != "etcd");
        for component in order {
            let Ok(baseline) = std::fs::read(dir.join(format!("{component}.yaml"))) else { continue };
            let current = self.backend.read_file(&node, &manifest_path(component)).await?;
            if current.as_deref() == Some(baseline.as_slice()) {
                continue;
            }
            progress.step(&format!("restoring the original {component} manifest"));
            step::write_manifest_and_wait(self.backend.as_ref(), component, &String::from_utf8_lossy(&baseline), None)
                .await
                .map_err(|source| LabError::Restore { component, source: Box::new(source) })?;
        }
        Ok(())
    }

    fn active_path(&self) -> PathBuf {
        self.data_dir.join("active").join(format!("{}.json", self.backend.name()))
    }

    /// The scenario started last on this cluster and not undone since, as it was rendered.
    pub fn active(&self) -> Option<Rendered> {
        let text = std::fs::read_to_string(self.active_path()).ok()?;
        match Rendered::from_json(&text) {
            Ok(rendered) => Some(rendered),
            Err(e) => {
                tracing::warn!("ignoring the unreadable active-scenario record {}: {e}", self.active_path().display());
                None
            }
        }
    }

    fn set_active(&self, rendered: Option<&Rendered>) -> Result<(), LabError> {
        let path = self.active_path();
        match rendered {
            Some(rendered) => {
                let dir = path.parent().expect("has a parent");
                std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
                std::fs::write(&path, rendered.to_json()).map_err(io("writing", &path))
            }
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &path)(e)),
                _ => Ok(()),
            },
        }
    }

    /// An error when this backend lacks what `scenario` needs.
    pub fn require(&self, scenario: &Scenario) -> Result<(), LabError> {
        let missing = missing_capabilities(scenario, self.backend.as_ref());
        if missing.is_empty() {
            Ok(())
        } else {
            Err(LabError::Unsupported { scenario: scenario.id.clone(), backend: self.backend.name(), missing })
        }
    }

    /// Undoes a scenario: baseline manifests, then the scenario's cleanup.
    pub async fn undo(&self, rendered: &Rendered, progress: &dyn Progress) -> Result<(), LabError> {
        if rendered.scenario.cluster_version.is_some() {
            progress.step(&format!(
                "{} changed the cluster's version: making a fresh default cluster",
                rendered.scenario.id
            ));
            return self.recreate(None, progress).await;
        }
        let cleanup = &rendered.scenario.cleanup;
        let backend = self.backend.as_ref();
        // Clean up first with the learner's configuration still in force: objects written
        // under it (say, Secrets encrypted with their key) can only be read and deleted by it.
        // Restoring the original manifests first would leave the API server unable to list them.
        let api_up = match backend.client().await {
            Ok(client) => crate::backend::wait_api_healthy(&client, std::time::Duration::from_secs(2)).await.is_ok(),
            Err(_) => false,
        };
        // What the learner's encryption config covered is made plaintext while that config
        // (and the file it is in) is still there; cleanup may remove the file.
        let mut encrypted = Vec::new();
        if let Some(current) = backend.read_file(&backend.control_plane(), &manifest_path("kube-apiserver")).await? {
            let current = String::from_utf8_lossy(&current).into_owned();
            let baseline = std::fs::read_to_string(self.baseline_dir().join("kube-apiserver.yaml")).unwrap_or_default();
            encrypted = encryption::decrypt_before_restore(backend, &current, &baseline, api_up, progress).await?;
        }
        if api_up {
            step::run_steps("cleanup", cleanup, rendered, backend, progress).await?;
        }
        self.restore_baseline(progress).await?;
        if !encrypted.is_empty() {
            encryption::check_readable(&backend.client().await?, &encrypted).await?;
        }
        // Again, for what the API could not reach before (it was down) or the edit brought back.
        step::run_steps("cleanup", cleanup, rendered, backend, progress).await?;
        Ok(())
    }

    /// Back to the scenario's starting point: undo, then setup and break.
    /// When another scenario is active, it is undone first.
    pub async fn reset(&self, rendered: &Rendered, progress: &dyn Progress) -> Result<(), LabError> {
        self.require(&rendered.scenario)?;
        let wanted = rendered.scenario.cluster_version.as_deref();
        if let Some(version) = wanted {
            progress.step(&format!(
                "{} starts on Kubernetes {version}: a fresh cluster at that version",
                rendered.scenario.id
            ));
            self.recreate(Some(version), progress).await?;
        } else if let Some(version) = self.backend.created_at() {
            progress.step(&format!("the cluster was made at Kubernetes {version}: a fresh default cluster first"));
            self.recreate(None, progress).await?;
        } else {
            if let Some(previous) = self.active().filter(|p| p.scenario.id != rendered.scenario.id) {
                progress.step(&format!("undoing {} first", previous.scenario.id));
                self.undo(&previous, progress).await?;
                self.set_active(None)?;
            }
            self.undo(rendered, progress).await?;
        }
        // Recorded before setup: a setup that fails halfway is undone like a finished one.
        self.set_active(Some(rendered))?;
        let backend = self.backend.as_ref();
        step::run_steps("setup", &rendered.scenario.setup, rendered, backend, progress).await?;
        step::run_steps("break", &rendered.scenario.break_steps, rendered, backend, progress).await?;
        Ok(())
    }

    /// Applies solution `index` (0 is the reference) to the current state.
    pub async fn solve(&self, rendered: &Rendered, index: usize, progress: &dyn Progress) -> Result<(), LabError> {
        let solution = rendered.scenario.solutions.get(index).ok_or_else(|| LabError::NoSuchSolution {
            scenario: rendered.scenario.id.clone(),
            index,
            count: rendered.scenario.solutions.len(),
        })?;
        let phase = format!("solution {}", solution.name);
        step::run_steps(&phase, &solution.steps, rendered, self.backend.as_ref(), progress).await?;
        Ok(())
    }

    pub async fn grade(&self, rendered: &Rendered, on_verdict: impl FnMut(&Verdict)) -> Report {
        grade::grade(&rendered.scenario, self.backend.as_ref(), on_verdict).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_scenario_says_what_the_backend_lacks_and_where_to_go() {
        let err = LabError::Unsupported {
            scenario: "apparmor-profile".into(),
            backend: "local",
            missing: vec![Capability::Apparmor, Capability::PodExec],
        };
        assert_eq!(
            err.to_string(),
            "apparmor-profile cannot run here: the local backend lacks apparmor, pod-exec; \
             use the kind backend (Docker) for it"
        );
    }
}
