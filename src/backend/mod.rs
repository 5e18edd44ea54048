//! Cluster access behind one small trait, so every scenario step and check runs unchanged on
//! kind (Docker) and on the local backend (control plane as processes).

pub mod kind;
pub mod local;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a backend can offer. A scenario's `requires` lists these; a backend that lacks one
/// cannot run the scenario, and `doctor`/the catalog say so up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The Kubernetes API.
    Api,
    /// Static pod manifests and PKI under /etc/kubernetes on the control-plane node.
    ControlPlaneFiles,
    /// Raw reads of etcd keys.
    Etcd,
    /// Pods reach Running (real or simulated containers).
    RunningPods,
    /// Containers really run, so commands can be executed inside them.
    PodExec,
    /// A CNI that enforces NetworkPolicy.
    NetworkPolicy,
    /// AppArmor on the nodes.
    Apparmor,
    /// A seccomp-capable container runtime.
    Seccomp,
    /// A sandboxed runtime handler (gVisor runsc) on the nodes.
    SandboxRuntime,
    /// The kubelet's config file on the nodes.
    KubeletConfig,
    /// A real node operating system: systemd units, Debian packages, a packet filter, every
    /// container's processes visible from the node (kind's nodes; the local backend's node is a
    /// filesystem view only).
    NodeOs,
    /// A fresh cluster at the Kubernetes version before the default one, on nodes that carry
    /// the default version's packages and images: an upgrade the learner does with kubeadm.
    /// kind has it where the upgrade node image is in the cache (scripts/build-kind-node.sh
    /// --upgrade-from); recreating a cluster of processes at another version is not offered.
    KubernetesUpgrade,
}

impl Capability {
    pub const ALL: [Capability; 12] = [
        Capability::Api,
        Capability::ControlPlaneFiles,
        Capability::Etcd,
        Capability::RunningPods,
        Capability::PodExec,
        Capability::NetworkPolicy,
        Capability::Apparmor,
        Capability::Seccomp,
        Capability::SandboxRuntime,
        Capability::KubeletConfig,
        Capability::NodeOs,
        Capability::KubernetesUpgrade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Api => "api",
            Capability::ControlPlaneFiles => "control-plane-files",
            Capability::Etcd => "etcd",
            Capability::RunningPods => "running-pods",
            Capability::PodExec => "pod-exec",
            Capability::NetworkPolicy => "network-policy",
            Capability::Apparmor => "apparmor",
            Capability::Seccomp => "seccomp",
            Capability::SandboxRuntime => "sandbox-runtime",
            Capability::KubeletConfig => "kubelet-config",
            Capability::NodeOs => "node-os",
            Capability::KubernetesUpgrade => "kubernetes-upgrade",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Capabilities = BTreeSet<Capability>;

/// The control-plane components, each a static pod with a manifest in
/// `/etc/kubernetes/manifests` on the control-plane node, as kubeadm makes them.
pub const CONTROL_PLANE_COMPONENTS: [&str; 4] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"];

/// Where `install-tool` puts tools on a node: on PATH on a kubeadm node and in the local
/// backend's node view.
pub const NODE_TOOLS_BIN: &str = "/usr/local/bin";

/// What a learner reads when a backend lacks what a scenario or a check needs: "the local
/// backend lacks apparmor, pod-exec". The one wording for the CLI, the web UI, verify and the lab.
pub fn lacks_message(backend: &str, missing: &[Capability]) -> String {
    let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
    format!("the {backend} backend lacks {}", names.join(", "))
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A tool the backend drives is not installed. `fix` says how to get it.
    #[error("{tool} is not available: {detail}\n  fix: {fix}")]
    MissingTool { tool: String, detail: String, fix: String },
    #[error("no ckslab cluster is running on the {backend} backend\n  fix: run `ckslab up --backend {backend}`")]
    NoCluster { backend: String },
    #[error("no node named {0:?}")]
    UnknownNode(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("{action} {}: {source}", path.display())]
    Kubeconfig {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("etcdctl output is not JSON: {0}")]
    EtcdctlJson(#[source] serde_json::Error),
    #[error("etcdctl value is not base64: {0}")]
    EtcdctlBase64(#[source] base64::DecodeError),
    #[error("the API server did not become healthy within {secs}s{detail}")]
    NotHealthy {
        secs: u64,
        /// Empty, or a newline and what is down.
        detail: String,
    },
    #[error("node paths must be absolute, got {}", .0.display())]
    RelativeNodePath(PathBuf),
    #[error("node path {} climbs above the node's /", .0.display())]
    NodePathEscapes(PathBuf),
    #[error("exec needs a command")]
    EmptyCommand,
    #[error("etcdctl get {key} failed: {stderr}")]
    EtcdctlFailed { key: String, stderr: String },
    #[error("no etcd container on the control-plane node")]
    NoEtcdContainer,
    #[error("the {backend} backend cannot create a cluster at Kubernetes {version}\n  fix: {fix}")]
    NoSuchVersion { backend: String, version: String, fix: String },
    #[error(
        "port {port} on 127.0.0.1 is in use, and the local cluster needs it (6443, 2379-2381, 10257, 10259)\n  \
             fix: stop what listens there (another ckslab cluster? `ckslab down`), e.g. find it with `ss -ltnp`"
    )]
    PortInUse { port: u16 },
    #[error("{} exists but ckslab did not create it (no .ckslab-cluster marker); refusing to use it", .0.display())]
    NotOursToUse(PathBuf),
    #[error("{} has no .ckslab-cluster marker, so ckslab did not create it; not deleting it", .0.display())]
    NotOursToDelete(PathBuf),
    #[error("{what}: {source}")]
    Pki {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A command ckslab ran (docker, kind, one on a node) exited non-zero.
    #[error("`{command}` failed ({code}): {stderr}")]
    CommandFailed { command: String, code: i32, stderr: String },
    #[error("the kind cluster config: {0}")]
    KindConfig(String),
    #[error(
        "no kind cluster created by ckslab is recorded in {}; ckslab deletes only clusters it created",
        .0.display()
    )]
    NoClusterOfOurs(PathBuf),
    #[error(
        "the node image {0} is not in this Docker engine\n  fix: scripts/build-kind-node.sh builds it offline (or loads it from its cache) and prints the reference to pass"
    )]
    NodeImageMissing(String),
    #[error(
        "kind create cluster failed ({code}); {cleanup}\n  kind said:\n{kind_said}\n  kubelet journal on {node}:\n{kubelet}"
    )]
    KindCreateFailed { code: i32, cleanup: String, kind_said: String, node: String, kubelet: String },
    /// Something the backend waits for did not happen; `then` is empty or says where to look.
    #[error("{what} within {secs}s{then}")]
    Timeout { what: String, secs: u64, then: String },
    #[error("processes of this cluster are still running (a node shell?): {}", .0.join("; "))]
    ProcessesLeft(Vec<String>),
    #[error(
        "the local supervisor exited; its log ({}) ends with:\n{tail}\n  (it runs `{exe} {command} --cluster-dir DIR`; set {env} to use another executable)",
        log.display()
    )]
    SupervisorExited { log: PathBuf, tail: String, exe: String, command: &'static str, env: &'static str },
    #[error(
        "the local cluster is running but its API server is not healthy\n{report}\n  fix: see `ckslab status`, repair the manifest, or `ckslab down` and `ckslab up` again"
    )]
    RunningButUnhealthy { report: String },
    #[error("applying the NetworkPolicy enforcer: {0}")]
    NetpolManifest(#[source] Box<crate::step::StepFailure>),
}

impl BackendError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BackendError::Io { what: what.into(), source }
    }
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// The result of running a command on a node or in a pod.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// What `stat` tells about a node file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileStat {
    /// Permission bits, e.g. 0o600.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub is_dir: bool,
}

/// State of one control-plane component (a static pod).
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub running: bool,
    /// Why it is down, when it is: the manifest error or the process's last log lines.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub backend: String,
    pub exists: bool,
    pub api_healthy: bool,
    pub kubeconfig: Option<PathBuf>,
    pub nodes: Vec<String>,
    pub components: Vec<ComponentStatus>,
}

/// Progress reports for long operations (`up`, builds). The CLI shows them with indicatif,
/// the web UI streams them.
pub trait Progress: Send + Sync {
    fn step(&self, message: &str);
}

/// A progress sink that only logs.
pub struct LogProgress;

impl Progress for LogProgress {
    fn step(&self, message: &str) {
        tracing::info!("{message}");
    }
}

/// One lab cluster. Node names are the backend's (kind: `ckslab-control-plane`); the
/// control-plane node is `control_plane()`. Paths on nodes are absolute node paths
/// (`/etc/kubernetes/manifests/kube-apiserver.yaml`), exactly as on a kubeadm node.
#[async_trait]
pub trait Backend: Send + Sync {
    /// `kind` or `local`.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;

    /// Create the cluster (idempotent: an existing healthy cluster is kept).
    async fn up(&self, progress: &dyn Progress) -> Result<()>;
    /// Delete the cluster. Only ever a cluster this backend created.
    async fn down(&self, progress: &dyn Progress) -> Result<()>;
    async fn status(&self) -> Result<ClusterStatus>;
    /// Whether the lab cluster exists (a grade made without one is no attempt).
    async fn has_cluster(&self) -> bool {
        self.status().await.is_ok_and(|s| s.exists)
    }
    /// The Kubernetes version the cluster was created at, when a scenario asked for one other
    /// than the default ([`Backend::recreate`]); `None` for a default cluster or none at all.
    fn created_at(&self) -> Option<String> {
        None
    }
    /// Deletes ckslab's cluster (when there is one) and creates a fresh one at `version`, or
    /// at the default version with `None`. The one way back from an upgrade.
    async fn recreate(&self, version: Option<&str>, _progress: &dyn Progress) -> Result<()> {
        Err(BackendError::NoSuchVersion {
            backend: self.name().into(),
            version: version.unwrap_or("its default").into(),
            fix: "use the kind backend (Docker) for scenarios that start on another version".into(),
        })
    }

    /// The kubeconfig a learner (and kubectl) uses to reach the cluster.
    fn kubeconfig_path(&self) -> PathBuf;
    /// A client with cluster-admin rights.
    async fn client(&self) -> Result<kube::Client>;
    fn nodes(&self) -> Vec<String>;
    fn control_plane(&self) -> String;
    /// How a learner gets a shell with the node's view of its files.
    fn node_shell_hint(&self, node: &str) -> String;
    /// The process that gives that shell: interactive with no `command`, else runs `command`
    /// (one shell command line) there and exits with its status.
    fn shell_command(&self, node: &str, command: Option<&str>) -> std::process::Command;

    /// `None` when the file does not exist.
    async fn read_file(&self, node: &str, path: &Path) -> Result<Option<Vec<u8>>>;
    /// Writes (creating parent folders) and sets the mode, with no backup: callers use
    /// [`Backend::write_file`], which backs up first.
    async fn put_file(&self, node: &str, path: &Path, contents: &[u8], mode: u32) -> Result<()>;
    /// Removes a file, with no backup; a missing file is not an error. Callers use
    /// [`Backend::remove_file`].
    async fn delete_file(&self, node: &str, path: &Path) -> Result<()>;

    /// Where backups of node files go, per node and node path.
    fn backups_dir(&self) -> PathBuf {
        self.state_dir().join("backups")
    }

    /// Writes a node file; what was there before (if it differs) is backed up first. The one
    /// place every change ckslab makes to a node file goes through, on every backend.
    async fn write_file(&self, node: &str, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        if let Some(old) = self.read_file(node, path).await?
            && old != contents
        {
            crate::backup::save(&self.backups_dir(), node, path, &old)?;
        }
        self.put_file(node, path, contents, mode).await
    }

    /// Removes a node file after backing it up; a missing file is not an error.
    async fn remove_file(&self, node: &str, path: &Path) -> Result<()> {
        if let Some(old) = self.read_file(node, path).await? {
            crate::backup::save(&self.backups_dir(), node, path, &old)?;
        }
        self.delete_file(node, path).await
    }
    async fn stat_file(&self, node: &str, path: &Path) -> Result<Option<FileStat>>;
    /// When a node file last changed (`None` when it does not exist or the backend cannot
    /// tell): grading uses it to tell a state that may still be moving from a settled one.
    async fn modified(&self, _node: &str, _path: &Path) -> Result<Option<std::time::SystemTime>> {
        Ok(None)
    }
    /// The names in a node folder (hidden ones included), unsorted; `None` when the folder
    /// does not exist. By default through `find` on the node, NUL-separated so any name is safe.
    async fn list_dir(&self, node: &str, path: &Path) -> Result<Option<Vec<String>>> {
        let script = "[ -d \"$1\" ] || exit 3; find \"$1\" -mindepth 1 -maxdepth 1 -printf '%f\\0'";
        let argv: Vec<String> =
            ["sh", "-c", script, "sh"].map(String::from).into_iter().chain([path.display().to_string()]).collect();
        let out = self.exec(node, &argv).await?;
        match out.code {
            0 => Ok(Some(out.stdout.split('\0').filter(|n| !n.is_empty()).map(String::from).collect())),
            3 => Ok(None),
            code => Err(BackendError::CommandFailed {
                command: format!("listing {node}:{}", path.display()),
                code,
                stderr: out.stderr.trim().into(),
            }),
        }
    }
    /// Puts a binary of this machine (a tool scripts/build-tools.sh built) on the node's PATH
    /// as `/usr/local/bin/<name>`. The file is ckslab's own, not the learner's: no backup.
    async fn install_tool(&self, node: &str, name: &str, binary: &Path) -> Result<()> {
        let bytes =
            tokio::fs::read(binary).await.map_err(|e| BackendError::io(format!("reading {}", binary.display()), e))?;
        self.put_file(node, &Path::new(NODE_TOOLS_BIN).join(name), &bytes, 0o755).await
    }
    /// Runs `argv` on the node, with the node's filesystem view.
    async fn exec(&self, node: &str, argv: &[String]) -> Result<ExecOutput>;

    /// The raw bytes etcd stores under `key` (e.g. `/registry/secrets/ns/name`).
    async fn etcd_get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// The last `lines` lines a control-plane component logged (why it is down).
    async fn component_logs(&self, component: &str, lines: usize) -> Result<String>;

    /// The address at which the API server reaches services ckslab runs on this machine
    /// (webhook backends), and the address those services listen on.
    fn host_address(&self) -> (String, String) {
        ("127.0.0.1".into(), "127.0.0.1".into())
    }

    /// How long a control-plane manifest edit may take to stop the old component: the kubelet
    /// on a kubeadm node looks at its manifests folder every 20 s.
    fn manifest_restart_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(40)
    }

    /// Where ckslab keeps this cluster's own files (pid files of webhooks it started).
    fn state_dir(&self) -> PathBuf {
        self.kubeconfig_path().parent().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir)
    }
}

pub type SharedBackend = Arc<dyn Backend>;

/// Which backend to use, from `--backend` or detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Kind,
    Local,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Kind => "kind",
            BackendKind::Local => "local",
        }
    }
}

/// The best backend this machine offers: kind where a Docker engine answers, else local.
pub async fn detect() -> BackendKind {
    if kind::docker_engine_available().await { BackendKind::Kind } else { BackendKind::Local }
}

/// The backend for commands run against `data_dir`: the one whose cluster is there when only
/// one is, so `grade` and `reset` act on the lab the learner made (and skip the Docker probe);
/// else the best one this machine offers.
pub async fn detect_for(data_dir: &Path) -> BackendKind {
    let kind = kind::KindBackend::new(data_dir).created_by_us();
    let local = local::LocalBackend::new(data_dir).created_by_us();
    match (kind, local) {
        (true, false) => BackendKind::Kind,
        (false, true) => BackendKind::Local,
        _ => detect().await,
    }
}

/// Where ckslab keeps clusters, history and backups (`$CKSLAB_HOME`, else the user data dir).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CKSLAB_HOME") {
        return PathBuf::from(dir);
    }
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("ckslab")
}

/// Opens the backend of the given kind for the cluster under `data_dir`.
pub fn open(kind: BackendKind, data_dir: &Path) -> SharedBackend {
    match kind {
        BackendKind::Kind => Arc::new(kind::KindBackend::new(data_dir)),
        BackendKind::Local => Arc::new(local::LocalBackend::new(data_dir)),
    }
}

/// Poll `/readyz` until the API answers or `timeout` passes.
pub async fn wait_api_healthy(client: &kube::Client, timeout: std::time::Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let req = http::Request::get("/readyz").body(Vec::new()).expect("static request");
        let attempt = tokio::time::timeout(std::time::Duration::from_secs(2), client.request_text(req)).await;
        match attempt {
            Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(BackendError::NotHealthy { secs: timeout.as_secs(), detail: String::new() });
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// A cluster-admin client from a kubeconfig file; a missing file means no cluster is up. The one
/// way every backend builds its clients.
pub async fn client_from_kubeconfig(path: &Path, backend: &str) -> Result<kube::Client> {
    Ok(kube::Client::try_from(config_from_kubeconfig(path, backend).await?)?)
}

/// How long connecting to the API server may take, and how long a read may wait for an answer:
/// a hung API server must turn into an error verdict, not a stuck grade.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The client configuration [`client_from_kubeconfig`] uses, with its timeouts.
pub async fn config_from_kubeconfig(path: &Path, backend: &str) -> Result<kube::Config> {
    if !path.exists() {
        return Err(BackendError::NoCluster { backend: backend.to_string() });
    }
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| BackendError::Kubeconfig {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|source| BackendError::Kubeconfig { action: "using", path: path.to_path_buf(), source })?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    Ok(config)
}

/// The raw value of the first kv in `etcdctl get -w json` output; `None` when there is none.
pub fn parse_etcdctl_json(output: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
    use base64::Engine;
    let json: serde_json::Value = serde_json::from_slice(output.as_ref()).map_err(BackendError::EtcdctlJson)?;
    let Some(value) = json["kvs"].get(0).and_then(|kv| kv["value"].as_str()) else { return Ok(None) };
    base64::engine::general_purpose::STANDARD.decode(value).map(Some).map_err(BackendError::EtcdctlBase64)
}

/// One client per kubeconfig file, reused while the file is unchanged: every check asks for a
/// client, and a fresh one costs a TLS handshake. A recreated cluster rewrites the file, which
/// retires the old client.
#[derive(Default)]
pub struct ClientCache(std::sync::Mutex<Option<(std::time::SystemTime, u64, kube::Client)>>);

impl ClientCache {
    pub async fn get_or_build<F, Fut>(&self, path: &Path, build: F) -> Result<kube::Client>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<kube::Client>>,
    {
        let stamp = std::fs::metadata(path).ok().map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()));
        if let (Some((modified, len)), Some((cached_modified, cached_len, client))) =
            (stamp, self.0.lock().expect("client cache lock").as_ref())
            && modified == *cached_modified
            && len == *cached_len
        {
            return Ok(client.clone());
        }
        let client = build().await?;
        if let Some((modified, len)) = stamp {
            *self.0.lock().expect("client cache lock") = Some((modified, len, client.clone()));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcdctl_json_decodes_the_first_value_or_none_and_says_what_is_wrong() {
        let json = r#"{"header":{},"kvs":[{"key":"L3I=","value":"azhzOmVuYzphZXNjYmM6djE6"}],"count":1}"#;
        assert_eq!(parse_etcdctl_json(json).unwrap().unwrap(), b"k8s:enc:aescbc:v1:");
        assert_eq!(parse_etcdctl_json(json.as_bytes()).unwrap().unwrap(), b"k8s:enc:aescbc:v1:");
        assert_eq!(parse_etcdctl_json(r#"{"header":{}}"#).unwrap(), None);
        let not_json = parse_etcdctl_json("Error: context deadline exceeded").unwrap_err();
        assert!(matches!(not_json, BackendError::EtcdctlJson(_)), "{not_json:?}");
        assert!(not_json.to_string().starts_with("etcdctl output is not JSON: "), "{not_json}");
        let not_base64 = parse_etcdctl_json(r#"{"kvs":[{"value":"%%%"}]}"#).unwrap_err();
        assert!(not_base64.to_string().starts_with("etcdctl value is not base64: "), "{not_base64}");
        assert!(std::error::Error::source(&not_base64).is_some());
    }

    const KUBECONFIG: &str = "apiVersion: v1
clusters:
- cluster: {server: 'https://127.0.0.1:1'}
  name: c
contexts:
- context: {cluster: c, user: u}
  name: c
current-context: c
kind: Config
users:
- name: u
  user: {token: t}
";

    #[tokio::test]
    async fn every_backend_client_has_the_connect_and_read_deadlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let config = config_from_kubeconfig(&path, "local").await.unwrap();
        assert_eq!(config.connect_timeout, Some(std::time::Duration::from_secs(3)));
        assert_eq!(config.read_timeout, Some(std::time::Duration::from_secs(15)));
        // The local backend's client (and its super-admin client) are built by it.
        let local = local::LocalBackend::new(dir.path());
        assert!(matches!(local.client().await, Err(BackendError::NoCluster { .. })));
        let missing = config_from_kubeconfig(&dir.path().join("nope"), "local").await.unwrap_err();
        assert!(missing.to_string().contains("ckslab up --backend local"), "{missing}");
        std::fs::write(&path, "{not: [a kubeconfig").unwrap();
        let bad = config_from_kubeconfig(&path, "kind").await.unwrap_err();
        assert!(bad.to_string().starts_with(&format!("reading {}: ", path.display())), "{bad}");
    }

    #[test]
    fn manifest_edits_wait_for_the_backend_s_own_restart_window() {
        let home = tempfile::tempdir().unwrap();
        let local = local::LocalBackend::new(home.path());
        let kind = kind::KindBackend::new(home.path());
        assert_eq!(local.manifest_restart_window(), std::time::Duration::from_secs(5));
        assert_eq!(kind.manifest_restart_window(), std::time::Duration::from_secs(40));
    }

    #[test]
    fn typed_errors_say_what_they_said_as_strings() {
        let busy = BackendError::PortInUse { port: 6443 };
        assert!(
            busy.to_string().starts_with("port 6443 on 127.0.0.1 is in use, and the local cluster needs it"),
            "{busy}"
        );
        assert!(busy.to_string().contains("\n  fix: stop what listens there"), "{busy}");
        let slow = BackendError::NotHealthy { secs: 5, detail: "\netcd: down".into() };
        assert_eq!(slow.to_string(), "the API server did not become healthy within 5s\netcd: down");
        let pki = BackendError::Pki { what: "generating the PKI", source: anyhow::anyhow!("no entropy").into() };
        assert_eq!(pki.to_string(), "generating the PKI: no entropy");
        assert!(std::error::Error::source(&pki).is_some());
        let etcd = BackendError::EtcdctlFailed { key: "/registry/x".into(), stderr: "deadline".into() };
        assert_eq!(etcd.to_string(), "etcdctl get /registry/x failed: deadline");
    }

    #[test]
    fn a_missing_capability_is_said_one_way() {
        assert_eq!(
            lacks_message("local", &[Capability::Apparmor, Capability::PodExec]),
            "the local backend lacks apparmor, pod-exec"
        );
    }

    #[tokio::test]
    async fn commands_follow_the_cluster_the_data_dir_holds() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("local")).unwrap();
        std::fs::write(local::LocalBackend::new(home.path()).cluster_dir().join(".ckslab-cluster"), "").unwrap();
        assert_eq!(detect_for(home.path()).await, BackendKind::Local);

        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("kind")).unwrap();
        std::fs::write(home.path().join("kind/.created-by-ckslab"), "ckslab").unwrap();
        assert_eq!(detect_for(home.path()).await, BackendKind::Kind);
    }
}
