//! The one mapping from a refusal (no key, a [`VerifyError`], a [`Denied`], no route, a limit)
//! to an HTTP status, an RFC 9457 `application/problem+json` body with a stable `code`, and
//! the headers RFC 6750 and RFC 9110 ask for (`WWW-Authenticate`, `Retry-After`).

use super::key::KeyError;
use crate::limits::Limit;
use crate::verify::{Denied, VerifyError};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use std::time::Duration;

/// The response header repeating a refusal's `code`.
pub const CODE_HEADER: &str = "x-keysmith-code";

/// Why a request was refused by an [`Enforcer`](super::Enforcer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No key, or a malformed `Authorization`/`X-Api-Key`: 401.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key did not verify: 401, except `revoked` (403) and a missing or stale revocation
    /// list for a permanent key (503: the enforcer cannot decide yet).
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// The key is valid and does not allow this request: 403, except an upload too large
    /// (413), of a type not allowed (415) or of unknown length where the key limits size (411).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// No route matches the request's method and path: 403 (`no_route`).
    #[error("no route matches this method and path")]
    NoRoute,
    /// The request target is not an absolute path, or does not decode to UTF-8: 403 (`invalid_path`).
    #[error("the request path is malformed")]
    InvalidTarget,
    /// An upload limit is spent: 429, with `Retry-After` when waiting helps.
    #[error("upload limit reached ({})", .limit.code())]
    Limited {
        /// The limit that refused the upload.
        limit: Limit,
        /// When an upload could next succeed; `None` when waiting does not help.
        retry_after: Option<Duration>,
    },
    /// The limit store did not answer and the enforcer denies then: 503.
    #[error("the upload limit store is unavailable")]
    StoreUnavailable,
    /// A trusted proxy sent a malformed forwarding header, or no peer address is known: 400.
    #[error("the client address cannot be determined")]
    ClientAddress,
    /// The peer asking a forward-auth service (`keysmith gate`) is not one of its
    /// `allowed_callers`, so its description of a request is not believed: 403
    /// (`caller_not_allowed`).
    #[error("this peer may not ask for decisions")]
    CallerNotAllowed,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Key(_) => StatusCode::UNAUTHORIZED,
            Self::Invalid(VerifyError::Revoked) => StatusCode::FORBIDDEN,
            Self::Invalid(VerifyError::RevocationsMissing | VerifyError::RevocationsExpired) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::Denied(Denied::FileTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Denied(Denied::ContentTypeNotAllowed(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Denied(Denied::LengthRequired) => StatusCode::LENGTH_REQUIRED,
            Self::Denied(_) | Self::NoRoute | Self::InvalidTarget | Self::CallerNotAllowed => StatusCode::FORBIDDEN,
            Self::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ClientAddress => StatusCode::BAD_REQUEST,
        }
    }

    /// The stable problem code: [`VerifyError::code`], [`Denied::code`], `key_missing`,
    /// `key_malformed`, `no_route`, `invalid_path`, `limit_per_min`, `limit_per_source_ip`,
    /// `limit_store_unavailable`, `client_address` or `caller_not_allowed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Key(e) => e.code(),
            Self::Invalid(e) => e.code(),
            Self::Denied(e) => e.code(),
            Self::NoRoute => "no_route",
            Self::InvalidTarget => "invalid_path",
            Self::Limited { limit, .. } => limit.code(),
            Self::StoreUnavailable => "limit_store_unavailable",
            Self::ClientAddress => "client_address",
            Self::CallerNotAllowed => "caller_not_allowed",
        }
    }

    /// `Retry-After` in whole seconds (rounded up), when the refusal has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Limited { retry_after: Some(d), .. } => Some(d.as_secs() + u64::from(d.subsec_nanos() > 0)),
            Self::StoreUnavailable => Some(1),
            _ => None,
        }
    }
}

#[derive(serde::Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            // The messages name no secret and echo no request text beyond a parsed address.
            detail: self.to_string(),
            code: self.code(),
        };
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| String::from("{}"));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The code again as a header, for proxies that pass headers but not the body (nginx's
        // `auth_request`).
        headers.insert(CODE_HEADER, HeaderValue::from_static(self.code()));
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            // The gate's contract: every 401 (no key, a malformed, bad or expired one) says
            // `invalid_token`, so a proxy or client needs one rule. (RFC 6750 §3.1 would allow a
            // bare challenge when no credentials were sent; naming the error there too is
            // allowed and tells the caller what to fix.)
            let value = HeaderValue::from_static("Bearer error=\"invalid_token\"");
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mapping_for_every_refusal() {
        let cases: Vec<(Refusal, u16, &str)> = vec![
            (KeyError::Missing.into(), 401, "key_missing"),
            (VerifyError::Expired.into(), 401, "token_expired"),
            (VerifyError::BadSignature.into(), 401, "bad_signature"),
            (VerifyError::WrongAudience.into(), 401, "wrong_audience"),
            (VerifyError::Revoked.into(), 403, "revoked"),
            (VerifyError::RevocationsMissing.into(), 503, "revocations_missing"),
            (Denied::OutsideScope("upload").into(), 403, "outside_scope"),
            (Refusal::NoRoute, 403, "no_route"),
            (Denied::FileTooLarge { size: 5, max: 4 }.into(), 413, "file_too_large"),
            (Denied::ContentTypeNotAllowed("text/plain".into()).into(), 415, "content_type_not_allowed"),
            (Denied::LengthRequired.into(), 411, "length_required"),
            (
                Refusal::Limited { limit: Limit::PerMin, retry_after: Some(Duration::from_millis(1500)) },
                429,
                "limit_per_min",
            ),
            (Refusal::Limited { limit: Limit::PerSourceIp, retry_after: None }, 429, "limit_per_source_ip"),
            (
                Refusal::Limited { limit: Limit::KeysPerSource, retry_after: Some(Duration::from_secs(60)) },
                429,
                "limit_keys_per_source",
            ),
            (Refusal::StoreUnavailable, 503, "limit_store_unavailable"),
            (Refusal::CallerNotAllowed, 403, "caller_not_allowed"),
        ];
        for (refusal, status, code) in cases {
            assert_eq!((refusal.status().as_u16(), refusal.code()), (status, code), "{refusal:?}");
            let response = refusal.clone().into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
            let www = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
            match (status, &refusal) {
                (401, _) => assert_eq!(www.as_deref(), Some("Bearer error=\"invalid_token\"")),
                _ => assert_eq!(www, None),
            }
        }
        let limited = Refusal::Limited { limit: Limit::PerMin, retry_after: Some(Duration::from_millis(1500)) };
        assert_eq!(limited.into_response().headers()[header::RETRY_AFTER], "2");
    }
}
