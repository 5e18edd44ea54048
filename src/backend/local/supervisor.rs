//! The static-pod supervisor: the local backend's kubelet.
//!
//! It watches the control plane's `/etc/kubernetes/manifests` (every 300 ms, by content hash),
//! runs each pod's first container under bwrap with exactly the pod's hostPath volumes, restarts
//! it with back-off when it exits (like CrashLoopBackOff, at most 10 s apart), restarts it at once
//! when its manifest changes and stops it when the manifest goes away. It also runs kwok, which
//! plays the kubelets' part towards the API (node heartbeats, pods Running).
//!
//! Its state goes to `local/status.json` ([`SupervisorStatus`]), which the backend's `status()`
//! reads. Logs: each container writes to
//! `nodes/ckslab-control-plane/var/log/pods/kube-system_<pod>-ckslab-control-plane/<container>/<n>.log`
//! (`n` = restart count, the two newest kept; plain process output, without the CRI line prefix),
//! with a `var/log/containers/<pod>-ckslab-control-plane_kube-system_<container>.log` symlink to the
//! current one; kwok writes to `local/logs/kwok.log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::bwrap;
use super::paths::{self, CONTROL_PLANE, ClusterPaths};
use super::pod::{self, Plan};
use super::procs;

/// Set (to a pid) to make the supervisor stop the cluster when that process exits; the tests use
/// it so no cluster outlives `cargo test`.
pub const OWNER_PID_ENV: &str = "CKSLAB_LOCAL_OWNER_PID";

const POLL: Duration = Duration::from_millis(300);
/// A manifest changed less than this long ago may still be being written.
const SETTLE: Duration = Duration::from_millis(150);
/// How long a component gets to exit after SIGTERM before SIGKILL. The kubelet would give 30 s,
/// but a lab restarting a component after a manifest edit wants it back quickly.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// kube-apiserver stops listening at once on SIGTERM, then waits up to a minute for open watches
/// to end; it keeps no state, so it gets less.
const APISERVER_STOP_GRACE: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A process that ran this long before exiting starts its back-off afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
const DETAIL_LINES: usize = 15;

/// `local/status.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SupervisorStatus {
    pub supervisor_pid: u32,
    pub updated_at: Option<DateTime<Utc>>,
    /// Keyed by manifest file name (`kube-apiserver.yaml`), and `kwok`.
    pub components: BTreeMap<String, ComponentState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentState {
    /// The pod name (`kube-apiserver`), or the file stem when the manifest does not parse.
    pub name: String,
    /// The manifest file name, `None` for kwok.
    pub manifest: Option<String>,
    /// sha256 (hex) of the manifest bytes this state is about.
    pub manifest_sha256: Option<String>,
    pub running: bool,
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub restarts: u32,
    /// Why it is down: the manifest or volume error, or the exit status and last log lines.
    pub detail: Option<String>,
    pub log: Option<PathBuf>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Per manifest file: the content hash, and the plan or (component name, error).
type ParseCache = BTreeMap<String, (String, Result<Plan, (String, String)>)>;
type Phase = Vec<(Option<watch::Sender<Desired>>, JoinHandle<()>)>;

/// What a manifest file asks for.
#[derive(Debug, Clone, PartialEq)]
enum Desired {
    Run {
        plan: Plan,
        hash: String,
    },
    Invalid {
        name: String,
        error: String,
        hash: String,
    },
    Removed,
    /// The supervisor is stopping.
    Stop,
}

impl Desired {
    /// Shutdown order: clients of the API server first, then the API server, then etcd, so
    /// neither waits on connections from a component that is about to go anyway.
    fn stop_phase(&self) -> u8 {
        let name = match self {
            Desired::Run { plan, .. } => plan.pod.as_str(),
            Desired::Invalid { name, .. } => name.as_str(),
            Desired::Removed | Desired::Stop => "",
        };
        match name {
            "kube-apiserver" => 1,
            "etcd" => 2,
            _ => 0,
        }
    }
}

struct Ctx {
    paths: ClusterPaths,
    bin_dir: PathBuf,
    bwrap: PathBuf,
    states: Mutex<BTreeMap<String, ComponentState>>,
    shutdown: watch::Receiver<bool>,
}

impl Ctx {
    fn set(&self, key: &str, f: impl FnOnce(&mut ComponentState)) {
        let mut states = self.states.lock().expect("states lock");
        f(states.entry(key.to_string()).or_default());
    }
    fn pid_file(&self, key: &str) -> PathBuf {
        self.paths.pids_dir().join(format!("{key}.pid"))
    }
}

/// Runs until SIGTERM/SIGINT (or the owner process named by [`OWNER_PID_ENV`] exits), then stops
/// every process it started.
pub async fn run_supervisor(cluster_dir: PathBuf) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let cluster_dir = std::fs::canonicalize(&cluster_dir)
        .map_err(|e| anyhow::anyhow!("cluster dir {}: {e}", cluster_dir.display()))?;
    let paths = ClusterPaths::new(cluster_dir);
    let bin_dir = paths::check_tools()?;
    let bwrap = paths::bwrap_path()?;
    std::fs::create_dir_all(paths.pids_dir())?;
    std::fs::create_dir_all(paths.logs_dir())?;
    std::fs::write(paths.supervisor_pid(), format!("{}\n", std::process::id()))?;
    let owner: Option<i32> = std::env::var(OWNER_PID_ENV).ok().and_then(|p| p.parse().ok());
    tracing::info!(dir = %paths.dir.display(), ?owner, "local supervisor started");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx { paths, bin_dir, bwrap, states: Mutex::new(BTreeMap::new()), shutdown: shutdown_rx });

    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let (kwok_stop, kwok_stop_rx) = watch::channel(false);
    let kwok = tokio::spawn(kwok_task(ctx.clone(), kwok_stop_rx));
    // Tasks of manifests that went away; they stop their process and end by themselves.
    let mut retired: Vec<JoinHandle<()>> = Vec::new();
    let mut tasks: BTreeMap<String, (watch::Sender<Desired>, JoinHandle<()>)> = BTreeMap::new();
    let mut cache = ParseCache::new();
    let mut last_written = String::new();
    let mut api_server = ApiServerEpoch::default();

    loop {
        let mut desired = scan(&ctx.paths, &mut cache);
        api_server.restart_clients_on_change(&mut desired);
        let gone: Vec<String> = tasks.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
        for key in gone {
            if let Some((tx, handle)) = tasks.remove(&key) {
                let _ = tx.send(Desired::Removed);
                retired.push(handle);
            }
        }
        for (key, want) in desired {
            match tasks.get(&key) {
                Some((tx, _)) => {
                    tx.send_if_modified(|cur| {
                        if *cur == want {
                            false
                        } else {
                            *cur = want.clone();
                            true
                        }
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(want);
                    let handle = tokio::spawn(component_task(ctx.clone(), key.clone(), rx));
                    tasks.insert(key, (tx, handle));
                }
            }
        }
        write_status(&ctx, &mut last_written);

        if owner.is_some_and(|p| !procs::alive(p)) {
            tracing::info!("the owner process exited; stopping the cluster");
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => break,
        }
    }

    tracing::info!("stopping every component");
    let _ = kwok_stop.send(true);
    let mut phases: [Phase; 3] = [vec![(None, kwok)], Vec::new(), Vec::new()];
    for (_, (tx, handle)) in std::mem::take(&mut tasks) {
        let phase = tx.borrow().stop_phase() as usize;
        phases[phase].push((Some(tx), handle));
    }
    for phase in phases {
        let mut handles = Vec::new();
        let mut senders = Vec::new();
        for (tx, handle) in phase {
            if let Some(tx) = tx {
                let _ = tx.send(Desired::Stop);
                senders.push(tx);
            }
            handles.push(handle);
        }
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(STOP_GRACE + Duration::from_secs(5), all).await.is_err() {
            tracing::warn!("some components did not stop in time");
        }
        write_status(&ctx, &mut last_written);
    }
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(5), futures::future::join_all(retired)).await;
    write_status(&ctx, &mut last_written);
    if procs::read_pid_file(&ctx.paths.supervisor_pid()) == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(ctx.paths.supervisor_pid());
    }
    tracing::info!("local supervisor stopped");
    Ok(())
}

/// Restarts kube-controller-manager and kube-scheduler whenever kube-apiserver is restarted.
///
/// A kubelet would not. But here the API server is back within seconds, so those two keep
/// running instead of losing their leases and restarting, and their informers, which failed
/// while it was away, back off further with every restart (up to half a minute): controllers
/// then take that long to see a new namespace. Started afresh, they list at once.
#[derive(Default)]
struct ApiServerEpoch {
    hash: Option<String>,
    epoch: u64,
}

impl ApiServerEpoch {
    fn restart_clients_on_change(&mut self, desired: &mut BTreeMap<String, Desired>) {
        let current = desired.values().find_map(|d| match d {
            Desired::Run { plan, hash } if plan.pod.starts_with("kube-apiserver") => Some(hash.clone()),
            _ => None,
        });
        if current.is_some() && current != self.hash {
            if self.hash.is_some() {
                self.epoch += 1;
            }
            self.hash = current;
        }
        for want in desired.values_mut() {
            if let Desired::Run { plan, hash } = want
                && (plan.pod.starts_with("kube-controller-manager") || plan.pod.starts_with("kube-scheduler"))
            {
                hash.push_str(&format!("+api{}", self.epoch));
            }
        }
    }
}

/// Reads the manifests folder. Like the kubelet's file source it skips dot-files and folders,
/// and a pod name already claimed by an earlier file (in name order) is not run twice.
fn scan(paths: &ClusterPaths, cache: &mut ParseCache) -> BTreeMap<String, Desired> {
    let dir = paths.manifests_dir();
    let node_root = paths.node_root(CONTROL_PLANE);
    let mut files: Vec<(String, Vec<u8>, bool)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().is_file() {
                continue;
            }
            let young = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < SETTLE);
            if let Ok(bytes) = std::fs::read(e.path()) {
                files.push((name, bytes, young));
            }
        }
    }
    files.sort();
    cache.retain(|k, _| files.iter().any(|(n, _, _)| n == k));
    let mut out = BTreeMap::new();
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for (file, bytes, young) in files {
        let hash = sha256_hex(&bytes);
        let fresh = cache.get(&file).is_none_or(|(h, _)| *h != hash);
        if fresh && young {
            // Editors that truncate and rewrite in place can be caught mid-write: act on a
            // change once the file has settled, keeping the previous version until then.
            if !cache.contains_key(&file) {
                continue;
            }
        } else if fresh {
            let stem = file.split('.').next().unwrap_or(&file).to_string();
            let node_path = format!("/etc/kubernetes/manifests/{file}");
            let parsed = String::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|text| pod::parse(&text))
                .and_then(|p| pod::plan(&p, &node_root))
                .map_err(|e| (stem, format!("invalid static pod manifest {node_path}: {e}")));
            cache.insert(file.clone(), (hash.clone(), parsed));
        }
        let (hash, parsed) = &cache[&file];
        let hash = hash.clone();
        let want = match parsed {
            Ok(plan) => match claimed.get(&plan.pod) {
                Some(first) => Desired::Invalid {
                    name: plan.pod.clone(),
                    error: format!("pod {:?} is already defined by {first}; this file is ignored", plan.pod),
                    hash,
                },
                None => {
                    claimed.insert(plan.pod.clone(), file.clone());
                    Desired::Run { plan: plan.clone(), hash }
                }
            },
            Err((name, error)) => Desired::Invalid { name: name.clone(), error: error.clone(), hash },
        };
        out.insert(file, want);
    }
    out
}

fn write_status(ctx: &Ctx, last: &mut String) {
    let components = ctx.states.lock().expect("states lock").clone();
    let status = SupervisorStatus { supervisor_pid: std::process::id(), updated_at: None, components };
    let Ok(body) = serde_json::to_string_pretty(&status) else { return };
    if body == *last {
        return;
    }
    let stamped = SupervisorStatus { updated_at: Some(Utc::now()), ..status };
    let Ok(text) = serde_json::to_string_pretty(&stamped) else { return };
    let path = ctx.paths.status();
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)).is_ok() {
        *last = body;
    }
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_secs(1))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        d
    }
}

/// Why a wait ended.
enum Woke {
    Timeout,
    Changed,
    Shutdown,
}

/// Sleeps `d` (forever when `None`) unless the manifest changes or the supervisor stops.
async fn wait(ctx: &Ctx, rx: &mut watch::Receiver<Desired>, d: Option<Duration>) -> Woke {
    let mut shutdown = ctx.shutdown.clone();
    if *shutdown.borrow() {
        return Woke::Shutdown;
    }
    let sleep = async {
        match d {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = sleep => Woke::Timeout,
        r = rx.changed() => if r.is_ok() { Woke::Changed } else { Woke::Shutdown },
        _ = shutdown.changed() => Woke::Shutdown,
    }
}

async fn component_task(ctx: Arc<Ctx>, key: String, mut rx: watch::Receiver<Desired>) {
    let mut backoff = Backoff::new();
    let mut starts: u32 = 0;
    loop {
        if *ctx.shutdown.borrow() {
            return;
        }
        let desired = rx.borrow_and_update().clone();
        let (plan, hash) = match desired {
            Desired::Stop => {
                ctx.set(&key, |s| {
                    s.running = false;
                    s.pid = None;
                    s.detail = Some("stopped".into());
                });
                return;
            }
            Desired::Removed => {
                ctx.states.lock().expect("states lock").remove(&key);
                return;
            }
            Desired::Invalid { name, error, hash } => {
                tracing::warn!(manifest = %key, "{error}");
                ctx.set(&key, |s| {
                    *s = ComponentState {
                        name,
                        manifest: Some(key.clone()),
                        manifest_sha256: Some(hash),
                        detail: Some(error),
                        restarts: s.restarts,
                        ..Default::default()
                    }
                });
                match wait(&ctx, &mut rx, None).await {
                    Woke::Shutdown => return,
                    _ => continue,
                }
            }
            Desired::Run { plan, hash } => (plan, hash),
        };

        let log = log_file(&ctx.paths, &plan, starts);
        let started = start_container(&ctx, &key, &plan, &log);
        let mut child = match started {
            Ok(child) => child,
            Err(reason) => {
                tracing::warn!(pod = %plan.pod, "cannot start: {reason}");
                ctx.set(&key, |s| {
                    *s = ComponentState {
                        name: plan.pod.clone(),
                        manifest: Some(key.clone()),
                        manifest_sha256: Some(hash.clone()),
                        detail: Some(reason),
                        restarts: starts,
                        log: Some(log.clone()),
                        ..Default::default()
                    }
                });
                match wait(&ctx, &mut rx, Some(backoff.next())).await {
                    Woke::Shutdown => return,
                    Woke::Changed => backoff = Backoff::new(),
                    Woke::Timeout => {}
                }
                continue;
            }
        };
        let started_at = Utc::now();
        let since = tokio::time::Instant::now();
        tracing::info!(pod = %plan.pod, pid = child.id(), "started");
        ctx.set(&key, |s| {
            *s = ComponentState {
                name: plan.pod.clone(),
                manifest: Some(key.clone()),
                manifest_sha256: Some(hash.clone()),
                running: true,
                pid: child.id(),
                started_at: Some(started_at),
                restarts: starts,
                detail: None,
                log: Some(log.clone()),
            }
        });
        starts += 1;

        let mut shutdown = ctx.shutdown.clone();
        tokio::select! {
            status = child.wait() => {
                let _ = std::fs::remove_file(ctx.pid_file(&key));
                let how = match status {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                let tail = tail_lines(&log, DETAIL_LINES);
                tracing::warn!(pod = %plan.pod, "{how}");
                if since.elapsed() >= HEALTHY_RUN {
                    backoff = Backoff::new();
                }
                let delay = backoff.next();
                ctx.set(&key, |s| {
                    s.running = false;
                    s.pid = None;
                    s.detail = Some(format!(
                        "{} {how}; restarting in {}s (back-off). Last log lines:\n{tail}",
                        plan.pod,
                        delay.as_secs()
                    ));
                });
                match wait(&ctx, &mut rx, Some(delay)).await {
                    Woke::Shutdown => return,
                    Woke::Changed => backoff = Backoff::new(),
                    Woke::Timeout => {}
                }
            }
            r = rx.changed() => {
                if r.is_ok() && !matches!(*rx.borrow(), Desired::Stop) {
                    tracing::info!(pod = %plan.pod, "manifest changed; restarting");
                }
                stop_child(&ctx, &key, &mut child, &plan.pod).await;
                ctx.set(&key, |s| { s.running = false; s.pid = None; });
                backoff = Backoff::new();
                if r.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => {
                stop_child(&ctx, &key, &mut child, &plan.pod).await;
                ctx.set(&key, |s| { s.running = false; s.pid = None; s.detail = Some("stopped".into()); });
                return;
            }
        }
    }
}

async fn stop_child(ctx: &Ctx, key: &str, child: &mut Child, pod: &str) {
    let grace = if pod == "kube-apiserver" { APISERVER_STOP_GRACE } else { STOP_GRACE };
    if let Some(pid) = child.id() {
        procs::stop_group(pid as i32, grace).await;
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_file(ctx.pid_file(key));
}

/// `<n>.log` for the `n`th start, keeping the previous one (like the kubelet) and a stable
/// symlink under var/log/containers.
fn log_file(paths: &ClusterPaths, plan: &Plan, starts: u32) -> PathBuf {
    let dir = paths.pod_log_dir(&plan.pod, &plan.container);
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n: Option<u32> =
                e.file_name().to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok());
            // A fresh supervisor starts counting at 0: drop logs of an earlier run.
            if n.is_some_and(|n| starts == 0 || n + 1 < starts) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let file = dir.join(format!("{starts}.log"));
    let containers = paths.node_root(CONTROL_PLANE).join("var/log/containers");
    if std::fs::create_dir_all(&containers).is_ok() {
        let link = containers.join(format!("{}-{CONTROL_PLANE}_kube-system_{}.log", plan.pod, plan.container));
        let target = Path::new("/var/log/pods")
            .join(format!("kube-system_{}-{CONTROL_PLANE}", plan.pod))
            .join(&plan.container)
            .join(format!("{starts}.log"));
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(target, &link);
    }
    file
}

/// The newest `<n>.log` in a container's log folder.
pub fn current_log(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n: u32 = e.file_name().to_str()?.strip_suffix(".log")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

pub fn tail_lines(path: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else { return String::new() };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn start_container(ctx: &Ctx, key: &str, plan: &Plan, log: &Path) -> Result<Child, String> {
    let binds = pod::prepare(plan)?;
    let out = std::fs::File::create(log).map_err(|e| format!("log file {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let args = bwrap::container_args(&ctx.bin_dir, CONTROL_PLANE, &binds, &plan.env, &plan.argv);
    let mut cmd = Command::new(&ctx.bwrap);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("cannot run bwrap: {e}"))?;
    if let Some(pid) = child.id() {
        let _ = std::fs::write(ctx.pid_file(key), format!("{pid}\n"));
    }
    Ok(child)
}

/// kwok is not a static pod: it stands in for the nodes' kubelets, so it runs beside the
/// sandboxes, with the super-admin kubeconfig (RBAC changes in a scenario must not break it).
async fn kwok_task(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    const KEY: &str = "kwok";
    let mut backoff = Backoff::new();
    let mut restarts = 0;
    let log = ctx.paths.logs_dir().join("kwok.log");
    let kubeconfig = ctx.paths.cp_file("/etc/kubernetes/super-admin.conf");
    let home = ctx.paths.kwok_home();
    let _ = std::fs::create_dir_all(&home);
    loop {
        if *stop.borrow() {
            return;
        }
        let spawned = std::fs::File::create(&log).and_then(|out| {
            let err = out.try_clone()?;
            let mut cmd = Command::new(ctx.bin_dir.join("kwok"));
            // Die with the supervisor even when it is SIGKILLed (the sandboxes get the same
            // from bwrap's --die-with-parent).
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)
                });
            }
            cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
                .args([
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    "--node-ip=127.0.0.1",
                    "--cidr=10.244.0.1/24",
                ])
                // kwok reads ~/.kwok/kwok.yaml by default: keep a learner's own kwok config out.
                .env("HOME", &home)
                .current_dir(&home)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
        });
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                ctx.set(KEY, |s| {
                    *s = ComponentState {
                        name: KEY.into(),
                        detail: Some(format!("cannot run kwok: {e}")),
                        ..Default::default()
                    }
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next()) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Some(pid) = child.id() {
            let _ = std::fs::write(ctx.pid_file(KEY), format!("{pid}\n"));
        }
        let since = tokio::time::Instant::now();
        ctx.set(KEY, |s| {
            *s = ComponentState {
                name: KEY.into(),
                running: true,
                pid: child.id(),
                started_at: Some(Utc::now()),
                restarts,
                log: Some(log.clone()),
                ..Default::default()
            }
        });
        tokio::select! {
            status = child.wait() => {
                let _ = std::fs::remove_file(ctx.pid_file(KEY));
                restarts += 1;
                if since.elapsed() >= HEALTHY_RUN {
                    backoff = Backoff::new();
                }
                let delay = backoff.next();
                let how = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let tail = tail_lines(&log, DETAIL_LINES);
                ctx.set(KEY, |s| {
                    s.running = false;
                    s.pid = None;
                    s.detail = Some(format!("kwok {how}; restarting in {}s. Last log lines:\n{tail}", delay.as_secs()));
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
            }
            _ = stop.changed() => {
                stop_child(&ctx, KEY, &mut child, KEY).await;
                ctx.set(KEY, |s| { s.running = false; s.pid = None; s.detail = Some("stopped".into()); });
                return;
            }
        }
    }
}
