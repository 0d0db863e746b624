//! The in-process limit store: one process, bounded memory, no async runtime.

use super::{
    DEFAULT_RETENTION, LimitStore, MAX_SOURCES_PER_KEY, Rate, RateDecision, StoreError, StoreFuture, UploadAttempt,
    UploadDecision, WINDOW_MS, canonical, rate_key, ttl_ms, unix_ms, unix_us, without_store,
};
use crate::limits::Limit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Entries inserted between two sweeps of expired entries, at least (amortised pruning).
const SWEEP_EVERY: usize = 1024;

/// A [`LimitStore`] in this process's memory: the budget of one process only.
///
/// Holds at most `max_entries` live entries (one per key with upload limits, one per source
/// address counted for such a key, one per rate budget). Expired entries (keys past their
/// `exp` and the retention after it, rate budgets back to full) are swept in bulk once
/// enough new entries were inserted, so each insertion costs O(1) amortised; when the store is
/// full of live entries a new key is refused with [`StoreError::Full`] rather than evicting a
/// live budget (which would hand its holder a fresh one). Once the store is more than half
/// full, one source (an IPv4 address, an IPv6 /48) may hold counters for at most
/// `max_keys_per_source` live keys it first used; a further new key from it is refused with
/// [`Limit::KeysPerSource`], so one client minting keys from a public template cannot fill the
/// store for everyone, while a busy address (a NAT) is not held back in normal operation. Many
/// sources can still fill it: size the store, or use Redis, for the clients expected.
#[derive(Debug)]
pub struct MemoryStore {
    max_entries: usize,
    max_keys_per_source: usize,
    retention: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    uploads: HashMap<String, Uploads>,
    rates: HashMap<String, u64>,
    /// The source entries of every key in `uploads`, together.
    sources: usize,
    /// For each source (IPv4 address, IPv6 /48) that first used a key held in `uploads`, when
    /// each such key's counters go (ms since the epoch). At most one entry per live key.
    keys_by_source: HashMap<IpAddr, Vec<u64>>,
    inserted_since_sweep: usize,
}

/// The counters of one key.
#[derive(Debug, Default)]
struct Uploads {
    /// When the counters may go: the key's `exp` plus the retention (ms since the epoch).
    expires_ms: u64,
    /// Times of the uploads accepted in the last 60 s (ms since the epoch), ascending.
    window: Vec<u64>,
    /// Uploads accepted per source address, over the key's life.
    by_source: HashMap<IpAddr, u32>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_ENTRIES)
    }
}

impl MemoryStore {
    /// The default bound on live entries.
    pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

    /// A store holding at most `max_entries` live entries, and counters for at most 1 % of
    /// them (at least 16 keys) first used from one address.
    pub fn new(max_entries: usize) -> Self {
        let max_keys_per_source = (max_entries / 100).max(16);
        Self { max_entries, max_keys_per_source, retention: DEFAULT_RETENTION, inner: Mutex::new(Inner::default()) }
    }

    /// This store allowing, once more than half full, counters for at most `max` live keys first
    /// used from one source (an IPv4 address, an IPv6 /48).
    #[must_use]
    pub fn with_max_keys_per_source(mut self, max: usize) -> Self {
        self.max_keys_per_source = max;
        self
    }

    /// This store keeping a key's counters until its `exp` plus `retention`. Defaults to
    /// [`DEFAULT_RETENTION`]; a retention shorter than the verifiers' leeway after `exp` gives
    /// a spent `per_source_ip` budget back while the key is still accepted.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Live and not yet swept entries held now (keys, their source entries, rate budgets).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`LimitStore::check_upload`] without a future.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] when a new key arrives while `max_entries` live entries are held.
    pub fn upload(&self, attempt: UploadAttempt<'_>) -> Result<UploadDecision, StoreError> {
        if let Some(decision) = without_store(attempt.limits) {
            return Ok(decision);
        }
        let now_ms = unix_ms(attempt.now);
        let now_us = unix_us(attempt.now);
        let source = canonical(attempt.source);
        let mut inner = self.lock();
        let (key_known, source_known, sources_held) = match inner.uploads.get(attempt.jti) {
            Some(e) => (true, e.by_source.contains_key(&source), e.by_source.len()),
            None => (false, false, 0),
        };
        let new_source = attempt.limits.per_source_ip.is_some() && !source_known;
        if new_source && sources_held >= MAX_SOURCES_PER_KEY {
            // Fail closed: a key used from this many sources gets no budget for another one.
            return Ok(UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None });
        }
        let ttl = ttl_ms(attempt.expires_at, attempt.now, self.retention);
        let starter = key_source(attempt.source);
        // Under pressure (more than half full), at most `max_keys_per_source` live keys started
        // from one source. Bounded work: at most that many expiry times per source.
        if !key_known && inner.len().saturating_mul(2) > self.max_entries {
            let held = inner.keys_by_source.entry(starter).or_default();
            held.retain(|&until| until > now_ms);
            if held.len() >= self.max_keys_per_source {
                // Retrying helps only if a slot frees while the presented key is still valid.
                let first = held.iter().min().copied().unwrap_or(now_ms);
                let key_ends = unix_ms(attempt.expires_at);
                let retry_after =
                    (first < key_ends).then(|| Duration::from_millis(first.saturating_sub(now_ms).max(1)));
                return Ok(UploadDecision::Refused { limit: Limit::KeysPerSource, retry_after });
            }
        }
        let needed = usize::from(!key_known) + usize::from(new_source);
        if needed > 0 {
            self.make_room(&mut inner, needed, now_ms, now_us)?;
        }
        let Inner { uploads, sources, keys_by_source, .. } = &mut *inner;
        if !key_known {
            keys_by_source.entry(starter).or_default().push(now_ms.saturating_add(ttl));
        }
        let entry = uploads.entry(attempt.jti.to_owned()).or_default();
        entry.expires_ms = entry.expires_ms.max(now_ms.saturating_add(ttl));

        // 1. per_source_ip: permanent for this address, so it is reported first.
        if let Some(max) = attempt.limits.per_source_ip
            && entry.by_source.get(&source).copied().unwrap_or(0) >= max
        {
            return Ok(UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None });
        }
        // 2. per_min: the uploads accepted in (now - 60 s, now].
        if let Some(max) = attempt.limits.per_min {
            let start = now_ms.saturating_sub(WINDOW_MS);
            entry.window.retain(|&t| t > start);
            if entry.window.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
                let oldest = entry.window.first().copied().unwrap_or(now_ms);
                let wait = oldest.saturating_add(WINDOW_MS).saturating_sub(now_ms).max(1);
                return Ok(UploadDecision::Refused {
                    limit: Limit::PerMin,
                    retry_after: Some(Duration::from_millis(wait)),
                });
            }
        }
        // 3. Both allow: count the upload against both.
        if attempt.limits.per_min.is_some() {
            let at = entry.window.partition_point(|&t| t <= now_ms);
            entry.window.insert(at, now_ms);
        }
        if attempt.limits.per_source_ip.is_some() {
            let used = entry.by_source.entry(source).or_insert_with(|| {
                *sources = sources.saturating_add(1);
                0
            });
            *used = used.saturating_add(1);
        }
        Ok(UploadDecision::Allowed)
    }

    /// [`LimitStore::check_rate`] without a future.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] when a new key arrives while `max_entries` live entries are held.
    pub fn rate(&self, key: &str, rate: Rate, now: SystemTime) -> Result<RateDecision, StoreError> {
        let now_ms = unix_ms(now);
        let now_us = unix_us(now);
        let key = rate_key(key, rate);
        let mut inner = self.lock();
        let tat = match inner.rates.get(&key) {
            Some(&tat) => tat,
            None => {
                self.make_room(&mut inner, 1, now_ms, now_us)?;
                0
            }
        };
        match gcra(tat, now_us, rate) {
            Ok(new_tat) => {
                inner.rates.insert(key, new_tat);
                Ok(RateDecision::Allowed)
            }
            Err(retry_after) => Ok(RateDecision::Limited { retry_after }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update below leaves the maps consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for `needed` new entries: sweeps expired entries when due or when full.
    fn make_room(&self, inner: &mut Inner, needed: usize, now_ms: u64, now_us: u64) -> Result<(), StoreError> {
        let len = inner.len();
        if inner.inserted_since_sweep >= len.max(SWEEP_EVERY) || len.saturating_add(needed) > self.max_entries {
            let Inner { uploads, rates, sources, keys_by_source, .. } = inner;
            uploads.retain(|_, e| {
                let keep = e.expires_ms > now_ms;
                if !keep {
                    *sources = sources.saturating_sub(e.by_source.len());
                }
                keep
            });
            keys_by_source.retain(|_, held| {
                held.retain(|&until| until > now_ms);
                !held.is_empty()
            });
            rates.retain(|_, &mut tat| tat > now_us);
            inner.inserted_since_sweep = 0;
        }
        if inner.len().saturating_add(needed) > self.max_entries {
            return Err(StoreError::Full { max_entries: self.max_entries });
        }
        inner.inserted_since_sweep = inner.inserted_since_sweep.saturating_add(needed);
        Ok(())
    }
}

/// The source a new key is charged to: an IPv4 address, or an IPv6 /48 (a site: one customer
/// may hold a /56 or a /48, 256 or 65 536 /64s).
fn key_source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 48))),
        v4 => v4,
    }
}

impl Inner {
    /// Entries held: keys, their source entries, rate budgets.
    fn len(&self) -> usize {
        self.uploads.len().saturating_add(self.sources).saturating_add(self.rates.len())
    }
}

/// GCRA: the new theoretical arrival time when an event at `now_us` fits, or how long to wait.
///
/// An event is allowed when, after it, the theoretical arrival time is at most `burst`
/// intervals ahead of now; a budget whose arrival time has passed is full again.
pub(crate) fn gcra(tat_us: u64, now_us: u64, rate: Rate) -> Result<u64, Duration> {
    let interval = rate.interval_us();
    let new_tat = tat_us.max(now_us).saturating_add(interval);
    let tolerance = interval.saturating_mul(u64::from(rate.burst.get()));
    let ahead = new_tat - now_us;
    if ahead > tolerance { Err(Duration::from_micros(ahead - tolerance)) } else { Ok(new_tat) }
}

impl LimitStore for MemoryStore {
    fn check_upload<'a>(&'a self, attempt: UploadAttempt<'a>) -> StoreFuture<'a, UploadDecision> {
        Box::pin(std::future::ready(self.upload(attempt)))
    }

    fn check_rate<'a>(&'a self, key: &'a str, rate: Rate, now: SystemTime) -> StoreFuture<'a, RateDecision> {
        Box::pin(std::future::ready(self.rate(key, rate, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::claims::Limits;
    use proptest::prelude::*;
    use std::num::NonZeroU32;

    const T0: u64 = 1_800_000_000_000;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn attempt(jti: &str, source: &str, limits: Limits, now_ms: u64) -> UploadAttempt<'static> {
        UploadAttempt {
            jti: Box::leak(jti.to_owned().into_boxed_str()),
            source: source.parse().unwrap(),
            limits,
            expires_at: at(T0 + 3_600_000),
            now: at(now_ms),
        }
    }

    fn per_min(n: u32) -> Limits {
        Limits { per_min: Some(n), per_source_ip: None }
    }

    /// Once the store is more than half full, one source (an IPv4 address, an IPv6 /48) holds
    /// counters for at most `max_keys_per_source` live keys it started: the next new key from
    /// it is refused, with `Retry-After` only when a slot frees while that key is still valid;
    /// keys it already holds, and other sources, are decided as before.
    #[test]
    fn one_source_cannot_fill_the_store_with_new_keys() {
        let store = MemoryStore::new(10).with_max_keys_per_source(3);
        let retention = DEFAULT_RETENTION.as_millis() as u64;
        let exp = T0 + 600_000;
        let key = |jti: &str, source: &str, exp: u64, now| UploadAttempt {
            expires_at: at(exp),
            ..attempt(jti, source, per_min(5), now)
        };
        let allowed = |jti: &str, source: &str, now| store.upload(key(jti, source, exp, now)).unwrap();
        // Not under pressure: a busy source is not held back.
        for jti in ["a", "b", "c", "d"] {
            assert_eq!(allowed(jti, "2001:db8::1", T0), UploadDecision::Allowed);
        }
        for jti in ["x", "y"] {
            assert_eq!(allowed(jti, "192.0.2.7", T0), UploadDecision::Allowed);
        }
        // More than half full: the /48 has started 4 live keys, more than 3.
        let refused =
            |jti: &str, source: &str, key_exp: u64, now| store.upload(key(jti, source, key_exp, now)).unwrap();
        assert_eq!(
            refused("e", "2001:db8:0:ff::9", exp, T0 + 1000),
            UploadDecision::Refused { limit: Limit::KeysPerSource, retry_after: None },
            "no slot frees before this key expires: waiting does not help"
        );
        assert_eq!(
            refused("e", "2001:db8:0:ff::9", exp + 3_600_000, T0 + 1000),
            UploadDecision::Refused {
                limit: Limit::KeysPerSource,
                retry_after: Some(Duration::from_millis(exp + retention - (T0 + 1000))),
            }
        );
        assert_eq!(allowed("a", "2001:db8::1", T0 + 1000), UploadDecision::Allowed, "a key it holds");
        assert_eq!(allowed("z", "192.0.2.8", T0 + 1000), UploadDecision::Allowed, "another source");
        // Once its keys' counters are gone, the source starts new ones again.
        let later = exp + retention + 1;
        assert_eq!(store.upload(key("f", "2001:db8::3", later + 600_000, later)).unwrap(), UploadDecision::Allowed);
        assert_eq!(Limit::KeysPerSource.code(), "limit_keys_per_source");
    }

    proptest! {
        /// Never more than `per_min` accepted in any 60 s window, and every refusal is justified:
        /// the window really held `per_min` uploads, and `retry_after` is when the oldest leaves.
        #[test]
        fn window_never_exceeds_per_min(n in 1u32..12, gaps in prop::collection::vec(0u64..9_000, 1..150)) {
            let store = MemoryStore::default();
            let mut now = T0;
            let mut accepted: Vec<u64> = Vec::new();
            for gap in gaps {
                now += gap;
                let in_window = accepted.iter().filter(|&&t| t > now - WINDOW_MS).count();
                match store.upload(attempt("k", "192.0.2.1", per_min(n), now)).unwrap() {
                    UploadDecision::Allowed => {
                        prop_assert!(in_window < n as usize);
                        accepted.push(now);
                    }
                    UploadDecision::Refused { limit, retry_after } => {
                        prop_assert_eq!(limit, Limit::PerMin);
                        prop_assert_eq!(in_window, n as usize);
                        let oldest = accepted.iter().copied().find(|&t| t > now - WINDOW_MS).unwrap();
                        prop_assert_eq!(retry_after, Some(Duration::from_millis(oldest + WINDOW_MS - now)));
                    }
                }
            }
            for (i, &t) in accepted.iter().enumerate() {
                let in_window = accepted[..=i].iter().filter(|&&u| u > t - WINDOW_MS).count();
                prop_assert!(in_window <= n as usize, "{in_window} uploads in the 60 s ending at {t}");
            }
        }

        /// After 60 s without uploads a key gets its whole burst back, whatever came before.
        #[test]
        fn full_burst_after_idle_minute(n in 1u32..12, gaps in prop::collection::vec(0u64..9_000, 0..60)) {
            let store = MemoryStore::default();
            let mut now = T0;
            let mut last_accepted = None;
            for gap in gaps {
                now += gap;
                if store.upload(attempt("k", "192.0.2.1", per_min(n), now)).unwrap() == UploadDecision::Allowed {
                    last_accepted = Some(now);
                }
            }
            let idle_from = last_accepted.unwrap_or(now);
            let later = idle_from.max(now) + WINDOW_MS;
            for _ in 0..n {
                prop_assert_eq!(store.upload(attempt("k", "192.0.2.1", per_min(n), later)).unwrap(), UploadDecision::Allowed);
            }
            let refused = store.upload(attempt("k", "192.0.2.1", per_min(n), later)).unwrap();
            prop_assert_eq!(refused, UploadDecision::Refused { limit: Limit::PerMin, retry_after: Some(Duration::from_millis(WINDOW_MS)) });
        }

        /// GCRA: at most `burst + elapsed / interval` events in any run, and a full burst after idling.
        #[test]
        fn gcra_bounds_events(per_minute in 1u32..600, burst in 1u32..20, gaps in prop::collection::vec(0u64..3_000, 1..120)) {
            let rate = Rate { per_minute: NonZeroU32::new(per_minute).unwrap(), burst: NonZeroU32::new(burst).unwrap() };
            let store = MemoryStore::default();
            let mut now = T0;
            let mut allowed = 0u64;
            for gap in gaps {
                now += gap;
                if store.rate("k", rate, at(now)).unwrap() == RateDecision::Allowed {
                    allowed += 1;
                }
                let elapsed_us = (now - T0) * 1000;
                prop_assert!(allowed <= u64::from(burst) + elapsed_us / rate.interval_us());
            }
            let idle = now + (u64::from(burst) * rate.interval_us()).div_ceil(1000);
            for _ in 0..burst {
                prop_assert_eq!(store.rate("k", rate, at(idle)).unwrap(), RateDecision::Allowed);
            }
            let limited = matches!(store.rate("k", rate, at(idle)).unwrap(), RateDecision::Limited { .. });
            prop_assert!(limited, "a burst more than {} was allowed", burst);
        }
    }

    #[test]
    fn refused_per_min_keeps_per_source_ip_budget() {
        let store = MemoryStore::default();
        let limits = Limits { per_min: Some(2), per_source_ip: Some(3) };
        let decide = |ms| store.upload(attempt("k", "192.0.2.1", limits, ms)).unwrap();
        assert_eq!(decide(T0), UploadDecision::Allowed);
        assert_eq!(decide(T0), UploadDecision::Allowed);
        for _ in 0..5 {
            assert!(matches!(decide(T0 + 1), UploadDecision::Refused { limit: Limit::PerMin, .. }));
        }
        assert_eq!(decide(T0 + WINDOW_MS), UploadDecision::Allowed);
        assert_eq!(decide(T0 + WINDOW_MS), UploadDecision::Refused { limit: Limit::PerSourceIp, retry_after: None });
    }

    #[test]
    fn full_store_refuses_new_keys_until_entries_expire() {
        // No retention after `exp`, so "a" expires at its `exp` (the retention has its own test).
        let store = MemoryStore::new(2).with_retention(Duration::ZERO);
        let limits = per_min(1);
        let mut short = attempt("a", "192.0.2.1", limits, T0);
        short.expires_at = at(T0 + 10_000);
        assert_eq!(store.upload(short).unwrap(), UploadDecision::Allowed);
        assert_eq!(store.upload(attempt("b", "192.0.2.1", limits, T0)).unwrap(), UploadDecision::Allowed);
        assert!(matches!(
            store.upload(attempt("c", "192.0.2.1", limits, T0)),
            Err(StoreError::Full { max_entries: 2 })
        ));
        // A known key is still decided while the store is full.
        assert!(matches!(store.upload(attempt("b", "192.0.2.1", limits, T0)).unwrap(), UploadDecision::Refused { .. }));
        // Once "a" expired, it is swept to make room.
        assert_eq!(store.upload(attempt("c", "192.0.2.1", limits, T0 + 10_000)).unwrap(), UploadDecision::Allowed);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn expired_entries_are_swept_amortised() {
        let store = MemoryStore::new(1_000_000);
        let rate = Rate { per_minute: NonZeroU32::new(60).unwrap(), burst: NonZeroU32::new(1).unwrap() };
        for i in 0..5_000u64 {
            // Each budget is full again one second after its event.
            store.rate(&format!("addr-{i}"), rate, at(T0 + i * 1_000)).unwrap();
        }
        assert!(store.len() <= 2 * SWEEP_EVERY, "{} entries held", store.len());
    }

    #[test]
    fn ipv4_mapped_addresses_share_the_ipv4_budget() {
        let store = MemoryStore::default();
        let limits = Limits { per_min: None, per_source_ip: Some(1) };
        assert_eq!(store.upload(attempt("k", "192.0.2.1", limits, T0)).unwrap(), UploadDecision::Allowed);
        assert!(matches!(
            store.upload(attempt("k", "::ffff:192.0.2.1", limits, T0)).unwrap(),
            UploadDecision::Refused { limit: Limit::PerSourceIp, .. }
        ));
    }
}
