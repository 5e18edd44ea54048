//! The parts of `up` and `down` beyond `kind create`/`kind delete`: which CNI the image needs,
//! the pod network, readiness, what the cluster can really do, and what a failed create says.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use super::network::{self, NodeNet};
use super::{CLUSTER_NAME, DOCKER_NETWORK, ExecOutput, KindBackend, OFFLINE_IMAGE_PREFIX, base_capabilities, crictl};
use crate::backend::{Backend, BackendError, Capabilities, Capability, Progress, Result};

/// kube-router with only its firewall: NetworkPolicy over iptables and ipset, which this
/// kind of kernel supports (kindnetd's nfqueue enforcement needs nft `queue`, which some lack).
/// scripts/kind-netpol.sh builds the image offline.
pub const NETPOL_IMAGE: &str = "ckslab/kube-router:v2.1.0";
const NETPOL_MANIFEST: &str = include_str!("../../../kind-configs/kube-router-netpol.yaml");

/// Where kind's node image keeps the default CNI manifest (kindnetd); ckslab's offline image
/// has none, since kindnetd's image cannot be had offline.
const DEFAULT_CNI_MANIFEST: &str = "/kind/manifests/default-cni.yaml";

impl KindBackend {
    pub(super) fn docker_args(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    /// True when the node image ships no default CNI, so ckslab installs the bridge network.
    /// A missing ckslab image is an error naming the command that builds it; a missing
    /// upstream image is kind's to pull.
    pub(super) async fn needs_own_cni(&self, image: Option<&str>, progress: &dyn Progress) -> Result<bool> {
        let Some(image) = image else { return Ok(false) };
        let present = self.run(&self.docker, &Self::docker_args(&["image", "inspect", image]), None).await?;
        if present.code != 0 {
            if image.starts_with(OFFLINE_IMAGE_PREFIX) {
                return Err(BackendError::NodeImageMissing(image.to_string()));
            }
            return Ok(false);
        }
        progress.step(&format!("looking for a default CNI in {image}"));
        let probe = ["run", "--rm", "--entrypoint", "/bin/sh", image, "-c", &format!("test -e {DEFAULT_CNI_MANIFEST}")];
        let out = self.run(&self.docker, &Self::docker_args(&probe), None).await?;
        Ok(out.code != 0)
    }

    pub(super) async fn delete_cluster(&self) -> Result<()> {
        let args = ["delete", "cluster", "--name", CLUSTER_NAME, "--kubeconfig"].map(String::from).into_iter();
        let args: Vec<String> = args.chain(std::iter::once(self.kubeconfig_path().display().to_string())).collect();
        self.run_ok(&self.kind, &args, None).await?;
        self.remove_leftover_nodes().await?;
        // The network is ckslab's own (KIND_EXPERIMENTAL_DOCKER_NETWORK): remove it once empty.
        let inspect = ["network", "inspect", DOCKER_NETWORK, "--format", "{{len .Containers}}"];
        let out = self.run(&self.docker, &Self::docker_args(&inspect), None).await?;
        if out.code == 0 && out.stdout.trim() == "0" {
            self.run(&self.docker, &Self::docker_args(&["network", "rm", DOCKER_NETWORK]), None).await?;
        }
        Ok(())
    }

    /// After an `up` killed while kind was creating the nodes, kind's own `docker run`s can
    /// still be starting them: `kind delete` misses a node in that state (seen: two nodes left
    /// "Created", their starts hanging once the network was gone). So the nodes of this
    /// cluster (the marker says it is ours) are removed until none is left.
    async fn remove_leftover_nodes(&self) -> Result<()> {
        let label = format!("label=io.x-k8s.kind.cluster={CLUSTER_NAME}");
        let list = Self::docker_args(&["ps", "-aq", "--filter", &label]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.run_ok(&self.docker, &list, None).await?;
            let ids: Vec<String> = out.split_whitespace().map(String::from).collect();
            if ids.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BackendError::Timeout {
                    what: format!(
                        "kind cluster {CLUSTER_NAME}'s node containers ({}) were not removed",
                        ids.join(", ")
                    ),
                    secs: 60,
                    then: "; `docker rm -f` them".into(),
                });
            }
            tracing::info!(?ids, "removing node containers kind's delete left");
            let mut remove = Self::docker_args(&["rm", "-f", "-v"]);
            remove.extend(ids);
            // A node still starting may refuse once; the loop tries again.
            let _ = self.run(&self.docker, &remove, None).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// After a failed `kind create`: the tail of kind's output and of the control plane's
    /// kubelet journal, then the nodes it made are deleted (only those: the cluster is ours).
    pub(super) async fn create_failed(&self, out: &ExecOutput, progress: &dyn Progress) -> BackendError {
        let kind_tail = tail(&format!("{}{}", out.stdout, out.stderr), 15);
        let journal = ["exec", &self.control_plane(), "journalctl", "-u", "kubelet", "--no-pager", "-n", "25"];
        let kubelet = match self.run(&self.docker, &Self::docker_args(&journal), None).await {
            Ok(out) if out.code == 0 => tail(&out.stdout, 25),
            _ => "(the control-plane node is gone or has no journal)".into(),
        };
        progress.step("kind create failed; deleting the nodes it made");
        let cleanup = match self.delete_cluster().await {
            Ok(()) => {
                let _ = std::fs::remove_file(self.dir.join(super::MARKER));
                "the nodes it made were deleted".to_string()
            }
            Err(e) => format!("deleting them failed too ({e}); `ckslab down` tries again"),
        };
        BackendError::KindCreateFailed {
            code: out.code,
            cleanup,
            kind_said: indent(&kind_tail),
            node: self.control_plane(),
            kubelet: indent(&kubelet),
        }
    }

    /// The bridge network: each node's pod range from its Node object, a conflist per node,
    /// routes between nodes (set from here: a node may read only its own Node object).
    pub(super) async fn install_pod_network(&self, progress: &dyn Progress) -> Result<()> {
        progress.step("installing the pod network (bridge, host-local, routes between nodes)");
        let client = self.client().await?;
        crate::backend::wait_api_healthy(&client, Duration::from_secs(120)).await?;
        let nodes: Api<Node> = Api::all(client);
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut net = Vec::new();
        for name in self.nodes() {
            let pod_cidr = loop {
                let cidr = match nodes.get_opt(&name).await {
                    Ok(Some(node)) => node.spec.and_then(|s| s.pod_cidr),
                    _ => None,
                };
                if let Some(cidr) = cidr {
                    break cidr;
                }
                if Instant::now() > deadline {
                    return Err(BackendError::Timeout {
                        what: format!("node {name} got no pod range (.spec.podCIDR)"),
                        secs: 90,
                        then: "; is kube-controller-manager running with --allocate-node-cidrs?".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let format = format!(
                "{{{{with index .NetworkSettings.Networks \"{DOCKER_NETWORK}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}"
            );
            let address =
                self.run_ok(&self.docker, &Self::docker_args(&["inspect", "-f", &format, &name]), None).await?;
            net.push(NodeNet { name, address: address.trim().to_string(), pod_cidr });
        }
        for node in &net {
            let prepare = vec!["sh".to_string(), "-c".into(), network::prepare_script(node)];
            let out = self.exec(&node.name, &prepare).await?;
            if out.code != 0 {
                return Err(BackendError::CommandFailed {
                    command: format!("preparing {} for the pod network", node.name),
                    code: out.code,
                    stderr: out.stderr.trim().into(),
                });
            }
            self.put_file(
                &node.name,
                std::path::Path::new(network::CONFLIST_PATH),
                network::conflist(&node.pod_cidr).as_bytes(),
                0o644,
            )
            .await?;
            for route in network::routes_for(node, &net) {
                let out = self.exec(&node.name, &route).await?;
                if out.code != 0 {
                    return Err(BackendError::CommandFailed {
                        command: format!("{} (on {})", route.join(" "), node.name),
                        code: out.code,
                        stderr: out.stderr.trim().into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `docker load`s from the cache what the engine lacks: the node image `node_image` (when
    /// it is ckslab's), kube-router and the stand-ins. Returns the images to put on the nodes:
    /// those asked for, else every cached stand-in.
    pub(super) async fn load_cached_images(
        &self,
        node_image: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<Vec<String>> {
        let Some(cached) = &self.cached else { return Ok(self.load_images.clone()) };
        if let Some(image) = node_image
            && let Some(archive) = cached.node_archive(image)
        {
            self.load_archive_if_missing(image, &archive, "about 30 s", progress).await?;
        }
        if let Some(archive) = cached.netpol() {
            self.load_archive_if_missing(NETPOL_IMAGE, &archive, "a few seconds", progress).await?;
        }
        let stand_ins = cached.stand_ins();
        let wanted = if self.load_cached_stand_ins {
            let mut names: Vec<String> = stand_ins.iter().map(|(name, _)| name.clone()).collect();
            names.dedup();
            names
        } else {
            self.load_images.clone()
        };
        let mut loaded = Vec::new();
        for name in &wanted {
            if let Some((_, archive)) = stand_ins.iter().find(|(n, _)| n == name)
                && !loaded.contains(archive)
                && self.load_archive_if_missing(name, archive, "a second", progress).await?
            {
                loaded.push(archive.clone());
            }
        }
        Ok(wanted)
    }

    /// `docker load -i archive` unless the engine has `image`; says whether it loaded.
    async fn load_archive_if_missing(
        &self,
        image: &str,
        archive: &std::path::Path,
        takes: &str,
        progress: &dyn Progress,
    ) -> Result<bool> {
        let present = self.run(&self.docker, &Self::docker_args(&["image", "inspect", image]), None).await?;
        if present.code == 0 {
            return Ok(false);
        }
        progress.step(&format!("loading {image} into the engine from {} ({takes})", archive.display()));
        let archive = archive.display().to_string();
        self.run_ok(&self.docker, &Self::docker_args(&["load", "-i", &archive]), None).await?;
        Ok(true)
    }

    /// `kind load docker-image` for `images`; one missing from the engine is an error that
    /// names it (a lab without its images only fails later, less clearly).
    pub(super) async fn load_images(&self, images: &[String], progress: &dyn Progress) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        progress.step(&format!("loading {} onto the nodes", images.join(", ")));
        let mut args = Self::docker_args(&["load", "docker-image", "--name", CLUSTER_NAME]);
        args.extend(images.iter().cloned());
        self.run_ok(&self.kind, &args, None).await.map(|_| ())
    }

    /// Deploys kube-router's NetworkPolicy firewall when its image is in the engine; says
    /// whether it did. Its pods are kube-system pods, so `wait_ready` waits for them.
    pub(super) async fn install_network_policy(&self, progress: &dyn Progress) -> Result<bool> {
        let present = self.run(&self.docker, &Self::docker_args(&["image", "inspect", NETPOL_IMAGE]), None).await?;
        if present.code != 0 {
            progress.step(&format!(
                "no {NETPOL_IMAGE} in the engine: NetworkPolicy will not be enforced (scripts/kind-netpol.sh builds it)"
            ));
            return Ok(false);
        }
        progress.step("deploying kube-router's NetworkPolicy firewall");
        self.run_ok(
            &self.kind,
            &Self::docker_args(&["load", "docker-image", "--name", CLUSTER_NAME, NETPOL_IMAGE]),
            None,
        )
        .await?;
        crate::step::apply_yaml(self, NETPOL_MANIFEST).await.map_err(|e| BackendError::NetpolManifest(Box::new(e)))?;
        Ok(true)
    }

    /// The gateway of ckslab's Docker network: the host's address as the nodes see it.
    pub(super) async fn record_host_address(&self) -> Result<()> {
        let format = "{{range .IPAM.Config}}{{.Gateway}} {{end}}";
        let out = self
            .run(&self.docker, &Self::docker_args(&["network", "inspect", DOCKER_NETWORK, "-f", format]), None)
            .await?;
        if out.code != 0 {
            tracing::warn!(
                "no gateway for the {DOCKER_NETWORK} network ({}); webhooks listen on 127.0.0.1",
                out.stderr.trim()
            );
        }
        let gateway = out.stdout.split_whitespace().find(|a| a.parse::<std::net::Ipv4Addr>().is_ok()).unwrap_or("");
        std::fs::write(self.dir.join(super::HOST_ADDRESS_FILE), gateway)
            .map_err(|e| BackendError::io("recording the host's address on the kind network", e))
    }

    /// Every node Ready and every kube-system pod Ready (CoreDNS needs the pod network).
    pub(super) async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let client = self.client().await?;
        let deadline = Instant::now() + timeout;
        let nodes: Api<Node> = Api::all(client.clone());
        let pods: Api<Pod> = Api::namespaced(client, "kube-system");
        loop {
            let mut waiting = Vec::new();
            match nodes.list(&ListParams::default()).await {
                Ok(list) => {
                    for node in &list.items {
                        let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten();
                        if !ready(conditions.map(|c| (c.type_.as_str(), c.status.as_str()))) {
                            waiting.push(format!("node {}", node.metadata.name.as_deref().unwrap_or("?")));
                        }
                    }
                    if list.items.len() < self.nodes().len() {
                        waiting.push(format!("{} of {} nodes registered", list.items.len(), self.nodes().len()));
                    }
                }
                Err(e) => waiting.push(format!("the API ({e})")),
            }
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for pod in &list.items {
                    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten();
                    if !ready(conditions.map(|c| (c.type_.as_str(), c.status.as_str()))) {
                        waiting.push(format!("pod kube-system/{}", pod.metadata.name.as_deref().unwrap_or("?")));
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BackendError::Timeout {
                    what: format!("not Ready: {}", waiting.join(", ")),
                    secs: timeout.as_secs(),
                    then: format!("; `docker exec {} journalctl -u kubelet` says why", self.control_plane()),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// What this cluster can really do. NetworkPolicy only with kindnetd or kube-router (the
    /// bridge alone does not enforce it; tests/kind_cluster.rs proves a denied connection fails); a sandbox only where containerd has a runsc handler and runsc exists.
    pub(super) async fn probe_capabilities(&self, own_cni: bool, netpol: bool) -> Capabilities {
        let mut found = base_capabilities();
        if !own_cni || netpol {
            found.insert(Capability::NetworkPolicy);
        }
        let node = self.control_plane();
        let runsc = ["sh", "-c", "command -v runsc >/dev/null && grep -q 'runtimes.runsc' /etc/containerd/config.toml"];
        if self.exec(&node, &Self::docker_args(&runsc)).await.is_ok_and(|o| o.code == 0) {
            found.insert(Capability::SandboxRuntime);
        }
        if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y") {
            found.insert(Capability::Apparmor);
        }
        // crictl answers on the node: containers really run there.
        if !self.exec(&node, &crictl(&["info"])).await.is_ok_and(|o| o.code == 0) {
            found.remove(&Capability::PodExec);
        }
        found
    }
}

/// A node's or a pod's `Ready` condition is `True`.
fn ready<'a>(mut conditions: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    conditions.any(|(kind, status)| kind == "Ready" && status == "True")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
