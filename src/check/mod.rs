//! Checks: each probe type is a small async function from a check to a [`Verdict`], reading
//! structured data through the backend. A probe never panics and never hangs: every failure to
//! observe is an `Error` verdict that says why.

pub mod access;
pub mod answer;
pub mod api;
mod audit;
mod cert;
pub mod digest;
pub mod dockerfile;
mod etcd;
pub mod fields;
pub mod firewall;
pub mod keys;
mod netpol;
mod node;
pub mod sbom;
pub mod settle;
pub mod sshd;
pub mod sudoers;
pub mod tls;

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::backend::Backend;
use crate::scenario::{CheckSpec, NodeRef, Probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not observe what it needs (API down, timeout, missing data).
    Error,
    /// The backend lacks a capability this check needs; it does not count.
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
            Outcome::Skip => "skip",
        }
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub outcome: Outcome,
    pub observed: String,
    pub expected: String,
}

impl Finding {
    pub fn pass(observed: impl Into<String>, expected: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Pass, observed: observed.into(), expected: expected.into() }
    }
    pub fn fail(observed: impl Into<String>, expected: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Fail, observed: observed.into(), expected: expected.into() }
    }
    pub fn error(observed: impl Into<String>, expected: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Error, observed: observed.into(), expected: expected.into() }
    }
    pub fn passed_if(ok: bool, observed: impl Into<String>, expected: impl Into<String>) -> Self {
        if ok { Finding::pass(observed, expected) } else { Finding::fail(observed, expected) }
    }
}

/// A graded check: the finding plus the check's identity, weight and where to look.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub id: String,
    pub description: String,
    pub weight: u32,
    pub probe: &'static str,
    pub outcome: Outcome,
    pub observed: String,
    pub expected: String,
    /// Where to look (shown when the check did not pass).
    pub hint: Option<String>,
    pub millis: u64,
}

/// How long any single probe may take before it is an error.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs one check. One that does not pass retries only while the state it reads may still be
/// moving: within its `settle` window from the last change to that state (see [`settle`]), so
/// a wrong answer given a while ago fails at once.
pub async fn run(check: &CheckSpec, backend: &dyn Backend) -> Verdict {
    let started = Instant::now();
    let offered = backend.capabilities();
    let missing: Vec<&str> = check.requires.iter().filter(|c| !offered.contains(c)).map(|c| c.as_str()).collect();
    if !missing.is_empty() {
        let finding = Finding {
            outcome: Outcome::Skip,
            observed: format!("the {} backend lacks {}", backend.name(), missing.join(", ")),
            expected: "a backend that has it (kind)".into(),
        };
        return verdict(check, finding, started);
    }
    let settle = Duration::from_secs(check.settle.unwrap_or(0));
    // Fixed on the first miss: the window runs from the change seen then, never past `settle`.
    let mut deadline: Option<Instant> = None;
    let finding = loop {
        let finding = match tokio::time::timeout(PROBE_TIMEOUT, probe(&check.probe, backend)).await {
            Ok(finding) => finding,
            Err(_) => Finding::error(format!("no answer within {}s", PROBE_TIMEOUT.as_secs()), "the probe to finish"),
        };
        if finding.outcome == Outcome::Pass || settle.is_zero() {
            break finding;
        }
        let until = match deadline {
            Some(until) => until,
            None => {
                let last = match tokio::time::timeout(SETTLE_LOOKUP_TIMEOUT, settle::last_change(&check.probe, backend))
                    .await
                {
                    Ok(last) => last,
                    Err(_) => settle::LastChange::Unknown,
                };
                let window = settle::retry_window(last, SystemTime::now(), settle);
                tracing::debug!(check = %check.id, ?last, window_ms = window.as_millis() as u64, "not passing; settle window");
                *deadline.insert((Instant::now() + window).min(started + settle))
            }
        };
        if Instant::now() >= until {
            break finding;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    verdict(check, finding, started)
}

/// How long finding out when the state last changed may take; past it, the state counts as
/// unknown (so the check settles as it always did).
const SETTLE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

fn verdict(check: &CheckSpec, finding: Finding, started: Instant) -> Verdict {
    Verdict {
        id: check.id.clone(),
        description: check.description.clone(),
        weight: check.weight,
        probe: check.probe.type_name(),
        outcome: finding.outcome,
        observed: finding.observed,
        expected: finding.expected,
        hint: check.hint.clone(),
        millis: started.elapsed().as_millis() as u64,
    }
}

fn probe<'a>(probe: &'a Probe, backend: &'a dyn Backend) -> futures::future::BoxFuture<'a, Finding> {
    Box::pin(probe_inner(probe, backend))
}

async fn probe_inner(spec: &Probe, backend: &dyn Backend) -> Finding {
    match spec {
        Probe::AnyOf(alternatives) => {
            let mut seen = Vec::new();
            for alternative in alternatives {
                let finding = probe(alternative, backend).await;
                if finding.outcome == Outcome::Pass {
                    return finding;
                }
                seen.push(finding);
            }
            let observed = seen.iter().map(|f| f.observed.as_str()).collect::<Vec<_>>().join("; and ");
            let expected = seen.iter().map(|f| f.expected.as_str()).collect::<Vec<_>>().join("; or ");
            let outcome = if seen.iter().any(|f| f.outcome == Outcome::Fail) { Outcome::Fail } else { Outcome::Error };
            Finding { outcome, observed, expected }
        }
        Probe::AllOf(parts) => {
            let mut observed = Vec::new();
            let mut expected = Vec::new();
            for part in parts {
                let finding = probe(part, backend).await;
                if finding.outcome != Outcome::Pass {
                    return finding;
                }
                observed.push(finding.observed);
                expected.push(finding.expected);
            }
            Finding::pass(observed.join("; "), expected.join("; and "))
        }
        Probe::Object(p) => api::object(p, backend).await,
        Probe::Objects(p) => api::objects(p, backend).await,
        Probe::CanI(p) => api::can_i(p, backend).await,
        Probe::EffectiveRules(p) => api::effective_rules(p, backend).await,
        Probe::Admission(p) => api::admission(p, backend).await,
        Probe::ComponentFlag(p) => node::component_flag(p, backend).await,
        Probe::KubeletConfig(p) => node::kubelet_config(p, backend).await,
        Probe::NodeFile(p) => node::node_file(p, backend).await,
        Probe::Command(p) => node::command(p, backend).await,
        Probe::NetworkAccess(p) => netpol::network_access(p, backend).await,
        Probe::EtcdValue(p) => etcd::etcd_value(p, backend).await,
        Probe::AuditLog(p) => audit::audit_log(p, backend).await,
        Probe::Certificate(p) => cert::certificate(p, backend).await,
        Probe::AnonymousRequest(p) => access::anonymous_request(p, backend).await,
        Probe::AnonymousGrants(p) => access::anonymous_grants(p, backend).await,
        Probe::NodeWrite(p) => access::node_write(p, backend).await,
        Probe::TlsHandshake(p) => tls::tls_handshake(p, backend).await,
        Probe::AnswerFile(p) => answer::answer_file(p, backend).await,
        Probe::Firewall(p) => firewall::firewall(p, backend).await,
        Probe::ServerVersion(p) => api::server_version(p, backend).await,
    }
}

/// The node names a node reference stands for on this backend.
pub fn resolve_nodes(node: &NodeRef, backend: &dyn Backend) -> Vec<String> {
    let control_plane = backend.control_plane();
    match node {
        NodeRef::ControlPlane => vec![control_plane],
        NodeRef::Worker => backend.nodes().into_iter().filter(|n| *n != control_plane).take(1).collect(),
        NodeRef::All => backend.nodes(),
    }
}

/// A client, or the error verdict that explains why there is none (API server down).
pub(crate) async fn client_or_finding(backend: &dyn Backend) -> Result<kube::Client, Finding> {
    backend.client().await.map_err(|e| Finding::error(format!("no API client: {e}"), "a reachable API server"))
}

/// Turns an API error into an error verdict that says what the API server answered, or that
/// it is down and why (its last log line), which is what a learner needs after a bad edit.
pub(crate) async fn api_error(err: kube::Error, backend: &dyn Backend, doing: &str) -> Finding {
    match err {
        kube::Error::Api(status) => Finding::error(
            format!("{doing}: the API server answered {} {}", status.code, status.message),
            "an answer from the API",
        ),
        other => {
            Finding::error(api_down_message(backend, &format!("{doing}: {other}")).await, "a reachable API server")
        }
    }
}

/// "API server is down: <last log line>" when the component is down, else the raw error.
pub(crate) async fn api_down_message(backend: &dyn Backend, raw: &str) -> String {
    match backend.component_logs("kube-apiserver", 3).await {
        Ok(logs) if !logs.trim().is_empty() => {
            let last = logs.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
            format!("API server is down or unreachable ({raw}); its last log line: {}", last.trim())
        }
        _ => raw.to_string(),
    }
}
