//! Every probe type against fixtures: a backend whose node files and command outputs are
//! fixed, and whose kube client talks to an in-process fake API server (a `tower` service
//! answering discovery, objects, SubjectAccessReviews and dry-run creates from a table). Each
//! test shows a pass and the near miss, and what the near miss says it observed.
//! (etcd-value, audit-log and certificate probes have fixture tests beside their code, and every
//! probe runs against a real control plane in tests/local_backend.rs and the scenario proofs.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ckslab::backend::{Backend, BackendError, Capabilities, Capability, ClusterStatus, ExecOutput, FileStat, Progress};
use ckslab::check::{self, Outcome, Verdict};
use ckslab::scenario::CheckSpec;
use http_body_util::BodyExt;
use serde_json::{Value, json};

const CP: &str = "ckslab-control-plane";
const WORKER: &str = "ckslab-worker";

/// Answers one API request: (method, path with query, body) -> (status, JSON body).
type ApiTable = dyn Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync;

/// Node files by (node, path).
type Files = HashMap<(String, PathBuf), (Vec<u8>, FileStat)>;

struct Fixture {
    files: Mutex<Files>,
    commands: HashMap<String, ExecOutput>,
    api: Arc<ApiTable>,
    /// Every API request seen, as "METHOD path?query body".
    requests: Arc<Mutex<Vec<String>>>,
    api_down: bool,
}

impl Fixture {
    fn new(api: impl Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync + 'static) -> Fixture {
        Fixture {
            files: Mutex::default(),
            commands: HashMap::new(),
            api: Arc::new(api),
            requests: Arc::default(),
            api_down: false,
        }
    }

    fn no_api() -> Fixture {
        Fixture::new(|_, path, _| (404, status_body(404, &format!("no fixture for {path}"))))
    }

    fn file(self, node: &str, path: &str, contents: &str, mode: u32, uid: u32) -> Fixture {
        let stat = FileStat { mode, uid, gid: uid, is_dir: false };
        self.files.lock().unwrap().insert((node.into(), path.into()), (contents.as_bytes().to_vec(), stat));
        self
    }

    fn command(mut self, argv: &str, code: i32, stdout: &str) -> Fixture {
        self.commands.insert(argv.into(), ExecOutput { code, stdout: stdout.into(), stderr: String::new() });
        self
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    async fn grade(&self, yaml: &str) -> Verdict {
        let spec: CheckSpec = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("check fixture: {e}\n{yaml}"));
        check::run(&spec, self).await
    }
}

fn status_body(code: u16, message: &str) -> Value {
    let reason = if code == 404 { "NotFound" } else { "Forbidden" };
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": message, "reason": reason})
}

#[async_trait]
impl Backend for Fixture {
    fn shell_command(&self, _node: &str, command: Option<&str>) -> std::process::Command {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", command.unwrap_or("exit 0")]);
        cmd
    }

    fn name(&self) -> &'static str {
        "fixture"
    }
    fn capabilities(&self) -> Capabilities {
        [Capability::Api, Capability::ControlPlaneFiles, Capability::KubeletConfig].into_iter().collect()
    }
    async fn up(&self, _: &dyn Progress) -> Result<(), BackendError> {
        Ok(())
    }
    async fn down(&self, _: &dyn Progress) -> Result<(), BackendError> {
        Ok(())
    }
    async fn status(&self) -> Result<ClusterStatus, BackendError> {
        Err(BackendError::NoCluster { backend: "fixtures".into() })
    }
    fn kubeconfig_path(&self) -> PathBuf {
        PathBuf::from("/nonexistent/kubeconfig")
    }
    async fn client(&self) -> Result<kube::Client, BackendError> {
        let (api, requests, down) = (self.api.clone(), self.requests.clone(), self.api_down);
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let (api, requests) = (api.clone(), requests.clone());
            async move {
                if down {
                    return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
                }
                let method = request.method().to_string();
                let uri = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let headers = request.headers().clone();
                let impersonated: Vec<String> = ["Impersonate-User", "Impersonate-Group"]
                    .iter()
                    .flat_map(|h| headers.get_all(*h).iter().map(move |v| format!("{h}={}", v.to_str().unwrap_or(""))))
                    .collect();
                let bytes = request.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                requests
                    .lock()
                    .unwrap()
                    .push(format!("{method} {uri} {body} {}", impersonated.join(" ")).trim_end().to_string());
                let (code, answer) = api(&method, &uri, &body);
                let response = http::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                Ok::<_, std::io::Error>(response)
            }
        });
        Ok(kube::Client::new(service, "default"))
    }
    fn nodes(&self) -> Vec<String> {
        vec![CP.into(), WORKER.into()]
    }
    fn control_plane(&self) -> String {
        CP.into()
    }
    fn node_shell_hint(&self, node: &str) -> String {
        format!("shell on {node}")
    }
    async fn read_file(&self, node: &str, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.files.lock().unwrap().get(&(node.to_string(), path.to_path_buf())).map(|(b, _)| b.clone()))
    }
    async fn put_file(&self, node: &str, path: &Path, contents: &[u8], mode: u32) -> Result<(), BackendError> {
        let stat = FileStat { mode, uid: 0, gid: 0, is_dir: false };
        self.files.lock().unwrap().insert((node.into(), path.into()), (contents.to_vec(), stat));
        Ok(())
    }
    async fn delete_file(&self, node: &str, path: &Path) -> Result<(), BackendError> {
        self.files.lock().unwrap().remove(&(node.to_string(), path.to_path_buf()));
        Ok(())
    }
    async fn stat_file(&self, node: &str, path: &Path) -> Result<Option<FileStat>, BackendError> {
        let files = self.files.lock().unwrap();
        if let Some((_, stat)) = files.get(&(node.to_string(), path.to_path_buf())) {
            return Ok(Some(*stat));
        }
        // A folder exists when a file below it does.
        let is_dir = files.keys().any(|(n, p)| n == node && p.starts_with(path));
        Ok(is_dir.then_some(FileStat { mode: 0o755, uid: 0, gid: 0, is_dir: true }))
    }
    async fn exec(&self, _node: &str, argv: &[String]) -> Result<ExecOutput, BackendError> {
        self.commands.get(&argv.join(" ")).cloned().ok_or_else(|| BackendError::CommandFailed {
            command: argv.join(" "),
            code: 127,
            stderr: "no fixture".into(),
        })
    }
    async fn etcd_get(&self, _key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(None)
    }
    async fn component_logs(&self, _component: &str, _lines: usize) -> Result<String, BackendError> {
        Ok(if self.api_down {
            "E1123 run.go:72] open /etc/kubernetes/enc/enc.yaml: no such file or directory\n".into()
        } else {
            String::new()
        })
    }
}

const APISERVER: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";

fn apiserver_manifest(extra_flags: &[&str]) -> String {
    let mut flags = vec![
        "--advertise-address=172.18.0.2",
        "--enable-admission-plugins=NodeRestriction",
        "--authorization-mode=Node,RBAC",
        "--etcd-servers=https://127.0.0.1:2379",
    ];
    flags.extend_from_slice(extra_flags);
    let command: String = flags.iter().map(|f| format!("    - {f}\n")).collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.34.0
    command:
    - kube-apiserver
{command}    volumeMounts:
    - {{mountPath: /etc/kubernetes/pki, name: k8s-certs, readOnly: true}}
    - {{mountPath: /etc/kubernetes/enc, name: enc, readOnly: true}}
  volumes:
  - {{name: k8s-certs, hostPath: {{path: /etc/kubernetes/pki, type: DirectoryOrCreate}}}}
  - {{name: enc, hostPath: {{path: /etc/kubernetes/enc, type: DirectoryOrCreate}}}}
"
    )
}

fn assert_outcome(verdict: &Verdict, outcome: Outcome, observed_contains: &str) {
    assert_eq!(verdict.outcome, outcome, "{verdict:#?}");
    assert!(
        verdict.observed.contains(observed_contains),
        "observed {:?} lacks {observed_contains:?}",
        verdict.observed
    );
}

#[tokio::test]
async fn component_flags_are_read_from_the_manifest_as_data() {
    let enc = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc: {keys: [{name: k1, secret: c2VjcmV0}]}\n  - identity: {}\n";
    let fixture = Fixture::no_api()
        .file(
            CP,
            APISERVER,
            &apiserver_manifest(&[
                "--encryption-provider-config=/etc/kubernetes/enc/enc.yaml",
                "--profiling",
                "--audit-policy-file=/etc/audit/policy.yaml",
            ]),
            0o600,
            0,
        )
        .file(CP, "/etc/kubernetes/enc/enc.yaml", enc, 0o600, 0);

    let equals = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: authorization-mode, equals: 'Node,RBAC'}}";
    assert_outcome(&fixture.grade(equals).await, Outcome::Pass, "--authorization-mode=Node,RBAC");
    let includes = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: enable-admission-plugins, includes: ImagePolicyWebhook}}";
    let verdict = fixture.grade(includes).await;
    assert_outcome(&verdict, Outcome::Fail, "kube-apiserver has --enable-admission-plugins=NodeRestriction");
    assert_eq!(verdict.expected, "--enable-admission-plugins to include ImagePolicyWebhook");
    // A bare boolean flag reads as true, so `--profiling` is not `--profiling=false`.
    let profiling =
        "{id: a, description: d, component-flag: {component: kube-apiserver, flag: profiling, equals: 'false'}}";
    assert_outcome(&fixture.grade(profiling).await, Outcome::Fail, "--profiling=true");
    let absent =
        "{id: a, description: d, component-flag: {component: kube-apiserver, flag: anonymous-auth, absent: true}}";
    assert_outcome(&fixture.grade(absent).await, Outcome::Pass, "has no --anonymous-auth");

    // The flag's file must be visible inside the container, through a hostPath volume.
    let mounted = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: encryption-provider-config, file-mounted: true}}";
    assert_outcome(
        &fixture.grade(mounted).await,
        Outcome::Pass,
        "mounted from the node's /etc/kubernetes/enc/enc.yaml",
    );
    let unmounted = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: audit-policy-file, file-mounted: true}}";
    assert_outcome(&fixture.grade(unmounted).await, Outcome::Fail, "no volume mount covers /etc/audit/policy.yaml");

    // The file the flag names, parsed: the first provider is what encrypts.
    let fields = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: encryption-provider-config, present: true, file-fields: [{path: '$.resources[0].providers[0].aescbc', present: true}]}}";
    assert_outcome(&fixture.grade(fields).await, Outcome::Pass, "");
    let identity_first = "{id: a, description: d, component-flag: {component: kube-apiserver, flag: encryption-provider-config, present: true, file-fields: [{path: '$.resources[0].providers[0].identity', present: true}]}}";
    assert_eq!(fixture.grade(identity_first).await.outcome, Outcome::Fail);

    // A manifest that does not parse is a failure that says so, not a crash.
    let broken = Fixture::no_api().file(CP, APISERVER, "apiVersion: v1\nkind: Pod\nspec: [unclosed\n", 0o600, 0);
    let verdict = broken.grade(equals).await;
    assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:#?}");
    assert!(verdict.observed.contains("kube-apiserver.yaml"), "{verdict:#?}");
    let missing = Fixture::no_api().grade(equals).await;
    assert_outcome(&missing, Outcome::Fail, "does not exist on ckslab-control-plane");
}

/// A flag given more than once counts as the component counts it: list flags add up, a scalar
/// keeps its last value, in either spelling.
#[tokio::test]
async fn repeated_flags_count_as_the_component_counts_them() {
    let admission = "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n";
    let grade = |extra: &'static [&'static str]| async move {
        let fixture = Fixture::no_api().file(CP, APISERVER, &apiserver_manifest(extra), 0o600, 0).file(
            CP,
            "/etc/kubernetes/enc/admission.yaml",
            admission,
            0o600,
            0,
        );
        let check =
            |probe: &str| format!("{{id: a, description: d, component-flag: {{component: kube-apiserver, {probe}}}}}");
        let mut outcomes = Vec::new();
        for probe in [
            "flag: enable-admission-plugins, includes: ImagePolicyWebhook",
            "flag: enable-admission-plugins, includes: NodeRestriction",
            "flag: enable-admission-plugins, equals: 'NodeRestriction,ImagePolicyWebhook'",
            "flag: admission-control-config-file, file-mounted: true",
        ] {
            let verdict = fixture.grade(&check(probe)).await;
            outcomes.push((verdict.outcome, verdict.observed));
        }
        outcomes
    };
    // The second plugin in a second flag (two-item spelling), the config file named twice: the
    // last (mounted) one counts.
    let outcomes = grade(&[
        "--admission-control-config-file=/etc/unmounted/admission.yaml",
        "--enable-admission-plugins",
        "ImagePolicyWebhook",
        "--admission-control-config-file",
        "/etc/kubernetes/enc/admission.yaml",
    ])
    .await;
    for (outcome, observed) in &outcomes {
        assert_eq!(*outcome, Outcome::Pass, "{observed}");
    }
    assert!(
        outcomes[0].1.contains(
            "--enable-admission-plugins=NodeRestriction and --enable-admission-plugins=ImagePolicyWebhook, which add up to --enable-admission-plugins=NodeRestriction,ImagePolicyWebhook"
        ),
        "{}",
        outcomes[0].1
    );
    // The other way round: the unmounted file is the last word.
    let outcomes = grade(&[
        "--admission-control-config-file=/etc/kubernetes/enc/admission.yaml",
        "--admission-control-config-file=/etc/unmounted/admission.yaml",
    ])
    .await;
    assert_eq!(outcomes[0].0, Outcome::Fail, "{}", outcomes[0].1);
    assert_eq!(outcomes[1].0, Outcome::Pass);
    assert_eq!(outcomes[2].0, Outcome::Fail);
    assert_eq!(outcomes[3].0, Outcome::Fail, "{}", outcomes[3].1);
    assert!(outcomes[3].1.contains("of which the last counts"), "{}", outcomes[3].1);
}

/// (what, admission.yaml, other files of its folder, outcome)
type AdmissionFileCase = (&'static str, String, Vec<(&'static str, String)>, Outcome);

/// An AdmissionConfiguration plugin's settings inline or in a file its `path` names (relative
/// to the configuration's folder, or absolute), in YAML or JSON: the shipped
/// image-policy-webhook check reads them all, and a file with defaultAllow true still fails.
#[tokio::test]
async fn admission_plugin_settings_are_read_inline_or_from_the_file_they_name() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered = catalog.get("image-policy-webhook").unwrap().render(&BTreeMap::new()).unwrap();
    let check = rendered.scenario.checks.iter().find(|c| c.id == "deny-when-unreachable").unwrap().clone();
    let dir = "/etc/kubernetes/policywebhook";
    let manifest = apiserver_manifest(&[
        "--admission-control-config-file=/etc/kubernetes/policywebhook/admission.yaml",
    ])
    .replace(
        "    volumeMounts:\n",
        "    volumeMounts:\n    - {mountPath: /etc/kubernetes/policywebhook, name: policywebhook, readOnly: true}\n",
    )
    .replace(
        "  volumes:\n",
        "  volumes:\n  - {name: policywebhook, hostPath: {path: /etc/kubernetes/policywebhook}}\n",
    );
    let settings_yaml = |allow: bool| {
        format!(
            "imagePolicy:\n  kubeConfigFile: {dir}/kubeconf\n  allowTTL: 50\n  denyTTL: 50\n  retryBackoff: 500\n  defaultAllow: {allow}\n"
        )
    };
    let settings_json = |allow: bool| {
        format!(
            "{{\"apiVersion\": \"apiserver.config.k8s.io/v1\", \"kind\": \"ImagePolicyWebhookConfiguration\", \"imagePolicy\": {{\"kubeConfigFile\": \"{dir}/kubeconf\", \"defaultAllow\": {allow}}}}}"
        )
    };
    let by_path = |path: &str| {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ImagePolicyWebhook\n  path: {path}\n"
        )
    };
    let cases: Vec<AdmissionFileCase> = vec![
        ("inline YAML", rendered.file("files/admission_config_fixed.yaml").unwrap(), vec![], Outcome::Pass),
        ("inline, allowing", rendered.file("files/admission_config.yaml").unwrap(), vec![], Outcome::Fail),
        (
            "relative YAML file",
            by_path("imagepolicy.yaml"),
            vec![("imagepolicy.yaml", settings_yaml(false))],
            Outcome::Pass,
        ),
        (
            "absolute JSON file",
            by_path(&format!("{dir}/imagepolicy.json")),
            vec![("imagepolicy.json", settings_json(false))],
            Outcome::Pass,
        ),
        (
            "relative file allowing",
            by_path("imagepolicy.yaml"),
            vec![("imagepolicy.yaml", settings_yaml(true))],
            Outcome::Fail,
        ),
        ("a file that is not there", by_path("missing.yaml"), vec![], Outcome::Fail),
    ];
    for (what, admission, others, outcome) in cases {
        let mut fixture = Fixture::no_api().file(CP, APISERVER, &manifest, 0o600, 0).file(
            CP,
            &format!("{dir}/admission.yaml"),
            &admission,
            0o600,
            0,
        );
        for (name, contents) in &others {
            fixture = fixture.file(CP, &format!("{dir}/{name}"), contents, 0o600, 0);
        }
        let verdict = check::run(&check, &fixture).await;
        assert_eq!(verdict.outcome, outcome, "{what}: {verdict:#?}");
    }
}

#[tokio::test]
async fn kubelet_config_and_node_files_are_parsed_and_stat_ed() {
    let kubelet = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous: {enabled: true}\nreadOnlyPort: 0\n";
    let fixture = Fixture::no_api()
        .file(CP, "/var/lib/kubelet/config.yaml", kubelet, 0o644, 0)
        .file(WORKER, "/var/lib/kubelet/config.yaml", kubelet, 0o644, 0)
        .file(CP, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o644, 1000);

    let anonymous = "{id: a, description: d, kubelet-config: {node: all, fields: [{path: '$.authentication.anonymous.enabled', equals: false}]}}";
    let verdict = fixture.grade(anonymous).await;
    assert_outcome(&verdict, Outcome::Fail, "true");
    let read_only =
        "{id: a, description: d, kubelet-config: {node: worker, fields: [{path: '$.readOnlyPort', equals: 0}]}}";
    assert_eq!(fixture.grade(read_only).await.outcome, Outcome::Pass);

    let mode = "{id: a, description: d, node-file: {path: /etc/kubernetes/admin.conf, max-mode: 0o600}}";
    assert_outcome(&fixture.grade(mode).await, Outcome::Fail, "has mode 644");
    let owner = "{id: a, description: d, node-file: {path: /etc/kubernetes/admin.conf, owner: 0}}";
    assert_outcome(&fixture.grade(owner).await, Outcome::Fail, "owned by uid 1000");
    let fields = "{id: a, description: d, node-file: {path: /etc/kubernetes/admin.conf, fields: [{path: '$.kind', equals: Config}]}}";
    assert_eq!(fixture.grade(fields).await.outcome, Outcome::Pass);
    let absent = "{id: a, description: d, node-file: {path: /etc/kubernetes/admin.conf, absent: true}}";
    assert_outcome(&fixture.grade(absent).await, Outcome::Fail, "exists");
    let missing = "{id: a, description: d, node-file: {path: /var/log/kubernetes/audit/audit.log}}";
    assert_outcome(&fixture.grade(missing).await, Outcome::Fail, "does not exist");
}

#[tokio::test]
async fn node_commands_are_judged_by_exit_code_and_output() {
    let fixture = Fixture::no_api()
        .command("crictl info", 0, "{\"config\": {\"containerd\": {\"runtimes\": {\"runc\": {}}}}}")
        .command("test -e /run/runsc", 1, "");
    let runtime = "{id: a, description: d, command: {node: control-plane, command: [crictl, info], exit-code: 0, stdout-matches: runsc}}";
    assert_outcome(&fixture.grade(runtime).await, Outcome::Fail, "`crictl info` on ckslab-control-plane exited 0");
    let exits =
        "{id: a, description: d, command: {node: control-plane, command: [test, -e, /run/runsc], exit-code: 1}}";
    assert_eq!(fixture.grade(exits).await.outcome, Outcome::Pass);
    let not_matches =
        "{id: a, description: d, command: {node: control-plane, command: [crictl, info], stdout-not-matches: runsc}}";
    assert_eq!(fixture.grade(not_matches).await.outcome, Outcome::Pass);
    let unknown = "{id: a, description: d, command: {node: control-plane, command: ['false']}}";
    assert_eq!(
        fixture.grade(unknown).await.outcome,
        Outcome::Error,
        "a command that cannot run is an error, not a fail"
    );
}

fn core_discovery() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": true, "kind": "ServiceAccount", "verbs": ["create", "get", "list"]},
        {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["create", "get", "list"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list"]}
    ]})
}

fn cluster_api(method: &str, path: &str, body: &Value) -> (u16, Value) {
    let sa = |name: &str, automount: bool| json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "team"}, "automountServiceAccountToken": automount});
    match (method, path.split('?').next().unwrap()) {
        ("GET", "/api/v1") => (200, core_discovery()),
        ("GET", "/apis/node.k8s.io/v1") => (404, status_body(404, "the server could not find the requested resource")),
        ("GET", "/api/v1/namespaces/team/serviceaccounts/default") => (200, sa("default", false)),
        ("GET", "/api/v1/namespaces/team/serviceaccounts/builder") => (200, sa("builder", true)),
        ("GET", p) if p.starts_with("/api/v1/namespaces/team/serviceaccounts/") => (404, status_body(404, "not found")),
        ("GET", "/api/v1/namespaces/team/pods") => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "web-1", "namespace": "team"}, "spec": {"runtimeClassName": "gvisor", "containers": []}},
                {"metadata": {"name": "web-2", "namespace": "team"}, "spec": {"containers": []}}
            ]}),
        ),
        // Just after a rollout on real nodes: the old pod terminates for its grace period.
        ("GET", "/api/v1/namespaces/rolled/pods") => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "web-new", "namespace": "rolled"}, "spec": {"runtimeClassName": "gvisor", "containers": []}},
                {"metadata": {"name": "web-old", "namespace": "rolled", "deletionTimestamp": "2026-12-01T20:00:00Z"}, "spec": {"containers": []}}
            ]}),
        ),
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews") => {
            let attrs = &body["spec"]["resourceAttributes"];
            let allowed = attrs["resource"] == "configmaps" && attrs["namespace"] == "team" && attrs["verb"] == "list";
            let reason = if allowed { "RBAC: allowed by RoleBinding \"reader/team\"" } else { "" };
            (
                201,
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": body["spec"], "status": {"allowed": allowed, "reason": reason}}),
            )
        }
        ("POST", "/api/v1/namespaces/team/pods") => {
            if body["spec"]["containers"][0]["securityContext"]["privileged"] == true {
                (
                    403,
                    status_body(
                        403,
                        "pods \"probe\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true)",
                    ),
                )
            } else {
                (201, body.clone())
            }
        }
        _ => (404, status_body(404, &format!("no fixture for {method} {path}"))),
    }
}

#[tokio::test]
async fn objects_are_found_through_discovery_and_their_fields_compared() {
    let fixture = Fixture::new(cluster_api);
    let automount = "{id: a, description: d, object: {kind: ServiceAccount, namespace: team, name: default, fields: [{path: '$.automountServiceAccountToken', equals: false}]}}";
    assert_eq!(fixture.grade(automount).await.outcome, Outcome::Pass);
    let still_on = "{id: a, description: d, object: {kind: ServiceAccount, namespace: team, name: builder, fields: [{path: '$.automountServiceAccountToken', equals: false}]}}";
    assert_outcome(&fixture.grade(still_on).await, Outcome::Fail, "true");
    let missing = "{id: a, description: d, object: {kind: ServiceAccount, namespace: team, name: ghost}}";
    assert_outcome(&fixture.grade(missing).await, Outcome::Fail, "ServiceAccount team/ghost does not exist");
    let gone = "{id: a, description: d, object: {kind: ServiceAccount, namespace: team, name: ghost, absent: true}}";
    assert_eq!(fixture.grade(gone).await.outcome, Outcome::Pass);
    // A kind the API does not serve (a CRD not installed) means the object cannot exist.
    let no_kind = "{id: a, description: d, object: {api-version: node.k8s.io/v1, kind: RuntimeClass, name: gvisor}}";
    assert_outcome(&fixture.grade(no_kind).await, Outcome::Fail, "the API has no kind RuntimeClass");

    let every_pod = "{id: a, description: d, objects: {kind: Pod, namespace: team, fields: [{path: '$.spec.runtimeClassName', equals: gvisor}]}}";
    let verdict = fixture.grade(every_pod).await;
    assert_outcome(&verdict, Outcome::Fail, "web-2");
    let at_least_three = "{id: a, description: d, objects: {kind: Pod, namespace: team, min: 3, fields: []}}";
    assert_outcome(&fixture.grade(at_least_three).await, Outcome::Fail, "2 Pod in team found");

    // A terminating pod is on its way out: it neither fails the check nor counts toward min.
    let rolled = "{id: a, description: d, objects: {kind: Pod, namespace: rolled, fields: [{path: '$.spec.runtimeClassName', equals: gvisor}]}}";
    assert_outcome(&fixture.grade(rolled).await, Outcome::Pass, "all 1 Pod");
    let two = "{id: a, description: d, objects: {kind: Pod, namespace: rolled, min: 2, fields: []}}";
    assert_outcome(&fixture.grade(two).await, Outcome::Fail, "1 Pod in rolled found");
}

#[tokio::test]
async fn can_i_asks_a_subject_access_review_with_the_service_account_groups() {
    let fixture = Fixture::new(cluster_api);
    let list = "{id: a, description: d, can-i: {user: 'system:serviceaccount:team:reader', verb: list, resource: configmaps, namespace: team, allowed: true}}";
    assert_outcome(&fixture.grade(list).await, Outcome::Pass, "allowed (RBAC: allowed by RoleBinding \"reader/team\")");
    let secrets = "{id: a, description: d, can-i: {user: 'system:serviceaccount:team:reader', verb: get, resource: secrets, namespace: team, allowed: true}}";
    let verdict = fixture.grade(secrets).await;
    assert_outcome(&verdict, Outcome::Fail, "can system:serviceaccount:team:reader get secrets in team: denied");
    assert_eq!(verdict.expected, "allowed");
    let review = fixture
        .requests()
        .into_iter()
        .find(|r| r.starts_with("POST /apis/authorization.k8s.io/v1/subjectaccessreviews"))
        .unwrap();
    for group in ["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"] {
        assert!(review.contains(&format!("\"{group}\"")), "the review carries {group}: {review}");
    }
}

/// `effective-rules` reads what the subject may do from a SelfSubjectRulesReview made as the
/// subject, and fails on anything beyond the allowed rules: the shipped rbac-least-privilege
/// check against a Role that is right, and against the near misses.
#[tokio::test]
async fn effective_rules_allow_exactly_the_task_and_nothing_else() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered = catalog.get("rbac-least-privilege").unwrap().render(&BTreeMap::new()).unwrap();
    let check = rendered.scenario.checks.iter().find(|c| c.id == "nothing-else").unwrap().clone();
    let basic = json!([
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
        {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}
    ]);
    let configmaps = json!({"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["configmaps"]});
    let view = json!([
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["configmaps", "endpoints", "pods", "services"]},
        {"verbs": ["get", "list", "watch"], "apiGroups": ["apps"], "resources": ["deployments"]}
    ]);
    // (name, rules in payments, rules elsewhere, expected, observed contains)
    let cases: Vec<(&str, Value, Value, Outcome, &str)> = vec![
        ("a Role for configmaps", json!([configmaps.clone()]), json!([]), Outcome::Pass, "nothing more in payments"),
        (
            "split over two rules",
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}, {"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["configmaps"]}]),
            json!([]),
            Outcome::Pass,
            "",
        ),
        (
            "narrowed by name",
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["report"]}]),
            json!([]),
            Outcome::Pass,
            "",
        ),
        (
            "the view ClusterRole",
            view,
            json!([]),
            Outcome::Fail,
            "may also get, list, watch endpoints; get, list, watch pods",
        ),
        (
            "every verb",
            json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]),
            json!([]),
            Outcome::Fail,
            "may also * configmaps in payments",
        ),
        (
            "secrets too",
            json!([configmaps.clone(), {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]),
            json!([]),
            Outcome::Fail,
            "get secrets",
        ),
        (
            "granted cluster-wide",
            json!([configmaps.clone()]),
            json!([configmaps.clone()]),
            Outcome::Fail,
            "may also get, list, watch configmaps in default",
        ),
        (
            "cluster-admin",
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            Outcome::Fail,
            "may also * *.*",
        ),
    ];
    for (what, here, elsewhere, outcome, says) in cases {
        let (here, elsewhere, basic) = (here.clone(), elsewhere.clone(), basic.clone());
        let fixture = Fixture::new(move |method, path, body| match (method, path.split('?').next().unwrap()) {
            ("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews") => {
                let mut rules = basic.as_array().unwrap().clone();
                let granted = if body["spec"]["namespace"] == "payments" { &here } else { &elsewhere };
                rules.extend(granted.as_array().unwrap().iter().cloned());
                (
                    201,
                    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": body["spec"],
                             "status": {"resourceRules": rules, "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/version"]}], "incomplete": false}}),
                )
            }
            _ => (404, status_body(404, &format!("no fixture for {method} {path}"))),
        });
        let verdict = check::run(&check, &fixture).await;
        assert_outcome(&verdict, outcome, says);
        let _ = what;
        let review = fixture.requests().into_iter().next().unwrap();
        assert!(
            review.contains("Impersonate-User=system:serviceaccount:payments:report-reader")
                && review.contains("Impersonate-Group=system:serviceaccounts:payments")
                && review.contains("Impersonate-Group=system:authenticated"),
            "{what}: the review is made as the service account: {review}"
        );
    }
}

#[tokio::test]
async fn admission_is_probed_with_a_server_side_dry_run() {
    let fixture = Fixture::new(cluster_api);
    let pod = |privileged: bool| {
        format!(
            "{{apiVersion: v1, kind: Pod, metadata: {{name: probe, namespace: team}}, spec: {{containers: [{{name: c, image: busybox, securityContext: {{privileged: {privileged}}}}}]}}}}"
        )
    };
    let denied = format!(
        "id: a\ndescription: d\nadmission:\n  allowed: false\n  reason: 'violates PodSecurity \"restricted'\n  object: \"{}\"\n",
        pod(true).replace('"', "\\\"")
    );
    assert_outcome(&fixture.grade(&denied).await, Outcome::Pass, "denied (403)");
    let wrong_reason = denied.replace("restricted'", "baseline'");
    assert_eq!(
        fixture.grade(&wrong_reason).await.outcome,
        Outcome::Fail,
        "denied for another reason is not the asked denial"
    );
    let admitted_when_denial_expected =
        format!("id: a\ndescription: d\nadmission:\n  allowed: false\n  object: \"{}\"\n", pod(false));
    assert_outcome(&fixture.grade(&admitted_when_denial_expected).await, Outcome::Fail, "Pod team/probe was admitted");
    let allowed = format!("id: a\ndescription: d\nadmission:\n  allowed: true\n  object: \"{}\"\n", pod(false));
    assert_eq!(fixture.grade(&allowed).await.outcome, Outcome::Pass);
    let creates: Vec<String> =
        fixture.requests().into_iter().filter(|r| r.starts_with("POST /api/v1/namespaces/team/pods")).collect();
    assert_eq!(creates.len(), 4);
    assert!(creates.iter().all(|r| r.contains("dryRun=All")), "never a real create: {creates:?}");
}

/// A fake API for NetworkPolicy probes: namespaces (shop labelled as `shop_labels`), the policies
/// of payments, and pods: api (port http 8080) and db (port postgres 5432) in payments, web in shop.
fn netpol_api(policies: Vec<Value>, shop_labels: Value) -> impl Fn(&str, &str, &Value) -> (u16, Value) + Send + Sync {
    let pod = |ns: &str, name: &str, app: &str, ports: Value| {
        json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app, "pod-template-hash": "5d4f"}},
               "spec": {"containers": [{"name": app, "image": "nginx", "ports": ports}]}})
    };
    let payments_pods = json!([
        pod("payments", "api-1", "api", json!([{"name": "http", "containerPort": 8080}])),
        pod("payments", "api-2", "api", json!([{"name": "http", "containerPort": 8080}])),
        pod("payments", "db-1", "db", json!([{"name": "postgres", "containerPort": 5432, "protocol": "TCP"}])),
    ]);
    let shop_pods = json!([pod("shop", "web-1", "web", json!([]))]);
    move |method, path, _| {
        let list = |kind: &str, items: Value| json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items});
        match (method, path.split('?').next().unwrap()) {
            ("GET", "/api/v1/namespaces") => (
                200,
                list(
                    "NamespaceList",
                    json!([
                        {"metadata": {"name": "shop", "labels": shop_labels}},
                        {"metadata": {"name": "payments"}},
                        {"metadata": {"name": "kube-system"}}
                    ]),
                ),
            ),
            ("GET", "/apis/networking.k8s.io/v1/namespaces/payments/networkpolicies") => {
                (200, list("NetworkPolicyList", json!(policies)))
            }
            // (the API lists nothing, not an error, for a namespace that does not exist)
            ("GET", p) if p.ends_with("/networkpolicies") => (200, list("NetworkPolicyList", json!([]))),
            ("GET", "/api/v1/namespaces/payments/pods") => (200, list("PodList", payments_pods.clone())),
            ("GET", "/api/v1/namespaces/shop/pods") => (200, list("PodList", shop_pods.clone())),
            ("GET", p) if p.ends_with("/pods") => (200, list("PodList", json!([]))),
            // No workloads: the pods above are all there is (their ports are what resolves).
            ("GET", p) if p.starts_with("/apis/apps/v1/namespaces/") => {
                let kind = match p.rsplit('/').next().unwrap() {
                    "deployments" => "DeploymentList",
                    "statefulsets" => "StatefulSetList",
                    "daemonsets" => "DaemonSetList",
                    _ => "ReplicaSetList",
                };
                (200, json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {}, "items": []}))
            }
            _ => (404, status_body(404, &format!("no fixture for {method} {path}"))),
        }
    }
}

#[tokio::test]
async fn network_access_is_decided_from_the_policies_and_namespace_labels() {
    let api_policy = json!({
        "metadata": {"name": "api", "namespace": "payments"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"tier": "frontend"}}}], "ports": [{"port": 8080}]}]}
    });
    let fixture = Fixture::new(netpol_api(vec![api_policy], json!({"tier": "frontend"})));
    let probe = |from: &str, port: &str, allowed: bool| {
        format!(
            "{{id: a, description: d, network-access: {{from: {from}, to: {{namespace: payments, labels: {{app: api}}}}, port: '{port}', allowed: {allowed}}}}}"
        )
    };
    let shop = "{namespace: shop, labels: {app: web}}";
    assert_outcome(&fixture.grade(&probe(shop, "8080", true)).await, Outcome::Pass, "allowed by policy api");
    let verdict = fixture.grade(&probe(shop, "9090", true)).await;
    assert_outcome(
        &verdict,
        Outcome::Fail,
        "ingress at payments/{app=api} is selected by api and no rule of it admits it",
    );
    assert_eq!(verdict.expected, "shop/{app=web} -> payments/{app=api} on TCP/9090 to be allowed");
    // A namespace that does not exist yet has no labels but its name.
    let elsewhere = "{namespace: default, labels: {app: web}}";
    assert_eq!(fixture.grade(&probe(elsewhere, "8080", false)).await.outcome, Outcome::Pass);
    // The probe may name the port: the destination pods' container ports resolve it.
    assert_outcome(&fixture.grade(&probe(shop, "http", true)).await, Outcome::Pass, "on TCP/8080");
    assert_outcome(
        &fixture.grade(&probe(shop, "postgres", true)).await,
        Outcome::Error,
        "no pod payments/{app=api} declares a TCP container port named \"postgres\"",
    );
}

/// A policy's named port resolves against the destination pods' containerPorts, whether the
/// probe says the number or the name; a name the destination does not declare allows nothing.
#[tokio::test]
async fn named_policy_ports_resolve_on_the_destination_pods() {
    let policy = |port: Value| {
        json!({"metadata": {"name": "api", "namespace": "payments"},
               "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": port}]}]}})
    };
    let probe = |port: &str, allowed: bool| {
        format!(
            "{{id: a, description: d, network-access: {{from: {{namespace: shop, labels: {{app: web}}}}, to: {{namespace: payments, labels: {{app: api}}}}, port: '{port}', allowed: {allowed}}}}}"
        )
    };
    for (policy_port, probe_port, allowed) in [
        (json!("http"), "8080", true),
        (json!("http"), "http", true),
        (json!(8080), "http", true),
        (json!("http"), "8081", false),
        // db's port name, not api's: it does not resolve on api.
        (json!("postgres"), "8080", false),
        (json!("postgres"), "http", false),
        (json!("postgres"), "5432", false),
    ] {
        let fixture = Fixture::new(netpol_api(vec![policy(policy_port.clone())], json!({})));
        let verdict = fixture.grade(&probe(probe_port, allowed)).await;
        assert_eq!(verdict.outcome, Outcome::Pass, "policy port {policy_port}, probe port {probe_port}: {verdict:#?}");
    }
}

/// The network-policy-lockdown scenario's policy sets as files, with what each must fail.
fn lockdown_policies(rendered: &ckslab::scenario::Rendered, files: &[&str]) -> Vec<Value> {
    let mut policies: Vec<Value> = Vec::new();
    for file in files {
        let text = rendered.file(&format!("manifests/{file}")).unwrap();
        for document in text.split("\n---") {
            let policy: Value = serde_saphyr::from_str(document).unwrap();
            if policy.is_null() {
                continue;
            }
            // A later apply of the same name replaces the earlier one.
            policies.retain(|p| p["metadata"]["name"] != policy["metadata"]["name"]);
            policies.push(policy);
        }
    }
    policies
}

/// Every check of the shipped network-policy-lockdown scenario, against each solution's and
/// wrong attempt's policies: solutions pass every check, wrong attempts fail exactly what they name.
#[tokio::test]
async fn the_lockdown_checks_pass_every_solution_and_fail_each_near_miss() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered = catalog.get("network-policy-lockdown").unwrap().render(&BTreeMap::new()).unwrap();
    let cases: Vec<(&str, Vec<&str>, Value, Vec<&str>)> = vec![
        ("default-deny-plus-flows", vec!["default-deny.yaml", "allow-flows.yaml", "allow-dns.yaml"], json!({}), vec![]),
        ("per-app-policies", vec!["per-app.yaml"], json!({"tier": "frontend"}), vec![]),
        (
            "allow-all-left-behind",
            vec!["allow-all.yaml", "default-deny.yaml", "allow-flows.yaml", "allow-dns.yaml"],
            json!({}),
            vec![
                "other-shop-pods-denied",
                "other-namespaces-denied",
                "db-only-from-api",
                "ingress-denied-by-default",
                "only-these-flows",
            ],
        ),
        (
            "ingress-only-default-deny",
            vec!["default-deny-ingress-only.yaml", "allow-flows.yaml"],
            json!({}),
            // (and api-egress-to-db selects api for egress with no DNS rule)
            vec!["egress-denied-by-default", "dns-allowed", "only-these-flows"],
        ),
        (
            "web-from-any-namespace",
            vec!["default-deny.yaml", "allow-flows.yaml", "web-from-any-namespace.yaml", "allow-dns.yaml"],
            json!({}),
            vec!["other-namespaces-denied", "only-these-flows"],
        ),
        (
            "dns-forgotten",
            vec!["default-deny.yaml", "allow-flows.yaml"],
            json!({}),
            vec!["dns-allowed", "only-these-flows"],
        ),
        (
            "api-every-port",
            vec!["default-deny.yaml", "allow-flows.yaml", "web-to-api-every-port.yaml", "allow-dns.yaml"],
            json!({}),
            vec!["only-these-flows"],
        ),
        (
            "dns-to-anywhere",
            vec!["default-deny.yaml", "allow-flows.yaml", "allow-dns-anywhere.yaml"],
            json!({}),
            vec!["only-these-flows"],
        ),
    ];
    for (what, files, shop_labels, failing) in cases {
        let fixture = Fixture::new(netpol_api(lockdown_policies(&rendered, &files), shop_labels));
        for check in &rendered.scenario.checks {
            let verdict = check::run(check, &fixture).await;
            let expected = if failing.contains(&check.id.as_str()) { Outcome::Fail } else { Outcome::Pass };
            assert_eq!(verdict.outcome, expected, "{what}: {} observed {}", check.id, verdict.observed);
        }
        // The scenario's own wrong attempts name the same checks.
        if let Some(attempt) = rendered.scenario.wrong_attempts.iter().find(|w| w.name == what) {
            let named = &attempt.fails;
            assert!(named.iter().all(|id| failing.contains(&id.as_str())), "{what}: the scenario names {named:?}");
        }
    }
    // What a failure says: the flow that should not be there.
    let fixture = Fixture::new(netpol_api(
        lockdown_policies(&rendered, &["default-deny.yaml", "allow-flows.yaml", "allow-dns-anywhere.yaml"]),
        json!({}),
    ));
    let check = rendered.scenario.checks.iter().find(|c| c.id == "only-these-flows").unwrap();
    let verdict = check::run(check, &fixture).await;
    assert_outcome(&verdict, Outcome::Fail, "allowed but not asked for: payments/");
    assert!(
        verdict.observed.contains("on UDP/53: allowed (egress at payments/{app=api} is allowed by policy allow-dns"),
        "{}",
        verdict.observed
    );
}

/// Every check of the shipped node-metadata scenario (rendered into the fixture's namespace),
/// against each solution's and wrong attempt's policies.
#[tokio::test]
async fn the_node_metadata_checks_pass_every_solution_and_fail_each_near_miss() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let params = BTreeMap::from([("namespace".to_string(), serde_json::json!("payments"))]);
    let rendered = catalog.get("node-metadata").unwrap().render(&params).unwrap();
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("except-unlabelled", vec!["deny-metadata-except-readers.yaml"], vec![]),
        ("two-policies", vec!["two-policies.yaml"], vec![]),
        ("port-80-only", vec!["port-80-only.yaml"], vec!["metadata-denied-any-port"]),
        ("no-exception", vec!["no-exception.yaml"], vec!["reader-allowed"]),
        ("deny-all-egress", vec!["deny-all-egress.yaml"], vec!["dns-allowed", "other-egress-kept"]),
        // No policies at all: the broken state.
        ("nothing", vec![], vec!["metadata-denied-http", "metadata-denied-any-port"]),
    ];
    for (what, files, failing) in cases {
        let fixture = Fixture::new(netpol_api(lockdown_policies(&rendered, &files), json!({})));
        for check in &rendered.scenario.checks {
            let verdict = check::run(check, &fixture).await;
            let expected = if failing.contains(&check.id.as_str()) { Outcome::Fail } else { Outcome::Pass };
            assert_eq!(verdict.outcome, expected, "{what}: {} observed {}", check.id, verdict.observed);
        }
        if let Some(attempt) = rendered.scenario.wrong_attempts.iter().find(|w| w.name == what) {
            let named = &attempt.fails;
            assert!(named.iter().all(|id| failing.contains(&id.as_str())), "{what}: the scenario names {named:?}");
        }
    }
}

#[tokio::test]
async fn any_of_and_all_of_combine_probes() {
    let fixture = Fixture::no_api().file(CP, APISERVER, &apiserver_manifest(&[]), 0o600, 0);
    let any = "{id: a, description: d, any-of: [{component-flag: {component: kube-apiserver, flag: anonymous-auth, equals: 'false'}}, {component-flag: {component: kube-apiserver, flag: authorization-mode, includes: RBAC}}]}";
    assert_eq!(fixture.grade(any).await.outcome, Outcome::Pass);
    let all = "{id: a, description: d, all-of: [{component-flag: {component: kube-apiserver, flag: anonymous-auth, equals: 'false'}}, {component-flag: {component: kube-apiserver, flag: authorization-mode, includes: RBAC}}]}";
    assert_outcome(&fixture.grade(all).await, Outcome::Fail, "--anonymous-auth");
}

#[tokio::test]
async fn an_unreachable_api_server_is_an_error_that_shows_its_last_log_line() {
    let mut fixture = Fixture::new(cluster_api);
    fixture.api_down = true;
    let list = "{id: a, description: d, can-i: {user: alice, verb: list, resource: pods, allowed: false}}";
    let verdict = fixture.grade(list).await;
    assert_outcome(&verdict, Outcome::Error, "enc.yaml: no such file or directory");

    // A check that needs what the backend lacks is skipped, and says so.
    let needs_exec = "{id: a, description: d, requires: [pod-exec], command: {pod: team/web-1, command: [id]}}";
    assert_outcome(&fixture.grade(needs_exec).await, Outcome::Skip, "the fixture backend lacks pod-exec");
}

/// (what, pod securityContext, parser's, log-shipper's, pod annotations, checks expected to fail)
type SeccompCase = (&'static str, Value, Value, Value, Value, Vec<&'static str>);

/// The shipped seccomp scenario's own checks, graded against every shape a valid answer can
/// take (seccomp for the pod, per container, or both mixed) and against the near misses.
#[tokio::test]
async fn the_seccomp_checks_accept_every_valid_shape_and_name_the_container_that_misses() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered = catalog.get("seccomp-runtime-default").unwrap().render(&BTreeMap::new()).unwrap();
    let hardened = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let with_seccomp = |kind: &str| {
        let mut context = hardened.clone();
        context["seccompProfile"] = json!({"type": kind});
        context
    };
    let cases: Vec<SeccompCase> = vec![
        (
            "pod-level",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            hardened.clone(),
            json!({}),
            vec![],
        ),
        ("per container", json!({}), with_seccomp("RuntimeDefault"), with_seccomp("RuntimeDefault"), json!({}), vec![]),
        (
            "mixed",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            with_seccomp("RuntimeDefault"),
            hardened.clone(),
            json!({}),
            vec![],
        ),
        (
            "sidecar override",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            with_seccomp("Unconfined"),
            json!({}),
            vec!["seccomp-runtime-default"],
        ),
        (
            "one container",
            json!({}),
            with_seccomp("RuntimeDefault"),
            hardened.clone(),
            json!({}),
            vec!["seccomp-runtime-default"],
        ),
        (
            "annotation",
            json!({}),
            hardened.clone(),
            hardened.clone(),
            json!({"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}),
            vec!["seccomp-runtime-default"],
        ),
        (
            "escalation unset",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({"capabilities": {"drop": ["ALL"]}}),
            json!({}),
            vec!["no-privilege-escalation"],
        ),
        (
            "one capability",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["NET_RAW"]}}),
            json!({}),
            vec!["drop-all-capabilities"],
        ),
        (
            "one added back",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}),
            json!({}),
            vec!["drop-all-capabilities"],
        ),
        (
            "an empty add list",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": []}}),
            json!({}),
            vec![],
        ),
        // (cases named "init ..." add an init container `setup` with the sidecar's context)
        (
            "init container hardened",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            hardened.clone(),
            json!({}),
            vec![],
        ),
        (
            "init container forgotten",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({}),
            json!({}),
            vec!["no-privilege-escalation", "drop-all-capabilities"],
        ),
        (
            "init container unconfined",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            with_seccomp("Unconfined"),
            json!({}),
            vec!["seccomp-runtime-default"],
        ),
        (
            "ALL among others",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            hardened.clone(),
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["NET_RAW", "ALL"]}}),
            json!({}),
            vec![],
        ),
    ];
    for (what, pod_context, parser, sidecar, annotations, failing) in cases {
        let init = what.starts_with("init ");
        let (sidecar, setup, culprit) =
            if init { (hardened.clone(), sidecar, "setup") } else { (sidecar, json!(null), "log-shipper") };
        let pod = |name: &str| {
            let mut pod = json!({"metadata": {"name": name, "namespace": "ingest", "labels": {"app": "parser"}, "annotations": annotations},
                   "spec": {"securityContext": pod_context, "containers": [
                       {"name": "parser", "image": "busybox:1.36", "securityContext": parser},
                       {"name": "log-shipper", "image": "busybox:1.36", "securityContext": sidecar}]},
                   "status": {"phase": "Running"}});
            if init {
                pod["spec"]["initContainers"] =
                    json!([{"name": "setup", "image": "busybox:1.36", "securityContext": setup}]);
            }
            pod
        };
        let pods =
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod("parser-a"), pod("parser-b")]});
        let fixture = Fixture::new(move |method, path, _| match (method, path.split('?').next().unwrap()) {
            ("GET", "/api/v1") => (200, core_discovery()),
            ("GET", "/api/v1/namespaces/ingest/pods") => (200, pods.clone()),
            _ => (404, status_body(404, &format!("no fixture for {method} {path}"))),
        });
        for check in &rendered.scenario.checks {
            let mut check = check.clone();
            check.settle = None;
            let verdict = check::run(&check, &fixture).await;
            if check.requires.contains(&Capability::PodExec) {
                assert_eq!(verdict.outcome, Outcome::Skip, "{what}: {} needs running containers", check.id);
                continue;
            }
            let expected = if failing.contains(&check.id.as_str()) { Outcome::Fail } else { Outcome::Pass };
            assert_eq!(verdict.outcome, expected, "{what}: {} observed {}", check.id, verdict.observed);
            if expected == Outcome::Fail && check.id != "seccomp-runtime-default" {
                assert!(verdict.observed.contains(culprit), "{what}: names the container: {}", verdict.observed);
            }
        }
    }
}

#[tokio::test]
async fn a_command_in_selected_pods_lists_them_by_label_and_runs_in_each_container() {
    let fixture = Fixture::new(|method, path, _| match (method, path.split('?').next().unwrap()) {
        ("GET", "/api/v1/namespaces/team/pods") if path.contains("labelSelector=app%3Dweb") => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "web-1", "namespace": "team"}, "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]},
                 "status": {"phase": "Running", "containerStatuses": [
                    {"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "sidecar", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}
            ]}),
        ),
        ("GET", "/api/v1/namespaces/team/pods") => {
            (200, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}))
        }
        _ => (404, status_body(404, &format!("no fixture for {method} {path}"))),
    });
    let in_pods = |selector: &str, min: usize, container: &str| {
        format!(
            "{{id: a, description: d, command: {{pods: {{namespace: team, selector: '{selector}', min: {min}}}, {container} command: [id], exit-code: 0}}}}"
        )
    };
    assert_outcome(&fixture.grade(&in_pods("app=web", 2, "")).await, Outcome::Fail, "1 of pods app=web in team found");
    assert_outcome(&fixture.grade(&in_pods("app=api", 1, "")).await, Outcome::Fail, "0 of pods app=api in team found");
    // The fake API server cannot upgrade to an exec stream, so running the command is an error
    // that names the first pod and container it tried.
    let verdict = fixture.grade(&in_pods("app=web", 1, "")).await;
    assert_outcome(&verdict, Outcome::Error, "in pod team/web-1 container app");
    let verdict = fixture.grade(&in_pods("app=web", 1, "container: sidecar,")).await;
    assert_outcome(&verdict, Outcome::Error, "in pod team/web-1 container sidecar");
    assert!(fixture.requests().iter().any(|r| r.contains("/pods/web-1/exec") && r.contains("container=sidecar")));
}

/// What the runtime check of the seccomp scenario accepts, from /proc/1/status lines as the
/// kernel prints them in a confined and in a default container.
#[test]
fn the_seccomp_runtime_pattern_tells_a_confined_process_from_a_default_one() {
    use std::collections::BTreeMap;
    let catalog = ckslab::scenario::Catalog::embedded().unwrap();
    let rendered = catalog.get("seccomp-runtime-default").unwrap().render(&BTreeMap::new()).unwrap();
    let check = rendered.scenario.checks.iter().find(|c| c.id == "confined-at-runtime").unwrap();
    let ckslab::scenario::Probe::Command(probe) = &check.probe else { panic!("a command probe") };
    let pattern = regex::Regex::new(probe.stdout_matches.as_deref().unwrap()).unwrap();
    let status =
        |caps: &str, nnp: u8, seccomp: u8| format!("CapEff:\t{caps}\nNoNewPrivs:\t{nnp}\nSeccomp:\t{seccomp}\n");
    assert!(pattern.is_match(&status("0000000000000000", 1, 2)));
    assert!(!pattern.is_match(&status("00000000a80425fb", 1, 2)), "containerd's default capabilities");
    assert!(!pattern.is_match(&status("0000000000000000", 0, 2)), "privilege escalation allowed");
    assert!(!pattern.is_match(&status("0000000000000000", 1, 0)), "no seccomp filter (Unconfined)");
}

/// `kubesec scan` output, as kubesec v2.14.2 (scripts/build-tools.sh) printed it for the
/// static-analysis scenario's manifest and the shapes a learner's edit can take.
fn kubesec_output(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/kubesec/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

const KUBESEC_NO_CRITICAL: &str = r#"
id: kubesec-no-critical
description: d
command:
  node: control-plane
  command: [kubesec, scan, /opt/manifests/invoice-worker.yaml]
  stdout-fields:
    - {path: "$[*].object", label: the objects kubesec scanned, equals: "Deployment/invoice-worker.billing"}
    - {path: "$[*].valid", label: whether kubesec could read the file, equals: true}
    - {path: "$[*].scoring.critical[*].id", label: critical findings, absent: true}
"#;

const KUBESEC_SCORE: &str = r#"
id: kubesec-score
description: d
command:
  node: control-plane
  command: [kubesec, scan, /opt/manifests/invoice-worker.yaml]
  stdout-fields:
    - {path: "$[*].score", label: kubesec's score of the file, at-least: "5"}
"#;

async fn kubesec_verdicts(output: &str, code: i32) -> (Verdict, Verdict) {
    let fixture = Fixture::no_api().command("kubesec scan /opt/manifests/invoice-worker.yaml", code, output);
    (fixture.grade(KUBESEC_NO_CRITICAL).await, fixture.grade(KUBESEC_SCORE).await)
}

#[tokio::test]
async fn kubesec_output_is_graded_as_data_every_fixed_shape_passes() {
    for name in ["invoice-worker-fixed", "invoice-worker-pod-level"] {
        let (critical, score) = kubesec_verdicts(&kubesec_output(name), 0).await;
        assert_outcome(&critical, Outcome::Pass, "critical findings");
        assert_outcome(&score, Outcome::Pass, "kubesec's score of the file");
    }
}

#[tokio::test]
async fn kubesec_near_misses_fail_with_what_kubesec_found() {
    // The manifest as setup leaves it: three critical findings, named.
    let (critical, score) = kubesec_verdicts(&kubesec_output("invoice-worker"), 2).await;
    assert_outcome(
        &critical,
        Outcome::Fail,
        r#"critical findings: "Privileged", "HostPID", "AllowPrivilegeEscalation""#,
    );
    assert_outcome(&score, Outcome::Fail, "-46");
    // Criticals gone, nothing added: score 0. One point short: 4.
    for (name, shown) in [("invoice-worker-criticals-only", ": 0"), ("invoice-worker-score-4", ": 4")] {
        let (critical, score) = kubesec_verdicts(&kubesec_output(name), 0).await;
        assert_outcome(&critical, Outcome::Pass, "no critical findings");
        assert_outcome(&score, Outcome::Fail, shown);
        assert!(score.expected.contains("is at least 5"), "{}", score.expected);
    }
    // Many points, but SYS_ADMIN added: critical, and the score falls below 0.
    let (critical, score) = kubesec_verdicts(&kubesec_output("invoice-worker-sys-admin"), 2).await;
    assert_outcome(&critical, Outcome::Fail, "CapSysAdmin");
    assert_outcome(&score, Outcome::Fail, "-23");
    // A hardened Pod in place of the Deployment scores well, but is another workload.
    let (critical, _) = kubesec_verdicts(&kubesec_output("pod-instead-of-deployment"), 0).await;
    assert_outcome(&critical, Outcome::Fail, "Pod/invoice-worker.billing");
    // A file kubesec cannot read as a Kubernetes object: valid false, no findings at all.
    let (critical, score) = kubesec_verdicts(&kubesec_output("no-metadata"), 2).await;
    assert_outcome(&critical, Outcome::Fail, "Deployment/undefined.default");
    assert_outcome(&score, Outcome::Fail, ": 0");
    // No JSON at all (kubesec missing from the node, or a file that is not YAML).
    let (critical, _) = kubesec_verdicts("", 127).await;
    assert_outcome(&critical, Outcome::Fail, "does not parse: it printed nothing");
    let (critical, _) = kubesec_verdicts("Error: open x.yaml: no such file", 1).await;
    assert_outcome(&critical, Outcome::Fail, "(exit 1) does not parse");
    // Text that happens to parse (a YAML scalar) is no report either.
    let (critical, _) = kubesec_verdicts("invalid input x.yaml", 1).await;
    assert_outcome(&critical, Outcome::Fail, "the objects kubesec scanned: not set");
}

/// What syft v1.57.1 (scripts/build-tools.sh) wrote for archives made by the image-archive
/// step: frontend (Alpine: busybox, libssl3, musl) and reports (Debian: base-files, libssl3).
fn sbom_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/sbom/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

const SBOM_FORMAT: &str = r#"
id: sbom-format
description: d
node-file:
  path: /opt/sbom/frontend.json
  format: sbom
  fields:
    - {path: "$.format", label: the SBOM's format, one-of: [spdx, cyclonedx]}
"#;

const SBOM_OF_FRONTEND: &str = r#"
id: sbom-of-frontend
description: d
node-file:
  path: /opt/sbom/frontend.json
  format: sbom
  fields:
    - {path: "$.packages[?@.name == 'musl'].version", label: the version of musl it lists, equals: 1.2.5-r0}
    - {path: "$.packages[?@.name == 'busybox'].version", label: the version of busybox it lists, equals: 1.36.1-r29}
    - {path: "$.packages[?@.name == 'base-files' || @.name == 'libc6'].name", label: Debian packages listed, absent: true}
"#;

async fn sbom_verdicts(contents: &str) -> (Verdict, Verdict) {
    let fixture = Fixture::no_api().file(CP, "/opt/sbom/frontend.json", contents, 0o644, 0);
    (fixture.grade(SBOM_FORMAT).await, fixture.grade(SBOM_OF_FRONTEND).await)
}

#[tokio::test]
async fn an_sbom_passes_in_either_format_syft_writes() {
    for name in ["frontend.spdx.json", "frontend.cyclonedx.json"] {
        let (format, packages) = sbom_verdicts(&sbom_fixture(name)).await;
        assert_outcome(&format, Outcome::Pass, "the SBOM's format");
        assert_outcome(&packages, Outcome::Pass, r#"the version of musl it lists: "1.2.5-r0""#);
    }
    // The same document re-indented by a tool: data, not bytes.
    let pretty: Value = serde_json::from_str(&sbom_fixture("frontend.spdx.json")).unwrap();
    let (_, packages) = sbom_verdicts(&serde_json::to_string_pretty(&pretty).unwrap()).await;
    assert_outcome(&packages, Outcome::Pass, "no Debian packages listed");
}

#[tokio::test]
async fn sbom_near_misses_fail_and_say_what_the_file_is() {
    let (format, packages) = sbom_verdicts(&sbom_fixture("frontend.syft.json")).await;
    assert_outcome(&format, Outcome::Fail, "syft's own JSON format (-o json), not SPDX or CycloneDX");
    assert_eq!(packages.outcome, Outcome::Fail);
    let (format, _) = sbom_verdicts(&sbom_fixture("frontend.spdx")).await;
    assert_outcome(&format, Outcome::Fail, "SPDX tag-value text, not SPDX JSON");
    // A valid SBOM of another image.
    let (format, packages) = sbom_verdicts(&sbom_fixture("reports.spdx.json")).await;
    assert_outcome(&format, Outcome::Pass, "spdx");
    assert_outcome(&packages, Outcome::Fail, "the version of musl it lists: not set");
    // The right image, and a Debian package on top (two SBOMs merged by hand).
    let mut merged: Value = serde_json::from_str(&sbom_fixture("frontend.cyclonedx.json")).unwrap();
    merged["components"].as_array_mut().unwrap().push(json!({"type": "library", "name": "libc6", "version": "2.36-9"}));
    let (_, packages) = sbom_verdicts(&merged.to_string()).await;
    assert_outcome(&packages, Outcome::Fail, r#"Debian packages listed: "libc6""#);
    let missing = Fixture::no_api().grade(SBOM_FORMAT).await;
    assert_outcome(&missing, Outcome::Fail, "/opt/sbom/frontend.json does not exist");
}

#[tokio::test]
async fn answer_files_are_read_normalized_and_never_give_the_answer_away() {
    let check = "{id: a, description: d, answer-file: {path: /opt/incident/answer.txt, answers: [
        {key: identity, kind: service-account, equals: 'system:serviceaccount:payments:report-gen', what: the intruder},
        {key: pod, kind: pod, namespace: payments, equals: report-gen-5c7d9, what: its pod}]}}";
    for (text, outcome, says) in [
        ("identity: system:serviceaccount:payments:report-gen\npod: report-gen-5c7d9\n", Outcome::Pass, "gives"),
        ("# notes\nIdentity = Payments/Report-Gen\npod: pods/report-gen-5c7d9\n", Outcome::Pass, "gives"),
        ("identity: payments/vault-sync\npod: vault-sync-0\n", Outcome::Fail, "names something else"),
        ("identity: payments/report-gen\npod: report-gen-k2x8p\n", Outcome::Fail, "`pod: report-gen-k2x8p`"),
        ("# Fill in from the audit log\nidentity:\npod:\n", Outcome::Fail, "leaves `identity:` empty"),
    ] {
        let fixture = Fixture::no_api().file(CP, "/opt/incident/answer.txt", text, 0o644, 0);
        let verdict = fixture.grade(check).await;
        assert_outcome(&verdict, outcome, says);
        assert!(!verdict.expected.contains("report-gen"), "{verdict:#?}");
    }
    let missing = Fixture::no_api().grade(check).await;
    assert_outcome(&missing, Outcome::Fail, "does not exist");
}

#[tokio::test]
async fn kubelet_config_fields_left_out_take_the_kubelets_defaults() {
    let anonymous = "{id: a, description: d, kubelet-config: {fields: [{path: '$.authentication.anonymous.enabled', equals: false}, {path: '$.authorization.mode', equals: Webhook}]}}";
    let head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    for (text, outcome) in [
        (format!("{head}staticPodPath: /etc/kubernetes/manifests\n"), Outcome::Pass),
        (r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","authorization":{"mode":"Webhook"}}"#.to_string(), Outcome::Pass),
        (format!("{head}authentication:\n  mode: Webhook\nauthorization:\n  mode: AlwaysAllow\n"), Outcome::Fail),
        ("authorization:\n  mode: Webhook\n".to_string(), Outcome::Fail),
    ] {
        let fixture = Fixture::no_api().file(CP, "/var/lib/kubelet/config.yaml", &text, 0o600, 0);
        assert_eq!(fixture.grade(anonymous).await.outcome, outcome, "{text}");
    }
}

#[tokio::test]
async fn profiling_off_in_every_spelling_the_api_server_accepts() {
    let check =
        "{id: a, description: d, component-flag: {component: kube-apiserver, flag: profiling, equals: 'false'}}";
    for (flags, outcome, says) in [
        (&["--profiling=false"][..], Outcome::Pass, "--profiling=false"),
        (&["--profiling=False"][..], Outcome::Pass, "--profiling=False"),
        (&["--profiling=0"][..], Outcome::Pass, "--profiling=0"),
        // A boolean takes no separate value: `false` is a stray argument and profiling is on.
        // (Quoted: unquoted, YAML reads a boolean, which is no string a command can hold.)
        (&["--profiling", "\"false\""][..], Outcome::Fail, "no flag takes"),
        (&[][..], Outcome::Fail, "has no --profiling"),
    ] {
        let fixture = Fixture::no_api().file(
            CP,
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            &apiserver_manifest(flags),
            0o600,
            0,
        );
        assert_outcome(&fixture.grade(check).await, outcome, says);
    }
}
