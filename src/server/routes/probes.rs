//! `GET /livez` and `GET /readyz`: probes for orchestrators.

use crate::server::problem::{ApiError, ProblemDocument};
use crate::server::state::{IssuerHandle, Readiness};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::SystemTime;

/// The process serves.
#[derive(Serialize, utoipa::ToSchema)]
struct Live {
    /// Always `ok`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// `GET /livez`: the process serves requests. Checks nothing else, so a restart is only ever
/// asked for a process that no longer answers.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    responses(
        (status = 200, description = "The process serves", body = Live),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "5XX", description = "Failed: a problem document", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn livez() -> Response {
    no_store(Json(Live { status: "ok" }).into_response())
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    config_version: u64,
    checks: Readiness,
}

/// `GET /readyz`: `200` when the config is loaded, the signing key is published and a
/// revocation list can be signed; otherwise `503 not_ready`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to issue keys: `status`, `config_version` and the `checks` that passed", body = serde_json::Value),
        (status = 503, description = "Not ready (`not_ready`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = "4XX", description = "Refused: a problem document with a stable `code`", body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn readyz(State(handle): State<IssuerHandle>) -> Response {
    let live = handle.serving();
    let checks = live.readiness(SystemTime::now(), handle.not_ready_log());
    if !checks.ready() {
        return no_store(
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "this instance cannot issue keys yet")
                .into_response(),
        );
    }
    no_store(Json(Ready { status: "ok", config_version: live.issuer.config().version, checks }).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
