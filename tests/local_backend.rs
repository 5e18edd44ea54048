//! The local backend against one real local cluster (Kubernetes v1.34.4 under bwrap + kwok).
//!
//! One cluster per test binary: the first test to need it brings it up in a fixed data dir,
//! `$CARGO_TARGET_TMPDIR/local-backend-tests`, after `down`-ing whatever an earlier run left
//! there. The cluster's supervisor is tied to this test process (`with_owner_pid`), so it stops
//! every component within a second of `cargo test` exiting, even when a test panicked; the data
//! dir stays for post-mortems until the next run.
//!
//! Nothing is skipped: without the binaries (scripts/build-k8s.sh) or bwrap, every test fails
//! with the fix. The supervisor executable is the `ckslab` binary (`ckslab __local-supervisor`),
//! or `$CKSLAB_EXE` when set. The cluster binds fixed 127.0.0.1 ports, so a learner's own local
//! cluster must be down while these run.
//!
//! Tests that edit the API server's manifest hold the write half of `API`; the others hold the
//! read half, so they never see the API server restarting under them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ckslab::backend::local::LocalBackend;
use ckslab::backend::{Backend, Capability, LogProgress, wait_api_healthy};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use tokio::sync::{OnceCell, RwLock};

static CLUSTER: OnceCell<Result<(), String>> = OnceCell::const_new();
static API: RwLock<()> = RwLock::const_new(());

const MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const CP: &str = "ckslab-control-plane";

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("local-backend-tests")
}

fn backend() -> LocalBackend {
    let b = LocalBackend::new(&data_dir()).with_owner_pid(std::process::id());
    if std::env::var_os("CKSLAB_EXE").is_some() { b } else { b.with_supervisor_exe(env!("CARGO_BIN_EXE_ckslab")) }
}

async fn bring_up() -> Result<(), String> {
    let b = backend();
    b.down(&LogProgress).await.map_err(|e| format!("cleaning up the previous test cluster: {e}"))?;
    let start = std::time::Instant::now();
    b.up(&LogProgress).await.map_err(|e| format!("local backend up failed: {e}"))?;
    eprintln!("local cluster up in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The shared cluster and a client for this test's runtime.
async fn cluster() -> (LocalBackend, kube::Client) {
    if let Err(e) = CLUSTER.get_or_init(bring_up).await {
        panic!("{e}");
    }
    let b = backend();
    let client = b.client().await.expect("client");
    (b, client)
}

/// A fresh namespace for one test, with its default ServiceAccount in place (pods need it).
async fn namespace(client: &kube::Client, name: &str, labels: serde_json::Value) -> String {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), name);
    eventually(Duration::from_secs(60), "the default ServiceAccount", || async {
        sas.get_opt("default").await.ok().flatten().map(|_| ())
    })
    .await;
    name.to_string()
}

/// Polls `f` until it returns Some, or panics after `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn parse_pod(bytes: &[u8]) -> Pod {
    serde_saphyr::from_str(std::str::from_utf8(bytes).unwrap()).expect("manifest parses")
}

fn to_yaml(pod: &Pod) -> Vec<u8> {
    serde_saphyr::to_string(pod).expect("serialize manifest").into_bytes()
}

/// Writes a new kube-apiserver manifest and waits until the supervisor has acted on it.
async fn apply_manifest(b: &LocalBackend, bytes: &[u8]) -> ckslab::backend::local::ComponentState {
    b.write_file(CP, Path::new(MANIFEST), bytes, 0o600).await.expect("write manifest");
    b.wait_component_synced("kube-apiserver", Duration::from_secs(15)).await.expect("supervisor picks up the manifest")
}

async fn restore_manifest(b: &LocalBackend, original: &[u8]) {
    apply_manifest(b, original).await;
    let client = b.client().await.unwrap();
    wait_api_healthy(&client, Duration::from_secs(90)).await.expect("API healthy after restoring the manifest");
}

#[tokio::test]
async fn node_files_and_exec() {
    let _api = API.read().await;
    let (b, _) = cluster().await;
    assert_eq!(b.nodes(), vec!["ckslab-control-plane".to_string(), "ckslab-worker".to_string()]);
    assert_eq!(b.control_plane(), CP);
    let caps = b.capabilities();
    assert!(caps.contains(&Capability::Etcd) && caps.contains(&Capability::KubeletConfig));
    assert!(!caps.contains(&Capability::PodExec));

    // kubeadm's layout.
    for path in [
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/super-admin.conf",
        "/var/lib/kubelet/config.yaml",
    ] {
        assert!(b.read_file(CP, Path::new(path)).await.unwrap().is_some(), "{path}");
    }
    let key = b.stat_file(CP, Path::new("/etc/kubernetes/pki/ca.key")).await.unwrap().unwrap();
    assert_eq!(key.mode, 0o600);
    let kubelet = b.read_file("ckslab-worker", Path::new("/var/lib/kubelet/config.yaml")).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&kubelet).contains("kind: KubeletConfiguration"));

    // Writes land in the node root and nowhere else.
    let p = Path::new("/opt/ckslab-test/hello.txt");
    b.write_file("ckslab-worker", p, b"hi\n", 0o640).await.unwrap();
    assert_eq!(b.read_file("ckslab-worker", p).await.unwrap().unwrap(), b"hi\n");
    assert_eq!(b.stat_file("ckslab-worker", p).await.unwrap().unwrap().mode, 0o640);
    assert!(b.read_file(CP, p).await.unwrap().is_none());
    b.remove_file("ckslab-worker", p).await.unwrap();
    b.remove_file("ckslab-worker", p).await.unwrap();
    assert!(b.stat_file("ckslab-worker", p).await.unwrap().is_none());
    assert!(b.read_file(CP, Path::new("/etc/../../../etc/passwd")).await.is_err());
    assert!(b.read_file("no-such-node", Path::new("/etc/hosts")).await.is_err());

    // exec sees the node's files, the node's hostname and the cluster binaries.
    let out = b
        .exec(
            CP,
            &["sh".into(), "-c".into(), "hostname; ls /etc/kubernetes/manifests; kubectl version --client".into()],
        )
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("ckslab-control-plane\n"), "{out:?}");
    assert!(out.stdout.contains("kube-apiserver.yaml") && out.stdout.contains("v1.34.4"), "{out:?}");
    let out = b
        .exec(CP, &["kubectl".into(), "--kubeconfig=/etc/kubernetes/admin.conf".into(), "get".into(), "nodes".into()])
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ckslab-worker"), "{out:?}");
    let out = b.exec("ckslab-worker", &["sh".into(), "-c".into(), "exit 3".into()]).await.unwrap();
    assert_eq!(out.code, 3);

    // The node shell (`ckslab node-shell`), driven through a pipe.
    let mut shell = b.shell_command("ckslab-worker", None);
    shell.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = shell.spawn().expect("bwrap shell");
        child.stdin.take().unwrap().write_all(b"hostname\nls /var/lib/kubelet\nexit 4\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stdout.contains("ckslab-worker\n") && stdout.contains("config.yaml"), "{out:?}");
}

#[tokio::test]
async fn status_and_up_again_keep_the_cluster() {
    let _api = API.read().await;
    let (b, _) = cluster().await;
    let manifest = b.read_file(CP, Path::new(MANIFEST)).await.unwrap().unwrap();
    b.up(&LogProgress).await.expect("second up");
    assert_eq!(b.read_file(CP, Path::new(MANIFEST)).await.unwrap().unwrap(), manifest);
    let st = b.status().await.unwrap();
    assert!(st.exists && st.api_healthy, "{st:?}");
    for c in ["etcd", "kube-apiserver"] {
        let comp = st.components.iter().find(|s| s.name == c).unwrap_or_else(|| panic!("{c} in {st:?}"));
        assert!(comp.running, "{comp:?}");
    }
    let logs = b.component_logs("kube-apiserver", 20).await.unwrap();
    assert!(!logs.is_empty());
    assert!(logs.lines().count() <= 20);
}

/// (a) Pod Security Admission denies a privileged pod in a `restricted` namespace.
#[tokio::test]
async fn pod_security_admission_denies_privileged_pod() {
    let _api = API.read().await;
    let (_, client) = cluster().await;
    let ns = namespace(&client, "t-psa", serde_json::json!({"pod-security.kubernetes.io/enforce": "restricted"})).await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "priv"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}
    }))
    .unwrap();
    let pp = PostParams { dry_run: true, ..Default::default() };
    match Api::<Pod>::namespaced(client, &ns).create(&pp, &pod).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(s.message.contains("violates PodSecurity"), "{s:?}");
        }
        other => panic!("expected a PodSecurity denial, got {other:?}"),
    }
}

/// (b) A ServiceAccount may not list pods until a RoleBinding lets it.
#[tokio::test]
async fn subject_access_review_follows_rbac() {
    let _api = API.read().await;
    let (_, client) = cluster().await;
    let ns = namespace(&client, "t-sar", serde_json::json!({})).await;
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": "viewer"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns).create(&PostParams::default(), &sa).await.unwrap();
    let review: SubjectAccessReview = serde_json::from_value(serde_json::json!({
        "spec": {
            "user": format!("system:serviceaccount:{ns}:viewer"),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
            "resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}
        }
    }))
    .unwrap();
    let sars = Api::<SubjectAccessReview>::all(client.clone());
    let allowed = |r: SubjectAccessReview| r.status.map(|s| s.allowed).unwrap_or(false);
    assert!(!allowed(sars.create(&PostParams::default(), &review).await.unwrap()));

    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), &ns).create(&PostParams::default(), &role).await.unwrap();
    let rb: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "viewer-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), &ns).create(&PostParams::default(), &rb).await.unwrap();
    // The RBAC authorizer reads from informers: allow a moment.
    eventually(Duration::from_secs(15), "the RoleBinding to take effect", || async {
        allowed(sars.create(&PostParams::default(), &review).await.ok()?).then_some(())
    })
    .await;
}

/// (e) An approved CSR for kube-apiserver-client gets a certificate signed by the cluster CA.
#[tokio::test]
async fn approved_csr_is_signed_by_the_cluster_ca() {
    let _api = API.read().await;
    let (b, client) = cluster().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "testers");
    params.distinguished_name.push(rcgen::DnType::CommonName, "jane");
    let request = params.serialize_request(&key).unwrap().pem().unwrap();
    let name = "t-csr-jane";
    let csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(request),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 86400,
            "usages": ["client auth"]
        }
    }))
    .unwrap();
    let csrs = Api::<CertificateSigningRequest>::all(client.clone());
    let mut created = csrs.create(&PostParams::default(), &csr).await.unwrap();
    created.status = Some(
        serde_json::from_value(serde_json::json!({"conditions": [{
            "type": "Approved", "status": "True", "reason": "CkslabTest", "message": "approved by the test"
        }]}))
        .unwrap(),
    );
    csrs.replace_subresource("approval", name, &PostParams::default(), &created).await.unwrap();
    // Signed by kube-controller-manager's csrsigning controller (--cluster-signing-*-file).
    let cert_pem = eventually(Duration::from_secs(90), "the CSR to be signed", || async {
        let c = csrs.get(name).await.ok()?;
        c.status?.certificate.map(|b| b.0).filter(|b| !b.is_empty())
    })
    .await;

    let ca_pem = b.read_file(CP, Path::new("/etc/kubernetes/pki/ca.crt")).await.unwrap().unwrap();
    let (_, ca) = x509_parser::pem::parse_x509_pem(&ca_pem).unwrap();
    let ca = ca.parse_x509().unwrap();
    let (_, cert) = x509_parser::pem::parse_x509_pem(&cert_pem).unwrap();
    let cert = cert.parse_x509().unwrap();
    assert_eq!(cert.issuer(), ca.subject());
    cert.verify_signature(Some(ca.public_key())).expect("signed by the cluster CA");
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
    assert_eq!(cn, "jane");
}

/// A 2-replica Deployment of pause pods labelled app=`name` in `ns`.
async fn create_pause_deployment(client: &kube::Client, ns: &str, name: &str) {
    let deploy: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "registry.k8s.io/pause:3.10.1"}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &deploy).await.unwrap();
}

fn pod_is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// (f) A Deployment's pods become Running on the kwok nodes.
#[tokio::test]
async fn deployment_pods_run_on_kwok_nodes() {
    let _api = API.read().await;
    let (_, client) = cluster().await;
    let ns = namespace(&client, "t-deploy", serde_json::json!({})).await;
    create_pause_deployment(&client, &ns, "web").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let running = eventually(Duration::from_secs(120), "2 Running pods", || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let running: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        (running.len() == 2).then_some(running)
    })
    .await;
    for p in running {
        // The control plane's NoSchedule taint keeps them on the worker.
        assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("ckslab-worker"));
    }
}

const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
";

/// (c) Secrets are plaintext in etcd until an EncryptionConfiguration is wired into the API
/// server (flag + hostPath volume) and the secret is rewritten.
#[tokio::test]
async fn encryption_at_rest_through_a_manifest_edit() {
    let _api = API.write().await;
    let (b, client) = cluster().await;
    let ns = namespace(&client, "t-enc", serde_json::json!({})).await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let value = "ckslab-plaintext-canary-4711";
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "canary"},
        "stringData": {"password": value}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let key = format!("/registry/secrets/{ns}/canary");
    let raw = b.etcd_get(&key).await.unwrap().expect("the secret is in etcd");
    assert!(!raw.starts_with(b"k8s:enc:"), "already encrypted?");
    assert!(raw.windows(value.len()).any(|w| w == value.as_bytes()), "the value is plaintext in etcd");
    assert!(b.etcd_get("/registry/secrets/none/none").await.unwrap().is_none());

    let aes_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let enc = format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: {aes_key}
  - identity: {{}}
"
    );
    b.write_file(CP, Path::new("/etc/kubernetes/enc/enc.yaml"), enc.as_bytes(), 0o600).await.unwrap();

    let original = b.read_file(CP, Path::new(MANIFEST)).await.unwrap().unwrap();
    let mut pod = parse_pod(&original);
    let spec = pod.spec.as_mut().unwrap();
    let c = &mut spec.containers[0];
    c.command.as_mut().unwrap().push("--encryption-provider-config=/etc/kubernetes/enc/enc.yaml".into());
    c.volume_mounts.as_mut().unwrap().push(
        serde_json::from_value(
            serde_json::json!({"name": "enc", "mountPath": "/etc/kubernetes/enc", "readOnly": true}),
        )
        .unwrap(),
    );
    spec.volumes.as_mut().unwrap().push(
        serde_json::from_value(serde_json::json!({
            "name": "enc", "hostPath": {"path": "/etc/kubernetes/enc", "type": "DirectoryOrCreate"}
        }))
        .unwrap(),
    );

    let outcome = async {
        let state = apply_manifest(&b, &to_yaml(&pod)).await;
        assert!(state.running, "{state:?}");
        wait_api_healthy(&client, Duration::from_secs(90)).await.expect("API healthy with encryption on");
        let client = b.client().await.unwrap();
        let secrets = Api::<Secret>::namespaced(client, &ns);
        let current = secrets.get("canary").await.unwrap();
        secrets.replace("canary", &PostParams::default(), &current).await.unwrap();
        let raw = b.etcd_get(&key).await.unwrap().unwrap();
        assert!(
            raw.starts_with(b"k8s:enc:aescbc:v1:key1:"),
            "not encrypted: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
        assert!(!raw.windows(value.len()).any(|w| w == value.as_bytes()));
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    // The API server without the encryption config cannot read an encrypted secret, and stays
    // unready while one exists (as on any cluster): remove it before restoring the manifest.
    if let Ok(client) = b.client().await {
        let _ = Api::<Secret>::namespaced(client, &ns).delete("canary", &Default::default()).await;
    }
    restore_manifest(&b, &original).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// (d) A flag whose file has no volume keeps the API server down, and `status()` says why.
#[tokio::test]
async fn flag_without_volume_keeps_the_api_server_down() {
    let _api = API.write().await;
    let (b, _) = cluster().await;
    b.write_file(CP, Path::new("/etc/kubernetes/audit/policy.yaml"), AUDIT_POLICY.as_bytes(), 0o600).await.unwrap();
    let original = b.read_file(CP, Path::new(MANIFEST)).await.unwrap().unwrap();
    let mut pod = parse_pod(&original);
    pod.spec.as_mut().unwrap().containers[0]
        .command
        .as_mut()
        .unwrap()
        .push("--audit-policy-file=/etc/kubernetes/audit/policy.yaml".into());

    let outcome = async {
        apply_manifest(&b, &to_yaml(&pod)).await;
        let st = eventually(Duration::from_secs(60), "status() to report kube-apiserver down", || async {
            let st = b.status().await.ok()?;
            let c = st.components.iter().find(|c| c.name == "kube-apiserver")?;
            (!c.running && c.detail.as_deref().is_some_and(|d| d.contains("/etc/kubernetes/audit/policy.yaml")))
                .then_some(st)
        })
        .await;
        assert!(!st.api_healthy, "{st:?}");
        let c = st.components.iter().find(|c| c.name == "kube-apiserver").unwrap();
        eprintln!("kube-apiserver detail:\n{}", c.detail.as_deref().unwrap_or_default());
        // The supervisor keeps retrying (back-off): the newest log may be a fresh attempt.
        eventually(Duration::from_secs(30), "component_logs to show the error", || async {
            b.component_logs("kube-apiserver", 5).await.ok().filter(|l| l.contains("policy.yaml")).map(|_| ())
        })
        .await;
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    restore_manifest(&b, &original).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A manifest that does not parse leaves the component down with the parse error.
#[tokio::test]
async fn broken_manifest_is_reported() {
    let _api = API.write().await;
    let (b, _) = cluster().await;
    let original = b.read_file(CP, Path::new(MANIFEST)).await.unwrap().unwrap();
    let broken = String::from_utf8_lossy(&original).replacen("spec:\n", "spec:\n  containers: {{{\n", 1);
    let outcome = async {
        let state = apply_manifest(&b, broken.as_bytes()).await;
        assert!(!state.running, "{state:?}");
        let detail = state.detail.unwrap_or_default();
        assert!(detail.contains("invalid static pod manifest"), "{detail}");
        let st = b.status().await.unwrap();
        let c = st.components.iter().find(|c| c.name == "kube-apiserver").unwrap();
        assert!(!c.running);
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    restore_manifest(&b, &original).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// kwok's nodes have no kubelet: if the node lifecycle controller took one for NotReady after a
/// late heartbeat (a busy machine, an API server held down by a scenario), it would mark the
/// node's pods not Ready and nothing would ever mark them Ready again. kwok is frozen for longer
/// than Kubernetes' default 50s grace period; the pods must stay Ready.
#[tokio::test]
async fn pods_stay_ready_when_kwok_misses_heartbeats() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _api = API.write().await;
    let (_, client) = cluster().await;
    let ns = namespace(&client, "t-heartbeat", serde_json::json!({})).await;
    create_pause_deployment(&client, &ns, "steady").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let ready = || async {
        let list = pods.list(&ListParams::default().labels("app=steady")).await.ok()?;
        (list.items.iter().filter(|p| pod_is_ready(p)).count() == 2).then_some(())
    };
    eventually(Duration::from_secs(120), "2 Ready pods", ready).await;

    let pid_file = data_dir().join("local/pids/kwok.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    /// Thaws kwok even when an assertion fails.
    struct Thaw(Pid);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGCONT);
        }
    }
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let thaw = Thaw(Pid::from_raw(pid));
    tokio::time::sleep(Duration::from_secs(65)).await;
    drop(thaw);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let list = pods.list(&ListParams::default().labels("app=steady")).await.unwrap();
    for pod in &list.items {
        assert!(pod_is_ready(pod), "{} lost Ready: {:?}", pod.metadata.name.as_deref().unwrap_or("?"), pod.status);
    }
}

/// Exam mode moves on through the same path as `ckslab start`: an exam whose first task is
/// etcd-encryption, solved, then its second task started and solved, both grades passing.
#[tokio::test]
async fn an_exam_that_draws_etcd_encryption_first_moves_on() {
    let _api = API.write().await;
    let (b, _client) = cluster().await;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered: Vec<_> = catalog.scenarios.iter().map(|s| s.render(&Default::default()).unwrap()).collect();
    let candidates: Vec<&ckslab::scenario::Scenario> =
        rendered.iter().map(|r| &r.scenario).filter(|s| ckslab::lab::missing_capabilities(s, &b).is_empty()).collect();
    let curriculum = ckslab::curriculum::Curriculum::get();
    let exam = (0..10_000)
        .filter_map(|seed| ckslab::exam::Exam::draw("e".into(), &candidates, curriculum, seed, 5, 0))
        // (a second task that starts a webhook backend would start this test binary as it)
        .find(|e| {
            e.tasks.len() >= 2
                && e.tasks[0].scenario == "etcd-encryption"
                && e.tasks[1].scenario != "image-policy-webhook"
        })
        .expect("some seed draws etcd-encryption first");
    let lab = ckslab::lab::Lab::new(std::sync::Arc::new(backend()), &data_dir());
    for task in &exam.tasks[..2] {
        let task = rendered.iter().find(|r| r.scenario.id == task.scenario).unwrap();
        lab.reset(task, &LogProgress).await.unwrap_or_else(|e| panic!("starting {}: {e}", task.scenario.id));
        lab.solve(task, 0, &LogProgress).await.unwrap_or_else(|e| panic!("solving {}: {e}", task.scenario.id));
        let report = lab.grade(task, |_| {}).await;
        assert!(report.passed, "{} after moving on: {:?}", task.scenario.id, report.verdicts);
    }
    // Leave the shared cluster as the other tests expect it.
    let last = lab.active().expect("the second task is active");
    lab.undo(&last, &LogProgress).await.unwrap();
}
