//! One error type for every handler: each variant knows its HTTP status, and the body is the
//! message as plain text (the page's script shows it as it is).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::history::HistoryError;
use crate::scenario::load::LoadError;
use crate::scenario::render::RenderError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found: {0}")]
    NotFound(String),
    /// Another cluster-changing operation runs; says which.
    #[error("busy: {0}")]
    Busy(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// The request is fine but the state does not allow it (exam over, scenario not runnable).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("template: {}", chain(.0))]
    Template(#[from] tera::Error),
}

/// tera nests the useful part of its errors in the source chain.
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(inner) = source {
        parts.push(inner.to_string());
        source = inner.source();
    }
    parts.join(": ")
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) | ApiError::Load(LoadError::Unknown { .. }) => StatusCode::NOT_FOUND,
            ApiError::Busy(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Load(_) | ApiError::Render(_) | ApiError::History(_) | ApiError::Template(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(%status, "{message}");
        } else {
            tracing::debug!(%status, "{message}");
        }
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
    }
}
