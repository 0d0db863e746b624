//! `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata.

use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};

/// `GET /.well-known/oauth-authorization-server`: the metadata, or `404` when the configured
/// issuer is not a URL.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "verification",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag held; `304` when it still matches (weak comparison)")),
    responses(
        (status = 200, description = "Authorization server metadata (RFC 8414): `issuer` and `jwks_uri`", body = serde_json::Value),
        (status = 304, description = "The held copy is current"),
        (status = 404, description = "The configured issuer is not an http(s) URL", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn discovery(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    match &handle.serving().discovery {
        Some(document) => document.clone().respond(&headers),
        None => ApiError::not_found().into_response(),
    }
}
