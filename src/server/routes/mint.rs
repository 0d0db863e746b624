//! `GET|POST /{project}/v1/key/{template}`: mint a short-lived key.

use crate::issuer::{Caller, MintRequest};
use crate::server::escape::Escaped;
use crate::server::extract::{api_key, caller_ip, invalid_path, mint_request, read_body};
use crate::server::problem::ApiError;
use crate::server::problem::ProblemDocument;
use crate::server::state::IssuerHandle;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::SystemTime;

/// A minted key.
#[derive(Serialize, utoipa::ToSchema)]
struct MintResponse<'a> {
    /// Always `success`.
    #[schema(value_type = String)]
    status: &'static str,
    /// The key: a compact JWS (`typ: at+jwt`).
    #[schema(value_type = String)]
    key: &'a str,
    /// Always `Bearer`.
    #[schema(value_type = String)]
    token_type: &'static str,
    /// Seconds until it expires.
    expires_in: u32,
    /// When it expires (RFC 3339).
    expires_at: String,
    /// The permissions it grants.
    #[schema(value_type = Vec<String>)]
    permissions: &'a [String],
}

/// `GET /{project}/v1/key/{template}`: mint a key (a body, if any, as for `POST`).
#[utoipa::path(
    get,
    path = "/{project}/v1/key/{template}",
    tag = "mint",
    params(
        ("project" = String, Path, description = "A project id of the config"),
        ("template" = String, Path, description = "A template id of that project"),
    ),
    request_body(
        content = Option<MintRequest>,
        content_type = "application/json",
        description = "Narrows what the template allows; an empty body asks for all of it",
    ),
    responses(
        (status = 200, description = "A key was minted", body = MintResponse),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("api_key" = []), ("bearer" = [])),
)]
pub(crate) async fn mint_get(
    state: State<IssuerHandle>,
    peer: ConnectInfo<SocketAddr>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    mint(state, peer, path, headers, request).await
}

/// `POST /{project}/v1/key/{template}`: mint a key.
#[utoipa::path(
    post,
    path = "/{project}/v1/key/{template}",
    tag = "mint",
    params(
        ("project" = String, Path, description = "A project id of the config"),
        ("template" = String, Path, description = "A template id of that project"),
    ),
    request_body(
        content = Option<MintRequest>,
        content_type = "application/json",
        description = "Narrows what the template allows; an empty body asks for all of it",
    ),
    responses(
        (status = 200, description = "A key was minted", body = MintResponse),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("api_key" = []), ("bearer" = [])),
)]
pub(crate) async fn mint_post(
    state: State<IssuerHandle>,
    peer: ConnectInfo<SocketAddr>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    mint(state, peer, path, headers, request).await
}

/// Mints a key for the caller, counting refusals.
async fn mint(
    State(handle): State<IssuerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let ids = path.as_ref().map(|Path(ids)| ids.clone()).unwrap_or_default();
    let result = mint_for(&handle, peer, path, headers, request).await;
    if let Err(e) = &result {
        // Labelled with the config's ids only: an unknown one in the path is `_unknown`.
        handle.metrics().mint_refused(handle.serving().issuer.config(), &ids.0, &ids.1, e.code());
    }
    result
}

async fn mint_for(
    handle: &IssuerHandle,
    peer: SocketAddr,
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
    let live = handle.serving();
    let issuer = &live.issuer;
    // Who is asking, and whether they may, before the body is read at all.
    let caller = caller_ip(issuer, peer, &headers)?;
    live.rate_limit(caller).await?;
    let body = read_body(&headers, request.into_body()).await?;
    let request = mint_request(&headers, body)?;
    let credential = api_key(&headers);
    let who = Caller { ip: Some(caller), api_key: credential.as_deref() };

    let started = std::time::Instant::now();
    let minted = match issuer.mint(&project, &template, &request, who, SystemTime::now()) {
        Ok(minted) => {
            live.metrics.minted(&project, &template, started.elapsed().as_secs_f64());
            minted
        }
        Err(e) => {
            tracing::info!(target: "keysmith::server::routes", %project, %template, %caller, code = e.code(), error = %Escaped(&e), "mint refused");
            if let Some(source) = std::error::Error::source(&e) {
                tracing::error!(target: "keysmith::server::routes", error = %Escaped(source), "mint failed on a dependency");
            }
            return Err(e.into());
        }
    };
    tracing::info!(target: "keysmith::server::routes", %project, %template, %caller, jti = %minted.jti, kid = %minted.kid, expires_in = minted.expires_in, "minted");
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

/// `HEAD` on the mint endpoint: `405`, so nothing is minted for a response without a body.
pub(crate) async fn mint_head() -> Response {
    let mut response = ApiError::method_not_allowed().into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}
