//! Minting short-lived access keys: a template, an optional narrowing request and the
//! caller in, a signed `at+jwt` out.

use super::*;
use crate::config::raw::OneOrMany;
use crate::config::{Access, Template};
use crate::policy::dir_scope::{ScopeError, ScopeSet};
use crate::policy::ip::{IpRange, IpRules};
use crate::policy::media::MediaRange;
use crate::token::claims::{AccessClaims, Audience};
use crate::token::jws::{TokenType, unverified_type};
use crate::verify::{ApiKeyGrant, unix_seconds};
use chrono::{DateTime, Utc};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::SystemTime;

/// What a caller may ask for when minting. Every field may only narrow the template; anything
/// wider is refused, never clamped.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
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
    /// A largest upload in bytes no larger than the template's. Default: the template's.
    #[serde(default)]
    pub max_file_size: Option<u64>,
    /// Media types or ranges within the template's `upload.content_types`. Default: the
    /// template's.
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
}

impl MintRequest {
    /// Parses a JSON request body, which must be an object with only the fields above.
    ///
    /// # Errors
    ///
    /// [`MintError::InvalidBody`] describing what is wrong.
    pub fn from_json(body: &[u8]) -> Result<Self, MintError> {
        super::json_object(body)
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

impl Issuer {
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
            // A permanent key presented to a public template must still be valid: its holder
            // is told that it was revoked, expired or forged rather than served as if it had
            // sent none. Only a token whose header says it is a permanent key is checked: an
            // old access token resent by a widget, or a gateway's own bearer token, is no
            // claim to be one. A key of another project says nothing about this one: ignored.
            Access::Public => {
                if let Some(key) = caller.api_key.filter(|k| unverified_type(k) == Some(TokenType::ApiKey)) {
                    match self.authenticate(key, project, now) {
                        Ok(_) | Err(MintError::ApiKeyWrongProject) => {}
                        Err(e) => return Err(e),
                    }
                }
                None
            }
        };
        let caller = self.check_caller(t, caller.ip, request.bind_ip)?;
        let permissions = self.permissions(t, key.as_ref(), request.permissions.as_deref())?;
        let upload_dirs = narrow_scope(&t.upload_dirs, request.dir_scope.as_ref(), "dir_scope")?;
        let list_dirs = narrow_scope(&t.list_dirs, request.directory_scope.as_ref(), "directory_scope")?;
        let (upload_max_bytes, upload_types) = narrow_upload(t, request)?;
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
        let exp = match key.as_ref().and_then(ApiKeyGrant::expires_at).map(unix_seconds) {
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
            scope: crate::token::claims::scope_claim(&permissions),
            ver: self.config.version,
            upload_dirs: upload_dirs.to_strings(),
            list_dirs: list_dirs.to_strings(),
            ips: ips.to_strings(),
            countries: t.countries.clone(),
            limits: t.limits.if_any(),
            upload_max_bytes,
            upload_types,
            api_keys: key
                .map(|k| {
                    let mut chain = k.claims().created_by.clone();
                    chain.push(k.id().to_owned());
                    chain
                })
                .unwrap_or_default(),
        };
        let signing = self.keys.signing();
        Ok(Minted {
            token: self.sign(TokenType::Access, &claims)?,
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
    let set = ScopeSet::parse(&texts).map_err(|e| MintError::InvalidScope { field, error: e.source })?;
    if !template.covers(&set) {
        return Err(MintError::ScopeNotInTemplate(field));
    }
    Ok(set)
}

/// 128 random bits from the operating system, base64url.
pub(super) fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    crate::token::b64::encode(bytes)
}

/// The upload limits of a key: the template's, narrowed by the request. A request may set a
/// limit the template leaves open, and never loosen one it sets.
fn narrow_upload(t: &Template, request: &MintRequest) -> Result<(Option<u64>, Option<Vec<String>>), MintError> {
    let max = match (t.max_file_size, request.max_file_size) {
        (_, Some(0)) => return Err(MintError::InvalidBody("max_file_size must be at least 1 byte".into())),
        (Some(limit), Some(asked)) if asked > limit => return Err(MintError::ScopeNotInTemplate("max_file_size")),
        (limit, asked) => asked.or(limit),
    };
    let types = match &request.content_types {
        None => t.content_types.clone(),
        Some(asked) => {
            if asked.is_empty() || asked.len() > crate::verify::MAX_LIST_ENTRIES {
                return Err(MintError::InvalidBody("content_types must hold 1 to 256 entries".into()));
            }
            let mut out: Vec<MediaRange> = Vec::with_capacity(asked.len());
            for text in asked {
                let range = MediaRange::parse(text).map_err(|e| MintError::InvalidBody(e.to_string()))?;
                if t.content_types.as_ref().is_some_and(|allowed| !allowed.iter().any(|a| a.covers(&range))) {
                    return Err(MintError::ScopeNotInTemplate("content_types"));
                }
                if !out.contains(&range) {
                    out.push(range);
                }
            }
            Some(out)
        }
    };
    Ok((max, types.map(|list| list.iter().map(ToString::to_string).collect())))
}
