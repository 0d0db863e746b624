//! A document served with an ETag and `Cache-Control`, answering `If-None-Match`.

use crate::issuer::Issuer;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// A document served with an ETag and `Cache-Control`, answering `If-None-Match` with `304`:
/// the JWKS and the revocation list.
#[derive(Clone)]
pub(crate) struct Document {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
    cache_control: HeaderValue,
}

impl Document {
    pub(crate) fn new(body: Vec<u8>, content_type: &'static str, max_age: u64) -> Self {
        // Base64url in quotes is always a valid header value.
        let etag = HeaderValue::from_str(&etag(&body)).unwrap_or(HeaderValue::from_static("\"0\""));
        Self { body: Bytes::from(body), content_type, etag, cache_control: HeaderValue::from_static("no-cache") }
            .max_age(max_age)
    }

    /// The same document, cacheable for `seconds`.
    pub(crate) fn max_age(mut self, seconds: u64) -> Self {
        // Digits only: always a valid header value.
        self.cache_control = HeaderValue::from_str(&format!("public, max-age={seconds}"))
            .unwrap_or(HeaderValue::from_static("no-cache"));
        self
    }

    pub(crate) fn respond(self, headers: &HeaderMap) -> Response {
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
///
/// # Errors
///
/// When the JWKS does not serialise: never an empty document in its place.
pub(crate) fn jwks_document(issuer: &Issuer) -> Result<Document, serde_json::Error> {
    let body = serde_json::to_vec(&issuer.keyring().jwks())?;
    Ok(Document::new(body, "application/jwk-set+json", u64::from(issuer.config().jwks_max_age)))
}

/// A strong ETag for a body: quoted base64url of 128 bits of its SHA-256.
pub(crate) fn etag(body: &[u8]) -> String {
    format!("\"{}\"", crate::token::b64::encode(&Sha256::digest(body)[..16]))
}
