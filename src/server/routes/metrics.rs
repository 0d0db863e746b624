//! `GET /metrics`: the Prometheus exposition.

use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `GET /metrics` on the main listener: `404` when `server.metrics_listen` moved it.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics (OpenMetrics text, which Prometheus scrapes); `404` here when `server.metrics_listen` serves them on another address", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn metrics(State(handle): State<IssuerHandle>) -> Response {
    if !handle.metrics_on_main() {
        return ApiError::not_found().into_response();
    }
    exposition(&handle)
}

/// `GET /metrics` on the separate `server.metrics_listen` listener.
pub(crate) async fn metrics_private(State(handle): State<IssuerHandle>) -> Response {
    exposition(&handle)
}

fn exposition(handle: &IssuerHandle) -> Response {
    match handle.render_metrics() {
        Ok(text) => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::server::metrics::CONTENT_TYPE));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(target: "keysmith::server::routes", error = %e, "cannot encode the metrics");
            ApiError::internal().into_response()
        }
    }
}
