//! The web UI's static files: the shared ones ([`crate::ui`]), with the web UI's error page.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;

use super::error::ApiError;

pub use crate::ui::templates;

pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    crate::ui::static_file(&path, &headers).ok_or_else(|| ApiError::NotFound(format!("/static/{path}")))
}
