//! When a check that did not pass is worth probing again.
//!
//! `settle: N` on a check means "this state takes up to N seconds to take effect" (the RBAC
//! authorizer's informer, an admission policy binding reaching the admission plugin, pods
//! rolling, a restarted API server). Retrying every failing check for N seconds made a learner
//! wait N seconds for every wrong answer, so a failing check only retries while the state it
//! reads may still be moving: something it depends on changed less than N seconds ago, or it
//! could not be observed at all. The signal is what Kubernetes and the node record about the
//! last change (objects' creation, deletion and managedFields times; the static-pod
//! manifests' mtimes plus the backend's restart window), and the last step ckslab itself ran
//! in this process (a deletion leaves no timestamp behind).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use kube::api::ListParams;
use serde_json::Value;

use super::api::dynamic_api;
use crate::backend::Backend;
use crate::scenario::{CertSource, Probe};
use crate::staticpod::manifest_path;

/// What is known about the last change to the state a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastChange {
    /// Nothing it reads has a recorded change (or there is nothing to read).
    Quiet,
    /// The newest change it could see.
    At(SystemTime),
    /// The state could not be read (API server down or restarting): it may be moving.
    Unknown,
}

impl LastChange {
    /// The more recent of two observations; not knowing wins over knowing.
    pub fn max(self, other: LastChange) -> LastChange {
        match (self, other) {
            (LastChange::Unknown, _) | (_, LastChange::Unknown) => LastChange::Unknown,
            (LastChange::Quiet, x) | (x, LastChange::Quiet) => x,
            (LastChange::At(a), LastChange::At(b)) => LastChange::At(a.max(b)),
        }
    }

    fn of(time: Option<SystemTime>) -> LastChange {
        time.map_or(LastChange::Quiet, LastChange::At)
    }
}

/// API timestamps have whole seconds: a change stamped T happened before T + 1 s.
pub const TIMESTAMP_GRANULARITY: Duration = Duration::from_secs(1);

/// How much longer a check that has not passed may keep retrying: the rest of the `settle`
/// window that began at the last change (zero: fail now). A change stamped in the future
/// (clock skew) or an unknown state gets the whole window.
pub fn retry_window(last: LastChange, now: SystemTime, settle: Duration) -> Duration {
    match last {
        LastChange::Quiet => Duration::ZERO,
        LastChange::Unknown => settle,
        LastChange::At(at) => match now.duration_since(at + TIMESTAMP_GRANULARITY) {
            Ok(since) => settle.saturating_sub(since),
            Err(_) => settle,
        },
    }
}

static LAST_STEP: Mutex<Option<SystemTime>> = Mutex::new(None);

/// Records that ckslab just changed the cluster (a step ran): checks graded by this process
/// soon after settle as after any other change, deletions included.
pub fn note_step() {
    *LAST_STEP.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
}

fn last_step() -> LastChange {
    LastChange::of(*LAST_STEP.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The newest change an object's metadata records: created, deleted (graceful deletion in
/// progress) or written by any field manager (spec, status, labels).
pub fn object_changed(metadata: &Value) -> Option<SystemTime> {
    let stamp = |v: &Value| v.as_str().and_then(parse_time);
    let managed = metadata.get("managedFields").and_then(Value::as_array).into_iter().flatten();
    [metadata.get("creationTimestamp"), metadata.get("deletionTimestamp")]
        .into_iter()
        .flatten()
        .chain(managed.filter_map(|m| m.get("time")))
        .filter_map(stamp)
        .max()
}

fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(SystemTime::from)
}

/// The last change to the state `probe` reads, plus the last step this process ran.
pub async fn last_change(probe: &Probe, backend: &dyn Backend) -> LastChange {
    probe_change(probe, backend).await.max(last_step())
}

/// Kinds whose objects decide a probe's answer: (api version, kind, namespace or all).
type Kinds<'a> = Vec<(&'a str, &'a str, Option<&'a str>)>;

const WORKLOADS: [(&str, &str); 5] = [
    ("v1", "Pod"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
];

const RBAC: [(&str, &str); 4] = [
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
];

const ADMISSION: [(&str, &str); 5] = [
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    // Namespace labels decide namespaceSelector and Pod Security admission.
    ("v1", "Namespace"),
];

fn workloads(namespace: Option<&str>) -> Kinds<'_> {
    WORKLOADS.iter().map(|(v, k)| (*v, *k, namespace)).collect()
}

fn probe_change<'a>(probe: &'a Probe, backend: &'a dyn Backend) -> BoxFuture<'a, LastChange> {
    Box::pin(async move {
        match probe {
            Probe::AnyOf(parts) | Probe::AllOf(parts) => {
                let mut last = LastChange::Quiet;
                for part in parts {
                    last = last.max(probe_change(part, backend).await);
                }
                last
            }
            Probe::Object(p) => {
                let t = &p.target;
                objects_change(backend, vec![(t.api_version.as_str(), t.kind.as_str(), t.namespace.as_deref())]).await
            }
            Probe::Objects(p) => {
                let mut kinds = vec![(p.api_version.as_str(), p.kind.as_str(), p.namespace.as_deref())];
                if p.kind == "Pod" {
                    // Pods follow their controllers: a template edited a moment ago has no new pod yet.
                    kinds = workloads(p.namespace.as_deref());
                }
                objects_change(backend, kinds).await
            }
            Probe::Command(p) => {
                let namespace = p
                    .pods
                    .as_ref()
                    .map(|s| s.namespace.as_str())
                    .or_else(|| p.pod.as_deref().and_then(|x| x.split('/').next()));
                match namespace {
                    Some(ns) => objects_change(backend, workloads(Some(ns))).await,
                    None => manifests_change(backend, &[]).await,
                }
            }
            Probe::CanI(_) | Probe::EffectiveRules(_) => {
                objects_change(backend, RBAC.iter().map(|(v, k)| (*v, *k, None)).collect()).await
            }
            Probe::Admission(_) => {
                let objects = objects_change(backend, ADMISSION.iter().map(|(v, k)| (*v, *k, None)).collect()).await;
                // Admission plugins and their config files come with kube-apiserver's flags.
                objects.max(manifests_change(backend, &[]).await)
            }
            Probe::NetworkAccess(_) => {
                let mut kinds = workloads(None);
                kinds.push(("networking.k8s.io/v1", "NetworkPolicy", None));
                kinds.push(("v1", "Namespace", None));
                objects_change(backend, kinds).await
            }
            Probe::NodeFile(p) => manifests_change(backend, &[p.path.as_str()]).await,
            Probe::KubeletConfig(p) => manifests_change(backend, &[p.path.as_str()]).await,
            Probe::AnswerFile(p) => manifests_change(backend, &[p.path.as_str()]).await,
            Probe::Certificate(p) => match &p.source {
                CertSource::NodeFile(path) => manifests_change(backend, &[path.as_str()]).await,
                CertSource::Secret(s) => {
                    objects_change(backend, vec![("v1", "Secret", Some(s.namespace.as_str()))]).await
                }
                CertSource::Csr(_) => {
                    objects_change(backend, vec![("certificates.k8s.io/v1", "CertificateSigningRequest", None)]).await
                }
            },
            Probe::ComponentFlag(_)
            | Probe::AuditLog(_)
            | Probe::EtcdValue(_)
            | Probe::AnonymousRequest(_)
            | Probe::TlsHandshake(_)
            | Probe::Firewall(_)
            | Probe::ServerVersion(_) => manifests_change(backend, &[]).await,
            // Bindings and the roles they name; for node-write also the API server's plugins.
            Probe::AnonymousGrants(_) => {
                objects_change(backend, RBAC.iter().map(|(v, k)| (*v, *k, None)).collect()).await
            }
            Probe::NodeWrite(_) => {
                let rbac = objects_change(backend, RBAC.iter().map(|(v, k)| (*v, *k, None)).collect()).await;
                rbac.max(manifests_change(backend, &[]).await)
            }
        }
    })
}

/// The newest change among all objects of these kinds (not only the ones the probe names:
/// an object the learner has just created under another name counts too).
async fn objects_change(backend: &dyn Backend, kinds: Kinds<'_>) -> LastChange {
    let Ok(client) = backend.client().await else {
        return LastChange::Unknown;
    };
    let mut last = LastChange::Quiet;
    for (api_version, kind, namespace) in kinds {
        let list = match dynamic_api(&client, api_version, kind, namespace).await {
            Ok((api, _)) => api.list(&ListParams::default()).await,
            // A kind this cluster does not serve has no objects that could be moving.
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => Err(e),
        };
        let Ok(list) = list else {
            return LastChange::Unknown;
        };
        for object in list.items {
            let metadata = serde_json::to_value(&object.metadata).unwrap_or_default();
            last = last.max(LastChange::of(object_changed(&metadata)));
        }
    }
    last
}

/// The newest mtime among the control-plane manifests (moved forward by the backend's restart
/// window: the component takes that long to come back with the edit) and these node files.
async fn manifests_change(backend: &dyn Backend, files: &[&str]) -> LastChange {
    let node = backend.control_plane();
    let mut last = LastChange::Quiet;
    for component in crate::backend::CONTROL_PLANE_COMPONENTS {
        match backend.modified(&node, &manifest_path(component)).await {
            Ok(t) => last = last.max(LastChange::of(t.map(|t| t + backend.manifest_restart_window()))),
            Err(_) => return LastChange::Unknown,
        }
    }
    for file in files {
        match backend.modified(&node, std::path::Path::new(file)).await {
            Ok(t) => last = last.max(LastChange::of(t)),
            Err(_) => return LastChange::Unknown,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_secs(10);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_settled_state_fails_at_once() {
        assert_eq!(retry_window(LastChange::Quiet, at(1000), SETTLE), Duration::ZERO);
        // Changed 60 s ago: long settled.
        assert_eq!(retry_window(LastChange::At(at(940)), at(1000), SETTLE), Duration::ZERO);
        // Exactly at the end of the window (stamp + granularity + settle).
        assert_eq!(retry_window(LastChange::At(at(989)), at(1000), SETTLE), Duration::ZERO);
    }

    #[test]
    fn a_recent_change_retries_for_the_rest_of_the_window() {
        // Stamped 2 s ago: the change happened between 2 and 1 s ago; 9 s of the window remain.
        assert_eq!(retry_window(LastChange::At(at(998)), at(1000), SETTLE), Duration::from_secs(9));
        assert_eq!(retry_window(LastChange::At(at(999)), at(1000), SETTLE), SETTLE);
    }

    #[test]
    fn a_future_stamp_or_an_unreadable_state_gets_the_whole_window_and_no_more() {
        assert_eq!(retry_window(LastChange::At(at(1030)), at(1000), SETTLE), SETTLE);
        assert_eq!(retry_window(LastChange::Unknown, at(1000), SETTLE), SETTLE);
        assert_eq!(retry_window(LastChange::Unknown, at(1000), Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_newest_observation_wins_and_unknown_wins_over_all() {
        let (old, new) = (LastChange::At(at(5)), LastChange::At(at(9)));
        assert_eq!(old.max(new), new);
        assert_eq!(new.max(old), new);
        assert_eq!(LastChange::Quiet.max(old), old);
        assert_eq!(old.max(LastChange::Quiet), old);
        assert_eq!(old.max(LastChange::Unknown), LastChange::Unknown);
        assert_eq!(LastChange::Quiet.max(LastChange::Quiet), LastChange::Quiet);
    }

    #[test]
    fn an_object_changed_when_it_was_created_deleted_or_last_written() {
        let metadata = serde_json::json!({
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "managedFields": [
                {"manager": "kubectl", "time": "2026-12-01T10:05:00Z"},
                {"manager": "kubelet", "subresource": "status", "time": "2026-12-01T10:06:30Z"},
                {"manager": "no-time"}
            ]
        });
        assert_eq!(object_changed(&metadata), parse_time("2026-12-01T10:06:30Z"));
        let deleting = serde_json::json!({
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "deletionTimestamp": "2026-12-01T11:00:00+00:00"
        });
        assert_eq!(object_changed(&deleting), parse_time("2026-12-01T11:00:00Z"));
        assert_eq!(object_changed(&serde_json::json!({"name": "x"})), None);
        assert_eq!(object_changed(&serde_json::json!({"creationTimestamp": "yesterday"})), None);
    }
}
