//! The one error type at the HTTP edge: RFC 9457 `application/problem+json` with a stable
//! `code`. Messages help the caller; internals stay in the log.

use crate::issuer::MintError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An HTTP error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ProblemDocument<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    /// An error with a status, a stable code and a message for the caller.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), retry_after: None }
    }

    /// The same error, telling the client when to retry (`Retry-After`, seconds).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
    }

    /// A problem for a bare status produced outside the handlers (an extractor rejection, a
    /// timeout).
    pub(crate) fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::URI_TOO_LONG => "uri_too_long",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::MISDIRECTED_REQUEST => "misdirected_request",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal_error",
            _ => "http_error",
        };
        let detail = status.canonical_reason().unwrap_or("request failed").to_owned();
        Self::new(status, code, detail)
    }

    pub(crate) fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the service log")
    }
}

impl From<MintError> for ApiError {
    fn from(e: MintError) -> Self {
        let status = match &e {
            MintError::UnknownProject(_) | MintError::UnknownTemplate(_) => StatusCode::NOT_FOUND,
            MintError::ApiKeyRequired
            | MintError::ApiKeyInvalid(_)
            | MintError::ApiKeyExpired
            | MintError::ApiKeyRevoked
            | MintError::ApiKeyUnknown => StatusCode::UNAUTHORIZED,
            MintError::TemplateInactive(_)
            | MintError::IpNotAllowed(_)
            | MintError::CountryNotAllowed(_)
            | MintError::CountryUnknown(_)
            | MintError::PermissionNotInTemplate(_)
            | MintError::ScopeNotInTemplate(_)
            | MintError::ExpirationTooLong(_)
            | MintError::ApiKeyWrongProject
            | MintError::PermissionNotInApiKey(_)
            | MintError::NoCommonPermission
            | MintError::ApiKeyCreationDisabled
            | MintError::ManagePermissionMissing(_)
            | MintError::PermissionEscalation(_)
            | MintError::CreationChainTooDeep => StatusCode::FORBIDDEN,
            MintError::GeoIpUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            MintError::CallerIpRequired
            | MintError::UnknownPermission(_)
            | MintError::EmptyPermissions
            | MintError::InvalidScope { .. }
            | MintError::InvalidBody(_)
            | MintError::InvalidExpiration
            | MintError::InvalidName => StatusCode::BAD_REQUEST,
            MintError::AuditFailed(_) | MintError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = match &e {
            // The source (a database error) goes to the log, not to the caller.
            MintError::GeoIpUnavailable(_) => "the country check is unavailable; try again later".to_owned(),
            MintError::Encode(_) => "internal error; see the service log".to_owned(),
            other => other.to_string(),
        };
        Self::new(status, e.code(), detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = ProblemDocument {
            kind: "about:blank",
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
