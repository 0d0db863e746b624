//! Route handlers.

use super::escape::Escaped;
use super::{ApiError, IssuerHandle};
use crate::issuer::{Caller, Issuer, MintRequest};
use crate::policy::ip::client_ip;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;
use std::time::SystemTime;

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
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Path((project, template)) = path.map_err(|_| invalid_path())?;
    // Before anything else, and before anything is logged: a segment no config could declare
    // names nothing here.
    if !crate::config::is_id(&project) || !crate::config::is_id(&template) {
        return Err(invalid_path());
    }
    let live = handle.live();
    let issuer = &live.issuer;
    // Who is asking, and whether they may, before the body is read at all.
    let caller = caller_ip(issuer, peer, &headers)?;
    live.rate_limit(caller)?;
    let body = axum::body::to_bytes(request.into_body(), super::MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {} bytes, or could not be read", super::MAX_BODY_BYTES),
        )
    });
    let request = mint_request(&headers, body)?;
    let credential = api_key(&headers);
    let who = Caller { ip: Some(caller), api_key: credential.as_deref() };

    let minted = match issuer.mint(&project, &template, &request, who, SystemTime::now()) {
        Ok(minted) => minted,
        Err(e) => {
            tracing::info!(%project, %template, %caller, code = e.code(), error = %Escaped(&e), "mint refused");
            if let Some(source) = std::error::Error::source(&e) {
                tracing::error!(error = %Escaped(source), "mint failed on a dependency");
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

/// `400 invalid_path`: a project or template segment outside the id grammar of the config.
fn invalid_path() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_path",
        "project and template must be ids: 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit",
    )
}

/// `HEAD` on the mint endpoint: `405`, so nothing is minted for a response without a body.
pub(super) async fn mint_head() -> Response {
    let mut response = ApiError::method_not_allowed().into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// The caller's permanent key: `X-Api-Key`, else `Authorization: Bearer`.
fn api_key(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = headers.get("x-api-key") {
        return Some(key.to_str().unwrap_or_default().trim().to_owned());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    #[serde(default)]
    name: Option<String>,
    permissions: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiKeyInfo<'a> {
    id: &'a str,
    name: &'a str,
    permissions: &'a [String],
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedResponse<'a> {
    api_key: ApiKeyInfo<'a>,
    secret: &'a str,
}

/// `POST /{project}/v1/api-keys`: create a permanent key (Immich `createApiKey` shape),
/// authenticated by the caller's own permanent key.
pub(super) async fn create_api_key(
    State(handle): State<IssuerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(project) = path.map_err(|_| invalid_path())?;
    if !crate::config::is_id(&project) {
        return Err(invalid_path());
    }
    let live = handle.live();
    live.rate_limit(caller_ip(&live.issuer, peer, &headers)?)?;
    let body = read_body(&headers, body)?;
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "the body must be a JSON object"));
    }
    let request: CreateApiKey = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", format!("invalid JSON body: {e}")))?;
    let creator = api_key(&headers).ok_or(crate::issuer::MintError::ApiKeyRequired)?;
    let name = request.name.unwrap_or_else(|| "API Key".to_owned());
    let now = SystemTime::now();
    let (creator, created) = match live.issuer.create_api_key_as(&creator, &project, &name, &request.permissions, now) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::info!(%project, code = e.code(), error = %Escaped(&e), "api key creation refused");
            return Err(e.into());
        }
    };
    // No record, no key: a creation that cannot be audited is not handed out.
    live.audit.api_key_created(&project, &name, &created, creator.id()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit_failed",
            "the creation could not be audited; no key was issued",
        )
    })?;
    let created_at = chrono::DateTime::from_timestamp(i64::try_from(created.claims.iat).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let permissions: Vec<String> = created.claims.permissions().map(str::to_owned).collect();
    let body = CreatedResponse {
        api_key: ApiKeyInfo {
            id: &created.id,
            name: &name,
            permissions: &permissions,
            created_at: created_at.clone(),
            updated_at: created_at,
        },
        secret: &created.secret,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/revocations`: the signed revocation list, re-signed when half its freshness is
/// used, so a poller always holds a list with at least half its lifetime left.
pub(super) async fn revocations(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    match handle.live().revocations(SystemTime::now()) {
        Ok(document) => document.respond(&headers),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the revocation list");
            ApiError::internal().into_response()
        }
    }
}

/// A strong ETag for a body: quoted base64url of 128 bits of its SHA-256.
pub(super) fn etag(body: &[u8]) -> String {
    format!("\"{}\"", crate::token::b64::encode(&Sha256::digest(body)[..16]))
}

/// The caller's address: the peer, or what the configured forwarding header of a trusted proxy
/// says.
fn caller_ip(issuer: &Issuer, peer: SocketAddr, headers: &HeaderMap) -> Result<std::net::IpAddr, ApiError> {
    let server = &issuer.config().server;
    let bad = |detail: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_forwarded_for", detail);
    let values = headers
        .get_all(server.forwarded_header.name())
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(format!("{} is not valid text", server.forwarded_header.name())))?;
    client_ip(peer.ip(), server.forwarded_header, values, &server.trusted_proxies).map_err(|e| bad(e.to_string()))
}

/// Reads the optional JSON body. An empty body means "everything the template allows".
fn mint_request(headers: &HeaderMap, body: Result<Bytes, ApiError>) -> Result<MintRequest, ApiError> {
    let body = check_body(headers, body?)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(MintRequest::default());
    }
    Ok(MintRequest::from_json(&body)?)
}

/// The request body, within the size limit and, when not empty, declared as JSON.
fn read_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
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

/// A document served with an ETag and `Cache-Control`, answering `If-None-Match` with `304`:
/// the JWKS and the revocation list.
#[derive(Clone)]
pub(super) struct Document {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
    cache_control: HeaderValue,
}

impl Document {
    pub(super) fn new(body: Vec<u8>, content_type: &'static str, max_age: u64) -> Self {
        // Base64url in quotes is always a valid header value.
        let etag = HeaderValue::from_str(&etag(&body)).unwrap_or(HeaderValue::from_static("\"0\""));
        Self { body: Bytes::from(body), content_type, etag, cache_control: HeaderValue::from_static("no-cache") }
            .max_age(max_age)
    }

    /// The same document, cacheable for `seconds`.
    pub(super) fn max_age(mut self, seconds: u64) -> Self {
        // Digits only: always a valid header value.
        self.cache_control = HeaderValue::from_str(&format!("public, max-age={seconds}"))
            .unwrap_or(HeaderValue::from_static("no-cache"));
        self
    }

    fn respond(self, headers: &HeaderMap) -> Response {
        let cached = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == self.etag || tag.trim() == "*"));
        let mut response = if cached {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))], self.body).into_response()
        };
        let h = response.headers_mut();
        h.insert(header::ETAG, self.etag);
        h.insert(header::CACHE_CONTROL, self.cache_control);
        response
    }
}

/// The JWKS, serialised once per issuer, cacheable for the config's `jwks_max_age`, which key
/// activation waits for.
pub(super) fn jwks_document(issuer: &Issuer) -> Document {
    let body = serde_json::to_vec(&issuer.keyring().jwks()).unwrap_or_default();
    Document::new(body, "application/jwk-set+json", u64::from(issuer.config().jwks_max_age))
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    handle.live().jwks.clone().respond(&headers)
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

/// A rejected reload as the public sees it: what and when, never why (file paths, parser
/// messages); the full reason is in the log.
#[derive(Serialize)]
struct PublicRejection<'a> {
    version: Option<u64>,
    code: &'static str,
    at: &'a str,
}

#[derive(Serialize)]
struct Status<'a> {
    status: &'static str,
    config_version: u64,
    config_sha256: &'a str,
    loaded_at: &'a str,
    last_rejected: Option<PublicRejection<'a>>,
    signing_kid: &'a str,
    /// A key the record makes active that starts signing once this process has published it
    /// for `jwks_max_age`.
    pending_signing_kid: Option<&'a str>,
    kids: Vec<String>,
}

/// `GET /v1/status`: what is running and how the last reloads went. No secrets, and of a
/// rejected reload only its code, version and time.
pub(super) async fn status(State(handle): State<IssuerHandle>) -> Response {
    // Read under the state lock, which a reload holds while it swaps: never a mix.
    let (live, state) = {
        let state = handle.state();
        (handle.live(), state.clone())
    };
    let kids = live.issuer.keyring().published().iter().map(crate::token::jwk::thumbprint).collect();
    let body = Status {
        status: "ok",
        config_version: live.issuer.config().version,
        config_sha256: &state.config_sha256,
        loaded_at: &state.loaded_at,
        last_rejected: state.last_rejected.as_ref().map(|r| PublicRejection {
            version: r.version,
            code: r.code,
            at: &r.at,
        }),
        signing_kid: live.issuer.keyring().signing().kid(),
        pending_signing_kid: state.pending_signer.as_ref().map(|(kid, _)| kid.as_str()),
        kids,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
