//! Why minting, key creation or loading an issuer failed.

use crate::issuer::geoip::GeoIpError;
use crate::policy::dir_scope::ScopeError;
use crate::token::jws::EncodeError;
use crate::verify::VerifyError;
use std::net::IpAddr;

/// Why a key was not minted. Each variant has a stable [`code`](MintError::code).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// No such project.
    #[error("unknown project {0:?}")]
    UnknownProject(String),
    /// No such template in the project.
    #[error("unknown template {0:?} in this project")]
    UnknownTemplate(String),
    /// The template is deactivated.
    #[error("template {0:?} is deactivated")]
    TemplateInactive(String),
    /// The template restricts callers (or `bind_ip` was asked) and no caller address is known.
    #[error("this template restricts callers by address; a caller address is required")]
    CallerIpRequired,
    /// The caller's address is outside the template's `whitelist_ip_ranges`.
    #[error("address {0} is not allowed by this template")]
    IpNotAllowed(IpAddr),
    /// The caller's country is not in the template's `whitelist_countries`.
    #[error("country {0} is not allowed by this template")]
    CountryNotAllowed(String),
    /// The template restricts countries and the caller's address has no known country.
    #[error("the country of address {0} is unknown and this template restricts countries")]
    CountryUnknown(IpAddr),
    /// The GeoIP database is missing or failed, so a country restriction cannot be checked.
    #[error("country check unavailable")]
    GeoIpUnavailable(#[source] Option<GeoIpError>),
    /// A requested permission is not in the catalogue.
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    /// A requested permission is in the catalogue but not in the template.
    #[error("permission {0:?} is not granted by this template")]
    PermissionNotInTemplate(String),
    /// The request asked for an empty permission list.
    #[error("permissions must not be empty")]
    EmptyPermissions,
    /// A requested scope is not canonical.
    #[error("{field}: {error}")]
    InvalidScope {
        /// `dir_scope` or `directory_scope`.
        field: &'static str,
        /// What is wrong with it.
        error: ScopeError,
    },
    /// A requested scope is wider than the template's.
    #[error("{0} is wider than the template allows")]
    ScopeNotInTemplate(&'static str),
    /// The request body is not a JSON object of the known fields.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// The requested lifetime is zero.
    #[error("expiration_duration must be at least 1 second")]
    InvalidExpiration,
    /// The requested lifetime is longer than the template's.
    #[error("expiration_duration may be at most {0} seconds for this template")]
    ExpirationTooLong(u32),
    /// The template needs a permanent API key and none was presented.
    #[error("this template requires a permanent API key (X-Api-Key or Authorization: Bearer)")]
    ApiKeyRequired,
    /// The presented key is not a valid permanent key of this issuer.
    #[error("the API key is not valid: {0}")]
    ApiKeyInvalid(VerifyError),
    /// The presented key has expired: its own `exp`, or the `expires_at` of its record (or of
    /// the record of the key at the root of the chain that created it), has passed.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// The presented key (or a key that created it) is deactivated.
    #[error("the API key is deactivated")]
    ApiKeyRevoked,
    /// The presented key verifies but neither it nor the key that created it is recorded
    /// (active) in `[[api_keys]]`: the config is the source of truth.
    #[error("the API key is not recorded in the config")]
    ApiKeyUnknown,
    /// The presented key is not for this project.
    #[error("the API key is not valid for this project")]
    ApiKeyWrongProject,
    /// A requested permission is in the template but not in the caller's API key.
    #[error("permission {0:?} is not granted by the API key")]
    PermissionNotInApiKey(String),
    /// The template and the caller's API key share no permission.
    #[error("the API key holds none of this template's permissions")]
    NoCommonPermission,
    /// Creating API keys over HTTP is off (a custom catalogue without `manage_permission`).
    #[error("creating API keys over HTTP is not enabled")]
    ApiKeyCreationDisabled,
    /// The caller's key lacks the permission that allows creating keys.
    #[error("the API key lacks {0}, which creating API keys requires")]
    ManagePermissionMissing(String),
    /// A new key asked for a permission its creator does not hold.
    #[error("permission {0:?} is not held by the creating key")]
    PermissionEscalation(String),
    /// A new key's name is empty or too long.
    #[error("name must be 1 to 256 characters without control characters")]
    InvalidName,
    /// Keys created by keys created by keys… past the depth limit.
    #[error("this key was itself created by too many generations of keys")]
    CreationChainTooDeep,
    /// The creation of a permanent key could not be recorded in the audit trail; no key was
    /// handed out.
    #[error("the creation could not be audited; no key was issued")]
    AuditFailed(#[source] std::io::Error),
    /// The claims could not be encoded; nothing was signed.
    #[error("the token could not be encoded")]
    Encode(#[from] EncodeError),
}

impl MintError {
    /// Every code [`MintError::code`] returns, for the problem schema of the OpenAPI document
    /// (a test holds the two together).
    pub const CODES: &'static [&'static str] = &[
        "unknown_project",
        "unknown_template",
        "template_inactive",
        "caller_ip_required",
        "ip_not_allowed",
        "country_not_allowed",
        "country_unknown",
        "geoip_unavailable",
        "unknown_permission",
        "permission_not_in_template",
        "empty_permissions",
        "invalid_scope",
        "scope_not_in_template",
        "invalid_body",
        "invalid_expiration",
        "expiration_too_long",
        "api_key_required",
        "api_key_invalid",
        "api_key_expired",
        "api_key_revoked",
        "api_key_unknown",
        "api_key_wrong_project",
        "permission_not_in_api_key",
        "no_common_permission",
        "api_key_creation_disabled",
        "permission_missing",
        "permission_escalation",
        "invalid_name",
        "creation_chain_too_deep",
        "audit_failed",
        "internal_error",
    ];

    /// A stable machine-readable code, such as `template_inactive`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProject(_) => "unknown_project",
            Self::UnknownTemplate(_) => "unknown_template",
            Self::TemplateInactive(_) => "template_inactive",
            Self::CallerIpRequired => "caller_ip_required",
            Self::IpNotAllowed(_) => "ip_not_allowed",
            Self::CountryNotAllowed(_) => "country_not_allowed",
            Self::CountryUnknown(_) => "country_unknown",
            Self::GeoIpUnavailable(_) => "geoip_unavailable",
            Self::UnknownPermission(_) => "unknown_permission",
            Self::PermissionNotInTemplate(_) => "permission_not_in_template",
            Self::EmptyPermissions => "empty_permissions",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::ScopeNotInTemplate(_) => "scope_not_in_template",
            Self::InvalidBody(_) => "invalid_body",
            Self::InvalidExpiration => "invalid_expiration",
            Self::ExpirationTooLong(_) => "expiration_too_long",
            Self::ApiKeyRequired => "api_key_required",
            Self::ApiKeyInvalid(_) => "api_key_invalid",
            Self::ApiKeyExpired => "api_key_expired",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::ApiKeyUnknown => "api_key_unknown",
            Self::ApiKeyWrongProject => "api_key_wrong_project",
            Self::PermissionNotInApiKey(_) => "permission_not_in_api_key",
            Self::NoCommonPermission => "no_common_permission",
            Self::ApiKeyCreationDisabled => "api_key_creation_disabled",
            Self::ManagePermissionMissing(_) => "permission_missing",
            Self::PermissionEscalation(_) => "permission_escalation",
            Self::InvalidName => "invalid_name",
            Self::CreationChainTooDeep => "creation_chain_too_deep",
            Self::AuditFailed(_) => "audit_failed",
            Self::Encode(_) => "internal_error",
        }
    }
}

/// Why an issuer could not be loaded from disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The config is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The signing keys are unreadable, unsafe or missing.
    #[error(transparent)]
    Keys(#[from] crate::keys::store::KeyError),
    /// The configured GeoIP database cannot be opened.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// The configured `server.audit_log` cannot be opened for appending (the error names it).
    #[error(transparent)]
    AuditLog(std::io::Error),
}
