//! `GET /v1/revocations`: the signed revocation list.

use crate::server::problem::ApiError;
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::time::SystemTime;

/// `GET /v1/revocations`: the signed revocation list, re-signed when half its freshness is
/// used, so a poller always holds a list with at least half its lifetime left.
pub(crate) async fn revocations(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    match handle.serving().revocations(SystemTime::now()) {
        Ok(document) => document.respond(&headers),
        Err(e) => {
            tracing::error!(target: "keysmith::server::routes", error = %e, "cannot sign the revocation list");
            ApiError::internal().into_response()
        }
    }
}
