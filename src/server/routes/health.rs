//! `GET /healthz` and `GET /v1/status`.

use crate::server::problem::ProblemDocument;
use crate::server::state::IssuerHandle;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The service is up and serving a config.
#[derive(Serialize, utoipa::ToSchema)]
struct Health<'a> {
    /// Always `ok`.
    #[schema(value_type = String)]
    status: &'static str,
    /// The version of the running config.
    config_version: u64,
    /// The key id that signs now.
    #[schema(value_type = String)]
    signing_kid: &'a str,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn healthz(State(handle): State<IssuerHandle>) -> Response {
    let live = handle.serving();
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
#[derive(Serialize, utoipa::ToSchema)]
struct PublicRejection<'a> {
    /// The version the rejected config declared, when it could be read.
    version: Option<u64>,
    /// Why, as a stable code (`config_invalid`, `rollback_refused`, ...).
    #[schema(value_type = String)]
    code: &'static str,
    /// When (RFC 3339).
    #[schema(value_type = String)]
    at: &'a str,
}

/// What is running and how the last reloads went.
#[derive(Serialize, utoipa::ToSchema)]
struct Status<'a> {
    /// Always `ok`.
    #[schema(value_type = String)]
    status: &'static str,
    /// The version of the running config.
    config_version: u64,
    /// SHA-256 (hex) of the running config file.
    #[schema(value_type = String)]
    config_sha256: &'a str,
    /// When it was loaded (RFC 3339).
    #[schema(value_type = String)]
    loaded_at: &'a str,
    /// The last reload refused, if any.
    #[schema(value_type = Option<PublicRejection>)]
    last_rejected: Option<PublicRejection<'a>>,
    /// The key id that signs now.
    #[schema(value_type = String)]
    signing_kid: &'a str,
    /// A key the record makes active that starts signing once this process has published it
    /// for `jwks_max_age`.
    #[schema(value_type = Option<String>)]
    pending_signing_kid: Option<&'a str>,
    /// The key ids in the JWKS.
    kids: Vec<String>,
}

/// `GET /v1/status`: what is running and how the last reloads went. No secrets, and of a
/// rejected reload only its code, version and time.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "operations",
    responses(
        (status = 200, description = "The running config and keys", body = Status),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn status(State(handle): State<IssuerHandle>) -> Response {
    // Read under the state lock, which a reload holds while it swaps: never a mix.
    let (live, state) = {
        let state = handle.state();
        (handle.serving(), state.clone())
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
