//! The offline verifier: a token and a JWKS in, a [`Grant`] or a typed refusal out.
//!
//! Nothing here touches the network, an async runtime or the issuer's config.

use crate::b64;
use crate::catalog::{ScopeKind, ScopeRules};
use crate::claims::{ACCESS_TOKEN_TYP, AccessClaims};
use crate::ip::{IpRangeError, IpRules};
use crate::jwk::KeySet;
use crate::scope::{ScopeError, ScopeSet};
use ed25519_dalek::Signature;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default longest token accepted, in bytes, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default longest lifetime (`exp - iat`) accepted: 7 days, the longest a template may set.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most entries accepted in each list claim (`scope`, `upload_dirs`, `list_dirs`, `ips`).
pub const MAX_LIST_ENTRIES: usize = 256;
/// Longest header accepted after base64 decoding, in bytes.
const MAX_HEADER_LEN: usize = 1024;

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
    /// The header's `alg` is not exactly `EdDSA`.
    #[error("algorithm not allowed: only EdDSA is accepted")]
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
        }
    }
}

/// Why an operation was denied by a valid [`Grant`].
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
    /// The token is restricted to countries and the given one is not among them.
    #[error("country {0} is not allowed")]
    CountryNotAllowed(String),
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
            Self::CountryNotAllowed(_) => "country_not_allowed",
        }
    }
}

/// Verifies keysmith access tokens offline against a fixed key set.
///
/// Secure by default: only `EdDSA` with strict Ed25519 verification, `typ` must be `at+jwt`,
/// any `crit`, `b64` or `zip` is refused, `kid` must name a key in the set (`jku`, `x5u`, `jwk`
/// and `x5c` are never used), `iss` and `aud` must match exactly, `exp`, `nbf` and `iat` are
/// checked with [`DEFAULT_LEEWAY`], and tokens over [`DEFAULT_MAX_TOKEN_LEN`] bytes are refused
/// before decoding.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
    max_lifetime: u64,
    max_token_len: usize,
    rules: Arc<ScopeRules>,
}

impl Verifier {
    /// A verifier for tokens from `issuer` addressed to `audience` (a project id), signed by a
    /// key in `keys`.
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_lifetime: DEFAULT_MAX_LIFETIME.as_secs(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            rules: Arc::new(ScopeRules::default()),
        }
    }

    /// Also accepts tokens addressed to `audience`.
    pub fn also_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat`. Defaults to [`DEFAULT_LEEWAY`]; a larger value
    /// lets expired tokens live longer.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Longest lifetime (`exp - iat`) accepted. Defaults to [`DEFAULT_MAX_LIFETIME`].
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.as_secs();
        self
    }

    /// Longest token accepted, in bytes. Defaults to [`DEFAULT_MAX_TOKEN_LEN`].
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_token_len = max;
        self
    }

    /// Which directory scope each permission is checked against. Defaults to
    /// [`ScopeRules::scaleflex`]; set this when the issuer uses a custom catalogue.
    pub fn scope_rules(mut self, rules: ScopeRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies an access token at time `now` and returns what it grants.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the token was refused.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, VerifyError> {
        let claims: AccessClaims =
            verify_jws(&self.keys, token, self.max_token_len, ACCESS_TOKEN_TYP)?;
        self.check_registered(&claims, unix_seconds(now))?;
        Grant::from_claims(claims, Arc::clone(&self.rules))
    }

    fn check_registered(&self, c: &AccessClaims, now: u64) -> Result<(), VerifyError> {
        if c.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !self.audiences.iter().any(|a| c.aud.contains(a)) {
            return Err(VerifyError::WrongAudience);
        }
        if c.exp <= c.iat {
            return Err(VerifyError::InvalidClaims("exp is not after iat".into()));
        }
        if c.exp - c.iat > self.max_lifetime {
            return Err(VerifyError::LifetimeTooLong);
        }
        if now >= c.exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired);
        }
        if c.nbf > now.saturating_add(self.leeway) {
            return Err(VerifyError::NotYetValid);
        }
        if c.iat > now.saturating_add(self.leeway) {
            return Err(VerifyError::IssuedInFuture);
        }
        for (name, value) in [
            ("sub", &c.sub),
            ("client_id", &c.client_id),
            ("jti", &c.jti),
        ] {
            if value.is_empty() || value.len() > 256 {
                return Err(VerifyError::InvalidClaims(format!(
                    "{name} must be 1 to 256 bytes"
                )));
            }
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch; times before it count as 0.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The JOSE header members this verifier reads. Members it does not name (`jku`, `x5u`, `jwk`,
/// `x5c`, …) are ignored, never followed.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<IgnoredAny>,
    b64: Option<IgnoredAny>,
    zip: Option<IgnoredAny>,
}

/// Checks a compact JWS against `keys` and decodes its payload into `T`.
///
/// The order matters: size, shape, header (alg pinned to EdDSA, typ, crit, kid) before any
/// signature work, and the payload is parsed only after the signature verified.
pub(crate) fn verify_jws<T: DeserializeOwned>(
    keys: &KeySet,
    token: &str,
    max_len: usize,
    typ: &'static str,
) -> Result<T, VerifyError> {
    if token.len() > max_len {
        return Err(VerifyError::TooLarge(max_len));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "a compact JWS has exactly three segments",
        ));
    };
    if header_b64.len() > MAX_HEADER_LEN * 4 / 3 + 4 {
        return Err(VerifyError::Malformed("header too large"));
    }
    let header: Header = decode_json(header_b64, "header")?;
    if header.alg != "EdDSA" {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    if header.crit.is_some() {
        return Err(VerifyError::CriticalHeader);
    }
    if header.b64.is_some() {
        return Err(VerifyError::UnsupportedHeader("b64"));
    }
    if header.zip.is_some() {
        return Err(VerifyError::UnsupportedHeader("zip"));
    }
    if !header.typ.as_deref().is_some_and(|t| typ_matches(t, typ)) {
        return Err(VerifyError::WrongType { expected: typ });
    }
    let kid = header.kid.ok_or(VerifyError::MissingKid)?;
    let key = keys.get(&kid).ok_or(VerifyError::UnknownKid)?;
    let sig = b64::decode_array::<64>(sig_b64).ok_or(VerifyError::BadSignature)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    key.verify_strict(
        &token.as_bytes()[..signing_input_len],
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| VerifyError::BadSignature)?;
    decode_json(payload_b64, "payload")
}

/// `typ` compares case-insensitively and may carry the `application/` prefix (RFC 7515 §4.1.9).
fn typ_matches(got: &str, want: &str) -> bool {
    let got = match got.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &got[12..],
        _ => got,
    };
    got.eq_ignore_ascii_case(want)
}

fn decode_json<T: DeserializeOwned>(segment: &str, what: &'static str) -> Result<T, VerifyError> {
    let bytes = b64::decode(segment).ok_or(VerifyError::Malformed(match what {
        "header" => "header is not canonical base64url",
        _ => "payload is not canonical base64url",
    }))?;
    // serde would also read a struct from a JSON array; a JOSE header or claims set is an object.
    if bytes.first() != Some(&b'{') {
        return Err(VerifyError::Malformed(match what {
            "header" => "header is not a JSON object",
            _ => "payload is not a JSON object",
        }));
    }
    serde_json::from_slice(&bytes).map_err(|e| match what {
        "header" => VerifyError::Malformed("header is not a valid JOSE header"),
        _ => VerifyError::InvalidClaims(e.to_string()),
    })
}

/// What a verified access token allows. Only [`Verifier::verify`] makes one.
#[derive(Debug, Clone)]
pub struct Grant {
    claims: AccessClaims,
    permissions: Vec<String>,
    upload: ScopeSet,
    list: ScopeSet,
    ips: IpRules,
    rules: Arc<ScopeRules>,
}

impl Grant {
    fn from_claims(claims: AccessClaims, rules: Arc<ScopeRules>) -> Result<Self, VerifyError> {
        let permissions: Vec<String> = claims
            .scope
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let too_many = |n: usize| n > MAX_LIST_ENTRIES;
        if too_many(permissions.len())
            || too_many(claims.upload_dirs.len())
            || too_many(claims.list_dirs.len())
            || too_many(claims.ips.len())
        {
            return Err(VerifyError::InvalidClaims(format!(
                "a list claim holds more than {MAX_LIST_ENTRIES} entries"
            )));
        }
        let scopes =
            |dirs: &[String]| ScopeSet::parse(dirs).map_err(|(_, e)| VerifyError::InvalidScope(e));
        let upload = scopes(&claims.upload_dirs)?;
        let list = scopes(&claims.list_dirs)?;
        let ips = IpRules::parse(&claims.ips).map_err(|(_, e)| VerifyError::InvalidIpRange(e))?;
        if ips.ranges().is_empty() {
            return Err(VerifyError::InvalidClaims("ips is empty".into()));
        }
        Ok(Self {
            claims,
            permissions,
            upload,
            list,
            ips,
            rules,
        })
    }

    /// Decides one operation: may the holder use `permission` on directory `dir` from address
    /// `ip`?
    ///
    /// The permission must be granted. When the token is IP-restricted, `ip` must be given and
    /// allowed. When the permission is checked against a directory scope (see
    /// [`ScopeRules`]), `dir` must be given, is normalised, and must lie in that scope; for
    /// other permissions `dir` is not consulted.
    ///
    /// # Errors
    ///
    /// A [`Denied`] saying why.
    pub fn authorize(
        &self,
        permission: &str,
        dir: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<(), Denied> {
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
            ScopeKind::Upload => (&self.upload, "upload"),
            ScopeKind::List => (&self.list, "listing"),
            ScopeKind::None => return Ok(()),
        };
        let dir = dir.ok_or_else(|| Denied::DirectoryRequired(permission.to_owned()))?;
        match scope.allows(dir) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Denied::OutsideScope(name)),
            Err(e) => Err(Denied::InvalidPath(e)),
        }
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
