//! Steps: each step type is a small function over the backend. The executor records what it
//! applied, so a failure says exactly which steps took effect before it.

mod apply;
mod certificate;
mod error;
pub mod image_archive;
mod namespace;
mod webhook;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};

use crate::backend::{Backend, Progress, wait_api_healthy};
use crate::check::api::dynamic_api;
use crate::check::resolve_nodes;
use crate::scenario::{KubectlCommand, ObjectRef, Rendered, StaticPodEdit, Step, WaitFor};
use crate::staticpod::{Manifest, manifest_path};

pub use apply::apply_yaml;
use error::Context;
pub use error::StepFailure;
pub use webhook::NAME as WEBHOOK_NAME;

#[derive(Debug)]
pub struct StepError {
    pub phase: String,
    /// 1-based index of the failing step in its phase.
    pub index: usize,
    pub step: String,
    /// Boxed: a StepError travels up through every lab and CLI result.
    pub cause: Box<StepFailure>,
    /// What was applied before the failure, in order.
    pub applied: Vec<String>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} step {} ({}) failed: {}", self.phase, self.index, self.step, self.cause)?;
        if self.applied.is_empty() {
            write!(f, "\n  nothing of this phase was applied before it")
        } else {
            write!(f, "\n  applied before it:")?;
            for line in &self.applied {
                write!(f, "\n    - {line}")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for StepError {
    /// The cause itself (not its box), so callers can downcast it to `StepFailure`.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// One line that says what a step does, for progress and error reports.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Apply(yaml) => {
            let kinds: Vec<String> =
                yaml.lines().filter_map(|l| l.strip_prefix("kind:").map(|k| k.trim().to_string())).collect();
            format!("apply {}", if kinds.is_empty() { "manifest".into() } else { kinds.join(", ") })
        }
        Step::ApplyFile(name) => format!("apply {name}"),
        Step::CreateMissingFile(name) => format!("create what is missing of {name}"),
        Step::Delete(target) => format!("delete {}", object_name(target)),
        Step::WriteFile(w) => format!("write {}", w.path),
        Step::RemoveFile(r) => format!("remove {}", r.path),
        Step::StaticPod(edit) => format!("edit {} manifest", edit.component),
        Step::Run(run) => format!("run `{}`", run.command.join(" ")),
        Step::Kubectl(KubectlCommand::Args(args)) | Step::Kubectl(KubectlCommand::Full { args, .. }) => {
            format!("kubectl {}", args.join(" "))
        }
        Step::Rewrite(r) => format!("rewrite every {} in {}", r.kind, r.namespace),
        Step::IssueCertificate(c) => format!("issue a certificate for {} through CSR {}", c.common_name, c.csr),
        Step::ImagePolicyWebhook(w) => format!("{} the image policy webhook", if w.running { "start" } else { "stop" }),
        Step::InstallTool(t) => format!("put {} on the node's PATH", t.tool),
        Step::ImageArchive(a) => format!("write the image archive {} ({})", a.path, a.image),
        Step::Wait(WaitFor::ApiHealthy(_)) => "wait for the API server".into(),
        Step::Wait(WaitFor::Object(o)) => format!("wait for {}", object_name(o)),
        Step::Wait(WaitFor::PodsReady(p)) => format!("wait for pods in {}", p.namespace),
        Step::Wait(WaitFor::Seconds(s)) => format!("wait {s}s"),
    }
}

fn object_name(target: &ObjectRef) -> String {
    match &target.namespace {
        Some(ns) => format!("{} {ns}/{}", target.kind, target.name),
        None => format!("{} {}", target.kind, target.name),
    }
}

/// Runs `steps` in order; stops at the first failure.
pub async fn run_steps(
    phase: &str,
    steps: &[Step],
    rendered: &Rendered,
    backend: &dyn Backend,
    progress: &dyn Progress,
) -> Result<Vec<String>, StepError> {
    let mut applied = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let what = describe(step);
        progress.step(&format!("{phase} {}/{}: {what}", index + 1, steps.len()));
        let result = run_step(step, rendered, backend).await;
        // Checks graded right after settle as after any change, even one (a deletion) that
        // leaves no timestamp in the cluster.
        crate::check::settle::note_step();
        if let Err(cause) = result {
            let cause = Box::new(cause);
            return Err(StepError { phase: phase.to_string(), index: index + 1, step: what, cause, applied });
        }
        applied.push(what);
    }
    Ok(applied)
}

async fn run_step(step: &Step, rendered: &Rendered, backend: &dyn Backend) -> Result<(), StepFailure> {
    match step {
        Step::Apply(yaml) => apply_yaml(backend, yaml).await,
        Step::ApplyFile(name) => {
            let yaml = rendered.file(name)?;
            apply_yaml(backend, &yaml).await
        }
        Step::CreateMissingFile(name) => {
            let yaml = rendered.file(name)?;
            apply::create_missing(backend, &yaml).await
        }
        Step::Delete(target) => delete(backend, target).await,
        Step::WriteFile(write) => {
            let content = match (&write.content, &write.from) {
                (Some(content), _) => content.clone(),
                (None, Some(name)) => rendered.file(name)?,
                (None, None) => return Err(StepFailure::Unsupported("write-file needs content or from".into())),
            };
            for node in resolve_nodes(&write.node, backend) {
                backend.write_file(&node, Path::new(&write.path), content.as_bytes(), write.mode).await?;
            }
            Ok(())
        }
        Step::RemoveFile(file) => {
            for node in resolve_nodes(&file.node, backend) {
                backend.remove_file(&node, Path::new(&file.path)).await?;
            }
            Ok(())
        }
        Step::StaticPod(edit) => edit_static_pod(backend, edit).await,
        Step::Run(run) => {
            for node in resolve_nodes(&run.node, backend) {
                let out = backend.exec(&node, &run.command).await?;
                if out.code != 0 && !run.allow_failure {
                    return Err(StepFailure::CommandFailed { node, code: out.code, stderr: out.stderr.trim().into() });
                }
            }
            Ok(())
        }
        Step::Kubectl(command) => kubectl(backend, command).await,
        Step::Rewrite(spec) => rewrite(backend, spec).await,
        Step::ImagePolicyWebhook(spec) => webhook::image_policy(backend, spec).await,
        Step::IssueCertificate(spec) => certificate::issue(backend, spec).await,
        Step::InstallTool(spec) => {
            let binary = crate::tools::node_tool_path(&crate::tools::node_tools_dir(), &spec.tool)?;
            for node in resolve_nodes(&spec.node, backend) {
                backend.install_tool(&node, &spec.tool, &binary).await?;
            }
            Ok(())
        }
        Step::ImageArchive(spec) => {
            let bytes = image_archive::build(spec).map_err(|source| StepFailure::Io {
                what: format!("building the image archive {}", spec.path),
                source,
            })?;
            for node in resolve_nodes(&spec.node, backend) {
                backend.write_file(&node, Path::new(&spec.path), &bytes, 0o644).await?;
            }
            Ok(())
        }
        Step::Wait(wait) => wait_for(backend, wait).await,
    }
}

async fn delete(backend: &dyn Backend, target: &ObjectRef) -> Result<(), StepFailure> {
    let client = backend.client().await?;
    if target.kind == "Namespace" && target.api_version == "v1" {
        return namespace::purge(&client, &target.name).await;
    }
    let api = match dynamic_api(&client, &target.api_version, &target.kind, target.namespace.as_deref()).await {
        Ok((api, _)) => api,
        // The kind does not exist (a CRD not installed): nothing to delete.
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(e) => return Err(e).context(format!("finding the API of {}", object_name(target))),
    };
    match api.delete(&target.name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(e) => return Err(e).context(format!("deleting {}", object_name(target))),
    }
    // Setup after a reset recreates these objects, so wait until they are really gone.
    let deadline = Instant::now() + Duration::from_secs(90);
    while api.get_opt(&target.name).await.context(format!("reading {}", object_name(target)))?.is_some() {
        if Instant::now() > deadline {
            return Err(StepFailure::timeout(format!("{} was not gone", object_name(target)), 90));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

async fn rewrite(backend: &dyn Backend, spec: &crate::scenario::RewriteObjects) -> Result<(), StepFailure> {
    let client = backend.client().await?;
    let (api, _) = dynamic_api(&client, &spec.api_version, &spec.kind, Some(&spec.namespace))
        .await
        .context(format!("finding the API of {}", spec.kind))?;
    let list =
        api.list(&ListParams::default()).await.context(format!("listing {} in {}", spec.kind, spec.namespace))?;
    for object in list.items {
        let name = object.metadata.name.clone().unwrap_or_default();
        api.replace(&name, &kube::api::PostParams::default(), &object)
            .await
            .context(format!("{} {name}", spec.kind))?;
    }
    Ok(())
}

pub async fn edit_static_pod(backend: &dyn Backend, edit: &StaticPodEdit) -> Result<(), StepFailure> {
    let path = manifest_path(&edit.component);
    let node = backend.control_plane();
    let text = backend
        .read_file(&node, &path)
        .await?
        .ok_or_else(|| StepFailure::MissingNodeFile { node: node.clone(), path: path.display().to_string() })?;
    let mut manifest = Manifest::parse(&path.display().to_string(), &String::from_utf8_lossy(&text))?;
    for name in &edit.remove_flags {
        manifest.remove_flag(name.trim_start_matches('-'));
    }
    for (name, value) in &edit.set_flags {
        manifest.set_flag(name.trim_start_matches('-'), value);
    }
    for name in &edit.remove_volumes {
        manifest.remove_volume(name);
    }
    for mount in &edit.add_volumes {
        manifest.add_host_path(mount);
    }
    write_manifest_and_wait(backend, &edit.component, &manifest.to_yaml(), edit.wait).await
}

/// Writes a manifest and, for the API server or etcd (unless `wait` says otherwise), waits for
/// the component to restart and the API to be healthy again.
pub async fn write_manifest_and_wait(
    backend: &dyn Backend,
    component: &str,
    yaml: &str,
    wait: Option<bool>,
) -> Result<(), StepFailure> {
    let node = backend.control_plane();
    let affects_api = matches!(component, "kube-apiserver" | "etcd");
    let wait = wait.unwrap_or(affects_api);
    let client = if wait { Some(backend.client().await?) } else { None };
    backend.write_file(&node, &manifest_path(component), yaml.as_bytes(), 0o600).await?;
    let Some(client) = client else { return Ok(()) };
    // First see the old process go away, so "healthy" below is the new one answering.
    let window = Instant::now() + backend.manifest_restart_window();
    while Instant::now() < window {
        if wait_api_healthy(&client, Duration::from_millis(400)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match wait_api_healthy(&client, Duration::from_secs(120)).await {
        Ok(()) => Ok(()),
        Err(_) => {
            let logs = backend.component_logs(component, 3).await.unwrap_or_default();
            Err(StepFailure::ComponentUnhealthy { component: component.into(), logs: logs.trim().into() })
        }
    }
}

/// kubectl: the one ckslab built for the local backend if present, else the one on PATH.
pub fn kubectl_program() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("CKSLAB_KUBECTL") {
        return path.into();
    }
    let cached = crate::tools::bin_dir().join("kubectl");
    if cached.exists() { cached } else { "kubectl".into() }
}

async fn kubectl(backend: &dyn Backend, command: &KubectlCommand) -> Result<(), StepFailure> {
    let (args, stdin, allow_failure) = match command {
        KubectlCommand::Args(args) => (args.clone(), None, false),
        KubectlCommand::Full { args, stdin, allow_failure } => (args.clone(), stdin.clone(), *allow_failure),
    };
    let mut child = tokio::process::Command::new(kubectl_program())
        .args(&args)
        .env("KUBECONFIG", backend.kubeconfig_path())
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting kubectl (set CKSLAB_KUBECTL or put kubectl on PATH)")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(text.as_bytes()).await.context("writing kubectl's input")?;
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .map_err(|_| StepFailure::timeout("kubectl did not finish", 120))?
        .context("waiting for kubectl")?;
    if !out.status.success() && !allow_failure {
        return Err(StepFailure::Kubectl {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    Ok(())
}

async fn wait_for(backend: &dyn Backend, wait: &WaitFor) -> Result<(), StepFailure> {
    match wait {
        WaitFor::Seconds(seconds) => {
            tokio::time::sleep(Duration::from_secs(*seconds)).await;
            Ok(())
        }
        WaitFor::ApiHealthy(seconds) => {
            let client = backend.client().await?;
            Ok(wait_api_healthy(&client, Duration::from_secs(*seconds)).await?)
        }
        WaitFor::Object(target) => {
            let client = backend.client().await?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok((api, _)) =
                    dynamic_api(&client, &target.api_version, &target.kind, target.namespace.as_deref()).await
                    && api.get_opt(&target.name).await.context(format!("reading {}", object_name(target)))?.is_some()
                {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(StepFailure::timeout(format!("{} did not appear", object_name(target)), 60));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        WaitFor::PodsReady(spec) => {
            let client = backend.client().await?;
            let api: Api<Pod> = Api::namespaced(client, &spec.namespace);
            let mut params = ListParams::default();
            if let Some(selector) = &spec.selector {
                params = params.labels(selector);
            }
            let deadline = Instant::now() + Duration::from_secs(spec.timeout);
            loop {
                let pods = api.list(&params).await.context(format!("listing pods in {}", spec.namespace))?;
                let ready = pods.items.iter().filter(|p| pod_ready(p)).count();
                if ready >= spec.min && ready == pods.items.len() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(StepFailure::PodsNotReady(pods_not_ready(spec, &pods.items, ready)));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Says which pods are not ready and in what phase, or that none exists yet (then the
/// Deployment, ReplicaSet or the namespace's events say why).
fn pods_not_ready(spec: &crate::scenario::PodsReady, pods: &[Pod], ready: usize) -> String {
    let matching = spec.selector.as_deref().map(|s| format!(" matching {s}")).unwrap_or_default();
    let head = format!("{ready} of {} pods{matching} ready in {} after {}s", pods.len(), spec.namespace, spec.timeout);
    if pods.is_empty() {
        return format!(
            "{head} (wanted {}): no pod exists; `kubectl -n {} get deploy,rs,events` shows why",
            spec.min, spec.namespace
        );
    }
    let waiting: Vec<String> = pods
        .iter()
        .filter(|p| !pod_ready(p))
        .map(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "no phase".into());
            format!("{} {phase}", p.metadata.name.as_deref().unwrap_or("?"))
        })
        .collect();
    if waiting.is_empty() {
        return format!("{head} (wanted {})", spec.min);
    }
    format!("{head}; not ready: {}", waiting.join(", "))
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> crate::scenario::PodsReady {
        crate::scenario::PodsReady {
            namespace: "ingest".into(),
            selector: Some("app=parser".into()),
            min: 2,
            timeout: 60,
        }
    }

    #[test]
    fn a_pods_ready_timeout_names_the_waiting_pods_or_says_none_exists() {
        let none = pods_not_ready(&spec(), &[], 0);
        assert!(none.contains("0 of 0 pods matching app=parser ready in ingest after 60s"), "{none}");
        assert!(none.contains("no pod exists; `kubectl -n ingest get deploy,rs,events`"), "{none}");

        let pending: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "parser-1"}, "status": {"phase": "Pending"}
        }))
        .unwrap();
        let running: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "parser-2"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let some = pods_not_ready(&spec(), &[pending, running], 1);
        assert!(
            some.ends_with("1 of 2 pods matching app=parser ready in ingest after 60s; not ready: parser-1 Pending"),
            "{some}"
        );
    }
}
