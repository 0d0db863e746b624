//! `GET /.well-known/jwks.json`: the published keys.

use crate::server::problem::ProblemDocument;
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// `GET /.well-known/jwks.json`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "verification",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag held; `304` when it still matches (weak comparison)")),
    responses(
        (status = 200, description = "The published Ed25519 keys (RFC 7517, RFC 8037)", body = serde_json::Value, content_type = "application/jwk-set+json"),
        (status = 304, description = "The held copy is current"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn jwks(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    handle.serving().jwks.clone().respond(&headers)
}
