//! The learner's side: `ckslab classroom join` saves where to report (after the instructor's
//! server accepted the token), and every grade afterwards sends a [`ProgressReport`] there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use super::ProgressReport;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("classroom address {0:?} must look like http://host:port")]
    BadUrl(String),
    #[error("cannot reach the classroom at {url}: {message} (is `ckslab classroom serve` running there?)")]
    Unreachable { url: String, message: String },
    #[error("the classroom at {url} answered {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}

/// What `join` saves in the learner's data dir.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub url: String,
    pub token: String,
    pub learner: String,
    /// The classroom's name, as its server gave it.
    pub classroom: String,
}

const FILE: &str = "classroom.json";
/// A classroom is on the local network; a grade should not wait long for it. The whole of each
/// call (connect, headers, body) must finish within this.
pub const DEADLINE: Duration = Duration::from_secs(5);

impl Membership {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// The saved membership, if this learner joined a classroom.
    pub fn load(data_dir: &Path) -> Result<Option<Membership>, ClientError> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| ClientError::Config {
                path,
                message: format!("{e} (`ckslab classroom leave` removes it)"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::Config { path, message: e.to_string() }),
        }
    }

    /// Saved readable by the learner only: it holds the join token.
    pub fn save(&self, data_dir: &Path) -> Result<PathBuf, ClientError> {
        let path = Self::path(data_dir);
        let text = serde_json::to_vec_pretty(self).expect("a membership serializes");
        crate::store::write_private(&path, &text)
            .map_err(|e| ClientError::Config { path: path.clone(), message: e.to_string() })?;
        Ok(path)
    }

    /// Removes the saved membership; true when there was one.
    pub fn remove(data_dir: &Path) -> Result<bool, ClientError> {
        let path = Self::path(data_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ClientError::Config { path, message: e.to_string() }),
        }
    }
}

fn base_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim_end_matches('/');
    let valid = trimmed.strip_prefix("http://").is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if valid { Ok(trimmed.to_string()) } else { Err(ClientError::BadUrl(url.to_string())) }
}

async fn call(method: &str, url: &str, token: &str, body: Option<Vec<u8>>) -> Result<Bytes, ClientError> {
    call_within(DEADLINE, method, url, token, body).await
}

/// One request with one deadline for all of it: connecting, the headers and the whole body. A
/// server that sends headers and then stalls is as unreachable as one that never answers.
async fn call_within(
    deadline: Duration,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> Result<Bytes, ClientError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| ClientError::BadUrl(url.to_string()))?;
    let unreachable = |message: String| ClientError::Unreachable { url: url.to_string(), message };
    let exchange = async {
        let response = client.request(request).await.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| unreachable(e.to_string()))?.to_bytes();
        Ok::<_, ClientError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(deadline, exchange).await.map_err(|_| {
        unreachable(format!("no complete answer within {:.1}s (connect, headers and body)", deadline.as_secs_f64()))
    })??;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&bytes).trim().to_string();
        return Err(ClientError::Refused { url: url.to_string(), status: status.as_u16(), body });
    }
    Ok(bytes)
}

/// Whether the classroom answers with this membership's token (for `classroom status`).
pub async fn check(membership: &Membership) -> Result<(), ClientError> {
    let base = base_url(&membership.url)?;
    call("GET", &format!("{base}/api/join"), &membership.token, None).await.map(|_| ())
}

/// Checks the address and token with the classroom's server; returns the membership to save.
pub async fn join(url: &str, token: &str, learner: &str) -> Result<Membership, ClientError> {
    super::validate_learner(learner)
        .map_err(|message| ClientError::Config { path: PathBuf::from("--name"), message })?;
    let base = base_url(url)?;
    let bytes = call("GET", &format!("{base}/api/join"), token, None).await?;
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let classroom = answer["classroom"].as_str().unwrap_or("classroom").to_string();
    Ok(Membership { url: base, token: token.to_string(), learner: learner.to_string(), classroom })
}

/// Sends one graded attempt.
pub async fn send(membership: &Membership, report: &ProgressReport) -> Result<(), ClientError> {
    let base = base_url(&membership.url)?;
    let body = serde_json::to_vec(report).expect("a report serializes");
    call("POST", &format!("{base}/api/reports"), &membership.token, Some(body)).await.map(|_| ())
}

/// After a grade: report it if this learner joined a classroom. Never fails the grade; says
/// what went wrong in the log, and returns it for a UI that wants to show it.
pub async fn report_if_joined(data_dir: &Path, report: &crate::grade::Report, hints_used: u32) -> Option<String> {
    let membership = match Membership::load(data_dir) {
        Ok(Some(m)) => m,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("{e}");
            return Some(e.to_string());
        }
    };
    let progress = ProgressReport::from_report(&membership.learner, report, hints_used);
    match send(&membership, &progress).await {
        Ok(()) => {
            tracing::info!(classroom = %membership.classroom, "reported {} to the classroom", report.scenario);
            None
        }
        Err(e) => {
            tracing::warn!("not reported to the classroom: {e}");
            Some(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_host_port_addresses_are_classroom_urls() {
        assert_eq!(base_url("http://10.0.0.5:7979/").unwrap(), "http://10.0.0.5:7979");
        assert!(base_url("https://x:1").is_err(), "the classroom server speaks plain HTTP");
        assert!(base_url("http://x:1/api").is_err());
        assert!(base_url("10.0.0.5:7979").is_err());
    }

    /// A server on 127.0.0.1 that sends headers promising a body, then stalls.
    async fn stalling_server() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{").await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_server_that_stalls_after_its_headers_fails_within_the_deadline() {
        let url = stalling_server().await;
        let started = std::time::Instant::now();
        let deadline = Duration::from_millis(300);
        let err = call_within(deadline, "GET", &format!("{url}/api/join"), "t", None).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(err.contains(&url) && err.contains("within 0.3s"), "{err}");
    }

    #[tokio::test]
    async fn join_and_reports_give_up_on_a_stalled_classroom() {
        let url = stalling_server().await;
        let started = std::time::Instant::now();
        let err = join(&url, "t", "Ana").await.unwrap_err().to_string();
        assert!(started.elapsed() < DEADLINE + Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(err.contains(&url) && err.contains("within 5.0s"), "{err}");
    }

    #[test]
    fn a_membership_is_saved_for_the_learner_only_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Membership::load(dir.path()).unwrap(), None);
        let m =
            Membership { url: "http://h:1".into(), token: "t".into(), learner: "ana".into(), classroom: "c".into() };
        let path = m.save(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Membership::load(dir.path()).unwrap(), Some(m));
        assert!(Membership::remove(dir.path()).unwrap());
        assert!(!Membership::remove(dir.path()).unwrap());
        std::fs::write(&path, "{").unwrap();
        assert!(Membership::load(dir.path()).unwrap_err().to_string().contains("classroom leave"));
    }
}
