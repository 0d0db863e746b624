//! `GET /.well-known/oauth-authorization-server[/<issuer path>]`: RFC 8414 metadata.

use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::IssuerHandle;
use axum::extract::{Path, State};
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

/// `GET /.well-known/oauth-authorization-server/<issuer path>`: the metadata of an issuer URL
/// with a path (`https://h/t`), where RFC 8414 §3.1 clients fetch it (the well-known segment
/// goes between host and path); `404` for any other path.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server/{*issuer_path}",
    tag = "verification",
    params(
        ("issuer_path" = String, Path, description = "The configured issuer's path, without its terminating `/`"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag held; `304` when it still matches (weak comparison)"),
    ),
    responses(
        (status = 200, description = "Authorization server metadata (RFC 8414): `issuer` and `jwks_uri`", body = serde_json::Value),
        (status = 304, description = "The held copy is current"),
        (status = 404, description = "Not the configured issuer's path, or the issuer is not an http(s) URL", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn discovery_for_path(
    State(handle): State<IssuerHandle>,
    Path(issuer_path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let serving = handle.serving();
    let expected = serving.issuer.metadata_path();
    let asked = format!("{}/{issuer_path}", crate::issuer::discovery::METADATA_PATH);
    match &serving.discovery {
        Some(document) if expected.as_deref() == Some(asked.as_str()) => document.clone().respond(&headers),
        _ => ApiError::not_found().into_response(),
    }
}
