//! Route handlers.

use super::{ApiError, IssuerHandle};
use crate::ip::client_ip;
use crate::issue::{Issuer, MintRequest};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;
use std::time::SystemTime;

/// How long verifiers and CDNs may cache the JWKS.
const JWKS_MAX_AGE: &str = "public, max-age=300";

#[derive(Serialize)]
struct MintResponse<'a> {
    status: &'static str,
    key: &'a str,
    token_type: &'static str,
    expires_in: u32,
    expires_at: String,
    permissions: &'a [String],
}

/// `GET|POST /{project}/v1/key/{template}`: mint a key for the caller.
pub(super) async fn mint(
    State(handle): State<IssuerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path((project, template)) = path.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "project and template must be UTF-8 path segments")
    })?;
    let live = handle.live();
    let issuer = &live.issuer;
    let request = mint_request(&headers, body)?;
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad_forwarded())?;
    let caller = client_ip(peer.ip(), forwarded, &issuer.config().server.trusted_proxies)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_forwarded_for", e.to_string()))?;

    let minted = match issuer.mint(&project, &template, &request, Some(caller), SystemTime::now()) {
        Ok(minted) => minted,
        Err(e) => {
            tracing::info!(%project, %template, %caller, code = e.code(), error = %e, "mint refused");
            if let Some(source) = std::error::Error::source(&e) {
                tracing::error!(error = %source, "mint failed on a dependency");
            }
            return Err(e.into());
        }
    };
    tracing::info!(%project, %template, %caller, jti = %minted.jti, kid = %minted.kid, expires_in = minted.expires_in, "minted");
    let body = MintResponse {
        status: "success",
        key: &minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        expires_at: minted.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        permissions: &minted.permissions,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn bad_forwarded() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_forwarded_for", "X-Forwarded-For is not valid text")
}

/// Reads the optional JSON body. An empty body means "everything the template allows".
fn mint_request(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<MintRequest, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {} bytes", super::MAX_BODY_BYTES),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "could not read the request body")
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(MintRequest::default());
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let is_json = ct
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be application/json",
            ));
        }
    }
    Ok(MintRequest::from_json(&body)?)
}

/// The JWKS document, serialised once with its ETag.
pub(super) struct JwksBody {
    body: Bytes,
    etag: HeaderValue,
}

impl JwksBody {
    pub(super) fn new(issuer: &Issuer) -> Self {
        let body = serde_json::to_vec(&issuer.keyring().jwks()).unwrap_or_default();
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", crate::b64::encode(&digest[..16]));
        // Base64url in quotes is always a valid header value.
        let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
        Self { body: Bytes::from(body), etag }
    }
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    let live = handle.live();
    let jwks = &live.jwks;
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == jwks.etag || tag.trim() == "*"));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"))], jwks.body.clone())
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, jwks.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE));
    response
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    config_version: u64,
    signing_kid: &'a str,
}

/// `GET /healthz`.
pub(super) async fn healthz(State(handle): State<IssuerHandle>) -> Response {
    let live = handle.live();
    let body = Health {
        status: "ok",
        config_version: live.issuer.config().version,
        signing_kid: live.issuer.keyring().signing().kid(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
