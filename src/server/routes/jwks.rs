//! `GET /.well-known/jwks.json`: the published keys.

use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

/// `GET /.well-known/jwks.json`.
pub(crate) async fn jwks(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    handle.serving().jwks.clone().respond(&headers)
}
