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

/// The codes of the HTTP edge itself; with [`MintError::CODES`] they are every `code` a
/// problem document can carry (`every_problem_code_is_in_the_schema` reads the source to hold
/// that true).
const SERVER_CODES: &[&str] = &[
    "bad_request",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "body_too_large",
    "uri_too_long",
    "headers_too_large",
    "unsupported_media_type",
    "rate_limited",
    "misdirected_request",
    "unavailable",
    "not_ready",
    "limit_store_unavailable",
    "internal_error",
    "http_error",
    "invalid_path",
    "bad_forwarded_for",
];

/// Every problem `code`, each once, in a stable order.
pub(crate) fn codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = SERVER_CODES.iter().chain(MintError::CODES).copied().collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// The `code` member: one of [`codes`], as an enum in the OpenAPI schema.
fn code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("A stable machine-readable code; clients branch on it, never on `detail`."))
        .enum_values(Some(codes()))
        .build()
}

/// An RFC 9457 problem document (`application/problem+json`), the body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProblemDocument<'a> {
    /// Always `about:blank`: `code` says what happened.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: &'static str,
    /// The HTTP status phrase.
    #[schema(value_type = String)]
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for a person.
    #[schema(value_type = String)]
    detail: &'a str,
    #[schema(schema_with = code_schema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The string literals of `text` that follow `marker`, up to the next `)` or `,` after them.
    fn literals_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
        text.match_indices(marker)
            .filter_map(|(at, _)| {
                let rest = &text[at + marker.len()..];
                let start = rest.find('"')?;
                // The code is the first literal of the call (the status before it has none).
                if rest[..start].contains(')') {
                    return None;
                }
                let rest = &rest[start + 1..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_problem_code_is_in_the_schema() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut files = vec![root.join("server"), root.join("issuer/error.rs")];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.extend(literals_after(&text, "ApiError::new(").into_iter().map(str::to_owned));
            // `code()` of MintError and `from_status` map to codes with `=> "…"`.
            for (at, _) in text.match_indices("=> \"") {
                let rest = &text[at + 4..];
                if let Some(end) = rest.find('"') {
                    found.push(rest[..end].to_owned());
                }
            }
        }
        let codes = codes();
        let missing: Vec<&String> = found
            .iter()
            .filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
            .filter(|c| !codes.contains(&c.as_str()))
            .collect();
        assert!(found.len() > 40, "the scan finds the codes: {found:?}");
        assert!(missing.is_empty(), "problem codes missing from the schema's enum: {missing:?}");
    }
}
