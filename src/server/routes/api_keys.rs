//! `POST /{project}/v1/api-keys`: create a permanent key.

use crate::server::escape::Escaped;
use crate::server::extract::{api_key, caller_ip, invalid_path, read_body};
use crate::server::problem::ApiError;
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
pub(crate) async fn create_api_key(
    State(handle): State<IssuerHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
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
    Ok(response)
}
