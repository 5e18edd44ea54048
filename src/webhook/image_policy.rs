//! The ImagePolicyWebhook backend: answers ImageReview requests; an image is allowed when it
//! starts with one of the allowed registry prefixes.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub const PATH: &str = "/image-policy";

#[derive(Debug, Deserialize)]
pub struct ImageReview {
    #[serde(default)]
    pub spec: ImageReviewSpec,
}

#[derive(Debug, Default, Deserialize)]
pub struct ImageReviewSpec {
    #[serde(default)]
    pub containers: Vec<ImageReviewContainer>,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Deserialize)]
pub struct ImageReviewContainer {
    #[serde(default)]
    pub image: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ImageReviewStatus {
    pub allowed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The decision for a review: every container image must come from an allowed prefix.
pub fn decide(review: &ImageReview, allowed_prefixes: &[String]) -> ImageReviewStatus {
    let forbidden: Vec<&str> = review
        .spec
        .containers
        .iter()
        .map(|c| c.image.as_str())
        .filter(|image| !allowed_prefixes.iter().any(|p| image.starts_with(p.as_str())))
        .collect();
    if forbidden.is_empty() {
        ImageReviewStatus { allowed: true, reason: String::new() }
    } else {
        ImageReviewStatus {
            allowed: false,
            reason: format!(
                "images not from a permitted registry ({}): {}",
                allowed_prefixes.join(", "),
                forbidden.join(", ")
            ),
        }
    }
}

async fn review(State(allowed): State<Arc<Vec<String>>>, Json(review): Json<ImageReview>) -> Json<serde_json::Value> {
    let status = decide(&review, &allowed);
    tracing::info!(namespace = %review.spec.namespace, allowed = status.allowed, "image review");
    Json(serde_json::json!({
        "apiVersion": "imagepolicy.k8s.io/v1alpha1",
        "kind": "ImageReview",
        "status": status,
    }))
}

pub fn router(allowed_prefixes: Vec<String>) -> Router {
    Router::new()
        .route(PATH, post(review))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(allowed_prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn review_of(images: &[&str]) -> ImageReview {
        ImageReview {
            spec: ImageReviewSpec {
                containers: images.iter().map(|i| ImageReviewContainer { image: i.to_string() }).collect(),
                namespace: "x".into(),
            },
        }
    }

    #[test]
    fn every_image_must_come_from_an_allowed_registry() {
        let allowed = vec!["registry.ckslab.local/".to_string()];
        assert!(decide(&review_of(&["registry.ckslab.local/app:1"]), &allowed).allowed);
        let denied = decide(&review_of(&["registry.ckslab.local/app:1", "docker.io/nginx"]), &allowed);
        assert!(!denied.allowed);
        assert!(denied.reason.contains("docker.io/nginx"));
    }

    #[tokio::test]
    async fn the_router_answers_image_reviews() {
        let body = r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[{"image":"nginx"}],"namespace":"a"}}"#;
        let request =
            http::Request::post(PATH).header("content-type", "application/json").body(Body::from(body)).unwrap();
        let response = router(vec!["registry.ckslab.local/".into()]).oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let json: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(json["kind"], "ImageReview");
        assert_eq!(json["status"]["allowed"], false);
    }
}
