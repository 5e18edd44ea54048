//! The kind backend's plumbing, against recording fakes of the `docker` and `kind` CLIs (no
//! Docker engine runs here). The fakes keep node files under a folder per node, so reads,
//! writes, backups and stats go through the backend's real command lines.

mod common;

use std::path::{Path, PathBuf};

use ckslab::backend::kind::KindBackend;
use ckslab::backend::{Backend, BackendError, Capability, LogProgress};

const FAKE_DOCKER: &str = r#"#!/usr/bin/env bash
echo "docker $*" >> "$FAKE_LOG"
case "$1" in
  info) echo 28.2.2; exit 0 ;;
  # Node containers of the cluster (a killed `up` can leave some that kind's delete misses).
  ps) [ -f "$FAKE_ROOT/leftover" ] && cat "$FAKE_ROOT/leftover"; exit 0 ;;
  rm) rm -f "$FAKE_ROOT/leftover"; exit 0 ;;
  # Images in the engine are files under $FAKE_ROOT/images; `load -i` adds an archive's names.
  image) [ -f "$FAKE_ROOT/images/$(echo "$3" | tr '/:' '__')" ]; exit ;;
  load)
    mkdir -p "$FAKE_ROOT/images"
    for n in $(tar -xOf "$3" manifest.json | tr -d '[]{}" ' | tr ',' '\n' | sed -n 's/^RepoTags://p'); do
      touch "$FAKE_ROOT/images/$(echo "$n" | tr '/:' '__')"
    done
    exit 0 ;;
  # The default-CNI probe of an offline node image: this one has kind's.
  run) exit 0 ;;
  exec)
    shift
    [ "$1" = "-i" ] && shift
    node=$1; shift
    args=()
    for a in "$@"; do
      case "$a" in /etc/*|/var/*) args+=("$FAKE_ROOT/$node$a") ;; *) args+=("$a") ;; esac
    done
    exec "${args[@]}" ;;
esac
exit 1
"#;

const FAKE_KIND: &str = r#"#!/usr/bin/env bash
echo "kind $*" >> "$FAKE_LOG"
touch "$FAKE_ROOT/clusters"
case "$1 $2" in
  "get clusters") cat "$FAKE_ROOT/clusters" ;;
  "create cluster")
    if [ -n "$FAKE_KIND_FAIL" ]; then echo "ERROR: failed to init node with kubeadm: timed out" >&2; exit 1; fi
    shift 2
    while [ $# -gt 0 ]; do case "$1" in --name) name=$2 ;; --kubeconfig) kc=$2 ;; --config) cfg=$2 ;; esac; shift; done
    grep -q "kind: Cluster" "$cfg" || exit 9
    echo "$name" >> "$FAKE_ROOT/clusters"
    cp "$FAKE_KUBECONFIG" "$kc" ;;
  "load docker-image") exit 0 ;;
  "delete cluster")
    shift 2
    while [ $# -gt 0 ]; do case "$1" in --name) name=$2 ;; esac; shift; done
    grep -v "^$name\$" "$FAKE_ROOT/clusters" > "$FAKE_ROOT/clusters.new"; mv "$FAKE_ROOT/clusters.new" "$FAKE_ROOT/clusters" ;;
  *) exit 1 ;;
esac
"#;

/// An API server that says what `up` waits for: healthy, two Ready nodes, kube-system Ready.
fn fake_api() -> std::net::SocketAddr {
    use axum::{Json, Router, routing::get};
    let node = |name: &str| serde_json::json!({"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let nodes = serde_json::json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {},
        "items": [node("ckslab-control-plane"), node("ckslab-worker")]});
    let pods = serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []});
    let app = Router::new()
        .route("/readyz", get(|| async { "ok" }))
        .route("/api/v1/nodes", get(move || async move { Json(nodes) }))
        .route("/api/v1/namespaces/kube-system/pods", get(move || async move { Json(pods) }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Fakes {
        let dir = tempfile::tempdir().unwrap();
        let api = fake_api();
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://{api}'}}}}]\nusers: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        for (name, body) in [("docker", FAKE_DOCKER), ("kind", FAKE_KIND)] {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The fakes read these; each test binary runs its tests one at a time (see below).
        unsafe {
            std::env::set_var("FAKE_LOG", dir.path().join("log"));
            std::env::set_var("FAKE_ROOT", dir.path().join("root"));
            std::env::set_var("FAKE_KUBECONFIG", dir.path().join("kubeconfig"));
        }
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        Fakes { dir }
    }

    fn backend(&self) -> KindBackend {
        KindBackend::with_tools(&self.home(), self.dir.path().join("docker"), self.dir.path().join("kind"))
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn node_root(&self, node: &str) -> PathBuf {
        self.dir.path().join("root").join(node)
    }
}

// The fakes are configured through the environment, so these run in one test to stay serial.
#[tokio::test]
async fn kind_backend_plumbing() {
    up_creates_once_and_down_deletes_only_its_own().await;
    node_files_round_trip_with_backups().await;
    missing_tools_name_the_fix().await;
    node_file_steps_leave_backups().await;
    a_missing_node_image_names_the_command_that_builds_it().await;
    a_failed_create_says_why_and_deletes_only_its_nodes().await;
    up_loads_what_the_engine_lacks_from_the_cache().await;
    recreate_moves_between_versions_and_back().await;
}

/// The upgrade lab: a fresh cluster at the older version on its own node image (etcd pinned
/// to the tag that image carries), back to the default, and nothing deleted for a version
/// there is no image of.
async fn recreate_moves_between_versions_and_back() {
    let fakes = Fakes::new();
    let cache = fakes.dir.path().join("cache/kind");
    image_archive(&cache.join("kind-node-v1.34.4.tar"), &["ckslab/kind-node:v1.34.4"]);
    let plain = fakes.backend().with_cache(cache.clone());
    assert!(!plain.capabilities().contains(&Capability::KubernetesUpgrade), "no upgrade image, no upgrade lab");
    image_archive(&cache.join("kind-node-v1.33.13.tar"), &["ckslab/kind-node:v1.33.13"]);
    let backend = fakes.backend().with_cache(cache.clone());
    assert!(backend.capabilities().contains(&Capability::KubernetesUpgrade));

    backend.up(&LogProgress).await.unwrap();
    assert_eq!(backend.created_at(), None);
    backend.recreate(Some("v1.33.13"), &LogProgress).await.unwrap();
    let log = fakes.log();
    assert_eq!(log.matches("kind delete cluster --name ckslab").count(), 1, "{log}");
    assert!(log.contains(&format!("docker load -i {}", cache.join("kind-node-v1.33.13.tar").display())), "{log}");
    assert_eq!(log.matches("kind create cluster").count(), 2, "{log}");
    let config = std::fs::read_to_string(fakes.home().join("kind/cluster.yaml")).unwrap();
    assert!(config.contains("image: ckslab/kind-node:v1.33.13"), "{config}");
    assert!(config.contains("imageTag: 3.6.5-0"), "etcd stays the version the image carries: {config}");
    assert_eq!(backend.created_at().as_deref(), Some("v1.33.13"));
    assert!(backend.capabilities().contains(&Capability::KubernetesUpgrade), "still offered once made");

    backend.recreate(None, &LogProgress).await.unwrap();
    let config = std::fs::read_to_string(fakes.home().join("kind/cluster.yaml")).unwrap();
    assert!(config.contains("image: ckslab/kind-node:v1.34.4") && !config.contains("imageTag"), "{config}");
    assert_eq!(backend.created_at(), None);

    let before = fakes.log().matches("kind delete cluster").count();
    let err = backend.recreate(Some("v1.99.0"), &LogProgress).await.unwrap_err().to_string();
    assert!(err.contains("cannot create a cluster at Kubernetes v1.99.0"), "{err}");
    assert!(err.contains("ckslab/kind-node:v1.99.0") && err.contains("build-kind-node.sh --upgrade-from"), "{err}");
    assert_eq!(fakes.log().matches("kind delete cluster").count(), before, "the cluster is kept: {}", fakes.log());
    backend.down(&LogProgress).await.unwrap();
    assert_eq!(backend.created_at(), None);
}

/// A `docker save`-shaped archive: a layer and a manifest.json naming `tags`.
fn image_archive(path: &Path, tags: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let manifest = serde_json::json!([{"Config": "blobs/sha256/c", "RepoTags": tags, "Layers": ["blobs/sha256/l"]}]);
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [("blobs/sha256/l", b"layer".to_vec()), ("manifest.json", manifest.to_string().into_bytes())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, &data[..]).unwrap();
    }
    tar.finish().unwrap();
}

/// What a classroom bundle leaves in the cache is enough for `up`: no CKSLAB_KIND_* variable.
async fn up_loads_what_the_engine_lacks_from_the_cache() {
    let fakes = Fakes::new();
    let cache = fakes.dir.path().join("cache/kind");
    image_archive(&cache.join("kind-node-v1.34.4.tar"), &["ckslab/kind-node:v1.34.4"]);
    image_archive(&cache.join("images/ckslab_kube-router_v2.1.0.tar"), &["ckslab/kube-router:v2.1.0"]);
    image_archive(&cache.join("stand-ins/busybox_latest.tar"), &["busybox:latest", "busybox:1.36"]);
    image_archive(&cache.join("stand-ins/nginx_1.27.tar"), &["nginx:1.27"]);
    // nginx is in the engine already: not loaded again.
    std::fs::create_dir_all(fakes.node_root("images")).unwrap();
    std::fs::write(fakes.node_root("images").join("nginx_1.27"), "").unwrap();

    let backend = fakes.backend().with_cache(cache.clone());
    backend.up(&LogProgress).await.unwrap();
    let log = fakes.log();
    let loads: Vec<&str> = log.lines().filter(|l| l.starts_with("docker load")).collect();
    assert_eq!(
        loads,
        [
            format!("docker load -i {}", cache.join("kind-node-v1.34.4.tar").display()),
            format!("docker load -i {}", cache.join("images/ckslab_kube-router_v2.1.0.tar").display()),
            format!("docker load -i {}", cache.join("stand-ins/busybox_latest.tar").display()),
        ],
        "each missing archive once, in that order: {log}"
    );
    assert!(log.contains("kind load docker-image --name ckslab busybox:1.36 busybox:latest nginx:1.27"), "{log}");
    let config = std::fs::read_to_string(fakes.home().join("kind/cluster.yaml")).unwrap();
    assert!(config.contains("image: ckslab/kind-node:v1.34.4"), "{config}");
    let create = log.find("kind create cluster").unwrap();
    assert!(log.rfind("docker load").unwrap() < create, "the engine has every image before create: {log}");
}

async fn a_missing_node_image_names_the_command_that_builds_it() {
    let fakes = Fakes::new();
    let backend = fakes.backend().with_node_image(Some("ckslab/kind-node:v1.34.4".into()));
    let err = backend.up(&LogProgress).await.unwrap_err().to_string();
    assert!(err.contains("ckslab/kind-node:v1.34.4 is not in this Docker engine"), "{err}");
    assert!(err.contains("scripts/build-kind-node.sh"), "{err}");
    assert!(!fakes.log().contains("create cluster"), "nothing is created without the image: {}", fakes.log());
}

async fn a_failed_create_says_why_and_deletes_only_its_nodes() {
    let fakes = Fakes::new();
    unsafe { std::env::set_var("FAKE_KIND_FAIL", "1") };
    let err = fakes.backend().up(&LogProgress).await.unwrap_err().to_string();
    unsafe { std::env::remove_var("FAKE_KIND_FAIL") };
    assert!(err.contains("kind create cluster failed"), "{err}");
    assert!(err.contains("failed to init node with kubeadm: timed out"), "kind's own words: {err}");
    assert!(err.contains("kubelet journal on ckslab-control-plane"), "{err}");
    let log = fakes.log();
    assert!(log.contains("kind delete cluster --name ckslab"), "the nodes it made are deleted: {log}");
    assert!(!fakes.home().join("kind/.created-by-ckslab").exists(), "nothing left to claim");
}

async fn node_file_steps_leave_backups() {
    let fakes = Fakes::new();
    common::node_file_steps_leave_backups(&fakes.backend()).await;
}

async fn up_creates_once_and_down_deletes_only_its_own() {
    let fakes = Fakes::new();
    let backend = fakes.backend();
    backend.up(&LogProgress).await.unwrap();
    backend.up(&LogProgress).await.unwrap();
    let log = fakes.log();
    assert_eq!(log.matches("kind create cluster --name ckslab --config").count(), 1, "{log}");
    assert!(backend.kubeconfig_path().exists());
    let config = std::fs::read_to_string(fakes.home().join("kind/cluster.yaml")).unwrap();
    assert!(config.contains("kindest/node:v1.34"));
    // A node kind's delete missed (still starting after a killed `up`) is removed too.
    std::fs::write(fakes.dir.path().join("root/leftover"), "0123abcd\n").unwrap();
    backend.down(&LogProgress).await.unwrap();
    let log = fakes.log();
    assert!(log.contains("kind delete cluster --name ckslab"), "{log}");
    assert!(log.contains("docker rm -f -v 0123abcd"), "{log}");
    assert!(!fakes.dir.path().join("root/leftover").exists());

    // A cluster named ckslab that this ckslab did not create is never deleted.
    let stranger = Fakes::new();
    std::fs::write(stranger.dir.path().join("root/clusters"), "ckslab\n").unwrap();
    let err = stranger.backend().down(&LogProgress).await.unwrap_err();
    assert!(err.to_string().contains("deletes only clusters it created"), "{err}");
    assert!(!stranger.log().contains("delete cluster"), "{}", stranger.log());
}

async fn node_files_round_trip_with_backups() {
    let fakes = Fakes::new();
    let backend = fakes.backend();
    let node = backend.control_plane();
    let path = Path::new("/etc/kubernetes/manifests/kube-apiserver.yaml");
    assert_eq!(backend.read_file(&node, path).await.unwrap(), None);
    backend.write_file(&node, path, b"first\n", 0o600).await.unwrap();
    assert_eq!(
        std::fs::read(fakes.node_root(&node).join("etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap(),
        b"first\n"
    );
    backend.write_file(&node, path, b"second\n", 0o600).await.unwrap();
    assert_eq!(backend.read_file(&node, path).await.unwrap().as_deref(), Some(&b"second\n"[..]));
    let stat = backend.stat_file(&node, path).await.unwrap().unwrap();
    assert_eq!(stat.mode, 0o600);
    let backups: Vec<_> = std::fs::read_dir(fakes.home().join("backups").join(&node).join("etc/kubernetes/manifests"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(backups, vec![b"first\n".to_vec()], "the overwritten content is backed up");
    backend.remove_file(&node, path).await.unwrap();
    assert_eq!(backend.read_file(&node, path).await.unwrap(), None);
    assert!(matches!(backend.read_file("elsewhere", path).await, Err(BackendError::UnknownNode(_))));
    let out = backend.exec(&node, &["echo".into(), "hello".into()]).await.unwrap();
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello\n"));
}

async fn missing_tools_name_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let backend = KindBackend::with_tools(home.path(), "/nonexistent/docker".into(), "/nonexistent/kind".into());
    let err = backend.up(&LogProgress).await.unwrap_err();
    assert!(matches!(err, BackendError::MissingTool { .. }), "{err}");
    assert!(err.to_string().contains("--backend local"), "{err}");
}
