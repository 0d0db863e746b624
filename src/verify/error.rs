//! Why a token was refused ([`VerifyError`]) and why a valid token does not allow an
//! operation ([`Denied`]). Every variant has a stable `code`.

use crate::policy::dir_scope::ScopeError;
use crate::policy::ip::IpRangeError;
use crate::token::jws::JwsError;
use std::net::IpAddr;

/// Why a token was refused. Each variant has a stable [`code`](VerifyError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is longer than the verifier's limit; it was not decoded.
    #[error("token is longer than {0} bytes")]
    TooLarge(usize),
    /// The token is not a compact JWS of three canonical base64url segments holding JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not exactly `EdDSA` or `Ed25519`.
    #[error("algorithm not allowed: only EdDSA (or Ed25519) is accepted")]
    AlgorithmNotAllowed,
    /// The header's `typ` is not the one expected for this kind of token.
    #[error("wrong token type: expected typ {expected:?}")]
    WrongType {
        /// The `typ` this verifier expects.
        expected: &'static str,
    },
    /// The header carries `crit`, which this verifier does not understand (RFC 7515 §4.1.11).
    #[error("critical header parameters are not supported")]
    CriticalHeader,
    /// The header carries `b64` or `zip`, which change how the token is read.
    #[error("header parameter {0:?} is not supported")]
    UnsupportedHeader(&'static str),
    /// The header has no `kid`.
    #[error("the header has no kid")]
    MissingKid,
    /// The `kid` names no key in the verifier's key set.
    #[error("unknown kid")]
    UnknownKid,
    /// The signature is malformed or does not verify (strict Ed25519).
    #[error("signature verification failed")]
    BadSignature,
    /// A claim is missing or has the wrong JSON type, or the claims contradict each other.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name an audience this verifier accepts.
    #[error("wrong audience")]
    WrongAudience,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `exp - iat` exceeds the verifier's longest lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// A directory scope in the token is not canonical.
    #[error("invalid directory scope in token: {0}")]
    InvalidScope(ScopeError),
    /// An IP range in the token is not canonical.
    #[error("invalid IP range in token: {0}")]
    InvalidIpRange(IpRangeError),
    /// The key (or the template it was minted from, or a key that created it) is revoked.
    #[error("revoked")]
    Revoked,
    /// A permanent key was presented and the verifier holds no revocation list.
    #[error("no revocation list is held; permanent keys are refused until one is loaded")]
    RevocationsMissing,
    /// A permanent key was presented and the held revocation list has expired.
    #[error("the revocation list has expired; permanent keys are refused until a fresh one is loaded")]
    RevocationsExpired,
    /// A revocation list earlier, by (`ver`, `iat`), than the fresh one already held was
    /// offered: a replay, or the issuer's config was rolled back.
    #[error("the revocation list is older than the fresh one already held")]
    RevocationsRollback,
}

impl VerifyError {
    /// A stable machine-readable code, such as `token_expired`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "token_too_large",
            Self::Malformed(_) => "token_malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::WrongType { .. } => "wrong_token_type",
            Self::CriticalHeader => "critical_header",
            Self::UnsupportedHeader(_) => "unsupported_header",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::InvalidClaims(_) => "invalid_claims",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidIpRange(_) => "invalid_ip_range",
            Self::Revoked => "revoked",
            Self::RevocationsMissing => "revocations_missing",
            Self::RevocationsExpired => "revocations_expired",
            Self::RevocationsRollback => "revocations_rollback",
        }
    }
}

/// Why an operation was denied by a valid [`Grant`](crate::Grant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The token does not carry the permission.
    #[error("permission {0} is not granted")]
    PermissionMissing(String),
    /// The token is restricted to IP ranges and no caller address was given.
    #[error("the token is IP-restricted and no caller address was given")]
    IpRequired,
    /// The caller's address is outside the token's ranges.
    #[error("address {0} is not allowed")]
    IpNotAllowed(IpAddr),
    /// The permission is checked against a directory scope and no directory was given.
    #[error("permission {0} acts on a directory and none was given")]
    DirectoryRequired(String),
    /// The directory is malformed or tries to escape (`..`, `%2f`, NUL).
    #[error("invalid directory: {0}")]
    InvalidPath(ScopeError),
    /// The directory is outside the scope the permission is checked against.
    #[error("directory is outside the {0} scope")]
    OutsideScope(&'static str),
    /// The verifier's [`ScopeRules`](crate::ScopeRules) do not know the permission (a custom catalogue needs
    /// [`Verifier::scope_rules`](crate::Verifier::scope_rules)), so no directory check can be chosen.
    #[error("no scope rule for permission {0}; configure the verifier's scope rules")]
    NoScopeRule(String),
    /// The token is restricted to countries and the given one is not among them.
    #[error("country {0} is not allowed")]
    CountryNotAllowed(String),
    /// The upload is larger than the token's `upload_max_bytes` (HTTP 413).
    #[error("the upload is {size} bytes; at most {max} are allowed")]
    FileTooLarge {
        /// The upload's size.
        size: u64,
        /// The token's limit.
        max: u64,
    },
    /// The token limits the upload size and no size was given (HTTP 411).
    #[error("the key limits upload size and no length was given")]
    LengthRequired,
    /// The upload's media type is not in the token's `upload_types`, or none was given
    /// (HTTP 415).
    #[error("content type {0} is not allowed")]
    ContentTypeNotAllowed(String),
}

impl Denied {
    /// A stable machine-readable code, such as `outside_scope`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PermissionMissing(_) => "permission_missing",
            Self::IpRequired => "ip_required",
            Self::IpNotAllowed(_) => "ip_not_allowed",
            Self::DirectoryRequired(_) => "directory_required",
            Self::InvalidPath(_) => "invalid_path",
            Self::OutsideScope(_) => "outside_scope",
            Self::NoScopeRule(_) => "no_scope_rule",
            Self::CountryNotAllowed(_) => "country_not_allowed",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::LengthRequired => "length_required",
            Self::ContentTypeNotAllowed(_) => "content_type_not_allowed",
        }
    }
}

impl From<JwsError> for VerifyError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::TooLarge(max) => Self::TooLarge(max),
            JwsError::Malformed(what) => Self::Malformed(what),
            JwsError::AlgorithmNotAllowed => Self::AlgorithmNotAllowed,
            JwsError::WrongType { expected } => Self::WrongType { expected },
            JwsError::CriticalHeader => Self::CriticalHeader,
            JwsError::UnsupportedHeader(name) => Self::UnsupportedHeader(name),
            JwsError::MissingKid => Self::MissingKid,
            JwsError::UnknownKid => Self::UnknownKid,
            JwsError::BadSignature => Self::BadSignature,
            JwsError::InvalidClaims(e) => Self::InvalidClaims(e.to_string()),
        }
    }
}
