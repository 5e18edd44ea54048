//! The local backend: a real control plane run as processes under a node root folder.
//!
//! `data_dir/local/` holds two node roots (`nodes/ckslab-control-plane`, `nodes/ckslab-worker`),
//! each a folder that plays a node's `/` with the files `kubeadm` would have written (PKI, static
//! pod manifests, kubeconfigs, kubelet config). A detached supervisor process
//! ([`supervisor::run_supervisor`], the hidden `ckslab __local-supervisor --cluster-dir DIR`)
//! plays the kubelet: it runs each static pod under bubblewrap with only its hostPath volumes, so
//! a manifest edit behaves as on a kubeadm node. kwok makes the two Node objects Ready and pods
//! Running; containers do not really run, so there is no pod exec, CNI, AppArmor or seccomp.
//!
//! The cluster listens on 127.0.0.1 ports 6443, 2379-2381, 10257 and 10259, so one local cluster
//! runs per machine.

mod bootstrap;
pub mod bwrap;
mod kubeconfig;
mod manifests;
pub mod paths;
mod pki;
mod pod;
mod procs;
pub mod supervisor;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

use self::paths::{CONTROL_PLANE, ClusterPaths, NODES, WORKER};
use self::pki::NodeFile;
pub use self::supervisor::{ComponentState, SupervisorStatus, run_supervisor};
use crate::backend::{
    Backend, BackendError, Capabilities, Capability, ClusterStatus, ComponentStatus, ExecOutput, FileStat, Progress,
    Result, wait_api_healthy,
};

/// The hidden CLI subcommand `up` runs (detached) to start the supervisor.
pub const SUPERVISOR_SUBCOMMAND: &str = "__local-supervisor";
/// Overrides the executable `up` runs as the supervisor (default: the current executable).
pub const EXE_ENV: &str = "CKSLAB_EXE";

const API_TIMEOUT: Duration = Duration::from_secs(90);
/// The control-plane ports; `up` refuses to start when one is taken by something else.
const PORTS: [u16; 6] = [6443, 2379, 2380, 2381, 10257, 10259];

pub struct LocalBackend {
    paths: ClusterPaths,
    supervisor_exe: Option<PathBuf>,
    owner_pid: Option<u32>,
    clients: super::ClientCache,
}

impl LocalBackend {
    pub fn new(data_dir: &Path) -> Self {
        LocalBackend {
            paths: ClusterPaths::new(data_dir.join("local")),
            supervisor_exe: None,
            owner_pid: None,
            clients: super::ClientCache::default(),
        }
    }

    /// The executable `up` runs as `EXE __local-supervisor --cluster-dir DIR` (default: `$CKSLAB_EXE`,
    /// else the current executable).
    pub fn with_supervisor_exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.supervisor_exe = Some(exe.into());
        self
    }

    /// Ties a cluster started by `up` to process `pid`: the supervisor stops the cluster when that
    /// process exits (tests use it so no cluster outlives `cargo test`).
    pub fn with_owner_pid(mut self, pid: u32) -> Self {
        self.owner_pid = Some(pid);
        self
    }

    /// `data_dir/local`.
    /// True when this data dir holds a local cluster that ckslab created (running or not).
    pub fn created_by_us(&self) -> bool {
        self.paths.marker().exists()
    }

    pub fn cluster_dir(&self) -> &Path {
        &self.paths.dir
    }

    /// A node's root folder on the host.
    pub fn node_root(&self, node: &str) -> Result<PathBuf> {
        paths::known_node(node)?;
        Ok(self.paths.node_root(node))
    }

    /// An interactive shell with the node's view (`ckslab node-shell <node>`): the node's
    /// /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd and /var/log writable, the host's system
    /// folders and /etc read-only, the cluster binaries (kubectl, etcdctl, ...) on PATH and, on the
    /// control plane, KUBECONFIG=/etc/kubernetes/admin.conf. Check [`paths::check_tools`] first
    /// for a friendly error when bwrap is missing.
    fn node_shell(&self, node: &str, command: Option<&str>) -> std::process::Command {
        let root = self.paths.node_root(node);
        let shell = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" };
        let mut cmd = std::process::Command::new(paths::bwrap_path().unwrap_or_else(|_| PathBuf::from("bwrap")));
        cmd.args(bwrap::node_args(&crate::tools::bin_dir(), &root, node)).arg("--").arg(shell);
        match command {
            Some(line) => cmd.args(["-c", line]),
            None => cmd.arg("-i"),
        };
        cmd
    }

    /// The supervisor's last report (`local/status.json`), if any.
    pub fn supervisor_status(&self) -> Option<SupervisorStatus> {
        let text = std::fs::read_to_string(self.paths.status()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until the supervisor has acted on the current contents of `component`'s manifest
    /// (started it, or found it broken), and returns that state. Use after editing a manifest,
    /// before waiting for the API: the old process may still answer for up to ~300 ms.
    pub async fn wait_component_synced(&self, component: &str, timeout: Duration) -> Result<ComponentState> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(state) = self.synced_state(component) {
                return Ok(state);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::Timeout {
                    what: format!("the local supervisor did not pick up the {component} manifest"),
                    secs: timeout.as_secs(),
                    then: String::new(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn synced_state(&self, component: &str) -> Option<ComponentState> {
        let status = self.supervisor_status()?;
        status.components.into_values().find(|s| {
            s.name == component
                && s.manifest.as_ref().is_some_and(|file| {
                    std::fs::read(self.paths.manifests_dir().join(file))
                        // The status may carry a "+api<n>" restart epoch after the hash.
                        .is_ok_and(|b| {
                            s.manifest_sha256.as_deref().and_then(|h| h.split('+').next())
                                == Some(supervisor::sha256_hex(&b).as_str())
                        })
                })
        })
    }

    fn needle(&self) -> String {
        std::fs::canonicalize(&self.paths.dir)
            .or_else(|_| std::path::absolute(&self.paths.dir))
            .unwrap_or_else(|_| self.paths.dir.clone())
            .to_string_lossy()
            .into_owned()
    }

    fn exists(&self) -> bool {
        self.paths.marker().is_file() && self.paths.node_root(CONTROL_PLANE).is_dir()
    }

    /// The supervisor's pid when its pid file names a live supervisor of this cluster.
    fn running_supervisor(&self) -> Option<i32> {
        let pid = procs::read_pid_file(&self.paths.supervisor_pid())?;
        let needle = self.needle();
        let argv = procs::cmdline(pid)?;
        (procs::alive(pid)
            && argv.iter().any(|a| a == SUPERVISOR_SUBCOMMAND)
            && argv.iter().any(|a| a.contains(&needle)))
        .then_some(pid)
    }

    fn super_admin_kubeconfig(&self) -> PathBuf {
        self.paths.cp_file("/etc/kubernetes/super-admin.conf")
    }

    /// Stops the supervisor and every child recorded in `local/pids`, then checks that no
    /// process of ours is left.
    async fn stop_processes(&self) -> Result<()> {
        let needle = self.needle();
        if let Some(pid) = self.running_supervisor() {
            procs::signal(pid, nix::sys::signal::Signal::SIGTERM);
            if !procs::wait_gone(pid, Duration::from_secs(40)).await {
                tracing::warn!(pid, "the supervisor did not stop; killing it");
                procs::signal(pid, nix::sys::signal::Signal::SIGKILL);
                procs::wait_gone(pid, Duration::from_secs(5)).await;
            }
        }
        let _ = std::fs::remove_file(self.paths.supervisor_pid());
        if let Ok(rd) = std::fs::read_dir(self.paths.pids_dir()) {
            for e in rd.flatten() {
                if let Some(pid) = procs::read_pid_file(&e.path())
                    && procs::alive_and_ours(pid, &needle)
                {
                    tracing::info!(pid, file = %e.path().display(), "stopping a leftover process");
                    procs::stop_group(pid, Duration::from_secs(10)).await;
                }
                let _ = std::fs::remove_file(e.path());
            }
        }
        let left: Vec<String> = procs::find_mentioning(&needle)
            .into_iter()
            .filter_map(|pid| {
                let argv = procs::cmdline(pid)?;
                let prog = Path::new(argv.first()?).file_name()?.to_string_lossy().into_owned();
                (prog == "bwrap" || prog == "kwok" || argv.iter().any(|a| a == SUPERVISOR_SUBCOMMAND))
                    .then(|| format!("{pid} ({})", argv.join(" ").chars().take(120).collect::<String>()))
            })
            .collect();
        if !left.is_empty() {
            return Err(BackendError::ProcessesLeft(left));
        }
        Ok(())
    }

    fn write_node_roots(&self) -> Result<()> {
        let io = |what: &str, e| BackendError::io(what.to_string(), e);
        let nodes = self.paths.nodes_dir();
        // Built aside and renamed into place, so an interrupted `up` never leaves half a node
        // that a later `up` would take as the learner's.
        let partial = self.paths.dir.join("nodes.partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| io("removing nodes.partial", e))?;
        }
        let pki = pki::generate().map_err(|e| BackendError::Pki { what: "generating the PKI", source: e.into() })?;
        let mut cp: Vec<NodeFile> = pki.files.clone();
        cp.extend(
            kubeconfig::control_plane_files(&pki.ca)
                .map_err(|e| BackendError::Pki { what: "issuing the kubeconfig files", source: e.into() })?,
        );
        cp.extend(manifests::control_plane_manifests());
        cp.extend(manifests::kubelet_files());
        let mut worker: Vec<NodeFile> = vec![
            NodeFile::new("/etc/kubernetes/pki/ca.crt", pki.ca.cert_pem.clone(), 0o644),
            kubeconfig::worker_kubelet_conf(&pki.ca, WORKER)
                .map_err(|e| BackendError::Pki { what: "issuing the worker's kubelet.conf", source: e.into() })?,
        ];
        worker.extend(manifests::kubelet_files());
        for (node, files, dirs) in [
            (
                CONTROL_PLANE,
                cp,
                &["etc/kubernetes/manifests", "var/lib/etcd", "var/log/pods", "var/log/containers"][..],
            ),
            (WORKER, worker, &["etc/kubernetes/manifests", "var/log/pods", "var/log/containers"][..]),
        ] {
            let root = partial.join(node);
            for d in dirs {
                std::fs::create_dir_all(root.join(d)).map_err(|e| io(d, e))?;
            }
            for f in files {
                write_node_file(&root, &f)?;
            }
        }
        set_mode(&partial.join(CONTROL_PLANE).join("var/lib/etcd"), 0o700)?;
        std::fs::rename(&partial, &nodes).map_err(|e| io("moving the node roots into place", e))?;
        Ok(())
    }

    /// Waits for /readyz, failing early when the supervisor dies.
    async fn wait_ready(&self, client: &kube::Client, supervisor: i32) -> Result<()> {
        let deadline = tokio::time::Instant::now() + API_TIMEOUT;
        loop {
            if wait_api_healthy(client, Duration::from_secs(2)).await.is_ok() {
                return Ok(());
            }
            if !procs::alive(supervisor) {
                return Err(BackendError::SupervisorExited {
                    log: self.paths.supervisor_log(),
                    tail: supervisor::tail_lines(&self.paths.supervisor_log(), 20),
                    exe: std::fs::read_to_string(self.paths.dir.join("supervisor.exe"))
                        .unwrap_or_default()
                        .trim()
                        .into(),
                    command: SUPERVISOR_SUBCOMMAND,
                    env: EXE_ENV,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::NotHealthy {
                    secs: API_TIMEOUT.as_secs(),
                    detail: format!("\n{}", self.down_components_report()),
                });
            }
        }
    }

    fn down_components_report(&self) -> String {
        let Some(status) = self.supervisor_status() else { return String::new() };
        status
            .components
            .values()
            .filter(|c| !c.running)
            .map(|c| format!("{} is not running: {}", c.name, c.detail.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn spawn_supervisor(&self) -> Result<i32> {
        let exe = match (&self.supervisor_exe, std::env::var_os(EXE_ENV)) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => {
                std::env::current_exe().map_err(|e| BackendError::io("finding the ckslab executable", e))?
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.paths.supervisor_log())
            .map_err(|e| BackendError::io("opening supervisor.log", e))?;
        let log2 = log.try_clone().map_err(|e| BackendError::io("opening supervisor.log", e))?;
        let dir = std::fs::canonicalize(&self.paths.dir).map_err(|e| BackendError::io("cluster dir", e))?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg(SUPERVISOR_SUBCOMMAND)
            .arg("--cluster-dir")
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        match self.owner_pid {
            Some(pid) => cmd.env(supervisor::OWNER_PID_ENV, pid.to_string()),
            None => cmd.env_remove(supervisor::OWNER_PID_ENV),
        };
        // Its own session: a Ctrl-C in the learner's terminal must not reach the cluster.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| BackendError::io(format!("starting the local supervisor ({})", exe.display()), e))?;
        let pid = child.id() as i32;
        self.last_exe_hint(&exe);
        std::fs::write(self.paths.supervisor_pid(), format!("{pid}\n"))
            .map_err(|e| BackendError::io("writing supervisor.pid", e))?;
        // Reap it when it exits while we still live (tests, the web UI); otherwise init does.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(pid)
    }
}

impl LocalBackend {
    /// Remembers which executable runs the supervisor, for error messages.
    fn last_exe_hint(&self, exe: &Path) {
        let _ = std::fs::write(self.paths.dir.join("supervisor.exe"), exe.to_string_lossy().as_bytes());
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BackendError::io(format!("chmod {}", path.display()), e))
}

fn write_node_file(root: &Path, f: &NodeFile) -> Result<()> {
    let path = paths::resolve_in_root(root, Path::new(&f.path))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BackendError::io(format!("mkdir {}", parent.display()), e))?;
    }
    std::fs::write(&path, &f.contents).map_err(|e| BackendError::io(format!("writing {}", path.display()), e))?;
    set_mode(&path, f.mode)
}

/// Waits up to 20 s for the control-plane ports: a cluster that was just stopped (an earlier test
/// binary's, whose supervisor is still shutting down) frees them within seconds.
async fn check_ports() -> Result<()> {
    let busy = || PORTS.into_iter().find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while busy().is_some() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match busy() {
        Some(port) => Err(BackendError::PortInUse { port }),
        None => Ok(()),
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn shell_command(&self, node: &str, command: Option<&str>) -> std::process::Command {
        self.node_shell(node, command)
    }

    async fn has_cluster(&self) -> bool {
        self.exists()
    }

    /// The supervisor looks at the manifests every 300 ms.
    fn manifest_restart_window(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn capabilities(&self) -> Capabilities {
        [
            Capability::Api,
            Capability::ControlPlaneFiles,
            Capability::Etcd,
            Capability::RunningPods,
            Capability::KubeletConfig,
        ]
        .into_iter()
        .collect()
    }

    async fn up(&self, progress: &dyn Progress) -> Result<()> {
        paths::check_tools()?;
        let dir = &self.paths.dir;
        if dir.exists() && !self.paths.marker().exists() {
            let empty = std::fs::read_dir(dir).map(|mut rd| rd.next().is_none()).unwrap_or(false);
            if !empty {
                return Err(BackendError::NotOursToUse(dir.to_path_buf()));
            }
        }

        if self.running_supervisor().is_some() && self.exists() {
            progress.step("a local cluster is already running; checking its API server");
            let client = self.client().await?;
            if wait_api_healthy(&client, Duration::from_secs(30)).await.is_err() {
                return Err(BackendError::RunningButUnhealthy { report: self.down_components_report() });
            }
            let admin = crate::backend::client_from_kubeconfig(&self.super_admin_kubeconfig(), "local").await?;
            bootstrap::ensure_objects(&admin).await?;
            progress.step("the local cluster is ready");
            return Ok(());
        }

        // A supervisor killed without `down` may have left children (normally they die with it).
        self.stop_processes().await?;

        std::fs::create_dir_all(dir).map_err(|e| BackendError::io(format!("creating {}", dir.display()), e))?;
        if !self.paths.marker().exists() {
            std::fs::write(self.paths.marker(), "This folder is a ckslab local cluster; `ckslab down` deletes it.\n")
                .map_err(|e| BackendError::io("writing the cluster marker", e))?;
        }
        if !self.paths.nodes_dir().exists() {
            progress.step("writing the node roots (PKI, static pod manifests, kubeconfigs)");
            self.write_node_roots()?;
        } else {
            progress.step("reusing the existing node roots");
        }
        if !self.paths.kubeconfig().exists() {
            let admin = self.paths.cp_file("/etc/kubernetes/admin.conf");
            std::fs::copy(&admin, self.paths.kubeconfig())
                .map_err(|e| BackendError::io(format!("copying {}", admin.display()), e))?;
            set_mode(&self.paths.kubeconfig(), 0o600)?;
        }
        check_ports().await?;

        progress.step("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok");
        let supervisor = self.spawn_supervisor()?;
        progress.step("waiting for the API server to be ready");
        let admin = crate::backend::client_from_kubeconfig(&self.super_admin_kubeconfig(), "local").await?;
        self.wait_ready(&admin, supervisor).await?;
        progress.step("registering the nodes");
        bootstrap::ensure_objects(&admin).await?;
        progress.step("waiting for the default ServiceAccount");
        bootstrap::wait_default_service_account(&admin, Duration::from_secs(60)).await?;
        progress.step("the local cluster is ready");
        Ok(())
    }

    async fn down(&self, progress: &dyn Progress) -> Result<()> {
        let dir = &self.paths.dir;
        if !dir.exists() {
            progress.step("there is no local cluster");
            return Ok(());
        }
        progress.step("stopping the local control plane");
        self.stop_processes().await?;
        if !self.paths.marker().is_file() {
            return Err(BackendError::NotOursToDelete(dir.to_path_buf()));
        }
        progress.step(&format!("deleting {}", dir.display()));
        std::fs::remove_dir_all(dir).map_err(|e| BackendError::io(format!("deleting {}", dir.display()), e))?;
        Ok(())
    }

    async fn status(&self) -> Result<ClusterStatus> {
        let mut out = ClusterStatus {
            backend: "local".into(),
            exists: self.exists(),
            api_healthy: false,
            kubeconfig: None,
            nodes: Vec::new(),
            components: Vec::new(),
        };
        if !out.exists {
            return Ok(out);
        }
        out.kubeconfig = Some(self.kubeconfig_path());
        out.nodes = self.nodes();
        let supervisor = self.running_supervisor();
        let states = self.supervisor_status().map(|s| s.components).unwrap_or_default();
        for s in states.values() {
            let (running, detail) = if supervisor.is_some() {
                (s.running, if s.running { None } else { s.detail.clone() })
            } else {
                (false, Some("the local supervisor is not running\n  fix: ckslab up --backend local".to_string()))
            };
            out.components.push(ComponentStatus { name: s.name.clone(), running, detail });
        }
        if supervisor.is_some()
            && let Ok(client) = self.client().await
        {
            out.api_healthy = wait_api_healthy(&client, Duration::from_millis(1500)).await.is_ok();
        }
        Ok(out)
    }

    fn kubeconfig_path(&self) -> PathBuf {
        self.paths.kubeconfig()
    }

    async fn client(&self) -> Result<kube::Client> {
        if !self.kubeconfig_path().exists() {
            return Err(BackendError::NoCluster { backend: "local".into() });
        }
        let path = self.kubeconfig_path();
        self.clients.get_or_build(&path, || crate::backend::client_from_kubeconfig(&path, "local")).await
    }

    fn nodes(&self) -> Vec<String> {
        NODES.iter().map(|n| n.to_string()).collect()
    }

    fn control_plane(&self) -> String {
        CONTROL_PLANE.to_string()
    }

    fn node_shell_hint(&self, node: &str) -> String {
        format!("ckslab node-shell {node}")
    }

    async fn read_file(&self, node: &str, path: &Path) -> Result<Option<Vec<u8>>> {
        let p = paths::resolve_in_root(&self.node_root(node)?, path)?;
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io(format!("reading {} on {node}", path.display()), e)),
        }
    }

    async fn put_file(&self, node: &str, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let root = self.node_root(node)?;
        if !root.is_dir() {
            return Err(BackendError::NoCluster { backend: "local".into() });
        }
        let p = paths::resolve_in_root(&root, path)?;
        if let Some(parent) = p.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| BackendError::io(format!("creating the folder of {} on {node}", path.display()), e))?;
        }
        // Write then rename: the supervisor polls manifests and must never see half a file.
        let tmp = p.with_file_name(format!(
            ".{}.ckslab-tmp",
            p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        tokio::fs::write(&tmp, contents)
            .await
            .map_err(|e| BackendError::io(format!("writing {} on {node}", path.display()), e))?;
        set_mode(&tmp, mode)?;
        tokio::fs::rename(&tmp, &p)
            .await
            .map_err(|e| BackendError::io(format!("writing {} on {node}", path.display()), e))
    }

    async fn delete_file(&self, node: &str, path: &Path) -> Result<()> {
        let p = paths::resolve_in_root(&self.node_root(node)?, path)?;
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::io(format!("removing {} on {node}", path.display()), e)),
        }
    }

    async fn stat_file(&self, node: &str, path: &Path) -> Result<Option<FileStat>> {
        use std::os::unix::fs::MetadataExt;
        let p = paths::resolve_in_root(&self.node_root(node)?, path)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(Some(FileStat { mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), is_dir: m.is_dir() })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io(format!("stat {} on {node}", path.display()), e)),
        }
    }

    async fn modified(&self, node: &str, path: &Path) -> Result<Option<std::time::SystemTime>> {
        let p = paths::resolve_in_root(&self.node_root(node)?, path)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(m.modified().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io(format!("stat {} on {node}", path.display()), e)),
        }
    }

    async fn list_dir(&self, node: &str, path: &Path) -> Result<Option<Vec<String>>> {
        let p = paths::resolve_in_root(&self.node_root(node)?, path)?;
        let mut entries = match tokio::fs::read_dir(&p).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackendError::io(format!("listing {} on {node}", path.display()), e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| BackendError::io(format!("listing {} on {node}", path.display()), e))?
        {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(Some(names))
    }

    async fn exec(&self, node: &str, argv: &[String]) -> Result<ExecOutput> {
        let root = self.node_root(node)?;
        if !root.is_dir() {
            return Err(BackendError::NoCluster { backend: "local".into() });
        }
        if argv.is_empty() {
            return Err(BackendError::EmptyCommand);
        }
        let bin_dir = paths::check_tools()?;
        let out = tokio::process::Command::new(paths::bwrap_path()?)
            .args(bwrap::node_args(&bin_dir, &root, node))
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| BackendError::io(format!("running {argv:?} on {node}"), e))?;
        use std::os::unix::process::ExitStatusExt;
        let code = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Ok(ExecOutput {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn etcd_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if !self.exists() {
            return Err(BackendError::NoCluster { backend: "local".into() });
        }
        let bin_dir = paths::check_tools()?;
        let pki = |p: &str| self.paths.cp_file(&format!("/etc/kubernetes/pki/{p}"));
        let out = tokio::process::Command::new(bin_dir.join("etcdctl"))
            .arg("--endpoints=https://127.0.0.1:2379")
            .arg("--cacert")
            .arg(pki("etcd/ca.crt"))
            .arg("--cert")
            .arg(pki("apiserver-etcd-client.crt"))
            .arg("--key")
            .arg(pki("apiserver-etcd-client.key"))
            .args(["--command-timeout=5s", "--dial-timeout=3s", "-w", "json", "get", key])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| BackendError::io("running etcdctl", e))?;
        if !out.status.success() {
            return Err(BackendError::EtcdctlFailed {
                key: key.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        crate::backend::parse_etcdctl_json(&out.stdout)
    }

    async fn component_logs(&self, component: &str, lines: usize) -> Result<String> {
        if !self.exists() {
            return Err(BackendError::NoCluster { backend: "local".into() });
        }
        let from_status = self
            .supervisor_status()
            .and_then(|s| s.components.into_values().filter(|c| c.name == component).find_map(|c| c.log));
        let path = from_status.or_else(|| {
            if component == "kwok" {
                Some(self.paths.logs_dir().join("kwok.log"))
            } else {
                supervisor::current_log(&self.paths.pod_log_dir(component, component))
            }
        });
        Ok(path.map(|p| supervisor::tail_lines(&p, lines)).unwrap_or_default())
    }
}
