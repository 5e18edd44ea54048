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

    pub fn flags(&self) -> Vec<Flag> {
        let args = self.arguments();
        let mut flags = Vec::new();
        let mut index = 0;
        while index < args.len() {
            let item = &args[index];
            index += 1;
            let Some(body) = item.strip_prefix("--").or_else(|| item.strip_prefix('-')) else { continue };
            if let Some((name, value)) = body.split_once('=') {
                flags.push(Flag { name: name.to_string(), value: Some(value.to_string()) });
            } else if index < args.len() && !args[index].starts_with('-') {
                flags.push(Flag { name: body.to_string(), value: Some(args[index].clone()) });
                index += 1;
            } else {
                flags.push(Flag { name: body.to_string(), value: None });
            }
        }
        flags
    }

    /// The last value given for a flag (later occurrences win, as with pflag).
    pub fn flag(&self, name: &str) -> Option<Flag> {
        self.flags().into_iter().rfind(|f| f.name == name)
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
