//! Keeping a verifier's keys and revocation list fresh from URLs, on background threads.
//!
//! Behind the `refresh` feature so the core verifier stays free of an HTTP client. One call,
//! [`Refresher::start`], bootstraps a service: it fetches the JWKS, returns once it is loaded,
//! keeps it fresh at the interval the document's own `Cache-Control: max-age` gives, and then
//! starts the revocation list (refreshed at half its remaining lifetime, from its `exp`). The
//! last good list is kept until it expires (the verifier then refuses permanent keys: fail
//! closed), and errors back off exponentially.
//!
//! Documents are fetched by a [`Fetch`]: [`UreqFetcher`] by default (plain HTTP with
//! `refresh`, HTTPS with `refresh-rustls`), or any client a service already has. Each refresher
//! runs on its own thread, never on an async runtime's workers, and dropping one never waits
//! for a fetch in flight.
//!
//! ```no_run
//! use keysmith::refresh::{RefreshOptions, Refresher};
//! use keysmith::{KeySet, Verifier};
//! use std::time::{Duration, SystemTime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `issuer` is the `issuer` of keysmith's config.toml; "demo" is this service's project.
//! let verifier = Verifier::new(KeySet::default(), "https://keys.example.com", "demo")
//!     .unknown_kid_wait(Duration::from_secs(2));
//! let _refresher = Refresher::start(
//!     &verifier,
//!     "https://keys.example.com/.well-known/jwks.json",
//!     Some("https://keys.example.com/v1/revocations".into()),
//!     RefreshOptions::default(),
//! )?; // the keys are loaded here; keep `_refresher` alive
//! let grant = verifier.verify("eyJhbGciOiJFZERTQSIs…", SystemTime::now())?;
//! # Ok(())
//! # }
//! ```

mod poller;

use crate::token::jwk::KeySet;
use crate::verify::{KeySource, Verifier};
use poller::{Interval, Poller, Resume, Shared};
use std::io::Read as _;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Largest document fetched, in bytes.
pub const MAX_FETCH_BYTES: u64 = crate::verify::revocation::MAX_REVOCATIONS_LEN as u64;
/// How long one fetch may take with [`UreqFetcher`].
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest gap between two early JWKS fetches.
const MIN_GAP_FLOOR: Duration = Duration::from_millis(100);
/// Interval used when a document states none (no `max-age`, no `exp`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("fetching {url}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong, from the HTTP client.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The response body could not be read.
    #[error("reading the response from {url}")]
    Read {
        /// The URL.
        url: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The server answered `304 Not Modified` to a request that had no ETag to compare.
    #[error("{0}: 304 Not Modified to an unconditional request")]
    NotModified(String),
    /// The fetched JWKS is not a valid key set.
    #[error("JWKS refused")]
    InvalidJwks(#[from] crate::token::jwk::JwkError),
    /// The body is larger than [`MAX_FETCH_BYTES`].
    #[error("{0}: response larger than {MAX_FETCH_BYTES} bytes")]
    TooLarge(String),
    /// The fetched list did not verify.
    #[error("revocation list refused: {0}")]
    Refused(#[from] crate::verify::VerifyError),
}

/// One answer to a conditional `GET`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fetched {
    /// The body, or `None` for `304 Not Modified`.
    pub body: Option<String>,
    /// The response's `ETag`, sent back as `If-None-Match` next time.
    pub etag: Option<String>,
    /// The response's `Cache-Control: max-age`, if any.
    pub max_age: Option<Duration>,
}

impl Fetched {
    /// An answer with `body` (`None` for `304`), its `ETag` and `Cache-Control` header values.
    pub fn new(body: Option<String>, etag: Option<&str>, cache_control: Option<&str>) -> Self {
        Self { body, etag: etag.map(str::to_owned), max_age: cache_control.and_then(max_age) }
    }
}

/// Fetches documents for a refresher: plug in the HTTP client a service already has.
///
/// It is called on the refresher's own thread, never on an async worker, so it may block
/// (an async client can run its future with a runtime handle's `block_on` there). It must
/// bound the time a request takes and the size of the body ([`MAX_FETCH_BYTES`]).
pub trait Fetch: Send + Sync + 'static {
    /// `GET url`, with `If-None-Match: etag` when one is given.
    ///
    /// # Errors
    ///
    /// A [`FetchError`] for a failed request, an error status or an oversized body.
    fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, FetchError>;
}

/// The `max-age` of a `Cache-Control` value (`public, max-age=60`); `None` when it has none,
/// or more than one, or one that is not a number. `no-store` and `no-cache` count as none.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let Some((name, value)) = directive.trim().split_once('=') else { continue };
        if name.trim().eq_ignore_ascii_case("max-age") {
            let value = value.trim().trim_matches('"');
            if found.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            found = Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
        }
    }
    found
}

/// The default [`Fetch`]: ureq, blocking, with a [`FETCH_TIMEOUT`] and a size limit. Plain HTTP
/// with the `refresh` feature; HTTPS (rustls, webpki roots) with `refresh-rustls`.
#[derive(Debug, Clone)]
pub struct UreqFetcher {
    agent: ureq::Agent,
}

impl Default for UreqFetcher {
    fn default() -> Self {
        Self { agent: ureq::AgentBuilder::new().timeout(FETCH_TIMEOUT).build() }
    }
}

impl Fetch for UreqFetcher {
    fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let mut request = self.agent.get(url);
        if let Some(etag) = etag {
            request = request.set("If-None-Match", etag);
        }
        let response = request.call().map_err(|e| FetchError::Http { url: url.to_owned(), source: Box::new(e) })?;
        let (etag, cache_control) =
            (response.header("etag").map(str::to_owned), response.header("cache-control").map(str::to_owned));
        if response.status() == 304 {
            return Ok(Fetched::new(None, etag.as_deref(), cache_control.as_deref()));
        }
        let mut body = String::new();
        response
            .into_reader()
            .take(MAX_FETCH_BYTES + 1)
            .read_to_string(&mut body)
            .map_err(|source| FetchError::Read { url: url.to_owned(), source })?;
        if body.len() as u64 > MAX_FETCH_BYTES {
            return Err(FetchError::TooLarge(url.to_owned()));
        }
        Ok(Fetched::new(Some(body), etag.as_deref(), cache_control.as_deref()))
    }
}

/// Fetches `url` with [`UreqFetcher`]. `Ok(None)` when the server answered `304 Not Modified`
/// to `etag`. Returns the body and its ETag.
///
/// # Errors
///
/// [`FetchError`].
pub fn fetch(url: &str, etag: Option<&str>) -> Result<Option<(String, Option<String>)>, FetchError> {
    let fetched = UreqFetcher::default().get(url, etag)?;
    Ok(fetched.body.map(|body| (body, fetched.etag)))
}

/// An error and its sources, one after the other: what the status shows an operator.
pub(crate) fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The keys of the last good JWKS: the key source a [`JwksRefresher`] plugs into its
/// verifier. A token naming an unknown `kid` wakes the poller early.
struct RefreshedKeys {
    keys: RwLock<Arc<KeySet>>,
    poller: OnceLock<Weak<Shared>>,
}

impl RefreshedKeys {
    fn new(keys: Arc<KeySet>) -> Self {
        Self { keys: RwLock::new(keys), poller: OnceLock::new() }
    }

    /// Parses a fetched JWKS and makes its keys the ones served; `304` keeps them.
    fn load(&self, fetched: &Fetched) -> Result<Option<Duration>, FetchError> {
        if let Some(body) = &fetched.body {
            let keys = KeySet::from_jwks_json(body.as_bytes())?;
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        }
        Ok(fetched.max_age)
    }
}

impl KeySource for RefreshedKeys {
    fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn unknown_kid(&self) {
        if let Some(shared) = self.poller.get().and_then(Weak::upgrade) {
            shared.nudge();
        }
    }

    fn refetch(&self, wait: Duration) -> bool {
        self.poller.get().and_then(Weak::upgrade).is_some_and(|shared| shared.nudge_and_wait(wait))
    }

    fn refetch_kid(&self, kid: &str, wait: Duration) -> bool {
        self.poller
            .get()
            .and_then(Weak::upgrade)
            .is_some_and(|shared| shared.nudge_and_wait_for(kid, wait, || self.key_set().get(kid).is_some()))
    }
}

/// What a refresher has seen.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// When a document was last loaded (or confirmed unchanged).
    pub last_success: Option<SystemTime>,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Failures since the refresher started, never reset: each left the last good document
    /// in place.
    pub failures_total: u64,
    /// Requests made so far.
    pub fetches: u64,
    /// The interval chosen after the last success (from the document, or the one given).
    pub interval: Option<Duration>,
}

/// Loads a fetched revocation list into `verifier`; the next fetch is due at half the list's
/// remaining lifetime, or at its `max-age` if that is sooner.
fn load_revocations(verifier: &Verifier, fetched: &Fetched) -> Result<Option<Duration>, FetchError> {
    let now = SystemTime::now();
    if let Some(body) = &fetched.body {
        verifier.set_revocations(body, now)?;
    }
    let half_life =
        verifier.revocations().and_then(|list| list.expires_at().duration_since(now).ok()).map(|left| left / 2);
    Ok(match (half_life, fetched.max_age) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Keeps a [`Verifier`]'s revocation list fresh. Stops when dropped, without waiting.
pub struct RevocationRefresher(Poller);

impl RevocationRefresher {
    /// Starts polling `url` every `interval` (choose at most half of the issuer's
    /// `revocations_max_age`) and loading each new list into `verifier` and all its clones. The
    /// first fetch happens at once; the last good list is kept until it expires, and errors
    /// back off exponentially up to `interval`. A list that may not replace the one held (see
    /// [`Verifier::set_revocations`]: an earlier one while the held list is fresh, as after a
    /// config rollback) counts as an error
    /// ([`VerifyError::RevocationsRollback`](crate::verify::VerifyError::RevocationsRollback) in
    /// [`RefreshStatus::last_error`]); once the held list expires the next fresh list is taken.
    ///
    /// The list is signed: start it once the verifier has its keys ([`Refresher::start`] does).
    pub fn spawn(verifier: Verifier, url: impl Into<String>, interval: Duration) -> Self {
        Self::start(Arc::new(UreqFetcher::default()), verifier, url.into(), Interval::Fixed(interval))
    }

    fn start(fetcher: Arc<dyn Fetch>, verifier: Verifier, url: String, interval: Interval) -> Self {
        let load = Box::new(move |fetched: &Fetched| load_revocations(&verifier, fetched));
        Self(Poller::spawn(fetcher, url, interval, interval.fallback(), None, load))
    }

    /// The refresher's status.
    pub fn status(&self) -> RefreshStatus {
        self.0.status()
    }
}

/// Keeps a [`Verifier`]'s keys current from a JWKS URL, so signing-key rotations reach it
/// without a restart. Stops when dropped, without waiting.
pub struct JwksRefresher(Poller);

impl JwksRefresher {
    /// Starts polling the JWKS at `url` every `interval` (the issuer's `jwks_max_age` is the
    /// natural choice) and loading it into `verifier` and all its clones. A token naming an
    /// unknown `kid` triggers an early fetch, at most once per `min_gap`, so forged `kid`s
    /// cannot cause a storm of requests.
    pub fn spawn(verifier: Verifier, url: impl Into<String>, interval: Duration, min_gap: Duration) -> Self {
        let source = Arc::new(RefreshedKeys::new(verifier.keys()));
        Self::plug(
            Arc::new(UreqFetcher::default()),
            &verifier,
            url.into(),
            Interval::Fixed(interval),
            min_gap,
            source,
            None,
        )
    }

    fn plug(
        fetcher: Arc<dyn Fetch>,
        verifier: &Verifier,
        url: String,
        interval: Interval,
        min_gap: Duration,
        source: Arc<RefreshedKeys>,
        resume: Option<Resume>,
    ) -> Self {
        // Never more than ten fetches a second, whatever the caller asked for.
        let min_gap = min_gap.max(MIN_GAP_FLOOR);
        let target = Arc::clone(&source);
        let load = Box::new(move |fetched: &Fetched| target.load(fetched));
        let poller = Poller::spawn(fetcher, url, interval, min_gap, resume, load);
        // Set once, right after the poller exists; until then an unknown kid wakes nobody.
        let _ = source.poller.set(Arc::downgrade(&poller.shared));
        verifier.set_key_source(source);
        Self(poller)
    }

    /// The refresher's status.
    pub fn status(&self) -> RefreshStatus {
        self.0.status()
    }
}

impl Interval {
    /// The longest delay errors back off to, and the early-fetch gap of a list refresher.
    fn fallback(self) -> Duration {
        match self {
            Self::Fixed(d) | Self::FromDocument(d) => d,
        }
    }
}

/// A service's keys and revocation list, kept fresh: what [`Refresher::start`] returns. Stops
/// both refreshers when dropped, without waiting for a fetch in flight.
pub struct Refresher {
    jwks: JwksRefresher,
    revocations: Option<RevocationRefresher>,
}

/// How [`Refresher::start`] fetches and paces. `RefreshOptions::default()` suits most services.
#[derive(Clone)]
#[non_exhaustive]
pub struct RefreshOptions {
    /// Who fetches. Defaults to [`UreqFetcher`].
    pub fetcher: Arc<dyn Fetch>,
    /// Used when a document states no interval. Defaults to [`DEFAULT_INTERVAL`].
    pub fallback_interval: Duration,
    /// The shortest gap between two early JWKS fetches caused by unknown `kid`s. Defaults to
    /// 1 s (never below 100 ms).
    pub min_gap: Duration,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        Self {
            fetcher: Arc::new(UreqFetcher::default()),
            fallback_interval: DEFAULT_INTERVAL,
            min_gap: Duration::from_secs(1),
        }
    }
}

impl RefreshOptions {
    /// These options with another fetcher.
    pub fn fetcher(mut self, fetcher: Arc<dyn Fetch>) -> Self {
        self.fetcher = fetcher;
        self
    }
}

impl Refresher {
    /// Bootstraps `verifier`: fetches the JWKS at `jwks_url` and returns once its keys are
    /// loaded (one fetch, not repeated by the background thread), then keeps them fresh at the
    /// JWKS's own `Cache-Control: max-age`. With `revocations_url`, the signed revocation list
    /// is started after the keys are in (so it verifies), and refreshed at half its remaining
    /// lifetime. Pair it with [`Verifier::unknown_kid_wait`] so the first token after a key
    /// rotation waits for the early refetch instead of failing.
    ///
    /// Blocks for at most one fetch ([`FETCH_TIMEOUT`] with the default fetcher): in an async
    /// service call it from `spawn_blocking` or before the runtime starts.
    ///
    /// # Errors
    ///
    /// A [`FetchError`] when the first JWKS cannot be fetched or is not a valid key set.
    pub fn start(
        verifier: &Verifier,
        jwks_url: impl Into<String>,
        revocations_url: Option<String>,
        options: RefreshOptions,
    ) -> Result<Self, FetchError> {
        let jwks_url = jwks_url.into();
        let at = Instant::now();
        let first = options.fetcher.get(&jwks_url, None)?;
        if first.body.is_none() {
            return Err(FetchError::NotModified(jwks_url));
        }
        let source = Arc::new(RefreshedKeys::new(Arc::new(KeySet::default())));
        let interval = Interval::FromDocument(options.fallback_interval);
        let delay = interval.after(source.load(&first)?);
        let resume = Resume { etag: first.etag, delay, at };
        let jwks = JwksRefresher::plug(
            Arc::clone(&options.fetcher),
            verifier,
            jwks_url,
            interval,
            options.min_gap,
            source,
            Some(resume),
        );
        let revocations = revocations_url
            .map(|url| RevocationRefresher::start(Arc::clone(&options.fetcher), verifier.clone(), url, interval));
        Ok(Self { jwks, revocations })
    }

    /// The JWKS refresher's status.
    pub fn jwks_status(&self) -> RefreshStatus {
        self.jwks.status()
    }

    /// The revocation-list refresher's status, if one was started.
    pub fn revocations_status(&self) -> Option<RefreshStatus> {
        self.revocations.as_ref().map(RevocationRefresher::status)
    }
}

#[cfg(test)]
mod tests;
