//! `GET /healthz` and `GET /v1/status`.

use crate::server::state::IssuerHandle;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    config_version: u64,
    signing_kid: &'a str,
}

/// `GET /healthz`.
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
