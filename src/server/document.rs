//! A document served with an ETag and `Cache-Control`, answering `If-None-Match`.

use crate::issuer::Issuer;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use headers::{ETag, HeaderMapExt as _, IfNoneMatch};
use sha2::{Digest as _, Sha256};

/// A document served with an ETag and `Cache-Control`, answering `If-None-Match` with `304`:
/// the JWKS and the revocation list.
#[derive(Clone)]
pub(crate) struct Document {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
    /// The same tag, typed, for the `If-None-Match` comparison.
    tag: Option<ETag>,
    cache_control: HeaderValue,
}

impl Document {
    pub(crate) fn new(body: Vec<u8>, content_type: &'static str, max_age: u64) -> Self {
        // Base64url in quotes is always a valid header value.
        let text = etag(&body);
        let etag = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("\"0\""));
        let tag = text.parse::<ETag>().ok();
        Self { body: Bytes::from(body), content_type, etag, tag, cache_control: HeaderValue::from_static("no-cache") }
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
        // `If-None-Match` compares weakly (RFC 9110 §13.1.2): `W/"x"` matches `"x"`. A list
        // that names `*` among tags is not valid syntax, but it has always matched here, so it
        // still does; any other header that does not parse sends the full document.
        let any = || {
            headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim() == "*")))
        };
        let matched = match (headers.typed_get::<IfNoneMatch>(), &self.tag) {
            (Some(condition), Some(tag)) => !condition.precondition_passes(tag),
            _ => false,
        };
        let cached = matched || any();
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
    let body = serde_json::to_vec(&issuer.jwks())?;
    Ok(Document::new(body, "application/jwk-set+json", u64::from(issuer.config().jwks_max_age)))
}

/// The RFC 8414 metadata, serialised once per issuer, cacheable like the JWKS; `None` when
/// the configured issuer is not a URL.
///
/// # Errors
///
/// When the metadata does not serialise.
pub(crate) fn discovery_document(issuer: &Issuer) -> Result<Option<Document>, serde_json::Error> {
    let Some(metadata) = issuer.metadata() else { return Ok(None) };
    let body = serde_json::to_vec(&metadata)?;
    Ok(Some(Document::new(body, "application/json", u64::from(issuer.config().jwks_max_age))))
}

/// A strong ETag for a body: quoted base64url of 128 bits of its SHA-256.
pub(crate) fn etag(body: &[u8]) -> String {
    format!("\"{}\"", crate::token::b64::encode(&Sha256::digest(body)[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(if_none_match: &str) -> StatusCode {
        let document = Document::new(b"{}".to_vec(), "application/json", 60);
        let tag = document.etag.to_str().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&if_none_match.replace("TAG", &tag)).unwrap());
        document.respond(&headers).status()
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        // RFC 9110 §13.1.2: If-None-Match compares weakly, so W/"x" matches "x".
        assert_eq!(status("TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("W/TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("\"other\", W/TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("*"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("\"other\""), StatusCode::OK);
        assert_eq!(status("W/\"other\""), StatusCode::OK);
    }
}
