//! The kind backend: a kubeadm cluster in Docker containers, driven through the `kind` and
//! `docker` CLIs. Node access is `docker exec`; control-plane containers are reached with
//! `crictl` inside the node, so it works while the API server is down.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

mod lifecycle;
pub mod network;
pub mod offline;

use super::{
    Backend, BackendError, CONTROL_PLANE_COMPONENTS, Capabilities, Capability, ClusterStatus, ComponentStatus,
    ExecOutput, FileStat, Progress, Result, parse_etcdctl_json,
};

/// The cluster every ckslab kind command acts on. ckslab never touches another cluster.
pub const CLUSTER_NAME: &str = "ckslab";
/// kind's config for the lab: kubeadm layout, a control-plane and a worker, pinned image.
pub const CLUSTER_CONFIG: &str = include_str!("../../../kind-configs/cluster.yaml");
const MARKER: &str = ".created-by-ckslab";
/// The Docker network ckslab's kind nodes live on (kind's own default, `kind`, is shared with
/// every other kind cluster, so ckslab never creates or deletes that one).
pub const DOCKER_NETWORK: &str = "ckslab";
/// The node image ckslab's build script makes (scripts/build-kind-node.sh).
pub const OFFLINE_IMAGE_PREFIX: &str = "ckslab/kind-node";

pub struct KindBackend {
    dir: PathBuf,
    /// `--node-image` / `CKSLAB_KIND_NODE_IMAGE`; `None` keeps the pinned upstream image.
    node_image: Option<String>,
    /// Images from the local engine to put on the nodes after create (`--load-image`,
    /// `CKSLAB_KIND_LOAD_IMAGES`): offline labs, CI's stand-ins.
    load_images: Vec<String>,
    /// The image archives in the cache (`None` for tests' backends): loaded into the engine
    /// when it lacks them.
    cached: Option<offline::CachedImages>,
    /// No `CKSLAB_KIND_LOAD_IMAGES`: put every cached stand-in on the nodes.
    load_cached_stand_ins: bool,
    backups: PathBuf,
    docker: PathBuf,
    kind: PathBuf,
    clients: super::ClientCache,
}

impl KindBackend {
    /// The docker CLI on PATH, and kind's (else the one in the cache's bin dir, where a
    /// classroom bundle puts it). The node image and images to load from
    /// `CKSLAB_KIND_NODE_IMAGE` and `CKSLAB_KIND_LOAD_IMAGES` when set, else from the cache:
    /// ckslab's node image where its archive is there, and every stand-in archive.
    pub fn new(data_dir: &Path) -> Self {
        let kind =
            offline::find_program("kind", std::env::var_os("PATH").as_deref(), &crate::tools::bin_dir().join("kind"));
        let mut backend = Self::with_tools(data_dir, PathBuf::from("docker"), kind);
        let cached = offline::CachedImages::new(crate::tools::cache_dir().join("kind"));
        backend.node_image = std::env::var("CKSLAB_KIND_NODE_IMAGE")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| cached.node().map(|_| offline::NODE_IMAGE.to_string()));
        match std::env::var("CKSLAB_KIND_LOAD_IMAGES") {
            Ok(list) => {
                backend.load_images =
                    list.split([',', ' ', '\n']).filter(|s| !s.is_empty()).map(String::from).collect();
            }
            Err(_) => backend.load_cached_stand_ins = true,
        }
        backend.cached = Some(cached);
        backend
    }

    /// With explicit tool paths (tests put recording fakes here), the pinned upstream image
    /// and nothing to load, whatever the environment says.
    pub fn with_tools(data_dir: &Path, docker: PathBuf, kind: PathBuf) -> Self {
        KindBackend {
            dir: data_dir.join("kind"),
            node_image: None,
            load_images: Vec::new(),
            cached: None,
            load_cached_stand_ins: false,
            backups: data_dir.join("backups"),
            docker,
            kind,
            clients: Default::default(),
        }
    }

    /// Creates the cluster on `image` instead of the pinned upstream kindest/node.
    pub fn with_node_image(mut self, image: Option<String>) -> Self {
        if image.is_some() {
            self.node_image = image;
        }
        self
    }

    /// Takes the node image and stand-ins from the image archives in `kind_dir` (as [`new`]
    /// does from the user's cache), loading into the engine what it lacks.
    ///
    /// [`new`]: KindBackend::new
    pub fn with_cache(mut self, kind_dir: PathBuf) -> Self {
        let cached = offline::CachedImages::new(kind_dir);
        if self.node_image.is_none() && cached.node().is_some() {
            self.node_image = Some(offline::NODE_IMAGE.to_string());
        }
        self.load_cached_stand_ins = self.load_images.is_empty();
        self.cached = Some(cached);
        self
    }

    /// Also loads these images from the local engine onto the nodes when creating the cluster.
    pub fn with_load_images(mut self, images: Vec<String>) -> Self {
        if !images.is_empty() {
            self.load_images = images;
            self.load_cached_stand_ins = false;
        }
        self
    }

    /// Whether the cache holds the node image the upgrade lab starts on.
    fn upgrade_image_cached(&self) -> bool {
        let image = offline::node_image_at(offline::UPGRADE_FROM);
        self.cached.as_ref().is_some_and(|c| c.node_archive(&image).is_some())
    }

    /// An error naming the fix unless a Docker engine answers.
    async fn engine_answers(&self) -> Result<()> {
        let docker_ok = self.run(&self.docker, &["info".into()], None).await?;
        if docker_ok.code != 0 {
            return Err(BackendError::MissingTool {
                tool: "docker engine".into(),
                detail: docker_ok.stderr.trim().to_string(),
                fix: "start Docker (`systemctl start docker`), or use `--backend local`".into(),
            });
        }
        Ok(())
    }

    /// `kind create` and what the lab needs on top (pod network, NetworkPolicy, stand-ins),
    /// on the default node image, or at `version` on ckslab's node image for it (etcd kept at
    /// the default version's, which that image carries).
    async fn create(&self, version: Option<&str>, progress: &dyn Progress) -> Result<()> {
        let node_image = self.node_image_for(version).await?;
        let stand_ins = self.load_cached_images(node_image.as_deref(), progress).await?;

        let own_cni = self.needs_own_cni(node_image.as_deref(), progress).await?;
        let etcd_tag = version.map(|_| offline::UPGRADE_ETCD_TAG);
        let config = network::cluster_config(CLUSTER_CONFIG, node_image.as_deref(), own_cni, etcd_tag)
            .map_err(BackendError::KindConfig)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| BackendError::io(format!("creating {}", self.dir.display()), e))?;
        std::fs::write(self.config_path(), config).map_err(|e| BackendError::io("writing the kind config", e))?;
        let _ = std::fs::remove_file(self.dir.join(CAPABILITIES_FILE));
        // The marker goes first: a create killed halfway leaves containers `down` must remove.
        std::fs::write(self.dir.join(MARKER), CLUSTER_NAME).map_err(|e| BackendError::io("writing the marker", e))?;
        match version {
            Some(version) => std::fs::write(self.dir.join(VERSION_FILE), version),
            None => std::fs::remove_file(self.dir.join(VERSION_FILE))
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
        }
        .map_err(|e| BackendError::io("recording the cluster's version", e))?;
        progress.step(&format!(
            "creating kind cluster {CLUSTER_NAME} on {} ({})",
            node_image.as_deref().unwrap_or("the pinned kindest/node"),
            if node_image.is_some() { "about 30s" } else { "pulls the image the first time; a few minutes" }
        ));
        let out = self
            .run(&self.kind, &kind_create_args(&self.config_path(), &self.kubeconfig_path(), !own_cni), None)
            .await?;
        if out.code != 0 {
            return Err(self.create_failed(&out, progress).await);
        }
        let mut netpol = false;
        if own_cni {
            self.install_pod_network(progress).await?;
            netpol = self.install_network_policy(progress).await?;
        }
        self.load_images(&stand_ins, progress).await?;
        self.record_host_address().await?;
        progress.step("waiting for both nodes and kube-system to be Ready");
        self.wait_ready(std::time::Duration::from_secs(180)).await?;
        let found = self.probe_capabilities(own_cni, netpol).await;
        let text = serde_json::to_string(&found).expect("capabilities serialize");
        std::fs::write(self.dir.join(CAPABILITIES_FILE), text)
            .map_err(|e| BackendError::io("recording the cluster's capabilities", e))?;
        progress.step("kind cluster ready");
        Ok(())
    }

    /// The node image for a cluster at `version` (`None`: the default one, or kind's pinned
    /// image), or an error naming how to make it when neither the cache nor the engine has it.
    async fn node_image_for(&self, version: Option<&str>) -> Result<Option<String>> {
        let Some(version) = version else { return Ok(self.node_image.clone()) };
        let image = offline::node_image_at(version);
        let cached = self.cached.as_ref().and_then(|c| c.node_archive(&image));
        let present = self.run(&self.docker, &Self::docker_args(&["image", "inspect", &image]), None).await?;
        if cached.is_none() && present.code != 0 {
            return Err(BackendError::NoSuchVersion {
                backend: "kind".into(),
                version: version.into(),
                fix: format!(
                    "build its node image {image}: `scripts/build-kind-node.sh --upgrade-from` (or install a classroom bundle that has it)"
                ),
            });
        }
        Ok(Some(image))
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("cluster.yaml")
    }

    /// True when this data dir records a kind cluster that ckslab created.
    pub fn created_by_us(&self) -> bool {
        self.dir.join(MARKER).exists()
    }

    async fn run(&self, program: &Path, args: &[String], stdin: Option<&[u8]>) -> Result<ExecOutput> {
        let display = program.display().to_string();
        let mut command = Command::new(program);
        // kind puts its nodes on this network; ckslab's own, so `down` can remove it.
        command.env("KIND_EXPERIMENTAL_DOCKER_NETWORK", DOCKER_NETWORK);
        // kind and docker die with ckslab: a `kind create` must not go on making nodes after
        // ckslab was killed and `down` ran.
        // SAFETY: prctl is async-signal-safe and touches nothing but this process.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = command.spawn().map_err(|e| missing_tool(&display, e))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).await.map_err(|e| BackendError::io(format!("writing to {display}"), e))?;
        }
        let out = child.wait_with_output().await.map_err(|e| BackendError::io(format!("running {display}"), e))?;
        Ok(ExecOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn run_ok(&self, program: &Path, args: &[String], stdin: Option<&[u8]>) -> Result<String> {
        let out = self.run(program, args, stdin).await?;
        if out.code != 0 {
            return Err(BackendError::CommandFailed {
                command: format!("{} {}", program.display(), args.join(" ")),
                code: out.code,
                stderr: out.stderr.trim().into(),
            });
        }
        Ok(out.stdout)
    }

    /// Raw bytes of a node command's stdout (files may be binary).
    async fn docker_exec_bytes(&self, node: &str, argv: &[String]) -> Result<(i32, Vec<u8>, String)> {
        let out = Command::new(&self.docker)
            .args(docker_exec_args(node, argv, false))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| missing_tool(&self.docker.display().to_string(), e))?;
        Ok((out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
    }

    fn check_node(&self, node: &str) -> Result<()> {
        if self.nodes().iter().any(|n| n == node) { Ok(()) } else { Err(BackendError::UnknownNode(node.to_string())) }
    }

    async fn cluster_exists(&self) -> Result<bool> {
        let clusters = self.run_ok(&self.kind, &["get".into(), "clusters".into()], None).await?;
        Ok(clusters.lines().any(|l| l.trim() == CLUSTER_NAME))
    }

    /// The container id of a control-plane component, via crictl inside the node.
    async fn component_container(&self, component: &str) -> Result<Option<String>> {
        let argv = crictl(&["ps", "-a", "--name", component, "-q"]);
        let out = self.run(&self.docker, &docker_exec_args(&self.control_plane(), &argv, false), None).await?;
        Ok(out.stdout.lines().next().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
    }
}

fn crictl(args: &[&str]) -> Vec<String> {
    std::iter::once("crictl").chain(args.iter().copied()).map(String::from).collect()
}

/// `docker exec [-i] <node> argv...`
pub fn docker_exec_args(node: &str, argv: &[String], stdin: bool) -> Vec<String> {
    let mut args = vec!["exec".to_string()];
    if stdin {
        args.push("-i".into());
    }
    args.push(node.to_string());
    args.extend(argv.iter().cloned());
    args
}

/// `kind create cluster` for the lab cluster. `--retain` keeps failed nodes long enough to
/// read their kubelet journal; ckslab deletes them itself. Without a default CNI the nodes
/// are not Ready until ckslab installs one, so kind must not wait for that.
pub fn kind_create_args(config: &Path, kubeconfig: &Path, wait: bool) -> Vec<String> {
    let mut args = vec![
        "create".into(),
        "cluster".into(),
        "--name".into(),
        CLUSTER_NAME.into(),
        "--config".into(),
        config.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--retain".into(),
    ];
    if wait {
        args.extend(["--wait".into(), "180s".into()]);
    }
    args
}

const CAPABILITIES_FILE: &str = "capabilities.json";
/// Holds the Kubernetes version of a cluster made at one other than the default.
const VERSION_FILE: &str = "version";
const HOST_ADDRESS_FILE: &str = "host-address";

/// What every kind cluster has: real nodes (systemd, dpkg, iptables), real containers,
/// containerd's seccomp.
fn base_capabilities() -> Capabilities {
    [
        Capability::Api,
        Capability::ControlPlaneFiles,
        Capability::Etcd,
        Capability::RunningPods,
        Capability::PodExec,
        Capability::Seccomp,
        Capability::KubeletConfig,
        Capability::NodeOs,
    ]
    .into_iter()
    .collect()
}

/// etcdctl inside the etcd container, with kubeadm's certificate paths.
pub fn etcdctl_get_args(container: &str, key: &str) -> Vec<String> {
    let mut argv = crictl(&["exec", container, "etcdctl"]);
    argv.extend(
        [
            "--endpoints=https://127.0.0.1:2379",
            "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
            "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
            "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
            "get",
            key,
            "-w",
            "json",
        ]
        .map(String::from),
    );
    argv
}

fn missing_tool(tool: &str, err: std::io::Error) -> BackendError {
    if err.kind() == std::io::ErrorKind::NotFound {
        let fix = if tool.ends_with("kind") {
            "install kind v0.30 or newer: `go install sigs.k8s.io/kind@v0.30.0` (or see https://kind.sigs.k8s.io), or use `--backend local`"
        } else {
            "install Docker (https://docs.docker.com/engine/install/) and start it, or use `--backend local`"
        };
        BackendError::MissingTool { tool: tool.to_string(), detail: "not found on PATH".into(), fix: fix.into() }
    } else {
        BackendError::io(format!("starting {tool}"), err)
    }
}

/// True when `docker info` answers, i.e. a Docker engine (not only the client) runs.
pub async fn docker_engine_available() -> bool {
    let probe = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(out)) => out.status.success() && !out.stdout.is_empty(),
        _ => false,
    }
}

#[async_trait]
impl Backend for KindBackend {
    fn name(&self) -> &'static str {
        "kind"
    }

    fn capabilities(&self) -> Capabilities {
        // What `up` found this cluster to have; before there is one, what the pinned upstream
        // image gives (kindnetd enforces NetworkPolicy since kind v0.24).
        let mut found = std::fs::read_to_string(self.dir.join(CAPABILITIES_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<Capabilities>(&text).ok())
            .unwrap_or_else(|| {
                let mut expected = base_capabilities();
                expected.insert(Capability::NetworkPolicy);
                expected
            });
        // Not recorded at `up`: it is about the cache, which can gain the image later.
        found.remove(&Capability::KubernetesUpgrade);
        if self.upgrade_image_cached() {
            found.insert(Capability::KubernetesUpgrade);
        }
        found
    }

    async fn up(&self, progress: &dyn Progress) -> Result<()> {
        self.engine_answers().await?;
        if self.cluster_exists().await? {
            progress.step(&format!("kind cluster {CLUSTER_NAME} already exists; keeping it"));
            return Ok(());
        }
        self.create(None, progress).await
    }

    fn created_at(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(VERSION_FILE)).ok()?;
        Some(text.trim().to_string()).filter(|v| !v.is_empty())
    }

    async fn recreate(&self, version: Option<&str>, progress: &dyn Progress) -> Result<()> {
        self.engine_answers().await?;
        // Before anything is deleted: a version it cannot make leaves the cluster as it is.
        self.node_image_for(version).await?;
        if self.cluster_exists().await? {
            if !self.created_by_us() {
                return Err(BackendError::NoClusterOfOurs(self.dir.clone()));
            }
            progress.step(&format!(
                "deleting kind cluster {CLUSTER_NAME}, to make it again at {}",
                version.unwrap_or("the default version")
            ));
            self.delete_cluster().await?;
        }
        self.create(version, progress).await
    }

    async fn down(&self, progress: &dyn Progress) -> Result<()> {
        if !self.created_by_us() {
            return Err(BackendError::NoClusterOfOurs(self.dir.clone()));
        }
        progress.step("deleting kind cluster ckslab");
        self.delete_cluster().await?;
        std::fs::remove_file(self.dir.join(MARKER)).map_err(|e| BackendError::io("removing the marker", e))?;
        let _ = std::fs::remove_file(self.dir.join(CAPABILITIES_FILE));
        let _ = std::fs::remove_file(self.dir.join(HOST_ADDRESS_FILE));
        let _ = std::fs::remove_file(self.dir.join(VERSION_FILE));
        Ok(())
    }

    async fn status(&self) -> Result<ClusterStatus> {
        let exists = self.cluster_exists().await?;
        let mut components = Vec::new();
        let mut api_healthy = false;
        if exists {
            for component in CONTROL_PLANE_COMPONENTS {
                let argv = crictl(&["ps", "--name", component, "--state", "running", "-q"]);
                let out = self.run(&self.docker, &docker_exec_args(&self.control_plane(), &argv, false), None).await?;
                let running = !out.stdout.trim().is_empty();
                let detail = if running { None } else { self.component_logs(component, 5).await.ok() };
                components.push(ComponentStatus { name: component.into(), running, detail });
            }
            if let Ok(client) = self.client().await {
                api_healthy = super::wait_api_healthy(&client, std::time::Duration::from_secs(2)).await.is_ok();
            }
        }
        Ok(ClusterStatus {
            backend: "kind".into(),
            exists,
            api_healthy,
            kubeconfig: exists.then(|| self.kubeconfig_path()),
            nodes: if exists { self.nodes() } else { vec![] },
            components,
        })
    }

    async fn has_cluster(&self) -> bool {
        self.created_by_us() && self.cluster_exists().await.unwrap_or(false)
    }

    fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    async fn client(&self) -> Result<kube::Client> {
        let path = self.kubeconfig_path();
        self.clients.get_or_build(&path, || super::client_from_kubeconfig(&path, "kind")).await
    }

    fn nodes(&self) -> Vec<String> {
        vec![format!("{CLUSTER_NAME}-control-plane"), format!("{CLUSTER_NAME}-worker")]
    }

    fn control_plane(&self) -> String {
        format!("{CLUSTER_NAME}-control-plane")
    }

    fn node_shell_hint(&self, node: &str) -> String {
        format!("docker exec -it {node} bash")
    }

    /// The host as the nodes see it: the gateway of ckslab's Docker network (recorded at
    /// `up`), where webhook backends ckslab runs on this machine listen for the API server.
    fn host_address(&self) -> (String, String) {
        match std::fs::read_to_string(self.dir.join(HOST_ADDRESS_FILE)) {
            Ok(address) if !address.trim().is_empty() => (address.trim().to_string(), address.trim().to_string()),
            _ => ("127.0.0.1".into(), "127.0.0.1".into()),
        }
    }

    fn shell_command(&self, node: &str, command: Option<&str>) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.docker);
        match command {
            Some(line) => cmd.args(["exec", "-i", node, "bash", "-c", line]),
            None => cmd.args(["exec", "-it", node, "bash"]),
        };
        cmd
    }

    async fn read_file(&self, node: &str, path: &Path) -> Result<Option<Vec<u8>>> {
        self.check_node(node)?;
        let argv: Vec<String> = ["sh", "-c", "[ -e \"$1\" ] || exit 3; cat \"$1\"", "sh"]
            .map(String::from)
            .into_iter()
            .chain(std::iter::once(path.display().to_string()))
            .collect();
        match self.docker_exec_bytes(node, &argv).await? {
            (0, bytes, _) => Ok(Some(bytes)),
            (3, _, _) => Ok(None),
            (code, _, stderr) => Err(BackendError::CommandFailed {
                command: format!("reading {node}:{}", path.display()),
                code,
                stderr: stderr.trim().into(),
            }),
        }
    }

    fn backups_dir(&self) -> PathBuf {
        self.backups.clone()
    }

    async fn put_file(&self, node: &str, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        self.check_node(node)?;
        let argv: Vec<String> =
            ["sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"", "sh"]
                .map(String::from)
                .into_iter()
                .chain([path.display().to_string(), format!("{mode:o}")])
                .collect();
        self.run_ok(&self.docker, &docker_exec_args(node, &argv, true), Some(contents)).await.map(|_| ())
    }

    async fn delete_file(&self, node: &str, path: &Path) -> Result<()> {
        self.check_node(node)?;
        let argv = vec!["rm".into(), "-f".into(), path.display().to_string()];
        self.run_ok(&self.docker, &docker_exec_args(node, &argv, false), None).await.map(|_| ())
    }

    async fn stat_file(&self, node: &str, path: &Path) -> Result<Option<FileStat>> {
        self.check_node(node)?;
        let argv = vec!["stat".into(), "-c".into(), "%a %u %g %F".into(), path.display().to_string()];
        let out = self.run(&self.docker, &docker_exec_args(node, &argv, false), None).await?;
        if out.code != 0 {
            return Ok(None);
        }
        Ok(parse_stat(&out.stdout))
    }

    async fn modified(&self, node: &str, path: &Path) -> Result<Option<std::time::SystemTime>> {
        self.check_node(node)?;
        let argv = vec!["stat".into(), "-c".into(), "%Y".into(), path.display().to_string()];
        let out = self.run(&self.docker, &docker_exec_args(node, &argv, false), None).await?;
        if out.code != 0 {
            return Ok(None);
        }
        // Seconds since the epoch; the node container shares the host's clock.
        Ok(out.stdout.trim().parse::<u64>().ok().map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)))
    }

    /// `docker cp` straight into the node container (a tool is tens of MB: no pipe through a shell).
    async fn install_tool(&self, node: &str, name: &str, binary: &Path) -> Result<()> {
        self.check_node(node)?;
        let dest = format!("{node}:{}/{name}", crate::backend::NODE_TOOLS_BIN);
        let args = vec!["cp".to_string(), binary.display().to_string(), dest];
        self.run_ok(&self.docker, &args, None).await.map(|_| ())
    }

    async fn exec(&self, node: &str, argv: &[String]) -> Result<ExecOutput> {
        self.check_node(node)?;
        self.run(&self.docker, &docker_exec_args(node, argv, false), None).await
    }

    async fn etcd_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let container = self.component_container("etcd").await?.ok_or(BackendError::NoEtcdContainer)?;
        let out = self
            .run_ok(
                &self.docker,
                &docker_exec_args(&self.control_plane(), &etcdctl_get_args(&container, key), false),
                None,
            )
            .await?;
        parse_etcdctl_json(&out)
    }

    async fn component_logs(&self, component: &str, lines: usize) -> Result<String> {
        let Some(container) = self.component_container(component).await? else {
            return Ok(format!("no {component} container has been started (is its manifest valid?)"));
        };
        let argv = crictl(&["logs", "--tail", &lines.to_string(), &container]);
        let out = self.run(&self.docker, &docker_exec_args(&self.control_plane(), &argv, false), None).await?;
        // crictl writes the container's stderr (where components log) to its own stderr.
        Ok(format!("{}{}", out.stdout, out.stderr))
    }
}

/// `stat -c '%a %u %g %F'` output.
pub fn parse_stat(text: &str) -> Option<FileStat> {
    let mut parts = text.trim().splitn(4, ' ');
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    let uid = parts.next()?.parse().ok()?;
    let gid = parts.next()?.parse().ok()?;
    let is_dir = parts.next()? == "directory";
    Some(FileStat { mode, uid, gid, is_dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_etcdctl_output_parse() {
        assert_eq!(parse_stat("600 0 0 regular file\n"), Some(FileStat { mode: 0o600, uid: 0, gid: 0, is_dir: false }));
        assert_eq!(parse_stat("755 0 0 directory").map(|s| s.is_dir), Some(true));
        assert_eq!(parse_stat("garbage"), None);
        let json = r#"{"header":{},"kvs":[{"key":"L3I=","value":"azhzOmVuYzphZXNjYmM6djE6"}],"count":1}"#;
        assert_eq!(parse_etcdctl_json(json).unwrap().unwrap(), b"k8s:enc:aescbc:v1:");
        assert_eq!(parse_etcdctl_json(r#"{"header":{}}"#).unwrap(), None);
    }

    #[test]
    fn commands_target_only_the_ckslab_cluster() {
        let args = kind_create_args(Path::new("/c.yaml"), Path::new("/k"), true);
        assert_eq!(args[..4], ["create", "cluster", "--name", "ckslab"]);
        let exec = docker_exec_args("ckslab-control-plane", &["cat".into(), "/x".into()], true);
        assert_eq!(exec, ["exec", "-i", "ckslab-control-plane", "cat", "/x"]);
        let get = etcdctl_get_args("abc", "/registry/secrets/a/b");
        assert!(get.starts_with(&["crictl".to_string(), "exec".into(), "abc".into(), "etcdctl".into()]));
        assert!(get.contains(&"/registry/secrets/a/b".to_string()));
    }

    #[test]
    fn the_embedded_config_is_a_two_node_cluster_pinned_by_digest() {
        let config: serde_json::Value = serde_saphyr::from_str(CLUSTER_CONFIG).unwrap();
        let nodes = config["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        for node in nodes {
            assert!(node["image"].as_str().unwrap().contains("kindest/node:v1.34"));
            assert!(node["image"].as_str().unwrap().contains("@sha256:"));
        }
    }
}
