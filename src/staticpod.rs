//! Static pod manifests as data: reading a component's flags and mounts, and editing them.
//!
//! Flags may be written `--name=value` or as two items `--name value`, in `command` or `args`;
//! both spellings read the same here, so checks never depend on one of them.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use crate::scenario::HostPathMount;

pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

pub fn manifest_path(component: &str) -> PathBuf {
    Path::new(MANIFESTS_DIR).join(format!("{component}.yaml"))
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path} does not parse as a pod manifest: {message}")]
    Parse { path: String, message: String },
    #[error("{path} has no containers")]
    NoContainer { path: String },
}

/// A parsed static pod manifest, kept as generic data so an edit preserves every field.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: String,
    pub pod: Value,
}

/// One flag occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    /// `None` for a bare boolean flag (`--profiling`).
    pub value: Option<String>,
}

/// How a component's flag parser treats a flag (pflag for the kube components, Go's flag
/// package with etcd's own value types for etcd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// A boolean: bare means true, `=false` (or 0, f, F, FALSE, False) means false; it never
    /// takes the next argument as its value.
    Bool,
    /// One value; a repeated flag keeps the last.
    Scalar,
    /// pflag's string slice: comma-separated items, and a repeated flag adds its items.
    List,
    /// A comma-separated list whose repeats replace it (etcd's list flags): the last one counts.
    LastList,
    /// pflag's string array: every occurrence adds one item, commas and all.
    Array,
    /// `key=value` pairs separated by commas; repeats merge, a later key wins.
    Map,
}

/// The value a component ends up with for one flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    pub kind: FlagKind,
    /// Every occurrence in order (`None` for a bare flag).
    pub occurrences: Vec<Option<String>>,
    /// The items of a list, array or map flag (`key=value` for a map), or the one value.
    pub items: Vec<String>,
}

impl FlagValue {
    fn from_occurrences(kind: FlagKind, occurrences: Vec<Option<String>>) -> FlagValue {
        let text = |o: &Option<String>| o.clone().unwrap_or_else(|| "true".into());
        let split = |v: &str| -> Vec<String> {
            if v.is_empty() { Vec::new() } else { v.split(',').map(String::from).collect() }
        };
        let items = match kind {
            FlagKind::Bool | FlagKind::Scalar => vec![text(occurrences.last().expect("one occurrence"))],
            FlagKind::LastList => split(&text(occurrences.last().expect("one occurrence"))),
            FlagKind::List => occurrences.iter().flat_map(|o| split(&text(o))).collect(),
            FlagKind::Array => occurrences.iter().map(text).collect(),
            FlagKind::Map => {
                let mut merged: Vec<(String, String)> = Vec::new();
                for entry in occurrences.iter().flat_map(|o| split(&text(o))) {
                    let (key, value) = map_entry(&entry);
                    match merged.iter_mut().find(|(k, _)| *k == key) {
                        Some(existing) => existing.1 = value,
                        None => merged.push((key, value)),
                    }
                }
                merged.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
            }
        };
        FlagValue { kind, occurrences, items }
    }

    /// The effective value as one text: the value, or the items joined with commas.
    pub fn text(&self) -> String {
        self.items.join(",")
    }

    /// The effective value equals `want` as the component reads both: booleans as booleans,
    /// lists item by item, maps entry by entry in any order.
    pub fn equals(&self, want: &str) -> bool {
        match self.kind {
            FlagKind::Bool => same_scalar(&self.text(), want),
            FlagKind::Scalar => self.text() == want,
            FlagKind::List | FlagKind::LastList => {
                let wanted: Vec<&str> = if want.is_empty() { Vec::new() } else { want.split(',').collect() };
                self.items.iter().map(String::as_str).eq(wanted)
            }
            FlagKind::Array => self.text() == want,
            FlagKind::Map => {
                let wanted: Vec<&str> = if want.is_empty() { Vec::new() } else { want.split(',').collect() };
                wanted.len() == self.items.len() && wanted.iter().all(|w| self.includes(w))
            }
        }
    }

    /// The effective value has this item (a map: this key with this value, `true` when none).
    pub fn includes(&self, item: &str) -> bool {
        match self.kind {
            FlagKind::Map => {
                let (key, value) = map_entry(item);
                self.items.iter().any(|entry| {
                    let (k, v) = map_entry(entry);
                    k == key && same_scalar(&v, &value)
                })
            }
            FlagKind::Bool => same_scalar(&self.text(), item),
            _ => self.items.iter().any(|i| i == item),
        }
    }

    /// What a file-naming flag names: the value, or every item of a list.
    pub fn paths(&self) -> Vec<String> {
        self.items.clone()
    }
}

fn map_entry(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
        // runtime-config reads a key without a value as true.
        None => (entry.trim().to_string(), "true".to_string()),
    }
}

/// Go's strconv.ParseBool, which pflag and the map flags use.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn same_scalar(a: &str, b: &str) -> bool {
    match (parse_bool(a), parse_bool(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// How `component` declares `flag`, for the flags of these components that are not plain
/// strings (and the booleans); `None` for any other flag, read as a string that a repeat
/// replaces, whose value is the next word unless that starts with `-`.
pub fn flag_kind(component: &str, flag: &str) -> Option<FlagKind> {
    use FlagKind::*;
    if component == "etcd" {
        // Go's flag package: every repeat replaces, list values included.
        return match flag {
            "client-cert-auth"
            | "peer-client-cert-auth"
            | "auto-tls"
            | "peer-auto-tls"
            | "enable-pprof"
            | "strict-reconfig-check"
            | "force-new-cluster"
            | "enable-v2"
            | "debug"
            | "log-outputs-stderr"
            | "experimental-initial-corrupt-check"
            | "experimental-enable-lease-checkpoint"
            | "enable-grpc-gateway"
            | "pre-vote"
            | "socket-reuse-port"
            | "socket-reuse-address"
            | "client-crl-file-check" => Some(Bool),
            "listen-client-urls"
            | "advertise-client-urls"
            | "listen-peer-urls"
            | "initial-advertise-peer-urls"
            | "listen-metrics-urls"
            | "cipher-suites"
            | "log-outputs"
            | "cors"
            | "host-whitelist"
            | "listen-client-http-urls" => Some(LastList),
            _ => None,
        };
    }
    let shared = match flag {
        // component-base: serving, authentication, authorization, logging, features.
        "tls-cipher-suites"
        | "authorization-always-allow-paths"
        | "requestheader-allowed-names"
        | "requestheader-username-headers"
        | "requestheader-group-headers"
        | "requestheader-extra-headers-prefix"
        | "requestheader-uid-headers"
        | "disabled-metrics" => Some(List),
        "tls-sni-cert-key" => Some(Array),
        "feature-gates" | "allow-metric-labels" => Some(Map),
        "profiling"
        | "contention-profiling"
        | "leader-elect"
        | "logtostderr"
        | "alsologtostderr"
        | "authentication-skip-lookup"
        | "authentication-tolerate-lookup-failure"
        | "permit-port-sharing"
        | "permit-address-sharing"
        | "add-dir-header"
        | "one-output"
        | "skip-headers"
        | "skip-log-headers"
        | "log-json-split-stream"
        | "version" => Some(Bool),
        _ => None,
    };
    if shared.is_some() {
        return shared;
    }
    match component {
        "kube-apiserver" => match flag {
            "enable-admission-plugins"
            | "disable-admission-plugins"
            | "admission-control"
            | "authorization-mode"
            | "etcd-servers"
            | "etcd-servers-overrides"
            | "cors-allowed-origins"
            | "api-audiences"
            | "kubelet-preferred-address-types"
            | "oidc-signing-algs"
            | "watch-cache-sizes"
            | "strict-transport-security-directives" => Some(List),
            "service-account-issuer" | "service-account-key-file" => Some(Array),
            "runtime-config" | "oidc-required-claim" => Some(Map),
            "anonymous-auth"
            | "allow-privileged"
            | "enable-aggregator-routing"
            | "enable-bootstrap-token-auth"
            | "enable-priority-and-fairness"
            | "enable-garbage-collector"
            | "enable-logs-handler"
            | "service-account-lookup"
            | "service-account-extend-token-expiration"
            | "watch-cache"
            | "audit-log-compress"
            | "audit-log-batch-throttle-enable"
            | "audit-webhook-batch-throttle-enable"
            | "audit-log-truncate-enabled"
            | "audit-webhook-truncate-enabled"
            | "encryption-provider-config-automatic-reload"
            | "aggregator-reject-forwarding-redirect" => Some(Bool),
            _ => None,
        },
        "kube-controller-manager" => match flag {
            "controllers" => Some(List),
            "use-service-account-credentials"
            | "allocate-node-cidrs"
            | "configure-cloud-routes"
            | "enable-dynamic-provisioning"
            | "enable-garbage-collector"
            | "enable-hostpath-provisioner"
            | "enable-taint-manager"
            | "enable-leader-migration" => Some(Bool),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub volume: String,
    pub mount_path: String,
    pub host_path: String,
    pub read_only: bool,
}

impl Manifest {
    pub fn parse(path: &str, text: &str) -> Result<Manifest, ManifestError> {
        let parse_error = |message: String| ManifestError::Parse { path: path.to_string(), message };
        let pod: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| parse_error(e.to_string().lines().next().unwrap_or("").to_string()))?
        };
        if pod.get("kind").and_then(Value::as_str) != Some("Pod") {
            return Err(parse_error("kind is not Pod".into()));
        }
        if pod.pointer("/spec/containers/0").is_none() {
            return Err(ManifestError::NoContainer { path: path.to_string() });
        }
        // The kubelet decodes command and args as lists of strings and refuses the whole
        // manifest otherwise (an unquoted `false` is a YAML boolean): so must the grader.
        for (c, container) in pod["spec"]["containers"].as_array().into_iter().flatten().enumerate() {
            for list in ["command", "args"] {
                for (i, item) in container[list].as_array().into_iter().flatten().enumerate() {
                    if !item.is_string() {
                        return Err(parse_error(format!(
                            "spec.containers[{c}].{list}[{i}] is {item}, not a string: the kubelet refuses \
                             this manifest (quote it: \"{}\")",
                            item.to_string().trim_matches('"')
                        )));
                    }
                }
            }
        }
        Ok(Manifest { path: path.to_string(), pod })
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.pod).expect("a JSON value always serializes to YAML")
    }

    fn container(&self) -> &Value {
        &self.pod["spec"]["containers"][0]
    }

    fn container_mut(&mut self) -> &mut Value {
        &mut self.pod["spec"]["containers"][0]
    }

    /// command[1..] followed by args: the argument list the binary receives.
    fn arguments(&self) -> Vec<String> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        let container = self.container();
        let mut out: Vec<String> = strings(&container["command"]).into_iter().skip(1).collect();
        out.extend(strings(&container["args"]));
        out
    }

    /// Which component this manifest runs: the command's binary, else the container's name.
    pub fn component(&self) -> String {
        let container = self.container();
        let binary = container["command"][0].as_str().or_else(|| container["name"].as_str()).unwrap_or_default();
        binary.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// Every flag occurrence, in order, read as the component's flag parser reads its argument
    /// list: `--name=value` and `--name value` are the same, a boolean flag never takes the next
    /// argument as its value, a non-boolean flag always does.
    pub fn flags(&self) -> Vec<Flag> {
        self.parse_arguments().0
    }

    /// Arguments that are no flag's value: kube components refuse to start with any.
    pub fn stray_arguments(&self) -> Vec<String> {
        self.parse_arguments().1
    }

    fn parse_arguments(&self) -> (Vec<Flag>, Vec<String>) {
        let component = self.component();
        let args = self.arguments();
        let mut flags = Vec::new();
        let mut stray = Vec::new();
        let mut index = 0;
        while index < args.len() {
            let item = &args[index];
            index += 1;
            if item == "--" {
                stray.extend(args[index..].iter().cloned());
                break;
            }
            let Some(body) = item.strip_prefix("--").or_else(|| item.strip_prefix('-')) else {
                stray.push(item.clone());
                continue;
            };
            if let Some((name, value)) = body.split_once('=') {
                flags.push(Flag { name: name.to_string(), value: Some(value.to_string()) });
                continue;
            }
            let takes_value = match flag_kind(&component, body) {
                Some(FlagKind::Bool) => false,
                Some(_) => index < args.len(),
                // Unknown to this table: a following word that is not a flag is its value.
                None => index < args.len() && !args[index].starts_with('-'),
            };
            if takes_value {
                flags.push(Flag { name: body.to_string(), value: Some(args[index].clone()) });
                index += 1;
            } else {
                flags.push(Flag { name: body.to_string(), value: None });
            }
        }
        (flags, stray)
    }

    /// The last occurrence of a flag, as written. For what the component makes of every
    /// occurrence together (repeated list flags add up), use [`Manifest::flag_value`].
    pub fn flag(&self, name: &str) -> Option<Flag> {
        self.flags().into_iter().rfind(|f| f.name == name)
    }

    /// The value the component ends up with for a flag, from all its occurrences, with the
    /// flag's type as the component declares it (see [`flag_kind`]).
    pub fn flag_value(&self, name: &str) -> Option<FlagValue> {
        let occurrences: Vec<Option<String>> =
            self.flags().into_iter().filter(|f| f.name == name).map(|f| f.value).collect();
        if occurrences.is_empty() {
            return None;
        }
        let kind = flag_kind(&self.component(), name).unwrap_or(FlagKind::Scalar);
        Some(FlagValue::from_occurrences(kind, occurrences))
    }

    pub fn mounts(&self) -> Vec<Mount> {
        let volumes: BTreeMap<String, String> = self.pod["spec"]["volumes"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| {
                        Some((v["name"].as_str()?.to_string(), v["hostPath"]["path"].as_str()?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.container()["volumeMounts"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let volume = m["name"].as_str()?.to_string();
                        Some(Mount {
                            host_path: volumes.get(&volume)?.clone(),
                            mount_path: m["mountPath"].as_str()?.to_string(),
                            read_only: m["readOnly"].as_bool().unwrap_or(false),
                            volume,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where the node file behind a path inside the container is, if a hostPath mount covers
    /// it (the deepest mount wins, as in a container).
    pub fn host_path_for(&self, container_path: &str) -> Option<String> {
        let wanted = normalize(container_path);
        self.mounts()
            .into_iter()
            .filter_map(|m| {
                let mount = normalize(&m.mount_path);
                let rest = wanted.strip_prefix(&mount).ok()?;
                Some((mount.components().count(), Path::new(&m.host_path).join(rest)))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, host)| host.to_string_lossy().trim_end_matches('/').to_string())
    }

    /// Sets a flag to a value, replacing every existing occurrence (in either spelling).
    pub fn set_flag(&mut self, name: &str, value: &str) {
        self.remove_flag(name);
        let command = self.command_mut();
        command.push(Value::String(format!("--{name}={value}")));
    }

    pub fn remove_flag(&mut self, name: &str) {
        for key in ["command", "args"] {
            let Some(list) = self.container_mut()[key].as_array_mut() else { continue };
            let mut kept = Vec::with_capacity(list.len());
            let mut skip_value = false;
            for (index, item) in list.iter().enumerate() {
                if skip_value {
                    skip_value = false;
                    if !item.as_str().unwrap_or("-").starts_with('-') {
                        continue;
                    }
                }
                let text = item.as_str().unwrap_or_default();
                let is_command_name = key == "command" && index == 0;
                if !is_command_name && (text == format!("--{name}") || text.starts_with(&format!("--{name}="))) {
                    skip_value = text == format!("--{name}");
                    continue;
                }
                kept.push(item.clone());
            }
            *list = kept;
        }
    }

    fn command_mut(&mut self) -> &mut Vec<Value> {
        let container = self.container_mut();
        if !container["command"].is_array() {
            container["command"] = json!([]);
        }
        container["command"].as_array_mut().expect("just made an array")
    }

    /// Adds (or replaces) a hostPath volume and its mount.
    pub fn add_host_path(&mut self, mount: &HostPathMount) {
        self.remove_volume(&mount.name);
        let mut host_path = json!({ "path": mount.host_path });
        if let Some(kind) = &mount.r#type {
            host_path["type"] = json!(kind);
        }
        let spec = &mut self.pod["spec"];
        if !spec["volumes"].is_array() {
            spec["volumes"] = json!([]);
        }
        spec["volumes"].as_array_mut().expect("array").push(json!({ "name": mount.name, "hostPath": host_path }));
        let container = self.container_mut();
        if !container["volumeMounts"].is_array() {
            container["volumeMounts"] = json!([]);
        }
        let mut entry = json!({ "name": mount.name, "mountPath": mount.mount_path });
        if mount.read_only {
            entry["readOnly"] = json!(true);
        }
        container["volumeMounts"].as_array_mut().expect("array").push(entry);
    }

    pub fn remove_volume(&mut self, name: &str) {
        if let Some(volumes) = self.pod["spec"]["volumes"].as_array_mut() {
            volumes.retain(|v| v["name"].as_str() != Some(name));
        }
        if let Some(mounts) = self.container_mut()["volumeMounts"].as_array_mut() {
            mounts.retain(|m| m["name"].as_str() != Some(name));
        }
    }
}

/// Lexical normalisation of an absolute path (`/a/./b/../c` -> `/a/c`).
pub fn normalize(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_item_that_is_not_a_string_is_a_manifest_the_kubelet_refuses() {
        let text = APISERVER.replace("    - --profiling\n", "    - --profiling\n    - false\n");
        let err = Manifest::parse("/etc/kubernetes/manifests/kube-apiserver.yaml", &text).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("spec.containers[0].command[5] is false, not a string"), "{message}");
        assert!(message.contains("quote it: \"false\""), "{message}");
        let quoted = APISERVER.replace("    - --profiling\n", "    - --profiling\n    - \"false\"\n");
        let manifest = Manifest::parse("/m.yaml", &quoted).unwrap();
        // What ckslab writes back keeps the string a string.
        assert!(Manifest::parse("/m.yaml", &manifest.to_yaml()).is_ok(), "{}", manifest.to_yaml());
    }

    const APISERVER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --authorization-mode=Node,RBAC
    - --enable-admission-plugins
    - NodeRestriction
    - --profiling
    volumeMounts:
    - name: k8s-certs
      mountPath: /etc/kubernetes/pki
      readOnly: true
    - name: enc
      mountPath: /etc/kubernetes/enc
  volumes:
  - name: k8s-certs
    hostPath:
      path: /etc/kubernetes/pki
  - name: enc
    hostPath:
      path: /srv/encryption
"#;

    #[test]
    fn flags_read_the_same_in_both_spellings() {
        let m = Manifest::parse("m.yaml", APISERVER).unwrap();
        assert_eq!(m.flag("authorization-mode").unwrap().value.as_deref(), Some("Node,RBAC"));
        assert_eq!(m.flag("enable-admission-plugins").unwrap().value.as_deref(), Some("NodeRestriction"));
        assert_eq!(m.flag("profiling").unwrap().value, None);
        assert!(m.flag("audit-log-path").is_none());
    }

    /// A manifest whose argv is `items`, the first `in_command` of them in `command` (after the
    /// binary) and the rest in `args`.
    fn manifest_with(binary: &str, items: &[String], in_command: usize) -> Manifest {
        let command: Vec<Value> =
            std::iter::once(json!(binary)).chain(items[..in_command].iter().map(|i| json!(i))).collect();
        let args: Vec<Value> = items[in_command..].iter().map(|i| json!(i)).collect();
        let mut container = json!({"name": binary, "command": command});
        if !args.is_empty() {
            container["args"] = json!(args);
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": binary}, "spec": {"containers": [container]}});
        Manifest::parse("m.yaml", &pod.to_string()).unwrap()
    }

    /// Every way to write these flag occurrences: each as `--name=value` or `--name value`, and
    /// the argv split anywhere between `command` and `args`.
    fn spellings(occurrences: &[(&str, Option<&str>)]) -> Vec<(Vec<String>, usize)> {
        let mut out = Vec::new();
        for mask in 0..(1u32 << occurrences.len()) {
            let mut items = Vec::new();
            for (index, (name, value)) in occurrences.iter().enumerate() {
                match value {
                    None => items.push(format!("--{name}")),
                    Some(v) if mask & (1 << index) != 0 && !v.is_empty() => {
                        items.push(format!("--{name}"));
                        items.push(v.to_string());
                    }
                    Some(v) => items.push(format!("--{name}={v}")),
                }
            }
            for split in 0..=items.len() {
                // A value stays with its flag: never split between them.
                if split > 0 && split < items.len() && !items[split].starts_with('-') {
                    continue;
                }
                out.push((items.clone(), split));
            }
        }
        out
    }

    #[test]
    fn repeated_list_flags_add_up_in_every_spelling() {
        let occurrences = [
            ("enable-admission-plugins", Some("NodeRestriction")),
            ("profiling", None),
            ("authorization-mode", Some("Node")),
            ("enable-admission-plugins", Some("ImagePolicyWebhook,PodSecurity")),
            ("audit-log-path", Some("/var/log/a.log")),
            ("authorization-mode", Some("RBAC")),
            ("audit-log-path", Some("/var/log/b.log")),
            ("runtime-config", Some("api/beta=true,batch/v1=false")),
            ("runtime-config", Some("batch/v1")),
        ];
        let cases = spellings(&occurrences);
        assert!(cases.len() > 100, "{} spellings", cases.len());
        for (items, split) in cases {
            let m = manifest_with("kube-apiserver", &items, split);
            let shown = format!("{items:?} split at {split}");
            let plugins = m.flag_value("enable-admission-plugins").unwrap();
            assert_eq!(plugins.items, ["NodeRestriction", "ImagePolicyWebhook", "PodSecurity"], "{shown}");
            assert!(plugins.includes("ImagePolicyWebhook") && plugins.includes("NodeRestriction"), "{shown}");
            assert!(!plugins.includes("AlwaysAdmit"), "{shown}");
            let modes = m.flag_value("authorization-mode").unwrap();
            assert!(modes.equals("Node,RBAC") && !modes.equals("RBAC") && !modes.equals("RBAC,Node"), "{shown}");
            // A scalar keeps its last value.
            assert!(m.flag_value("audit-log-path").unwrap().equals("/var/log/b.log"), "{shown}");
            assert_eq!(m.flag("audit-log-path").unwrap().value.as_deref(), Some("/var/log/b.log"), "{shown}");
            // A bare boolean is true, and never swallows the next flag.
            let profiling = m.flag_value("profiling").unwrap();
            assert!(profiling.equals("true") && !profiling.equals("false"), "{shown}");
            // A map merges; a later key wins; a key alone means true.
            let runtime = m.flag_value("runtime-config").unwrap();
            assert!(runtime.includes("batch/v1=true") && runtime.includes("batch/v1"), "{shown}");
            assert!(runtime.includes("api/beta=true") && !runtime.includes("batch/v1=false"), "{shown}");
            assert!(m.stray_arguments().is_empty(), "{shown}: {:?}", m.stray_arguments());
        }
    }

    #[test]
    fn flag_types_follow_each_component() {
        let items = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // A boolean does not take the next word: `--anonymous-auth false` is true plus a stray word.
        let m = manifest_with("kube-apiserver", &items(&["--anonymous-auth", "false", "--profiling=0"]), 1);
        assert!(m.flag_value("anonymous-auth").unwrap().equals("true"));
        assert_eq!(m.stray_arguments(), ["false"]);
        assert!(m.flag_value("profiling").unwrap().equals("false"), "0 is false to ParseBool");
        // A non-boolean takes the next word even when it starts with a dash.
        let m = manifest_with(
            "kube-apiserver",
            &items(&["--service-account-issuer", "-x", "--service-account-issuer=https://b"]),
            3,
        );
        assert_eq!(m.flag_value("service-account-issuer").unwrap().items, ["-x", "https://b"]);
        // String arrays add whole values, commas and all.
        let m = manifest_with(
            "kube-apiserver",
            &items(&["--service-account-key-file=/a,/b", "--service-account-key-file=/c"]),
            2,
        );
        assert_eq!(m.flag_value("service-account-key-file").unwrap().paths(), ["/a,/b", "/c"]);
        // The controller manager's controllers add up; etcd's lists are replaced by a repeat.
        let m = manifest_with(
            "kube-controller-manager",
            &items(&["--controllers=*,bootstrapsigner", "--controllers", "tokencleaner"]),
            3,
        );
        assert!(m.flag_value("controllers").unwrap().equals("*,bootstrapsigner,tokencleaner"));
        let m = manifest_with(
            "etcd",
            &items(&["--cipher-suites=A,B", "--cipher-suites=C", "--client-cert-auth", "--data-dir", "/var/lib/etcd"]),
            5,
        );
        let suites = m.flag_value("cipher-suites").unwrap();
        assert!(suites.includes("C") && !suites.includes("A"));
        assert!(m.flag_value("client-cert-auth").unwrap().equals("true"));
        assert!(m.flag_value("data-dir").unwrap().equals("/var/lib/etcd"));
        // Shared flags: tls-cipher-suites add up in every kube component.
        let m = manifest_with("kube-scheduler", &items(&["--tls-cipher-suites=A", "--tls-cipher-suites=B"]), 0);
        assert!(m.flag_value("tls-cipher-suites").unwrap().equals("A,B"));
        // Feature gates merge and compare as booleans.
        let m =
            manifest_with("kube-apiserver", &items(&["--feature-gates=A=true,B=false", "--feature-gates=B=True"]), 1);
        let gates = m.flag_value("feature-gates").unwrap();
        assert!(gates.includes("B=true") && gates.includes("A=1") && gates.equals("B=true,A=true"));
        // An empty list value enables nothing.
        let m = manifest_with("kube-apiserver", &items(&["--enable-admission-plugins="]), 1);
        assert!(m.flag_value("enable-admission-plugins").unwrap().items.is_empty());
    }

    #[test]
    fn set_and_remove_flags_replace_every_spelling() {
        let mut m = Manifest::parse("m.yaml", APISERVER).unwrap();
        m.set_flag("enable-admission-plugins", "NodeRestriction,ImagePolicyWebhook");
        let plugins: Vec<_> = m.flags().into_iter().filter(|f| f.name == "enable-admission-plugins").collect();
        assert_eq!(plugins.len(), 1);
        assert_eq!(plugins[0].value.as_deref(), Some("NodeRestriction,ImagePolicyWebhook"));
        m.remove_flag("profiling");
        assert!(m.flag("profiling").is_none());
        // The edit round-trips through YAML.
        let again = Manifest::parse("m.yaml", &m.to_yaml()).unwrap();
        assert_eq!(
            again.flag("enable-admission-plugins").unwrap().value.as_deref(),
            Some("NodeRestriction,ImagePolicyWebhook")
        );
        assert_eq!(again.flag("authorization-mode").unwrap().value.as_deref(), Some("Node,RBAC"));
    }

    #[test]
    fn host_path_for_uses_the_deepest_mount() {
        let m = Manifest::parse("m.yaml", APISERVER).unwrap();
        assert_eq!(m.host_path_for("/etc/kubernetes/enc/enc.yaml").as_deref(), Some("/srv/encryption/enc.yaml"));
        assert_eq!(m.host_path_for("/etc/kubernetes/pki/ca.crt").as_deref(), Some("/etc/kubernetes/pki/ca.crt"));
        assert_eq!(m.host_path_for("/etc/kubernetes/audit/policy.yaml"), None);
    }

    #[test]
    fn volumes_are_added_and_removed_with_their_mounts() {
        let mut m = Manifest::parse("m.yaml", APISERVER).unwrap();
        m.add_host_path(&HostPathMount {
            name: "audit".into(),
            host_path: "/etc/kubernetes/audit".into(),
            mount_path: "/etc/kubernetes/audit".into(),
            read_only: true,
            r#type: Some("DirectoryOrCreate".into()),
        });
        assert_eq!(m.host_path_for("/etc/kubernetes/audit/p.yaml").as_deref(), Some("/etc/kubernetes/audit/p.yaml"));
        m.remove_volume("audit");
        assert_eq!(m.host_path_for("/etc/kubernetes/audit/p.yaml"), None);
        assert!(Manifest::parse("bad", "kind: Pod\nspec: {}\n").is_err());
        assert!(Manifest::parse("bad", "::: not yaml").is_err());
    }
}
