//! The offline verifier: a token and a JWKS in, a [`Grant`] or a typed refusal out.
//!
//! Nothing here touches the network, an async runtime or the issuer's config. Keys and
//! revocations come from *sources* ([`RevocationSource`]): by default the signed list this
//! verifier was given, or any other source a caller plugs in (the issuer's own config, a
//! refresher), without the verifier knowing who provides it.

mod cache;
mod error;
mod grant;
pub(crate) mod revocation;
mod source;

pub use error::{Denied, VerifyError};
pub use grant::{ApiKeyGrant, Grant};
pub use source::{KeySource, RevocationSource, Revocations};

use cache::{Cached, TokenCache};
use source::FixedKeys;

use crate::policy::scope_rules::ScopeRules;
use crate::token::claims::{AccessClaims, ApiKeyClaims};
use crate::token::jwk::KeySet;
use crate::token::jws::{self, TokenType};
use crate::verify::revocation::RevocationList;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default longest token accepted, in bytes, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default longest lifetime (`exp - iat`) accepted: 7 days, the longest a template may set.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The verified-token cache's counts ([`Verifier::cache_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found the token already verified (only its time and revocation checks ran).
    pub hits: u64,
    /// Lookups that did not (the token was verified in full).
    pub misses: u64,
    /// Tokens held now.
    pub entries: usize,
}

/// A reasonable [`Verifier::cache_verified`] capacity: ten thousand tokens, a few megabytes.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Most entries accepted in each list claim (`scope`, `upload_dirs`, `list_dirs`, `ips`).
pub const MAX_LIST_ENTRIES: usize = 256;

/// Verifies keysmith access tokens offline against a fixed key set.
///
/// Secure by default: only `EdDSA` with strict Ed25519 verification, `typ` must be `at+jwt`,
/// any `crit`, `b64` or `zip` is refused, `kid` must name a key in the set (`jku`, `x5u`, `jwk`
/// and `x5c` are never used), `iss` and `aud` must match exactly, `exp`, `nbf` and `iat` are
/// checked with [`DEFAULT_LEEWAY`], and tokens over [`DEFAULT_MAX_TOKEN_LEN`] bytes are refused
/// before decoding.
#[derive(Clone)]
pub struct Verifier {
    /// Where the trusted keys come from; shared by clones, so a refresher plugged into one
    /// serves them all.
    keys: Arc<RwLock<Arc<dyn KeySource>>>,
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
    max_lifetime: u64,
    max_token_len: usize,
    /// How long a token with an unknown `kid` may wait for the key source to refetch.
    unknown_kid_wait: Duration,
    rules: Arc<ScopeRules>,
    /// The signed list this verifier checked and holds; shared by clones, so a refresher can
    /// update the list every clone uses.
    revocations: Arc<RwLock<Option<Arc<RevocationList>>>>,
    /// Another place revocations come from, consulted instead of the held list when set.
    source: Option<Arc<dyn RevocationSource>>,
    /// Tokens already verified (see [`Verifier::cache_verified`]); shared by clones.
    cache: Option<Arc<Mutex<TokenCache>>>,
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
            keys: Arc::new(RwLock::new(Arc::new(FixedKeys(Arc::new(keys))))),
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_lifetime: DEFAULT_MAX_LIFETIME.as_secs(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            unknown_kid_wait: Duration::ZERO,
            rules: Arc::new(ScopeRules::default()),
            revocations: Arc::default(),
            source: None,
            cache: None,
        }
    }

    /// Also accepts tokens addressed to `audience`.
    pub fn also_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self.renew_cache()
    }

    /// Clock leeway for `exp`, `nbf` and `iat`. Defaults to [`DEFAULT_LEEWAY`]; a larger value
    /// lets expired tokens live longer.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self.renew_cache()
    }

    /// Longest lifetime (`exp - iat`) accepted. Defaults to [`DEFAULT_MAX_LIFETIME`].
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.as_secs();
        self.renew_cache()
    }

    /// Longest token accepted, in bytes. Defaults to [`DEFAULT_MAX_TOKEN_LEN`].
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_token_len = max;
        self.renew_cache()
    }

    /// How long a token naming a `kid` the keys lack may wait for the key source to fetch the
    /// keys early (a JWKS refresher does; a fixed key set does not), after which it is checked
    /// once more. Defaults to zero: refused at once, with the source told to fetch early.
    ///
    /// With a refresher, a second or two means the first token signed by a newly promoted key
    /// is accepted even when the JWKS it holds predates the key (an operator lowered
    /// `jwks_max_age`). The wait is bounded and the fetch throttled (forged `kid`s cost at most
    /// the wait, never a fetch each); verifying blocks the calling thread meanwhile, so in an
    /// async handler run `verify` in `spawn_blocking` or keep this short. A refresher lets only
    /// a few tokens wait at once (the others are refused at once), and refuses at once a `kid`
    /// that a fetch completed within its `min_gap` did not bring, so forged `kid`s cannot tie
    /// up a thread each.
    pub fn unknown_kid_wait(mut self, wait: Duration) -> Self {
        self.unknown_kid_wait = wait;
        self
    }

    /// Which directory scope each permission is checked against. Defaults to
    /// [`ScopeRules::scaleflex`]; set this when the issuer uses a custom catalogue.
    pub fn scope_rules(mut self, rules: ScopeRules) -> Self {
        self.rules = Arc::new(rules);
        self.renew_cache()
    }

    /// Remembers up to `capacity` verified tokens, so a token seen again skips the signature
    /// check. Defaults to no cache; [`DEFAULT_CACHE_CAPACITY`] suits a busy service.
    ///
    /// Entries are keyed by a SHA-256 of the whole token (no token text is kept), and the oldest
    /// is evicted when the cache is full. On every hit `exp`, `nbf` and `iat` are checked against
    /// `now` and the token against the revocations in force, exactly as on a miss: a key whose
    /// template or id is revoked is refused from the moment this verifier holds the list that
    /// says so. A change of the trusted key set (a JWKS refresh, [`Verifier::set_keys`]) empties
    /// the cache. Clones share it.
    pub fn cache_verified(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(Mutex::new(TokenCache::new(capacity))));
        self
    }

    /// The number of tokens the cache holds (0 without one).
    pub fn cached_len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().unwrap_or_else(PoisonError::into_inner).len())
    }

    /// What the cache holds and how its lookups went (all zero without one). Clones share it.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.as_ref().map_or_else(CacheStats::default, |c| {
            let cache = c.lock().unwrap_or_else(PoisonError::into_inner);
            let (hits, misses) = cache.lookups();
            CacheStats { hits, misses, entries: cache.len() }
        })
    }

    /// A fresh, empty cache after a setting that changes what verifies: clones made before keep
    /// theirs, and no entry verified under other settings is served.
    fn renew_cache(mut self) -> Self {
        if let Some(cache) = &self.cache {
            let capacity = cache.lock().unwrap_or_else(PoisonError::into_inner).capacity();
            self.cache = Some(Arc::new(Mutex::new(TokenCache::new(capacity))));
        }
        self
    }

    /// Looks `token` up in the cache (tagged `tag`): the key set to verify it with, the cache
    /// key, and what was verified before, if anything.
    fn cached(&self, tag: u8, token: &str) -> Option<(Arc<KeySet>, cache::CacheKey, Option<Cached>)> {
        let cache = self.cache.as_ref()?;
        if token.len() > self.max_token_len {
            return None;
        }
        let keys = self.key_source().key_set();
        let key = TokenCache::key(tag, token);
        let hit = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&keys, &key);
        Some((keys, key, hit))
    }

    fn remember(&self, keys: &Arc<KeySet>, key: cache::CacheKey, cached: Cached) {
        if let Some(cache) = &self.cache {
            cache.lock().unwrap_or_else(PoisonError::into_inner).insert(keys, key, cached);
        }
    }

    fn forget(&self, key: &cache::CacheKey) {
        if let Some(cache) = &self.cache {
            cache.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
        }
    }

    /// The trusted keys now: the set the key source holds, shared, not copied.
    pub fn keys(&self) -> Arc<KeySet> {
        self.key_source().key_set()
    }

    /// Replaces the trusted keys with a fixed set (for every clone of this verifier).
    pub fn set_keys(&self, keys: KeySet) {
        self.set_key_source(Arc::new(FixedKeys(Arc::new(keys))));
    }

    /// Takes the trusted keys from `source` from now on (for every clone of this verifier),
    /// such as a refresher that keeps a JWKS current.
    pub fn set_key_source(&self, source: Arc<dyn KeySource>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = source;
    }

    fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on the current keys. When a token names an unknown `kid`, the source is told,
    /// or, if this verifier may wait, asked to refetch and `f` runs once more on the new keys.
    fn with_keys<T>(&self, token: &str, f: impl Fn(&KeySet) -> Result<T, VerifyError>) -> Result<T, VerifyError> {
        let source = self.key_source();
        let result = f(&source.key_set());
        if !matches!(result, Err(VerifyError::UnknownKid)) {
            return result;
        }
        if !self.unknown_kid_wait.is_zero()
            && let Some(kid) = jws::unverified_kid(token)
            && source.refetch_kid(&kid, self.unknown_kid_wait)
        {
            return f(&source.key_set());
        }
        source.unknown_kid();
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
    /// held one may still be used, [`VerifyError::RevocationsExpired`] for a list that is no
    /// longer fresh while the held one is. The list already held, if any, stays in use.
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
        let list = self.with_keys(signed, |keys| {
            RevocationList::verify(keys, signed, &self.issuer, unix_seconds(now), self.leeway)
        })?;
        let now = unix_seconds(now);
        let mut held = self.revocations.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = held.as_ref()
            && !list.may_replace(h, now)
        {
            // Say why: an older list, or a newer one that is stale while the held one is fresh.
            let order = |l: &RevocationList| (l.claims().ver, l.claims().iat);
            return Err(if order(&list) >= order(h) {
                VerifyError::RevocationsExpired
            } else {
                VerifyError::RevocationsRollback
            });
        }
        *held = Some(Arc::new(list));
        Ok(())
    }

    /// Takes revocations from `source` instead of a signed list: for a process that owns the
    /// revocation facts itself, such as an issuer checking permanent keys presented to it
    /// against its own config. Lists given to [`Verifier::set_revocations`] are still checked
    /// and held, but no longer consulted.
    pub fn revocation_source(mut self, source: Arc<dyn RevocationSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// The revocations in force: the plugged source's, else the held signed list.
    fn revocations_in_force(&self) -> Option<Arc<dyn Revocations>> {
        match &self.source {
            Some(source) => source.current(),
            None => self.revocations().map(|list| list as Arc<dyn Revocations>),
        }
    }

    /// The revocation list held, if any.
    pub fn revocations(&self) -> Option<Arc<RevocationList>> {
        self.revocations.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Verifies an access token at time `now` and returns what it grants. When a revocation
    /// list is held, a key minted from a revoked template, or minted (`iat`) before the cut-off
    /// of its template or of a permanent key it was minted through, is refused.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying why the token was refused.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, VerifyError> {
        let decode = || -> Result<AccessClaims, VerifyError> {
            self.with_keys(token, |keys| Ok(jws::decode(keys, token, self.max_token_len, TokenType::Access)?))
        };
        let Some((keys, key, hit)) = self.cached(b'a', token) else {
            let claims = decode()?;
            self.check_access(&claims, now)?;
            return Grant::from_claims(claims, Arc::clone(&self.rules));
        };
        if let Some(Cached::Access(grant)) = hit {
            // Only the signature and the claims' shape are taken from the cache.
            return match self.check_access(grant.claims(), now) {
                Ok(()) => Ok(*grant),
                Err(e) => {
                    self.forget(&key);
                    Err(e)
                }
            };
        }
        let claims = decode()?;
        self.check_access(&claims, now)?;
        let grant = Grant::from_claims(claims, Arc::clone(&self.rules))?;
        self.remember(&keys, key, Cached::Access(Box::new(grant.clone())));
        Ok(grant)
    }

    /// Everything about a decoded access token that depends on the time or the revocations:
    /// checked on every verification, cached or not.
    fn check_access(&self, claims: &AccessClaims, now: SystemTime) -> Result<(), VerifyError> {
        self.check_registered(claims, unix_seconds(now))?;
        if let Some(list) = self.revocations_in_force() {
            let cut = |cut_off: Option<u64>| cut_off.is_some_and(|at| claims.iat < at);
            if list.is_template_revoked(&claims.sub)
                || cut(list.template_issued_before(&claims.sub))
                || claims.api_keys.iter().any(|id| list.is_api_key_revoked(id) || cut(list.api_key_issued_before(id)))
            {
                return Err(VerifyError::Revoked);
            }
        }
        Ok(())
    }

    /// Verifies a permanent API key at time `now`. It is accepted only while a fresh
    /// revocation list is held that lists the root of its `created_by` chain (the key itself
    /// when it has none) as active and names neither the key nor any key that created it as
    /// revoked.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`]: [`VerifyError::RevocationsMissing`] or
    /// [`VerifyError::RevocationsExpired`] without a fresh list, [`VerifyError::Revoked`] for a
    /// deactivated key, or any reason [`Verifier::verify`] gives.
    pub fn verify_api_key(&self, key: &str, now: SystemTime) -> Result<ApiKeyGrant, VerifyError> {
        let Some((keys, cache_key, hit)) = self.cached(b'k', key) else {
            let claims: ApiKeyClaims =
                self.with_keys(key, |keys| Ok(jws::decode(keys, key, self.max_token_len, TokenType::ApiKey)?))?;
            self.check_api_key(&claims, now)?;
            return Ok(ApiKeyGrant::from_claims(claims));
        };
        if let Some(Cached::ApiKey(grant)) = hit {
            return match self.check_api_key(grant.claims(), now) {
                Ok(()) => Ok(*grant),
                Err(e) => {
                    self.forget(&cache_key);
                    Err(e)
                }
            };
        }
        let claims: ApiKeyClaims =
            self.with_keys(key, |keys| Ok(jws::decode(keys, key, self.max_token_len, TokenType::ApiKey)?))?;
        self.check_api_key(&claims, now)?;
        let grant = ApiKeyGrant::from_claims(claims);
        self.remember(&keys, cache_key, Cached::ApiKey(Box::new(grant.clone())));
        Ok(grant)
    }

    /// Every check of a decoded permanent key, cached or not.
    fn check_api_key(&self, claims: &ApiKeyClaims, now: SystemTime) -> Result<(), VerifyError> {
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
        let list = self.revocations_in_force().ok_or(VerifyError::RevocationsMissing)?;
        if !list.is_fresh(now) {
            return Err(VerifyError::RevocationsExpired);
        }
        // The config is the truth: the root of the chain (the key itself when it has none) must
        // be recorded and active, and no key in the chain revoked.
        let root = claims.created_by.first().unwrap_or(&claims.jti);
        if !list.is_api_key_active(root)
            || list.is_api_key_revoked(&claims.jti)
            || claims.created_by.iter().any(|id| list.is_api_key_revoked(id))
        {
            return Err(VerifyError::Revoked);
        }
        Ok(())
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

#[cfg(test)]
mod tests;
