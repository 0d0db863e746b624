//! `POST /{project}/v1/api-keys`: create a permanent key.

use crate::server::escape::Escaped;
use crate::server::extract::{api_key, caller_ip, invalid_path, read_body};
use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::IssuerHandle;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::SystemTime;

/// A permanent key to create (Immich `createApiKey`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    /// A name for people. Default `API Key`.
    #[serde(default)]
    name: Option<String>,
    /// Permissions of the catalogue, all held by the creating key.
    permissions: Vec<String>,
}

/// The created key's metadata.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ApiKeyInfo<'a> {
    /// The key id.
    #[schema(value_type = String)]
    id: &'a str,
    /// Its name.
    #[schema(value_type = String)]
    name: &'a str,
    /// Its permissions.
    #[schema(value_type = Vec<String>)]
    permissions: &'a [String],
    /// When it was created (RFC 3339).
    created_at: String,
    /// The same as `createdAt`.
    updated_at: String,
}

/// A created key and its secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedResponse<'a> {
    /// The metadata.
    #[schema(value_type = ApiKeyInfo)]
    api_key: ApiKeyInfo<'a>,
    /// The secret; keysmith keeps only its hash.
    #[schema(value_type = String)]
    secret: &'a str,
}

/// `POST /{project}/v1/api-keys`: create a permanent key (Immich `createApiKey` shape),
/// authenticated by the caller's own permanent key.
#[utoipa::path(
    post,
    path = "/{project}/v1/api-keys",
    tag = "api-keys",
    params(("project" = String, Path, description = "A project id of the config")),
    request_body(content = CreateApiKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CreatedResponse),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("bearer" = [])),
)]
pub(crate) async fn create_api_key(
    State(handle): State<IssuerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let result = create(&handle, peer, path, headers, request).await;
    match &result {
        Ok((project, _)) => handle.metrics().api_key_created(project),
        Err(e) => handle.metrics().api_key_refused(e.code()),
    }
    result.map(|(_, response)| response)
}

/// Creates the key; the project it was created in (an id of the config) and the response.
async fn create(
    handle: &IssuerHandle,
    peer: SocketAddr,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<(String, Response), ApiError> {
    let Path(project) = path.map_err(|_| invalid_path())?;
    if !crate::config::is_id(&project) {
        return Err(invalid_path());
    }
    let live = handle.serving();
    live.rate_limit(caller_ip(&live.issuer, peer, &headers)?).await?;
    let body = read_body(&headers, request.into_body()).await?;
    let request: CreateApiKey = crate::issuer::json_object(&body)?;
    let creator = api_key(&headers).ok_or(crate::issuer::MintError::ApiKeyRequired)?;
    let name = request.name.unwrap_or_else(|| "API Key".to_owned());
    let now = SystemTime::now();
    let (_, created) = match live.issuer.create_api_key_as(
        &creator,
        &project,
        &name,
        &request.permissions,
        &live.audit,
        now,
    ) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::info!(target: "keysmith::server::routes", %project, code = e.code(), error = %Escaped(&e), "api key creation refused");
            return Err(e.into());
        }
    };
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
    Ok((project, response))
}
