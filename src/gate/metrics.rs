//! The gate's `/metrics`, in the OpenMetrics text format (`prometheus-client`, as the issuer's).
//!
//! Labels come only from stable codes ([`Refusal::code`] and `allowed`), never from the
//! request, so a client cannot create series.

use crate::enforce::{Authorized, Refusal};
use crate::limits::{LimitStore, Rate, RateDecision, StoreFuture, UploadAttempt, UploadDecision};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::SystemTime;

/// The media type of the exposition.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

/// What the gate holds now, read at each scrape.
pub(super) struct Held {
    /// When the JWKS was last loaded or confirmed unchanged.
    pub(super) jwks_loaded: Option<SystemTime>,
    /// JWKS loads that failed so far (the last good keys were kept).
    pub(super) jwks_failures: u64,
    /// The `iat` of the revocation list held, if any.
    pub(super) revocations_iat: Option<u64>,
    /// The verifier's cache: entries held, hits and misses so far.
    pub(super) cache: crate::verify::CacheStats,
    /// Whether the gate can decide.
    pub(super) ready: bool,
}

/// The gate's instruments and the registry that exposes them.
pub(super) struct GateMetrics {
    registry: Registry,
    /// One scrape at a time: the state gauges are set before encoding.
    scrape: std::sync::Mutex<()>,
    decisions: Family<CodeLabels, Counter>,
    store_errors: Counter,
    cache_entries: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    jwks_age: Gauge,
    jwks_failures: Counter,
    revocation_age: Gauge,
    ready: Gauge,
}

impl std::fmt::Debug for GateMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateMetrics").finish_non_exhaustive()
    }
}

impl GateMetrics {
    pub(super) fn new() -> Self {
        let mut registry = Registry::with_prefix("keysmith_gate");
        let decisions = Family::<CodeLabels, Counter>::default();
        registry.register(
            "decisions",
            "Forward-auth decisions, by code: allowed, or the refusal's problem code",
            decisions.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "limit_store_errors",
            "Upload-limit checks the limit store could not decide (denied or let through per on_store_error)",
            store_errors.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register("cache_entries", "Verified tokens held in the verifier's cache", cache_entries.clone());
        let cache_hits = Counter::default();
        registry.register("cache_hits", "Tokens found already verified in the cache", cache_hits.clone());
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Tokens not in the cache, verified in full (signature included)",
            cache_misses.clone(),
        );
        let jwks_age = Gauge::default();
        registry.register_with_unit(
            "jwks_age",
            "Time since the JWKS was last loaded or confirmed unchanged; -1 while the gate holds none",
            Unit::Seconds,
            jwks_age.clone(),
        );
        let jwks_failures = Counter::default();
        registry.register(
            "jwks_load_failures",
            "JWKS loads that failed (a fetch or a file that could not be read, or not a valid key set); \
             the last good keys were kept",
            jwks_failures.clone(),
        );
        let revocation_age = Gauge::default();
        registry.register_with_unit(
            "revocation_list_age",
            "Time since the held revocation list was signed; -1 while the gate holds none",
            Unit::Seconds,
            revocation_age.clone(),
        );
        let ready = Gauge::default();
        registry.register("ready", "1 when the gate can decide (as /healthz), 0 otherwise", ready.clone());
        // Exposed from the start, so a rate over it is defined before the first request.
        drop(decisions.get_or_create(&CodeLabels { code: "allowed" }));
        Self {
            registry,
            scrape: std::sync::Mutex::new(()),
            decisions,
            store_errors,
            cache_entries,
            cache_hits,
            cache_misses,
            jwks_age,
            jwks_failures,
            revocation_age,
            ready,
        }
    }

    /// Counts one decision under `allowed` or the refusal's stable code.
    pub(super) fn decided(&self, decision: Result<&Authorized, &Refusal>) {
        let code = match decision {
            Ok(_) => "allowed",
            Err(refusal) => refusal.code(),
        };
        self.decisions.get_or_create(&CodeLabels { code }).inc();
    }

    /// The exposition, with the state gauges set from `held` at `now`.
    pub(super) fn render(&self, held: &Held, now: SystemTime) -> Result<String, std::fmt::Error> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.cache_entries.set(i64::try_from(held.cache.entries).unwrap_or(i64::MAX));
        // The cache counts; the counters follow them (one scrape at a time, so never twice).
        self.cache_hits.inc_by(held.cache.hits.saturating_sub(self.cache_hits.get()));
        self.cache_misses.inc_by(held.cache.misses.saturating_sub(self.cache_misses.get()));
        let jwks = held.jwks_loaded.map_or(-1, |at| clamp(now.duration_since(at).map_or(0, |d| d.as_secs())));
        self.jwks_age.set(jwks);
        self.jwks_failures.inc_by(held.jwks_failures.saturating_sub(self.jwks_failures.get()));
        let secs = crate::verify::unix_seconds(now);
        self.revocation_age.set(held.revocations_iat.map_or(-1, |iat| clamp(secs.saturating_sub(iat))));
        self.ready.set(i64::from(held.ready));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// `store`, counting every error it returns.
    pub(super) fn counting(&self, store: Arc<dyn LimitStore>) -> Arc<dyn LimitStore> {
        Arc::new(CountingStore { inner: store, errors: self.store_errors.clone() })
    }
}

/// A limit store that counts the errors of the one it wraps.
struct CountingStore {
    inner: Arc<dyn LimitStore>,
    errors: Counter,
}

impl LimitStore for CountingStore {
    fn check_upload<'a>(&'a self, attempt: UploadAttempt<'a>) -> StoreFuture<'a, UploadDecision> {
        Box::pin(async move {
            let decided = self.inner.check_upload(attempt).await;
            if decided.is_err() {
                self.errors.inc();
            }
            decided
        })
    }

    fn check_rate<'a>(&'a self, key: &'a str, rate: Rate, now: SystemTime) -> StoreFuture<'a, RateDecision> {
        Box::pin(async move {
            let decided = self.inner.check_rate(key, rate, now).await;
            if decided.is_err() {
                self.errors.inc();
            }
            decided
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::StoreError;
    use std::num::NonZeroU32;

    /// A store that never answers.
    struct Down;

    impl LimitStore for Down {
        fn check_upload<'a>(&'a self, _: UploadAttempt<'a>) -> StoreFuture<'a, UploadDecision> {
            Box::pin(async { Err(StoreError::Full { max_entries: 1 }) })
        }

        fn check_rate<'a>(&'a self, _: &'a str, _: Rate, _: SystemTime) -> StoreFuture<'a, RateDecision> {
            Box::pin(async { Err(StoreError::Full { max_entries: 1 }) })
        }
    }

    #[test]
    fn every_limit_store_error_is_counted_whatever_on_store_error_decides() {
        let metrics = GateMetrics::new();
        let store = metrics.counting(Arc::new(Down));
        let now = SystemTime::now();
        let attempt = UploadAttempt {
            jti: "j",
            source: std::net::Ipv4Addr::LOCALHOST.into(),
            limits: crate::token::claims::Limits::default(),
            expires_at: now,
            now,
        };
        let rate = Rate { per_minute: NonZeroU32::MIN, burst: NonZeroU32::MIN };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            assert!(store.check_upload(attempt).await.is_err());
            assert!(store.check_rate("k", rate, now).await.is_err());
        });
        assert_eq!(metrics.store_errors.get(), 2);
        let held = Held {
            jwks_loaded: None,
            jwks_failures: 0,
            revocations_iat: None,
            cache: Default::default(),
            ready: false,
        };
        let text = metrics.render(&held, now).unwrap();
        assert!(text.contains("keysmith_gate_limit_store_errors_total 2"), "{text}");
        assert!(text.contains("keysmith_gate_jwks_age_seconds -1"), "{text}");
        assert!(text.contains("keysmith_gate_ready 0"), "{text}");
    }
}
