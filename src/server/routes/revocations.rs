//! `GET /v1/revocations`: the signed revocation list.

use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::time::SystemTime;

/// `GET /v1/revocations`: the signed revocation list, re-signed when half its freshness is
/// used, so a poller always holds a list with at least half its lifetime left.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "verification",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag held; `304` when it still matches (weak comparison)")),
    responses(
        (status = 200, description = "The signed revocation list, a compact JWS (`typ: revocations+jwt`)", body = String, content_type = "application/jwt"),
        (status = 304, description = "The held copy is current"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn revocations(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    match handle.serving().revocations(SystemTime::now()) {
        Ok(document) => document.respond(&headers),
        Err(e) => {
            tracing::error!(target: "keysmith::server::routes", error = %e, "cannot sign the revocation list");
            ApiError::internal().into_response()
        }
    }
}
