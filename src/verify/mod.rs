//! The offline verifier: a token and a JWKS in, a [`Grant`] or a typed refusal out.
//!
//! Nothing here touches the network, an async runtime or the issuer's config.

pub mod revocation;

use crate::policy::catalog::{ScopeKind, ScopeRules};
use crate::policy::ip::{IpRangeError, IpRules};
use crate::policy::scope::{ScopeError, ScopeSet};
use crate::token::b64;
use crate::token::claims::{ACCESS_TOKEN_TYP, API_KEY_TYP, AccessClaims, ApiKeyClaims};
use crate::token::jwk::KeySet;
use crate::verify::revocation::RevocationList;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A callback for tokens that name an unknown `kid`.
type UnknownKidHook = Arc<dyn Fn() + Send + Sync>;

/// Default longest token accepted, in bytes, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default longest lifetime (`exp - iat`) accepted: 7 days, the longest a template may set.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most entries accepted in each list claim (`scope`, `upload_dirs`, `list_dirs`, `ips`).
pub const MAX_LIST_ENTRIES: usize = 256;
/// Deepest JSON nesting accepted in a header or payload (keysmith's own claims nest 2 deep).
const MAX_JSON_DEPTH: usize = 16;
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
    /// The verifier's [`ScopeRules`] do not know the permission (a custom catalogue needs
    /// [`Verifier::scope_rules`]), so no directory check can be chosen.
    #[error("no scope rule for permission {0}; configure the verifier's scope rules")]
    NoScopeRule(String),
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
            Self::NoScopeRule(_) => "no_scope_rule",
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
#[derive(Clone)]
pub struct Verifier {
    /// Shared by clones, so a refresher can replace the keys every clone uses.
    keys: Arc<RwLock<KeySet>>,
    /// Called when a token names a `kid` the key set lacks (a JWKS refresher's wake-up).
    on_unknown_kid: Arc<RwLock<Option<UnknownKidHook>>>,
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
    max_lifetime: u64,
    max_token_len: usize,
    rules: Arc<ScopeRules>,
    /// Shared by clones, so a refresher can update the list every clone uses.
    revocations: Arc<RwLock<Option<Arc<RevocationList>>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys().kids().iter().map(|k| (*k).to_owned()).collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens from `issuer` addressed to `audience` (a project id), signed by a
    /// key in `keys`.
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys: Arc::new(RwLock::new(keys)),
            on_unknown_kid: Arc::default(),
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_lifetime: DEFAULT_MAX_LIFETIME.as_secs(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            rules: Arc::new(ScopeRules::default()),
            revocations: Arc::default(),
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
    pub fn keys(&self) -> KeySet {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the trusted keys (for every clone of this verifier), e.g. after fetching the
    /// JWKS again.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// Calls `hook` whenever a token names a `kid` the key set lacks, so a refresher can fetch
    /// the JWKS early (it must throttle: forged `kid`s are free to send).
    pub fn on_unknown_kid(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.on_unknown_kid.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
    }

    /// Runs `f` on the current key set, and the unknown-`kid` hook when it fails that way.
    fn with_keys<T>(&self, f: impl FnOnce(&KeySet) -> Result<T, VerifyError>) -> Result<T, VerifyError> {
        let result = f(&self.keys.read().unwrap_or_else(PoisonError::into_inner));
        if matches!(result, Err(VerifyError::UnknownKid)) {
            let hook = self.on_unknown_kid.read().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(hook) = hook {
                hook();
            }
        }
        result
    }

    /// Loads a signed revocation list (from `GET /v1/revocations`), checking its signature with
    /// this verifier's keys, its issuer, and that it may replace the list already held.
    ///
    /// Lists are ordered by (`ver`, `iat`): a list from a higher config version always
    /// replaces the held one, and within one version a later list does. An earlier list (a
    /// replay, or the issuer's config rolled back) is refused while the held list is fresh;
    /// once the held list has expired, any list that is itself fresh replaces it, so a rollback
    /// locks permanent keys out for at most the held list's remaining lifetime.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`]: [`VerifyError::RevocationsRollback`] for an earlier list while the
    /// held one may still be used. The list already held, if any, stays in use.
    pub fn with_revocations(self, signed: &str, now: SystemTime) -> Result<Self, VerifyError> {
        self.set_revocations(signed, now)?;
        Ok(self)
    }

    /// As [`Verifier::with_revocations`], in place; every clone of this verifier sees the list.
    ///
    /// # Errors
    ///
    /// As [`Verifier::with_revocations`].
    pub fn set_revocations(&self, signed: &str, now: SystemTime) -> Result<(), VerifyError> {
        let list =
            self.with_keys(|keys| RevocationList::verify(keys, signed, &self.issuer, unix_seconds(now), self.leeway))?;
        let now = unix_seconds(now);
        let mut held = self.revocations.write().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|h| !list.may_replace(h, now)) {
            return Err(VerifyError::RevocationsRollback);
        }
        *held = Some(Arc::new(list));
        Ok(())
    }

    /// Holds an already trusted list (the issuer's own).
    #[cfg(feature = "issuer")]
    pub(crate) fn hold_revocations(&self, list: RevocationList) {
        *self.revocations.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(list));
    }

    /// The revocation list held, if any.
    pub fn revocations(&self) -> Option<Arc<RevocationList>> {
        self.revocations.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Verifies an access token at time `now` and returns what it grants. When a revocation
    /// list is held, a key minted from a revoked template is refused.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the token was refused.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, VerifyError> {
        let claims: AccessClaims =
            self.with_keys(|keys| verify_jws(keys, token, self.max_token_len, ACCESS_TOKEN_TYP))?;
        self.check_registered(&claims, unix_seconds(now))?;
        if let Some(list) = self.revocations()
            && (list.is_template_revoked(&claims.sub) || claims.api_keys.iter().any(|id| list.is_api_key_revoked(id)))
        {
            return Err(VerifyError::Revoked);
        }
        Grant::from_claims(claims, Arc::clone(&self.rules))
    }

    /// Verifies a permanent API key at time `now`. It is accepted only while a fresh
    /// revocation list is held and names neither the key nor any key that created it.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`]: [`VerifyError::RevocationsMissing`] or
    /// [`VerifyError::RevocationsExpired`] without a fresh list, [`VerifyError::Revoked`] for a
    /// deactivated key, or any reason [`Verifier::verify`] gives.
    pub fn verify_api_key(&self, key: &str, now: SystemTime) -> Result<ApiKeyGrant, VerifyError> {
        let claims: ApiKeyClaims = self.with_keys(|keys| verify_jws(keys, key, self.max_token_len, API_KEY_TYP))?;
        let now = unix_seconds(now);
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(VerifyError::WrongAudience);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(VerifyError::IssuedInFuture);
        }
        if claims.exp.is_some_and(|exp| now >= exp.saturating_add(self.leeway)) {
            return Err(VerifyError::Expired);
        }
        if claims.sub.is_empty() || claims.sub.len() > 256 || claims.jti != claims.sub {
            return Err(VerifyError::InvalidClaims("sub and jti must be the same key id".into()));
        }
        if claims.created_by.len() > 16 {
            return Err(VerifyError::InvalidClaims("created_by is too long".into()));
        }
        let list = self.revocations().ok_or(VerifyError::RevocationsMissing)?;
        if !list.is_fresh(now) {
            return Err(VerifyError::RevocationsExpired);
        }
        if list.is_api_key_revoked(&claims.jti) || claims.created_by.iter().any(|id| list.is_api_key_revoked(id)) {
            return Err(VerifyError::Revoked);
        }
        let permissions = claims.scope.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        Ok(ApiKeyGrant { expires_at: claims.exp, claims, permissions })
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
        for (name, value) in [("sub", &c.sub), ("client_id", &c.client_id), ("jti", &c.jti)] {
            if value.is_empty() || value.len() > 256 {
                return Err(VerifyError::InvalidClaims(format!("{name} must be 1 to 256 bytes")));
            }
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch; times before it count as 0.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The JOSE header members this verifier reads. Members it does not name (`jku`, `x5u`, `jwk`,
/// `x5c`, …) are ignored, never followed.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    b64: Present,
    #[serde(default)]
    zip: Present,
}

/// Whether a header member appears at all, whatever its value (`"crit": null` counts).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Self(true))
    }
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
        return Err(VerifyError::Malformed("a compact JWS has exactly three segments"));
    };
    if header_b64.len() > MAX_HEADER_LEN * 4 / 3 + 4 {
        return Err(VerifyError::Malformed("header too large"));
    }
    let header: Header = decode_json(header_b64, "header")?;
    if header.alg != "EdDSA" {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    if header.crit.0 {
        return Err(VerifyError::CriticalHeader);
    }
    if header.b64.0 {
        return Err(VerifyError::UnsupportedHeader("b64"));
    }
    if header.zip.0 {
        return Err(VerifyError::UnsupportedHeader("zip"));
    }
    if !header.typ.as_deref().is_some_and(|t| typ_matches(t, typ)) {
        return Err(VerifyError::WrongType { expected: typ });
    }
    let kid = header.kid.ok_or(VerifyError::MissingKid)?;
    let key = keys.get(&kid).ok_or(VerifyError::UnknownKid)?;
    let sig = b64::decode_array::<64>(sig_b64).ok_or(VerifyError::BadSignature)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    if !crate::token::jwk::verify_ed25519(key, &token.as_bytes()[..signing_input_len], &sig) {
        return Err(VerifyError::BadSignature);
    }
    decode_json(payload_b64, "payload")
}

/// `typ` compares case-insensitively and may carry the `application/` prefix (RFC 7515 §4.1.9).
pub(crate) fn typ_matches(got: &str, want: &str) -> bool {
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
    if !nesting_within(&bytes, MAX_JSON_DEPTH) {
        return Err(VerifyError::Malformed(match what {
            "header" => "header is nested too deeply",
            _ => "payload is nested too deeply",
        }));
    }
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

/// Whether the JSON text nests arrays and objects at most `max` deep (strings are skipped,
/// escapes included). A single pass before parsing, so hostile nesting costs nothing.
fn nesting_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// What a verified permanent API key allows. Only [`Verifier::verify_api_key`] makes one.
#[derive(Debug, Clone)]
pub struct ApiKeyGrant {
    claims: ApiKeyClaims,
    permissions: Vec<String>,
    expires_at: Option<u64>,
}

impl ApiKeyGrant {
    /// The key id.
    pub fn id(&self) -> &str {
        &self.claims.jti
    }

    /// Keeps only the permissions also in `allowed` (the issuer's record of the key).
    #[cfg(feature = "issuer")]
    pub(crate) fn restrict_to(&mut self, allowed: &[String]) {
        self.permissions.retain(|p| allowed.contains(p));
    }

    /// Moves the key's end earlier to `exp` (the issuer's record of the key), if that is
    /// earlier than the end it has.
    #[cfg(feature = "issuer")]
    pub(crate) fn expire_by(&mut self, exp: u64) {
        self.expires_at = Some(self.expires_at.map_or(exp, |own| own.min(exp)));
    }

    /// When the key stops being accepted, in seconds since the Unix epoch: its own `exp`, and
    /// for a key checked by keysmith itself the earlier of that and its record's `expires_at`.
    /// `None` for a key that never expires.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
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
        let permissions: Vec<String> = claims.scope.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        let too_many = |n: usize| n > MAX_LIST_ENTRIES;
        if too_many(permissions.len())
            || too_many(claims.upload_dirs.len())
            || too_many(claims.list_dirs.len())
            || too_many(claims.ips.len())
        {
            return Err(VerifyError::InvalidClaims(format!("a list claim holds more than {MAX_LIST_ENTRIES} entries")));
        }
        let scopes = |dirs: &[String]| ScopeSet::parse(dirs).map_err(|(_, e)| VerifyError::InvalidScope(e));
        let upload = scopes(&claims.upload_dirs)?;
        let list = scopes(&claims.list_dirs)?;
        let ips = IpRules::parse(&claims.ips).map_err(|(_, e)| VerifyError::InvalidIpRange(e))?;
        if ips.ranges().is_empty() {
            return Err(VerifyError::InvalidClaims("ips is empty".into()));
        }
        Ok(Self { claims, permissions, upload, list, ips, rules })
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
    pub fn authorize(&self, permission: &str, dir: Option<&str>, ip: Option<IpAddr>) -> Result<(), Denied> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const NOW: u64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn kid() -> String {
        crate::token::jwk::thumbprint(&key().verifying_key())
    }

    fn verifier() -> Verifier {
        Verifier::new(KeySet::from_keys([key().verifying_key()]), "https://iss", "demo")
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn header() -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid()})
    }

    fn claims() -> Value {
        json!({
            "iss": "https://iss", "aud": "demo", "sub": "t", "client_id": "t",
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 1190, "jti": "abc",
            "scope": "FILE_UPLOAD OBJECTS_LIST ACCESS_READ", "ver": 3,
            "upload_dirs": ["/uploads/*"], "list_dirs": ["/*"],
            "ips": ["10.0.0.0/8"],
        })
    }

    fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
        let input = format!("{}.{}", b64::encode(header), b64::encode(payload));
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", b64::encode(sig.to_bytes()))
    }

    fn sign(header: &Value, claims: &Value) -> String {
        sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes(), &key())
    }

    fn with(mut v: Value, k: &str, x: Value) -> Value {
        v[k] = x;
        v
    }

    fn without(mut v: Value, k: &str) -> Value {
        v.as_object_mut().unwrap().remove(k);
        v
    }

    fn err(token: &str) -> VerifyError {
        verifier().verify(token, now()).unwrap_err()
    }

    #[test]
    fn accepts_a_good_token() {
        let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
        assert_eq!(grant.jti(), "abc");
        assert_eq!(grant.template(), "t");
        assert_eq!(grant.permissions(), ["FILE_UPLOAD", "OBJECTS_LIST", "ACCESS_READ"]);
        assert_eq!(grant.claims().ver, 3);
        // typ compares case-insensitively, with or without "application/".
        for typ in ["AT+JWT", "application/at+jwt"] {
            assert!(verifier().verify(&sign(&with(header(), "typ", json!(typ)), &claims()), now()).is_ok(), "{typ}");
        }
        // An array audience containing ours is accepted (RFC 7519).
        assert!(verifier().verify(&sign(&header(), &with(claims(), "aud", json!(["x", "demo"]))), now()).is_ok());
    }

    #[test]
    fn header_is_checked_before_the_signature() {
        let payload = claims().to_string();
        for alg in ["none", "None", "NONE", "HS256", "ES256", "RS256", "eddsa", "Ed25519", ""] {
            let h = with(header(), "alg", json!(alg));
            // Not even signed properly: the algorithm alone refuses it.
            let token = format!("{}.{}.", b64::encode(h.to_string()), b64::encode(&payload));
            assert_eq!(err(&token), VerifyError::AlgorithmNotAllowed, "{alg}");
        }
        assert_eq!(
            err(&sign(&with(header(), "alg", json!(null)), &claims())),
            VerifyError::Malformed("header is not a valid JOSE header")
        );
        for crit in [json!([]), json!(null), json!(""), json!({})] {
            let token = sign(&with(header(), "crit", crit.clone()), &claims());
            assert_eq!(err(&token), VerifyError::CriticalHeader, "crit {crit}");
        }
        for (name, value) in [("b64", json!(null)), ("b64", json!(true)), ("zip", json!(null))] {
            let token = sign(&with(header(), name, value), &claims());
            assert!(matches!(err(&token), VerifyError::UnsupportedHeader(_)), "{name}");
        }
        assert_eq!(err(&sign(&with(header(), "crit", json!(["exp"])), &claims())), VerifyError::CriticalHeader);
        assert_eq!(err(&sign(&with(header(), "b64", json!(false)), &claims())), VerifyError::UnsupportedHeader("b64"));
        assert_eq!(err(&sign(&with(header(), "zip", json!("DEF")), &claims())), VerifyError::UnsupportedHeader("zip"));
        assert_eq!(err(&sign(&without(header(), "typ"), &claims())), VerifyError::WrongType { expected: "at+jwt" });
        for typ in ["JWT", "apikey+jwt", "revocations+jwt", "at+jwt ", ""] {
            assert_eq!(
                err(&sign(&with(header(), "typ", json!(typ)), &claims())),
                VerifyError::WrongType { expected: "at+jwt" },
                "{typ}"
            );
        }
        assert_eq!(err(&sign(&without(header(), "kid"), &claims())), VerifyError::MissingKid);
        assert_eq!(err(&sign(&with(header(), "kid", json!("../../etc/passwd")), &claims())), VerifyError::UnknownKid);
        assert!(matches!(err(&sign(&with(header(), "kid", json!(7)), &claims())), VerifyError::Malformed(_)));
        // Duplicate header names are refused, whichever value comes last.
        let dup = format!(r#"{{"alg":"EdDSA","alg":"none","typ":"at+jwt","kid":"{}"}}"#, kid());
        assert!(matches!(err(&sign_raw(dup.as_bytes(), payload.as_bytes(), &key())), VerifyError::Malformed(_)));
    }

    #[test]
    fn embedded_keys_and_urls_are_never_trusted() {
        let attacker = SigningKey::from_bytes(&[66u8; 32]);
        let jwk = crate::token::jwk::PublicJwk::from_key(&attacker.verifying_key());
        let h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid(), "jwk": jwk, "jku": "http://evil/jwks", "x5u": "http://evil/x5u"});
        let token = sign_raw(h.to_string().as_bytes(), claims().to_string().as_bytes(), &attacker);
        assert_eq!(err(&token), VerifyError::BadSignature);
        // The same header signed by the real key is fine: the members are ignored, not followed.
        assert!(verifier().verify(&sign(&h, &claims()), now()).is_ok());
    }

    #[test]
    fn signatures_are_strict() {
        let token = sign(&header(), &claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(err(&format!("{input}.")), VerifyError::BadSignature);
        assert_eq!(err(&format!("{input}.{}", b64::encode([0u8; 64]))), VerifyError::BadSignature);
        assert_eq!(err(&format!("{input}.{}", &sig[..sig.len() - 2])), VerifyError::BadSignature);
        assert_eq!(err(&format!("{input}.{sig}AA")), VerifyError::BadSignature);
        // S + L: the malleated twin of a valid signature.
        let mut raw = b64::decode_array::<64>(sig).unwrap();
        add_group_order(&mut raw[32..]);
        assert_eq!(err(&format!("{input}.{}", b64::encode(raw))), VerifyError::BadSignature);
        // Another key under the real kid.
        let other = SigningKey::from_bytes(&[2u8; 32]);
        assert_eq!(
            err(&sign_raw(header().to_string().as_bytes(), claims().to_string().as_bytes(), &other)),
            VerifyError::BadSignature
        );
    }

    /// Adds the Ed25519 group order L to a little-endian scalar.
    fn add_group_order(s: &mut [u8]) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, l) in s.iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
    }

    #[test]
    fn shape_is_checked() {
        let token = sign(&header(), &claims());
        let parts: Vec<&str> = token.split('.').collect();
        for bad in [
            String::new(),
            parts[0].to_owned(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}."),
            format!("{token}.{}", parts[2]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
        ] {
            assert!(verifier().verify(&bad, now()).is_err(), "{bad}");
        }
        let huge = format!("{}.{}.{}", parts[0], "A".repeat(DEFAULT_MAX_TOKEN_LEN), parts[2]);
        assert_eq!(err(&huge), VerifyError::TooLarge(DEFAULT_MAX_TOKEN_LEN));
        // A header or payload that is JSON but not an object.
        assert!(matches!(err(&sign_raw(b"[\"EdDSA\"]", b"{}", &key())), VerifyError::Malformed(_)));
        assert!(matches!(err(&sign_raw(header().to_string().as_bytes(), b"[1,2]", &key())), VerifyError::Malformed(_)));
        assert!(matches!(
            err(&sign_raw(header().to_string().as_bytes(), b"not json", &key())),
            VerifyError::Malformed(_)
        ));
    }

    #[test]
    fn claims_are_typed_and_required() {
        for (name, value) in [
            ("exp", json!("1900000000")),
            ("exp", json!(null)),
            ("exp", json!(1.8e9)),
            ("exp", json!(1e30)),
            ("exp", json!(-1)),
            ("aud", json!(7)),
            ("aud", json!(null)),
            ("iss", json!(["https://iss"])),
            ("iss", json!(null)),
            ("scope", json!(["FILE_UPLOAD"])),
            ("ips", json!("10.0.0.0/8")),
        ] {
            assert!(
                matches!(err(&sign(&header(), &with(claims(), name, value.clone()))), VerifyError::InvalidClaims(_)),
                "{name}={value}"
            );
        }
        for name in [
            "iss",
            "aud",
            "sub",
            "client_id",
            "iat",
            "nbf",
            "exp",
            "jti",
            "scope",
            "ver",
            "upload_dirs",
            "list_dirs",
            "ips",
        ] {
            assert!(
                matches!(err(&sign(&header(), &without(claims(), name))), VerifyError::InvalidClaims(_)),
                "missing {name}"
            );
        }
        let dup = claims().to_string().replacen('{', r#"{"exp":99999999999,"#, 1);
        assert!(matches!(
            err(&sign_raw(header().to_string().as_bytes(), dup.as_bytes(), &key())),
            VerifyError::InvalidClaims(_)
        ));
    }

    #[test]
    fn registered_claims_are_checked() {
        assert_eq!(err(&sign(&header(), &with(claims(), "iss", json!("https://other")))), VerifyError::WrongIssuer);
        assert_eq!(err(&sign(&header(), &with(claims(), "aud", json!("other")))), VerifyError::WrongAudience);
        assert_eq!(err(&sign(&header(), &with(claims(), "aud", json!([])))), VerifyError::WrongAudience);
        assert_eq!(err(&sign(&header(), &with(claims(), "exp", json!(NOW - 5)))), VerifyError::Expired);
        assert!(
            verifier().verify(&sign(&header(), &with(claims(), "exp", json!(NOW - 4))), now()).is_ok(),
            "within leeway"
        );
        assert_eq!(err(&sign(&header(), &with(claims(), "nbf", json!(NOW + 60)))), VerifyError::NotYetValid);
        let future = with(with(claims(), "iat", json!(NOW + 60)), "nbf", json!(NOW));
        assert_eq!(err(&sign(&header(), &future)), VerifyError::IssuedInFuture);
        let long = with(claims(), "exp", json!(NOW - 10 + DEFAULT_MAX_LIFETIME.as_secs() + 1));
        assert_eq!(err(&sign(&header(), &long)), VerifyError::LifetimeTooLong);
        assert!(matches!(
            err(&sign(&header(), &with(claims(), "exp", json!(NOW - 10)))),
            VerifyError::InvalidClaims(_)
        ));
        assert!(matches!(err(&sign(&header(), &with(claims(), "jti", json!("")))), VerifyError::InvalidClaims(_)));
        assert!(matches!(
            err(&sign(&header(), &with(claims(), "upload_dirs", json!(["/a/../b"])))),
            VerifyError::InvalidScope(_)
        ));
        assert!(matches!(
            err(&sign(&header(), &with(claims(), "upload_dirs", json!([])))),
            VerifyError::InvalidScope(_)
        ));
        assert!(matches!(
            err(&sign(&header(), &with(claims(), "ips", json!(["10.0.0.1/8"])))),
            VerifyError::InvalidIpRange(_)
        ));
        assert!(matches!(err(&sign(&header(), &with(claims(), "ips", json!([])))), VerifyError::InvalidClaims(_)));
        let strict =
            verifier().leeway(Duration::ZERO).verify(&sign(&header(), &with(claims(), "exp", json!(NOW))), now());
        assert_eq!(strict.unwrap_err(), VerifyError::Expired);
    }

    #[test]
    fn authorize_decides_with_reasons() {
        let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/a"), Some(ip)), Ok(()));
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads"), Some("::ffff:10.1.2.3".parse().unwrap())), Ok(()));
        assert_eq!(
            grant.authorize("FILE_DELETE", Some("/uploads/a"), Some(ip)),
            Err(Denied::PermissionMissing("FILE_DELETE".into()))
        );
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads2"), Some(ip)), Err(Denied::OutsideScope("upload")));
        assert_eq!(
            grant.authorize("FILE_UPLOAD", Some("/uploads/../etc"), Some(ip)),
            Err(Denied::InvalidPath(ScopeError::DotSegment))
        );
        assert_eq!(
            grant.authorize("FILE_UPLOAD", Some("/uploads%2f..%2fetc"), Some(ip)),
            Err(Denied::InvalidPath(ScopeError::EncodedSeparator))
        );
        for lookalike in
            ["/uploads/\u{FF0E}\u{FF0E}/\u{FF0E}\u{FF0E}/etc", "/uploads/.\u{200B}./etc", "/uploads/a\u{FF0F}b"]
        {
            assert!(
                matches!(grant.authorize("FILE_UPLOAD", Some(lookalike), Some(ip)), Err(Denied::InvalidPath(_))),
                "{lookalike:?}"
            );
        }
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/写真/２０２６"), Some(ip)), Ok(()));
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/café"), Some(ip)), Ok(()));
        assert_eq!(
            grant.authorize("FILE_UPLOAD", None, Some(ip)),
            Err(Denied::DirectoryRequired("FILE_UPLOAD".into()))
        );
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/a"), None), Err(Denied::IpRequired));
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            grant.authorize("FILE_UPLOAD", Some("/uploads/a"), Some(outside)),
            Err(Denied::IpNotAllowed(outside))
        );
        // OBJECTS_LIST checks list_dirs ("/*"), ACCESS_READ checks no directory.
        assert_eq!(grant.authorize("OBJECTS_LIST", Some("/anything/at/all"), Some(ip)), Ok(()));
        assert_eq!(grant.authorize("ACCESS_READ", None, Some(ip)), Ok(()));
        assert_eq!(grant.authorize_country("FR"), Ok(()));
        assert_eq!(Denied::OutsideScope("upload").code(), "outside_scope");
    }

    #[test]
    fn custom_permissions_fail_closed_without_their_rules() {
        let c = with(claims(), "scope", json!("asset.upload asset.read"));
        let ip = Some("10.1.2.3".parse().unwrap());
        let grant = verifier().verify(&sign(&header(), &c), now()).unwrap();
        assert_eq!(
            grant.authorize("asset.upload", Some("/etc/secret"), ip),
            Err(Denied::NoScopeRule("asset.upload".into()))
        );
        let rules = ScopeRules::new(["asset.upload", "asset.read"], ["asset.upload"], ["asset.read"]);
        let grant = verifier().scope_rules(rules).verify(&sign(&header(), &c), now()).unwrap();
        assert_eq!(grant.authorize("asset.upload", Some("/etc/secret"), ip), Err(Denied::OutsideScope("upload")));
        assert_eq!(grant.authorize("asset.upload", Some("/uploads/x"), ip), Ok(()));
    }

    #[test]
    fn countries_and_anywhere() {
        let c = with(with(claims(), "countries", json!(["FR"])), "ips", json!(["0.0.0.0/0", "::/0"]));
        let grant = verifier().verify(&sign(&header(), &c), now()).unwrap();
        assert_eq!(grant.authorize_country("FR"), Ok(()));
        assert_eq!(grant.authorize_country("DE"), Err(Denied::CountryNotAllowed("DE".into())));
        assert_eq!(grant.authorize("ACCESS_READ", None, None), Ok(()), "no address needed when unrestricted");
    }

    #[test]
    fn nesting_is_bounded_outside_strings() {
        assert!(nesting_within(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!nesting_within(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(nesting_within(br#"{"a":"[[[[[[\"[[[["}"#, 1), "brackets in strings do not count");
        assert!(!nesting_within(format!("{}{}", "[".repeat(17), "]".repeat(17)).as_bytes(), 16));
        let deep =
            with(claims(), "deep", serde_json::from_str(&format!("{}{}", "[".repeat(20), "]".repeat(20))).unwrap());
        assert_eq!(err(&sign(&header(), &deep)), VerifyError::Malformed("payload is nested too deeply"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..1000, byte: u8) {
            let token = sign(&header(), &claims());
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                prop_assert!(verifier().verify(&mutated, now()).is_err());
            }
        }

        #[test]
        fn random_input_never_panics(text in ".{0,300}") {
            let _ = verifier().verify(&text, now());
        }

        #[test]
        fn random_segments_never_panic(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,90}") {
            let _ = verifier().verify(&format!("{a}.{b}.{c}"), now());
        }
    }
}
