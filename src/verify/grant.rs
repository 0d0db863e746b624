//! What a verified token allows: [`Grant`] for access tokens, [`ApiKeyGrant`] for permanent
//! keys. Only the verifier constructs them.

use super::{MAX_LIST_ENTRIES, VerifyError};
use crate::policy::dir_scope::{ScopeSet, file_directory};
use crate::policy::ip::IpRules;
use crate::policy::media::{MediaRange, media_type_of};
use crate::policy::scope_rules::{ScopeKind, ScopeRules};
use crate::token::claims::{AccessClaims, ApiKeyClaims};
use crate::verify::Denied;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second of year 9999, beyond which no expiry is told apart.
const MAX_TIME_SECS: u64 = 253_402_300_799;

/// What a verified permanent API key allows. Only [`Verifier::verify_api_key`](crate::Verifier::verify_api_key) makes one.
#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    claims: ApiKeyClaims,
    permissions: Vec<String>,
    expires_at: Option<u64>,
}

impl ApiKeyGrant {
    pub(super) fn from_claims(claims: ApiKeyClaims) -> Self {
        let permissions = claims.permissions().map(str::to_owned).collect();
        Self { expires_at: claims.exp, claims, permissions }
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.claims.jti
    }

    /// Keeps only the permissions also in `allowed`, such as a backend's own record of the
    /// key. Only ever narrows the grant.
    pub fn restrict_permissions(&mut self, allowed: &[String]) {
        self.permissions.retain(|p| allowed.contains(p));
    }

    /// Moves the key's end earlier to `at`, such as the `expires_at` of a backend's own record
    /// of the key, if that is earlier than the end it has. Only ever narrows the grant; times
    /// are kept to the second, rounded down (earlier).
    pub fn expire_by(&mut self, at: SystemTime) {
        let exp = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.expires_at = Some(self.expires_at.map_or(exp, |own| own.min(exp)));
    }

    /// When the key stops being accepted: its own `exp`, and for a key checked by keysmith
    /// itself the earlier of that and its record's `expires_at`. `None` for a key that never
    /// expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        // A permanent key's `exp` has no upper bound: clamp rather than overflow `SystemTime`.
        self.expires_at.map(|exp| UNIX_EPOCH + Duration::from_secs(exp.min(MAX_TIME_SECS)))
    }

    /// Whether the key carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// The granted permissions.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }

    /// The projects the key may be used for.
    pub fn projects(&self) -> &[String] {
        &self.claims.aud
    }

    /// The verified claims.
    pub fn claims(&self) -> &ApiKeyClaims {
        &self.claims
    }
}

/// What a verified access token allows. Only [`Verifier::verify`](crate::Verifier::verify) makes one.
#[derive(Debug, Clone)]
pub struct Grant {
    claims: AccessClaims,
    permissions: Vec<String>,
    upload: ScopeSet,
    list: ScopeSet,
    ips: IpRules,
    /// The `upload_types` claim, parsed; `None` when any type is allowed.
    upload_types: Option<Vec<MediaRange>>,
    rules: Arc<ScopeRules>,
}

impl Grant {
    pub(super) fn from_claims(claims: AccessClaims, rules: Arc<ScopeRules>) -> Result<Self, VerifyError> {
        let permissions: Vec<String> = claims.permissions().map(str::to_owned).collect();
        let too_many = |n: usize| n > MAX_LIST_ENTRIES;
        if too_many(permissions.len())
            || too_many(claims.upload_dirs.len())
            || too_many(claims.list_dirs.len())
            || too_many(claims.ips.len())
            || too_many(claims.upload_types.as_ref().map_or(0, Vec::len))
        {
            return Err(VerifyError::InvalidClaims(format!("a list claim holds more than {MAX_LIST_ENTRIES} entries")));
        }
        let scopes = |dirs: &[String]| ScopeSet::parse(dirs).map_err(|e| VerifyError::InvalidScope(e.source));
        let upload = scopes(&claims.upload_dirs)?;
        let list = scopes(&claims.list_dirs)?;
        let ips = IpRules::parse(&claims.ips).map_err(|e| VerifyError::InvalidIpRange(e.source))?;
        if ips.ranges().is_empty() {
            return Err(VerifyError::InvalidClaims("ips is empty".into()));
        }
        let upload_types = match &claims.upload_types {
            None => None,
            Some(types) if types.is_empty() => return Err(VerifyError::InvalidClaims("upload_types is empty".into())),
            Some(types) => Some(
                types
                    .iter()
                    .map(|t| MediaRange::parse(t).map_err(|e| VerifyError::InvalidClaims(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self { claims, permissions, upload, list, ips, upload_types, rules })
    }

    /// Decides one operation: may the holder use `permission` on directory `dir` from address
    /// `ip`?
    ///
    /// The permission must be granted. When the token is IP-restricted, `ip` must be given and
    /// allowed. When the permission is checked against a directory scope (see
    /// [`ScopeRules`]), `dir` must be given, is normalised, and must lie in that scope; for
    /// other permissions `dir` is not consulted.
    ///
    /// `dir` is the directory the operation acts on, never a file: an exact scope `/uploads`
    /// allows `dir = "/uploads"` (files directly in it) and nothing below it, a subtree scope
    /// `/uploads/*` allows `/uploads` and every directory below it. For an operation on a file,
    /// use [`Grant::authorize_file`], which derives the directory from the file's path.
    ///
    /// # Errors
    ///
    /// A [`Denied`] saying why.
    pub fn authorize(&self, permission: &str, dir: Option<&str>, ip: Option<IpAddr>) -> Result<(), Denied> {
        self.decide(permission, dir.map(Cow::Borrowed), ip)
    }

    /// Decides one operation on the file at `path`: as [`Grant::authorize`] on the directory
    /// the file lies in (`/uploads/a/photo.jpg` → `/uploads/a`), in the same decision path.
    ///
    /// The whole path is normalised first (`//` and `.` collapse, `..` anywhere is refused), and
    /// the file name must be a real name: an empty name (`/uploads/a/`) or `.` is refused, so
    /// the name can never step out of the directory that was authorised. A malformed path is
    /// refused whatever the permission.
    ///
    /// # Errors
    ///
    /// A [`Denied`] saying why; [`Denied::InvalidPath`] for a malformed path or file name.
    ///
    /// ```no_run
    /// # fn check(grant: &keysmith::Grant) -> Result<(), keysmith::Denied> {
    /// use keysmith::permission::FILE_UPLOAD;
    /// grant.authorize_file(FILE_UPLOAD, "/uploads/avatars/me.png", Some([203, 0, 113, 7].into()))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn authorize_file(&self, permission: &str, path: &str, ip: Option<IpAddr>) -> Result<(), Denied> {
        let dir = file_directory(path).map_err(Denied::InvalidPath)?;
        self.decide(permission, Some(Cow::Owned(dir)), ip)
    }

    /// The one decision behind [`Grant::authorize`] and [`Grant::authorize_file`].
    fn decide(&self, permission: &str, dir: Option<Cow<'_, str>>, ip: Option<IpAddr>) -> Result<(), Denied> {
        if !self.has_permission(permission) {
            return Err(Denied::PermissionMissing(permission.to_owned()));
        }
        if !self.ips.is_anywhere() {
            let ip = ip.ok_or(Denied::IpRequired)?;
            if !self.ips.contains(ip) {
                return Err(Denied::IpNotAllowed(ip.to_canonical()));
            }
        }
        let (scope, name) = match self.rules.kind(permission) {
            Some(ScopeKind::Upload) => (&self.upload, "upload"),
            Some(ScopeKind::List) => (&self.list, "listing"),
            Some(ScopeKind::None) => return Ok(()),
            // Fail closed: without a rule we cannot know which directory check applies.
            None => return Err(Denied::NoScopeRule(permission.to_owned())),
        };
        let dir = dir.ok_or_else(|| Denied::DirectoryRequired(permission.to_owned()))?;
        match scope.allows(&dir) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Denied::OutsideScope(name)),
            Err(e) => Err(Denied::InvalidPath(e)),
        }
    }

    /// When the token expires (its `exp`). The verifier accepts it until then plus its leeway.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.claims.exp.min(MAX_TIME_SECS))
    }

    /// Decides an upload: [`Grant::authorize`] for `permission` (the upload permission of the
    /// catalogue, `FILE_UPLOAD` for Scaleflex's) in `dir` from `ip`, then the token's upload
    /// limits against the upload's `size` in bytes and its `content_type` (a `Content-Type`
    /// value; parameters are ignored and media types compare without regard to case). The one
    /// decision path for uploads: a gate calls it with the original request's
    /// `Content-Length` and `Content-Type`.
    ///
    /// # Errors
    ///
    /// Any [`Denied`] of [`Grant::authorize`]; [`Denied::FileTooLarge`] above
    /// `upload_max_bytes`; [`Denied::LengthRequired`] when the token limits size and `size` is
    /// `None`; [`Denied::ContentTypeNotAllowed`] when the token limits types and the type is
    /// outside them, missing or not a single media type. Without limits in the token, only
    /// [`Grant::authorize`] applies.
    pub fn authorize_upload(
        &self,
        permission: &str,
        dir: Option<&str>,
        ip: Option<IpAddr>,
        size: Option<u64>,
        content_type: Option<&str>,
    ) -> Result<(), Denied> {
        self.authorize(permission, dir, ip)?;
        if let Some(max) = self.claims.upload_max_bytes {
            let size = size.ok_or(Denied::LengthRequired)?;
            if size > max {
                return Err(Denied::FileTooLarge { size, max });
            }
        }
        if let Some(allowed) = &self.upload_types {
            let shown = || content_type.map_or_else(|| "(none)".to_owned(), |t| t.chars().take(64).collect());
            let sent = content_type.and_then(media_type_of).ok_or_else(|| Denied::ContentTypeNotAllowed(shown()))?;
            if !allowed.iter().any(|range| range.matches(&sent)) {
                return Err(Denied::ContentTypeNotAllowed(sent.to_string()));
            }
        }
        Ok(())
    }

    /// Checks a caller's country (ISO 3166-1 alpha-2, from the service's own GeoIP lookup)
    /// against the token's `countries`. The issuer already enforced them at mint; this is for
    /// services that want to enforce them per request too. Unrestricted tokens allow any.
    ///
    /// # Errors
    ///
    /// [`Denied::CountryNotAllowed`].
    pub fn authorize_country(&self, country: &str) -> Result<(), Denied> {
        match &self.claims.countries {
            Some(allowed) if !allowed.iter().any(|c| c == country) => {
                Err(Denied::CountryNotAllowed(country.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// Whether the token carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// The granted permissions.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }

    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// The token id (`jti`), for logs and audit.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// The template the token was minted from (`sub`).
    pub fn template(&self) -> &str {
        &self.claims.sub
    }

    /// Upload scopes.
    pub fn upload_dirs(&self) -> &ScopeSet {
        &self.upload
    }

    /// Listing scopes.
    pub fn list_dirs(&self) -> &ScopeSet {
        &self.list
    }

    /// Allowed IP ranges.
    pub fn ips(&self) -> &IpRules {
        &self.ips
    }
}
