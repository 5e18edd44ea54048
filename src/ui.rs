//! What the web UI and the classroom server share, so neither imports the other: templates and
//! static files compiled into the binary (no CDN, nothing fetched at run time), random tokens and
//! a constant-time comparison for secrets.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/templates/"]
struct Templates;

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct Static;

/// Every embedded template, autoescaped (they all end in `.html`).
pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    let mut sources = Vec::new();
    for name in Templates::iter() {
        if let Some(file) = Templates::get(&name) {
            let text = String::from_utf8(file.data.into_owned())
                .map_err(|_| anyhow::anyhow!("template {name} is not UTF-8"))?;
            sources.push((name.to_string(), text));
        }
    }
    tera.add_raw_templates(sources).map_err(|e| anyhow::anyhow!("loading the web templates: {e:?}"))?;
    Ok(tera)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /static/{*path}`, with an ETag so the browser revalidates cheaply.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, (StatusCode, String)> {
    static_file(&path, &headers).ok_or_else(|| (StatusCode::NOT_FOUND, format!("not found: /static/{path}")))
}

/// A static file with its ETag, or 304 when the client has it; None when there is no such file.
pub fn static_file(path: &str, headers: &HeaderMap) -> Option<Response> {
    let file = Static::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let cache = HeaderValue::from_static("no-cache");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Some(
            (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (header::CACHE_CONTROL, "no-cache".into())])
                .into_response(),
        );
    }
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path))), (header::CACHE_CONTROL, cache)],
        file.data.into_owned(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Some(response)
}

/// 32 random bytes, hex: a new token per process (or per classroom).
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares secrets without stopping at the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_new_and_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(new_token().len(), 64);
        assert_ne!(new_token(), new_token());
    }
}
