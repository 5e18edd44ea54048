//! Moving on to and from a scenario that starts on another Kubernetes version (the upgrade
//! lab): each start is a fresh cluster at that version, and whatever comes after it (another
//! scenario, an undo) is a fresh default cluster, since an upgrade cannot be undone. Against a
//! fake backend that records what it was asked to make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ckslab::backend::{
    Backend, BackendError, Capabilities, Capability, ClusterStatus, ExecOutput, FileStat, LogProgress, Progress,
    Result as BackendResult,
};
use ckslab::lab::Lab;
use ckslab::scenario::{Rendered, SourceScenario};

#[derive(Default)]
struct Versions {
    /// The version the cluster was last made at (`None`: default).
    created_at: Mutex<Option<String>>,
    /// Every recreate asked for, in order.
    recreated: Mutex<Vec<Option<String>>>,
    upgrade: bool,
}

#[async_trait]
impl Backend for Versions {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        let mut caps: Capabilities = [Capability::Api].into_iter().collect();
        if self.upgrade {
            caps.insert(Capability::KubernetesUpgrade);
        }
        caps
    }
    async fn up(&self, _progress: &dyn Progress) -> BackendResult<()> {
        Ok(())
    }
    async fn down(&self, _progress: &dyn Progress) -> BackendResult<()> {
        Ok(())
    }
    async fn status(&self) -> BackendResult<ClusterStatus> {
        Err(BackendError::NoCluster { backend: "fake".into() })
    }
    fn created_at(&self) -> Option<String> {
        self.created_at.lock().unwrap().clone()
    }
    async fn recreate(&self, version: Option<&str>, _progress: &dyn Progress) -> BackendResult<()> {
        self.recreated.lock().unwrap().push(version.map(String::from));
        *self.created_at.lock().unwrap() = version.map(String::from);
        Ok(())
    }
    fn kubeconfig_path(&self) -> PathBuf {
        PathBuf::from("/nonexistent/kubeconfig")
    }
    async fn client(&self) -> BackendResult<kube::Client> {
        Err(BackendError::NoCluster { backend: "fake".into() })
    }
    fn nodes(&self) -> Vec<String> {
        vec!["fake-control-plane".into()]
    }
    fn control_plane(&self) -> String {
        "fake-control-plane".into()
    }
    fn node_shell_hint(&self, node: &str) -> String {
        format!("ckslab node-shell {node}")
    }
    fn shell_command(&self, _node: &str, _command: Option<&str>) -> std::process::Command {
        std::process::Command::new("true")
    }
    async fn read_file(&self, _node: &str, _path: &Path) -> BackendResult<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn put_file(&self, _node: &str, _path: &Path, _contents: &[u8], _mode: u32) -> BackendResult<()> {
        Ok(())
    }
    async fn delete_file(&self, _node: &str, _path: &Path) -> BackendResult<()> {
        Ok(())
    }
    async fn stat_file(&self, _node: &str, _path: &Path) -> BackendResult<Option<FileStat>> {
        Ok(None)
    }
    async fn exec(&self, _node: &str, _argv: &[String]) -> BackendResult<ExecOutput> {
        Ok(ExecOutput { code: 0, stdout: String::new(), stderr: String::new() })
    }
    async fn etcd_get(&self, _key: &str) -> BackendResult<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn component_logs(&self, _component: &str, _lines: usize) -> BackendResult<String> {
        Ok(String::new())
    }
}

fn scenario(id: &str, extra: &str) -> Rendered {
    let text = format!(
        "id: {id}\ntitle: t\ndomain: cluster-hardening\ncompetencies: [upgrade]\ndifficulty: easy\nminutes: 1\n\
         {extra}\ntask: do it\nchecks: []\nsolutions: []\n"
    );
    let path = format!("{id}/scenario.yaml");
    let parsed = ckslab::scenario::load::parse(&path, &text).unwrap();
    let source = SourceScenario { path, text, files: BTreeMap::new(), scenario: parsed };
    source.render(&BTreeMap::new()).unwrap()
}

fn upgrade() -> Rendered {
    scenario(
        "upgrade",
        "requires: [api, kubernetes-upgrade]\nparams: {from: v1.33.13}\ncluster-version: \"{{ from }}\"",
    )
}

#[tokio::test]
async fn an_older_version_is_a_fresh_cluster_each_time_and_what_follows_is_a_fresh_default_one() {
    let home = tempfile::tempdir().unwrap();
    let backend = Arc::new(Versions { upgrade: true, ..Default::default() });
    let lab = Lab::new(backend.clone(), home.path());
    let plain = scenario("plain", "requires: [api]");

    lab.reset(&plain, &LogProgress).await.unwrap();
    assert!(backend.recreated.lock().unwrap().is_empty(), "a default scenario on a default cluster keeps it");

    let upgrade = upgrade();
    assert_eq!(upgrade.scenario.cluster_version.as_deref(), Some("v1.33.13"), "rendered from its params");
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    assert_eq!(lab.active().map(|a| a.scenario.id), Some("upgrade".into()));
    lab.reset(&plain, &LogProgress).await.unwrap();
    lab.reset(&plain, &LogProgress).await.unwrap();
    assert_eq!(
        *backend.recreated.lock().unwrap(),
        [Some("v1.33.13".into()), Some("v1.33.13".into()), None],
        "each start of the upgrade is fresh, the next scenario gets a default cluster once"
    );

    // Undoing it (as verify does when it is done) is a default cluster too.
    lab.reset(&upgrade, &LogProgress).await.unwrap();
    lab.undo(&upgrade, &LogProgress).await.unwrap();
    assert_eq!(backend.recreated.lock().unwrap().last(), Some(&None));
    assert_eq!(backend.created_at(), None);
}

#[tokio::test]
async fn a_backend_that_cannot_make_the_version_refuses_before_touching_the_cluster() {
    let home = tempfile::tempdir().unwrap();
    let backend = Arc::new(Versions::default());
    let lab = Lab::new(backend.clone(), home.path());
    let err = lab.reset(&upgrade(), &LogProgress).await.unwrap_err().to_string();
    assert!(err.contains("the fake backend lacks kubernetes-upgrade"), "{err}");
    assert!(backend.recreated.lock().unwrap().is_empty());
}
