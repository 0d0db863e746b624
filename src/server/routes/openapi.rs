//! `GET /openapi.json`: the OpenAPI 3.1 description of this API.

use crate::server::problem::{ApiError, ProblemDocument};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document", body = serde_json::Value, content_type = "application/json"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn openapi() -> Response {
    match crate::server::openapi::document() {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            response
        }
        Err(e) => {
            tracing::error!(target: "keysmith::server::routes", error = %e, "cannot serialise the OpenAPI document");
            ApiError::internal().into_response()
        }
    }
}
