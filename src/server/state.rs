//! The running issuer and what is derived from it, swapped as a unit on reload.

use crate::issuer::{Issuer, SignedRevocations};
use crate::server::audit::AuditLog;
use crate::server::document::{Document, discovery_document, jwks_document};
use crate::server::metrics::Metrics;
use crate::server::problem::ApiError;
use crate::server::source::{Rejection, ReloadState, Source, rfc3339};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, PoisonError};

/// An issuer and what is derived from it once, swapped as a unit.
pub(crate) struct Serving {
    /// The per-address limiter and the settings it was built with; shared with the next `Serving`
    /// when a reload keeps the settings, so a reload never refills a spent budget.
    pub(crate) limiter: Option<(crate::config::RateLimit, Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>)>,
    /// The shared store (`server.rate_limit_store`) and its URL; when set it decides instead of
    /// `limiter`, so every replica spends one budget. Kept across reloads while the URL is.
    pub(crate) shared: Option<(String, Arc<dyn crate::limits::LimitStore>)>,
    /// Checks since the limiter was last pruned.
    pub(crate) limiter_checks: std::sync::atomic::AtomicU32,
    pub(crate) issuer: Issuer,
    pub(crate) jwks: Document,
    /// The RFC 8414 metadata, when the issuer is a URL.
    pub(crate) discovery: Option<Document>,
    pub(crate) audit: AuditLog,
    /// The last signed revocation list, encoded for serving, re-signed when half-used.
    pub(crate) revocations: Mutex<Option<(SignedRevocations, Document)>>,
    /// The service's metrics (shared by every `Serving` of one handle).
    pub(crate) metrics: Arc<Metrics>,
}

/// A shared, atomically replaceable issuer, with where it came from and how reloads went.
#[derive(Clone)]
pub struct IssuerHandle {
    serving: Arc<ArcSwap<Serving>>,
    source: Option<Arc<Source>>,
    state: Arc<Mutex<ReloadState>>,
    reloading: Arc<Mutex<()>>,
    metrics: Arc<Metrics>,
    /// Whether the main listener answers `/metrics`: fixed at start, like the listen addresses
    /// (`server.metrics_listen` unset).
    metrics_on_main: bool,
    /// Lets one `/readyz` failure a minute reach the log (a probe asks every few seconds).
    not_ready_log: Arc<crate::server::router::Throttle>,
}

impl IssuerHandle {
    /// A handle serving `issuer`.
    ///
    /// # Errors
    ///
    /// When the configured `server.audit_log` cannot be opened for appending.
    pub fn new(issuer: Issuer) -> std::io::Result<Self> {
        let audit = AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        let state = ReloadState { loaded_at: rfc3339(chrono::Utc::now()), ..Default::default() };
        let metrics = Arc::new(Metrics::new());
        let metrics_on_main = issuer.config().server.metrics_listen.is_none();
        Ok(Self {
            serving: Arc::new(ArcSwap::from_pointee(Serving::new(issuer, audit, None, Arc::clone(&metrics))?)),
            source: None,
            state: Arc::new(Mutex::new(state)),
            reloading: Arc::default(),
            metrics,
            metrics_on_main,
            not_ready_log: Arc::default(),
        })
    }

    pub(crate) fn with_source(mut self, source: Source) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn source(&self) -> Option<Source> {
        self.source.as_deref().cloned()
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, ReloadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn reload_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.reloading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last rejected reload, if any.
    pub fn last_rejected(&self) -> Option<Rejection> {
        self.state().last_rejected.clone()
    }

    /// Replaces the issuer; requests already running finish with the old one. The per-address
    /// rate limiter, with what every address has spent, carries over unless the new config
    /// changes its settings.
    ///
    /// # Errors
    ///
    /// When the new config's `server.audit_log` cannot be opened; the running issuer stays.
    pub fn replace(&self, issuer: Issuer) -> std::io::Result<()> {
        let audit = AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        let previous = self.serving.load();
        self.serving.store(Arc::new(Serving::new(issuer, audit, Some(&previous), Arc::clone(&self.metrics))?));
        Ok(())
    }

    /// The current config version.
    pub fn config_version(&self) -> u64 {
        self.serving.load().issuer.config().version
    }

    pub(crate) fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether `/metrics` is served on the main listener (no `server.metrics_listen` at start).
    pub(crate) fn metrics_on_main(&self) -> bool {
        self.metrics_on_main
    }

    /// The throttle of `/readyz` failure logs, shared across reloads.
    pub(crate) fn not_ready_log(&self) -> &crate::server::router::Throttle {
        &self.not_ready_log
    }

    /// The metrics exposition (Prometheus/OpenMetrics text) of this service now.
    ///
    /// # Errors
    ///
    /// When the text cannot be written (never for an in-memory string).
    pub fn render_metrics(&self) -> Result<String, std::fmt::Error> {
        self.metrics.render(self, std::time::SystemTime::now())
    }
}

impl Serving {
    /// The derived state of `issuer`, keeping the rate limiter of `previous` when its
    /// settings are the same.
    ///
    /// # Errors
    ///
    /// When the JWKS does not serialise.
    pub(crate) fn new(
        issuer: Issuer,
        audit: AuditLog,
        previous: Option<&Serving>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let jwks = jwks_document(&issuer).map_err(std::io::Error::other)?;
        let discovery = discovery_document(&issuer).map_err(std::io::Error::other)?;
        let kept = |limit: crate::config::RateLimit| {
            previous
                .and_then(|p| p.limiter.as_ref())
                .filter(|(settings, _)| *settings == limit)
                .map(|(_, limiter)| Arc::clone(limiter))
        };
        let limiter = issuer.config().server.rate_limit.map(|limit| {
            let limiter = kept(limit).unwrap_or_else(|| {
                Arc::new(governor::RateLimiter::keyed(
                    governor::Quota::per_minute(limit.per_minute).allow_burst(limit.burst),
                ))
            });
            (limit, limiter)
        });
        let shared = match &issuer.config().server.rate_limit_store {
            None => None,
            Some(url) => {
                let kept = previous.and_then(|p| p.shared.as_ref()).filter(|(held, _)| held == url);
                let store = match kept {
                    Some((_, store)) => Arc::clone(store),
                    None => {
                        // The Redis connection lives on the runtime that serves the requests.
                        if tokio::runtime::Handle::try_current().is_err() {
                            return Err(std::io::Error::other("server.rate_limit_store needs a tokio runtime"));
                        }
                        // The error names no part of the URL (it may hold a password).
                        let store = crate::limits::RedisStore::connect(url)
                            .map_err(|_| std::io::Error::other("server.rate_limit_store is not a usable Redis URL"))?;
                        Arc::new(store) as Arc<dyn crate::limits::LimitStore>
                    }
                };
                Some((url.clone(), store))
            }
        };
        Ok(Self {
            limiter,
            shared,
            limiter_checks: Default::default(),
            issuer,
            jwks,
            discovery,
            audit,
            revocations: Mutex::new(None),
            metrics,
        })
    }

    /// Counts a request from `ip` against the per-source rate; `429` with `Retry-After` when
    /// it is spent. IPv6 sources count per /64, which one client typically holds whole.
    /// With `server.rate_limit_store`, the budget is the shared store's (a GCRA with the same
    /// rate and burst), and a store that does not answer refuses with `503
    /// limit_store_unavailable` (fail closed).
    pub(crate) async fn rate_limit(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        let Some((settings, limiter)) = &self.limiter else { return Ok(()) };
        let too_many = |seconds: u64| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; retry later",
            )
            .retry_after(seconds.max(1))
        };
        if let Some((_, store)) = &self.shared {
            use crate::limits::{Rate, RateDecision};
            let rate = Rate { per_minute: settings.per_minute, burst: settings.burst };
            let key = format!("mint:{}", source_key(ip));
            return match store.check_rate(&key, rate, std::time::SystemTime::now()).await {
                Ok(RateDecision::Allowed) => Ok(()),
                Ok(RateDecision::Limited { retry_after }) => {
                    Err(too_many(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit store unavailable; request refused");
                    Err(ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "limit_store_unavailable",
                        "the rate limit store is unavailable; retry later",
                    )
                    .retry_after(1))
                }
            };
        }
        // Every 4096 checks, forget sources whose budget is full again: memory stays bounded by
        // the sources active within one refill period, at an amortised cost.
        if self.limiter_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter.check_key(&source_key(ip)).map_err(|not_until| {
            use governor::clock::Clock as _;
            self.metrics.rate_limited();
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            too_many(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// When the revocation list held for serving was signed; `None` before the first request.
    pub(crate) fn revocations_signed_at(&self) -> Option<u64> {
        self.revocations.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|(list, _)| list.iat)
    }

    /// The signed revocation list, ready to serve with its ETag, cacheable until half its
    /// freshness is used or an API key record expires, when it is signed anew. Cloning it is a reference count, not a copy.
    ///
    /// # Errors
    ///
    /// [`EncodeError`](crate::token::jws::EncodeError) when a new list cannot be signed; the
    /// list held before, if any, is kept for the next request.
    pub(crate) fn revocations(&self, now: std::time::SystemTime) -> Result<Document, crate::token::jws::EncodeError> {
        let secs = crate::verify::unix_seconds(now);
        let half = u64::from(self.issuer.config().revocations_max_age) / 2;
        let mut held = self.revocations.lock().unwrap_or_else(PoisonError::into_inner);
        let renew_at = |list: &SignedRevocations| list.iat + half;
        // A record that expired since the list was signed must reach verifiers now, not
        // half a freshness period later.
        let expired_since = |list: &SignedRevocations| {
            self.issuer
                .config()
                .api_keys()
                .iter()
                .filter_map(|k| k.expires_at_unix())
                .any(|e| e > list.iat && e <= secs)
        };
        let stale =
            held.as_ref().is_none_or(|(list, _)| secs >= renew_at(list) || secs < list.iat || expired_since(list));
        let (list, document) = match held.take() {
            Some(current) if !stale => current,
            previous => match self.issuer.revocation_list(now) {
                Ok(list) => {
                    let document = Document::new(list.token.clone().into_bytes(), "application/jwt", 0);
                    (list, document)
                }
                Err(e) => {
                    *held = previous;
                    return Err(e);
                }
            },
        };
        // Cached no longer than until the next record expires.
        let next_expiry =
            self.issuer.config().api_keys().iter().filter_map(|k| k.expires_at_unix()).filter(|e| *e > secs).min();
        let until = next_expiry.map_or(renew_at(&list), |e| e.min(renew_at(&list)));
        let served = document.clone().max_age(until.saturating_sub(secs));
        *held = Some((list, document));
        Ok(served)
    }
}

/// What `/readyz` reports: each check of [`Serving::readiness`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Readiness {
    /// A validated config is loaded (always, once serving).
    pub(crate) config: Check,
    /// The signing key is published in the JWKS this process serves, so what it signs verifies.
    pub(crate) signing_key: Check,
    /// A revocation list can be signed now.
    pub(crate) revocations: Check,
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Check {
    /// The check passed.
    Ok,
    /// The check failed; the log says why.
    Failed,
}

impl Readiness {
    /// Whether every check passed.
    pub(crate) fn ready(&self) -> bool {
        [self.config, self.signing_key, self.revocations].iter().all(|c| *c == Check::Ok)
    }
}

impl Serving {
    /// Whether this process can do its work: config loaded, a signing key that is published,
    /// and a revocation list it can sign (for the issuer, a fresh list is one it can sign).
    ///
    /// A failure is logged at most once per [`Throttle::EVERY`](crate::server::router::Throttle)
    /// through `log` (with the number held back since), at debug level otherwise: an
    /// orchestrator probes every few seconds.
    pub(crate) fn readiness(&self, now: std::time::SystemTime, log: &crate::server::router::Throttle) -> Readiness {
        let check = |ok: bool| if ok { Check::Ok } else { Check::Failed };
        let keys = self.issuer.keyring();
        let revocation_error = self.revocations(now).err();
        let revocations = check(revocation_error.is_none());
        let readiness =
            Readiness { config: Check::Ok, signing_key: check(keys.publishes(keys.signing().kid())), revocations };
        if !readiness.ready() {
            let error = revocation_error.map(|e| e.to_string()).unwrap_or_default();
            match log.allow(std::time::Instant::now()) {
                Some(held_back) => tracing::error!(target: "keysmith::server",
                    signing_key = ?readiness.signing_key, revocations = ?readiness.revocations, %error, held_back,
                    "not ready"
                ),
                None => tracing::debug!(target: "keysmith::server",
                    signing_key = ?readiness.signing_key, revocations = ?readiness.revocations, %error,
                    "not ready"
                ),
            }
        }
        readiness
    }
}

/// The rate-limit and connection-cap key of an address: IPv4 as is, IPv6 by its /64.
pub(crate) fn source_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let segments = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        v4 => v4,
    }
}
