//! The store trait, the decisions and their errors.

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// The window of `per_min`: 60 seconds, in milliseconds.
pub(crate) const WINDOW_MS: u64 = 60_000;

/// The shortest life given to counters of a key, even one whose `exp` has passed.
pub(crate) const MIN_TTL_MS: u64 = 1_000;

/// The most source entries one key's `per_source_ip` counters hold: an attempt from a further
/// source is refused with [`Limit::PerSourceIp`] (fail closed), so one key cannot grow without
/// bound in memory or in Redis.
pub const MAX_SOURCES_PER_KEY: usize = 1024;

/// How long counters are kept after the key's `exp` by default: the 5 s leeway with which
/// verifiers still accept a key after `exp`, plus a 60 s margin for clock skew between the
/// verifier and the store. Dropping them at `exp` would hand an address that spent its
/// `per_source_ip` budget a fresh one while the key is still accepted.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(5 + 60);

/// The future a [`LimitStore`] answers with (boxed, so the trait can be used as `dyn LimitStore`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store of upload counters and rate budgets.
///
/// Implementations decide atomically: two concurrent calls for the same key never both take
/// the last unit of a budget.
pub trait LimitStore: Send + Sync {
    /// Decides one upload with a key, and counts it when allowed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot decide (unreachable, timed out, full). Callers
    /// choose whether that denies or allows; keysmith's own default is to deny.
    fn check_upload<'a>(&'a self, attempt: UploadAttempt<'a>) -> StoreFuture<'a, UploadDecision>;

    /// Decides one event against a keyed rate budget (GCRA), and counts it when allowed.
    ///
    /// `key` is any string (an address, a subject); the store hashes it, so hostile keys cannot
    /// collide with other entries.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot decide.
    fn check_rate<'a>(&'a self, key: &'a str, rate: Rate, now: SystemTime) -> StoreFuture<'a, RateDecision>;
}

/// One upload attempt, as the enforcement point sees it after verifying the key.
#[derive(Debug, Clone, Copy)]
pub struct UploadAttempt<'a> {
    /// The key's `jti`.
    pub jti: &'a str,
    /// The client's address (IPv4-mapped IPv6 addresses count as their IPv4 address, other
    /// IPv6 addresses by their /64).
    pub source: IpAddr,
    /// The key's limits; `None` in a field means that limit is not enforced.
    pub limits: crate::token::claims::Limits,
    /// The key's `exp`: the counters are kept until then plus the store's retention
    /// ([`DEFAULT_RETENTION`] unless set).
    pub expires_at: SystemTime,
    /// The time of the attempt.
    pub now: SystemTime,
}

impl<'a> UploadAttempt<'a> {
    /// The attempt to upload with a verified key from `source` at `now`: its `jti`, `limits`
    /// (none: unlimited) and `exp`.
    pub fn from_grant(grant: &'a crate::verify::Grant, source: IpAddr, now: SystemTime) -> Self {
        let claims = grant.claims();
        Self {
            jti: &claims.jti,
            source,
            limits: claims.limits.unwrap_or_default(),
            // Year 9999 at most, so the addition cannot overflow.
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(claims.exp.min(253_402_300_799)),
            now,
        }
    }
}

/// Which upload limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `limit_per_min`: too many uploads in the last 60 seconds.
    PerMin,
    /// `limit_per_source_ip`: this address used the key's whole budget.
    PerSourceIp,
    /// `limit_keys_per_source`: a [`MemoryStore`](super::MemoryStore) already holds counters
    /// for as many live keys first used from this address (IPv6: its /64) as it allows one
    /// address, so a single client minting keys cannot fill the store for everyone.
    KeysPerSource,
}

impl Limit {
    /// The stable problem code: `limit_per_min`, `limit_per_source_ip` or
    /// `limit_keys_per_source`.
    pub fn code(self) -> &'static str {
        match self {
            Self::PerMin => "limit_per_min",
            Self::PerSourceIp => "limit_per_source_ip",
            Self::KeysPerSource => "limit_keys_per_source",
        }
    }
}

/// The answer to an upload attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadDecision {
    /// The upload may go ahead; it has been counted.
    Allowed,
    /// The upload is refused; nothing was counted.
    Refused {
        /// The limit that refused it.
        limit: Limit,
        /// When an attempt could next succeed (`Retry-After`); `None` when waiting will not
        /// help (`per_source_ip`, or a limit of zero).
        retry_after: Option<Duration>,
    },
}

/// A rate budget for [`LimitStore::check_rate`]: `per_minute` events per minute on average,
/// with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per minute, sustained.
    pub per_minute: NonZeroU32,
    /// Events allowed at once after an idle period.
    pub burst: NonZeroU32,
}

impl Rate {
    /// The time between two events at the sustained rate, in microseconds (at least 1).
    pub(crate) fn interval_us(self) -> u64 {
        (60_000_000 / u64::from(self.per_minute.get())).max(1)
    }
}

/// The answer to a rate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateDecision {
    /// The event is allowed and counted.
    Allowed,
    /// The budget is spent; nothing was counted.
    Limited {
        /// When the next event would be allowed (`Retry-After`).
        retry_after: Duration,
    },
}

/// The store could not decide. Callers fail closed unless configured otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer (unreachable, refused, timed out, or answered nonsense).
    #[error("the limit store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The memory store holds its maximum number of live entries.
    #[error("the limit store is full ({max_entries} live entries)")]
    Full {
        /// The configured maximum.
        max_entries: usize,
    },
    /// The store's address could not be used.
    #[error("invalid limit store address")]
    InvalidAddress(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The stable problem code for every store error: `limit_store_unavailable`.
    pub fn code(&self) -> &'static str {
        "limit_store_unavailable"
    }
}

/// A store call that took longer than its bound.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct TimedOut(pub Duration);

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch (0 before it).
pub(crate) fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How long the counters of a key expiring at `expires_at` are kept, seen at `now`: until
/// `expires_at + retention`.
pub(crate) fn ttl_ms(expires_at: SystemTime, now: SystemTime, retention: Duration) -> u64 {
    let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    unix_ms(expires_at).saturating_add(retention_ms).saturating_sub(unix_ms(now)).max(MIN_TTL_MS)
}

/// The decision for limits that need no store: a zero limit refuses, no limit allows.
pub(crate) fn without_store(limits: crate::token::claims::Limits) -> Option<UploadDecision> {
    if limits.per_source_ip == Some(0) {
        return Some(UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None });
    }
    if limits.per_min == Some(0) {
        return Some(UploadDecision::Refused { limit: Limit::PerMin, retry_after: None });
    }
    if limits.per_min.is_none() && limits.per_source_ip.is_none() {
        return Some(UploadDecision::Allowed);
    }
    None
}

/// The source an attempt is counted under: IPv4 addresses as they are (IPv4-mapped IPv6
/// addresses as their IPv4 address), IPv6 addresses by their /64, which one host or customer
/// holds whole (as the mint limiter counts them).
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The store key of a rate budget: the caller's key with the budget's rate and burst, so two
/// budgets checked under one key string never share a counter.
pub(crate) fn rate_key(key: &str, rate: Rate) -> String {
    format!("{}/{}:{key}", rate.per_minute, rate.burst)
}
