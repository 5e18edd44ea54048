//! One fake backend for the tests that drive the library without a cluster (the web router, the
//! lab's version moves): node files in memory, a status that follows up/down, and every
//! `recreate` recorded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ckslab::backend::{
    Backend, BackendError, Capabilities, Capability, ClusterStatus, ComponentStatus, ExecOutput, FileStat, Progress,
    Result as BackendResult,
};

pub struct FakeBackend {
    pub files: Mutex<HashMap<PathBuf, (Vec<u8>, u32)>>,
    pub exists: AtomicBool,
    /// `up` waits for a permit, so a test can hold it to see the busy answer.
    pub up_gate: tokio::sync::Semaphore,
    pub kubeconfig: PathBuf,
    pub capabilities: Capabilities,
    /// The version the cluster was last made at (`None`: the default).
    pub created_at: Mutex<Option<String>>,
    /// Every recreate asked for, in order.
    pub recreated: Mutex<Vec<Option<String>>>,
}

impl FakeBackend {
    /// A cluster that exists, with the API, control-plane files and kubelet config.
    pub fn new(kubeconfig: PathBuf) -> Self {
        FakeBackend {
            files: Mutex::new(HashMap::new()),
            exists: AtomicBool::new(true),
            up_gate: tokio::sync::Semaphore::new(0),
            kubeconfig,
            capabilities: [Capability::Api, Capability::ControlPlaneFiles, Capability::KubeletConfig]
                .into_iter()
                .collect(),
            created_at: Mutex::new(None),
            recreated: Mutex::new(Vec::new()),
        }
    }

    pub fn with_capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn shell_command(&self, _node: &str, command: Option<&str>) -> std::process::Command {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", command.unwrap_or("exit 0")]);
        cmd
    }

    fn name(&self) -> &'static str {
        "fake"
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }
    async fn up(&self, progress: &dyn Progress) -> BackendResult<()> {
        progress.step("starting the fake control plane");
        let _permit = self.up_gate.acquire().await.map_err(|_| BackendError::NoCluster { backend: "fake".into() })?;
        self.exists.store(true, Ordering::SeqCst);
        progress.step("fake cluster ready");
        Ok(())
    }
    async fn down(&self, progress: &dyn Progress) -> BackendResult<()> {
        progress.step("deleting the fake cluster");
        self.exists.store(false, Ordering::SeqCst);
        Ok(())
    }
    async fn status(&self) -> BackendResult<ClusterStatus> {
        let exists = self.exists.load(Ordering::SeqCst);
        Ok(ClusterStatus {
            backend: "fake".into(),
            exists,
            api_healthy: exists,
            kubeconfig: exists.then(|| self.kubeconfig.clone()),
            nodes: if exists { self.nodes() } else { vec![] },
            components: if exists {
                vec![
                    ComponentStatus { name: "kube-apiserver".into(), running: true, detail: None },
                    ComponentStatus {
                        name: "etcd".into(),
                        running: false,
                        detail: Some("exited: <boom> & gone".into()),
                    },
                ]
            } else {
                vec![]
            },
        })
    }
    fn created_at(&self) -> Option<String> {
        self.created_at.lock().unwrap().clone()
    }
    async fn recreate(&self, version: Option<&str>, _progress: &dyn Progress) -> BackendResult<()> {
        self.recreated.lock().unwrap().push(version.map(String::from));
        *self.created_at.lock().unwrap() = version.map(String::from);
        self.exists.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig.clone()
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
    async fn read_file(&self, _node: &str, path: &Path) -> BackendResult<Option<Vec<u8>>> {
        Ok(self.files.lock().unwrap().get(path).map(|(bytes, _)| bytes.clone()))
    }
    async fn put_file(&self, _node: &str, path: &Path, contents: &[u8], mode: u32) -> BackendResult<()> {
        self.files.lock().unwrap().insert(path.to_path_buf(), (contents.to_vec(), mode));
        Ok(())
    }
    async fn delete_file(&self, _node: &str, path: &Path) -> BackendResult<()> {
        self.files.lock().unwrap().remove(path);
        Ok(())
    }
    async fn stat_file(&self, _node: &str, path: &Path) -> BackendResult<Option<FileStat>> {
        if path.to_string_lossy().contains("slow") {
            // A check that takes a while: its verdict must arrive after the others.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        Ok(self.files.lock().unwrap().get(path).map(|(_, mode)| FileStat {
            mode: *mode,
            uid: 0,
            gid: 0,
            is_dir: false,
        }))
    }
    async fn exec(&self, _node: &str, _argv: &[String]) -> BackendResult<ExecOutput> {
        Ok(ExecOutput::default())
    }
    async fn etcd_get(&self, _key: &str) -> BackendResult<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn component_logs(&self, _component: &str, _lines: usize) -> BackendResult<String> {
        Ok(String::new())
    }
}
