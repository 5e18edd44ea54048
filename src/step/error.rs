//! Why one step failed, typed, with the underlying error kept as the `source` so callers can
//! tell a refused request from a timeout from a command that exited non-zero, and a log shows
//! the whole chain. `StepError` (in mod.rs) wraps it with where it happened and what was applied
//! before it.

use crate::backend::BackendError;
use crate::scenario::render::RenderError;
use crate::staticpod::ManifestError;

#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A node tool (`install-tool`) ckslab does not know or that is not built yet.
    #[error(transparent)]
    NodeTool(#[from] crate::tools::NodeToolError),
    /// A request to the API server, and what it was for.
    #[error("{what}: {}", brief(source))]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("the manifest does not parse: {0}")]
    Yaml(#[source] serde_saphyr::Error),
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    StaticPod(#[from] ManifestError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Crypto {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    /// ckslab's own webhook backend (its certificates, its process).
    #[error("{what}: {source}")]
    Webhook {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A step's input that the step cannot act on (an unsupported key type, a document with no
    /// kind): the scenario's author has to change it.
    #[error("{0}")]
    Unsupported(String),
    #[error("{path} does not exist on {node}")]
    MissingNodeFile { node: String, path: String },
    #[error("exit code {code} on {node}: {stderr}")]
    CommandFailed { node: String, code: i32, stderr: String },
    #[error("kubectl exited {code}: {stderr}")]
    Kubectl { code: i32, stderr: String },
    /// `then` is empty, or a space and where to look.
    #[error("{what} within {secs}s{then}")]
    Timeout { what: String, secs: u64, then: String },
    #[error("{component} did not come back healthy after the edit; its last log lines:\n{logs}")]
    ComponentUnhealthy { component: String, logs: String },
    /// Pods that did not become ready, named with their phase (see `pods_not_ready`).
    #[error("{0}")]
    PodsNotReady(String),
}

impl StepFailure {
    /// `what` did not happen within `secs` seconds.
    pub fn timeout(what: impl Into<String>, secs: u64) -> Self {
        StepFailure::Timeout { what: what.into(), secs, then: String::new() }
    }

    /// The same, followed by where to look (`then` starts with its own separator).
    pub fn timeout_then(what: impl Into<String>, secs: u64, then: &str) -> Self {
        StepFailure::Timeout { what: what.into(), secs, then: then.into() }
    }
}

/// The API server's own words for a refused request; kube's Display adds the whole response.
fn brief(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Turns an error of a known kind into a `StepFailure` that says what was being done.
pub trait IntoFailure {
    fn doing(self, what: String) -> StepFailure;
}

impl IntoFailure for kube::Error {
    fn doing(self, what: String) -> StepFailure {
        StepFailure::Kube { what, source: self }
    }
}

impl IntoFailure for std::io::Error {
    fn doing(self, what: String) -> StepFailure {
        StepFailure::Io { what, source: self }
    }
}

impl IntoFailure for serde_json::Error {
    fn doing(self, what: String) -> StepFailure {
        StepFailure::Json { what, source: self }
    }
}

impl IntoFailure for rcgen::Error {
    fn doing(self, what: String) -> StepFailure {
        StepFailure::Crypto { what, source: self }
    }
}

impl IntoFailure for anyhow::Error {
    fn doing(self, what: String) -> StepFailure {
        StepFailure::Webhook { what, source: self.into() }
    }
}

/// `result.context("creating CSR x")?` in the step functions.
pub trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T, StepFailure>;
}

impl<T, E: IntoFailure> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, StepFailure> {
        self.map_err(|e| e.doing(what.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_refused_request_reads_as_the_api_servers_words_and_keeps_its_status() {
        let status = kube::core::Status::failure("namespaces \"payments\" not found", "NotFound").with_code(404);
        let failure: Result<(), _> = Err(kube::Error::Api(Box::new(status)));
        let failure = failure.context("get Namespace payments").unwrap_err();
        assert_eq!(failure.to_string(), "get Namespace payments: namespaces \"payments\" not found");
        let source = failure.source().expect("the kube error is the source");
        let kube = source.downcast_ref::<kube::Error>().expect("typed as kube::Error");
        assert!(matches!(kube, kube::Error::Api(s) if s.code == 404));
    }

    #[test]
    fn io_failures_keep_their_kind() {
        let failure: Result<(), _> = Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"));
        let failure = failure.context("writing the webhook's key").unwrap_err();
        assert_eq!(failure.to_string(), "writing the webhook's key: denied");
        let io = failure.source().and_then(|s| s.downcast_ref::<std::io::Error>()).unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
