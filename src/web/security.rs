//! Request guards: the Host header must name the address we listen on (no DNS rebinding), every
//! state-changing request carries the per-process CSRF token, and every answer gets headers that
//! keep other sites from framing or scripting the pages.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// The form field that carries the token when a plain HTML form posts.
pub const CSRF_FIELD: &str = "csrf_token";
/// The header that carries it for scripts.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Forms are small; anything larger is not ours.
const FORM_LIMIT: usize = 64 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages with a terminal pane: xterm.js writes its own `<style>` elements (cell sizes, the
/// colour theme), so those pages allow inline styles; scripts stay 'self' only.
pub const TERMINAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                                img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                                frame-ancestors 'none'; base-uri 'none'";

pub use crate::ui::{constant_time_eq, new_token};

impl AppState {
    /// `127.0.0.1:<port>` or `localhost:<port>`, or `<address>:<port>` when `serve --listen`
    /// named another address; nothing else.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port) {
            return true;
        }
        let listen = self.terminal_policy().listen;
        !listen.is_loopback()
            && !listen.is_unspecified()
            && host == std::net::SocketAddr::new(listen, self.port).to_string()
    }

    /// `http://<an allowed host>`: a page of this server.
    pub(crate) fn origin_allowed(&self, origin: &str) -> bool {
        origin.strip_prefix("http://").is_some_and(|host| self.host_allowed(host))
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token from a urlencoded form body (hex needs no decoding).
fn form_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == CSRF_FIELD).then(|| value.to_string())
    })
}

fn state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: Host check, then (for POST and friends) Origin and CSRF checks, then the
/// handler, then security headers and a Server-Timing header with the time spent.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let host = header_str(request.headers(), header::HOST).map(str::to_string);
    if !host.as_deref().is_some_and(|h| state.host_allowed(h)) {
        tracing::warn!(host = ?host, path = %request.uri().path(), "rejected: unexpected Host header");
        return secure(
            ApiError::Forbidden(format!(
                "the Host header {:?} is not this server (use http://127.0.0.1:{}/)",
                host.unwrap_or_default(),
                state.port
            ))
            .into_response(),
        );
    }
    let request = if state_changing(request.method()) {
        match check_csrf(&state, request).await {
            Ok(request) => request,
            Err(err) => {
                tracing::warn!("rejected: {err}");
                return secure(err.into_response());
            }
        }
    } else {
        request
    };
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    let micros = started.elapsed().as_micros();
    tracing::debug!(%path, status = %response.status(), micros, "served");
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={:.3}", micros as f64 / 1000.0)) {
        response.headers_mut().insert("server-timing", value);
    }
    secure(response)
}

async fn check_csrf(state: &AppState, request: Request) -> Result<Request, ApiError> {
    if let Some(origin) = header_str(request.headers(), header::ORIGIN)
        && !state.origin_allowed(origin)
    {
        return Err(ApiError::Forbidden(format!("cross-origin request from {origin}")));
    }
    let expected = state.csrf_token().as_bytes();
    if let Some(token) = header_str(request.headers(), CSRF_HEADER) {
        return if constant_time_eq(token.as_bytes(), expected) {
            Ok(request)
        } else {
            Err(ApiError::Forbidden("wrong CSRF token; reload the page".into()))
        };
    }
    let is_form = header_str(request.headers(), header::CONTENT_TYPE)
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ApiError::Forbidden("missing CSRF token; reload the page".into()));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the form: {e}")))?;
    match form_token(&bytes) {
        Some(token) if constant_time_eq(token.as_bytes(), expected) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        Some(_) => Err(ApiError::Forbidden("wrong CSRF token; reload the page".into())),
        None => Err(ApiError::Forbidden("missing CSRF token; reload the page".into())),
    }
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_token_is_found_among_fields() {
        assert_eq!(form_token(b"seed=3&csrf_token=abc&x=1").as_deref(), Some("abc"));
        assert_eq!(form_token(b"seed=3"), None);
    }
}
