//! Probes that read nodes: static pod flags, kubelet config, node files, commands.

use std::path::Path;

use regex::Regex;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::{Finding, Outcome, digest, fields, resolve_nodes};
use crate::backend::{Backend, ExecOutput};
use crate::scenario::{
    CommandProbe, ComponentFlagProbe, DigestCondition, FileFormat, FlagExpectation, KubeletConfigProbe, NodeFileProbe,
    NodeRef, PodSet,
};
use crate::staticpod::{FlagKind, Manifest, manifest_path};

/// Reads and parses a component's static pod manifest on the control-plane node.
pub async fn read_manifest(backend: &dyn Backend, component: &str) -> Result<Manifest, Finding> {
    let path = manifest_path(component);
    let shown = path.display().to_string();
    let node = backend.control_plane();
    match backend.read_file(&node, &path).await {
        Ok(Some(bytes)) => Manifest::parse(&shown, &String::from_utf8_lossy(&bytes))
            .map_err(|e| Finding::fail(e.to_string(), format!("a valid static pod manifest at {shown}"))),
        Ok(None) => Err(Finding::fail(format!("{shown} does not exist on {node}"), shown.to_string())),
        Err(e) => Err(Finding::error(format!("reading {shown}: {e}"), format!("{shown} readable"))),
    }
}

pub async fn component_flag(probe: &ComponentFlagProbe, backend: &dyn Backend) -> Finding {
    let manifest = match read_manifest(backend, &probe.component).await {
        Ok(m) => m,
        Err(f) => return f,
    };
    let flag = manifest.flag_value(&probe.flag);
    let name = format!("--{}", probe.flag);
    let value = flag.as_ref().map(|f| f.text());
    let mut observed = match &flag {
        None => format!("{} has no {name}", probe.component),
        Some(f) if f.occurrences.len() == 1 => format!("{} has {name}={}", probe.component, f.text()),
        Some(f) => {
            let written: Vec<String> = f
                .occurrences
                .iter()
                .map(|o| o.as_ref().map(|v| format!("{name}={v}")).unwrap_or_else(|| name.clone()))
                .collect();
            let effect = match f.kind {
                FlagKind::List | FlagKind::Array | FlagKind::Map => "which add up to",
                _ => "of which the last counts:",
            };
            format!("{} has {}, {effect} {name}={}", probe.component, written.join(" and "), f.text())
        }
    };
    let stray = manifest.stray_arguments();
    if !stray.is_empty() {
        observed.push_str(&format!(
            " (and the argument{} {} that no flag takes, which {} refuses to start with)",
            if stray.len() == 1 { "" } else { "s" },
            stray.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "),
            probe.component
        ));
    }
    if !probe.file_fields.is_empty() {
        return flag_file_fields(probe, &manifest, value, observed, backend).await;
    }
    match &probe.expect {
        FlagExpectation::Equals(want) => {
            Finding::passed_if(flag.as_ref().is_some_and(|f| f.equals(want)), observed, format!("{name}={want}"))
        }
        FlagExpectation::Matches(pattern) => match Regex::new(pattern) {
            Ok(re) => Finding::passed_if(
                value.as_deref().is_some_and(|v| re.is_match(v)),
                observed,
                format!("{name} matching /{pattern}/"),
            ),
            Err(e) => Finding::error(format!("bad pattern: {e}"), format!("{name} matching /{pattern}/")),
        },
        FlagExpectation::Includes(item) => Finding::passed_if(
            flag.as_ref().is_some_and(|f| f.includes(item)),
            observed,
            format!("{name} to include {item}"),
        ),
        FlagExpectation::Excludes(item) => Finding::passed_if(
            !flag.as_ref().is_some_and(|f| f.includes(item)),
            observed,
            format!("{name} not to include {item}"),
        ),
        FlagExpectation::Absent(want_absent) => presence(flag.is_some(), !*want_absent, observed, &name),
        FlagExpectation::Present(want_present) => presence(flag.is_some(), *want_present, observed, &name),
        FlagExpectation::FileMounted(_) => {
            let expected = format!("{name} to name a file that a hostPath volume gives {}", probe.component);
            let Some(flag) = flag else { return Finding::fail(observed, expected) };
            let paths = flag.paths();
            if paths.is_empty() {
                return Finding::fail(format!("{observed}, which names no file"), expected);
            }
            let mut seen = Vec::new();
            for path in paths {
                let Some(host_path) = manifest.host_path_for(&path) else {
                    return Finding::fail(format!("{observed}, but no volume mount covers {path}"), expected);
                };
                match backend.stat_file(&backend.control_plane(), Path::new(&host_path)).await {
                    Ok(Some(_)) => seen.push(host_path),
                    Ok(None) => {
                        return Finding::fail(
                            format!("{observed}, mounted from {host_path}, which does not exist on the node"),
                            expected,
                        );
                    }
                    Err(e) => return Finding::error(format!("reading {host_path}: {e}"), expected),
                }
            }
            Finding::pass(format!("{observed}, mounted from the node's {}", seen.join(" and ")), expected)
        }
    }
}

async fn flag_file_fields(
    probe: &ComponentFlagProbe,
    manifest: &Manifest,
    value: Option<String>,
    observed: String,
    backend: &dyn Backend,
) -> Finding {
    let expected = format!("the file named by --{} with {}", probe.flag, fields::describe_all(&probe.file_fields));
    let Some(path) = value else { return Finding::fail(observed, expected) };
    let Some(host_path) = manifest.host_path_for(&path) else {
        return Finding::fail(format!("{observed}, but no volume mount covers {path}"), expected);
    };
    match backend.read_file(&backend.control_plane(), Path::new(&host_path)).await {
        Ok(Some(bytes)) => match parse_config(&String::from_utf8_lossy(&bytes)) {
            Ok(mut document) => {
                if let Err(problem) = follow_plugin_paths(&mut document, &path, manifest, backend).await {
                    return Finding::fail(format!("{observed}, but {problem}"), expected);
                }
                let finding = fields::evaluate_all(&document, &probe.file_fields, &path);
                Finding { expected, ..finding }
            }
            Err(e) => Finding::fail(format!("{path} does not parse: {e}"), expected),
        },
        Ok(None) => Finding::fail(format!("{observed}, but {host_path} does not exist on the node"), expected),
        Err(e) => Finding::error(format!("reading {host_path}: {e}"), expected),
    }
}

/// An AdmissionConfiguration plugin may give its settings in a file (`path`, relative to the
/// admission configuration's folder when relative) instead of inline (`configuration`). The
/// API server reads that file; so does a probe: its contents become the plugin's
/// `configuration`, so one field path checks both shapes.
async fn follow_plugin_paths(
    document: &mut Value,
    config_path: &str,
    manifest: &Manifest,
    backend: &dyn Backend,
) -> Result<(), String> {
    if document["kind"].as_str() != Some("AdmissionConfiguration") {
        return Ok(());
    }
    let folder = Path::new(config_path).parent().unwrap_or(Path::new("/")).to_path_buf();
    let Some(plugins) = document["plugins"].as_array_mut() else { return Ok(()) };
    for plugin in plugins {
        let Some(path) = plugin["path"].as_str().filter(|p| !p.is_empty()).map(String::from) else { continue };
        let name = plugin["name"].as_str().unwrap_or("a plugin").to_string();
        let inside =
            if Path::new(&path).is_absolute() { path.clone() } else { folder.join(&path).display().to_string() };
        let Some(host_path) = manifest.host_path_for(&inside) else {
            return Err(format!("{name}'s configuration file {inside} is on no volume mount"));
        };
        let bytes = match backend.read_file(&backend.control_plane(), Path::new(&host_path)).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(format!("{name}'s configuration file {host_path} does not exist on the node")),
            Err(e) => return Err(format!("reading {name}'s configuration file {host_path}: {e}")),
        };
        match parse_config(&String::from_utf8_lossy(&bytes)) {
            Ok(configuration) => plugin["configuration"] = configuration,
            Err(e) => return Err(format!("{name}'s configuration file {inside} does not parse: {e}")),
        }
    }
    Ok(())
}

fn presence(is_set: bool, want_set: bool, observed: String, name: &str) -> Finding {
    let expected = if want_set { format!("{name} set") } else { format!("no {name}") };
    Finding::passed_if(is_set == want_set, observed, expected)
}

/// Parses YAML or JSON config text into data.
pub fn parse_config(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
    }
}

/// Reads the kubelet's config file as the kubelet does: a KubeletConfiguration, with the
/// defaults the kubelet gives the fields a file leaves out (so a file that drops
/// `authentication.anonymous.enabled` reads as `false`, as the kubelet runs it), then the fields.
pub async fn kubelet_config(probe: &KubeletConfigProbe, backend: &dyn Backend) -> Finding {
    let nodes = resolve_nodes(&probe.node, backend);
    if nodes.is_empty() {
        return Finding::error("the cluster has no such node", format!("{:?}", probe.node));
    }
    let mut last = Finding::pass("", "");
    for node in nodes {
        let subject = format!("{node}:{}", probe.path);
        let finding = match backend.read_file(&node, Path::new(&probe.path)).await {
            Ok(Some(bytes)) => match parse_config(&String::from_utf8_lossy(&bytes)) {
                Ok(document) => match kubelet_defaults(document) {
                    Ok(document) => fields::evaluate_all(&document, &probe.fields, &subject),
                    Err(e) => Finding::fail(format!("{subject}: {e}"), "a KubeletConfiguration"),
                },
                Err(e) => {
                    Finding::fail(format!("{subject} does not parse: {e}"), "a YAML or JSON KubeletConfiguration")
                }
            },
            Ok(None) => Finding::fail(format!("{subject} does not exist"), format!("{subject} to exist")),
            Err(e) => Finding::error(format!("reading {subject}: {e}"), format!("{subject} readable")),
        };
        if finding.outcome != Outcome::Pass {
            return finding;
        }
        last = finding;
    }
    last
}

/// The kubelet.config.k8s.io/v1beta1 defaults of the security fields (the kubelet's
/// `SetDefaults_KubeletConfiguration`): anonymous authentication off, webhook authentication on,
/// authorization mode Webhook. A document that is not a KubeletConfiguration is an error.
pub fn kubelet_defaults(mut document: Value) -> Result<Value, String> {
    let kind = document["kind"].as_str().unwrap_or_default();
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    if kind != "KubeletConfiguration" || !api_version.starts_with("kubelet.config.k8s.io/") {
        return Err(format!(
            "kind {kind:?} apiVersion {api_version:?} is not a KubeletConfiguration of kubelet.config.k8s.io"
        ));
    }
    let defaults = [
        ("/authentication/anonymous/enabled", Value::Bool(false)),
        ("/authentication/webhook/enabled", Value::Bool(true)),
        ("/authorization/mode", Value::String("Webhook".into())),
    ];
    for (pointer, default) in defaults {
        if document.pointer(pointer).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            let mut at = &mut document;
            let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                if !at.is_object() {
                    return Err(format!("{} is not a map", parts[..i].join(".")));
                }
                let slot = at.as_object_mut().expect("checked").entry(part.to_string()).or_insert(Value::Null);
                if i + 1 == parts.len() {
                    *slot = default.clone();
                } else if slot.is_null() {
                    *slot = Value::Object(Default::default());
                }
                at = slot;
            }
        }
    }
    Ok(document)
}

pub async fn node_file(probe: &NodeFileProbe, backend: &dyn Backend) -> Finding {
    let nodes = resolve_nodes(&probe.node, backend);
    if nodes.is_empty() {
        return Finding::error("the cluster has no such node", format!("{:?}", probe.node));
    }
    let mut last = Finding::pass("", "");
    for node in nodes {
        let finding = match matching_paths(probe, backend, &node).await {
            Err(finding) => finding,
            Ok(None) => one_node_file(probe, backend, &node).await,
            Ok(Some(paths)) => {
                let mut last = None;
                for path in &paths {
                    let one = NodeFileProbe { path: path.clone(), ..probe.clone() };
                    let finding = one_node_file(&one, backend, &node).await;
                    if finding.outcome != Outcome::Pass {
                        last = Some(finding);
                        break;
                    }
                    last = Some(finding);
                }
                match last {
                    Some(f) if f.outcome != Outcome::Pass => f,
                    _ => Finding::pass(
                        format!("{} file(s) match {node}:{}: {}", paths.len(), probe.path, paths.join(", ")),
                        format!("every file matching {} to hold", probe.path),
                    ),
                }
            }
        };
        if finding.outcome != super::Outcome::Pass {
            return finding;
        }
        last = finding;
    }
    last
}

/// A path whose file name has `*` or `?` names every file of its folder that matches (at least
/// one must; `absent` wants none). None for a plain path.
async fn matching_paths(
    probe: &NodeFileProbe,
    backend: &dyn Backend,
    node: &str,
) -> Result<Option<Vec<String>>, Finding> {
    let path = Path::new(&probe.path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(None);
    }
    let folder = path.parent().unwrap_or(Path::new("/"));
    let names = match backend.list_dir(node, folder).await {
        Ok(names) => names.unwrap_or_default(),
        Err(e) => return Err(Finding::error(format!("listing {node}:{}: {e}", folder.display()), "a readable folder")),
    };
    let mut paths: Vec<String> = names
        .into_iter()
        .filter(|n| !n.starts_with('.') && super::sshd::glob_match(&name, n))
        .map(|n| folder.join(n).display().to_string())
        .collect();
    paths.sort();
    if paths.is_empty() {
        let observed = format!("no file matches {node}:{}", probe.path);
        return Err(Finding::passed_if(probe.absent, observed, format!("files matching {}", probe.path)));
    }
    Ok(Some(paths))
}

async fn one_node_file(probe: &NodeFileProbe, backend: &dyn Backend, node: &str) -> Finding {
    let path = Path::new(&probe.path);
    let subject = format!("{node}:{}", probe.path);
    let stat = match backend.stat_file(node, path).await {
        Ok(stat) => stat,
        Err(e) => return Finding::error(format!("reading {subject}: {e}"), format!("{subject} readable")),
    };
    let Some(stat) = stat else {
        return Finding::passed_if(probe.absent, format!("{subject} does not exist"), format!("{subject} to exist"));
    };
    if probe.absent {
        return Finding::fail(format!("{subject} exists"), format!("{subject} absent"));
    }
    if let Some(max) = probe.max_mode
        && stat.mode & !max & 0o7777 != 0
    {
        return Finding::fail(format!("{subject} has mode {:o}", stat.mode), format!("mode {max:o} or stricter"));
    }
    if let Some(owner) = probe.owner
        && stat.uid != owner
    {
        return Finding::fail(format!("{subject} is owned by uid {}", stat.uid), format!("owner uid {owner}"));
    }
    let mut observed = format!("{subject} exists with mode {:o}, owner uid {}", stat.mode, stat.uid);
    let mut expected = format!("{subject} to exist");
    if probe.digest.is_none() && probe.fields.is_empty() {
        return Finding::pass(observed, expected);
    }
    let bytes = match backend.read_file(node, path).await {
        Ok(Some(b)) => b,
        Ok(None) => return Finding::fail(format!("{subject} vanished"), format!("{subject} to exist")),
        Err(e) => return Finding::error(format!("reading {subject}: {e}"), format!("{subject} readable")),
    };
    if let Some(condition) = &probe.digest {
        let finding = file_digest(condition, backend, node, path, &bytes).await;
        if finding.outcome != Outcome::Pass {
            return Finding { observed: format!("{subject}: {}", finding.observed), ..finding };
        }
        observed = format!("{subject}: {}", finding.observed);
        expected = finding.expected;
    }
    if probe.fields.is_empty() {
        return Finding::pass(observed, expected);
    }
    let text = String::from_utf8_lossy(&bytes);
    let document = match probe.format {
        FileFormat::Yaml => parse_config(&text).map_err(|e| (e, "a YAML or JSON document")),
        FileFormat::SshdConfig => Ok(super::sshd::resolve(backend, node, path, &text).await),
        FileFormat::Sudoers => Ok(super::sudoers::parse(&text)),
        FileFormat::Dockerfile => super::dockerfile::parse(&text).map_err(|e| (e, "a Dockerfile")),
        FileFormat::Sbom => super::sbom::parse(&text).map_err(|e| (e, "an SPDX JSON or CycloneDX JSON SBOM")),
    };
    match document {
        Ok(document) => fields::evaluate_all(&document, &probe.fields, &subject),
        Err((e, what)) => Finding::fail(format!("{subject} does not parse: {e}"), what.to_string()),
    }
}

/// The file's digest against a given value or the entry a published checksum list has for it.
async fn file_digest(
    condition: &DigestCondition,
    backend: &dyn Backend,
    node: &str,
    path: &Path,
    bytes: &[u8],
) -> Finding {
    let algorithm = condition.algorithm;
    let actual = digest::hex_digest(algorithm, bytes);
    let short = |d: &str| format!("{}…", &d[..d.len().min(16)]);
    let kind = digest::name(algorithm);
    match (&condition.equals, &condition.listed_in) {
        (Some(want), None) => Finding::passed_if(
            actual.eq_ignore_ascii_case(want.trim()),
            format!("its {kind} is {}", short(&actual)),
            format!("{kind} {}", short(want.trim())),
        ),
        (None, Some(list)) => {
            let expected = format!("the {kind} that {list} lists for it");
            let text = match backend.read_file(node, Path::new(list)).await {
                Ok(Some(text)) => String::from_utf8_lossy(&text).into_owned(),
                Ok(None) => return Finding::fail(format!("the checksum list {list} does not exist"), expected),
                Err(e) => return Finding::error(format!("reading {list}: {e}"), expected),
            };
            let listed = digest::listed_for(&text, algorithm, Path::new(list), path);
            if listed.is_empty() {
                return Finding::fail(format!("{list} lists no {kind} for {}", path.display()), expected);
            }
            Finding::passed_if(
                listed.iter().all(|d| *d == actual),
                format!(
                    "its {kind} is {}, {list} lists {}",
                    short(&actual),
                    listed.iter().map(|d| short(d)).collect::<Vec<_>>().join(" and ")
                ),
                expected,
            )
        }
        _ => Finding::error("a digest condition needs exactly one of equals and listed-in", "a valid check"),
    }
}

pub async fn command(probe: &CommandProbe, backend: &dyn Backend) -> Finding {
    if let Some(pods) = &probe.pods {
        return command_in_pods(probe, pods, backend).await;
    }
    let shown = probe.command.join(" ");
    let (place, output) = if let Some(pod) = &probe.pod {
        (format!("in pod {pod}"), pod_exec(backend, pod, probe.container.as_deref(), &probe.command).await)
    } else {
        let node_ref = probe.node.clone().unwrap_or(NodeRef::ControlPlane);
        let Some(node) = resolve_nodes(&node_ref, backend).into_iter().next() else {
            return Finding::error("the cluster has no such node", "a node");
        };
        (format!("on {node}"), backend.exec(&node, &probe.command).await.map_err(|e| e.to_string()))
    };
    match output {
        Ok(output) => judge_output(probe, &output, &place),
        Err(e) => Finding::error(format!("running `{shown}` {place}: {e}"), "the command to run"),
    }
}

/// Runs the command in every container of every selected pod; the first that does not give the
/// expected result decides (so the finding names the pod and container to look at).
async fn command_in_pods(probe: &CommandProbe, set: &PodSet, backend: &dyn Backend) -> Finding {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    let shown = probe.command.join(" ");
    let selection = match &set.selector {
        Some(selector) => format!("pods {selector} in {}", set.namespace),
        None => format!("pods in {}", set.namespace),
    };
    let client = match backend.client().await {
        Ok(c) => c,
        Err(e) => return Finding::error(e.to_string(), "a reachable API server"),
    };
    let api: Api<Pod> = Api::namespaced(client, &set.namespace);
    let mut params = ListParams::default();
    if let Some(selector) = &set.selector {
        params = params.labels(selector);
    }
    let pods: Vec<Pod> = match api.list(&params).await {
        // Terminating pods are on their way out (see the objects probe).
        Ok(list) => list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect(),
        Err(e) => return Finding::error(format!("listing {selection}: {e}"), format!("{selection} listable")),
    };
    if pods.len() < set.min {
        return Finding::fail(
            format!("{} of {selection} found", pods.len()),
            format!("at least {} of {selection} to run `{shown}` in", set.min),
        );
    }
    // A container that is not running cannot be exec'd into; what the kubelet says about it
    // (a profile it cannot load, an app that crashes) is what the learner needs to see.
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for container in exec_containers(pod, probe.container.as_deref()) {
            if let Some(why) = not_running(pod, &container) {
                let log = match crashed(pod, &container) {
                    true => previous_log(&api, &name, &container).await,
                    false => None,
                };
                let log = log.map(|l| format!("; its last output: {l}")).unwrap_or_default();
                return Finding::fail(
                    format!("in pod {}/{name}, container {container} {why}{log}", set.namespace),
                    format!("every container of {selection} running, to run `{shown}` in"),
                );
            }
        }
    }
    let mut places = 0;
    let mut last = None;
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for container in exec_containers(pod, probe.container.as_deref()) {
            let place = format!("in pod {}/{name} container {container}", set.namespace);
            let target = format!("{}/{name}", set.namespace);
            let finding = match pod_exec(backend, &target, Some(&container), &probe.command).await {
                Ok(output) => judge_output(probe, &output, &place),
                Err(e) => Finding::error(format!("running `{shown}` {place}: {e}"), "the command to run"),
            };
            if finding.outcome != Outcome::Pass {
                return finding;
            }
            places += 1;
            last = Some(finding);
        }
    }
    match last {
        Some(finding) => Finding::pass(
            format!("{places} container(s) of {selection} gave the expected result; last: {}", finding.observed),
            finding.expected,
        ),
        None => Finding::fail(format!("{selection} have no containers"), format!("containers to run `{shown}` in")),
    }
}

/// The containers of `pod` a command runs in: the one named, or every (non-init) container.
fn exec_containers(pod: &k8s_openapi::api::core::v1::Pod, named: Option<&str>) -> Vec<String> {
    match named {
        Some(c) => vec![c.to_string()],
        None => pod.spec.iter().flat_map(|s| s.containers.iter().map(|c| c.name.clone())).collect(),
    }
}

/// Why `container` of `pod` is not running, in the kubelet's words (the reason and message of
/// its waiting or terminated state, the ones `kubectl describe` shows in its events), or None
/// when it runs.
fn not_running(pod: &k8s_openapi::api::core::v1::Pod, container: &str) -> Option<String> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
    let Some(found) =
        status.and_then(|s| s.container_statuses.as_ref()).and_then(|l| l.iter().find(|c| c.name == container))
    else {
        // Not started at all: unschedulable, or still in its init containers.
        let condition = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|l| l.iter().find(|c| c.status != "True" && c.message.is_some()))
            .and_then(|c| c.message.clone())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Some(format!("has not started (pod phase {phase}){condition}"));
    };
    let state = found.state.as_ref();
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return None;
    }
    let said = |reason: Option<&String>, message: Option<&String>| match (reason, message) {
        (Some(r), Some(m)) => format!("{r}: {}", m.trim()),
        (Some(r), None) => r.clone(),
        (None, Some(m)) => m.trim().to_string(),
        (None, None) => "no reason given".into(),
    };
    let last = found
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| format!("; it last exited {} ({})", t.exit_code, said(t.reason.as_ref(), t.message.as_ref())))
        .unwrap_or_default();
    if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
        return Some(format!("is not running: {}{last}", said(waiting.reason.as_ref(), waiting.message.as_ref())));
    }
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return Some(format!("has exited {} ({})", t.exit_code, said(t.reason.as_ref(), t.message.as_ref())));
    }
    Some(format!("is not running (pod phase {phase}){last}"))
}

/// Whether `container` has run and exited at least once (so it has a previous log to show).
fn crashed(pod: &k8s_openapi::api::core::v1::Pod, container: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|l| l.iter().find(|c| c.name == container))
        .is_some_and(|c| c.restart_count > 0 || c.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some())
}

/// The last two lines a crashed container printed before it exited, if the API has them.
async fn previous_log(
    api: &kube::api::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    container: &str,
) -> Option<String> {
    let mut params =
        kube::api::LogParams { container: Some(container.into()), tail_lines: Some(2), ..Default::default() };
    let mut text = api.logs(pod, &params).await.ok().filter(|t| !t.trim().is_empty());
    if text.is_none() {
        params.previous = true;
        text = api.logs(pod, &params).await.ok();
    }
    text.map(|t| last_lines(&t)).filter(|t| t != "(none)")
}

/// The last three lines of a command's output, on one line (`(none)` when it printed nothing).
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    if lines.is_empty() {
        return "(none)".into();
    }
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Exit code and output patterns against what a command gave.
fn judge_output(probe: &CommandProbe, output: &ExecOutput, place: &str) -> Finding {
    let shown = probe.command.join(" ");
    let mut expected = Vec::new();
    let mut ok = true;
    if let Some(code) = probe.exit_code {
        expected.push(code.to_string());
        ok &= code.accepts(output.code);
    }
    let patterns = [
        (&probe.stdout_matches, true, "output", &output.stdout),
        (&probe.stdout_not_matches, false, "output", &output.stdout),
        (&probe.stderr_matches, true, "error output", &output.stderr),
    ];
    for (pattern, must_match, stream, text) in patterns {
        if let Some(pattern) = pattern {
            let Ok(re) = Regex::new(pattern) else {
                return Finding::error(format!("bad pattern /{pattern}/"), "a valid pattern");
            };
            expected.push(format!("{stream} {}matching /{pattern}/", if must_match { "" } else { "not " }));
            ok &= re.is_match(text) == must_match;
        }
    }
    let observed = format!(
        "`{shown}` {place} exited {} with output: {}; error output: {}",
        output.code,
        last_lines(&output.stdout),
        last_lines(&output.stderr)
    );
    if !ok || probe.stdout_fields.is_empty() {
        return Finding::passed_if(ok, observed, expected.join(", "));
    }
    let subject = format!("the output of `{shown}` {place}");
    let parsed = if output.stdout.trim().is_empty() {
        Err("it printed nothing".to_string())
    } else {
        parse_config(&output.stdout)
    };
    match parsed {
        Ok(document) => {
            let finding = fields::evaluate_all(&document, &probe.stdout_fields, &subject);
            expected.push(finding.expected.clone());
            Finding { expected: expected.join(", "), ..finding }
        }
        Err(e) => {
            let stderr = output.stderr.trim().lines().last().unwrap_or_default();
            expected.push(fields::describe_all(&probe.stdout_fields));
            Finding::fail(
                format!("{subject} (exit {}) does not parse: {e}; stderr: {stderr}", output.code),
                expected.join(", "),
            )
        }
    }
}

async fn pod_exec(
    backend: &dyn Backend,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<ExecOutput, String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    let (namespace, name) = pod.split_once('/').ok_or_else(|| format!("pod {pod:?} is not namespace/name"))?;
    let client = backend.client().await.map_err(|e| e.to_string())?;
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let mut params = AttachParams::default().stdout(true).stderr(true);
    if let Some(c) = container {
        params = params.container(c);
    }
    let mut attached = api.exec(name, command.to_vec(), &params).await.map_err(|e| e.to_string())?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = attached.stdout() {
        out.read_to_string(&mut stdout).await.map_err(|e| e.to_string())?;
    }
    if let Some(mut err) = attached.stderr() {
        err.read_to_string(&mut stderr).await.map_err(|e| e.to_string())?;
    }
    let status = match attached.take_status() {
        Some(s) => s.await,
        None => None,
    };
    let code = match status {
        Some(s) if s.status.as_deref() == Some("Success") => 0,
        Some(s) => s
            .details
            .and_then(|d| d.causes)
            .and_then(|c| c.into_iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message)
            .and_then(|m| m.parse().ok())
            .unwrap_or(1),
        None => 0,
    };
    Ok(ExecOutput { code, stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use crate::scenario::{ExitCode, Expectation, FieldCondition};

    fn secure(text: &str) -> Outcome {
        let conditions = [
            FieldCondition {
                path: "$.authentication.anonymous.enabled".into(),
                label: None,
                expect: Expectation::Equals(Value::Bool(false)),
                any: false,
            },
            FieldCondition {
                path: "$.authorization.mode".into(),
                label: None,
                expect: Expectation::Equals(Value::String("Webhook".into())),
                any: false,
            },
        ];
        match parse_config(text).and_then(kubelet_defaults) {
            Ok(document) => fields::evaluate_all(&document, &conditions, "config.yaml").outcome,
            Err(_) => Outcome::Fail,
        }
    }

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    #[test]
    fn kubelet_config_reads_with_the_kubelets_defaults() {
        // Written out, left to the defaults, or as JSON: the kubelet runs each the same.
        for text in [
            format!("{HEAD}authentication:\n  anonymous:\n    enabled: false\nauthorization:\n  mode: Webhook\n"),
            HEAD.to_string(),
            format!("{HEAD}authentication:\n  anonymous: {{}}\n  webhook:\n    enabled: true\nauthorization: {{}}\n"),
            r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","authentication":{"anonymous":{"enabled":false}}}"#.to_string(),
        ] {
            assert_eq!(secure(&text), Outcome::Pass, "{text}");
        }
        for text in [
            format!("{HEAD}authentication:\n  anonymous:\n    enabled: true\n"),
            format!("{HEAD}authorization:\n  mode: AlwaysAllow\n"),
            // Not a KubeletConfiguration at all, so not what the kubelet reads.
            "authentication:\n  anonymous:\n    enabled: false\nauthorization:\n  mode: Webhook\n".to_string(),
            format!("{HEAD}authentication: off\n"),
        ] {
            assert_eq!(secure(&text), Outcome::Fail, "{text}");
        }
    }

    fn probe(yaml: &str) -> CommandProbe {
        serde_saphyr::from_str(yaml).expect("a command probe")
    }

    fn output(code: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput { code, stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn a_command_expected_to_fail_must_fail_for_the_reason_given() {
        let denied = probe(
            "{pods: {namespace: n}, command: [mkdir, /tmp/x], exit-code: nonzero, stderr-matches: Operation not permitted}",
        );
        let eperm = output(1, "", "mkdir: can't create directory '/tmp/x': Operation not permitted\n");
        let finding = judge_output(&denied, &eperm, "in pod n/p container c");
        assert_eq!(finding.outcome, Outcome::Pass, "{finding:?}");
        // It worked: the profile is not in force. The message says what ran and what it gave.
        let finding = judge_output(&denied, &output(0, "", ""), "in pod n/p container c");
        assert_eq!(finding.outcome, Outcome::Fail);
        assert_eq!(
            finding.observed,
            "`mkdir /tmp/x` in pod n/p container c exited 0 with output: (none); error output: (none)"
        );
        assert_eq!(finding.expected, "a non-zero exit code, error output matching /Operation not permitted/");
        // It failed, but not because of the profile.
        let exists = output(1, "", "mkdir: can't create directory '/tmp/x': File exists\n");
        let finding = judge_output(&denied, &exists, "in pod n/p container c");
        assert_eq!(finding.outcome, Outcome::Fail);
        assert!(
            finding.observed.contains("exited 1") && finding.observed.ends_with("File exists"),
            "{}",
            finding.observed
        );
    }

    #[test]
    fn exit_codes_are_numbers_or_nonzero() {
        let exact = probe("{pods: {namespace: n}, command: [ls, /x], exit-code: 1}");
        assert_eq!(exact.exit_code, Some(ExitCode::Code(1)));
        assert!(exact.exit_code.unwrap().accepts(1) && !exact.exit_code.unwrap().accepts(2));
        let nonzero = probe("{pods: {namespace: n}, command: [ls, /x], exit-code: nonzero}");
        assert!(nonzero.exit_code.unwrap().accepts(2) && !nonzero.exit_code.unwrap().accepts(0));
        assert!(serde_saphyr::from_str::<CommandProbe>("{command: [ls], exit-code: sometimes}").is_err());
        assert_eq!(judge_output(&exact, &output(2, "", "ls: cannot access '/x'"), "here").outcome, Outcome::Fail);
    }

    fn pod(status: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}, {"name": "side", "image": "busybox"}]},
            "status": status,
        }))
        .expect("a pod")
    }

    #[test]
    fn a_container_that_is_not_running_says_what_the_kubelet_reported() {
        let p = pod(serde_json::json!({"phase": "Pending", "containerStatuses": [
            {"name": "app", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "CreateContainerError",
               "message": "failed to generate seccomp spec opts: cannot load seccomp profile \"/var/lib/kubelet/seccomp/profiles/x.json\": no such file or directory"}}},
            {"name": "side", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
             "state": {"running": {"startedAt": "2026-12-02T10:00:00Z"}}}]}));
        assert_eq!(exec_containers(&p, None), ["app", "side"]);
        assert_eq!(exec_containers(&p, Some("side")), ["side"]);
        let why = not_running(&p, "app").expect("app is not running");
        assert!(why.starts_with("is not running: CreateContainerError: failed to generate seccomp"), "{why}");
        assert!(why.contains("/var/lib/kubelet/seccomp/profiles/x.json"), "{why}");
        assert!(!crashed(&p, "app"));
        assert_eq!(not_running(&p, "side"), None);
    }

    #[test]
    fn a_crashing_container_says_how_it_last_exited() {
        let p = pod(serde_json::json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "image": "busybox", "imageID": "", "ready": false, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=app"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}));
        assert_eq!(
            not_running(&p, "app").as_deref(),
            Some(
                "is not running: CrashLoopBackOff: back-off 40s restarting failed container=app; it last exited 1 (Error)"
            )
        );
        assert!(crashed(&p, "app"));
        // No status for a container at all: the pod has not got that far.
        let p = pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available"}]}));
        assert_eq!(
            not_running(&p, "side").as_deref(),
            Some("has not started (pod phase Pending): 0/2 nodes are available")
        );
    }
}
