//! From a static pod manifest to what the supervisor runs: argv, env and bind mounts, with the
//! kubelet's hostPath rules applied inside the node root.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::bwrap::{self, Bind};
use super::paths::resolve_in_root;

/// A parsed manifest's first container, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The pod's name (`kube-apiserver`).
    pub pod: String,
    pub container: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    /// The hostPath as written in the manifest (a node path).
    pub node_path: String,
    pub host_type: String,
    /// Where it is resolved inside the node root.
    pub source: PathBuf,
    pub dest: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

/// Decodes a manifest (YAML or JSON) the way the kubelet's file source would accept it.
pub fn parse(text: &str) -> Result<Pod, String> {
    let trimmed = text.trim_start();
    let pod: Pod = if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    Ok(pod)
}

pub fn plan(pod: &Pod, node_root: &Path) -> Result<Plan, String> {
    let name = pod.metadata.name.clone().filter(|n| !n.is_empty()).ok_or("the pod has no metadata.name")?;
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let container = spec.containers.first().ok_or("the pod has no containers")?;
    let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
    argv.extend(container.args.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(format!("container {:?} has no command: there is no image entrypoint here", container.name));
    }
    let env = container.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect();
    let mut volumes = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let vol = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == m.name)
            .ok_or_else(|| format!("volumeMount {:?}: there is no volume with that name", m.name))?;
        let hp = vol.host_path.as_ref().ok_or_else(|| {
            format!("volume {:?}: only hostPath volumes are supported on the local backend", vol.name)
        })?;
        let source =
            resolve_in_root(node_root, Path::new(&hp.path)).map_err(|e| format!("volume {:?}: {e}", vol.name))?;
        volumes.push(Volume {
            name: vol.name.clone(),
            node_path: hp.path.clone(),
            host_type: hp.type_.clone().unwrap_or_default(),
            source,
            dest: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
        });
    }
    Ok(Plan { pod: name, container: container.name.clone(), argv, env, volumes })
}

/// Applies the hostPath `type` rules, creating what `*OrCreate` asks for, and returns the binds.
/// An error is the kubelet's MountVolume.SetUp failure: the container cannot start.
pub fn prepare(plan: &Plan) -> Result<Vec<Bind>, String> {
    let mut binds = Vec::new();
    for v in &plan.volumes {
        let fail = |why: String| format!("MountVolume.SetUp failed for volume {:?} : {why}", v.name);
        let p = &v.source;
        match v.host_type.as_str() {
            // Unset: containerd creates a missing source as a folder.
            "" | "DirectoryOrCreate" => {
                if !p.exists() {
                    std::fs::create_dir_all(p).map_err(|e| fail(format!("mkdir {}: {e}", v.node_path)))?;
                }
            }
            "FileOrCreate" => {
                if !p.exists() {
                    if let Some(parent) = p.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| fail(format!("mkdir: {e}")))?;
                    }
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .map_err(|e| fail(format!("create {}: {e}", v.node_path)))?;
                }
            }
            "Directory" if !p.is_dir() => {
                return Err(fail(format!("hostPath type check failed: {} is not a directory", v.node_path)));
            }
            "File" if !p.is_file() => {
                return Err(fail(format!("hostPath type check failed: {} is not a file", v.node_path)));
            }
            "Directory" | "File" | "Socket" | "CharDevice" | "BlockDevice" => {}
            other => return Err(fail(format!("invalid HostPathType {other:?}"))),
        }
        let mut source = p.clone();
        if let Some(sub) = &v.sub_path {
            source = resolve_in_root(p, &Path::new("/").join(sub)).map_err(|e| fail(e.to_string()))?;
            if !source.exists() {
                std::fs::create_dir_all(&source).map_err(|e| fail(format!("subPath: {e}")))?;
            }
        }
        if !bwrap::mountable(&v.dest) {
            // A container image would have this folder; the host's read-only /usr may not.
            tracing::debug!(pod = %plan.pod, dest = %v.dest, "skipping a mount point the host's system folders lack");
            continue;
        }
        binds.push(Bind { source, dest: v.dest.clone(), read_only: v.read_only });
    }
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with(volumes: &str, mounts: &str) -> Pod {
        parse(&format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: demo
spec:
  containers:
  - name: demo
    command: [demo, --flag]
    args: [--more]
    env:
    - name: A
      value: b
    volumeMounts:
{mounts}  volumes:
{volumes}"
        ))
        .unwrap()
    }

    #[test]
    fn host_path_types_follow_the_kubelet() {
        let root = tempfile::tempdir().unwrap();
        let pod = pod_with(
            "  - name: d
    hostPath: {path: /var/lib/demo, type: DirectoryOrCreate}
  - name: f
    hostPath: {path: /etc/demo/file.conf, type: FileOrCreate}
  - name: must
    hostPath: {path: /etc/demo/policy.yaml, type: File}
",
            "    - {name: d, mountPath: /var/lib/demo}
    - {name: f, mountPath: /etc/demo/file.conf, readOnly: true}
    - {name: must, mountPath: /etc/demo/policy.yaml, readOnly: true}
",
        );
        let plan = plan(&pod, root.path()).unwrap();
        assert_eq!(plan.argv, ["demo", "--flag", "--more"]);
        assert_eq!(plan.env, [("A".to_string(), "b".to_string())]);
        let err = prepare(&plan).unwrap_err();
        assert!(err.contains("hostPath type check failed: /etc/demo/policy.yaml is not a file"), "{err}");
        assert!(root.path().join("var/lib/demo").is_dir());
        assert!(root.path().join("etc/demo/file.conf").is_file());

        std::fs::write(root.path().join("etc/demo/policy.yaml"), "x").unwrap();
        let binds = prepare(&plan).unwrap();
        assert_eq!(binds.len(), 3);
        assert!(binds.iter().any(|b| b.dest == "/etc/demo/file.conf" && b.read_only));
        assert!(binds.iter().any(|b| b.dest == "/var/lib/demo" && !b.read_only));
    }

    #[test]
    fn host_paths_stay_inside_the_node_root() {
        let root = tempfile::tempdir().unwrap();
        let pod = pod_with("  - name: x\n    hostPath: {path: /../../etc}\n", "    - {name: x, mountPath: /x}\n");
        assert!(plan(&pod, root.path()).unwrap_err().contains("climbs above"));
        let pod = pod_with("  - name: x\n    emptyDir: {}\n", "    - {name: x, mountPath: /x}\n");
        assert!(plan(&pod, root.path()).unwrap_err().contains("only hostPath"));
        let pod = pod_with("  - name: x\n    hostPath: {path: /x}\n", "    - {name: y, mountPath: /x}\n");
        assert!(plan(&pod, root.path()).unwrap_err().contains("no volume with that name"));
    }
}
