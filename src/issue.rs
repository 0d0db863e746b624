//! Minting: a template, an optional narrowing request and the caller's address in, a signed
//! access token out. No HTTP here; the server and the CLI call [`Issuer::mint`].

use crate::claims::{API_KEY_TYP, AccessClaims, ApiKeyClaims, Audience, REVOCATIONS_TYP, RevocationClaims};
use crate::config::raw::OneOrMany;
use crate::config::{Access, Config, Template};
use crate::geoip::{GeoIp, GeoIpError};
use crate::ip::{IpRange, IpRules};
use crate::jwk::KeySet;
use crate::keyring::Keyring;
use crate::revocation::RevocationList;
use crate::scope::{ScopeError, ScopeSet};
use crate::verify::{ApiKeyGrant, Verifier, VerifyError, unix_seconds};
use chrono::{DateTime, Utc};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// What a caller may ask for when minting. Every field may only narrow the template; anything
/// wider is refused, never clamped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// A subset of the template's permissions. Default: all of them.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Upload scopes inside the template's `upload.dir_scope`. Default: the template's.
    #[serde(default)]
    dir_scope: Option<OneOrMany>,
    /// Listing scopes inside the template's `listing.directory_scope`. Default: the template's.
    #[serde(default)]
    directory_scope: Option<OneOrMany>,
    /// A lifetime in seconds no longer than the template's. Default: the template's.
    #[serde(default)]
    pub expiration_duration: Option<u64>,
    /// Restrict the key to the caller's own address. Default: `false`.
    #[serde(default)]
    pub bind_ip: bool,
}

impl MintRequest {
    /// Parses a JSON request body, which must be an object with only the fields above.
    ///
    /// # Errors
    ///
    /// [`MintError::InvalidBody`] describing what is wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, MintError> {
        // serde would also read a struct from a JSON array.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(MintError::InvalidBody("the body must be a JSON object".into()));
        }
        serde_json::from_slice(body).map_err(|e| MintError::InvalidBody(e.to_string()))
    }

    /// Narrows the upload scope.
    pub fn with_dir_scope(mut self, scopes: Vec<String>) -> Self {
        self.dir_scope = Some(OneOrMany::Many(scopes));
        self
    }

    /// Narrows the listing scope.
    pub fn with_directory_scope(mut self, scopes: Vec<String>) -> Self {
        self.directory_scope = Some(OneOrMany::Many(scopes));
        self
    }
}

/// Who is asking for a key: the caller's address (the socket peer or the address trusted
/// proxies vouch for; `None` offline) and, for `access = "api_key"` templates, its permanent key.
#[derive(Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The caller's address.
    pub ip: Option<IpAddr>,
    /// The caller's permanent API key (a secret: never logged).
    pub api_key: Option<&'a str>,
}

impl<'a> Caller<'a> {
    /// A caller at `ip`.
    pub fn at(ip: IpAddr) -> Self {
        Self { ip: Some(ip), api_key: None }
    }

    /// The same caller, presenting a permanent key.
    pub fn with_api_key(mut self, key: &'a str) -> Self {
        self.api_key = Some(key);
        self
    }
}

impl From<Option<IpAddr>> for Caller<'_> {
    fn from(ip: Option<IpAddr>) -> Self {
        Self { ip, api_key: None }
    }
}

impl std::fmt::Debug for Caller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.api_key.map(|_| "[redacted]");
        f.debug_struct("Caller").field("ip", &self.ip).field("api_key", &key).finish()
    }
}

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
}

impl MintError {
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
        }
    }
}

/// A freshly minted key. Its `Debug` output redacts the token.
#[derive(Clone)]
pub struct Minted {
    /// The compact JWS. A secret: give it to the caller, never log it.
    pub token: String,
    /// Its `jti`, safe to log.
    pub jti: String,
    /// The `kid` of the key that signed it.
    pub kid: String,
    /// Lifetime in seconds.
    pub expires_in: u32,
    /// Expiry time.
    pub expires_at: DateTime<Utc>,
    /// Granted permissions.
    pub permissions: Vec<String>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("permissions", &self.permissions)
            .finish()
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
    Keys(#[from] crate::keyring::KeyError),
    /// The configured GeoIP database cannot be opened.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// The configured `server.audit_log` cannot be opened for appending (the error names it).
    #[error(transparent)]
    AuditLog(std::io::Error),
}

/// Mints keys from a validated config with a signing keyring.
#[derive(Debug, Clone)]
pub struct Issuer {
    config: Arc<Config>,
    keys: Arc<Keyring>,
    geoip: Option<Arc<GeoIp>>,
    /// Checks permanent keys presented to this issuer: its own keys, every project, and the
    /// revocations of its own config.
    api_keys: Verifier,
}

/// Most generations of keys creating keys over HTTP.
const MAX_CREATION_DEPTH: usize = 8;

/// A permanent key to create.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// Projects it may be used for.
    pub projects: Vec<String>,
    /// Permissions it grants.
    pub permissions: Vec<String>,
    /// Optional expiry, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// The keys that created it, oldest first (empty when an operator creates it).
    pub created_by: Vec<String>,
}

/// A created permanent key.
#[derive(Clone)]
pub struct CreatedApiKey {
    /// The key id.
    pub id: String,
    /// The key itself: shown once, never stored or logged by keysmith.
    pub secret: String,
    /// Its claims.
    pub claims: ApiKeyClaims,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("id", &self.id).field("secret", &"[redacted]").finish_non_exhaustive()
    }
}

/// A signed revocation list and its validity.
#[derive(Debug, Clone)]
pub struct SignedRevocations {
    /// The compact JWS.
    pub token: String,
    /// When it was signed.
    pub iat: u64,
    /// When it expires.
    pub exp: u64,
}

impl Issuer {
    /// An issuer over `config` and `keys`, opening `server.geoip_database` when configured.
    ///
    /// # Errors
    ///
    /// [`GeoIpError`] when the configured database cannot be opened (fail closed: a config
    /// that restricts countries never runs without its database).
    pub fn new(config: Config, keys: Keyring) -> Result<Self, GeoIpError> {
        let geoip = config.server.geoip_database.as_deref().map(GeoIp::open).transpose()?;
        Ok(Self::from_parts(config, keys, geoip))
    }

    /// Loads everything an issuer needs from disk: the config at `config`, the keys in
    /// `keys_dir` and the config's GeoIP database. Used at start and on every reload, so a
    /// reload re-reads all three.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming what failed; nothing is half-loaded.
    pub fn load(config: &std::path::Path, keys_dir: &std::path::Path) -> Result<Self, LoadError> {
        let config = Config::load(config)?;
        let keys = Keyring::load_dir(keys_dir)?;
        Ok(Self::new(config, keys)?)
    }

    /// An issuer from already loaded parts.
    pub fn from_parts(config: Config, keys: Keyring, geoip: Option<GeoIp>) -> Self {
        let key_set = KeySet::from_keys(keys.published().iter().copied());
        let mut projects = config.projects.keys();
        let first = projects.next().cloned().unwrap_or_default();
        let api_keys = projects.fold(Verifier::new(key_set, &config.issuer, first), |v, p| v.also_audience(p));
        api_keys.hold_revocations(RevocationList::unsigned(
            &config.issuer,
            config.version,
            config.revoked_api_keys(),
            config.revoked_templates(),
        ));
        Self { config: Arc::new(config), keys: Arc::new(keys), geoip: geoip.map(Arc::new), api_keys }
    }

    /// The config in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The signing keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }

    /// A verifier for this issuer's tokens to `project`, using its published keys.
    pub fn verifier(&self, project: &str) -> Verifier {
        Verifier::new(KeySet::from_keys(self.keys.published().iter().copied()), &self.config.issuer, project)
            .scope_rules(self.config.catalog.rules().clone())
    }

    /// Mints a key from template `template` of `project` for a caller at `caller` (the socket
    /// peer or the address trusted proxies vouch for; `None` offline), at time `now`.
    ///
    /// # Errors
    ///
    /// A [`MintError`]: unknown project or template, deactivated template, caller outside the
    /// template's addresses or countries, or a request wider than the template.
    pub fn mint<'k>(
        &self,
        project: &str,
        template: &str,
        request: &MintRequest,
        caller: impl Into<Caller<'k>>,
        now: SystemTime,
    ) -> Result<Minted, MintError> {
        let caller = caller.into();
        if !self.config.projects.contains_key(project) {
            return Err(MintError::UnknownProject(project.to_owned()));
        }
        let t =
            self.config.template(project, template).ok_or_else(|| MintError::UnknownTemplate(template.to_owned()))?;
        if !t.active {
            return Err(MintError::TemplateInactive(t.id.clone()));
        }
        let key = match t.access {
            Access::ApiKey => {
                let key = caller.api_key.ok_or(MintError::ApiKeyRequired)?;
                Some(self.authenticate(key, project, now)?)
            }
            Access::Public => None,
        };
        let caller = self.check_caller(t, caller.ip, request.bind_ip)?;
        let permissions = self.permissions(t, key.as_ref(), request.permissions.as_deref())?;
        let upload_dirs = narrow_scope(&t.upload_dirs, request.dir_scope.as_ref(), "dir_scope")?;
        let list_dirs = narrow_scope(&t.list_dirs, request.directory_scope.as_ref(), "directory_scope")?;
        let expires_in = match request.expiration_duration {
            None => t.expiration_duration,
            Some(0) => return Err(MintError::InvalidExpiration),
            Some(s) => u32::try_from(s)
                .ok()
                .filter(|s| *s <= t.expiration_duration)
                .ok_or(MintError::ExpirationTooLong(t.expiration_duration))?,
        };
        let ips = match caller {
            Some(ip) if request.bind_ip => IpRules::new(vec![IpRange::from(ip)]),
            _ => t.ips.clone(),
        };

        let iat = unix_seconds(now);
        // A key minted through a permanent key never outlives it; `authenticate` made sure
        // that key is still valid, so `exp` stays after `iat`.
        let exp = match key.as_ref().and_then(ApiKeyGrant::expires_at) {
            Some(key_exp) => key_exp.min(iat.saturating_add(u64::from(expires_in))),
            None => iat.saturating_add(u64::from(expires_in)),
        };
        let expires_in = u32::try_from(exp.saturating_sub(iat)).unwrap_or(expires_in).min(expires_in);
        let jti = random_jti();
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            aud: Audience::One(project.to_owned()),
            sub: t.id.clone(),
            client_id: t.id.clone(),
            iat,
            nbf: iat,
            exp,
            jti: jti.clone(),
            scope: permissions.join(" "),
            ver: self.config.version,
            upload_dirs: upload_dirs.to_strings(),
            list_dirs: list_dirs.to_strings(),
            ips: ips.to_strings(),
            countries: t.countries.clone(),
            limits: t.limits.if_any(),
            api_keys: key
                .map(|k| {
                    let mut chain = k.claims().created_by.clone();
                    chain.push(k.id().to_owned());
                    chain
                })
                .unwrap_or_default(),
        };
        // Serialising plain strings and integers cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing = self.keys.signing();
        Ok(Minted {
            token: signing.sign_access_token(&payload),
            jti,
            kid: signing.kid().to_owned(),
            expires_in,
            expires_at: DateTime::<Utc>::from_timestamp(i64::try_from(exp).unwrap_or(i64::MAX), 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            permissions,
        })
    }

    /// Checks the caller against the template's addresses and countries; returns its canonical
    /// address when one is needed or known.
    fn check_caller(&self, t: &Template, caller: Option<IpAddr>, bind_ip: bool) -> Result<Option<IpAddr>, MintError> {
        let restricted = !t.ips.is_anywhere() || t.countries.is_some() || bind_ip;
        let Some(ip) = caller.map(|ip| ip.to_canonical()) else {
            return if restricted { Err(MintError::CallerIpRequired) } else { Ok(None) };
        };
        if !t.ips.contains(ip) {
            return Err(MintError::IpNotAllowed(ip));
        }
        if let Some(allowed) = &t.countries {
            let geoip = self.geoip.as_ref().ok_or(MintError::GeoIpUnavailable(None))?;
            let country = geoip
                .country(ip)
                .map_err(|e| MintError::GeoIpUnavailable(Some(e)))?
                .ok_or(MintError::CountryUnknown(ip))?;
            if !allowed.contains(&country) {
                return Err(MintError::CountryNotAllowed(country));
            }
        }
        Ok(Some(ip))
    }

    /// The permissions to grant: the template's (intersected with the API key's, if any),
    /// narrowed by the request. A request for more is refused.
    fn permissions(
        &self,
        t: &Template,
        key: Option<&ApiKeyGrant>,
        requested: Option<&[String]>,
    ) -> Result<Vec<String>, MintError> {
        let in_key = |p: &str| key.is_none_or(|k| k.has_permission(p));
        let Some(requested) = requested else {
            let granted: Vec<String> = t.permissions.iter().filter(|p| in_key(p)).cloned().collect();
            return if granted.is_empty() { Err(MintError::NoCommonPermission) } else { Ok(granted) };
        };
        if requested.is_empty() {
            return Err(MintError::EmptyPermissions);
        }
        let mut out: Vec<String> = Vec::with_capacity(requested.len());
        for p in requested {
            if !self.config.catalog.contains(p) {
                return Err(MintError::UnknownPermission(p.clone()));
            }
            if !t.permissions.contains(p) {
                return Err(MintError::PermissionNotInTemplate(p.clone()));
            }
            if !in_key(p) {
                return Err(MintError::PermissionNotInApiKey(p.clone()));
            }
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// Checks a permanent key presented to this issuer for `project`: signed by one of its keys,
    /// not deactivated in its config (nor any key that created it), and for this project.
    ///
    /// # Errors
    ///
    /// [`MintError::ApiKeyInvalid`], [`MintError::ApiKeyRevoked`] or
    /// [`MintError::ApiKeyWrongProject`].
    pub fn authenticate(&self, key: &str, project: &str, now: SystemTime) -> Result<ApiKeyGrant, MintError> {
        let mut grant = self.api_keys.verify_api_key(key, now).map_err(|e| match e {
            VerifyError::Revoked => MintError::ApiKeyRevoked,
            VerifyError::Expired => MintError::ApiKeyExpired,
            other => MintError::ApiKeyInvalid(other),
        })?;
        // The config is the source of truth: the key, or the operator-created key at the root of
        // the chain that created it, must be recorded and active, and its record bounds the
        // projects and permissions of everything beneath it.
        let root = grant.claims().created_by.first().map_or(grant.id(), String::as_str);
        let record = self.config.api_key(root).filter(|k| k.active).ok_or(MintError::ApiKeyUnknown)?;
        if !grant.projects().iter().any(|p| p == project) || !record.projects.iter().any(|p| p == project) {
            return Err(MintError::ApiKeyWrongProject);
        }
        grant.restrict_to(&record.permissions);
        // The record's expiry bounds the key and everything created beneath it; the issuer's
        // clock is the reference, so no leeway here.
        if let Some(exp) = record.expires_at_unix() {
            grant.expire_by(exp);
        }
        if grant.expires_at().is_some_and(|exp| unix_seconds(now) >= exp) {
            return Err(MintError::ApiKeyExpired);
        }
        Ok(grant)
    }

    /// Creates a permanent key: a fresh id, signed with the current signing key. The caller
    /// records the metadata (the CLI writes `[[api_keys]]`; the HTTP service writes the audit
    /// log).
    pub fn create_api_key(&self, new: &NewApiKey, now: SystemTime) -> CreatedApiKey {
        let id = format!("ak_{}", random_jti());
        let claims = ApiKeyClaims {
            iss: self.config.issuer.clone(),
            aud: new.projects.clone(),
            sub: id.clone(),
            jti: id.clone(),
            iat: unix_seconds(now),
            scope: new.permissions.join(" "),
            ver: self.config.version,
            exp: new.expires_at,
            created_by: new.created_by.clone(),
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let secret = self.keys.signing().sign_typed(API_KEY_TYP, &payload);
        CreatedApiKey { id, secret, claims }
    }

    /// Creates a permanent key for `project` on behalf of the holder of `creator` (its own
    /// permanent key), as `POST /{project}/v1/api-keys` does: the creator must hold the
    /// catalogue's manage permission, and the new key gets only permissions the creator holds.
    ///
    /// # Errors
    ///
    /// A [`MintError`]: an invalid or revoked creator, a missing manage permission, an
    /// escalation, an unknown permission or a bad name.
    pub fn create_api_key_as(
        &self,
        creator: &str,
        project: &str,
        name: &str,
        permissions: &[String],
        now: SystemTime,
    ) -> Result<(ApiKeyGrant, CreatedApiKey), MintError> {
        if !self.config.projects.contains_key(project) {
            return Err(MintError::UnknownProject(project.to_owned()));
        }
        let manage = self.config.catalog.manage_permission().ok_or(MintError::ApiKeyCreationDisabled)?;
        let grant = self.authenticate(creator, project, now)?;
        if !grant.has_permission(manage) {
            return Err(MintError::ManagePermissionMissing(manage.to_owned()));
        }
        if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
            return Err(MintError::InvalidName);
        }
        if permissions.is_empty() {
            return Err(MintError::EmptyPermissions);
        }
        let mut granted: Vec<String> = Vec::with_capacity(permissions.len());
        for p in permissions {
            if !self.config.catalog.contains(p) {
                return Err(MintError::UnknownPermission(p.clone()));
            }
            if !grant.has_permission(p) {
                return Err(MintError::PermissionEscalation(p.clone()));
            }
            if !granted.contains(p) {
                granted.push(p.clone());
            }
        }
        let mut created_by = grant.claims().created_by.clone();
        created_by.push(grant.id().to_owned());
        if created_by.len() > MAX_CREATION_DEPTH {
            return Err(MintError::CreationChainTooDeep);
        }
        // A key never outlives the key that created it, nor the record at the root of its chain.
        let expires_at = grant.expires_at();
        let new = NewApiKey { projects: vec![project.to_owned()], permissions: granted, expires_at, created_by };
        let created = self.create_api_key(&new, now);
        Ok((grant, created))
    }

    /// Signs the current revocation list: deactivated API keys and templates of this config,
    /// fresh for `revocations_max_age`.
    pub fn revocation_list(&self, now: SystemTime) -> SignedRevocations {
        let iat = unix_seconds(now);
        let exp = iat + u64::from(self.config.revocations_max_age);
        let claims = RevocationClaims {
            iss: self.config.issuer.clone(),
            iat,
            exp,
            ver: self.config.version,
            revoked_api_keys: self.config.revoked_api_keys(),
            revoked_templates: self.config.revoked_templates(),
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        SignedRevocations { token: self.keys.signing().sign_typed(REVOCATIONS_TYP, &payload), iat, exp }
    }
}

fn narrow_scope(
    template: &ScopeSet,
    requested: Option<&OneOrMany>,
    field: &'static str,
) -> Result<ScopeSet, MintError> {
    let Some(requested) = requested else {
        return Ok(template.clone());
    };
    let texts = requested.clone().into_vec();
    if texts.len() > 64 {
        return Err(MintError::InvalidScope { field, error: ScopeError::TooLong });
    }
    let set = ScopeSet::parse(&texts).map_err(|(_, error)| MintError::InvalidScope { field, error })?;
    if !template.covers(&set) {
        return Err(MintError::ScopeNotInTemplate(field));
    }
    Ok(set)
}

/// 128 random bits from the operating system, base64url.
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    crate::b64::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::SigningKey;
    use crate::verify::VerifyError;
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};

    const CONFIG: &str = r#"
version = 9
issuer = "https://keys.example.com"
[projects.demo]
[projects.other]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST", "FILE_DELETE"]
expiration_duration = 600
[templates.upload]
limit_per_min = 5
dir_scope = ["/uploads/*", "/inbox"]
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8", "2001:db8::/32"]
[[templates]]
id = "open"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "off"
project = "demo"
active = false
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "elsewhere"
project = "other"
permissions = ["OBJECTS_LIST"]
"#;

    fn issuer() -> Issuer {
        let config = Config::from_toml(CONFIG, Path::new(".")).unwrap();
        let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
        Issuer::from_parts(config, Keyring::single(key), None)
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn request(json: &str) -> MintRequest {
        MintRequest::from_json(json.as_bytes()).unwrap()
    }

    fn mint(template: &str, req: &str, caller: Option<IpAddr>) -> Result<Minted, MintError> {
        issuer().mint("demo", template, &request(req), caller, now())
    }

    #[test]
    fn mints_the_template() {
        let issuer = issuer();
        let minted = issuer.mint("demo", "widget", &MintRequest::default(), ip("10.2.3.4"), now()).unwrap();
        assert_eq!(minted.expires_in, 600);
        assert_eq!(minted.expires_at.timestamp(), 1_800_000_600);
        assert_eq!(minted.kid, issuer.keyring().signing().kid());
        let grant = issuer.verifier("demo").verify(&minted.token, now()).unwrap();
        let c = grant.claims();
        assert_eq!(
            (c.iss.as_str(), c.sub.as_str(), c.client_id.as_str()),
            ("https://keys.example.com", "widget", "widget")
        );
        assert!(c.aud.contains("demo"));
        assert_eq!((c.iat, c.nbf, c.exp, c.ver), (1_800_000_000, 1_800_000_000, 1_800_000_600, 9));
        assert_eq!(c.scope, "FILE_UPLOAD OBJECTS_LIST FILE_DELETE");
        assert_eq!(c.upload_dirs, ["/uploads/*", "/inbox"]);
        assert_eq!(c.list_dirs, ["/*"]);
        assert_eq!(c.ips, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(c.countries, None);
        assert_eq!(c.limits, Some(crate::Limits { per_min: Some(5), per_source_ip: None }));
        assert_eq!(crate::b64::decode(&c.jti).unwrap().len(), 16, "128-bit jti");
        assert_eq!(c.jti, minted.jti);
        // Not for another project.
        assert_eq!(issuer.verifier("other").verify(&minted.token, now()).unwrap_err(), VerifyError::WrongAudience);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let minted = mint("open", "{}", None).unwrap();
        let text = format!("{minted:?}");
        assert!(text.contains("[redacted]") && text.contains(&minted.jti));
        assert!(!text.contains(&minted.token));
    }

    #[test]
    fn jti_is_unique() {
        let a = mint("open", "{}", None).unwrap();
        let b = mint("open", "{}", None).unwrap();
        assert_ne!(a.jti, b.jti);
        assert_ne!(a.token, b.token);
    }

    #[test]
    fn unrestricted_template_is_explicit_about_anywhere() {
        let issuer = issuer();
        let minted = issuer.mint("demo", "open", &MintRequest::default(), None, now()).unwrap();
        let grant = issuer.verifier("demo").verify(&minted.token, now()).unwrap();
        assert_eq!(grant.claims().ips, ["0.0.0.0/0", "::/0"]);
        assert_eq!(grant.claims().upload_dirs, ["/*"]);
        assert_eq!(grant.claims().limits, None);
    }

    #[test]
    fn refusals() {
        let i = issuer();
        let none = MintRequest::default();
        assert!(matches!(i.mint("nope", "widget", &none, None, now()), Err(MintError::UnknownProject(_))));
        assert!(matches!(i.mint("demo", "nope", &none, None, now()), Err(MintError::UnknownTemplate(_))));
        // A template of another project is unknown here, not a different error.
        assert!(matches!(i.mint("demo", "elsewhere", &none, None, now()), Err(MintError::UnknownTemplate(_))));
        assert!(matches!(i.mint("demo", "off", &none, None, now()), Err(MintError::TemplateInactive(_))));
        assert!(matches!(mint("widget", "{}", None), Err(MintError::CallerIpRequired)));
        assert!(matches!(mint("widget", "{}", ip("192.0.2.1")), Err(MintError::IpNotAllowed(_))));
        assert!(mint("widget", "{}", ip("::ffff:10.0.0.1")).is_ok(), "mapped IPv4 matches");
        assert!(mint("widget", "{}", ip("2001:db8::1")).is_ok());
    }

    #[test]
    fn requests_may_only_narrow() {
        let caller = ip("10.0.0.1");
        let ok = mint("widget", r#"{"permissions":["FILE_UPLOAD","FILE_UPLOAD"],"dir_scope":"/uploads/me/*","directory_scope":["/pub"],"expiration_duration":60,"bind_ip":true}"#, caller).unwrap();
        assert_eq!(ok.permissions, ["FILE_UPLOAD"]);
        assert_eq!(ok.expires_in, 60);
        let grant = issuer().verifier("demo").verify(&ok.token, now()).unwrap();
        assert_eq!(grant.claims().upload_dirs, ["/uploads/me/*"]);
        assert_eq!(grant.claims().list_dirs, ["/pub"]);
        assert_eq!(grant.claims().ips, ["10.0.0.1/32"]);

        let refused = |body: &str| mint("widget", body, caller).unwrap_err().code();
        assert_eq!(refused(r#"{"permissions":["ACCESS_MANAGE"]}"#), "permission_not_in_template");
        assert_eq!(refused(r#"{"permissions":["FILE_TELEPORT"]}"#), "unknown_permission");
        assert_eq!(refused(r#"{"permissions":[]}"#), "empty_permissions");
        assert_eq!(refused(r#"{"dir_scope":"/*"}"#), "scope_not_in_template");
        assert_eq!(refused(r#"{"dir_scope":"/inbox/*"}"#), "scope_not_in_template");
        assert_eq!(refused(r#"{"dir_scope":"/uploads2"}"#), "scope_not_in_template");
        assert_eq!(refused(r#"{"dir_scope":"/uploads/../etc"}"#), "invalid_scope");
        assert_eq!(refused(r#"{"dir_scope":[]}"#), "invalid_scope");
        assert_eq!(refused(r#"{"expiration_duration":601}"#), "expiration_too_long");
        assert_eq!(refused(r#"{"expiration_duration":99999999999}"#), "expiration_too_long");
        assert_eq!(refused(r#"{"expiration_duration":0}"#), "invalid_expiration");
        assert!(matches!(mint("open", r#"{"bind_ip":true}"#, None), Err(MintError::CallerIpRequired)));
    }

    #[test]
    fn lookalike_dot_segments_are_refused_in_requests_and_config() {
        let caller = ip("10.0.0.1");
        let refused = |body: &str| mint("widget", body, caller).unwrap_err().code();
        assert_eq!(refused(r#"{"dir_scope":"/uploads/\uFF0E\uFF0E/\uFF0E\uFF0E/etc"}"#), "invalid_scope");
        assert_eq!(refused(r#"{"dir_scope":"/uploads/.\u200B./*"}"#), "invalid_scope");
        assert_eq!(refused(r#"{"dir_scope":"/uploads/a\uFF0Fb"}"#), "invalid_scope");
        let ok = mint("widget", r#"{"dir_scope":["/uploads/写真/２０２６/*","/uploads/café"]}"#, caller).unwrap();
        let grant = issuer().verifier("demo").verify(&ok.token, now()).unwrap();
        assert_eq!(grant.claims().upload_dirs, ["/uploads/写真/２０２６/*", "/uploads/café"]);

        let lookalike =
            CONFIG.replace(r#"dir_scope = ["/uploads/*", "/inbox"]"#, r#"dir_scope = ["/uploads/\uFF0E\uFF0E/*"]"#);
        assert_ne!(lookalike, CONFIG);
        let err = Config::from_toml(&lookalike, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("dir_scope"), "{err}");
    }

    #[test]
    fn record_expiry_is_an_instant() {
        let text = format!(
            "{CONFIG}\n[[api_keys]]\nid = \"ak_day\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nexpires_at = 2027-01-15\n\
             [[api_keys]]\nid = \"ak_instant\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nexpires_at = 2027-01-15T01:00:00+01:00\n\
             [[api_keys]]\nid = \"ak_never\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n"
        );
        let config = Config::from_toml(&text, Path::new(".")).unwrap();
        let exp = |id: &str| config.api_key(id).unwrap().expires_at_unix();
        // A bare date ends the key when that day starts (UTC): the earlier reading.
        assert_eq!(exp("ak_day"), Some(1_799_971_200));
        assert_eq!(exp("ak_instant"), Some(1_799_971_200));
        assert_eq!(exp("ak_never"), None);
        assert!(config.api_key("ak_day").unwrap().is_expired(1_799_971_200));
        assert!(!config.api_key("ak_day").unwrap().is_expired(1_799_971_199));
    }

    #[test]
    fn request_body_is_strict() {
        for bad in [
            r#"{"permission":["FILE_UPLOAD"]}"#,
            r#"{"expiration_duration":-1}"#,
            r#"{"expiration_duration":1.5}"#,
            r#"{"bind_ip":"yes"}"#,
            "[]",
            "[[]]",
            "null",
            "{",
            "",
        ] {
            let err = MintRequest::from_json(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "invalid_body", "{bad}");
        }
        assert!(MintRequest::from_json(b" {\"bind_ip\": false} ").is_ok());
    }

    #[test]
    fn country_restriction_fails_closed_without_database() {
        let text = r#"
version = 1
issuer = "i"
[server]
geoip_database = "/nonexistent/country.mmdb"
[projects.demo]
[[templates]]
id = "fr-only"
project = "demo"
permissions = ["OBJECTS_LIST"]
[templates.restrict]
whitelist_countries = ["FR"]
"#;
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        // The issuer does not start with a missing database...
        assert!(Issuer::new(config.clone(), Keyring::single(SigningKey::generate())).is_err());
        // ...and one built without it refuses country-restricted mints.
        let issuer = Issuer::from_parts(config, Keyring::single(SigningKey::generate()), None);
        let err = issuer.mint("demo", "fr-only", &MintRequest::default(), ip("8.8.8.8"), now()).unwrap_err();
        assert_eq!(err.code(), "geoip_unavailable");
        let err = issuer.mint("demo", "fr-only", &MintRequest::default(), None, now()).unwrap_err();
        assert_eq!(err.code(), "caller_ip_required");
    }
}
