//! `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata.

use crate::server::problem::ApiError;
use crate::server::state::IssuerHandle;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};

/// `GET /.well-known/oauth-authorization-server`: the metadata, or `404` when the configured
/// issuer is not a URL.
pub(crate) async fn discovery(State(handle): State<IssuerHandle>, headers: HeaderMap) -> Response {
    match &handle.serving().discovery {
        Some(document) => document.clone().respond(&headers),
        None => ApiError::not_found().into_response(),
    }
}
