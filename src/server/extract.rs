//! What handlers extract from a request, each refusal a problem document: the caller's
//! address, its permanent key, and the body (one size limit, one media-type rule).

use crate::issuer::{Issuer, MintRequest};
use crate::policy::ip::client_ip;
use crate::server::problem::ApiError;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use headers::authorization::Bearer;
use headers::{Authorization, HeaderMapExt as _};
use std::net::SocketAddr;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `400 invalid_path`: a project or template segment outside the id grammar of the config.
pub(crate) fn invalid_path() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_path",
        "project and template must be ids: 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit",
    )
}

/// The caller's permanent key: `X-Api-Key`, else `Authorization: Bearer`.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = headers.get("x-api-key") {
        return Some(key.to_str().unwrap_or_default().trim().to_owned());
    }
    let Authorization(bearer) = headers.typed_get::<Authorization<Bearer>>()?;
    Some(bearer.token().trim().to_owned())
}

/// The caller's address: the peer, or what the configured forwarding header of a trusted proxy
/// says.
pub(crate) fn caller_ip(issuer: &Issuer, peer: SocketAddr, headers: &HeaderMap) -> Result<std::net::IpAddr, ApiError> {
    let server = &issuer.config().server;
    let bad = |detail: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_forwarded_for", detail);
    let values = headers.get_all(server.forwarded_header.name());
    client_ip(peer.ip(), server.forwarded_header, values, &server.trusted_proxies).map_err(|e| bad(e.to_string()))
}

/// Reads the optional mint request. An empty body means "everything the template allows".
pub(crate) fn mint_request(headers: &HeaderMap, body: Bytes) -> Result<MintRequest, ApiError> {
    let body = check_body(headers, body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(MintRequest::default());
    }
    Ok(MintRequest::from_json(&body)?)
}

/// The request body, read after the caller was admitted: the one size limit
/// ([`MAX_BODY_BYTES`]) for every route, and, when not empty, declared as JSON.
pub(crate) async fn read_body(headers: &HeaderMap, body: axum::body::Body) -> Result<Bytes, ApiError> {
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {MAX_BODY_BYTES} bytes, or could not be read"),
        )
    })?;
    check_body(headers, body)
}

/// A body that is not empty must be declared as JSON: an undeclared body is refused like any
/// other type (a browser sends a cross-origin "simple" request with `text/plain` or none).
fn check_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(body);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|ct| ct.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a request body must be declared as Content-Type: application/json",
        ));
    }
    Ok(body)
}
