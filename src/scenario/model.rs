//! The types `scenario.yaml` deserializes into. Pure data: no I/O here.
//!
//! Steps and checks are single-key maps (`- apply: ...`, `etcd-value: {...}`), so an unknown
//! type or key is a deserialization error with its line and column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::Capability;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub domain: String,
    pub competencies: Vec<String>,
    pub difficulty: Difficulty,
    /// How long the task should take a prepared learner.
    pub minutes: u32,
    #[serde(default)]
    pub requires: Vec<Capability>,
    /// The Kubernetes version the scenario starts on, when not the default: every start (and
    /// every verify case) is then a fresh cluster at that version, since an upgrade cannot be
    /// undone, and moving on to any other scenario brings back a fresh default cluster. Needs
    /// `kubernetes-upgrade` in `requires`.
    #[serde(default)]
    pub cluster_version: Option<String>,
    /// The names the task text, steps and checks share. Values are rendered into every string
    /// of the scenario (and into the files it applies) with tera.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// The task as the learner reads it (a tera template over `params`).
    pub task: String,
    /// Node paths the task names that no check reads at that fixed place: the learner may use
    /// another (the task says so, and the checks follow the component's flag to whatever file
    /// it names), or the path only says where something given to the learner is. Lint holds
    /// every other path the task names to one some check reads.
    #[serde(default)]
    pub free_paths: Vec<String>,
    #[serde(default)]
    pub setup: Vec<Step>,
    /// Steps that break the cluster on purpose (after setup).
    #[serde(rename = "break", default)]
    pub break_steps: Vec<Step>,
    /// Steps that put the cluster back (after the baseline manifests are restored).
    #[serde(default)]
    pub cleanup: Vec<Step>,
    pub checks: Vec<CheckSpec>,
    #[serde(default)]
    pub hints: Vec<String>,
    pub solutions: Vec<Solution>,
    #[serde(default)]
    pub wrong_attempts: Vec<WrongAttempt>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Solution {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WrongAttempt {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<Step>,
    /// The checks this attempt must fail (or error on).
    pub fails: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Steps

/// Which node a node step acts on. `control-plane` is the default.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRef {
    #[default]
    ControlPlane,
    Worker,
    /// Every node.
    All,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Server-side apply of one or more YAML documents (inline).
    Apply(String),
    /// Server-side apply of a file of the scenario folder (rendered with params).
    ApplyFile(String),
    /// Create the objects of a file that do not exist yet; existing ones (say a real Istio's
    /// CRDs on kind) are left untouched.
    CreateMissingFile(String),
    /// Delete objects; absent objects are fine.
    Delete(ObjectRef),
    WriteFile(WriteFile),
    /// Remove a node file (backed up first).
    RemoveFile(NodeFileRef),
    /// Edit a static pod manifest as data.
    StaticPod(StaticPodEdit),
    /// Run a command on a node; a non-zero exit fails the step unless `allow-failure`.
    Run(RunCommand),
    /// Run kubectl against the lab cluster with these arguments.
    Kubectl(KubectlCommand),
    /// Read every object of a kind in a namespace and write it back unchanged (what
    /// `kubectl get -o json | kubectl replace -f -` does), so it is stored anew.
    Rewrite(RewriteObjects),
    /// Issue a certificate through the certificates API (key, CSR, approval) and store it.
    IssueCertificate(IssueCertificate),
    /// Start or stop the ImagePolicyWebhook backend ckslab provides, and write its CA and a
    /// kubeconfig for the API server into a node folder.
    ImagePolicyWebhook(WebhookStep),
    /// Put a tool scripts/build-tools.sh built (kubesec, syft) on a node's PATH
    /// (`/usr/local/bin`).
    InstallTool(InstallTool),
    /// Write a small image archive (`docker save` layout) whose one layer holds an OS release
    /// file and a package database listing the given packages, for SBOM tools to catalog.
    ImageArchive(ImageArchive),
    Wait(WaitFor),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstallTool {
    /// A name of `crate::tools::NODE_TOOLS`.
    pub tool: String,
    #[serde(default)]
    pub node: NodeRef,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageArchive {
    #[serde(default)]
    pub node: NodeRef,
    /// Where the archive goes on the node.
    pub path: String,
    /// The image's name and tag, as `docker save` records it (`RepoTags`).
    pub image: String,
    /// Which package database the layer holds: `debian` (dpkg) or `alpine` (apk).
    pub distro: Distro,
    /// The distro's release (`VERSION_ID` of `/etc/os-release`): `12`, `3.20.3`.
    pub release: String,
    pub packages: Vec<ArchivePackage>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Distro {
    Debian,
    Alpine,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArchivePackage {
    pub name: String,
    pub version: String,
    /// The source package (dpkg `Source:`, apk `o:`), when it differs from the name.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectRef {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

fn default_api_version() -> String {
    "v1".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssueCertificate {
    /// The CertificateSigningRequest's name.
    pub csr: String,
    pub common_name: String,
    #[serde(default)]
    pub organizations: Vec<String>,
    #[serde(default = "default_signer")]
    pub signer: String,
    /// DNS subject alternative names in the request (a serving certificate's service names).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// certificates.k8s.io usages, e.g. [digital signature, key encipherment, client auth].
    pub usages: Vec<String>,
    /// Sign the approved request with the cluster CA read from the control-plane node and
    /// upload the certificate into the CSR's status, as an administrator does for a signer no
    /// controller serves (no built-in signer issues serving certificates for services).
    #[serde(default)]
    pub sign_with_cluster_ca: bool,
    /// Approve it (false leaves it pending, as a learner who forgot would).
    #[serde(default = "default_true")]
    pub approve: bool,
    /// ecdsa-p256 (default) or ecdsa-p384.
    #[serde(default)]
    pub key: Option<String>,
    /// Store tls.crt, tls.key and ca.crt in this secret (namespace/name).
    #[serde(default)]
    pub secret: Option<String>,
    /// Store a different, fresh key instead of the certificate's (a mistake to grade).
    #[serde(default)]
    pub mismatched_key: bool,
}

fn default_signer() -> String {
    "kubernetes.io/kube-apiserver-client".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookStep {
    /// false stops it (a backend that is down).
    #[serde(default = "default_true")]
    pub running: bool,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default = "default_webhook_port")]
    pub port: u16,
    /// Node folder that receives `webhook-ca.crt` and `kubeconf`.
    #[serde(default)]
    pub node_dir: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_webhook_port() -> u16 {
    18443
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RewriteObjects {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WriteFile {
    #[serde(default)]
    pub node: NodeRef,
    pub path: String,
    /// Inline content, or `from` a file of the scenario folder.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    0o644
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeFileRef {
    #[serde(default)]
    pub node: NodeRef,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticPodEdit {
    /// kube-apiserver, etcd, kube-controller-manager or kube-scheduler.
    pub component: String,
    /// Set flags (`--name=value`), replacing any existing value.
    #[serde(default)]
    pub set_flags: BTreeMap<String, String>,
    /// Remove flags by name (without the leading dashes).
    #[serde(default)]
    pub remove_flags: Vec<String>,
    /// Add a hostPath volume and its mount (replaced if one with the same name exists).
    #[serde(default)]
    pub add_volumes: Vec<HostPathMount>,
    /// Remove volumes (and their mounts) by name.
    #[serde(default)]
    pub remove_volumes: Vec<String>,
    /// Wait for the API server to be healthy after the edit (default: when the component is
    /// kube-apiserver or etcd).
    #[serde(default)]
    pub wait: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostPathMount {
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
    /// hostPath type: DirectoryOrCreate, Directory, File, FileOrCreate.
    #[serde(default)]
    pub r#type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunCommand {
    #[serde(default)]
    pub node: NodeRef,
    pub command: Vec<String>,
    #[serde(default)]
    pub allow_failure: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum KubectlCommand {
    Args(Vec<String>),
    Full {
        args: Vec<String>,
        #[serde(default)]
        stdin: Option<String>,
        #[serde(default)]
        allow_failure: bool,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// The API server answers /readyz.
    ApiHealthy(u64),
    /// An object exists.
    Object(ObjectRef),
    /// Every pod matching the selector in the namespace is Running and Ready.
    PodsReady(PodsReady),
    /// Fixed pause (seconds); for eventually-consistent effects only.
    Seconds(u64),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PodsReady {
    pub namespace: String,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default = "default_min_pods")]
    pub min: usize,
    #[serde(default = "default_wait_seconds")]
    pub timeout: u64,
}

fn default_min_pods() -> usize {
    1
}

fn default_wait_seconds() -> u64 {
    60
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A check: its identity and weight, and exactly one probe.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSpec {
    pub id: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    pub description: String,
    /// Where to look when the check fails.
    #[serde(default)]
    pub hint: Option<String>,
    /// Eventually-consistent: retry within this many seconds before failing.
    #[serde(default)]
    pub settle: Option<u64>,
    /// Capabilities this one check needs beyond the scenario's `requires`; on a backend
    /// without them the check is skipped (and says why) instead of failing.
    #[serde(default)]
    pub requires: Vec<Capability>,
    #[serde(flatten)]
    pub probe: Probe,
}

fn default_weight() -> u32 {
    1
}

/// What a check looks at. Written as one key beside id/weight/description.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// An object exists, or is absent, and its fields hold values.
    Object(ObjectProbe),
    /// Every object of a list (e.g. all pods of a namespace) satisfies the field conditions.
    Objects(ObjectsProbe),
    /// A flag of a static-pod component, read from its manifest as data.
    ComponentFlag(ComponentFlagProbe),
    /// A field of the kubelet config file on a node.
    KubeletConfig(KubeletConfigProbe),
    /// A node file: existence, mode, owner, parsed YAML/JSON fields.
    NodeFile(NodeFileProbe),
    /// A SubjectAccessReview.
    CanI(CanIProbe),
    /// Everything a subject may do, from a SelfSubjectRulesReview made as that subject: nothing
    /// beyond the rules listed (and what every authenticated user may do).
    EffectiveRules(EffectiveRulesProbe),
    /// A server-side dry-run create that admission must deny or allow.
    Admission(AdmissionProbe),
    /// The raw bytes etcd stores for an object.
    EtcdValue(EtcdValueProbe),
    /// Events in the API server's audit log.
    AuditLog(AuditLogProbe),
    /// An x509 certificate from a secret, a CSR or a node file.
    Certificate(CertificateProbe),
    /// A command in a pod or on a node.
    Command(CommandProbe),
    /// Whether the NetworkPolicies let one connection through, evaluated from the policies and
    /// namespace labels with Kubernetes' semantics (so it grades without an enforcing CNI).
    NetworkAccess(NetworkAccessProbe),
    /// A request to the API server with no credentials at all, and the status it gets.
    AnonymousRequest(AnonymousRequestProbe),
    /// Whether any RoleBinding or ClusterRoleBinding gives anonymous users (`system:anonymous`,
    /// `system:unauthenticated`) more than the public health and version endpoints.
    AnonymousGrants(AnonymousGrantsProbe),
    /// A dry-run label change of one Node made as another node's kubelet identity.
    NodeWrite(NodeWriteProbe),
    /// A real TLS handshake with the API server, offering only some versions and cipher suites.
    TlsHandshake(TlsHandshakeProbe),
    /// Answers the learner wrote into a node file, one `key: value` line each, compared
    /// normalized (case, whitespace, the equivalent spellings of a name).
    AnswerFile(AnswerFileProbe),
    /// A node's packet filter (iptables and nftables rulesets, read as data): TCP ports closed
    /// to, or open to, every new connection from another machine.
    Firewall(FirewallProbe),
    /// The API server's own version (`GET /version`, its gitVersion).
    ServerVersion(ServerVersionProbe),
    /// Passes when any of these probes passes (for answers that can take several shapes).
    AnyOf(Vec<Probe>),
    /// Passes when every one of these probes passes.
    AllOf(Vec<Probe>),
}

impl Probe {
    pub fn type_name(&self) -> &'static str {
        match self {
            Probe::Object(_) => "object",
            Probe::Objects(_) => "objects",
            Probe::ComponentFlag(_) => "component-flag",
            Probe::KubeletConfig(_) => "kubelet-config",
            Probe::NodeFile(_) => "node-file",
            Probe::CanI(_) => "can-i",
            Probe::EffectiveRules(_) => "effective-rules",
            Probe::Admission(_) => "admission",
            Probe::EtcdValue(_) => "etcd-value",
            Probe::AuditLog(_) => "audit-log",
            Probe::Certificate(_) => "certificate",
            Probe::Command(_) => "command",
            Probe::NetworkAccess(_) => "network-access",
            Probe::AnonymousRequest(_) => "anonymous-request",
            Probe::AnonymousGrants(_) => "anonymous-grants",
            Probe::NodeWrite(_) => "node-write",
            Probe::TlsHandshake(_) => "tls-handshake",
            Probe::AnswerFile(_) => "answer-file",
            Probe::Firewall(_) => "firewall",
            Probe::ServerVersion(_) => "server-version",
            Probe::AnyOf(_) => "any-of",
            Probe::AllOf(_) => "all-of",
        }
    }
}

/// A condition on a value found at a path in structured data.
///
/// Paths are JSONPath (`$.spec.containers[*].image`); every match must satisfy the condition
/// (`any: true` relaxes that to one match), and no match at all fails unless `absent` is asked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FieldCondition {
    pub path: String,
    /// What the path selects, in words, for messages (a filter expression is hard to read):
    /// "containers that allow privilege escalation".
    #[serde(default)]
    pub label: Option<String>,
    #[serde(flatten)]
    pub expect: Expectation,
    #[serde(default)]
    pub any: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// Equal as data (`"1"` and `1` differ; `true` and `"true"` are compared as text).
    Equals(serde_json::Value),
    /// One of these values.
    OneOf(Vec<serde_json::Value>),
    /// The text form matches this regular expression.
    Matches(String),
    /// A list (or text) contains this item (substring).
    Contains(serde_json::Value),
    /// A number at least this (a number, or a template rendering to one: `"{{ min_score }}"`).
    AtLeast(serde_json::Value),
    /// The path matches nothing (or null).
    Absent(bool),
    /// The path matches something non-null.
    Present(bool),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectProbe {
    #[serde(flatten)]
    pub target: ObjectRef,
    /// Expect the object to be absent.
    #[serde(default)]
    pub absent: bool,
    #[serde(default)]
    pub fields: Vec<FieldCondition>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectsProbe {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub selector: Option<String>,
    /// At least this many objects must exist (default 1), so an empty list never passes
    /// unless asked for with 0.
    #[serde(default = "default_min_pods")]
    pub min: usize,
    pub fields: Vec<FieldCondition>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentFlagProbe {
    pub component: String,
    pub flag: String,
    #[serde(flatten)]
    pub expect: FlagExpectation,
    /// The flag names a config file: parse the file the component sees there (through its
    /// hostPath mounts) as YAML or JSON and check these fields.
    #[serde(default)]
    pub file_fields: Vec<FieldCondition>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagExpectation {
    Equals(String),
    Matches(String),
    /// A comma-separated list flag includes this item (e.g. an admission plugin).
    Includes(String),
    /// A comma-separated list flag does not include this item.
    Excludes(String),
    Absent(bool),
    Present(bool),
    /// The flag's value is a file path that the component can see through a hostPath mount
    /// and that exists on the node.
    FileMounted(bool),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubeletConfigProbe {
    #[serde(default)]
    pub node: NodeRef,
    #[serde(default = "default_kubelet_config")]
    pub path: String,
    pub fields: Vec<FieldCondition>,
}

fn default_kubelet_config() -> String {
    "/var/lib/kubelet/config.yaml".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeFileProbe {
    #[serde(default)]
    pub node: NodeRef,
    pub path: String,
    #[serde(default)]
    pub absent: bool,
    /// Permission bits must not exceed this mode (e.g. 0o600 accepts 0o600 and 0o400).
    #[serde(default)]
    pub max_mode: Option<u32>,
    #[serde(default)]
    pub owner: Option<u32>,
    /// The file's digest: a given hex value, or the one a published checksum list gives for it.
    #[serde(default)]
    pub digest: Option<DigestCondition>,
    /// How the file is read for `fields`: YAML or JSON (the default), or a config format parsed
    /// into data the way its program reads it (see `FileFormat`).
    #[serde(default)]
    pub format: FileFormat,
    /// Parse the file (see `format`) and check fields.
    #[serde(default)]
    pub fields: Vec<FieldCondition>,
}

/// The formats a node file can be parsed from for field conditions.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FileFormat {
    /// YAML or JSON.
    #[default]
    Yaml,
    /// OpenSSH's sshd_config, resolved as sshd reads it (Include, Match, first value wins).
    SshdConfig,
    /// A sudoers file: its user specifications, one grant per user, run-as and command.
    Sudoers,
    /// A Dockerfile: its stages and instructions.
    Dockerfile,
    /// An SBOM in SPDX JSON or CycloneDX JSON, read into one shape: `format` (`spdx` or
    /// `cyclonedx`), `spec_version`, `name` and `packages` (each `name`, `version`, `purl`).
    Sbom,
}

/// A condition on a file's digest. Exactly one of `equals` and `listed-in`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DigestCondition {
    #[serde(default)]
    pub algorithm: DigestAlgorithm,
    /// The hex digest the file must have.
    #[serde(default)]
    pub equals: Option<String>,
    /// A checksum list on the same node (`sha512sum` output, BSD `SHA512 (name) = hex`, or one
    /// bare digest as in Kubernetes' `*.sha512` files): the file must have the digest it lists
    /// for the file's name (relative to the list's folder, or absolute).
    #[serde(default)]
    pub listed_in: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DigestAlgorithm {
    Sha256,
    #[default]
    Sha512,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanIProbe {
    /// A user name, or `system:serviceaccount:<ns>:<name>`.
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub allowed: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EffectiveRulesProbe {
    /// A user name, or `system:serviceaccount:<ns>:<name>` (its groups are added).
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The namespace the allowed rules apply in.
    pub namespace: String,
    /// What the subject may do there; every verb on every resource the review returns must be
    /// covered by one of these.
    pub allow: Vec<AllowedRule>,
    /// Namespaces where the subject may do nothing (beyond what every user may): cluster-wide
    /// grants show there.
    #[serde(default)]
    pub nothing_in: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AllowedRule {
    #[serde(default = "core_group")]
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

fn core_group() -> Vec<String> {
    vec![String::new()]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdmissionProbe {
    /// The object to create with dryRun=All (YAML, rendered with params).
    pub object: String,
    pub allowed: bool,
    /// When denied, the reason must match this regular expression.
    #[serde(default)]
    pub reason: Option<String>,
    /// Impersonate this user for the request.
    #[serde(default)]
    pub as_user: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EtcdValueProbe {
    /// The etcd key, e.g. /registry/secrets/<ns>/<name>.
    #[serde(default)]
    pub key: Option<String>,
    /// Or every object of a kind in a namespace (secrets, configmaps): each key is checked.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Or a secret the probe creates now in this namespace (and deletes after): how new
    /// secrets are stored.
    #[serde(default)]
    pub new_secret_in: Option<String>,
    /// Stored bytes must start with `k8s:enc:<provider>:` for one of these, or be plaintext
    /// when the list is `[identity]`.
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditLogProbe {
    /// Requests to make first (so the log has something to show), as the admin.
    #[serde(default)]
    pub trigger: Vec<AuditTrigger>,
    /// Which events to look at.
    #[serde(rename = "match")]
    pub matcher: AuditMatch,
    /// Expect at least one matching event (true) or none (false).
    pub present: bool,
    /// Every matching event has this level (Metadata, Request, RequestResponse).
    #[serde(default)]
    pub level: Option<String>,
    /// No matching event's JSON contains this text (e.g. a secret value).
    #[serde(default)]
    pub never_contains: Option<String>,
    /// Also look at events received this many seconds before the probe started (for traffic
    /// the probe does not make itself, such as a controller's).
    #[serde(default)]
    pub lookback: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditTrigger {
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub as_user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditMatch {
    #[serde(default)]
    pub verb: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertificateProbe {
    /// Where the PEM comes from.
    #[serde(flatten)]
    pub source: CertSource,
    /// The signing CA: a node file (default /etc/kubernetes/pki/ca.crt).
    #[serde(default = "default_ca")]
    pub ca: String,
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub organizations: Vec<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Extended key usages: client-auth, server-auth.
    #[serde(default)]
    pub usages: Vec<String>,
    /// The certificate must be valid for at least this many more hours.
    #[serde(default)]
    pub min_valid_hours: Option<u64>,
    /// For a secret source: the key in `tls.key` must match the certificate.
    #[serde(default)]
    pub key_matches: bool,
}

fn default_ca() -> String {
    "/etc/kubernetes/pki/ca.crt".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
    /// A secret (key defaults to tls.crt).
    Secret(SecretKeyRef),
    /// The issued certificate of a CertificateSigningRequest.
    Csr(String),
    NodeFile(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretKeyRef {
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_cert_key")]
    pub key: String,
}

fn default_cert_key() -> String {
    "tls.crt".into()
}

/// One connection (`from`, `to`, `port`, `allowed`), or every flow that touches a namespace
/// (`namespace` and `only`): the flows listed must be allowed and every other one denied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkAccessProbe {
    #[serde(default)]
    pub from: Option<NetworkEndpoint>,
    #[serde(default)]
    pub to: Option<NetworkEndpoint>,
    /// A number, or the name of a container port of the destination pods (resolved against
    /// them, as the API resolves a policy's named port).
    #[serde(default)]
    pub port: Option<TemplatedNumber>,
    /// TCP (default), UDP or SCTP.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default)]
    pub allowed: Option<bool>,
    /// The namespace whose flows `only` describes.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The flows into, out of and within `namespace` that must be allowed; every other flow
    /// between its pods, sample pods elsewhere and sample addresses must be denied.
    #[serde(default)]
    pub only: Option<Vec<Flow>>,
}

/// A flow an `only` list allows: every pod (or address) `from` matches may reach every pod (or
/// address) `to` matches on the port. Endpoint labels are a subset a pod's labels must include;
/// none means any pod of the namespace.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flow {
    pub from: NetworkEndpoint,
    pub to: NetworkEndpoint,
    /// A number or a named container port of the destination.
    pub port: TemplatedNumber,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Permitted but not required: it may be allowed or denied.
    #[serde(default)]
    pub optional: bool,
}

/// Which TCP ports a node's packet filter closes to other machines, and which it leaves open.
/// Judged over every new IPv4 connection that can arrive on the node's uplink (any source, any
/// of the node's addresses), so a rule that drops one source does not close a port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirewallProbe {
    #[serde(default)]
    pub node: Option<NodeRef>,
    /// Ports every such connection to must be dropped or rejected.
    #[serde(default)]
    pub closed: Vec<TemplatedNumber>,
    /// Ports no rule may drop any such connection to.
    #[serde(default)]
    pub open: Vec<TemplatedNumber>,
}

/// A number written as itself or as a template of params (`"{{ port }}"`), read after rendering.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TemplatedNumber {
    Number(u64),
    Text(String),
}

impl TemplatedNumber {
    /// The text, when it is not a number (a port's name).
    pub fn name(&self) -> Option<&str> {
        match self {
            TemplatedNumber::Text(text) if text.trim().parse::<u64>().is_err() => Some(text.trim()),
            _ => None,
        }
    }

    pub fn get<T: TryFrom<u64>>(&self) -> Result<T, String> {
        let number = match self {
            TemplatedNumber::Number(n) => *n,
            TemplatedNumber::Text(text) => {
                text.trim().parse().map_err(|_| format!("{text:?} is not a number (after rendering the params)"))?
            }
        };
        T::try_from(number).map_err(|_| format!("{number} is out of range"))
    }
}

fn default_protocol() -> String {
    "TCP".into()
}

/// A pod (its namespace and labels) or an address outside the cluster.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkEndpoint {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub ip: Option<String>,
}

/// Pods chosen by namespace and label selector; fewer than `min` (default 1) is a fail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PodSet {
    pub namespace: String,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default = "default_min_pods")]
    pub min: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandProbe {
    /// Run on a node, or in a pod (`namespace/name`, optional `container`).
    #[serde(default)]
    pub node: Option<NodeRef>,
    #[serde(default)]
    pub pod: Option<String>,
    /// Run in every pod a selector matches (pods a Deployment made have no fixed names), in
    /// every container of each unless `container` names one; all must give the expected result.
    #[serde(default)]
    pub pods: Option<PodSet>,
    #[serde(default)]
    pub container: Option<String>,
    pub command: Vec<String>,
    /// The exit code expected: a number, or `nonzero` for a command that must fail (how a
    /// command fails differs between images: busybox `ls` exits 1, coreutils `ls` 2).
    #[serde(default)]
    pub exit_code: Option<ExitCode>,
    #[serde(default)]
    pub stdout_matches: Option<String>,
    #[serde(default)]
    pub stdout_not_matches: Option<String>,
    /// What the error output must say (`Operation not permitted`, `Read-only file system`):
    /// a command that fails for another reason (a typo, a missing binary) does not pass.
    #[serde(default)]
    pub stderr_matches: Option<String>,
    /// Parse stdout as JSON (or YAML) and check these fields (`kubesec scan` prints JSON).
    #[serde(default)]
    pub stdout_fields: Vec<FieldCondition>,
}

/// An expected exit code: `exit-code: 0`, `exit-code: 1` or `exit-code: nonzero`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ExitCode {
    Code(i32),
    Word(ExitWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitWord {
    Nonzero,
}

impl ExitCode {
    pub fn accepts(self, code: i32) -> bool {
        match self {
            ExitCode::Code(want) => code == want,
            ExitCode::Word(ExitWord::Nonzero) => code != 0,
        }
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitCode::Code(code) => write!(f, "exit code {code}"),
            ExitCode::Word(ExitWord::Nonzero) => write!(f, "a non-zero exit code"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerVersionProbe {
    /// The gitVersion `/version` must report, e.g. `v1.34.4`.
    pub equals: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnonymousRequestProbe {
    /// The path to GET; pick one no default binding opens to anonymous users (not /healthz,
    /// /livez, /readyz or /version, which kubeadm's health probes may keep open).
    #[serde(default = "default_anonymous_path")]
    pub path: String,
    /// The status expected: 401 (anonymous requests are not authenticated at all), 403
    /// (authenticated as system:anonymous, and not authorized), 200.
    pub status: u16,
}

fn default_anonymous_path() -> String {
    "/api/v1/namespaces/default/pods".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnonymousGrantsProbe {
    /// Non-resource URLs anonymous users may still GET (the default binding
    /// system:public-info-viewer opens these; no task takes them away).
    #[serde(default = "default_public_urls")]
    pub public_urls: Vec<String>,
}

fn default_public_urls() -> Vec<String> {
    ["/healthz", "/livez", "/readyz", "/version", "/version/"].iter().map(|s| s.to_string()).collect()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeWriteProbe {
    /// The node whose kubelet identity (`system:node:<name>`, group `system:nodes`) asks.
    pub as_node: NodeRef,
    /// The Node object it labels (dry run: nothing changes).
    pub target: NodeRef,
    pub allowed: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsHandshakeProbe {
    /// The TLS versions the client offers: "1.2", "1.3".
    pub versions: Vec<String>,
    /// The cipher suites the client offers, by IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`,
    /// `TLS_AES_128_GCM_SHA256`); none means every suite of those versions the client knows.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Whether the server must complete the handshake.
    pub accepted: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnswerFileProbe {
    #[serde(default)]
    pub node: NodeRef,
    /// The answer file on the node: `key: value` (or `key = value`) lines, `#` comments.
    pub path: String,
    pub answers: Vec<Answer>,
}

/// One answer the file must give, under `key`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Answer {
    pub key: String,
    /// How the value is read, so every spelling of the same answer compares equal.
    #[serde(default)]
    pub kind: AnswerKind,
    /// The right answer, in any spelling its kind accepts.
    pub equals: String,
    /// For `kind: pod`: the namespace a bare name is taken to be in.
    #[serde(default)]
    pub namespace: Option<String>,
    /// What the answer names, for messages; the right value itself is never shown.
    #[serde(default)]
    pub what: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerKind {
    /// Free text: case and runs of whitespace do not count.
    #[default]
    Text,
    /// A ServiceAccount: `system:serviceaccount:<ns>:<name>` or `<ns>/<name>`.
    ServiceAccount,
    /// A pod: `<name>`, `<ns>/<name>`, optionally `pod/` or `pods/` before the name.
    Pod,
    /// A Deployment: `<name>`, `<ns>/<name>`, optionally `deploy/` or `deployment/` before the name.
    Deployment,
}

// ---------------------------------------------------------------------------------------------
// Names the model accepts, read from the serde derives themselves so lists never drift.

/// The variant names serde accepts for an externally tagged enum (`Probe`, `Step`, ...).
pub fn variant_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    names_of::<T>(Want::Variants)
}

/// The field names serde accepts for a struct without flattened fields.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    names_of::<T>(Want::Fields)
}

#[derive(Clone, Copy)]
enum Want {
    Variants,
    Fields,
}

fn names_of<'de, T: Deserialize<'de>>(want: Want) -> &'static [&'static str] {
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(NameCapture { want, found: &mut found });
    found
}

/// A deserializer that gives no data: it only records the names a derive asks it for.
struct NameCapture<'a> {
    want: Want,
    found: &'a mut &'static [&'static str],
}

#[derive(Debug)]
struct Captured;

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("names captured")
    }
}

impl std::error::Error for Captured {}

impl serde::de::Error for Captured {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Captured
    }
}

impl<'de> serde::Deserializer<'de> for NameCapture<'_> {
    type Error = Captured;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
        Err(Captured)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        if matches!(self.want, Want::Variants) {
            *self.found = variants;
        }
        Err(Captured)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        if matches!(self.want, Want::Fields) {
            *self.found = fields;
        }
        Err(Captured)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_come_from_the_derives() {
        let probes = variant_names::<Probe>();
        assert!(probes.contains(&"network-access") && probes.contains(&"any-of") && probes.contains(&"all-of"));
        assert_eq!(variant_names::<Expectation>().len(), 7);
        assert!(variant_names::<Expectation>().contains(&"at-least"));
        assert!(field_names::<StaticPodEdit>().contains(&"set-flags"));
    }
}
